/* bg/admin.h: what an operator needs beside status: a health check, the failed attempts and
 * dead jobs with the reason they failed, deleting dead jobs, and emptying a queue. The data
 * behind `bg-cli ping`, `failed`, `dead` and `purge` (docs/cli.md).
 *
 * Every call here takes a bg_client, with its contract (bg/client.h): one thread at a time per
 * client, and on an error a code and a message in bg_client_errmsg() (a NULL client is
 * BG_EINVAL). A call connects first when needed, and may return the errors of
 * bg_client_connect(), BG_EIO after a lost connection, BG_EACL when an ACL refuses a command and
 * BG_EINVAL for a bad queue name. A bg_failures list is plain data the caller owns. */
#ifndef BG_ADMIN_H
#define BG_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "bg/client.h"
#include "bg/export.h"

/* Checks that Redis answers and that the namespace can be read: connects (AUTH, SELECT, the
 * client name and the scripts, as every bg program does), then PING and TYPE NS:queues, which
 * an ACL without read access to the namespace's keys refuses. NS:queues must be a set or
 * missing. Returns BG_OK with the time it took (connecting included, in ms) in *ms when ms is
 * not NULL, or an error with a message in bg_client_errmsg(): BG_ECONNECT, BG_EIO, BG_EACL,
 * BG_EREDIS (a refused command, or NS:queues of the wrong type), BG_EPROTO. */
BG_EXPORT int bg_ping(bg_client *c, double *ms);

/* Bytes read from Redis as they are: any bytes, NULs included. s is also NUL-terminated; it is
 * NULL when the field is absent or could not be read (a key of the wrong type). */
typedef struct {
    const char *s;
    size_t len;
} bg_bytes;

/* One failed attempt (bg_failed_list) or one dead job (bg_dead_list). Plain data borrowed from
 * the list it came from. */
typedef struct {
    const char *queue; /* the queue, a valid name. */
    bg_bytes attempt;  /* failed: the member of NS:failed:<queue>; dead: the job's lat, its
                          latest attempt (which may have been trimmed since). */
    bg_bytes job;      /* failed: the attempt's job field; dead: the member of NS:dead:<queue>. */
    bg_bytes cls;      /* the job hash's cls. */
    bg_bytes err;      /* failed: the attempt's err; dead: the job's ler (see bg_dead_list()). */
    bg_bytes msg;      /* failed: the attempt's msg; dead: the job's lms. */
    int64_t at_ms;     /* the entry's score: when it failed or died (ms since the epoch). */
} bg_failure;

typedef struct bg_failures bg_failures;

/* Lists the newest failed attempts, at most limit (1 to 100000) of them, newest first across the
 * given queues, or across every queue of NS:queues when nqueues is 0. Junk is shown as far as
 * it can be: an attempt or job key of the wrong type, or missing, leaves its fields NULL. A
 * queue whose NS:failed:<queue> is not a sorted set is left out and named in
 * bg_failures_warning(); the call still returns BG_OK. Returns BG_OK with *out set (free it
 * with bg_failures_free()), or an error with a message in bg_client_errmsg(). */
BG_EXPORT int bg_failed_list(bg_client *c, const char *const *queues, size_t nqueues, size_t limit,
                             bg_failures **out);

/* Lists the newest dead jobs of NS:dead:<queue>, as bg_failed_list() does. The reason a job
 * died is the err and msg of its last failure, which bg keeps on the job (ler, lms) for as long
 * as the job is kept, its attempts trimmed or not. A job with neither (buried by an older bg or
 * by another program) shows the err and msg of its latest attempt (lat) while that is kept;
 * else they are NULL. */
BG_EXPORT int bg_dead_list(bg_client *c, const char *const *queues, size_t nqueues, size_t limit,
                           bg_failures **out);

/* How many entries the list holds. */
BG_EXPORT size_t bg_failures_count(const bg_failures *f);

/* The i-th entry, newest first, borrowed from f; NULL when i is out of range. */
BG_EXPORT const bg_failure *bg_failures_get(const bg_failures *f, size_t i);

/* A message naming the keys that could not be read (a set of the wrong type), or NULL when
 * every queue was read; borrowed from f. */
BG_EXPORT const char *bg_failures_warning(const bg_failures *f);

/* Frees the list. NULL is a no-op. */
BG_EXPORT void bg_failures_free(bg_failures *f);

/* Deletes one dead job, its entry in NS:dead:<queue> and its hash, atomically (its failed
 * attempts stay until the watcher trims them). With nqueues 0 the job is looked for in the
 * queue its hash names, then in every queue of NS:queues; otherwise only in the given queues.
 * Returns BG_OK, BG_ENOTFOUND when there is no such job, BG_ESTATE when it exists but is not
 * dead there, BG_EREDIS when a key it would write has the wrong type (nothing is written), or
 * another error, each with a message in bg_client_errmsg(). */
BG_EXPORT int bg_dead_delete(bg_client *c, const char *job, const char *const *queues,
                             size_t nqueues);

/* Deletes every dead job of the given queues (every queue of NS:queues when nqueues is 0),
 * oldest first, in atomic batches of 500 so Redis never blocks for long; the count goes to
 * *deleted (when not NULL), also on an error after some batches. A dead set of the wrong type
 * stops the call with BG_EREDIS before anything of that queue is written. */
BG_EXPORT int bg_dead_delete_all(bg_client *c, const char *const *queues, size_t nqueues,
                                 size_t *deleted);

/* Sizes of a queue's waiting jobs. */
typedef struct {
    int64_t ready;     /* in NS:ready:<queue>. */
    int64_t scheduled; /* in NS:scheduled:<queue>. */
} bg_queue_counts;

/* Reads how many jobs wait in the queue's ready list and scheduled set into *out. Returns
 * BG_OK, or an error with a message (BG_EREDIS for a key of the wrong type). */
BG_EXPORT int bg_purge_count(bg_client *c, const char *queue, bg_queue_counts *out);

/* Empties the queue's ready list (from the left) and scheduled set (from the front) and deletes
 * those jobs' hashes, taking at most at_most->ready and at_most->scheduled jobs (everything
 * until both are empty when at_most is NULL), in atomic batches of 500 so a huge queue never
 * blocks Redis. Running jobs, attempts and counters are left alone. What was removed goes to
 * *removed (when not NULL), also on an error after some batches. Returns BG_OK, or an error
 * with a message (BG_EREDIS for a key of the wrong type, found before that batch wrote
 * anything). */
BG_EXPORT int bg_purge(bg_client *c, const char *queue, const bg_queue_counts *at_most,
                       bg_queue_counts *removed);

/* ---- show: one job, or one attempt (`bg-cli show`, docs/cli.md#show) ---- */

/* The most attempts bg_show_read() lists of a job, newest first. */
#define BG_SHOW_MAX_ATTEMPTS 100

/* One field of a hash, as read: name and value may hold any bytes. */
typedef struct {
    bg_bytes name;
    bg_bytes value;
} bg_field;

/* One attempt. Plain data owned by the bg_show it came from. */
typedef struct {
    bg_bytes id;         /* the attempt UUID. */
    const char *outcome; /* "failed" (it has err), "completed" (fin, no err), else "running". */
    bg_field *fields;    /* every field of NS:attempts:<id>, in the order Redis gave them. */
    size_t nfields;
} bg_show_attempt;

/* A job with its attempts, or one attempt. Plain data: read it, free it with bg_show_free(). */
typedef struct {
    int is_attempt;  /* 1: the ID named an attempt, attempts[0]; job_id is its job field. */
    bg_bytes job_id; /* the job's UUID; NULL for an attempt with no job field. */
    /* A job's state (docs/cli.md#show): "waiting", "scheduled", "running", "completed",
     * "retrying", "dead", or "unknown" when its UUID is in none of the places that tell; NULL
     * for an attempt. */
    const char *state;
    bg_bytes queue;            /* the queue the state was read in (NULL when none is valid). */
    bg_field *fields;          /* a job's hash, every field, in the order Redis gave them. */
    size_t nfields;            /* 0 for an attempt. */
    bg_show_attempt *attempts; /* newest first: the job's lat, then each one's prv. */
    size_t nattempts;          /* at most BG_SHOW_MAX_ATTEMPTS. */
    int more;                  /* 1: older attempts exist beyond the last one listed. */
    int trimmed;               /* 1: the chain ends at an attempt that is gone (trimmed). */
} bg_show;

/* Reads the job or attempt id names (a UUID in any case, bare or in braces, as producers may
 * write it): a job's hash is looked for first, then an attempt's. Returns BG_OK with *out set,
 * or BG_EINVAL (id is no UUID), BG_ENOTFOUND (no such job or attempt), BG_EREDIS (its key
 * holds another type: another program wrote it), or a connection error, each with a message in
 * bg_client_errmsg(). A few round trips: one per attempt listed, none a scan. */
BG_EXPORT int bg_show_read(bg_client *c, const char *id, bg_show **out);

/* The value of field name among fields (n of them), or NULL when it is absent. */
BG_EXPORT const bg_bytes *bg_show_field(const bg_field *fields, size_t n, const char *name);

/* Frees what bg_show_read() returned. NULL is a no-op. */
BG_EXPORT void bg_show_free(bg_show *s);

/* One live worker process, as its heartbeat hash NS:worker:<id> says (docs/cli.md#workers).
 * Plain data borrowed from the list it came from. The numbers are -1 when the field is missing
 * or not a whole number (a hash another program wrote). */
typedef struct {
    long long id;       /* the client ID of the worker's main connection (the key's suffix). */
    bg_bytes host;      /* the host name it runs on. */
    int64_t pid;        /* its process ID on that host. */
    bg_bytes queues;    /* its queues, comma-separated, in priority order. */
    int64_t fibers;     /* its fibers (-c). */
    int64_t busy;       /* fibers running a job now. */
    int64_t started_ms; /* when it started (the server's clock, ms since the epoch). */
    int64_t age_ms;     /* the server's time now minus started_ms; -1 when unknown. */
    bg_bytes state;     /* "running", "quiet" (SIGTSTP) or "stopping" (shutting down). */
} bg_worker_info;

typedef struct bg_workers bg_workers;

/* Lists the live workers: the IDs in NS:workers whose hash is still there (a hash goes at most
 * five seconds after its worker's last heartbeat), sorted by host, pid and ID. IDs whose hash
 * has expired are removed from NS:workers. A hash of the wrong type is left out and named in
 * bg_workers_warning(), as is an NS:workers that is not a set (the list is empty then); the
 * call still returns BG_OK. Returns BG_OK with *out set (free it with bg_workers_free()), or an
 * error with a message in bg_client_errmsg(). */
BG_EXPORT int bg_workers_list(bg_client *c, bg_workers **out);

/* How many workers the list holds. */
BG_EXPORT size_t bg_workers_count(const bg_workers *l);

/* The i-th worker, borrowed from l; NULL when i is out of range. */
BG_EXPORT const bg_worker_info *bg_workers_get(const bg_workers *l, size_t i);

/* A message naming the keys that could not be read, or NULL; borrowed from l. */
BG_EXPORT const char *bg_workers_warning(const bg_workers *l);

/* The server's time when the list was read, in ms since the epoch. */
BG_EXPORT int64_t bg_workers_time_ms(const bg_workers *l);

/* Frees the list. NULL is a no-op. */
BG_EXPORT void bg_workers_free(bg_workers *l);

/* Writes the figures of bg_status_read() for the given queues (every queue of NS:queues when
 * nqueues is 0) and of bg_workers_list() in the Prometheus text exposition format 0.0.4
 * (docs/operations.md#metrics) into a new NUL-terminated buffer *out of *len bytes, which the
 * caller frees with free(). Returns BG_OK, or an error with a message in bg_client_errmsg()
 * (*out is NULL then). */
BG_EXPORT int bg_metrics_text(bg_client *c, const char *const *queues, size_t nqueues, char **out,
                              size_t *len);

#endif
