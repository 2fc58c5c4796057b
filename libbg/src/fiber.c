/* fiber.c: one fiber's loop: claim jobs (several at once when many wait), run them, and record
 * their outcomes, each claim and each finish one round trip, the finish of one batch sent in
 * the same round trip as the next claim (docs/claim.md). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

static int want_exit(const bg_worker *w) {
    return atomic_load(&w->req_halt) || atomic_load(&w->stopping);
}

static int paused(const bg_worker *w) {
    return atomic_load(&w->quiet);
}

static unsigned long long current_gen(bg_worker *w) {
    pthread_mutex_lock(&w->mu);
    unsigned long long g = w->gen;
    pthread_mutex_unlock(&w->mu);
    return g;
}

static void free_claimed(bg__claimed *c) {
    free(c->cls);
    free(c->arg);
    free(c->invalid);
    memset(c, 0, sizeof *c);
}

static void fiber_name(const bg__fiber *f, long long main_id, char *buf, size_t len) {
    char role[64];
    bg__fmt(role, sizeof role, "worker-fiber:%lld", main_id);
    bg__client_name(buf, len, f->w->ns, role);
}

/* ---- building script calls ---- */

static void finish_record(bg__args *a, const char *attempt, const char *queue, const char *outcome,
                          const char *time, const char *err, const char *msg, int rnd) {
    bg__finish_rec rec = {attempt, queue, outcome, time, err, msg, rnd, NULL, NULL, 0};
    bg__finish_record(a, &rec);
}

static void claim_args(bg__fiber *f, bg__args *a, int n) {
    const bg_worker *w = f->w;
    char rid[BG__RID_LEN + 1];
    static const bg__key_kind prefixes[] = {BG__K_JOBS,  BG__K_ATTEMPTS,  BG__K_PROCESSING,
                                            BG__K_READY, BG__K_COMPLETED, BG__K_FAILED,
                                            BG__K_DEAD,  BG__K_SCHEDULED, BG__K_STATS};
    bg__fmt(rid, sizeof rid, "%s", f->conn.run_id);
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        bg__args_str(a, w->key_prefix[prefixes[i]]);
    bg__args_ll(a, f->conn.id);
    bg__args_str(a, rid);
    bg__args_ll(a, w->retries);
    bg__args_ll(a, BG__ARG_MAX);
    bg__args_ll(a, BG__CLAIM_BYTES);
    bg__args_ll(a, (long long)w->nqueues);
    for (size_t i = 0; i < w->nqueues; i++)
        bg__args_str(a, w->queues[i]);
    bg__uuid_fill(f->limbo, (size_t)n);
    for (int i = 0; i < n; i++)
        bg__args_str(a, f->limbo[i]);
}

/* Logs a finding (bad data in Redis, a script that keeps failing) at most once a minute per
 * key, so that whatever rate it is met at, the log stays bounded. */
static void finding(bg__fiber *f, bg_log_level level, const char *key, size_t keylen,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void finding(bg__fiber *f, bg_log_level level, const char *key, size_t keylen,
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

/* A claim whose reply was lost (the connection dropped or timed out, or the script failed) may
 * have run: hand back whatever it took, so those jobs are not left in processing for a watcher
 * to fail. Its attempt UUIDs are ours: read which exist and their queue, then unclaim those,
 * last first so the jobs keep their order at the head of their lists. Returns BG_OK once
 * nothing is in limbo; otherwise the connection is closed and the fiber tries again after
 * reconnecting. */
static int settle_limbo(bg__fiber *f) {
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
                finish_record(&fa, f->limbo[i], queue[i], "unclaim", "", "", "", 0);
        redisReply *r = bg__conn_eval(&f->conn, BG__LUA_FINISH, 0, &fa);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                finding(f, BG_LOG_ERROR, "unclaim-error", 13,
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

/* ---- connection ---- */

/* A result whose call was cut off with its connection may have been recorded all the same: Redis
 * ran the call and only the reply was lost (a pause longer than the socket timeout, a
 * connection killed in between). Its attempt has then left processing because of this fiber,
 * not a watcher. A worker's record gives the attempt a fin (a hand-back deletes it); a watcher's
 * gives it none. Returns 1 when the outcome is recorded as the fiber's own. */
static int recorded_already(bg__fiber *f, const bg__result *p) {
    char key[256];
    bg__fmt(key, sizeof key, "%s%s", f->w->key_prefix[BG__K_ATTEMPTS], p->attempt);
    const char *argv[] = {"HMGET", key, "fin", "err"};
    redisReply *r = bg__conn_cmd(&f->conn, 4, argv, NULL);
    int ours = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               (r->element[0]->type == REDIS_REPLY_STRING ||
                (r->element[1]->type == REDIS_REPLY_NIL && strcmp(p->outcome, "unclaim") == 0));
    if (r)
        freeReplyObject(r);
    return ours;
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
    int rc = bg__worker_connect_fiber(f->w, &f->conn, name);
    if (rc != BG_OK) {
        bg__log(&f->w->log, BG_LOG_DEBUG, BG__ROLE, "fiber %d: %s", f->index, f->conn.err);
        return rc;
    }
    f->named_for = main_id;
    reown(f);
    settle_limbo(f);
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
    const char *argv[] = {"CLIENT", "SETNAME", name};
    redisReply *r = bg__conn_cmd(&f->conn, 3, argv, NULL);
    if (r && r->type != REDIS_REPLY_ERROR)
        f->named_for = main_id;
    if (r)
        freeReplyObject(r);
}

/* Reconnects with capped exponential backoff until connected or told to give up. Called with
 * conn_mu held; releases it while sleeping so the main thread is never kept waiting. */
static int connect_loop(bg__fiber *f) {
    double delay = 10;
    while (!atomic_load(&f->w->req_halt)) {
        if (bg__fiber_reconnect(f) == BG_OK)
            return BG_OK;
        if (atomic_load(&f->w->cutoff))
            return BG_EIO;
        /* Stopping with nothing to record or hand back: no reason to wait for Redis. */
        if (want_exit(f->w) && f->npending == 0 && f->pos >= f->nbatch && f->nlimbo == 0)
            return BG_EIO;
        pthread_mutex_unlock(&f->conn_mu);
        bg__sleep_ms(delay);
        pthread_mutex_lock(&f->conn_mu);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
    return BG_EIO;
}

/* ---- claim and finish ---- */

/* Takes one entry of claim.lua's reply (see its header) into the batch, or logs it. */
static void take_entry(bg__fiber *f, const redisReply *e) {
    const char *kind = e->element[0]->str;
    if (strcmp(kind, "badkey") == 0) {
        const redisReply *k = e->element[1], *what = e->element[2];
        finding(f, BG_LOG_WARN, k->str, k->len,
                "key '%s' %s: its queue is skipped until it is repaired", k->str, what->str);
        return;
    }
    if (strcmp(kind, "drop") == 0 && e->elements >= 5) {
        /* One line per list and reason a minute: a flood of junk cannot flood the log. */
        char rkey[512], shown[101];
        const redisReply *q = e->element[2], *why = e->element[3];
        int n = snprintf(rkey, sizeof rkey, "drop:%s:%s", q->str, why->str);
        size_t len = bg__utf8_cut(e->element[1]->str,
                                  strnlen(e->element[1]->str, e->element[1]->len), 100, shown);
        for (size_t i = 0; i < len; i++) /* junk with a newline must not forge a log line */
            if ((unsigned char)shown[i] < 0x20 || shown[i] == 0x7f)
                shown[i] = '?';
        finding(f, BG_LOG_WARN, rkey,
                n > 0 && (size_t)n < sizeof rkey ? (size_t)n : sizeof rkey - 1,
                "dropped '%s'%s (%lld bytes) from ready list '%s': %s", shown,
                e->element[4]->integer > (long long)strlen(shown) ? "..." : "",
                e->element[4]->integer, q->str, why->str);
        return;
    }
    if (f->nbatch >= BG__PREFETCH_MAX)
        return; /* cannot happen: the claim asks for at most the free slots */
    bg__claimed *c = &f->batch[f->nbatch];
    memset(c, 0, sizeof *c);
    bg__fmt(c->attempt, sizeof c->attempt, "%s", e->element[1]->str);
    bg__fmt(c->job, sizeof c->job, "%s", e->element[2]->str);
    bg__fmt(c->queue, sizeof c->queue, "%s", e->element[3]->str);
    if (strcmp(kind, "inv") == 0 && e->elements >= 5) {
        c->invalid = bg__strdup(e->element[4]->str);
    } else if (strcmp(kind, "ok") == 0 && e->elements >= 8) {
        c->cls = bg__strndup(e->element[4]->str, e->element[4]->len);
        c->arg = bg__strndup(e->element[5]->str, e->element[5]->len);
        c->arg_len = e->element[5]->len;
        c->att = (int)e->element[6]->integer;
        if (!c->cls || !c->arg)
            c->invalid = bg__strdup("out of memory");
    } else {
        return;
    }
    f->nbatch++;
}

/* Whether e is an entry of claim.lua's reply as its header gives them: a kind, then strings,
 * the drop's last element an integer. Anything else is ignored. */
static int well_formed(const redisReply *e) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    const char *kind = e->element[0]->str;
    size_t strings = strcmp(kind, "badkey") == 0 ? 3
                     : strcmp(kind, "drop") == 0 ? 4
                     : strcmp(kind, "inv") == 0  ? 5
                     : strcmp(kind, "ok") == 0   ? 6
                                                 : 0;
    if (!strings || e->elements < strings)
        return 0;
    for (size_t i = 1; i < strings; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    if (strcmp(kind, "drop") == 0)
        return e->elements >= 5 && e->element[4]->type == REDIS_REPLY_INTEGER;
    if (strcmp(kind, "ok") == 0)
        return e->elements >= 8 && e->element[6]->type == REDIS_REPLY_INTEGER;
    return 1;
}

/* Says that an outcome cannot be recorded yet: at most once a minute per broken key, however
 * many attempts wait on it and however often they are sent. */
static void refused(bg__fiber *f, const bg__result *p, const char *key, const char *what) {
    unsigned long more = 0;
    size_t len = strlen(key);
    /* A jps slot key changes every 100 ms: the limit is per queue, NS:jps:<q>:. */
    const char *jps = f->w->key_prefix[BG__K_JPS];
    if (strncmp(key, jps, strlen(jps)) == 0 && strrchr(key, ':') > key + strlen(jps))
        len = (size_t)(strrchr(key, ':') - key) + 1;
    if (!bg__ratelimit_allow(&f->w->findings, key, len, &more))
        return;
    bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
            "[%s] cannot record its outcome: %s: %s; the attempt stays processing, and its "
            "outcome is sent again until the key is repaired (%lu more since the last report)",
            p->attempt, key, what, more);
}

/* Outcomes held that Redis has not refused yet: those worth a round trip of their own. */
static int fresh_pending(const bg__fiber *f) {
    int n = 0;
    for (int i = 0; i < f->npending; i++)
        n += !f->pending[i].refused;
    return n;
}

/* Handles finish.lua's reply: drops pending results that were recorded, warns about those whose
 * attempt was no longer processing, and keeps those it refused (a key of the wrong type), to be
 * sent again with the next round trips. */
static void finished(bg__fiber *f, redisReply *r) {
    int keep = 0;
    for (int i = 0; i < f->npending; i++) {
        bg__result *p = &f->pending[i];
        const char *key = "", *what = "";
        bg__finish_code code = BG__FINISH_ODD;
        if (r->type == REDIS_REPLY_ARRAY && (size_t)i < r->elements)
            code = bg__finish_result(r->element[i], &key, &what);
        if (code == BG__FINISH_REFUSED) {
            refused(f, p, key, what);
            p->refused = 1;
            if (keep != i)
                f->pending[keep] = *p;
            keep++;
        } else if (code == BG__FINISH_SKIPPED && *key) {
            static const char kind[] = "attempt key of another type";
            unsigned long more = 0;
            if (bg__ratelimit_allow(&f->w->findings, kind, sizeof kind - 1, &more))
                bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                        "[%s] not an attempt any more: %s is %s; dropped from processing, its "
                        "result is lost (%lu more since the last report)",
                        p->attempt, key, what, more);
        } else if (code == BG__FINISH_SKIPPED) {
            bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                    "[%s] attempt was failed by a watcher meanwhile; its result is dropped",
                    p->attempt);
        }
    }
    f->npending = keep;
}

/* One round trip: records pending outcomes and, when claim > 0, claims up to that many jobs.
 * Returns the number of strings the claim took off ready lists (jobs and dropped junk), or -1
 * when the connection failed (outcomes stay pending, to be re-owned and sent again). */
static int round_trip(bg__fiber *f, int claim) {
    bg__args fa, ca;
    int taken = 0, nfinish = f->npending, ok = 1;
    if (connect_loop(f) != BG_OK)
        return -1;
    /* A lost claim's jobs go back before anything else is sent. */
    if (settle_limbo(f) != BG_OK)
        return -1;
    bg__fiber_rename(f);
    bg__args_init(&fa);
    bg__args_init(&ca);
    if (nfinish) {
        bg__finish_args(&fa, f->w->ns);
        for (int i = 0; i < nfinish; i++) {
            const bg__result *p = &f->pending[i];
            finish_record(&fa, p->attempt, p->queue, p->outcome, p->time, p->err, p->msg, p->rnd);
        }
        bg__conn_append_eval(&f->conn, BG__LUA_FINISH, 0, &fa);
    }
    if (claim) {
        claim_args(f, &ca, claim);
        bg__conn_append_eval(&f->conn, BG__LUA_CLAIM, 0, &ca);
    }
    if (claim)
        f->nlimbo = claim;
    if (nfinish) {
        redisReply *r = bg__conn_eval_reply(&f->conn, BG__LUA_FINISH, 0, &fa);
        if (!r) {
            ok = 0;
        } else if (r->type == REDIS_REPLY_ERROR) {
            finding(f, BG_LOG_ERROR, "finish-error", 12, "recording outcomes failed: %s", r->str);
            ok = 0;
        } else {
            finished(f, r);
        }
        if (r)
            freeReplyObject(r);
    }
    if (claim && bg__conn_ok(&f->conn)) {
        redisReply *r = bg__conn_eval_reply(&f->conn, BG__LUA_CLAIM, 0, &ca);
        if (r && r->type == REDIS_REPLY_ERROR) {
            /* claim.lua checks before it writes, so an error should mean nothing was taken;
             * whatever was is handed back from limbo after reconnecting. */
            finding(f, BG_LOG_ERROR, "claim-error", 11, "claiming jobs failed: %s", r->str);
            ok = 0;
        } else if (r) {
            f->nlimbo = 0;
            for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
                const redisReply *e = r->element[i];
                if (!well_formed(e))
                    continue;
                take_entry(f, e);
                if (strcmp(e->element[0]->str, "badkey") != 0)
                    taken++;
            }
        } else {
            /* The reply was lost: the claim may have run. Reconnect at once and settle it,
             * rather than wait for news of work as after an empty claim. */
            ok = 0;
        }
        if (r)
            freeReplyObject(r);
    }
    /* After a script error our view of Redis is unsure: start afresh on a new connection. */
    if (!ok)
        bg__conn_close(&f->conn);
    bg__args_free(&fa);
    bg__args_free(&ca);
    return ok ? taken : -1;
}

/* Queues the hand-back of batch[first..] (jobs not started) as 'unclaim' outcomes: attempt
 * deleted, job at the head of its ready list, att down by one (SPEC §6). A job that cannot run
 * is failed as it would be when its turn came, rather than put back for another claim to find
 * the same fault (and a job key that is not a hash has nothing to put back). */
static void unclaim_from(bg__fiber *f, int first) {
    /* finish.lua LPUSHes one by one: queue the outcomes last-first so the jobs keep their
     * order at the head of the list. */
    for (int i = f->nbatch - 1; i >= first && f->npending < BG__PENDING_MAX; i--) {
        if (!f->batch[i].lost) {
            bg__result *p = &f->pending[f->npending++];
            memset(p, 0, sizeof *p);
            bg__fmt(p->attempt, sizeof p->attempt, "%s", f->batch[i].attempt);
            bg__fmt(p->queue, sizeof p->queue, "%s", f->batch[i].queue);
            p->outcome = "unclaim";
            if (f->batch[i].invalid) {
                p->outcome = "dead";
                bg__fmt(p->err, sizeof p->err, "InvalidJob");
                bg__fmt(p->msg, sizeof p->msg, "%s", f->batch[i].invalid);
                bg__fmt(p->time, sizeof p->time, "0.000");
            }
        }
        free_claimed(&f->batch[i]);
    }
    f->nbatch = first;
}

/* Hands back every claimed job that has not started. */
static void unclaim(bg__fiber *f) {
    unclaim_from(f, f->pos);
    f->pos = f->nbatch = 0;
}

void bg__fiber_tend_batch(bg__fiber *f, double running_ms) {
    if (!bg__conn_ok(&f->conn))
        return;
    int back = (want_exit(f->w) || paused(f->w)) && f->pos + 1 < f->nbatch;
    /* batch[pos] runs now; what is behind it goes back at once, not when it ends. */
    if (back)
        unclaim_from(f, f->pos + 1);
    /* The outcomes of the batch's jobs that ran before it are recorded now, so their fin is
     * when they ended and a worker that dies meanwhile does not take them along. */
    if (back || (fresh_pending(f) && running_ms >= BG__SLOW_JOB_MS))
        round_trip(f, 0);
}

/* Waits for news of ready jobs (generation gen0 passed), a change of state, or a second. */
static void wait_for_work(bg_worker *w, unsigned long long gen0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_mutex_lock(&w->mu);
    while (w->gen == gen0 && !want_exit(w) && !atomic_load(&w->req_halt))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&w->mu);
}

/* Runs batch[pos] and queues its outcome. */
static double run_one(bg__fiber *f) {
    bg__claimed *c = &f->batch[f->pos];
    bg__outcome out;
    double t0 = bg__mono_ms();
    memset(&out, 0, sizeof out);
    if (c->lost) {
        out.outcome = NULL;
    } else if (c->invalid) {
        out.outcome = "dead";
        bg__fmt(out.err, sizeof out.err, "InvalidJob");
        bg__fmt(out.msg, sizeof out.msg, "%s", c->invalid);
        bg__fmt(out.time, sizeof out.time, "0.000");
    } else {
        bg_job job = {c->job, c->attempt, c->cls, c->queue, c->arg, c->arg_len, c->att, &f->cancel};
        bg__dispatch(f, &job, &out);
    }
    double took = bg__mono_ms() - t0;

    pthread_mutex_lock(&f->conn_mu);
    if (c->lost) {
        bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                "[%s] attempt was failed by a watcher meanwhile; its result is dropped",
                c->attempt);
    } else {
        bg__result *p = &f->pending[f->npending++];
        memset(p, 0, sizeof *p);
        bg__fmt(p->attempt, sizeof p->attempt, "%s", c->attempt);
        bg__fmt(p->queue, sizeof p->queue, "%s", c->queue);
        p->outcome = out.outcome;
        bg__fmt(p->time, sizeof p->time, "%s", out.time);
        bg__fmt(p->err, sizeof p->err, "%s", out.err);
        bg__fmt(p->msg, sizeof p->msg, "%s", out.msg);
        p->rnd = (int)(rand_r(&f->seed) % 10);
        /* The log shows two decimals, as SPEC §10's example; the attempt keeps three. */
        double ms = strtod(out.time, NULL);
        if (strcmp(out.outcome, "ok") == 0)
            bg__log(&f->w->log, BG_LOG_DEBUG, BG__ROLE, "[%s] Completed %s in %.2f ms", c->attempt,
                    c->cls, ms);
        else
            bg__log(&f->w->log, BG_LOG_INFO, BG__ROLE, "[%s] Failed %s in %.2f ms: %s: %s",
                    c->attempt, c->cls ? c->cls : "(invalid job)", ms, out.err, out.msg);
    }
    free_claimed(c);
    f->pos++;
    pthread_mutex_unlock(&f->conn_mu);
    return took;
}

/* Flushes outcomes, and hands back a lost claim's jobs, until done or the worker gives up on
 * Redis (a second signal, or the shutdown timeout). Outcomes Redis refuses (a key of the wrong
 * type) are tried again, ever less often, until the shutdown cut-off when the worker stops, and
 * left for the next round trip otherwise (a quiet fiber). */
static void flush(bg__fiber *f) {
    double delay = 50;
    while ((f->npending || f->nlimbo) && !atomic_load(&f->w->req_halt)) {
        int before = f->npending + f->nlimbo;
        int rc = round_trip(f, 0);
        if (rc >= 0 && f->npending + f->nlimbo < before)
            continue;
        if (rc >= 0 && !f->nlimbo && !fresh_pending(f)) {
            /* Only refused outcomes are left. */
            if (!want_exit(f->w))
                return;
            if (atomic_load(&f->w->cutoff)) {
                for (int i = 0; i < f->npending; i++)
                    bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                            "[%s] exiting with its outcome unrecorded (a key of the wrong type): "
                            "the attempt stays processing, for a watcher to fail",
                            f->pending[i].attempt);
                return;
            }
        } else if (atomic_load(&f->w->cutoff)) {
            break;
        }
        pthread_mutex_unlock(&f->conn_mu);
        bg__sleep_ms(delay);
        pthread_mutex_lock(&f->conn_mu);
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

void *bg__fiber_main(void *arg) {
    bg__fiber *f = arg;
    bg_worker *w = f->w;
    int slow = 0;
    double backoff = 50; /* after a failed claim; doubles while claims keep failing */
    f->prefetch = 1;
    pthread_mutex_lock(&f->conn_mu);
    while (!atomic_load(&w->req_halt)) {
        if (want_exit(w) || paused(w)) {
            unclaim(f);
            flush(f);
            if (want_exit(w))
                break;
            pthread_mutex_unlock(&f->conn_mu);
            wait_for_work(w, current_gen(w));
            pthread_mutex_lock(&f->conn_mu);
            continue;
        }
        if (f->pos < f->nbatch) {
            pthread_mutex_unlock(&f->conn_mu);
            /* Prefetch grows only while jobs take under a millisecond. After a slow job the
             * rest of its batch goes back to its lists, so jobs do not wait behind one another,
             * and the slow job's outcome is recorded at once, with the next claim. */
            double took = run_one(f);
            pthread_mutex_lock(&f->conn_mu);
            if (took > 1.0)
                slow = 1;
            if (took >= BG__SLOW_JOB_MS)
                unclaim(f);
            continue;
        }
        unsigned long long gen0 = current_gen(w);
        if (slow)
            f->prefetch = 1;
        int want = f->prefetch;
        /* Outcomes Redis refused take room: claim no more than the fiber can hold outcomes for. */
        int room = BG__PREFETCH_MAX;
        for (int i = 0; i < f->npending; i++)
            room -= f->pending[i].refused;
        if (room <= 0) {
            round_trip(f, 0);
            pthread_mutex_unlock(&f->conn_mu);
            bg__sleep_ms(200);
            pthread_mutex_lock(&f->conn_mu);
            continue;
        }
        want = want > room ? room : want;
        f->pos = f->nbatch = 0;
        int got = round_trip(f, want);
        if (got < 0) {
            /* After a failed claim (an error, a lost reply) the next asks for one job. */
            f->prefetch = 1;
            pthread_mutex_unlock(&f->conn_mu);
            bg__sleep_ms(backoff);
            pthread_mutex_lock(&f->conn_mu);
            /* A claim that fails every time (a reply Redis will not send, a script error)
             * must not turn into a busy loop of connections: at most one a second. */
            backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
            continue;
        }
        backoff = 50;
        if (!slow && f->nbatch == want && want < BG__PREFETCH_MAX)
            f->prefetch = want * 2 > BG__PREFETCH_MAX ? BG__PREFETCH_MAX : want * 2;
        slow = 0;
        if (got == 0) {
            pthread_mutex_unlock(&f->conn_mu);
            wait_for_work(w, gen0);
            pthread_mutex_lock(&f->conn_mu);
        }
    }
    unclaim(f);
    flush(f);
    bg__conn_close(&f->conn);
    pthread_mutex_unlock(&f->conn_mu);
    atomic_store(&f->exited, 1);
    return NULL;
}
