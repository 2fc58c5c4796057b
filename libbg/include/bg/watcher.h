/* bg/watcher.h: the watcher loop (SPEC §7): due scheduled jobs to ready, attempts of vanished
 * workers failed and retried, history trimmed. Any number may run at once. */
#ifndef BG_WATCHER_H
#define BG_WATCHER_H

#include <stddef.h>

#include "bg/client.h"
#include "bg/export.h"

/* Options for bg_watcher_new(). Initialise with bg_watcher_options_init(). Strings and the
 * queue array are copied. Durations are in milliseconds. */
typedef struct {
    const char *url;           /* NULL: BG_DEFAULT_URL */
    const char *ns;            /* NULL: BG_DEFAULT_NAMESPACE */
    const char *const *queues; /* NULL or 0 queues: every queue known in the namespace */
    size_t nqueues;
    double interval_ms;         /* default 1000 */
    double grace_ms;            /* default 2000 */
    int max_interruptions;      /* default 3 */
    double retain_completed_ms; /* default 1 h; 0 keeps none */
    double retain_failed_ms;    /* default 7 d */
    double retain_dead_ms;      /* default 180 d */
    bg_logger log;
} bg_watcher_options;

typedef struct bg_watcher bg_watcher;

/* Fills opts with the defaults. */
BG_EXPORT void bg_watcher_options_init(bg_watcher_options *opts);

/* Creates a watcher; it does not connect until bg_watcher_run(). Returns BG_OK with *out set,
 * or an error with a message in errbuf. Free with bg_watcher_free(). */
BG_EXPORT int bg_watcher_new(bg_watcher **out, const bg_watcher_options *opts, char *errbuf,
                             size_t errlen);

/* Runs until bg_watcher_stop(). Returns 0 after a stop, or a negative error when it cannot do
 * its work (e.g. an ACL that forbids CLIENT LIST or scripts), with a message in errbuf. A lost
 * connection is not an error: the watcher reconnects. */
BG_EXPORT int bg_watcher_run(bg_watcher *w, char *errbuf, size_t errlen);

/* Asks a running watcher to stop after its current step. Async-signal-safe. */
BG_EXPORT void bg_watcher_stop(bg_watcher *w);

/* Tells a running watcher its program got SIGHUP (a closed terminal, a careless kill -HUP):
 * it logs "SIGHUP ignored" at Info and carries on (SPEC section 10). Async-signal-safe. */
BG_EXPORT void bg_watcher_hangup(bg_watcher *w);

/* Frees a watcher that is not running. NULL is a no-op. */
BG_EXPORT void bg_watcher_free(bg_watcher *w);

#endif
