/* watcher_int.h: the watcher's state, shared by watcher.c (the loop, connections, queues, due
 * jobs, trimming) and stale.c (attempts of vanished workers). */
#ifndef BG_WATCHER_INT_H
#define BG_WATCHER_INT_H

#include <stdatomic.h>

#include "bg_int.h"

#define ROLE "watcher"

/* Trimming per call of bg__watcher_trim_pass(), at most, so Redis is never held long. */
#define BG__TRIM_BUDGET_MS 50

struct bg_watcher {
    char *ns;
    char *url_masked;
    bg__url url;
    char **queues; /* the queues to watch now */
    double *due;   /* per queue: the server ms its next job is due, 0 to look, -1 none */
    size_t nqueues;
    int fixed_queues; /* given by the caller: never refreshed */
    double interval_ms, grace_ms;
    int lease; /* liveness by leases (lse), not CLIENT LIST (docs/operations.md#liveness) */
    int max_itr;
    double retain_ms[3];   /* completed, failed, dead */
    bg__replicas replicas; /* WAIT after each pass's writes (replicas.c) */
    int replicas_short;    /* the last WAIT had too few acknowledgements */
    int unsynced;          /* due jobs moved since the last WAIT */
    bg_logger log;
    bg_events events;
    int told_ready; /* BG_EVENT_READY was sent */
    char key_prefix[BG__K_COUNT][96];
    atomic_int stop;
    char err[BG__ERRLEN]; /* why bg_watcher_run() returned an error */

    bg__conn conn; /* commands and scripts; tracks NS:scheduled: for sub */
    bg__notify sub;
    bg__sentinel_watch sw; /* for a redis-sentinel:// URL: the primary's moves */
    int down_logged;
    int up, ever_up; /* both connections were up at the last look; ever */
    double next_try_ms, delay_ms;
    bg__queue_scan scan;     /* for queues only foreign producers wrote */
    struct bg__stale *stale; /* attempts seen stale, sorted by attempt ID */
    size_t nstale;
    double stale_due_ms;        /* when the first of them is past its grace; 0 when none */
    double srv_ms, srv_mono_ms; /* the server's clock, and when it said so */
    size_t trim_next;           /* the queue the next trim pass starts with */
    int trim_behind;            /* the last trim pass ran out of time */
    double next_trim_ms;        /* when a trim pass may run again between intervals */
    int unread_logged;          /* an attempt's owner could not be read, and that was logged */
    unsigned seed;              /* for the retry backoff's random part (rand_r: no shared state) */
    bg__ratelimit rl;           /* findings about broken keys, each said once a minute at most */
    atomic_int hangups;         /* SIGHUPs not logged yet */
};

/* An attempt whose worker connection was not alive, and since when this watcher knows. */
struct bg__stale {
    char attempt[BG_UUID_LEN + 1];
    double since_ms;
    char lse[BG_UUID_LEN + 1]; /* with leases: the lease found expired, read again in the MULTI */
};

/* Says, at most once a minute per limit_key, that key holds another type than want (a TYPE
 * names it) and what the watcher does about it ("then"). Sends a command: call it only with no
 * reply pending on w->conn. */
void bg__watcher_badkey(bg_watcher *w, const char *limit_key, const char *key, const char *want,
                        const char *then);

/* Fails the attempts whose worker connection has been gone for longer than the grace
 * (docs/watcher.md#what-it-does), and sets w->stale_due_ms for those still within it. Returns
 * BG_OK, BG_EIO when the connection failed, BG_EACL when an ACL forbids the work (message in
 * w->conn.err). */
int bg__watcher_stale_pass(bg_watcher *w);

/* Trims completed, failed and dead history older than its retention, and beyond the caps of
 * docs/watcher.md, oldest first, in bounded batches within BG__TRIM_BUDGET_MS; a pass that runs
 * out of time sets w->trim_behind and w->trim_next, where the next one starts. now_ms is the
 * server's clock. */
void bg__watcher_trim_pass(bg_watcher *w, long long now_ms);

#endif
