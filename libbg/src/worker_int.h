/* worker_int.h: the worker's internal pieces, shared by worker.c (lifecycle and the main
 * connection), fiber.c (claim, run, finish), dispatch.c (running one job) and registry.c
 * (handlers, plugins, built-ins). */
#ifndef BG_WORKER_INT_H
#define BG_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "bg_int.h"

#define BG__MSG_MAX 1024        /* an attempt's msg, at most, in bytes */
#define BG__ARG_MAX (64u << 20) /* the largest arg a worker takes; larger: InvalidJob */
#define BG__PREFETCH_MAX 32     /* jobs a fiber claims at once, at most */
#define BG__JOB_ID_MAX 38       /* a ready entry taken as a job ID: a UUID, or one in braces */
#define BG__RID_LEN 12          /* the prefix of the server's run_id kept in rid */
#define BG__ROLE "worker"

/* The byte budget of a claim: no job joins a batch whose args would pass it (the first always
 * does), so one claim's time inside Redis stays bounded; a job over it is claimed alone. */
#define BG__CLAIM_BYTES (1u << 20)
/* The slowest rate, in bytes a second, at which Redis is taken to build a claim's reply (one
 * 64 MiB arg took about a second on a loaded 2-core machine). A fiber's socket timeout leaves
 * a claim of one job with the largest arg this long, so such a claim never times out. */
#define BG__CLAIM_SLOW_RATE (8u << 20)

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
    char err[128];
    char msg[BG__MSG_MAX + 1];
};

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
    bg_logger log;
    bg_registry reg;
    void **plugins;
    size_t nplugins;
    char key_prefix[BG__K_COUNT][96]; /* "NS:jobs:" etc., for the scripts */

    /* requests (bg_worker_signal: async-signal-safe stores only) */
    atomic_int req_stop; /* count of STOP requests */
    atomic_int req_halt;
    atomic_int req_quiet;
    atomic_int req_hangup; /* SIGHUPs not logged yet */

    /* state the main thread publishes to fibers */
    atomic_int stopping;  /* take no new job; exit after the current one */
    atomic_int cutoff;    /* end running jobs now (shutdown cut-off) */
    atomic_llong main_id; /* client ID of the live main connection, 0 while down */
    atomic_int quiet;
    pthread_mutex_t mu; /* guards gen and the wake-up condition */
    pthread_cond_t cv;
    unsigned long long gen; /* bumped on every ready-list change Redis reports */

    bg__fiber *fibers;
    bg__ratelimit findings; /* bad keys and junk met in Redis, logged once a minute each */
};

/* A job a fiber claimed. */
typedef struct {
    char attempt[BG_UUID_LEN + 1];
    char job[BG__JOB_ID_MAX + 1]; /* as its ready list gave it */
    char queue[129];
    char *cls;
    char *arg;
    size_t arg_len;
    int att;
    char *invalid; /* why the job cannot run, or NULL */
    int lost;      /* a watcher failed the attempt meanwhile: drop its result */
} bg__claimed;

/* An outcome waiting to be recorded by finish.lua. */
typedef struct {
    char attempt[BG_UUID_LEN + 1];
    char queue[129];
    const char *outcome;
    char time[32];
    char err[128];
    char msg[BG__MSG_MAX + 1];
    int rnd;
} bg__result;

/* One fiber: a thread with its own connection. conn_mu guards the connection and what the
 * fiber owns in Redis (batch[pos..nbatch) and pending[]): the fiber holds it for each round
 * trip, and the main thread takes it while the fiber runs a job, to notice a dropped
 * connection at once and re-own the fiber's attempts (SPEC §6). mu guards the running-job
 * fields the main thread reads for timeouts and shutdown. */
struct bg__fiber {
    bg_worker *w;
    int index;
    pthread_t thread;
    int started;
    atomic_int exited;
    atomic_int cancel;    /* the running in-process job should stop */
    atomic_int timed_out; /* ...because it passed --job-timeout */

    pthread_mutex_t mu;
    int busy;          /* a job runs now */
    double started_ms; /* monotonic start of the running job */
    char cur_attempt[BG_UUID_LEN + 1];
    char cur_queue[129];
    int cur_exec; /* an exec child: exec.c enforces its own timeout */

    pthread_mutex_t conn_mu;
    bg__conn conn;
    long long named_for; /* the main connection ID the fiber's name carries */
    bg__claimed batch[BG__PREFETCH_MAX];
    int pos, nbatch;
    bg__result pending[BG__PREFETCH_MAX];
    int npending;
    int prefetch;
    bg_uuid limbo[BG__PREFETCH_MAX]; /* attempt UUIDs of a claim whose reply was lost */
    int nlimbo;
    unsigned seed; /* for the backoff's random part */
};

/* With f->conn_mu held: (re)connects f's connection under its fiber name when it is down and
 * re-owns every attempt f owns. Returns BG_OK, or an error when Redis cannot be reached. */
int bg__fiber_reconnect(bg__fiber *f);
/* With f->conn_mu held while its fiber runs a job: records the outcomes of the jobs of its
 * batch that ran before, and when the worker quiets or stops, hands the jobs claimed behind
 * the running one back to their ready lists at once. */
void bg__fiber_tend_batch(bg__fiber *f, double running_ms);

/* A job that runs this long is slow: the outcomes before it in its batch are recorded while it
 * runs, and the jobs behind it go back to their lists when it ends. Far above a no-op's time,
 * even on a busy machine, so fast batches are never broken up. */
#define BG__SLOW_JOB_MS 20.0

/* With f->conn_mu held: renames f's connection after the main connection's ID changed. */
void bg__fiber_rename(bg__fiber *f);

void *bg__fiber_main(void *arg);

/* Wakes every fiber waiting for work (new jobs, or a change of state). */
void bg__worker_wake(bg_worker *w);

/* Opens a connection for this worker with the given client name. */
int bg__worker_connect(bg_worker *w, bg__conn *c, const char *name);
/* Opens a fiber's connection: as bg__worker_connect(), with a socket timeout that a claim of
 * one job with the largest arg (BG__ARG_MAX) never reaches. */
int bg__worker_connect_fiber(bg_worker *w, bg__conn *c, const char *name);

/* ---- dispatch.c ---- */

/* The outcome of one run, as finish.lua takes it. */
typedef struct {
    const char *outcome; /* "ok", "fail", "dead", "shutdown" */
    char time[32];       /* ms with three decimals */
    char err[128];
    char msg[BG__MSG_MAX + 1];
} bg__outcome;

/* Runs one claimed job on fiber f and fills out. */
void bg__dispatch(bg__fiber *f, const bg_job *job, bg__outcome *out);

#endif
