/* queues.c: finding a namespace's queues. NS:queues names the queues bg's programs know
 * (docs/schema.md#keys); the watcher also finds, by SCAN and by tracking reports, the queues
 * only foreign producers wrote, and adds them there for the other programs. */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

#define SCAN_EVERY_MS 60000 /* a new SCAN for queues at most once a minute */
#define SCAN_STEPS 20       /* SCAN calls per bg__queue_scan_step(), at most */
/* ...and the pause after one is at least this many times what its calls took: a SCAN steps
 * over every key, so with a large history (two hashes a job kept) a pass a minute would cost
 * Redis a share of its time that grows with the keyspace. Queues a tracking report names are
 * found at once anyway; the SCAN is the net under them. */
#define SCAN_PAUSE_FACTOR 100

/* The per-queue keys whose names give a queue away. */
static const bg__key_kind per_queue[] = {BG__K_READY,     BG__K_SCHEDULED, BG__K_PROCESSING,
                                         BG__K_COMPLETED, BG__K_FAILED,    BG__K_DEAD};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void bg__free_names(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int bg__queue_names(const redisReply *members, char ***names, size_t *n) {
    char **out = calloc(members->elements ? members->elements : 1, sizeof *out);
    size_t k = 0;
    *names = NULL;
    *n = 0;
    if (!out)
        return BG_ENOMEM;
    for (size_t i = 0; i < members->elements; i++) {
        const redisReply *e = members->element[i];
        /* A name another program put there that bg could not use is left out. */
        if (e->type != REDIS_REPLY_STRING || strlen(e->str) != e->len || !bg_queue_valid(e->str))
            continue;
        if (!(out[k] = bg__strdup(e->str))) {
            bg__free_names(out, k);
            return BG_ENOMEM;
        }
        k++;
    }
    qsort(out, k, sizeof *out, cmp_str);
    *names = out;
    *n = k;
    return BG_OK;
}

int bg__known_queues(bg_client *c, const char *what, char ***names, size_t *n) {
    char key[256];
    bg__key(key, sizeof key, c->ns, BG__K_QUEUES, NULL);
    const char *argv[] = {"SMEMBERS", key};
    *names = NULL;
    *n = 0;
    redisReply *r = bg__conn_cmd(&c->conn, 2, argv, NULL);
    int rc = r && r->type == REDIS_REPLY_ARRAY ? bg__queue_names(r, names, n)
                                               : bg__client_reply_fail(c, r, what);
    freeReplyObject(r);
    if (rc == BG_ENOMEM)
        return bg__client_fail(c, rc, "%s: out of memory", what);
    return rc;
}

int bg__queue_of_key(const char *ns, const char *key, size_t len, char *q) {
    char p[128];
    for (size_t i = 0; i < sizeof per_queue / sizeof per_queue[0]; i++) {
        int n = bg__key(p, sizeof p, ns, per_queue[i], "");
        if (n > 0 && len > (size_t)n && len - (size_t)n <= BG_QUEUE_MAX &&
            memcmp(key, p, (size_t)n) == 0) {
            memcpy(q, key + n, len - (size_t)n);
            q[len - (size_t)n] = '\0';
            return strlen(q) == len - (size_t)n && bg_queue_valid(q);
        }
    }
    return 0;
}

/* Appends the queue key names to found when fn says it is new. */
static void note(const char *ns, const char *key, size_t len, bg__queue_fn fn, void *ud,
                 bg__args *found) {
    char q[BG_QUEUE_MAX + 1];
    if (bg__queue_of_key(ns, key, len, q) && fn(ud, q))
        bg__args_str(found, q);
}

static void sadd_init(bg__args *found, const char *ns) {
    char key[256];
    bg__key(key, sizeof key, ns, BG__K_QUEUES, NULL);
    bg__args_init(found);
    bg__args_str(found, "SADD");
    bg__args_str(found, key);
}

/* Adds the queues found to NS:queues, for the other programs, and frees found. */
static void sadd_found(bg__conn *c, bg__args *found) {
    if (found->argc > 2 && bg__conn_ok(c)) {
        redisReply *r = bg__conn_cmd_args(c, found);
        freeReplyObject(r);
    }
    bg__args_free(found);
}

void bg__queue_note_key(bg__conn *c, const char *ns, const char *key, size_t len, bg__queue_fn fn,
                        void *ud) {
    bg__args found;
    sadd_init(&found, ns);
    note(ns, key, len, fn, ud, &found);
    sadd_found(c, &found);
}

/* The SCAN's MATCH: NS:[rspcfd]*, the keys whose kind begins as a per-queue kind's does. Most
 * of a namespace's keys are its jobs' and attempts' hashes, two for each job kept; left out by
 * Redis, they cost neither the reply nor its reading here (the scan still steps over them).
 * A namespace holds no glob character (bg_namespace_valid). */
static void scan_match(char *buf, size_t len, const char *ns) {
    char first[sizeof per_queue / sizeof per_queue[0] + 1] = "", p[128];
    size_t n = 0, at = strlen(ns) + 1;
    for (size_t i = 0; i < sizeof per_queue / sizeof per_queue[0]; i++)
        if (bg__key(p, sizeof p, ns, per_queue[i], "") > (int)at && !strchr(first, p[at])) {
            first[n++] = p[at];
            first[n] = '\0';
        }
    bg__fmt(buf, len, "%s:[%s]*", ns, first);
}

void bg__queue_scan_step(bg__conn *c, const char *ns, bg__queue_scan *s, bg__queue_fn fn,
                         void *ud) {
    double now = bg__mono_ms();
    char match[128];
    bg__args found;
    if (!s->cursor[0] && now >= s->next_ms) {
        bg__fmt(s->cursor, sizeof s->cursor, "0");
        s->pass_ms = 0;
    }
    scan_match(match, sizeof match, ns);
    sadd_init(&found, ns);
    for (int step = 0; s->cursor[0] && step < SCAN_STEPS && bg__conn_ok(c); step++) {
        const char *scan[] = {"SCAN", s->cursor, "MATCH", match, "COUNT", "1000"};
        double t0 = bg__mono_ms();
        redisReply *r = bg__conn_cmd(c, 6, scan, NULL);
        s->pass_ms += bg__mono_ms() - t0;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            /* Refused (an ACL) or cut short: try again in a minute, not every interval. */
            s->cursor[0] = '\0';
            s->next_ms = now + SCAN_EVERY_MS;
            break;
        }
        bg__fmt(s->cursor, sizeof s->cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            note(ns, r->element[1]->element[i]->str, r->element[1]->element[i]->len, fn, ud,
                 &found);
        freeReplyObject(r);
        if (strcmp(s->cursor, "0") == 0) {
            s->cursor[0] = '\0';
            s->next_ms = now + (s->pass_ms * SCAN_PAUSE_FACTOR > SCAN_EVERY_MS
                                    ? s->pass_ms * SCAN_PAUSE_FACTOR
                                    : SCAN_EVERY_MS);
        }
    }
    sadd_found(c, &found);
}
