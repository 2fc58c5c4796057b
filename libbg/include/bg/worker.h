/* bg/worker.h: the worker loop (docs/worker.md), for bg-worker and for C programs that run one
 * inside themselves with their own handlers (examples/embed_worker.c).
 *
 * A worker is used in three phases: configure (bg_worker_new(), then handlers, exec mappings
 * and plugins), run (bg_worker_run(), which blocks the calling thread until the worker stops),
 * free (bg_worker_free()). Every call but bg_worker_signal() is made from one thread, the one
 * that created the worker; bg_worker_signal() may be called from any thread or a signal
 * handler while bg_worker_run() runs. Durations are in milliseconds, as in bg/watcher.h.
 *
 * While it runs, a worker has a main thread (the caller of bg_worker_run()) and, per fiber, two
 * threads of its own: the fiber's (its Redis connection, claims and finishes) and its runner's,
 * the thread its jobs run on, with a stack of 256 KiB (bg/handler.h). */
#ifndef BG_WORKER_H
#define BG_WORKER_H

#include <stddef.h>

#include "bg/client.h"
#include "bg/export.h"
#include "bg/handler.h"

/* Options for bg_worker_new(). Initialise with bg_worker_options_init(), then set fields.
 * Strings and the queue array are copied by bg_worker_new(). Durations are in milliseconds. */
typedef struct {
    const char *url;           /* NULL: BG_DEFAULT_URL. */
    const char *ns;            /* NULL: BG_DEFAULT_NAMESPACE. */
    const char *const *queues; /* in priority order; NULL or 0 queues: "default". */
    size_t nqueues;
    int concurrency;            /* fibers, 1 to 1000; default 10. */
    int retries;                /* rty for jobs that have none; default 25. */
    double job_timeout_ms;      /* past it a job is ended (err Timeout); 0 (the default): never. */
    double shutdown_timeout_ms; /* how long a stop waits for running jobs; default 25000. */
    bg_logger log;              /* where log lines go; called from every worker thread. */
    bg_events events;           /* READY once Redis answers and the fibers run, HEALTHY about once a
                                   second while the main connection answers, STATUS on connection loss
                                   and return, quiet and resume, STOPPING at a stop; on the thread of
                                   bg_worker_run(). */
    bg_tls_options tls;         /* for a rediss:// URL (bg/client.h) */
    bg_liveness liveness;       /* BG_LIVENESS_CLIENTID (the default) or BG_LIVENESS_LEASE. */
    double lease_ms;            /* with LEASE: each fiber's lease TTL, refreshed every third of
                                   it; 100 to 3600000, default 5000. */
    /* Each claim and each batch of outcomes waits for replicas (bg/client.h). A claim too few
       acknowledged is held, not started, until they do; outcomes too few acknowledged are kept
       (at most 64 a fiber, then the fiber claims no more) and sent again after a reconnect,
       until acknowledged (docs/operations.md#replicas-and-failover). */
    bg_replicas_options replicas;
} bg_worker_options;

/* A worker. Opaque; created by bg_worker_new(), freed by bg_worker_free(). */
typedef struct bg_worker bg_worker;

/* Fills opts with the defaults. */
BG_EXPORT void bg_worker_options_init(bg_worker_options *opts);

/* Creates a worker from opts (NULL: the defaults); it does not connect until bg_worker_run().
 * Returns BG_OK with *out set, the caller owning it (free with bg_worker_free()); or, with *out
 * NULL and a message in errbuf (errlen bytes, may be 0), BG_EINVAL (a bad namespace, queue,
 * concurrency, or a negative retry count or duration), BG_EURL or BG_ENOMEM. */
BG_EXPORT int bg_worker_new(bg_worker **out, const bg_worker_options *opts, char *errbuf,
                            size_t errlen);

/* The registry to add in-process handlers to (bg_registry_add()), before bg_worker_run().
 * Borrowed: it lives as long as w. */
BG_EXPORT bg_registry *bg_worker_registry(bg_worker *w);

/* Loads the shared object at path (dlopen) and calls its bg_plugin_init() with w's registry;
 * before bg_worker_run(). The plugin stays loaded until bg_worker_free(). Returns BG_OK, or
 * BG_EPLUGIN (it does not load, lacks the symbol, or its init returned non-zero) or BG_ENOMEM,
 * with a message in bg_worker_errmsg(). */
BG_EXPORT int bg_worker_load_plugin(bg_worker *w, const char *path);

/* Maps a class (or "*" for every class nothing else handles) to a shell command run with the
 * exec protocol of docs/worker.md; before bg_worker_run(). Both strings are copied. Returns
 * BG_OK, BG_EEXIST (the class has a mapping already: the first wins), BG_EINVAL (empty) or
 * BG_ENOMEM. */
BG_EXPORT int bg_worker_add_exec(bg_worker *w, const char *cls, const char *command);

/* Runs the worker on the calling thread until it is stopped with bg_worker_signal(); at most
 * once per worker. Returns 0 after a graceful stop (every fiber ended, or left running a
 * handler that ignored the cut-off), 1 after an immediate one (BG_WORKER_HALT or a second
 * BG_WORKER_STOP: the fibers are told to end, and not waited for), or a negative error when it
 * could not start (BG_EREDIS: a wrong password or the like; BG_EACL; BG_ENOMEM; BG_ESYS: no
 * threads), with a message in bg_worker_errmsg(). A Redis that cannot be reached, or a lost
 * connection, is never an error: the worker waits and reconnects. */
BG_EXPORT int bg_worker_run(bg_worker *w);

/* Why the last bg_worker_load_plugin() or bg_worker_run() failed ("" when none did); borrowed
 * until the next such call or bg_worker_free(). Never NULL. */
BG_EXPORT const char *bg_worker_errmsg(const bg_worker *w);

/* What bg_worker_signal() asks for. */
typedef enum {
    BG_WORKER_STOP = 1,   /* graceful stop; a second STOP means BG_WORKER_HALT. */
    BG_WORKER_HALT = 2,   /* stop now. */
    BG_WORKER_QUIET = 3,  /* take no new jobs. */
    BG_WORKER_RESUME = 4, /* take jobs again after QUIET. */
    /* the program got SIGHUP (a closed terminal, a careless kill -HUP): logged as
     * "SIGHUP ignored" at Info, nothing else changes (docs/operations.md#logs). */
    BG_WORKER_HANGUP = 5
} bg_worker_request;

/* Asks a running worker to change state; the main thread acts on it within a tick (20 ms).
 * Async-signal-safe and thread-safe: it only stores to an atomic flag, so a signal handler may
 * call it. A request made before bg_worker_run() is acted on when it starts. */
BG_EXPORT void bg_worker_signal(bg_worker *w, bg_worker_request req);

/* Frees a worker that is not running (never called, or bg_worker_run() returned), with its
 * handlers and plugins (dlclose). NULL is a no-op. Threads of the worker that may still run
 * keep it alive: after a halt (bg_worker_run() returned 1 while fibers were still ending) or
 * after a graceful stop that left a handler running past the cut-off, the worker's memory is
 * not freed and its plugins stay loaded (a bounded leak; the program is usually about to
 * exit). Otherwise everything is freed. */
BG_EXPORT void bg_worker_free(bg_worker *w);

#endif
