/* fiber_trip.c: a fiber's round trips: each claim and each finish one EVALSHA, the finish of
 * one batch sent in the same round trip as the next claim (docs/claim.md, "One round trip
 * each"), and the hand-back of jobs a fiber will not run. Fiber thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fiber_int.h"

void bg__fiber_free_claimed(bg__claimed *c) {
    free(c->cls);
    free(c->arg);
    free(c->invalid);
    memset(c, 0, sizeof *c);
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
    /* A paused queue is left out of the claim (docs/cli.md#pause-and-resume). */
    bg__args_ll(a, (long long)w->nqueues - f->nskip);
    for (size_t i = 0; i < w->nqueues; i++)
        if (!f->skip[i])
            bg__args_str(a, w->queues[i]);
    bg__fiber_lease_args(f, a); /* the lease's three, between the queues and the UUIDs */
    bg__uuid_fill(f->limbo, (size_t)n);
    for (int i = 0; i < n; i++)
        bg__args_str(a, f->limbo[i]);
}

/* Takes one entry of claim.lua's reply (see its header) into the batch, or logs it. attempt:
 * the UUID a claimed entry has, the next of those the claim sent. Returns 1 for an entry that
 * claimed a job (it took attempt), else 0. */
static int take_entry(bg__fiber *f, const redisReply *e, const char *attempt) {
    const char *kind = e->element[0]->str;
    if (strcmp(kind, "badkey") == 0) {
        const redisReply *k = e->element[1], *what = e->element[2];
        bg__fiber_finding(f, BG_LOG_WARN, k->str, k->len,
                          "key '%s' %s: its queue is skipped until it is repaired", k->str,
                          what->str);
        return 0;
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
        bg__fiber_finding(f, BG_LOG_WARN, rkey,
                          n > 0 && (size_t)n < sizeof rkey ? (size_t)n : sizeof rkey - 1,
                          "dropped '%s'%s (%lld bytes) from ready list '%s': %s", shown,
                          e->element[4]->integer > (long long)strlen(shown) ? "..." : "",
                          e->element[4]->integer, q->str, why->str);
        return 0;
    }
    if (!attempt || f->nbatch >= BG__PREFETCH_MAX)
        return 0; /* cannot happen: the claim asks for at most the free slots */
    bg__claimed *c = &f->batch[f->nbatch];
    memset(c, 0, sizeof *c);
    bg__fmt(c->attempt, sizeof c->attempt, "%s", attempt);
    bg__fmt(c->job, sizeof c->job, "%s", e->element[1]->str);
    bg__fmt(c->queue, sizeof c->queue, "%s", e->element[2]->str);
    if (strcmp(kind, "inv") == 0) {
        c->invalid = bg__strdup(e->element[3]->str);
    } else {
        c->cls = bg__strndup(e->element[3]->str, e->element[3]->len);
        c->arg = bg__strndup(e->element[4]->str, e->element[4]->len);
        c->arg_len = e->element[4]->len;
        c->att = (int)e->element[5]->integer;
        if (!c->cls || !c->arg)
            c->invalid = bg__strdup("out of memory");
    }
    f->nbatch++;
    return 1;
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
                     : strcmp(kind, "inv") == 0  ? 4
                     : strcmp(kind, "ok") == 0   ? 5
                                                 : 0;
    if (!strings || e->elements < strings)
        return 0;
    for (size_t i = 1; i < strings; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    if (strcmp(kind, "drop") == 0)
        return e->elements >= 5 && e->element[4]->type == REDIS_REPLY_INTEGER;
    if (strcmp(kind, "ok") == 0)
        return e->elements >= 6 && e->element[5]->type == REDIS_REPLY_INTEGER;
    return 1;
}

/* Says that an outcome cannot be recorded yet: at most once a minute per broken key, however
 * many attempts wait on it and however often they are sent. */
static void refused(bg__fiber *f, const bg__outcome *p, const char *key, const char *what) {
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

int bg__fiber_fresh_pending(const bg__fiber *f) {
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
        bg__outcome *p = &f->pending[i];
        const char *key = "", *what = "";
        bg__finish_code code = BG__FINISH_ODD;
        if (r->type == REDIS_REPLY_ARRAY && (size_t)i < r->elements)
            code = bg__finish_result(r->element[i], &key, &what);
        /* Recorded: with --min-replicas-ack, kept until the WAIT behind it says replicas hold
         * it (the room was made before the claim: claim_next()). */
        if (code == BG__FINISH_RECORDED && f->unacked &&
            f->nunacked < BG__UNACKED_MAX + BG__PENDING_MAX)
            f->unacked[f->nunacked++] = *p;
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

/* Puts the pending outcomes that go as short records first, the others after, each in their
 * order (the reply comes in the order sent; hand-backs keep theirs, which sets the order of
 * their jobs in the ready list). */
static void short_first(bg__fiber *f) {
    bg__outcome rest[BG__PENDING_MAX];
    int k = 0, nrest = 0;
    for (int i = 0; i < f->npending; i++) {
        if (bg__finish_is_short(&f->pending[i])) {
            if (k != i)
                f->pending[k] = f->pending[i];
            k++;
        } else {
            rest[nrest++] = f->pending[i];
        }
    }
    memcpy(&f->pending[k], rest, (size_t)nrest * sizeof rest[0]);
}

/* Reads the WAIT behind a round trip's scripts (--min-replicas-ack): enough replicas hold
 * everything this connection wrote, so the kept outcomes are safe and a held claim may start;
 * or too few do, said once and then once a minute while it lasts, and nothing is let go.
 * claimed: this round trip claimed the batch. Returns 0, or -1 when the WAIT failed (the
 * connection is to be closed). */
static int replicas_acked(bg__fiber *f, int claimed) {
    const bg_worker *w = f->w;
    long long acked;
    char err[BG__ERRLEN], what[600];
    bg__fmt(what, sizeof what, "fiber %d on %s", f->index, w->url_masked);
    int rc = bg__replicas_reply(&f->conn, &w->replicas, &acked, what, err, sizeof err);
    if (rc == BG_OK) {
        if (f->replicas_short)
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE,
                    "fiber %d: %lld replicas acknowledged again: %d kept outcomes are safe%s",
                    f->index, acked, f->nunacked, f->claim_held ? ", its claimed jobs start" : "");
        f->nunacked = f->claim_held = f->replicas_short = 0;
        return 0;
    }
    if (rc != BG_EREPLICAS) {
        bg__fiber_finding(f, BG_LOG_ERROR, "replicas-error", 14, "%s", err);
        return -1;
    }
    if (claimed && f->nbatch > 0)
        f->claim_held = 1;
    /* The first shortfall of a fiber is always said; then once a minute for the worker. */
    static const char key[] = "replicas-short";
    unsigned long more = 0;
    int say = !f->replicas_short;
    if (bg__ratelimit_allow(&f->w->findings, key, sizeof key - 1, &more) || say)
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE,
                "%s; %d recorded outcomes are kept and sent again until replicas hold them%s", err,
                f->nunacked,
                f->claim_held ? ", and the jobs just claimed wait for them before they start" : "");
    f->replicas_short = 1;
    return 0;
}

int bg__fiber_round_trip(bg__fiber *f, int claim) {
    bg__args fa, ca;
    int taken = 0, nfinish = f->npending, ok = 1;
    int wait = f->w->replicas.min_ack > 0 && (nfinish || claim || f->nunacked || f->claim_held);
    if (bg__fiber_connect_loop(f) != BG_OK)
        return -1;
    /* A lost claim's jobs go back before anything else is sent. */
    if (bg__fiber_settle_limbo(f) != BG_OK)
        return -1;
    bg__fiber_rename(f);
    bg__args_init(&fa);
    bg__args_init(&ca);
    if (nfinish) {
        short_first(f);
        bg__finish_batch(&fa, f->w->ns, f->pending, nfinish);
        bg__conn_append_eval(&f->conn, BG__LUA_FINISH, 0, &fa);
    }
    if (claim) {
        /* Read before the claim runs: a cancel of one of its attempts can only come after. */
        f->claim_gen = atomic_load(&f->w->cancels.gen);
        claim_args(f, &ca, claim);
        bg__conn_append_eval(&f->conn, BG__LUA_CLAIM, 0, &ca);
    }
    /* In the same round trip: WAIT covers every write this connection made before it. */
    if (wait)
        bg__replicas_append(&f->conn, &f->w->replicas);
    if (claim)
        f->nlimbo = claim;
    if (nfinish) {
        redisReply *r = bg__conn_eval_reply(&f->conn, BG__LUA_FINISH, 0, &fa);
        if (!r) {
            ok = 0;
        } else if (r->type == REDIS_REPLY_ERROR) {
            bg__fiber_finding(f, BG_LOG_ERROR, "finish-error", 12, "recording outcomes failed: %s",
                              r->str);
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
            bg__fiber_finding(f, BG_LOG_ERROR, "claim-error", 11, "claiming jobs failed: %s",
                              r->str);
            ok = 0;
        } else if (r) {
            int used = 0; /* attempt UUIDs of limbo the claimed entries took, in order */
            f->nlimbo = 0;
            for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
                const redisReply *e = r->element[i];
                if (!well_formed(e))
                    continue;
                used += take_entry(f, e, used < claim ? f->limbo[used] : NULL);
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
    if (wait && ok && bg__conn_ok(&f->conn) && replicas_acked(f, claim > 0) != 0)
        ok = 0;
    /* After a script error our view of Redis is unsure: start afresh on a new connection. */
    if (!ok)
        bg__conn_close(&f->conn);
    bg__args_free(&fa);
    bg__args_free(&ca);
    return ok ? taken : -1;
}

/* Queues the hand-back of batch[first..] (jobs not started) as 'unclaim' outcomes: attempt
 * deleted, job at the head of its ready list, att down by one (docs/claim.md). A job that cannot
 * run is failed as it would be when its turn came, rather than put back for another claim to find
 * the same fault (and a job key that is not a hash has nothing to put back). */
void bg__fiber_unclaim_from(bg__fiber *f, int first) {
    /* finish.lua LPUSHes one by one: queue the outcomes last-first so the jobs keep their
     * order at the head of the list. */
    for (int i = f->nbatch - 1; i >= first && f->npending < BG__PENDING_MAX; i--) {
        if (!f->batch[i].lost) {
            bg__outcome *p = &f->pending[f->npending++];
            memset(p, 0, sizeof *p);
            bg__fmt(p->attempt, sizeof p->attempt, "%s", f->batch[i].attempt);
            bg__fmt(p->queue, sizeof p->queue, "%s", f->batch[i].queue);
            p->kind = BG__OUTCOME_UNCLAIM;
            if (f->batch[i].invalid) {
                bg__outcome_set(p, BG__OUTCOME_DEAD, "InvalidJob", f->batch[i].invalid);
                bg__fmt(p->time, sizeof p->time, "0.000");
            }
        }
        bg__fiber_free_claimed(&f->batch[i]);
    }
    f->nbatch = first;
}

void bg__fiber_tend_batch(bg__fiber *f, double running_ms) {
    if (!bg__conn_ok(&f->conn))
        return;
    int back = (bg__fiber_want_exit(f->w) || bg__fiber_paused(f->w)) && f->pos + 1 < f->nbatch;
    /* batch[pos] runs now; what is behind it goes back at once, not when it ends. */
    if (back)
        bg__fiber_unclaim_from(f, f->pos + 1);
    /* The outcomes of the batch's jobs that ran before it are recorded now, so their fin is
     * when they ended and a worker that dies meanwhile does not take them along. */
    if (back || (bg__fiber_fresh_pending(f) && running_ms >= BG__SLOW_JOB_MS))
        bg__fiber_round_trip(f, 0);
}
