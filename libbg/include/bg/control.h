/* bg/control.h: an operator's controls over queues and jobs: pausing and resuming a queue, and
 * cancelling a job, waiting or running. The data behind `bg-cli pause`, `resume` and
 * `cancel`. */
#ifndef BG_CONTROL_H
#define BG_CONTROL_H

#include "bg/client.h"
#include "bg/export.h"
#include "bg/job.h"

/* Pauses a queue: its name goes into NS:paused, and from then on every worker's claim skips it
 * (jobs wait in ready; running jobs finish). A queue need not exist yet to be paused.
 * *changed (when not NULL) is 1 when the queue was not paused before, 0 when it was. Returns
 * BG_OK, BG_EINVAL for an invalid queue name, BG_EREDIS when NS:paused is not a set (nothing
 * is written), or another error, each with a message in bg_client_errmsg(). May be called
 * with any bg_client; not thread-safe on one client (as every call on a bg_client). */
BG_EXPORT int bg_queue_pause(bg_client *c, const char *queue, int *changed);

/* Resumes a paused queue: its name leaves NS:paused, and workers blocked waiting for work take
 * its jobs at once. *changed, the returns and errors as bg_queue_pause(). */
BG_EXPORT int bg_queue_resume(bg_client *c, const char *queue, int *changed);

/* What bg_job_cancel() did. */
typedef enum {
    BG_CANCEL_REMOVED = 1, /* the job was waiting (ready or scheduled): it and its hash are gone */
    BG_CANCEL_STOPPING = 2 /* the job runs: its worker was asked to stop it; the attempt ends
                              with err Canceled and the job goes dead, retries or not */
} bg_cancel_result;

/* Cancels a job. A waiting job is removed with its hash, atomically (as bg_dequeue()); a
 * running one gets a request (NS:cancel:<attempt>, kept an hour) that its worker acts on within
 * a few milliseconds: an in-process handler's cancellation flag is set, an exec child gets TERM
 * and KILL 5 s later. *what (when not NULL) says which; attempt (when not NULL) receives the
 * running attempt's UUID for BG_CANCEL_STOPPING, "" otherwise. Returns BG_OK, BG_ENOTFOUND when
 * there is no such job, BG_ESTATE when it exists but neither waits nor runs (dead or finished),
 * BG_EREDIS when a key it would write holds the wrong type (nothing is written), or another
 * error, each with a message in bg_client_errmsg(). */
BG_EXPORT int bg_job_cancel(bg_client *c, const char *job, bg_cancel_result *what, bg_uuid attempt);

#endif
