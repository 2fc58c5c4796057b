/* status.c: a snapshot of queue figures (docs/cli.md): sizes, lifetime counters, jobs per second,
 * the live workers and fibers of each queue, counted from CLIENT LIST, and the age of the
 * oldest ready job (oldest.lua). */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* jps counts the 100 ms slots finish.lua increments (docs/schema.md): the ten slots up to and
 * including the one the server's clock is in. */
#define JPS_SLOTS 10
#define JPS_SLOT_MS 100

struct bg_status {
    size_t n;
    char **names;
    bg_queue_status *q;
    double time_ms;
};

size_t bg_status_count(const bg_status *s) {
    return s ? s->n : 0;
}

const bg_queue_status *bg_status_queue(const bg_status *s, size_t i) {
    return s && i < s->n ? &s->q[i] : NULL;
}

double bg_status_time_ms(const bg_status *s) {
    return s ? s->time_ms : 0;
}

void bg_status_free(bg_status *s) {
    if (!s)
        return;
    bg__free_names(s->names, s->n);
    free(s->q);
    free(s);
}

/* Whether the worker's queue list holds q whole ("high" is not in "higher,low"). */
static int lists_queue(const bg__census_worker *w, const char *q) {
    size_t qlen = strlen(q);
    const char *p = w->queues, *end = w->queues + w->len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *tend = comma ? comma : end;
        if ((size_t)(tend - p) == qlen && memcmp(p, q, qlen) == 0)
            return 1;
        p = tend + 1;
    }
    return 0;
}

/* Counts the workers that list the queue, and their fibers, into qs. */
static void census_count(const bg__census *cc, bg_queue_status *qs) {
    for (size_t i = 0; i < cc->nworkers; i++) {
        if (lists_queue(&cc->workers[i], qs->name)) {
            qs->workers++;
            qs->fibers += (int64_t)cc->workers[i].fibers;
        }
    }
}

/* An integer out of a bulk string reply; nil, or a value that is not a whole number, is 0. */
static int64_t reply_ll(const redisReply *r) {
    long long v = 0;
    if (r && r->type == REDIS_REPLY_STRING && bg__parse_ll(r->str, r->len, &v) == 0)
        return v;
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return 0;
}

/* Round one: the server's clock (the jps slots depend on it) and, when no queues were given,
 * the namespace's known queues. */
static int read_clock(bg_client *c, int want_queues, int64_t *now_ms, redisReply **members) {
    char key[256];
    const char *time_argv[] = {"TIME"};
    bg__key(key, sizeof key, c->ns, BG__K_QUEUES, NULL);
    const char *smembers_argv[] = {"SMEMBERS", key};
    int rc = bg__conn_append(&c->conn, 1, time_argv, NULL);
    if (rc == BG_OK && want_queues)
        rc = bg__conn_append(&c->conn, 2, smembers_argv, NULL);
    if (rc != BG_OK)
        return bg__client_fail(c, rc, "status: out of memory");
    redisReply *t = bg__conn_reply(&c->conn);
    redisReply *m = t && want_queues ? bg__conn_reply(&c->conn) : NULL;
    rc = BG_OK;
    if (!t || (want_queues && !m))
        rc = bg__client_reply_fail(c, NULL, "status");
    else if (t->type != REDIS_REPLY_ARRAY || t->elements != 2)
        rc = bg__client_fail(c, BG_EPROTO, "status on %s: unexpected reply to TIME", c->url_masked);
    else if (m && m->type != REDIS_REPLY_ARRAY)
        rc = bg__reply_error(&c->conn, m, c->err, sizeof c->err, "status on %s: SMEMBERS %s",
                             c->url_masked, key);
    if (rc == BG_OK)
        *now_ms = reply_ll(t->element[0]) * 1000 + reply_ll(t->element[1]) / 1000;
    freeReplyObject(t);
    if (rc == BG_OK)
        *members = m;
    else
        freeReplyObject(m);
    return rc;
}

/* Copies the queue names into s: the given ones, or the valid names of NS:queues, sorted
 * (bg__queue_names()). */
static int set_names(bg_status *s, const char *const *queues, size_t nqueues,
                     const redisReply *members) {
    if (members) {
        if (bg__queue_names(members, &s->names, &s->n) != BG_OK)
            return BG_ENOMEM;
    } else {
        if (!(s->names = calloc(nqueues ? nqueues : 1, sizeof *s->names)))
            return BG_ENOMEM;
        for (; s->n < nqueues; s->n++)
            if (!(s->names[s->n] = bg__strdup(queues[s->n])))
                return BG_ENOMEM;
    }
    if (!(s->q = calloc(s->n ? s->n : 1, sizeof *s->q)))
        return BG_ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        s->q[i].name = s->names[i];
    return BG_OK;
}

/* The commands each queue sends in the pipeline of round two. */
#define PER_QUEUE 7

/* Appends one queue's PER_QUEUE commands: LLEN, ZCARD, SCARD, HMGET of the counters, MGET of
 * the jps slots, SISMEMBER NS:paused, and oldest.lua for the latency (last: read apart). */
static int append_queue(bg_client *c, const char *q, int64_t now_ms, bg__args *a) {
    char key[512];
    static const char *const cmds[] = {"LLEN", "ZCARD", "SCARD"};
    static const bg__key_kind kinds[] = {BG__K_READY, BG__K_SCHEDULED, BG__K_PROCESSING};
    int rc = BG_OK;
    for (int i = 0; i < 3 && rc == BG_OK; i++) {
        bg__key(key, sizeof key, c->ns, kinds[i], q);
        const char *argv[] = {cmds[i], key};
        rc = bg__conn_append(&c->conn, 2, argv, NULL);
    }
    bg__key(key, sizeof key, c->ns, BG__K_STATS, q);
    const char *hmget[] = {"HMGET", key, "completed", "failed", "dead"};
    if (rc == BG_OK)
        rc = bg__conn_append(&c->conn, 5, hmget, NULL);
    bg__args_reset(a);
    bg__args_str(a, "MGET");
    int64_t slot = now_ms / JPS_SLOT_MS;
    for (int i = 0; i < JPS_SLOTS; i++) {
        char suffix[256];
        bg__fmt(suffix, sizeof suffix, "%s:%lld", q, (long long)(slot - i));
        bg__key(key, sizeof key, c->ns, BG__K_JPS, suffix);
        bg__args_str(a, key);
    }
    if (rc == BG_OK)
        rc = bg__conn_append_args(&c->conn, a);
    bg__key(key, sizeof key, c->ns, BG__K_PAUSED, NULL);
    const char *paused[] = {"SISMEMBER", key, q};
    if (rc == BG_OK)
        rc = bg__conn_append(&c->conn, 3, paused, NULL);
    char jobs[256];
    bg__key(key, sizeof key, c->ns, BG__K_READY, q);
    bg__key(jobs, sizeof jobs, c->ns, BG__K_JOBS, "");
    bg__args_reset(a);
    bg__args_str(a, key);
    bg__args_str(a, jobs);
    if (rc == BG_OK)
        rc = bg__conn_append_eval(&c->conn, BG__LUA_OLDEST, 0, a);
    return rc;
}

/* The latency out of oldest.lua's reply (see its header). A reply that is not one of those,
 * an error included (a refused EVALSHA), leaves the latency unknown rather than failing the
 * whole status: it is a figure to look at, not one to act on. */
static int64_t latency_of(const redisReply *r, int64_t now_ms) {
    long long qat;
    if (r->type == REDIS_REPLY_INTEGER)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        bg__parse_ll(r->element[1]->str, r->element[1]->len, &qat) != 0)
        return -1;
    /* A qat ahead of the server's clock (a producer's skewed clock) is no age at all. */
    return qat >= now_ms ? 0 : now_ms - qat;
}

static int is_noscript(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Runs oldest.lua again on its own for a queue whose pipelined call met NOSCRIPT (the server
 * lost its script cache): bg__conn_eval() reloads the script, which inside the pipeline would
 * have read another command's reply. */
static void rerun_oldest(bg_client *c, bg_queue_status *qs, int64_t now_ms) {
    char key[512], jobs[256];
    bg__key(key, sizeof key, c->ns, BG__K_READY, qs->name);
    bg__key(jobs, sizeof jobs, c->ns, BG__K_JOBS, "");
    const char *oldest[] = {key, jobs};
    redisReply *r = bg__conn_eval_strs(&c->conn, BG__LUA_OLDEST, 0, 2, oldest);
    qs->latency_ms = r ? latency_of(r, now_ms) : -1;
    freeReplyObject(r);
}

/* Stores reply i (0..5; the latency, 6, is read apart) of queue qs; returns 0, or -1 when it is not
 * of the expected kind. */
static int store_figure(bg_queue_status *qs, int i, const redisReply *r) {
    if (i == 5) {
        /* A NS:paused of another type is refused: no queue is paused then, as workers see it. */
        qs->paused = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        return 0;
    }
    if (i < 3) {
        if (r->type != REDIS_REPLY_INTEGER)
            return -1;
        int64_t *dst[] = {&qs->ready, &qs->scheduled, &qs->processing};
        *dst[i] = r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    if (i == 3) {
        qs->completed = r->elements > 0 ? reply_ll(r->element[0]) : 0;
        qs->failed = r->elements > 1 ? reply_ll(r->element[1]) : 0;
        qs->dead = r->elements > 2 ? reply_ll(r->element[2]) : 0;
        return 0;
    }
    for (size_t k = 0; k < r->elements; k++)
        qs->jps += reply_ll(r->element[k]);
    return 0;
}

/* Where CLIENT LIST is refused or renamed (docs/operations.md#liveness): the census from the
 * workers' heartbeats instead (NS:worker:<id>, bg_workers_list()), each worker with the fibers
 * it runs. The figures of l are borrowed by cc. */
static int census_from_heartbeats(bg_client *c, bg_workers **l, bg__census *cc) {
    int rc = bg_workers_list(c, l);
    if (rc != BG_OK)
        return rc;
    size_t n = bg_workers_count(*l);
    if (n && !(cc->workers = calloc(n, sizeof *cc->workers)))
        return bg__client_fail(c, BG_ENOMEM, "status: out of memory");
    for (size_t i = 0; i < n; i++) {
        const bg_worker_info *w = bg_workers_get(*l, i);
        cc->workers[cc->nworkers++] =
            (bg__census_worker){w->id, w->queues.s ? w->queues.s : "", w->queues.len,
                                w->fibers > 0 ? (size_t)w->fibers : 0};
    }
    return BG_OK;
}

/* Reads CLIENT LIST into the census. An error reply (an ACL without CLIENT, a renamed command)
 * sets *refused: the census comes from the heartbeats then. */
static int read_census(bg_client *c, const redisReply *r, bg__census *cc, int *refused) {
    if (r->type == REDIS_REPLY_ERROR) {
        *refused = 1;
        return BG_OK;
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        return bg__client_fail(c, BG_EPROTO, "status on %s: unexpected reply to CLIENT LIST",
                               c->url_masked);
    if (bg__client_census(r->str, r->len, c->ns, cc) != BG_OK)
        return bg__client_fail(c, BG_ENOMEM, "status: out of memory");
    return BG_OK;
}

/* Round two: CLIENT LIST and every queue's figures in one pipeline. */
static int read_figures(bg_client *c, bg_status *s, int64_t now_ms) {
    bg__census cc = {0};
    redisReply *list = NULL;
    bg_workers *beats = NULL;
    int refused = 0;
    bg__args a;
    const char *list_argv[] = {"CLIENT", "LIST"};
    int rc = bg__conn_append(&c->conn, 2, list_argv, NULL);
    bg__args_init(&a);
    for (size_t i = 0; i < s->n && rc == BG_OK; i++)
        rc = append_queue(c, s->names[i], now_ms, &a);
    bg__args_free(&a);
    if (rc != BG_OK)
        return bg__client_fail(c, rc, "status: out of memory");
    /* Every reply is read, even after an error, so the connection stays in step. */
    size_t total = 1 + PER_QUEUE * s->n;
    char *rerun = calloc(s->n ? s->n : 1, 1);
    if (!rerun)
        return bg__client_fail(c, BG_ENOMEM, "status: out of memory");
    for (size_t k = 0; k < total; k++) {
        redisReply *r = bg__conn_reply(&c->conn);
        if (!r) {
            rc = bg__client_reply_fail(c, NULL, "status");
            break;
        }
        if (rc != BG_OK) {
            freeReplyObject(r);
            continue;
        }
        if (k == 0) {
            /* Kept until the counting below: the census borrows the worker names from it. */
            list = r;
            rc = read_census(c, r, &cc, &refused);
            continue;
        }
        size_t qi = (k - 1) / PER_QUEUE;
        bg_queue_status *qs = &s->q[qi];
        if ((k - 1) % PER_QUEUE == PER_QUEUE - 1) {
            rerun[qi] = (char)is_noscript(r);
            qs->latency_ms = latency_of(r, now_ms);
        } else if (store_figure(qs, (int)((k - 1) % PER_QUEUE), r) != 0)
            rc = bg__client_fail(c, BG_EREDIS, "status of queue %s on %s: %s", qs->name,
                                 c->url_masked,
                                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
    }
    if (rc == BG_OK && refused)
        rc = census_from_heartbeats(c, &beats, &cc);
    for (size_t i = 0; i < s->n && rc == BG_OK; i++) {
        census_count(&cc, &s->q[i]);
        if (rerun[i])
            rerun_oldest(c, &s->q[i], now_ms);
    }
    free(rerun);
    freeReplyObject(list);
    bg__census_free(&cc);
    bg_workers_free(beats);
    return rc;
}

int bg_status_read(bg_client *c, const char *const *queues, size_t nqueues, bg_status **out) {
    redisReply *members = NULL;
    int64_t now_ms = 0;
    double t0 = bg__mono_ms();
    int rc;
    if (!c || !out)
        return c ? bg__client_fail(c, BG_EINVAL, "status: no place for the snapshot") : BG_EINVAL;
    *out = NULL;
    if ((rc = bg__client_check_queues(c, queues, nqueues)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg_status *s = calloc(1, sizeof *s);
    if (!s)
        return bg__client_fail(c, BG_ENOMEM, "status: out of memory");
    if ((rc = read_clock(c, nqueues == 0, &now_ms, &members)) != BG_OK)
        goto fail;
    if ((rc = set_names(s, queues, nqueues, members)) != BG_OK) {
        bg__client_fail(c, rc, "status: out of memory");
        goto fail;
    }
    if ((rc = read_figures(c, s, now_ms)) != BG_OK)
        goto fail;
    freeReplyObject(members);
    s->time_ms = bg__mono_ms() - t0;
    *out = s;
    return BG_OK;
fail:
    freeReplyObject(members);
    bg_status_free(s);
    return rc;
}
