/* trim.c: the watcher's retention pass: completed, failed and dead history older than its
 * retention, and beyond the caps of docs/watcher.md, deleted oldest first by trim.lua in
 * bounded batches within a time budget. */
#include <string.h>

#include "watcher_int.h"

#define TRIM_BATCH 500

void bg__watcher_trim_pass(bg_watcher *w, long long now_ms) {
    static const struct {
        bg__key_kind kind;
        const char *mode;
        const char *cap;
    } sets[3] = {{BG__K_COMPLETED, "completed", "100000"},
                 {BG__K_FAILED, "failed", "100000"},
                 {BG__K_DEAD, "dead", "10000"}};
    char key[256], cutoff[32], batch[16];
    double until = bg__mono_ms() + BG__TRIM_BUDGET_MS;
    bg__fmt(batch, sizeof batch, "%d", TRIM_BATCH);
    /* Start after the queue where the last pass ran out of time, so one busy queue cannot
     * starve the others. */
    w->trim_behind = 0;
    for (size_t i = 0; i < w->nqueues; i++) {
        size_t q = (w->trim_next + i) % w->nqueues;
        for (int s = 0; s < 3; s++) {
            bg__key(key, sizeof key, w->ns, sets[s].kind, w->queues[q]);
            bg__fmt(cutoff, sizeof cutoff, "%lld", now_ms - (long long)w->retain_ms[s]);
            const char *argv[] = {key,
                                  sets[s].mode,
                                  w->key_prefix[BG__K_ATTEMPTS],
                                  w->key_prefix[BG__K_JOBS],
                                  cutoff,
                                  sets[s].cap,
                                  batch};
            long long n;
            do {
                if (bg__mono_ms() > until || !bg__conn_ok(&w->conn)) {
                    w->trim_next = (q + 1) % w->nqueues;
                    w->trim_behind = 1;
                    return;
                }
                redisReply *r = bg__conn_eval_strs(&w->conn, BG__LUA_TRIM, 0, 7, argv);
                n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
                const char *bad, *what;
                unsigned long more = 0;
                if (bg__script_refused(r, &bad, &what) &&
                    bg__ratelimit_allow(&w->rl, bad, strlen(bad), &more))
                    bg__log(&w->log, BG_LOG_WARN, ROLE,
                            "cannot trim %s of %s: %s: %s; nothing deleted (%lu more since the "
                            "last report)",
                            sets[s].mode, w->queues[q], bad, what, more);
                else if (r && r->type == REDIS_REPLY_ERROR &&
                         bg__ratelimit_allow(&w->rl, key, strlen(key), NULL))
                    bg__log(&w->log, BG_LOG_ERROR, ROLE, "trimming %s: %s", key, r->str);
                if (r)
                    freeReplyObject(r);
                if (n)
                    bg__log(&w->log, BG_LOG_DEBUG, ROLE, "trimmed %lld %s of %s", n, sets[s].mode,
                            w->queues[q]);
            } while (n == TRIM_BATCH);
        }
    }
}
