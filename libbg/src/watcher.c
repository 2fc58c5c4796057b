/* watcher.c: the watcher loop (docs/watcher.md): every interval it fails the attempts of vanished
 * workers, trims history and refreshes its queue list; between intervals it moves due
 * scheduled jobs to ready the moment they are due, woken early by Redis when a scheduled set
 * changes. Every step is an atomic script that re-checks its condition, so any number of
 * watchers may run at once. */
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "watcher_int.h"

#define CONNECT_TIMEOUT_MS 3000
#define SCHEDULE_BATCH 1000
#define TRIM_BATCH 500
#define BG__TRIM_BUDGET_MS 50 /* trimming per interval, at most, so Redis is never held long */

void bg_watcher_options_init(bg_watcher_options *o) {
    memset(o, 0, sizeof *o);
    o->interval_ms = 1000;
    o->grace_ms = 2000;
    o->max_interruptions = 3;
    o->retain_completed_ms = 3600e3;
    o->retain_failed_ms = 7 * 86400e3;
    o->retain_dead_ms = 180 * 86400e3;
    o->log.level = BG_LOG_INFO;
}

static int fail(char *errbuf, size_t errlen, int code, const char *msg) {
    bg__fmt(errbuf, errlen, "%s", msg);
    return code;
}

/* The index of queue q (of length len) in w->queues, or -1. */
static long find_queue(const bg_watcher *w, const char *q, size_t len) {
    for (size_t i = 0; i < w->nqueues; i++)
        if (strncmp(w->queues[i], q, len) == 0 && w->queues[i][len] == '\0')
            return (long)i;
    return -1;
}

static int add_queue(bg_watcher *w, const char *q) {
    if (find_queue(w, q, strlen(q)) >= 0 || !bg_queue_valid(q))
        return 0;
    char **l = realloc(w->queues, (w->nqueues + 1) * sizeof *l);
    if (!l)
        return 0;
    w->queues = l;
    double *d = realloc(w->due, (w->nqueues + 1) * sizeof *d);
    if (!d)
        return 0;
    w->due = d;
    if ((l[w->nqueues] = bg__strdup(q)) == NULL)
        return 0;
    d[w->nqueues++] = 0; /* look at it at once */
    return 1;
}

/* Checks the options before anything is made. BG_OK or BG_EINVAL with a message. */
static int check_options(const bg_watcher_options *o, const char *ns, char *errbuf, size_t errlen) {
    if (!bg_namespace_valid(ns))
        return fail(errbuf, errlen, BG_EINVAL, "invalid namespace: 1 to 64 of A-Z a-z 0-9 _ . -");
    if (!(o->interval_ms > 0) || o->grace_ms < 0 || o->max_interruptions < 1 ||
        o->retain_completed_ms < 0 || o->retain_failed_ms < 0 || o->retain_dead_ms < 0 ||
        (o->liveness != BG_LIVENESS_CLIENTID && o->liveness != BG_LIVENESS_LEASE))
        return fail(errbuf, errlen, BG_EINVAL,
                    "the interval must be positive, max interruptions at least 1, and the "
                    "grace and retention not negative, and liveness clientid or lease");
    if (o->nqueues && !o->queues)
        return fail(errbuf, errlen, BG_EINVAL, "queues counted but not given");
    bg__replicas r;
    if (bg__replicas_init(&r, &o->replicas, errbuf, errlen) != BG_OK)
        return BG_EINVAL;
    for (size_t i = 0; i < o->nqueues; i++) {
        if (bg_queue_valid(o->queues[i]))
            continue;
        bg__fmt(errbuf, errlen, "invalid queue name '%s': 1 to %d of A-Z a-z 0-9 _ . -",
                o->queues[i] ? o->queues[i] : "", BG_QUEUE_MAX);
        return BG_EINVAL;
    }
    return BG_OK;
}

int bg_watcher_new(bg_watcher **out, const bg_watcher_options *opts, char *errbuf, size_t errlen) {
    bg_watcher_options defaults;
    char masked[512];
    errlen = bg__errbuf_init(errbuf, errlen);
    if (!out)
        return BG_EINVAL;
    *out = NULL;
    bg_watcher_options_init(&defaults);
    const bg_watcher_options *o = opts ? opts : &defaults;
    const char *ns = o->ns ? o->ns : BG_DEFAULT_NAMESPACE;
    if (check_options(o, ns, errbuf, errlen) != BG_OK)
        return BG_EINVAL;
    bg_watcher *w = calloc(1, sizeof *w);
    if (!w)
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    /* Before anything can fail: bg_watcher_free() destroys it. */
    bg__ratelimit_init(&w->rl, BG__RATELIMIT_MS);
    /* Watchers started together must not draw the same backoffs. */
    w->seed = (unsigned)getpid() ^ (unsigned)bg__wall_ms() ^ (unsigned)(uintptr_t)w;
    const char *url = o->url ? o->url : BG_DEFAULT_URL;
    int rc = bg__url_parse_tls(url, &o->tls, &w->url, errbuf, errlen);
    w->ns = bg__strdup(ns);
    w->url_masked = bg__strdup(bg_url_mask(url, masked, sizeof masked));
    if (rc == BG_OK && (!w->ns || !w->url_masked))
        rc = fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == BG_OK && i < o->nqueues; i++)
        add_queue(w, o->queues[i]);
    if (rc != BG_OK) {
        bg_watcher_free(w);
        return rc;
    }
    w->fixed_queues = o->nqueues > 0;
    w->interval_ms = o->interval_ms;
    w->grace_ms = o->grace_ms;
    w->lease = o->liveness == BG_LIVENESS_LEASE;
    w->url.hello = w->lease;
    w->max_itr = o->max_interruptions;
    w->retain_ms[0] = o->retain_completed_ms;
    w->retain_ms[1] = o->retain_failed_ms;
    w->retain_ms[2] = o->retain_dead_ms;
    bg__replicas_init(&w->replicas, &o->replicas, NULL, 0);
    w->log = o->log;
    w->events = o->events;
    w->conn.id = w->sub.conn.id = -1;
    for (int k = 0; k < BG__K_COUNT; k++)
        bg__key(w->key_prefix[k], sizeof w->key_prefix[k], w->ns, (bg__key_kind)k, "");
    *out = w;
    return BG_OK;
}

void bg_watcher_stop(bg_watcher *w) {
    atomic_store(&w->stop, 1);
}

void bg_watcher_hangup(bg_watcher *w) {
    atomic_fetch_add(&w->hangups, 1);
}

/* Says a hangup was heard, from the loop: a signal handler may not log. */
static void heard_hangups(bg_watcher *w) {
    if (atomic_exchange(&w->hangups, 0) > 0)
        bg__log(&w->log, BG_LOG_INFO, ROLE, "SIGHUP ignored");
}

void bg_watcher_free(bg_watcher *w) {
    if (!w)
        return;
    bg__conn_close(&w->conn);
    bg__conn_close(&w->sub.conn);
    bg__sentinel_watch_close(&w->sw);
    bg__ratelimit_destroy(&w->rl);
    bg__url_clear(&w->url);
    free(w->url_masked);
    free(w->ns);
    bg__free_names(w->queues, w->nqueues);
    free(w->due);
    free(w->stale);
    free(w);
}

void bg__watcher_badkey(bg_watcher *w, const char *limit_key, const char *key, const char *want,
                        const char *then) {
    unsigned long missed = 0;
    char is[48] = "is not", more[64] = "";
    if (!bg__ratelimit_allow(&w->rl, limit_key, strlen(limit_key), &missed))
        return;
    /* Naming the type helps the operator who repairs it; an ACL that refuses TYPE only makes
     * the line vaguer. */
    const char *argv[] = {"TYPE", key};
    redisReply *r = bg__conn_cmd(&w->conn, 2, argv, NULL);
    if (r && r->type == REDIS_REPLY_STATUS && r->len < 32)
        bg__fmt(is, sizeof is, "is a %s,", r->str);
    if (r)
        freeReplyObject(r);
    if (missed)
        bg__fmt(more, sizeof more, " (%lu more times since it was last said)", missed);
    bg__log(&w->log, BG_LOG_WARN, ROLE, "%s %s not a %s: %s%s", key, is, want, then, more);
}

/* ---- connections ---- */

static void saw_key(void *ud, const char *key, size_t len);

/* What to do where CLIENT is refused (docs/operations.md#liveness). */
#define LEASE_HINT " (where CLIENT is forbidden, run workers and watchers with --liveness lease)"

/* BG_OK when Redis gives the watcher CLIENT LIST; else BG_EACL (or BG_EIO) with a message: without
 * the client list no attempt can be judged by client ID. */
static int check_client_list(bg_watcher *w) {
    const char *argv[] = {"CLIENT", "LIST"};
    redisReply *r = bg__conn_cmd(&w->conn, 2, argv, NULL);
    if (!r)
        return BG_EIO;
    /* Any refusal, an ACL's or not. */
    int refused = r->type == REDIS_REPLY_ERROR;
    if (refused)
        bg__reply_error(&w->conn, r, w->conn.err, sizeof w->conn.err, "Redis refused CLIENT LIST%s",
                        LEASE_HINT);
    freeReplyObject(r);
    return refused ? BG_EACL : BG_OK;
}

static int connect_all(bg_watcher *w) {
    char name[128];
    bg__client_name(name, sizeof name, w->ns, ROLE);
    int rc = bg__conn_open(&w->conn, &w->url, w->url_masked, name, CONNECT_TIMEOUT_MS);
    if (rc == BG_EACL && !w->lease)
        bg__fmt(w->conn.err + strlen(w->conn.err), sizeof w->conn.err - strlen(w->conn.err), "%s",
                LEASE_HINT);
    if (rc != BG_OK)
        return rc;
    bg__conn_set_timeout(&w->conn, bg__replicas_socket_timeout(&w->replicas, CONNECT_TIMEOUT_MS));
    /* Fail at once, with a clear message, when an ACL forbids the client list; judging by
     * leases needs none. */
    if (!w->lease && (rc = check_client_list(w)) != BG_OK)
        return rc;
    if (bg__conn_open(&w->sub.conn, &w->url, w->url_masked, name, CONNECT_TIMEOUT_MS) != BG_OK)
        return BG_EIO;
    w->sub.on_key = saw_key;
    w->sub.ud = w;
    if (bg__notify_subscribe(&w->sub) != BG_OK)
        return BG_EIO;
    const char *prefix[] = {w->key_prefix[BG__K_SCHEDULED]};
    if (bg__notify_track(&w->conn, w->sub.conn.id, prefix, 1, 1) == BG_EACL)
        bg__log(&w->log, BG_LOG_WARN, ROLE, "%s: scheduled jobs are looked at every interval only",
                w->conn.err);
    return bg__conn_ok(&w->conn) ? BG_OK : BG_EIO;
}

/* Keeps both connections up: logs a loss once, retries with capped backoff. Returns 1 when
 * connected, 0 when not (yet), or a negative error when an ACL forbids the watcher's work. */
static int ensure_connected(bg_watcher *w) {
    double now = bg__mono_ms();
    if (bg__conn_ok(&w->conn) && bg__conn_ok(&w->sub.conn))
        return 1;
    if (w->up) {
        /* docs/operations.md#logs: a lost connection is said once, at Info; so is its return. */
        w->up = 0;
        w->down_logged = 1;
        bg__log(&w->log, BG_LOG_INFO, ROLE, "lost the connection to Redis at %s%s", w->url_masked,
                w->sub.hung ? ": it stopped answering" : "");
        bg__event(&w->events, BG_EVENT_STATUS, "lost the connection to Redis at %s", w->url_masked);
        w->sub.hung = 0;
        w->next_try_ms = now;
    }
    bg__conn_close(&w->conn);
    bg__conn_close(&w->sub.conn);
    if (now < w->next_try_ms)
        return 0;
    int rc = connect_all(w);
    if (rc == BG_EACL || rc == BG_EREDIS || rc == BG_ENOMASTER)
        return rc;
    if (rc != BG_OK) {
        if (!w->down_logged) {
            const char *why = w->conn.err[0] ? w->conn.err : w->sub.conn.err;
            bg__log(&w->log, BG_LOG_WARN, ROLE, "no connection to Redis at %s: %s", w->url_masked,
                    why);
            bg__event(&w->events, BG_EVENT_STATUS, "no connection to Redis at %s: %s",
                      w->url_masked, why);
        }
        w->down_logged = 1;
        w->delay_ms = w->delay_ms < 10 ? 10 : (w->delay_ms * 2 > 1000 ? 1000 : w->delay_ms * 2);
        w->next_try_ms = now + w->delay_ms;
        bg__conn_close(&w->conn);
        bg__conn_close(&w->sub.conn);
        return 0;
    }
    if (w->down_logged)
        bg__log(&w->log, BG_LOG_INFO, ROLE, "%s to Redis at %s",
                w->ever_up ? "reconnected" : "connected", w->url_masked);
    w->down_logged = 0;
    w->up = w->ever_up = 1;
    if (!w->told_ready) {
        w->told_ready = 1;
        bg__event(&w->events, BG_EVENT_READY, NULL);
    }
    bg__event(&w->events, BG_EVENT_STATUS, "watching %s of namespace %s at %s",
              w->fixed_queues ? "its queues" : "every queue", w->ns, w->url_masked);
    w->delay_ms = 10;
    /* Reports sent while the connections were down are lost, and the server may be another
     * one: look at every scheduled set, and for queues, at once. */
    for (size_t i = 0; i < w->nqueues; i++)
        w->due[i] = 0;
    w->scan.next_ms = 0;
    return 1;
}

/* ---- queues ---- */

static int learn_queue(void *ud, const char *q) {
    return add_queue(ud, q);
}

/* A scheduled set changed (a tracking report): a producer that wrote a delayed job into a
 * queue no program knows yet is heard at once, not at the next SCAN a minute later. */
static void saw_key(void *ud, const char *key, size_t len) {
    bg_watcher *w = ud;
    const char *p = w->key_prefix[BG__K_SCHEDULED];
    size_t n = strlen(p);
    long i = len > n && strncmp(key, p, n) == 0 ? find_queue(w, key + n, len - n) : -1;
    if (i >= 0)
        w->due[i] = 0; /* its scheduled set changed: look at it again */
    else if (!w->fixed_queues)
        bg__queue_note_key(&w->conn, w->ns, key, len, learn_queue, w);
}

/* Re-reads NS:queues, and goes on with the SCAN for queues only foreign producers wrote. */
static void refresh_queues(bg_watcher *w) {
    char **names;
    size_t n;
    const char *argv[] = {"SMEMBERS", w->key_prefix[BG__K_QUEUES]};
    redisReply *r = bg__conn_cmd(&w->conn, 2, argv, NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && bg__queue_names(r, &names, &n) == BG_OK) {
        for (size_t i = 0; i < n; i++)
            add_queue(w, names[i]);
        bg__free_names(names, n);
    }
    /* Another program's key where the set of queues should be: the SCAN still finds every
     * queue with a key, once a minute. */
    int broken = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0;
    freeReplyObject(r);
    if (broken)
        bg__watcher_badkey(w, w->key_prefix[BG__K_QUEUES], w->key_prefix[BG__K_QUEUES], "set",
                           "finding queues by SCAN");
    bg__queue_scan_step(&w->conn, w->ns, &w->scan, learn_queue, w);
}

/* ---- due scheduled jobs ---- */

/* Moves every due job to ready. Returns how many ms until the next job is due (-1: none is
 * scheduled), or -2 when the connection failed. */
static double schedule_pass(bg_watcher *w) {
    double wait = -1;
    char sched[256], ready[256];
    /* The server's clock now, from the last reply that told it: no queue whose next job is
     * known to be due later, or that has none, costs a script call. */
    double now_est = w->srv_ms + (bg__mono_ms() - w->srv_mono_ms);
    for (size_t i = 0; i < w->nqueues && bg__conn_ok(&w->conn); i++) {
        if (w->due[i] < 0)
            continue;
        if (w->due[i] > 0 && w->due[i] > now_est) {
            double d = w->due[i] - now_est;
            wait = wait < 0 || d < wait ? d : wait;
            continue;
        }
        bg__key(sched, sizeof sched, w->ns, BG__K_SCHEDULED, w->queues[i]);
        bg__key(ready, sizeof ready, w->ns, BG__K_READY, w->queues[i]);
        const char *argv[] = {sched, ready, "1000"};
        for (;;) {
            redisReply *r = bg__conn_eval_strs(&w->conn, BG__LUA_SCHEDULE, 0, 3, argv);
            if (!r)
                return -2;
            long long moved = 0, next = -1, now = 0;
            const char *key, *what;
            if (bg__script_refused(r, &key, &what)) {
                /* Nothing moved: a key it would write holds another type. Logged once a
                 * minute per key; looked at again next interval. */
                unsigned long more = 0;
                if (bg__ratelimit_allow(&w->rl, key, strlen(key), &more))
                    bg__log(&w->log, BG_LOG_WARN, ROLE,
                            "cannot move due jobs of %s: %s: %s; nothing moved, tried again "
                            "each interval (%lu more since the last report)",
                            w->queues[i], key, what, more);
                w->due[i] = -1;
            } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                       r->element[0]->type == REDIS_REPLY_INTEGER) {
                moved = r->element[0]->integer;
                if (moved > 0)
                    w->unsynced = 1;
                bg__parse_ll(r->element[1]->str, r->element[1]->len, &next);
                bg__parse_ll(r->element[2]->str, r->element[2]->len, &now);
                w->srv_ms = (double)now;
                w->srv_mono_ms = bg__mono_ms();
                w->due[i] = next >= 0 ? (double)(next > 0 ? next : 1) : -1;
            } else {
                /* Nothing moved (the script checks before it writes); say so once a minute per
                 * queue, so one broken queue neither floods the log nor hides another. */
                if (bg__ratelimit_allow(&w->rl, sched, strlen(sched), NULL))
                    bg__log(&w->log, BG_LOG_ERROR, ROLE, "moving due jobs of %s: %s", w->queues[i],
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
                w->due[i] = -1; /* until the next interval */
            }
            freeReplyObject(r);
            if (moved)
                bg__log(&w->log, BG_LOG_DEBUG, ROLE, "%lld due jobs of %s to ready", moved,
                        w->queues[i]);
            if (moved < SCHEDULE_BATCH) {
                if (next >= 0) {
                    double d = next > now ? (double)(next - now) : 0;
                    wait = wait < 0 || d < wait ? d : wait;
                }
                break;
            }
        }
    }
    return bg__conn_ok(&w->conn) ? wait : -2;
}

/* ---- the loop ---- */

static long long server_ms(bg_watcher *w) {
    const char *argv[] = {"TIME"};
    redisReply *r = bg__conn_cmd(&w->conn, 1, argv, NULL);
    long long ms = -1, s, us;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        bg__parse_ll(r->element[0]->str, r->element[0]->len, &s) == 0 &&
        bg__parse_ll(r->element[1]->str, r->element[1]->len, &us) == 0)
        ms = s * 1000 + us / 1000;
    if (r)
        freeReplyObject(r);
    return ms;
}

/* Waits for the replicas to hold what this connection wrote (--min-replicas-ack). Too few is
 * said once, then once a minute while it lasts, and loses nothing: every step of the watcher
 * re-checks its condition, so a step a failover loses is done again by the next pass. */
static void replicas_pass(bg_watcher *w) {
    long long acked;
    char err[BG__ERRLEN], what[600];
    w->unsynced = 0;
    if (w->replicas.min_ack <= 0 || !bg__conn_ok(&w->conn))
        return;
    bg__fmt(what, sizeof what, "the watcher's writes on %s", w->url_masked);
    int rc = bg__replicas_append(&w->conn, &w->replicas);
    if (rc == BG_OK)
        rc = bg__replicas_reply(&w->conn, &w->replicas, &acked, what, err, sizeof err);
    else
        bg__fmt(err, sizeof err, "%s: %s", what, w->conn.err);
    if (rc == BG_OK) {
        if (w->replicas_short)
            bg__log(&w->log, BG_LOG_INFO, ROLE, "replicas acknowledge the watcher's writes again");
        w->replicas_short = 0;
        return;
    }
    unsigned long more = 0;
    static const char key[] = "replicas";
    if (!w->replicas_short || bg__ratelimit_allow(&w->rl, key, sizeof key - 1, &more))
        bg__log(&w->log, BG_LOG_WARN, ROLE,
                "%s; what a failover loses of them is done again by a later pass", err);
    if (!w->replicas_short)
        bg__ratelimit_allow(&w->rl, key, sizeof key - 1, &more);
    w->replicas_short = 1;
}

/* What runs once an interval. Returns BG_OK, or BG_EACL when the watcher may not work. */
static int interval_pass(bg_watcher *w) {
    if (!w->fixed_queues)
        refresh_queues(w);
    /* Every scheduled set is looked at once an interval whatever the reports said: they are
     * not there without CLIENT TRACKING, and a connection lost meanwhile loses some. */
    for (size_t i = 0; i < w->nqueues; i++)
        w->due[i] = 0;
    int rc = bg__watcher_stale_pass(w);
    if (rc == BG_EACL)
        return rc;
    long long now = server_ms(w);
    if (now > 0) {
        bg__watcher_trim_pass(w, now);
        replicas_pass(w);
        /* Redis answered this interval: a watchdog may be fed. */
        bg__event(&w->events, BG_EVENT_HEALTHY, NULL);
    }
    return BG_OK;
}

/* Sleeps until wait_ms passed, a scheduled set changed, or a stop was asked for. */
static void nap(bg_watcher *w, double wait_ms) {
    double until = bg__mono_ms() + wait_ms;
    while (!atomic_load(&w->stop)) {
        heard_hangups(w);
        double left = until - bg__mono_ms();
        if (left <= 0)
            return;
        int slice = left > 100 ? 100 : (int)ceil(left);
        if (bg__sentinel_watch_poll(&w->sw, &w->url, &w->log, ROLE)) {
            bg__conn_close(&w->conn); /* both reconnect, to the new primary */
            bg__conn_close(&w->sub.conn);
            return;
        }
        if (!bg__conn_ok(&w->sub.conn)) {
            /* No report can come: just sleep (Redis is down, or the watcher reconnects). */
            poll(NULL, 0, slice);
            continue;
        }
        if (bg__notify_wait(&w->sub, slice) != 0)
            return; /* news, or the connection went: either way look again now */
    }
}

const char *bg_watcher_errmsg(const bg_watcher *w) {
    return w ? w->err : "no watcher";
}

int bg_watcher_run(bg_watcher *w) {
    double next_interval = 0;
    w->err[0] = '\0';
    bg__log(&w->log, BG_LOG_INFO, ROLE,
            "started: namespace %s, Redis %s, interval %.3f s, grace %.3f s", w->ns, w->url_masked,
            w->interval_ms / 1000, w->grace_ms / 1000);
    bg__log(&w->log, BG_LOG_INFO, ROLE, "%s",
            w->lease ? "liveness lease: an attempt's worker is gone when its lease (lse) expired; "
                       "attempts without a lease are reported, never failed"
                     : "liveness clientid: an attempt's worker is gone when its connection (wrk) "
                       "left CLIENT LIST; attempts with a lease and no client ID are reported, "
                       "never failed");
    while (!atomic_load(&w->stop)) {
        heard_hangups(w);
        int up = ensure_connected(w);
        if (up < 0) {
            bg__fmt(w->err, sizeof w->err, "%s", w->conn.err);
            return up;
        }
        if (!up) {
            nap(w, 20);
            continue;
        }
        if (bg__mono_ms() >= next_interval) {
            next_interval = bg__mono_ms() + w->interval_ms;
            if (interval_pass(w) == BG_EACL) {
                bg__fmt(w->err, sizeof w->err, "%s", w->conn.err);
                return BG_EACL;
            }
            /* Look again the moment a suspect's grace ends, not up to an interval later: a
             * vanished worker's attempts fail within grace + interval of its death. */
            if (w->stale_due_ms > 0 && w->stale_due_ms < next_interval)
                next_interval = w->stale_due_ms;
        }
        /* History that grows faster than one trim pass an interval removes (a busy queue at
         * full speed) is trimmed between intervals too, half the time at most, so memory stays
         * flat under load; each script call is still one short batch. */
        if (w->trim_behind && bg__mono_ms() >= w->next_trim_ms) {
            long long now = server_ms(w);
            if (now > 0)
                bg__watcher_trim_pass(w, now);
            w->next_trim_ms = bg__mono_ms() + BG__TRIM_BUDGET_MS;
        }
        double due = schedule_pass(w);
        if (due == -2)
            continue;
        if (w->unsynced)
            replicas_pass(w);
        double wait = next_interval - bg__mono_ms();
        if (due >= 0 && due < wait)
            wait = due;
        if (w->trim_behind && w->next_trim_ms - bg__mono_ms() < wait)
            wait = w->next_trim_ms - bg__mono_ms();
        nap(w, wait);
    }
    bg__event(&w->events, BG_EVENT_STOPPING, NULL);
    bg__log(&w->log, BG_LOG_INFO, ROLE, "stopped");
    return 0;
}
