/* bg/status.h: a snapshot of queue figures, the data behind `bg-cli status` (docs/cli.md).
 *
 * bg_status_read() takes a bg_client, with its contract (bg/client.h): one thread at a time,
 * and on an error a code and a message in bg_client_errmsg(). A snapshot is plain data the
 * caller owns: it holds no connection, and once read it may be used from any thread. */
#ifndef BG_STATUS_H
#define BG_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "bg/client.h"
#include "bg/export.h"

/* One queue's figures (docs/cli.md). Plain data. */
typedef struct {
    const char *name;   /* borrowed from the snapshot. */
    int64_t workers;    /* live NS-worker: connections that list the queue. */
    int64_t fibers;     /* live fiber connections of those workers. */
    int64_t jps;        /* attempts completed in the last second. */
    int64_t ready;      /* LLEN of the ready list. */
    int64_t scheduled;  /* ZCARD of the scheduled set. */
    int64_t processing; /* SCARD of the processing set. */
    int64_t completed;  /* lifetime counters. */
    int64_t failed;
    int64_t dead;
    int64_t latency_ms; /* age of the oldest ready job, now (the server's TIME) minus its qat;
                           0 when ready is empty, -1 when unknown (its hash or qat missing, or
                           qat not a whole number). */
    int64_t paused;     /* 1 when the queue is in NS:paused (bg-cli pause), else 0 (also when
                           NS:paused is not a set: workers then take it as no queue paused). */
} bg_queue_status;

typedef struct bg_status bg_status;

/* Reads the figures of the given queues, or of every queue in NS:queues (sorted) when nqueues
 * is 0, in one pipeline against one server clock. Returns BG_OK with *out set (free it with
 * bg_status_free()), or an error with *out NULL: BG_EINVAL (a bad queue name), BG_EACL (an
 * ACL refused CLIENT LIST or another command), BG_EREDIS (a key of the wrong type), BG_EIO,
 * BG_EPROTO, BG_ENOMEM, or a connection error as bg_client_connect(). */
BG_EXPORT int bg_status_read(bg_client *c, const char *const *queues, size_t nqueues,
                             bg_status **out);

/* How many queues the snapshot holds; 0 for NULL. */
BG_EXPORT size_t bg_status_count(const bg_status *s);

/* The i-th queue's figures, borrowed from s; NULL when i is out of range. */
BG_EXPORT const bg_queue_status *bg_status_queue(const bg_status *s, size_t i);

/* How long the snapshot took to read, in milliseconds (connecting included). */
BG_EXPORT double bg_status_time_ms(const bg_status *s);

/* Frees the snapshot. NULL is a no-op. */
BG_EXPORT void bg_status_free(bg_status *s);

#endif
