/* fiber_conn.c: a fiber's connection, and what it owns in Redis across a drop: connecting
 * under its fiber name, re-owning its attempts after a reconnect, handing back the jobs of a
 * claim whose reply was lost (its limbo), renaming after the main connection's ID changed
 * (docs/claim.md, "When a fiber's connection drops"). Fiber thread only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fiber_int.h"

static void fiber_name(const bg__fiber *f, long long main_id, char *buf, size_t len) {
    char role[64];
    bg__fmt(role, sizeof role, "worker-fiber:%lld", main_id);
    bg__client_name(buf, len, f->w->ns, role);
}

void bg__fiber_finding(bg__fiber *f, bg_log_level level, const char *key, size_t keylen,
                       const char *fmt, ...) {
    char line[1024];
    unsigned long more = 0;
    va_list ap;
    if (!bg__log_enabled(&f->w->log, level) ||
        !bg__ratelimit_allow(&f->w->findings, key, keylen, &more))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (more)
        bg__log(&f->w->log, level, BG__ROLE, "%s (and %lu more times since last said)", line, more);
    else
        bg__log(&f->w->log, level, BG__ROLE, "%s", line);
}

static void unclaim_record(bg__args *a, const char *attempt, const char *queue) {
    bg__outcome o;
    memset(&o, 0, sizeof o);
    o.kind = BG__OUTCOME_UNCLAIM;
    bg__fmt(o.attempt, sizeof o.attempt, "%s", attempt);
    bg__fmt(o.queue, sizeof o.queue, "%s", queue);
    bg__finish_record(a, &o);
}

/* A claim whose reply was lost (the connection dropped or timed out, or the script failed) may
 * have run: hand back whatever it took, so those jobs are not left in processing for a watcher
 * to fail. Its attempt UUIDs are ours: read which exist and their queue, then unclaim those,
 * last first so the jobs keep their order at the head of their lists. Returns BG_OK once
 * nothing is in limbo; otherwise the connection is closed and the fiber tries again after
 * reconnecting. */
int bg__fiber_settle_limbo(bg__fiber *f) {
    bg__args a, fa;
    int rc = BG_OK, found = 0;
    char *queue[BG__PREFETCH_MAX] = {NULL};
    if (!f->nlimbo)
        return BG_OK;
    if (!bg__conn_ok(&f->conn))
        return BG_EIO;
    bg__args_init(&a);
    for (int i = 0; i < f->nlimbo; i++) {
        const char *argv[3] = {"HGET", NULL, "que"};
        bg__args_reset(&a);
        char key[sizeof f->w->key_prefix[0] + BG_UUID_LEN + 1];
        bg__fmt(key, sizeof key, "%s%s", f->w->key_prefix[BG__K_ATTEMPTS], f->limbo[i]);
        bg__args_str(&a, key);
        argv[1] = a.argv[0];
        bg__conn_append(&f->conn, 3, argv, NULL);
    }
    bg__args_free(&a);
    for (int i = 0; i < f->nlimbo; i++) {
        redisReply *r = bg__conn_reply(&f->conn);
        if (!r) {
            rc = BG_EIO;
            break;
        }
        if (r->type == REDIS_REPLY_STRING) {
            if (!(queue[i] = bg__strndup(r->str, r->len)))
                rc = BG_ENOMEM;
            found++;
        }
        freeReplyObject(r);
    }
    if (rc == BG_OK && found) {
        bg__args_init(&fa);
        bg__finish_args(&fa, f->w->ns);
        for (int i = f->nlimbo - 1; i >= 0; i--)
            if (queue[i])
                unclaim_record(&fa, f->limbo[i], queue[i]);
        redisReply *r = bg__conn_eval(&f->conn, BG__LUA_FINISH, 0, &fa);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                bg__fiber_finding(f, BG_LOG_ERROR, "unclaim-error", 13,
                                  "handing back the jobs of a lost claim failed: %s", r->str);
            rc = BG_EIO;
        }
        if (r)
            freeReplyObject(r);
        bg__args_free(&fa);
    }
    for (int i = 0; i < f->nlimbo; i++)
        free(queue[i]);
    if (rc == BG_OK)
        f->nlimbo = 0;
    else
        bg__conn_close(&f->conn);
    return rc;
}

/* A result whose call was cut off with its connection may have been recorded all the same: Redis
 * ran the call and only the reply was lost (a pause longer than the socket timeout, a
 * connection killed in between). Its attempt has then left processing because of this fiber,
 * not a watcher. A worker's record gives the attempt a fin (a hand-back deletes it); a watcher's
 * gives it none. Returns 1 when the outcome is recorded as the fiber's own. */
static int recorded_already(bg__fiber *f, const bg__outcome *p) {
    char key[256];
    bg__fmt(key, sizeof key, "%s%s", f->w->key_prefix[BG__K_ATTEMPTS], p->attempt);
    const char *argv[] = {"HMGET", key, "fin", "err"};
    redisReply *r = bg__conn_cmd(&f->conn, 4, argv, NULL);
    int ours = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               (r->element[0]->type == REDIS_REPLY_STRING ||
                (r->element[1]->type == REDIS_REPLY_NIL && p->kind == BG__OUTCOME_UNCLAIM));
    if (r)
        freeReplyObject(r);
    return ours;
}

void bg__fiber_resync(bg__fiber *f) {
    bg__args a;
    if (!f->nunacked)
        return;
    bg__args_init(&a);
    bg__args_str(&a, f->w->key_prefix[BG__K_ATTEMPTS]);
    bg__args_str(&a, f->w->key_prefix[BG__K_PROCESSING]);
    for (int i = 0; i < f->nunacked; i++) {
        bg__args_str(&a, f->unacked[i].attempt);
        bg__args_str(&a, f->unacked[i].queue);
    }
    redisReply *r = a.oom ? NULL : bg__conn_eval(&f->conn, BG__LUA_TOUCH, 0, &a);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)f->nunacked) {
        int keep = 0, again = 0;
        for (int i = 0; i < f->nunacked; i++) {
            const redisReply *e = r->element[i];
            /* Lost with the server that recorded it: sent again (re-owned first, below). */
            if (e->type == REDIS_REPLY_INTEGER && e->integer == 0 &&
                f->npending < BG__PENDING_MAX) {
                f->pending[f->npending] = f->unacked[i];
                f->pending[f->npending++].refused = 0;
                again++;
            } else {
                f->unacked[keep++] = f->unacked[i];
            }
        }
        f->nunacked = keep;
        if (again)
            bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                    "fiber %d: %d outcomes recorded before the connection was lost are not on "
                    "this server (a failover lost them): sending them again",
                    f->index, again);
    } else if (r) {
        bg__fiber_finding(f, BG_LOG_ERROR, "touch-error", 11,
                          "checking outcomes too few replicas acknowledged failed: %s",
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    if (r)
        freeReplyObject(r);
    bg__args_free(&a);
}

static void reown(bg__fiber *f) {
    bg__args a;
    int n = 0;
    char rid[BG__RID_LEN + 1];
    bg__fmt(rid, sizeof rid, "%s", f->conn.run_id);
    bg__args_init(&a);
    bg__args_str(&a, f->w->key_prefix[BG__K_ATTEMPTS]);
    bg__args_str(&a, f->w->key_prefix[BG__K_PROCESSING]);
    bg__args_ll(&a, f->conn.id);
    bg__args_str(&a, rid);
    bg__fiber_lease_args(f, &a);
    for (int i = 0; i < f->npending; i++, n++) {
        bg__args_str(&a, f->pending[i].attempt);
        bg__args_str(&a, f->pending[i].queue);
    }
    for (int i = f->pos; i < f->nbatch; i++, n++) {
        bg__args_str(&a, f->batch[i].attempt);
        bg__args_str(&a, f->batch[i].queue);
    }
    if (n == 0 || a.oom) {
        bg__args_free(&a);
        return;
    }
    redisReply *r = bg__conn_eval(&f->conn, BG__LUA_REOWN, 0, &a);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n) {
        int k = 0, keep = 0;
        f->lease_at_ms = bg__mono_ms();
        const char *key, *what;
        /* 2: its processing set holds another type, nothing was touched: the attempt is still
         * the fiber's (no watcher can read it there either), so it is kept as it is. */
        for (int i = 0; i < f->npending; i++, k++) {
            bg__finish_code code = bg__finish_result(r->element[k], &key, &what);
            if (code == BG__FINISH_RECORDED || code == BG__FINISH_REFUSED) {
                if (keep != i)
                    f->pending[keep] = f->pending[i];
                keep++;
            } else if (*key) {
                bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                        "[%s] not an attempt any more: %s: %s; dropping its result",
                        f->pending[i].attempt, key, what);
            } else if (recorded_already(f, &f->pending[i])) {
                bg__log(&f->w->log, BG_LOG_DEBUG, BG__ROLE,
                        "[%s] outcome was recorded before the connection was lost",
                        f->pending[i].attempt);
            } else {
                bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                        "[%s] attempt was failed by a watcher while the connection was down; "
                        "dropping its result",
                        f->pending[i].attempt);
            }
        }
        f->npending = keep;
        for (int i = f->pos; i < f->nbatch; i++, k++) {
            bg__finish_code code = bg__finish_result(r->element[k], &key, &what);
            if (code != BG__FINISH_RECORDED && code != BG__FINISH_REFUSED)
                f->batch[i].lost = 1;
        }
    }
    if (r)
        freeReplyObject(r);
    bg__args_free(&a);
}

int bg__fiber_reconnect(bg__fiber *f) {
    char name[128];
    if (bg__conn_ok(&f->conn))
        return BG_OK;
    long long main_id = atomic_load(&f->w->main_id);
    if (main_id <= 0)
        return BG_EIO;
    fiber_name(f, main_id, name, sizeof name);
    int rc = bg__conn_open(&f->conn, &f->w->url, f->w->url_masked, name, BG__CONNECT_TIMEOUT_MS);
    if (rc == BG_OK)
        bg__conn_set_timeout(&f->conn,
                             bg__replicas_socket_timeout(&f->w->replicas, BG__FIBER_TIMEOUT_MS));
    if (rc != BG_OK) {
        bg__log(&f->w->log, BG_LOG_DEBUG, BG__ROLE, "fiber %d: %s", f->index, f->conn.err);
        return rc;
    }
    f->named_for = main_id;
    bg__fiber_resync(f);
    reown(f);
    bg__fiber_settle_limbo(f);
    if (!bg__conn_ok(&f->conn))
        return BG_EIO;
    bg__log(&f->w->log, BG_LOG_DEBUG, BG__ROLE, "fiber %d connected as client %lld", f->index,
            f->conn.id);
    return BG_OK;
}

void bg__fiber_rename(bg__fiber *f) {
    char name[128];
    long long main_id = atomic_load(&f->w->main_id);
    if (main_id <= 0 || main_id == f->named_for || !bg__conn_ok(&f->conn))
        return;
    fiber_name(f, main_id, name, sizeof name);
    /* HELLO where the worker may send no CLIENT command (docs/operations.md#liveness). */
    const char *argv[] = {"CLIENT", "SETNAME", name}, *hello[] = {"HELLO", "2", "SETNAME", name};
    redisReply *r = f->w->url.hello ? bg__conn_cmd(&f->conn, 4, hello, NULL)
                                    : bg__conn_cmd(&f->conn, 3, argv, NULL);
    if (r && r->type != REDIS_REPLY_ERROR)
        f->named_for = main_id;
    if (r)
        freeReplyObject(r);
}

int bg__fiber_connect_loop(bg__fiber *f) {
    double delay = BG__REDIAL_MS;
    while (!atomic_load(&f->w->req_halt)) {
        if (bg__fiber_reconnect(f) == BG_OK)
            return BG_OK;
        if (atomic_load(&f->w->cutoff))
            return BG_EIO;
        /* Stopping with nothing to record or hand back: no reason to wait for Redis. */
        if (bg__fiber_want_exit(f->w) && f->npending == 0 && f->pos >= f->nbatch &&
            f->nlimbo == 0 && f->nunacked == 0)
            return BG_EIO;
        bg__sleep_ms(delay);
        delay = bg__backoff(delay);
    }
    return BG_EIO;
}

int bg__fiber_read_paused(bg__fiber *f) {
    bg_worker *w = f->w;
    unsigned gen = atomic_load(&w->paused_gen);
    if (f->paused_read && gen == f->paused_seen)
        return BG_OK;
    if (bg__fiber_connect_loop(f) != BG_OK)
        return BG_EIO;
    const char *argv[] = {"SMEMBERS", w->key_prefix[BG__K_PAUSED]};
    redisReply *r = bg__conn_cmd(&f->conn, 2, argv, NULL);
    if (!r)
        return BG_EIO;
    memset(f->skip, 0, w->nqueues);
    f->nskip = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            for (size_t q = 0; q < w->nqueues; q++)
                if (r->element[i]->type == REDIS_REPLY_STRING && !f->skip[q] &&
                    strcmp(r->element[i]->str, w->queues[q]) == 0) {
                    f->skip[q] = 1;
                    f->nskip++;
                }
    } else {
        const char *key = w->key_prefix[BG__K_PAUSED];
        bg__fiber_finding(f, BG_LOG_WARN, key, strlen(key),
                          "key '%s' cannot be read (%s): no queue counts as paused", key,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    f->paused_seen = gen;
    f->paused_read = 1;
    return BG_OK;
}
