/* bg/worker.h: the worker loop (SPEC §6), for bg-worker and for C programs that run one inside
 * themselves with their own handlers. */
#ifndef BG_WORKER_H
#define BG_WORKER_H

#include <stddef.h>

#include "bg/client.h"
#include "bg/export.h"
#include "bg/handler.h"

/* Options for bg_worker_new(). Initialise with bg_worker_options_init(). Strings and the
 * queue array are copied. */
typedef struct {
    const char *url;           /* NULL: BG_DEFAULT_URL. */
    const char *ns;            /* NULL: BG_DEFAULT_NAMESPACE. */
    const char *const *queues; /* in priority order; NULL or 0 queues: "default". */
    size_t nqueues;
    int concurrency;           /* fibers; default 10. */
    int retries;               /* rty for jobs that have none; default 25. */
    double job_timeout_s;      /* 0 (the default): no job timeout. */
    double shutdown_timeout_s; /* default 25. */
    bg_logger log;
    bg_tls_options tls; /* for a rediss:// URL (bg/client.h) */
} bg_worker_options;

typedef struct bg_worker bg_worker;

/* Fills opts with the defaults. */
BG_EXPORT void bg_worker_options_init(bg_worker_options *opts);

/* Creates a worker; it does not connect until bg_worker_run(). Returns BG_OK with *out set, or
 * an error with a message in errbuf (of errlen bytes). Free with bg_worker_free(). */
BG_EXPORT int bg_worker_new(bg_worker **out, const bg_worker_options *opts, char *errbuf,
                            size_t errlen);

/* The registry to add in-process handlers to before bg_worker_run(); borrowed from w. */
BG_EXPORT bg_registry *bg_worker_registry(bg_worker *w);

/* Loads a plugin and calls its bg_plugin_init(). Returns BG_OK or BG_EPLUGIN with a message in
 * errbuf. */
BG_EXPORT int bg_worker_load_plugin(bg_worker *w, const char *path, char *errbuf, size_t errlen);

/* Maps a class (or "*" for every class nothing else handles) to a shell command run with the
 * exec protocol of SPEC §6. Returns BG_OK, BG_EEXIST or BG_EINVAL. */
BG_EXPORT int bg_worker_add_exec(bg_worker *w, const char *cls, const char *command);

/* Runs the worker until it is stopped with bg_worker_signal(). Returns 0 after a graceful
 * stop, 1 after an immediate one, or a negative error when it could not start (with a message
 * in errbuf). A lost Redis connection is never an error: the worker reconnects. */
BG_EXPORT int bg_worker_run(bg_worker *w, char *errbuf, size_t errlen);

/* What bg_worker_signal() asks for. */
typedef enum {
    BG_WORKER_STOP = 1,   /* graceful stop; a second STOP means BG_WORKER_HALT. */
    BG_WORKER_HALT = 2,   /* stop now. */
    BG_WORKER_QUIET = 3,  /* take no new jobs. */
    BG_WORKER_RESUME = 4, /* take jobs again after QUIET. */
    /* the program got SIGHUP (a closed terminal, a careless kill -HUP): logged as
     * "SIGHUP ignored" at Info, nothing else changes (SPEC section 10). */
    BG_WORKER_HANGUP = 5
} bg_worker_request;

/* Asks a running worker to change state. Async-signal-safe: it only stores to an atomic flag,
 * so a signal handler may call it. */
BG_EXPORT void bg_worker_signal(bg_worker *w, bg_worker_request req);

/* Frees a worker that is not running. NULL is a no-op. */
BG_EXPORT void bg_worker_free(bg_worker *w);

#endif
