/* worker_int.h: the worker's internal pieces: worker.c (lifecycle and the main connection)
 * owns struct bg_worker and talks to the fibers through the calls of "fiber.c" below only;
 * fiber*.c own everything of a fiber (fiber_int.h); dispatch.c runs one job for a fiber's
 * runner; registry.c and builtin.c hold the handlers. Calls go one way: worker.c to fiber*.c
 * to dispatch.c to registry.c, builtin.c and exec.c. */
#ifndef BG_WORKER_INT_H
#define BG_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "bg_int.h"

#define BG__ARG_MAX (64u << 20) /* the largest arg a worker takes; larger: InvalidJob */
#define BG__PREFETCH_MAX 32     /* jobs a fiber claims at once, at most */
#define BG__JOB_ID_MAX 38       /* a ready entry taken as a job ID: a UUID, or one in braces */
#define BG__RID_LEN 12          /* the prefix of the server's run_id kept in rid */
#define BG__ROLE "worker"
/* Outcomes a fiber holds, at most: a batch's, and as many again that Redis refused to record
 * (a key of the wrong type) and that are sent again with each round trip until it does. */
#define BG__PENDING_MAX (2 * BG__PREFETCH_MAX)

/* The byte budget of a claim: no job joins a batch whose args would pass it (the first always
 * does), so one claim's time inside Redis stays bounded; a job over it is claimed alone. */
#define BG__CLAIM_BYTES (1u << 20)
/* The slowest rate, in bytes a second, at which Redis is taken to build a claim's reply (one
 * 64 MiB arg took about a second on a loaded 2-core machine). A fiber's socket timeout leaves
 * a claim of one job with the largest arg this long, so such a claim never times out. */
#define BG__CLAIM_SLOW_RATE (8u << 20)

#define BG__CONCURRENCY_MAX 1000 /* fibers a worker runs, at most */

/* Every wait before trying Redis again doubles from its first value up to this. */
#define BG__RETRY_CAP_MS 1000.0
#define BG__REDIAL_MS 10.0 /* the first wait before reconnecting */

/* The wait after delay_ms, when trying again failed once more. */
static inline double bg__backoff(double delay_ms) {
    return delay_ms * 2 > BG__RETRY_CAP_MS ? BG__RETRY_CAP_MS : delay_ms * 2;
}

/* Every connection's connect and socket timeout (a fiber's is longer, below). */
#define BG__CONNECT_TIMEOUT_MS 3000
/* A fiber waits for a reply as long as Redis may take to build a claim of one largest job. */
#define BG__FIBER_TIMEOUT_MS                                                                       \
    (BG__CONNECT_TIMEOUT_MS + (int)(1000.0 * BG__ARG_MAX / BG__CLAIM_SLOW_RATE))

/* ---- registry.c ---- */

typedef struct {
    char *cls;
    bg_handler_fn fn; /* in-process handler, or NULL for an exec mapping */
    void *userdata;
    char *command; /* exec mapping */
} bg__handler;

struct bg_registry {
    bg__handler *items;
    size_t n, cap;
};

void bg__registry_free(bg_registry *reg);
const bg__handler *bg__registry_find(const bg_registry *reg, const char *cls);
/* Adds an exec mapping (cls may be "*"). */
int bg__registry_add_exec(bg_registry *reg, const char *cls, const char *command);
/* Finds the built-in handler for cls (bg.noop, bg.sleep, bg.fail), or NULL. */
bg_handler_fn bg__builtin_find(const char *cls);

struct bg_job {
    const char *id, *attempt_id, *cls, *queue, *arg;
    size_t arg_len;
    int attempt;
    const atomic_int *cancel;
};

struct bg_error {
    int set;
    char err[BG__ERR_BUF];
    char msg[BG__MSG_MAX + 1];
};

/* ---- cancels.c: the cancel requests heard ---- */

#define BG__CANCELS_MAX 64

typedef struct {
    pthread_mutex_t mu; /* guards ids and next */
    bg_uuid ids[BG__CANCELS_MAX];
    int next;
    atomic_uint gen; /* bumped with each request: a fiber looks again only when it moved */
} bg__cancels;

void bg__cancels_init(bg__cancels *c);
void bg__cancels_destroy(bg__cancels *c);
/* Adds the attempt UUID (len bytes) of a request; anything not UUID-long is ignored. */
void bg__cancels_add(bg__cancels *c, const char *attempt, size_t len);
/* 1 when a request for attempt was heard. */
int bg__cancels_has(bg__cancels *c, const char *attempt);

/* ---- the worker ---- */

typedef struct bg__fiber bg__fiber;

struct bg_worker {
    /* configuration, fixed once running */
    char *ns;
    char *url_str;
    char *url_masked;
    bg__url url;
    char **queues;
    size_t nqueues;
    char *queue_list; /* "q1,q2" for the client name */
    int concurrency;
    int retries;
    double job_timeout_ms;
    double shutdown_timeout_ms;
    long long lease_ms;    /* each fiber's lease TTL; 0: liveness by client ID (no leases) */
    bg__replicas replicas; /* WAIT after each claim and finish (replicas.c) */
    bg_logger log;
    bg_events events;
    char err[BG__ERRLEN]; /* bg_worker_errmsg() */
    bg_registry reg;
    void **plugins;
    size_t nplugins;
    char key_prefix[BG__K_COUNT][96]; /* "NS:jobs:" etc., for the scripts */

    /* requests (bg_worker_signal: async-signal-safe stores only); fibers read req_halt */
    atomic_int req_stop; /* count of STOP requests */
    atomic_int req_halt;
    atomic_int req_quiet;
    atomic_int req_hangup; /* SIGHUPs not logged yet */

    /* What the main thread tells the fibers: flags it alone writes (then bg__fibers_wake())
     * and fibers only read; a fiber's own state is none of the main thread's business. */
    atomic_int stopping;  /* take no new job; exit after the current one */
    atomic_int cutoff;    /* end running jobs now (shutdown cut-off) */
    atomic_int abandon;   /* record what still runs as cut off, and exit without it */
    atomic_llong main_id; /* client ID of the live main connection, 0 while down */
    atomic_int quiet;
    pthread_mutex_t mu; /* guards gen and the wake-up condition */
    pthread_cond_t cv;
    unsigned long long gen; /* bumped on every change of state the fibers must see */
    int tickets;            /* ready-list reports not yet taken by an idle fiber */
    atomic_uint paused_gen; /* bumped when NS:paused may have changed: fibers read it again */
    bg__cancels cancels;    /* attempts bg-cli cancel asked to stop */

    bg__fiber **fibers;     /* concurrency of them; NULL until started */
    bg__ratelimit findings; /* bad keys and junk met in Redis, logged once a minute each */
};

/* ---- fiber.c: the fibers, as the main thread sees them ---- */

/* Starts fiber index of w: its thread, and its runner thread (the one its jobs run on). Returns
 * BG_OK with *out set, or BG_ENOMEM / BG_ESYS. */
int bg__fiber_start(bg_worker *w, int index, bg__fiber **out);
/* News for the fibers (ready lists changed, or one of w's flags did): wakes the idle ones. */
void bg__fibers_wake(bg_worker *w);
/* News of ready jobs: wakes one idle fiber per report (reports: how many came). */
void bg__fibers_wake_some(bg_worker *w, int reports);
/* 1 once fiber f's thread has ended: it touches f no more. Any thread. */
int bg__fiber_exited(bg__fiber *f);
/* 1 while f's runner runs a job (for the heartbeat's busy count). Any thread. */
int bg__fiber_busy(bg__fiber *f);
/* Frees an exited fiber. Returns 1, or 0 when its runner still runs a handler that ignored the
 * cut-off: then nothing is freed (the handler may still read the fiber's job). */
int bg__fiber_free(bg__fiber *f);

/* ---- dispatch.c ---- */

/* Runs one job on the calling thread (a fiber's runner): picks its handler (docs/worker.md,
 * Dispatch), runs it, and fills out's kind, time, err and msg. *timed_out says, when the
 * handler returns after job->cancel turned, that the job passed --job-timeout; *canceled
 * that bg-cli cancel asked for it (an exec child is then ended too): the outcome is dead,
 * err Canceled. */
void bg__dispatch(const bg_worker *w, const bg_job *job, const atomic_int *timed_out,
                  const atomic_int *canceled, bg__outcome *out);

#endif
