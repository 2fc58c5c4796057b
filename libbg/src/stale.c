/* stale.c: finds the attempts whose worker vanished and fails them (docs/watcher.md#what-it-does).
 * The client list and the processing sets are read in one MULTI, so an attempt is judged against
 * the connections alive at the same instant; each one is then failed by finish.lua only while
 * it is still processing and still owned by the connection judged, exactly once. */
#include <stdlib.h>
#include <string.h>

#include "watcher_int.h"

#define VANISH_BATCH 100

typedef struct {
    char attempt[BG_UUID_LEN + 1];
    const char *queue;
    /* The owner as the attempt holds it, byte for byte (NULL when absent): whatever another
     * program wrote there, the guard finish.lua compares must be exactly that, or the attempt
     * could never be failed and would stay processing forever. */
    char *wrk, *rid;
    size_t wrk_len, rid_len;
    char lse[BG_UUID_LEN + 1]; /* its lease ID, "" when it names none (or a malformed one) */
    int has_lse;               /* it holds an lse field, well-formed or not */
    int ask_lease;             /* with leases: judged by whether its lease exists, read next */
    const char *unjudged;      /* why this watcher's liveness test cannot judge it, or NULL */
    int gone;
    int junk; /* its attempt key is not a hash: it can only be dropped from processing */
    /* Its entry among the suspects of the last pass, whose owners were read in this pass's
     * MULTI; NULL for an attempt seen first now. */
    const struct bg__stale *suspect;
} seen;

static int cmp_stale(const void *a, const void *b) {
    return strcmp(((const struct bg__stale *)a)->attempt, ((const struct bg__stale *)b)->attempt);
}

/* bsearch's comparison of an attempt UUID with a suspect. */
static int cmp_attempt(const void *key, const void *elem) {
    return strcmp(key, ((const struct bg__stale *)elem)->attempt);
}

/* The replies of a snapshot before its processing sets: the client list (not with leases) and
 * INFO; and how many it holds for each suspect: its owner, and with leases its lease's EXISTS. */
static size_t head(const bg_watcher *w) {
    return w->lease ? 1 : 2;
}

static size_t per_suspect(const bg_watcher *w) {
    return w->lease ? 2 : 1;
}

/* Reads, in one MULTI, the client list (not with leases), the server's run_id and every
 * processing set. Returns the EXEC reply (client list, INFO, then one set per queue, then the
 * suspects' owners) or NULL. */
static redisReply *snapshot(bg_watcher *w, int *acl) {
    char key[256];
    const char *multi[] = {"MULTI"}, *list[] = {"CLIENT", "LIST"}, *info[] = {"INFO", "server"},
               *exec[] = {"EXEC"};
    bg__conn_append(&w->conn, 1, multi, NULL);
    if (!w->lease)
        bg__conn_append(&w->conn, 2, list, NULL);
    bg__conn_append(&w->conn, 2, info, NULL);
    for (size_t i = 0; i < w->nqueues; i++) {
        bg__key(key, sizeof key, w->ns, BG__K_PROCESSING, w->queues[i]);
        const char *argv[] = {"SMEMBERS", key};
        bg__conn_append(&w->conn, 2, argv, NULL);
    }
    /* The owners of the attempts already suspected are read in the same MULTI: only such a
     * reading may fail an attempt. One read after it could see a fiber that re-owned its
     * attempt meanwhile under a new ID missing from this client list. */
    for (size_t i = 0; i < w->nstale; i++) {
        bg__key(key, sizeof key, w->ns, BG__K_ATTEMPTS, w->stale[i].attempt);
        const char *argv[] = {"HMGET", key, "wrk", "rid", "lse"};
        bg__conn_append(&w->conn, 5, argv, NULL);
        if (w->lease) {
            /* The lease found expired, looked at again at this instant. */
            bg__key(key, sizeof key, w->ns, BG__K_LEASE, w->stale[i].lse);
            const char *ex[] = {"EXISTS", key};
            bg__conn_append(&w->conn, 2, ex, NULL);
        }
    }
    bg__conn_append(&w->conn, 1, exec, NULL);
    redisReply *r = NULL;
    size_t inner = head(w) + w->nqueues + w->nstale * per_suspect(w);
    for (size_t i = 0; i < inner + 2; i++) {
        if (r)
            freeReplyObject(r);
        if ((r = bg__conn_reply(&w->conn)) == NULL)
            return NULL;
        if (bg__reply_code(r) == BG_EACL) {
            bg__reply_error(&w->conn, r, w->conn.err, sizeof w->conn.err,
                            "Redis refused the watcher");
            *acl = 1;
        }
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != inner) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* A member of a processing set that cannot be an attempt UUID was put there by some other
 * program: no attempt can ever finish it, so it goes, with a warning. */
static void drop_junk(bg_watcher *w, const char *queue, const redisReply *m) {
    char key[256];
    if (m->type != REDIS_REPLY_STRING)
        return;
    bg__key(key, sizeof key, w->ns, BG__K_PROCESSING, queue);
    const char *argv[] = {"SREM", key, m->str};
    const size_t lens[] = {4, strlen(key), m->len};
    redisReply *r = bg__conn_cmd(&w->conn, 3, argv, lens);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        bg__log(&w->log, BG_LOG_WARN, ROLE, "dropped '%.*s' from %s: not an attempt UUID",
                (int)(m->len > 64 ? 64 : m->len), m->str, key);
    if (r)
        freeReplyObject(r);
}

/* A copy of the string element e (which may hold NULs), or NULL when it is not a string; *len
 * is its length. Sets *oom when the copy could not be made. */
static char *copy_field(const redisReply *e, size_t *len, int *oom) {
    *len = 0;
    if (e->type != REDIS_REPLY_STRING)
        return NULL;
    char *c = bg__strndup(e->str, e->len);
    if (!c)
        *oom = 1;
    else
        *len = e->len;
    return c;
}

/* Whether wrk (len bytes) is a client ID exactly as bg writes one: "007", "7\0x" or "+7" name
 * no connection, whatever a number parser would make of them. Sets *id. */
static int canonical_id_of(const char *wrk, size_t len, long long *id) {
    char canon[32];
    if (!wrk || bg__parse_ll(wrk, len, id) != 0)
        return 0;
    bg__fmt(canon, sizeof canon, "%lld", *id);
    return strlen(canon) == len && memcmp(canon, wrk, len) == 0;
}

static int canonical_id(const char *wrk, size_t len) {
    long long id;
    return canonical_id_of(wrk, len, &id);
}

/* Whether wrk (len bytes) is the ID of a live fiber, written as bg writes one. */
static int owned_by_fiber(const char *wrk, size_t len, const bg__census *live) {
    long long id;
    return canonical_id_of(wrk, len, &id) && bg__census_has_fiber(live, id);
}

/* With leases (docs/operations.md#liveness): an attempt that names a well-formed lease is judged
 * by whether that lease still exists, read next; one without, or with a malformed one, cannot be
 * judged here (a worker judged by client ID, a foreign tool): it is reported, never failed. */
static void judge_by_lease(seen *s) {
    if (s->lse[0])
        s->ask_lease = 1;
    else
        s->unjudged = s->has_lse ? "its lse is not a lease ID" : "it has no lease (lse)";
}

/* The verdict on s from ex, the reply to EXISTS of its lease: gone when the lease is. Anything
 * but a number judges nothing. */
static void take_lease(seen *s, const redisReply *ex) {
    s->ask_lease = 0;
    s->gone = ex && ex->type == REDIS_REPLY_INTEGER && ex->integer == 0;
}

/* Sets s->wrk, s->rid and s->gone from h, the reply to HMGET wrk rid of its attempt. An owner
 * that cannot be read (an ACL, a failed copy) is not judged: an error must never pass for "no
 * owner" and fail a live worker's attempt. An attempt key of another type than hash is junk
 * another program wrote: no worker owns it, and finish.lua drops it from processing. */
static void judge(bg_watcher *w, seen *s, const redisReply *h, const bg__census *live,
                  const char *run_id, size_t *unread) {
    int oom = 0;
    s->wrk = s->rid = NULL;
    s->wrk_len = s->rid_len = 0;
    s->gone = s->junk = 0;
    if (h->type == REDIS_REPLY_ERROR && strncmp(h->str, "WRONGTYPE", 9) == 0) {
        s->gone = s->junk = 1;
        return;
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements != 3) {
        if (!(*unread)++ && !w->unread_logged)
            bg__log(&w->log, BG_LOG_WARN, ROLE, "cannot read attempt %s: %s", s->attempt,
                    h->type == REDIS_REPLY_ERROR ? h->str : "unexpected reply");
        return;
    }
    s->wrk = copy_field(h->element[0], &s->wrk_len, &oom);
    s->rid = copy_field(h->element[1], &s->rid_len, &oom);
    if (oom) {
        (*unread)++;
        return;
    }
    const redisReply *lse = h->element[2];
    s->has_lse = lse->type == REDIS_REPLY_STRING;
    if (s->has_lse && lse->len == BG_UUID_LEN && bg_uuid_valid(lse->str))
        bg__fmt(s->lse, sizeof s->lse, "%s", lse->str);
    if (w->lease) {
        judge_by_lease(s);
        return;
    }
    if (s->has_lse && !canonical_id(s->wrk, s->wrk_len)) {
        /* A lease and no client ID: only a watcher judging by leases can tell. */
        s->unjudged = "it has a lease (lse) and no client ID (wrk)";
        return;
    }
    s->gone = !owned_by_fiber(s->wrk, s->wrk_len, live);
    /* Client IDs start again from 1 after a restart or failover: an attempt recorded under
     * another server's run_id (rid is a prefix of it) is stale whatever its wrk says
     * (docs/watcher.md#what-it-does). */
    if (s->rid_len && run_id[0] &&
        (s->rid_len > strlen(run_id) || memcmp(s->rid, run_id, s->rid_len) != 0))
        s->gone = 1;
}

/* Sends the 'vanish' records in a and logs what was failed. An attempt finish.lua refused (a
 * key it would write has the wrong type; nothing was touched) stays a suspect past its grace,
 * appended to next, so it is tried again at the next interval. */
static int send_vanish(bg_watcher *w, bg__args *a, const seen *which, size_t n,
                       struct bg__stale *next, size_t *nnext) {
    redisReply *r = bg__conn_eval(&w->conn, BG__LUA_FINISH, 0, a);
    if (!r)
        return BG_EIO;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < n; i++) {
        const char *key, *what;
        unsigned long more = 0;
        bg__finish_code code = bg__finish_result(r->element[i], &key, &what);
        if (code == BG__FINISH_RECORDED) {
            bg__log(&w->log, BG_LOG_INFO, ROLE, "[%s] Worker Timeout: the worker's %s (queue %s)",
                    which[i].attempt, w->lease ? "lease expired" : "connection is gone",
                    which[i].queue);
        } else if (code == BG__FINISH_REFUSED) {
            bg__fmt(next[*nnext].attempt, sizeof next[*nnext].attempt, "%s", which[i].attempt);
            bg__fmt(next[*nnext].lse, sizeof next[*nnext].lse, "%s", which[i].lse);
            next[(*nnext)++].since_ms = which[i].suspect->since_ms;
            if (bg__ratelimit_allow(&w->rl, key, strlen(key), &more))
                bg__log(&w->log, BG_LOG_WARN, ROLE,
                        "[%s] cannot fail the attempt of a vanished worker: %s: %s; it stays "
                        "processing until the key is repaired (%lu more since the last report)",
                        which[i].attempt, key, what, more);
        } else if (code == BG__FINISH_SKIPPED && *key) {
            /* Said once per processing set, as the pass that found such members says it: a
             * flood of junk members must not log a line each. */
            char pkey[256];
            bg__key(pkey, sizeof pkey, w->ns, BG__K_PROCESSING, which[i].queue);
            if (bg__ratelimit_allow(&w->rl, pkey, strlen(pkey), &more))
                bg__log(&w->log, BG_LOG_WARN, ROLE,
                        "[%s] not an attempt: %s is %s; dropped from processing (%lu more since "
                        "the last report)",
                        which[i].attempt, key, what, more);
        }
    }
    int rc = r->type == REDIS_REPLY_ERROR ? BG_EREDIS : BG_OK;
    if (rc != BG_OK)
        bg__log(&w->log, BG_LOG_ERROR, ROLE, "failing stale attempts: %s", r->str);
    freeReplyObject(r);
    return rc;
}

/* The attempts of one pass, as read from its snapshot. */
typedef struct {
    seen *all;
    size_t n, cap;
} seen_list;

/* Lists the members of every processing set of the snapshot, dropping those that cannot be
 * attempts, and marks those already suspected (whose owners came with the snapshot). */
static void collect(bg_watcher *w, const redisReply *snap, seen_list *l) {
    char key[256];
    for (size_t q = 0; q < w->nqueues; q++) {
        const redisReply *set = snap->element[q + head(w)];
        for (size_t i = 0; set->type == REDIS_REPLY_ARRAY && i < set->elements; i++) {
            const redisReply *m = set->element[i];
            if (m->type != REDIS_REPLY_STRING || m->len != BG_UUID_LEN || !bg_uuid_valid(m->str)) {
                drop_junk(w, w->queues[q], m);
                continue;
            }
            if (l->n == l->cap) {
                seen *more = realloc(l->all, (l->cap = l->cap ? l->cap * 2 : 64) * sizeof *more);
                if (!more)
                    break;
                l->all = more;
            }
            seen *s = &l->all[l->n++];
            memset(s, 0, sizeof *s);
            bg__fmt(s->attempt, sizeof s->attempt, "%s", m->str);
            s->queue = w->queues[q];
            if (w->stale)
                s->suspect =
                    bsearch(s->attempt, w->stale, w->nstale, sizeof *w->stale, cmp_attempt);
        }
        if (set->type == REDIS_REPLY_ERROR) {
            /* Another program's key where the set should be: no attempt of this queue can be
             * judged (nor claimed, nor finished) until an operator repairs it. */
            bg__key(key, sizeof key, w->ns, BG__K_PROCESSING, w->queues[q]);
            bg__watcher_badkey(w, key, key, "set", "its attempts are not judged");
        }
    }
}

/* With leases: reads, in one pipeline, whether the lease of each attempt first seen now exists
 * (a suspect's came with the snapshot). Returns BG_OK, or BG_EIO with l->n cut to the attempts
 * judged. */
static int read_leases(bg_watcher *w, seen_list *l) {
    char key[256];
    for (size_t i = 0; i < l->n; i++) {
        if (!l->all[i].ask_lease)
            continue;
        bg__key(key, sizeof key, w->ns, BG__K_LEASE, l->all[i].lse);
        const char *argv[] = {"EXISTS", key};
        bg__conn_append(&w->conn, 2, argv, NULL);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!l->all[i].ask_lease)
            continue;
        redisReply *ex = bg__conn_reply(&w->conn);
        if (!ex) {
            l->n = i;
            return BG_EIO;
        }
        take_lease(&l->all[i], ex);
        freeReplyObject(ex);
    }
    return BG_OK;
}

/* Says, once a minute at most, that attempts this watcher's liveness test cannot judge are left
 * processing, naming the first and why, and what judges them (docs/operations.md#liveness). */
static void report_unjudged(bg_watcher *w, const seen_list *l) {
    size_t n = 0;
    const seen *first = NULL;
    unsigned long more = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->all[i].unjudged && !n++)
            first = &l->all[i];
    if (!n || !bg__ratelimit_allow(&w->rl, "unjudged", 8, &more))
        return;
    bg__log(&w->log, BG_LOG_WARN, ROLE,
            "%zu running attempt%s cannot be judged by liveness %s, e.g. [%s] (queue %s): %s; "
            "left processing, never failed: a watcher with --liveness %s judges them",
            n, n == 1 ? "" : "s", w->lease ? "lease" : "clientid", first->attempt, first->queue,
            first->unjudged, w->lease ? "clientid" : "lease");
}

/* Judges every attempt's owner: a suspect's from the snapshot, the others' read now in one
 * pipeline, drained before any script runs. Returns BG_OK, or BG_EIO with l->n cut to the
 * attempts judged. */
static int judge_all(bg_watcher *w, const redisReply *snap, seen_list *l, const bg__census *live,
                     const char *run_id) {
    char key[256];
    size_t unread = 0;
    int rc = BG_OK;
    for (size_t i = 0; i < l->n; i++) {
        if (l->all[i].suspect)
            continue;
        bg__key(key, sizeof key, w->ns, BG__K_ATTEMPTS, l->all[i].attempt);
        const char *argv[] = {"HMGET", key, "wrk", "rid", "lse"};
        bg__conn_append(&w->conn, 5, argv, NULL);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->all[i].suspect) {
            size_t j = (size_t)(l->all[i].suspect - w->stale) * per_suspect(w);
            redisReply *const *e = snap->element + head(w) + w->nqueues + j;
            judge(w, &l->all[i], e[0], live, run_id, &unread);
            /* Its lease as read in the MULTI, if the attempt still names the one suspected. */
            if (l->all[i].ask_lease) {
                if (strcmp(l->all[i].lse, l->all[i].suspect->lse) == 0)
                    take_lease(&l->all[i], e[1]);
                else
                    l->all[i].ask_lease = 0;
            }
            continue;
        }
        redisReply *h = bg__conn_reply(&w->conn);
        if (!h) {
            rc = BG_EIO;
            l->n = i;
            break;
        }
        judge(w, &l->all[i], h, live, run_id, &unread);
        freeReplyObject(h);
    }
    if (rc == BG_OK && w->lease)
        rc = read_leases(w, l);
    w->unread_logged = unread > 0;
    report_unjudged(w, l);
    return rc;
}

/* Keeps s a suspect in next, since since_ms, and notes when its grace ends. */
static void suspect(bg_watcher *w, const seen *s, double since, struct bg__stale *next,
                    size_t *nnext) {
    bg__fmt(next[*nnext].attempt, sizeof next[*nnext].attempt, "%s", s->attempt);
    bg__fmt(next[*nnext].lse, sizeof next[*nnext].lse, "%s", s->lse);
    next[(*nnext)++].since_ms = since;
    if (!w->stale_due_ms || since + w->grace_ms < w->stale_due_ms)
        w->stale_due_ms = since + w->grace_ms;
}

/* Fails, in batches of VANISH_BATCH, the attempts gone for longer than the grace (junk at
 * once), and keeps the others that are gone as suspects in next. Returns BG_OK or BG_EIO. */
static int fail_vanished(bg_watcher *w, const seen_list *l, struct bg__stale *next, size_t *nnext) {
    char key[256], pkey[256];
    double now = bg__mono_ms();
    seen *batch = calloc(VANISH_BATCH, sizeof *batch);
    size_t nbatch = 0;
    int rc = BG_OK;
    bg__args a;
    bg__args_init(&a);
    for (size_t i = 0; rc == BG_OK && batch && i < l->n; i++) {
        const seen *s = &l->all[i];
        if (s->junk) {
            /* No worker can own it, so no grace: finish.lua drops it from processing. The
             * finding is said per processing set, so a flood of such members logs one line. */
            bg__key(pkey, sizeof pkey, w->ns, BG__K_PROCESSING, s->queue);
            bg__key(key, sizeof key, w->ns, BG__K_ATTEMPTS, s->attempt);
            bg__watcher_badkey(w, pkey, key, "hash", "dropping its attempt from processing");
        }
        if (s->gone) {
            double since = s->suspect ? s->suspect->since_ms : now;
            if (s->junk || (s->suspect && now - since >= w->grace_ms)) {
                if (nbatch == 0)
                    bg__finish_args(&a, w->ns);
                bg__outcome rec = {.kind = BG__OUTCOME_VANISH,
                                   .rnd = (int)(rand_r(&w->seed) % BG__RND_SPAN),
                                   .max_itr = w->max_itr,
                                   .guard_wrk = s->wrk,
                                   .guard_rid = s->rid,
                                   .guard_wrk_len = s->wrk_len,
                                   .guard_rid_len = s->rid_len};
                bg__fmt(rec.attempt, sizeof rec.attempt, "%s", s->attempt);
                bg__fmt(rec.queue, sizeof rec.queue, "%s", s->queue);
                bg__fmt(rec.err, sizeof rec.err, "Worker Timeout");
                bg__finish_record(&a, &rec);
                batch[nbatch++] = *s;
            } else {
                suspect(w, s, since, next, nnext);
            }
        }
        if (nbatch == VANISH_BATCH || (nbatch && i + 1 == l->n)) {
            /* A batch Redis refused is logged; the next batch goes all the same. */
            if (send_vanish(w, &a, batch, nbatch, next, nnext) == BG_EIO)
                rc = BG_EIO;
            bg__args_reset(&a);
            nbatch = 0;
        }
    }
    bg__args_free(&a);
    free(batch);
    return rc;
}

/* Reads the client list of the snapshot into live. Without the whole list every attempt would
 * look gone: an error judges none this time. */
static int read_live(bg_watcher *w, const redisReply *snap, bg__census *live) {
    if (w->lease) {
        memset(live, 0, sizeof *live); /* no client list: leases judge */
        return BG_OK;
    }
    const redisReply *list = snap->element[0];
    int rc = list->type == REDIS_REPLY_STRING ? bg__client_census(list->str, list->len, w->ns, live)
                                              : BG_EPROTO;
    if (rc != BG_OK)
        bg__log(&w->log, BG_LOG_ERROR, ROLE, "reading the client list: %s", bg_strerror(rc));
    return rc;
}

int bg__watcher_stale_pass(bg_watcher *w) {
    int acl = 0, rc;
    char run_id[64];
    bg__census live;
    seen_list l = {0};
    redisReply *snap = snapshot(w, &acl);
    if (!snap)
        return acl ? BG_EACL : BG_EIO;
    if ((rc = read_live(w, snap, &live)) != BG_OK) {
        freeReplyObject(snap);
        return rc;
    }
    const redisReply *info = snap->element[head(w) - 1];
    bg__parse_run_id(info->type == REDIS_REPLY_STRING ? info->str : NULL, run_id, sizeof run_id);
    collect(w, snap, &l);
    rc = judge_all(w, snap, &l, &live, run_id);
    w->stale_due_ms = 0;
    struct bg__stale *next = calloc(l.n + 1, sizeof *next);
    size_t nnext = 0;
    if (rc == BG_OK && next)
        rc = fail_vanished(w, &l, next, &nnext);
    if (next)
        qsort(next, nnext, sizeof *next, cmp_stale);
    /* The suspects of the last pass are replaced only now: l and the snapshot point into them. */
    free(w->stale);
    w->stale = next;
    w->nstale = nnext;
    for (size_t i = 0; i < l.n; i++) {
        free(l.all[i].wrk);
        free(l.all[i].rid);
    }
    free(l.all);
    bg__census_free(&live);
    freeReplyObject(snap);
    return rc == BG_EIO ? BG_EIO : BG_OK;
}
