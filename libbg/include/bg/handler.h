/* bg/handler.h: in-process job handlers and the plugin ABI (docs/worker.md, Plugins).
 *
 * A plugin is a shared object that exports
 *
 *     int bg_plugin_init(bg_registry *reg);
 *
 * which registers handlers with bg_registry_add() and returns 0 (anything else makes the worker
 * refuse to start). It is called once, on the thread that loads the plugin, before the worker
 * runs.
 *
 * Handlers run on the fibers' runner threads, several at once (one per fiber), so they must be
 * thread-safe. A runner thread's stack is 256 KiB: a handler that needs more (deep recursion,
 * large arrays on the stack) must allocate on the heap or run its work on a thread of its own.
 * A handler returns 0 for success; for failure it returns non-zero, after naming the error
 * with bg_error_set() (an unnamed failure is recorded with err "HandlerError"). A handler that
 * runs for long polls bg_job_cancelled(); one that ignores it past the shutdown cut-off is left
 * running when the worker exits, its attempt recorded as "Worker Shutdown", its result never
 * recorded. */
#ifndef BG_HANDLER_H
#define BG_HANDLER_H

#include <stddef.h>

#include "bg/export.h"

/* The job a handler runs; valid for the duration of the handler call only, on its thread. */
typedef struct bg_job bg_job;

/* Where a handler names its failure. */
typedef struct bg_error bg_error;

/* The table of class names to handlers a worker dispatches on. */
typedef struct bg_registry bg_registry;

/* A handler: called on a runner thread with the job, where to name a failure, and the userdata
 * given to bg_registry_add(). Returns 0 for success, non-zero for failure. */
typedef int (*bg_handler_fn)(const bg_job *job, bg_error *err, void *userdata);

/* The symbol a plugin exports. */
typedef int (*bg_plugin_init_fn)(bg_registry *reg);
#define BG_PLUGIN_INIT_SYMBOL "bg_plugin_init"

/* Registers fn for the exact class name cls (copied; userdata is passed to fn as it is, and
 * never freed). Call it before the worker runs (from bg_plugin_init() or the embedding
 * program), from one thread. Returns BG_OK, BG_EEXIST when the class already has a handler
 * (the first registration wins), BG_EINVAL (no fn, an empty class) or BG_ENOMEM. */
BG_EXPORT int bg_registry_add(bg_registry *reg, const char *cls, bg_handler_fn fn, void *userdata);

/* The job's UUID, attempt UUID, class and queue; borrowed for the handler call. */
BG_EXPORT const char *bg_job_id(const bg_job *job);
BG_EXPORT const char *bg_job_attempt_id(const bg_job *job);
BG_EXPORT const char *bg_job_class(const bg_job *job);
BG_EXPORT const char *bg_job_queue(const bg_job *job);

/* The job's arg, byte for byte (NUL-terminated for convenience, but it may hold NULs: use
 * *len). Borrowed for the handler call. */
BG_EXPORT const char *bg_job_arg(const bg_job *job, size_t *len);

/* Which attempt this is: 1 for the first run, 2 for the first retry, ... */
BG_EXPORT int bg_job_attempt(const bg_job *job);

/* Non-zero once the worker wants this job to stop (job timeout, shutdown cut-off). A handler
 * that runs for long should poll it and return soon after it turns non-zero. Any thread. */
BG_EXPORT int bg_job_cancelled(const bg_job *job);

/* Names the failure: err_class (e.g. "Mail::Bounce", cut to 127 bytes) becomes the attempt's
 * err, the formatted message its msg (cut to 1 KiB on a UTF-8 boundary). Either may be NULL.
 * From the handler, for its own err, before it returns. */
BG_EXPORT void bg_error_set(bg_error *err, const char *err_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
