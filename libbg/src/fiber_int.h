/* fiber_int.h: one fiber, whole. A fiber is two threads that share nothing with the rest of
 * the worker but the flags of struct bg_worker they read:
 *
 * - the fiber thread owns the fiber's Redis connection, its batch of claimed jobs, the
 *   outcomes it has yet to record and its claim in limbo. It claims, hands jobs one at a time
 *   to its runner, and while a job runs it stays free to notice a dropped connection and re-own
 *   its attempts at once, rename its connection, record the outcomes of the batch's earlier
 *   jobs, enforce --job-timeout and the shutdown cut-off (docs/claim.md);
 * - the runner thread (fiber_runner.c), created once with a stack of BG__RUNNER_STACK bytes,
 *   runs the job it is handed (dispatch.c) and hands back its outcome. It touches no fiber
 *   state but its own mailbox, so a handler that ignores the cut-off can be left running when
 *   the fiber exits (docs/worker.md, Signals).
 *
 * Files: fiber.c (lifecycle, the loop, watching a running job), fiber_trip.c (claim and finish
 * round trips), fiber_conn.c (connecting, re-owning, limbo, findings), fiber_runner.c. */
#ifndef BG_FIBER_INT_H
#define BG_FIBER_INT_H

#include <semaphore.h>

#include "worker_int.h"

/* A runner thread's stack: enough for the built-ins, exec's supervisor and modest handlers
 * (docs/worker.md, Plugins), small enough that -c 10 stays far below 8 MB of RSS. */
#define BG__RUNNER_STACK (256u << 10)
/* How often a fiber looks at its connection and its flags while its runner runs a job. */
#define BG__FIBER_TICK_MS 20
/* The first wait after a failed claim, and between tries to record outcomes Redis did not. */
#define BG__RETRY_MS 50.0
/* The wait, when refused outcomes fill the fiber, before it sends them again. */
#define BG__FULL_WAIT_MS 200.0
/* Outcomes a fiber keeps that were recorded but too few replicas acknowledged
 * (--min-replicas-ack): past this many the fiber claims no more until they are. */
#define BG__UNACKED_MAX 64
/* A job that runs this long is slow: the outcomes before it in its batch are recorded while it
 * runs, and the jobs behind it go back to their lists when it ends. Far above a no-op's time,
 * even on a busy machine, so fast batches are never broken up. */
#define BG__SLOW_JOB_MS 20.0

/* A job a fiber claimed. */
typedef struct {
    char attempt[BG_UUID_LEN + 1];
    char job[BG__JOB_ID_MAX + 1]; /* as its ready list gave it */
    char queue[BG__QUEUE_BUF];
    char *cls;
    char *arg;
    size_t arg_len;
    int att;
    char *invalid; /* why the job cannot run, or NULL */
    int lost;      /* a watcher failed the attempt meanwhile: drop its result */
} bg__claimed;

/* A runner's mailbox: two semaphores, one each way. The fiber fills job and posts go; the
 * runner runs it, fills out and posts done. A semaphore is a counter the other side takes
 * without a lock, so a hand-off costs a system call only when the other side sleeps (a mutex
 * and a condition variable cost one more whenever both touched the mutex at once, which a job
 * of a few µs made the rule). job and out are the poster's until the other side took the
 * semaphore (sem_post and sem_wait order memory). cancel and timed_out are the fiber's word
 * to the handler while it runs. */
typedef struct {
    const bg_worker *w;
    pthread_t thread;
    int started;
    int handed; /* the fiber's: a job was handed and its outcome not taken yet */
    sem_t go;
    sem_t done;
    atomic_int quit; /* with go: no job, end the thread */
    bg_job job;      /* its strings are the fiber's batch entry, left alone until done */
    bg__outcome out;
    atomic_int cancel;    /* the running in-process job should stop */
    atomic_int timed_out; /* ...because it passed --job-timeout */
    atomic_int canceled;  /* ...because bg-cli cancel asked (exec children see it too) */
} bg__runner;

struct bg__fiber {
    bg_worker *w; /* its configuration and flags: read only */
    int index;
    pthread_t thread; /* detached */
    atomic_int exited;
    atomic_int busy; /* a job runs on the runner now: what the heartbeat counts */
    int runner_left; /* the runner was abandoned to a handler that ignored the cut-off */
    bg__runner run;

    /* The fiber thread's alone. */
    bg__conn conn;
    long long named_for; /* the main connection ID the fiber's name carries */
    bg__claimed batch[BG__PREFETCH_MAX];
    int pos, nbatch;
    bg__outcome pending[BG__PENDING_MAX];
    int npending;
    int prefetch;
    bg_uuid limbo[BG__PREFETCH_MAX]; /* attempt UUIDs of a claim whose reply was lost */
    int nlimbo;
    /* --min-replicas-ack (docs/operations.md#replicas-and-failover): outcomes recorded but not
     * acknowledged by enough replicas yet, kept to be sent again after a reconnect (room for
     * BG__UNACKED_MAX and a round trip's pending; NULL when the option is off); whether the
     * batch's claim waits for its acknowledgement before its jobs start; whether the shortfall
     * was said. */
    bg__outcome *unacked;
    int nunacked;
    int claim_held;
    int replicas_short;
    unsigned seed;         /* for the backoff's random part */
    unsigned char *skip;   /* per queue of w: 1 when it is paused (NS:paused) */
    int nskip;             /* how many are */
    unsigned paused_seen;  /* w->paused_gen when skip was read; skip is stale when it moved */
    int paused_read;       /* skip was read at least once */
    unsigned cancel_seen;  /* w->cancels.gen when the running job was last looked for */
    unsigned claim_gen;    /* w->cancels.gen before the batch was claimed: while it has not
                              moved, no job of the batch can have been canceled */
    double redial_at_ms;   /* while a job runs: when to try to reconnect next */
    double redial_wait_ms; /* ...and the wait after that, doubling */
    bg_uuid lease;         /* with --liveness lease: the fiber's lease ID (lse); else "" */
    char lease_key[160];   /* NS:lease:<lease>, or "" */
    double lease_at_ms;    /* when the fiber last refreshed it itself */
};

static inline int bg__fiber_want_exit(const bg_worker *w) {
    return atomic_load(&w->req_halt) || atomic_load(&w->stopping);
}

static inline int bg__fiber_paused(const bg_worker *w) {
    return atomic_load(&w->quiet);
}

/* ---- fiber_conn.c ---- */

/* Logs a finding (bad data in Redis, a script that keeps failing) at most once a minute per
 * key, so that whatever rate it is met at, the log stays bounded. */
void bg__fiber_finding(bg__fiber *f, bg_log_level level, const char *key, size_t keylen,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* (Re)connects f's connection under its fiber name when it is down, re-owns every attempt f
 * owns and settles a claim in limbo. Returns BG_OK, or an error when Redis cannot be reached
 * or the main connection is down (the name needs its ID). */
int bg__fiber_reconnect(bg__fiber *f);
/* As bg__fiber_reconnect(), again with capped backoff until connected or told to give up. */
int bg__fiber_connect_loop(bg__fiber *f);
/* Renames f's connection after the main connection's ID changed. */
void bg__fiber_rename(bg__fiber *f);
/* Hands back whatever a claim whose reply was lost took. BG_OK once nothing is in limbo. */
int bg__fiber_settle_limbo(bg__fiber *f);
/* On a new connection: the unacknowledged outcomes this server holds are written again for the
 * next WAIT to cover; those it lost go back to pending, to be re-owned and sent again. */
void bg__fiber_resync(bg__fiber *f);

/* Reads NS:paused when it may have changed (or never was), into f->skip. A set of the wrong type
 * is logged (rate-limited) and counts as no queue paused. BG_OK, or BG_EIO when the connection
 * failed. */
int bg__fiber_read_paused(bg__fiber *f);

/* ---- fiber_trip.c ---- */

/* One round trip: records pending outcomes and, when claim > 0, claims up to that many jobs.
 * Returns the number of strings the claim took off ready lists (jobs and dropped junk), or -1
 * when the connection failed (outcomes stay pending, to be re-owned and sent again). */
int bg__fiber_round_trip(bg__fiber *f, int claim);
/* Outcomes held that Redis has not refused yet: those worth a round trip of their own. */
int bg__fiber_fresh_pending(const bg__fiber *f);
/* Queues the hand-back of batch[first..] (jobs not started), and frees them. */
void bg__fiber_unclaim_from(bg__fiber *f, int first);
/* While batch[pos] runs (running_ms so far): records the outcomes of the batch's jobs that
 * ran before it, and when the worker quiets or stops, hands the jobs behind it back at once. */
void bg__fiber_tend_batch(bg__fiber *f, double running_ms);
void bg__fiber_free_claimed(bg__claimed *c);

/* ---- fiber_lease.c ---- */

/* Gives f a fresh lease ID and key when the worker judges liveness by leases. */
void bg__fiber_lease_init(bg__fiber *f);
/* Appends the lease key, the lease ID and its TTL in ms ("", "" and 0 without leases), the
 * three arguments claim.lua and reown.lua take for it. */
void bg__fiber_lease_args(const bg__fiber *f, bg__args *a);
/* Refreshes f's lease when a third of its TTL passed since the fiber last did. */
void bg__fiber_lease_tend(bg__fiber *f);

/* ---- fiber_runner.c ---- */

/* Starts r's thread, idle. Returns BG_OK or BG_ESYS. */
int bg__runner_start(bg__runner *r, const bg_worker *w);
/* Hands job (its strings must outlive the run) to the idle runner r. */
void bg__runner_hand(bg__runner *r, const bg_job *job);
/* Waits up to wait_ms for r's job to end: 1 with *out filled (r idle again), 0 if it runs on. */
int bg__runner_wait(bg__runner *r, int wait_ms, bg__outcome *out);
/* Ends and joins r when it is idle: returns 1; 0 when it still runs a job (left running). */
int bg__runner_end(bg__runner *r);

#endif
