/* heartbeat.h: a worker's heartbeat, the hash NS:worker:<client ID of its main connection> that
 * `bg-cli workers` and `metrics` read (docs/schema.md#keys). Written by the worker's main
 * thread on a connection of its own: the main connection is subscribed to Redis's key reports
 * and can send no other command. */
#ifndef BG_HEARTBEAT_H
#define BG_HEARTBEAT_H

#include <stdint.h>

#include "worker_int.h"

#define BG__HEARTBEAT_MS 1000     /* how often the hash is written */
#define BG__HEARTBEAT_TTL_MS 5000 /* how long it outlives the last write */

/* The heartbeat's state, kept by the caller (all zero to begin with). */
typedef struct {
    bg__conn conn;
    long long id;       /* the main connection ID the hash was last written for; 0: none */
    int64_t started_ms; /* the server's time at the first beat */
    double next_ms;     /* when the next beat is due, on the monotonic clock */
    int junk;           /* the hash's key held another type at the last beat */
} bg__heartbeat;

/* Called on every turn of the worker's main loop; once a second, while the main connection is
 * up, writes the hash (host pid queues fibers busy started state), its TTL and its ID in
 * NS:workers in one round trip, and removes the hash of a previous main connection ID. Errors
 * (a key of the wrong type, a refused command, a lost connection) are logged, rate-limited,
 * and never stop the worker. */
void bg__heartbeat_beat(bg_worker *w, bg__heartbeat *hb);

/* On a clean exit: deletes the hash and removes its ID from NS:workers, then closes the
 * heartbeat's connection. */
void bg__heartbeat_end(bg_worker *w, bg__heartbeat *hb);

#endif
