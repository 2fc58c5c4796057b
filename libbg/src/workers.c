/* workers.c: the live workers, read from their heartbeat hashes (heartbeat.c): the data behind
 * `bg-cli workers` and the worker figures of `metrics`. */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

#define MAX_WORKERS 10000 /* IDs read from NS:workers at most: junk must not blow up a listing */

static const char *const fields[] = {"host", "pid", "queues", "fibers", "busy", "started", "state"};
#define NFIELDS (sizeof fields / sizeof fields[0])

struct bg_workers {
    size_t n;
    bg_worker_info *w;
    redisReply **replies; /* the HMGET replies the bytes are borrowed from */
    size_t nreplies;
    char *warning;
    int64_t now_ms;
};

size_t bg_workers_count(const bg_workers *l) {
    return l ? l->n : 0;
}

const bg_worker_info *bg_workers_get(const bg_workers *l, size_t i) {
    return l && i < l->n ? &l->w[i] : NULL;
}

const char *bg_workers_warning(const bg_workers *l) {
    return l ? l->warning : NULL;
}

int64_t bg_workers_time_ms(const bg_workers *l) {
    return l ? l->now_ms : 0;
}

void bg_workers_free(bg_workers *l) {
    if (!l)
        return;
    for (size_t i = 0; i < l->nreplies; i++)
        freeReplyObject(l->replies[i]);
    free(l->replies);
    free(l->w);
    free(l->warning);
    free(l);
}

/* Adds "key: what" to the list's warning, comma-separated. */
static void warn(bg_workers *l, const char *key, const char *what) {
    size_t old = l->warning ? strlen(l->warning) : 0, add = strlen(key) + strlen(what) + 4;
    if (old > 4096)
        return;
    char *s = realloc(l->warning, old + add + 1);
    if (!s)
        return;
    bg__fmt(s + old, add + 1, "%s%s: %s", old ? "; " : "", key, what);
    l->warning = s;
}

static int64_t number(const redisReply *e) {
    long long v;
    if (e->type != REDIS_REPLY_STRING || bg__parse_ll(e->str, e->len, &v) != 0 || v < 0)
        return -1;
    return v;
}

static bg_bytes bytes(const redisReply *e) {
    bg_bytes b = {NULL, 0};
    if (e->type == REDIS_REPLY_STRING) {
        b.s = e->str;
        b.len = e->len;
    }
    return b;
}

static int bytes_cmp(bg_bytes a, bg_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.s ? a.s : "", b.s ? b.s : "", n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int cmp_worker(const void *pa, const void *pb) {
    const bg_worker_info *a = pa, *b = pb;
    int c = bytes_cmp(a->host, b->host);
    if (c)
        return c;
    if (a->pid != b->pid)
        return a->pid < b->pid ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Reads the IDs of NS:workers into ids (n of them). *wrongtype when it is not a set. */
static int read_ids(bg_client *c, long long **ids, size_t *n, int *wrongtype) {
    char key[256];
    bg__key(key, sizeof key, c->ns, BG__K_WORKERS, NULL);
    const char *argv[] = {"SMEMBERS", key};
    redisReply *r = bg__conn_cmd(&c->conn, 2, argv, NULL);
    *ids = NULL;
    *n = 0;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
        *wrongtype = 1;
        freeReplyObject(r);
        return BG_OK;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        int rc = bg__client_reply_fail(c, r, "workers");
        freeReplyObject(r);
        return rc;
    }
    *ids = calloc(r->elements ? r->elements : 1, sizeof **ids);
    for (size_t i = 0; *ids && i < r->elements && *n < MAX_WORKERS; i++) {
        long long id;
        /* A member that is no client ID was not written by a worker: not bg's to judge. */
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            bg__parse_ll(r->element[i]->str, r->element[i]->len, &id) == 0 && id > 0)
            (*ids)[(*n)++] = id;
    }
    freeReplyObject(r);
    return *ids ? BG_OK : bg__client_fail(c, BG_ENOMEM, "workers: out of memory");
}

static int64_t server_ms(const redisReply *r) {
    long long s, us;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        bg__parse_ll(r->element[0]->str, r->element[0]->len, &s) == 0 &&
        bg__parse_ll(r->element[1]->str, r->element[1]->len, &us) == 0)
        return (int64_t)(s * 1000 + us / 1000);
    return -1;
}

/* Takes one HMGET reply: a worker, an expired hash (*gone), or a hash of the wrong type. */
static void take(bg_workers *l, redisReply *r, long long id, const char *key, int *gone) {
    *gone = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        warn(l, key, strncmp(r->str, "WRONGTYPE", 9) == 0 ? "not a hash" : r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != NFIELDS)
        return;
    int any = 0;
    for (size_t i = 0; i < NFIELDS; i++)
        any |= r->element[i]->type == REDIS_REPLY_STRING;
    if (!any) {
        *gone = 1;
        return;
    }
    bg_worker_info *w = &l->w[l->n++];
    w->id = id;
    w->host = bytes(r->element[0]);
    w->pid = number(r->element[1]);
    w->queues = bytes(r->element[2]);
    w->fibers = number(r->element[3]);
    w->busy = number(r->element[4]);
    w->started_ms = number(r->element[5]);
    w->state = bytes(r->element[6]);
    w->age_ms = w->started_ms >= 0 && l->now_ms >= w->started_ms ? l->now_ms - w->started_ms : -1;
}

/* Removes the IDs whose hash has expired from NS:workers. A refusal (a user without SREM) only
 * leaves them for the next reader. */
static void forget(bg_client *c, const long long *gone, size_t n) {
    char key[256];
    bg__args a;
    bg__key(key, sizeof key, c->ns, BG__K_WORKERS, NULL);
    bg__args_init(&a);
    bg__args_str(&a, "SREM");
    bg__args_str(&a, key);
    for (size_t i = 0; i < n; i++)
        bg__args_ll(&a, gone[i]);
    if (!a.oom) {
        redisReply *r = bg__conn_cmd_args(&c->conn, &a);
        if (r)
            freeReplyObject(r);
    }
    bg__args_free(&a);
}

/* Sends TIME and an HMGET of every hash in one pipeline, and takes the replies. */
static int read_hashes(bg_client *c, bg_workers *l, const long long *ids, size_t n, long long *gone,
                       size_t *ngone) {
    char key[256], sid[32];
    const char *argv[2 + NFIELDS] = {"HMGET", key};
    const char *time[] = {"TIME"};
    int rc = bg__conn_append(&c->conn, 1, time, NULL);
    memcpy(argv + 2, fields, sizeof fields);
    for (size_t i = 0; rc == BG_OK && i < n; i++) {
        bg__fmt(sid, sizeof sid, "%lld", ids[i]);
        bg__key(key, sizeof key, c->ns, BG__K_WORKER, sid);
        rc = bg__conn_append(&c->conn, 2 + NFIELDS, argv, NULL);
    }
    if (rc != BG_OK) {
        bg__conn_close(&c->conn); /* a half-sent pipeline's replies must not be read later */
        return bg__client_fail(c, rc, "workers: out of memory");
    }
    redisReply *r = bg__conn_reply(&c->conn);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        rc = bg__client_reply_fail(c, r, "workers: TIME");
        freeReplyObject(r);
        bg__conn_close(&c->conn);
        return rc;
    }
    l->now_ms = server_ms(r);
    freeReplyObject(r);
    for (size_t i = 0; i < n; i++) {
        int is_gone;
        if (!(r = bg__conn_reply(&c->conn)))
            return bg__client_reply_fail(c, NULL, "workers");
        l->replies[l->nreplies++] = r;
        bg__fmt(sid, sizeof sid, "%lld", ids[i]);
        bg__key(key, sizeof key, c->ns, BG__K_WORKER, sid);
        take(l, r, ids[i], key, &is_gone);
        if (is_gone)
            gone[(*ngone)++] = ids[i];
    }
    return BG_OK;
}

int bg_workers_list(bg_client *c, bg_workers **out) {
    long long *ids = NULL, *gone = NULL;
    size_t n = 0, ngone = 0;
    int wrongtype = 0, rc;
    *out = NULL;
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg_workers *l = calloc(1, sizeof *l);
    if (!l)
        return bg__client_fail(c, BG_ENOMEM, "workers: out of memory");
    if ((rc = read_ids(c, &ids, &n, &wrongtype)) != BG_OK)
        goto fail;
    l->w = calloc(n ? n : 1, sizeof *l->w);
    l->replies = calloc(n ? n : 1, sizeof *l->replies);
    gone = calloc(n ? n : 1, sizeof *gone);
    if (!l->w || !l->replies || !gone) {
        rc = bg__client_fail(c, BG_ENOMEM, "workers: out of memory");
        goto fail;
    }
    if (wrongtype) {
        char key[256];
        bg__key(key, sizeof key, c->ns, BG__K_WORKERS, NULL);
        warn(l, key, "not a set");
    }
    if ((rc = read_hashes(c, l, ids, n, gone, &ngone)) != BG_OK)
        goto fail;
    if (ngone)
        forget(c, gone, ngone);
    qsort(l->w, l->n, sizeof *l->w, cmp_worker);
    free(ids);
    free(gone);
    *out = l;
    return BG_OK;
fail:
    free(ids);
    free(gone);
    bg_workers_free(l);
    return rc;
}
