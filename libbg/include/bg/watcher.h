/* bg/watcher.h: the watcher loop (docs/watcher.md): due scheduled jobs to ready, attempts of
 * vanished workers failed and retried, history trimmed. Any number may run at once, in one
 * process or many.
 *
 * Errors follow bg/error.h: bg_watcher_new() writes its message into the caller's errbuf,
 * bg_watcher_run() leaves its message in bg_watcher_errmsg().
 *
 * Threads: bg_watcher_run() runs the loop on the calling thread and starts none of its own; the
 * logger is called on that thread. bg_watcher_stop() and bg_watcher_hangup() may be called
 * from any thread or a signal handler; every other call needs a watcher that is not running. */
#ifndef BG_WATCHER_H
#define BG_WATCHER_H

#include <stddef.h>

#include "bg/client.h"
#include "bg/export.h"

/* A watcher: its options, its two connections, what it knows of the queues. Opaque. */
typedef struct bg_watcher bg_watcher;

/* Options for bg_watcher_new(). Initialise with bg_watcher_options_init(). Strings and the
 * queue array are copied. Durations are in milliseconds, as every duration of the API. */
typedef struct {
    const char *url;           /* NULL: BG_DEFAULT_URL */
    const char *ns;            /* NULL: BG_DEFAULT_NAMESPACE */
    const char *const *queues; /* NULL or 0 queues: every queue known in the namespace */
    size_t nqueues;
    double interval_ms;         /* default 1000; must be above 0 */
    double grace_ms;            /* default 2000 */
    int max_interruptions;      /* default 3; at least 1 */
    double retain_completed_ms; /* default 1 h; 0 keeps none */
    double retain_failed_ms;    /* default 7 d */
    double retain_dead_ms;      /* default 180 d */
    bg_logger log;
    bg_events events;     /* READY once connected, HEALTHY after each interval's pass, STATUS when
                             the connection goes or comes back, STOPPING when bg_watcher_run() ends */
    bg_tls_options tls;   /* for a rediss:// URL (bg/client.h) */
    bg_liveness liveness; /* how a vanished worker is told: BG_LIVENESS_CLIENTID (the default)
                             or BG_LIVENESS_LEASE (bg/client.h) */
    /* Each pass's writes wait for replicas (bg/client.h); too few acknowledgements are logged
       (a warning once, then once a minute while it lasts): every step of a pass is re-checked
       and done again by the next pass, so a write a failover loses is only done again. */
    bg_replicas_options replicas;
} bg_watcher_options;

/* Fills opts with the defaults above. Never fails. */
BG_EXPORT void bg_watcher_options_init(bg_watcher_options *opts);

/* Creates a watcher; it does not connect until bg_watcher_run(). opts may be NULL for the
 * defaults. Returns BG_OK with *out set (the caller owns it: free it with bg_watcher_free()),
 * or BG_EINVAL (a bad option, queue or namespace), BG_EURL or BG_ENOMEM with *out NULL and a
 * message in errbuf (of errlen bytes; errbuf may be NULL). */
BG_EXPORT int bg_watcher_new(bg_watcher **out, const bg_watcher_options *opts, char *errbuf,
                             size_t errlen);

/* Runs until bg_watcher_stop(). Returns 0 after a stop, or a negative error when it cannot do
 * its work at all (BG_EACL: an ACL forbids CLIENT LIST or the scripts; BG_EREDIS: AUTH or
 * SELECT refused), with a message in bg_watcher_errmsg(). A lost connection is not an error:
 * the watcher logs it and reconnects. Once stopped, a watcher stays stopped: a second
 * bg_watcher_run() returns 0 at once. */
BG_EXPORT int bg_watcher_run(bg_watcher *w);

/* Why the last bg_watcher_run() returned an error ("" when it did not); borrowed until the next
 * bg_watcher_run() or bg_watcher_free(). Never NULL. */
BG_EXPORT const char *bg_watcher_errmsg(const bg_watcher *w);

/* Asks a running watcher to stop after its current step (at most about 100 ms later, or a
 * Redis call's timeout when Redis hangs). Async-signal-safe. */
BG_EXPORT void bg_watcher_stop(bg_watcher *w);

/* Tells a running watcher its program got SIGHUP (a closed terminal, a careless kill -HUP):
 * it logs "SIGHUP ignored" at Info and carries on (docs/operations.md#logs).
 * Async-signal-safe. */
BG_EXPORT void bg_watcher_hangup(bg_watcher *w);

/* Frees a watcher that is not running, closing its connections. NULL is a no-op. */
BG_EXPORT void bg_watcher_free(bg_watcher *w);

#endif
