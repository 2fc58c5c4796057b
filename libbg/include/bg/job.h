/* bg/job.h: putting jobs on queues and taking them off again (the producer's side).
 *
 * Every call here takes a bg_client, with its contract (bg/client.h): one thread at a time per
 * client, and on an error a code and a message in bg_client_errmsg() (a NULL client is
 * BG_EINVAL). Every call connects first when the client is not connected (BG_ECONNECT, BG_EREDIS,
 * BG_EACL as bg_client_connect()), and any call that talks to Redis may return BG_EIO (the
 * connection was lost: the next call reconnects), BG_EACL (an ACL refused a command),
 * BG_EREDIS (Redis refused it otherwise, or a key it would write holds another type: nothing
 * was written) or BG_EPROTO (a reply of no expected shape). */
#ifndef BG_JOB_H
#define BG_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "bg/client.h"
#include "bg/export.h"

/* A job UUID or attempt UUID as text: 36 characters and a NUL. */
#define BG_UUID_LEN 36
typedef char bg_uuid[BG_UUID_LEN + 1];

/* What to enqueue. Initialise with bg_job_spec_init(); strings are borrowed for the call. */
typedef struct {
    const char *cls;   /* class name the worker dispatches on; required. */
    const char *arg;   /* arguments, stored byte for byte; NULL means "{}". */
    size_t arg_len;    /* length of arg; 0 with a non-NULL arg means strlen(arg). */
    const char *queue; /* NULL means "default". */
    int64_t at_ms;     /* > 0: run at this time (ms since the epoch, Redis server clock). */
    int64_t in_ms;     /* > 0: run this many ms from now (Redis server clock). */
    int retries;       /* >= 0: the job's rty; -1 (the default) leaves it to the worker. */
} bg_job_spec;

/* Fills spec with the defaults. Never fails. */
BG_EXPORT void bg_job_spec_init(bg_job_spec *spec);

/* Enqueues one job atomically: its hash, and its UUID on the ready list, or in the scheduled
 * set when at_ms or in_ms is set. Writes the new job's UUID into id. Returns BG_OK or an error
 * (BG_EINVAL for a bad queue, class, time or retries, before anything is sent). With the
 * client's replicas.min_ack set, BG_EREPLICAS says fewer replicas acknowledged the job in
 * time: it is on the primary (id is written), but a failover now could lose it. */
BG_EXPORT int bg_enqueue(bg_client *c, const bg_job_spec *spec, bg_uuid id);

/* Enqueues n jobs, 512 at a time, each 512 atomically. ids must hold n UUIDs. With the
 * client's replicas.min_ack set, each 512 waits for the replicas; BG_EREPLICAS stops the call
 * with the short chunk counted in *done (it is on the primary).
 * Every spec is checked before any job is sent, so a bad one (BG_EINVAL) enqueues none. On
 * another error, jobs before the failing one may have been enqueued: *done (when not NULL)
 * says how many, and their UUIDs are the first *done of ids. */
BG_EXPORT int bg_enqueue_bulk(bg_client *c, const bg_job_spec *specs, size_t n, bg_uuid *ids,
                              size_t *done);

/* Removes a job that waits in ready or scheduled, and its hash. Returns BG_OK, BG_ENOTFOUND
 * when there is no such job, or BG_ESTATE when it exists but is not waiting (running, dead,
 * finished). */
BG_EXPORT int bg_dequeue(bg_client *c, const char *job_id);

/* Puts a dead job, or one waiting in scheduled for its retry, back at the tail of its ready
 * list now, with its attempt count (att) reset to 0, and for a dead job its interruption count
 * (itr) too (a job waiting for its retry keeps it: the poison-pill bound still holds). Returns
 * BG_OK, BG_ENOTFOUND when there is no such job, or BG_ESTATE for a job in any other state
 * (waiting in ready, running, finished, or delayed and never run). */
BG_EXPORT int bg_retry(bg_client *c, const char *job_id);

/* Puts every dead job of the given queues (every queue in NS:queues when nqueues is 0) back on
 * its ready list, as bg_retry() does, oldest first, in batches that keep Redis responsive.
 * *moved (when not NULL) says how many jobs went back, also after an error. Dead entries whose
 * job key holds another type cannot run: they stay dead, and the call returns BG_ESTATE
 * naming one of them once the others moved. */
BG_EXPORT int bg_retry_dead(bg_client *c, const char *const *queues, size_t nqueues, size_t *moved);

/* Checks that s is a lowercase RFC 4122 UUID in its 36-character form. 1 when valid, 0
 * otherwise (NULL included). Thread-safe. */
BG_EXPORT int bg_uuid_valid(const char *s);

/* Checks that s is a job ID as bg takes one from a ready list (docs/schema.md#keys): a UUID
 * with hex digits in any case, or such a UUID in braces ({...}), as producers in other
 * languages write them. 1 when valid. */
BG_EXPORT int bg_job_id_valid(const char *s);

/* Writes a new random (version 4) lowercase UUID into out. Thread-safe. */
BG_EXPORT void bg_uuid_new(bg_uuid out);

#endif
