/* worker.c: a worker's lifecycle: options, plugins, and the main thread, which holds the main
 * connection (named NS-worker:<queues>), turns Redis's reports of ready-list changes into
 * wake-ups for idle fibers, and runs the shutdown of docs/worker.md (Signals). It starts and
 * waits for the fibers and tells them what to do by the flags of struct bg_worker; it never
 * touches a fiber's connection, batch or jobs (fiber_int.h). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "heartbeat.h"
#include "worker_int.h"

#define TICK_MS 20
/* After the cut-off, how long exec children get to die: exec.c's TERM-to-KILL delay, and a
 * margin; then what still runs is abandoned. */
#define KILL_GRACE_MS (BG__EXEC_KILL_AFTER_MS + 1500)
/* After the fibers were told to abandon what still runs, how long they get to record it. */
#define ABANDON_WAIT_MS BG__CONNECT_TIMEOUT_MS

void bg_worker_options_init(bg_worker_options *o) {
    memset(o, 0, sizeof *o);
    o->concurrency = 10;
    o->retries = 25;
    o->shutdown_timeout_ms = 25000;
    o->lease_ms = BG_LEASE_DEFAULT_MS;
    o->log.level = BG_LOG_INFO;
}

static int fail(char *errbuf, size_t errlen, int code, const char *msg) {
    bg__fmt(errbuf, errlen, "%s", msg);
    return code;
}

int bg_worker_new(bg_worker **out, const bg_worker_options *o, char *errbuf, size_t errlen) {
    bg_worker_options defaults;
    char masked[512];
    static const char *const default_queue[] = {"default"};
    *out = NULL;
    if (!o) {
        bg_worker_options_init(&defaults);
        o = &defaults;
    }
    const char *ns = o->ns ? o->ns : BG_DEFAULT_NAMESPACE;
    const char *url = o->url ? o->url : BG_DEFAULT_URL;
    const char *const *queues = o->nqueues ? o->queues : default_queue;
    size_t nq = o->nqueues ? o->nqueues : 1;
    if (!bg_namespace_valid(ns))
        return fail(errbuf, errlen, BG_EINVAL, "invalid namespace: 1 to 64 of A-Z a-z 0-9 _ . -");
    if (o->concurrency < 1 || o->concurrency > BG__CONCURRENCY_MAX)
        return fail(errbuf, errlen, BG_EINVAL, "concurrency must be from 1 to 1000");
    if (o->retries < 0 || o->job_timeout_ms < 0 || o->shutdown_timeout_ms < 0)
        return fail(errbuf, errlen, BG_EINVAL, "retries and timeouts must not be negative");
    if (o->liveness != BG_LIVENESS_CLIENTID && o->liveness != BG_LIVENESS_LEASE)
        return fail(errbuf, errlen, BG_EINVAL, "liveness must be clientid or lease");
    if (o->liveness == BG_LIVENESS_LEASE &&
        !(o->lease_ms >= BG_LEASE_MIN_MS && o->lease_ms <= BG_LEASE_MAX_MS))
        return fail(errbuf, errlen, BG_EINVAL, "the lease must be from 100ms to 1h");
    for (size_t i = 0; i < nq; i++)
        if (!bg_queue_valid(queues[i]))
            return fail(errbuf, errlen, BG_EINVAL,
                        "invalid queue name: 1 to 128 of A-Z a-z 0-9 _ . -");
    bg__replicas replicas;
    if (bg__replicas_init(&replicas, &o->replicas, errbuf, errlen) != BG_OK)
        return BG_EINVAL;

    bg_worker *w = calloc(1, sizeof *w);
    if (!w)
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    bg__ratelimit_init(&w->findings, BG__RATELIMIT_MS);
    int rc = bg__url_parse_tls(url, &o->tls, &w->url, errbuf, errlen);
    if (rc != BG_OK) {
        bg_worker_free(w);
        return rc;
    }
    w->ns = bg__strdup(ns);
    w->url_str = bg__strdup(url);
    w->url_masked = bg__strdup(bg_url_mask(url, masked, sizeof masked));
    w->queues = calloc(nq, sizeof *w->queues);
    w->nqueues = nq;
    size_t listlen = 1;
    for (size_t i = 0; w->queues && i < nq; i++) {
        w->queues[i] = bg__strdup(queues[i]);
        listlen += strlen(queues[i]) + 1;
    }
    w->queue_list = calloc(1, listlen);
    w->concurrency = o->concurrency;
    w->retries = o->retries;
    w->job_timeout_ms = o->job_timeout_ms;
    w->shutdown_timeout_ms = o->shutdown_timeout_ms;
    w->lease_ms = o->liveness == BG_LIVENESS_LEASE ? (long long)o->lease_ms : 0;
    w->url.hello = w->lease_ms > 0;
    w->replicas = replicas;
    w->log = o->log;
    w->events = o->events;
    if (!w->ns || !w->url_str || !w->url_masked || !w->queues || !w->queue_list) {
        bg_worker_free(w);
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nq; i++) {
        if (!w->queues[i]) {
            bg_worker_free(w);
            return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
        }
        if (i)
            strcat(w->queue_list, ",");
        strcat(w->queue_list, w->queues[i]);
    }
    for (int k = 0; k < BG__K_COUNT; k++)
        bg__key(w->key_prefix[k], sizeof w->key_prefix[k], w->ns, (bg__key_kind)k, "");
    pthread_mutex_init(&w->mu, NULL);
    bg__cancels_init(&w->cancels);
    pthread_cond_init(&w->cv, NULL);
    *out = w;
    return BG_OK;
}

bg_registry *bg_worker_registry(bg_worker *w) {
    return &w->reg;
}

int bg_worker_add_exec(bg_worker *w, const char *cls, const char *command) {
    return bg__registry_add_exec(&w->reg, cls, command);
}

int bg_worker_load_plugin(bg_worker *w, const char *path) {
    char *errbuf = w->err;
    size_t errlen = sizeof w->err;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        bg__fmt(errbuf, errlen, "cannot load plugin %s: %s", path, dlerror());
        return BG_EPLUGIN;
    }
    bg_plugin_init_fn init;
    *(void **)&init = dlsym(h, BG_PLUGIN_INIT_SYMBOL);
    if (!init) {
        bg__fmt(errbuf, errlen, "plugin %s has no %s()", path, BG_PLUGIN_INIT_SYMBOL);
        dlclose(h);
        return BG_EPLUGIN;
    }
    int rc = init(&w->reg);
    if (rc != 0) {
        bg__fmt(errbuf, errlen, "plugin %s: %s() returned %d", path, BG_PLUGIN_INIT_SYMBOL, rc);
        dlclose(h);
        return BG_EPLUGIN;
    }
    void **p = realloc(w->plugins, (w->nplugins + 1) * sizeof *p);
    if (!p) {
        dlclose(h);
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    }
    w->plugins = p;
    w->plugins[w->nplugins++] = h;
    return BG_OK;
}

void bg_worker_signal(bg_worker *w, bg_worker_request req) {
    switch (req) {
    case BG_WORKER_STOP:
        atomic_fetch_add(&w->req_stop, 1);
        break;
    case BG_WORKER_HALT:
        atomic_store(&w->req_halt, 1);
        break;
    case BG_WORKER_QUIET:
        atomic_store(&w->req_quiet, 1);
        break;
    case BG_WORKER_RESUME:
        atomic_store(&w->req_quiet, 0);
        break;
    case BG_WORKER_HANGUP:
        atomic_fetch_add(&w->req_hangup, 1);
        break;
    }
}

/* ---- the main connection ---- */

typedef struct {
    bg__notify n;
    int down_logged;
    int warned_policy;
    double next_try_ms, delay_ms;
    int told_ready;        /* BG_EVENT_READY was sent */
    double healthy_at;     /* when BG_EVENT_HEALTHY was last sent (monotonic ms) */
    bg__sentinel_watch sw; /* for a redis-sentinel:// URL: the primary's moves */
} main_state;

/* Tells the program the worker serves (READY the first time), with what. */
static void tell_serving(bg_worker *w, main_state *m) {
    if (!m->told_ready) {
        m->told_ready = 1;
        bg__event(&w->events, BG_EVENT_READY, NULL);
    }
    bg__event(&w->events, BG_EVENT_STATUS, "%s queues %s with %d fibers",
              atomic_load(&w->quiet) ? "quiet: taking no jobs from" : "serving", w->queue_list,
              w->concurrency);
}

/* HEALTHY about once a second, while the main connection is up and answers its PINGs. */
static void tell_health(bg_worker *w, main_state *m) {
    double now = bg__mono_ms();
    if (!bg__conn_ok(&m->n.conn) || m->n.hung || now - m->healthy_at < 1000)
        return;
    m->healthy_at = now;
    bg__event(&w->events, BG_EVENT_HEALTHY, NULL);
}

/* Warns once when Redis may evict keys: an evicted job hash or list is a lost job. */
static void check_policy(bg_worker *w, main_state *m) {
    const char *argv[] = {"CONFIG", "GET", "maxmemory-policy"};
    redisReply *r = bg__conn_cmd(&m->n.conn, 3, argv, NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        if (strcmp(r->element[1]->str, "noeviction") != 0)
            bg__log(&w->log, BG_LOG_WARN, BG__ROLE,
                    "Redis maxmemory-policy is '%s', not 'noeviction': under memory pressure "
                    "Redis may evict jobs",
                    r->element[1]->str);
        m->warned_policy = 1;
    } else if (r) {
        bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "cannot read maxmemory-policy (ACL?)");
        m->warned_policy = 1;
    }
    if (r)
        freeReplyObject(r);
}

/* A key Redis reported as changed: a pause or resume (fibers read NS:paused again), or a cancel
 * request (fibers look for its attempt). A ready list's change needs nothing here: every report
 * wakes an idle fiber (main_poll). */
static void saw_key(void *ud, const char *key, size_t len) {
    bg_worker *w = ud;
    const char *paused = w->key_prefix[BG__K_PAUSED], *cancel = w->key_prefix[BG__K_CANCEL];
    size_t np = strlen(paused), nc = strlen(cancel);
    if (len == np && memcmp(key, paused, np) == 0)
        atomic_fetch_add(&w->paused_gen, 1);
    else if (len > nc && memcmp(key, cancel, nc) == 0)
        bg__cancels_add(&w->cancels, key + nc, len - nc);
}

/* Connects the main connection, registers the queues, and subscribes it to Redis's reports of
 * changes to ready lists, NS:paused and cancel requests: that is how an idle worker blocks in
 * Redis on several lists at once without popping (docs/claim.md), and how a pause, a resume or
 * a cancel reaches it within milliseconds. */
static int main_connect(bg_worker *w, main_state *m) {
    char name[512], role[400];
    bg__conn *c = &m->n.conn;
    bg__fmt(role, sizeof role, "worker:%s", w->queue_list);
    bg__client_name(name, sizeof name, w->ns, role);
    int rc = bg__conn_open(c, &w->url, w->url_masked, name, BG__CONNECT_TIMEOUT_MS);
    if (rc != BG_OK)
        return rc;
    if (!m->warned_policy)
        check_policy(w, m);

    bg__args a;
    bg__args_init(&a);
    bg__args_str(&a, "SADD");
    bg__args_str(&a, w->key_prefix[BG__K_QUEUES]);
    for (size_t i = 0; i < w->nqueues; i++)
        bg__args_str(&a, w->queues[i]);
    redisReply *r = bg__conn_cmd_args(c, &a);
    bg__args_free(&a);
    if (r)
        freeReplyObject(r);

    const char *prefixes[] = {w->key_prefix[BG__K_READY], w->key_prefix[BG__K_PAUSED],
                              w->key_prefix[BG__K_CANCEL]};
    m->n.on_key = saw_key;
    m->n.ud = w;
    /* Reports sent while the connection was down are lost: the paused set is read anew. */
    atomic_fetch_add(&w->paused_gen, 1);
    if (bg__notify_track(c, c->id, prefixes, 3, 0) == BG_EACL)
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "%s: idle fibers will look for jobs every second",
                c->err);
    if (bg__notify_subscribe(&m->n) != BG_OK)
        return BG_EIO;
    return BG_OK;
}

/* Waits up to wait_ms for news on the main connection; any change to a ready list (or a
 * flush) wakes idle fibers. */
static void main_poll(bg_worker *w, main_state *m, int wait_ms) {
    unsigned paused = atomic_load(&w->paused_gen);
    int got = bg__notify_wait(&m->n, wait_ms);
    /* NS:paused changed: every fiber must read it again; else one fiber a report. */
    if (got > 0 && atomic_load(&w->paused_gen) != paused)
        bg__fibers_wake(w);
    else if (got > 0)
        bg__fibers_wake_some(w, got);
    else if (got < 0 && m->n.hung && !m->down_logged) {
        /* docs/operations.md#logs: connection lost and restored are Info, and said once. */
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE,
                "lost the connection to Redis at %s: it stopped answering", w->url_masked);
        bg__event(&w->events, BG_EVENT_STATUS, "lost the connection to Redis at %s", w->url_masked);
        m->down_logged = 1;
    }
}

/* Keeps the main connection up: logs a loss once, retries with capped backoff, and publishes
 * the new client ID so the fibers rename themselves. */
static void main_keepalive(bg_worker *w, main_state *m) {
    double now = bg__mono_ms();
    if (bg__conn_ok(&m->n.conn))
        return;
    if (atomic_load(&w->main_id) > 0) {
        atomic_store(&w->main_id, 0);
        if (!m->down_logged) {
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "lost the connection to Redis at %s",
                    w->url_masked);
            bg__event(&w->events, BG_EVENT_STATUS, "lost the connection to Redis at %s",
                      w->url_masked);
        }
        m->down_logged = 1;
        m->delay_ms = BG__REDIAL_MS;
        m->next_try_ms = now;
    }
    if (now < m->next_try_ms)
        return;
    if (main_connect(w, m) != BG_OK) {
        bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "%s", m->n.conn.err);
        m->delay_ms = bg__backoff(m->delay_ms);
        m->next_try_ms = now + m->delay_ms;
        return;
    }
    if (m->down_logged)
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "reconnected to Redis at %s", w->url_masked);
    m->down_logged = 0;
    atomic_store(&w->main_id, m->n.conn.id);
    bg__fibers_wake(w);
    tell_serving(w, m);
}

/* ---- the fibers ---- */

static int start_fibers(bg_worker *w, char *errbuf, size_t errlen) {
    w->fibers = calloc((size_t)w->concurrency, sizeof *w->fibers);
    if (!w->fibers)
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    for (int i = 0; i < w->concurrency; i++) {
        int rc = bg__fiber_start(w, i, &w->fibers[i]);
        if (rc != BG_OK)
            return fail(errbuf, errlen, rc, "cannot start fiber threads");
    }
    return BG_OK;
}

static int all_exited(const bg_worker *w) {
    for (int i = 0; i < w->concurrency; i++)
        if (w->fibers[i] && !bg__fiber_exited(w->fibers[i]))
            return 0;
    return 1;
}

/* Frees the fibers that have exited. Returns 1 when none is left. */
static int free_fibers(bg_worker *w) {
    int left = 0;
    for (int i = 0; w->fibers && i < w->concurrency; i++) {
        bg__fiber *f = w->fibers[i];
        if (f && bg__fiber_exited(f) && bg__fiber_free(f))
            w->fibers[i] = NULL;
        left += w->fibers[i] != NULL;
    }
    return left == 0;
}

/* ---- running ---- */

/* The main loop's state. */
typedef struct {
    main_state m;
    bg__heartbeat hb;                      /* the worker's row in bg-cli workers */
    double stop_at, cutoff_at, abandon_at; /* monotonic ms; 0 while not yet */
} run_state;

/* Connects the main connection and starts the fibers. The first connection tells a wrong
 * password or a refused command at once; an unreachable server is waited for, as after any
 * loss. */
static int start(bg_worker *w, run_state *s, char *errbuf, size_t errlen) {
    s->m.delay_ms = BG__REDIAL_MS;
    int rc = main_connect(w, &s->m);
    if (rc == BG_EREDIS || rc == BG_EACL || rc == BG_ENOMEM || rc == BG_ENOMASTER) {
        bg__fmt(errbuf, errlen, "%s%s", s->m.n.conn.err,
                s->m.n.conn.client_refused ? " (where CLIENT is forbidden, run workers and "
                                             "watchers with --liveness lease)"
                                           : "");
        return rc;
    }
    if (rc != BG_OK) {
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "%s; retrying", s->m.n.conn.err);
        bg__event(&w->events, BG_EVENT_STATUS, "no connection to Redis at %s: %s", w->url_masked,
                  s->m.n.conn.err);
        s->m.down_logged = 1;
    } else {
        atomic_store(&w->main_id, s->m.n.conn.id);
    }
    bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "started: queues %s, %d fibers, namespace %s, Redis %s",
            w->queue_list, w->concurrency, w->ns, w->url_masked);
    if ((rc = start_fibers(w, errbuf, errlen)) != BG_OK) {
        atomic_store(&w->req_halt, 1);
        bg__fibers_wake(w);
        bg__conn_close(&s->m.n.conn);
    } else if (atomic_load(&w->main_id) > 0) {
        tell_serving(w, &s->m);
    }
    return rc;
}

/* Turns the requests bg_worker_signal() stored into the flags the fibers read. Returns 1 when
 * the worker must stop now (a halt, or a second STOP). */
static int take_requests(bg_worker *w, run_state *s, double now) {
    if (atomic_load(&w->req_halt) || atomic_load(&w->req_stop) >= 2) {
        atomic_store(&w->req_halt, 1);
        bg__fibers_wake(w);
        return 1;
    }
    if (atomic_load(&w->req_stop) == 1 && !atomic_load(&w->stopping)) {
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE,
                "stopping: taking no new jobs, waiting up to %.1f s for running ones",
                w->shutdown_timeout_ms / 1000);
        atomic_store(&w->stopping, 1);
        s->stop_at = now;
        bg__fibers_wake(w);
        bg__event(&w->events, BG_EVENT_STOPPING, NULL);
        bg__event(&w->events, BG_EVENT_STATUS, "stopping: waiting for running jobs");
    }
    if (atomic_exchange(&w->req_hangup, 0) > 0)
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "SIGHUP ignored");
    if (atomic_load(&w->req_quiet) != atomic_load(&w->quiet)) {
        int q = atomic_load(&w->req_quiet);
        atomic_store(&w->quiet, q);
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE, q ? "quiet: taking no new jobs" : "resumed");
        bg__fibers_wake(w);
        if (atomic_load(&w->main_id) > 0)
            tell_serving(w, &s->m);
    }
    return 0;
}

/* One step of a graceful stop: the shutdown timeout turns into the cut-off, the cut-off after
 * KILL_GRACE_MS into the abandon of what still runs. Returns 1 once the fibers have all exited,
 * or when those that have not are given up on (left running, their memory kept). */
static int shutdown_step(bg_worker *w, run_state *s, double now) {
    if (all_exited(w))
        return 1;
    if (!s->cutoff_at && now - s->stop_at >= w->shutdown_timeout_ms) {
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "shutdown timeout: ending running jobs");
        s->cutoff_at = now;
        atomic_store(&w->cutoff, 1);
        bg__fibers_wake(w);
    }
    if (s->cutoff_at && !s->abandon_at && now - s->cutoff_at >= KILL_GRACE_MS) {
        s->abandon_at = now;
        atomic_store(&w->abandon, 1);
        bg__fibers_wake(w);
    }
    return s->abandon_at && now - s->abandon_at >= ABANDON_WAIT_MS;
}

/* Waits a tick for news on the main connection, or just a tick while it is down. */
static void main_wait(bg_worker *w, main_state *m) {
    if (bg__conn_ok(&m->n.conn))
        main_poll(w, m, TICK_MS);
    else
        bg__sleep_ms(TICK_MS);
}

const char *bg_worker_errmsg(const bg_worker *w) {
    return w ? w->err : "";
}

int bg_worker_run(bg_worker *w) {
    char *errbuf = w->err;
    size_t errlen = sizeof w->err;
    w->err[0] = '\0';
    run_state s;
    memset(&s, 0, sizeof s);
    int rc = start(w, &s, errbuf, errlen);
    if (rc != BG_OK)
        return rc;
    for (;;) {
        double now = bg__mono_ms();
        if (take_requests(w, &s, now)) {
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "stopping now");
            if (!atomic_load(&w->stopping))
                bg__event(&w->events, BG_EVENT_STOPPING, NULL);
            bg__conn_close(&s.m.n.conn);
            bg__sentinel_watch_close(&s.m.sw);
            return 1;
        }
        if (atomic_load(&w->stopping) && shutdown_step(w, &s, now))
            break;
        /* The fibers' connections to the old primary close before their next command
         * (bg__url.gen); the main one, which only waits for news, is closed here. */
        if (bg__sentinel_watch_poll(&s.m.sw, &w->url, &w->log, BG__ROLE))
            bg__conn_close(&s.m.n.conn);
        main_keepalive(w, &s.m);
        bg__heartbeat_beat(w, &s.hb);
        tell_health(w, &s.m);
        main_wait(w, &s.m);
    }
    free_fibers(w);
    bg__heartbeat_end(w, &s.hb);
    bg__conn_close(&s.m.n.conn);
    bg__sentinel_watch_close(&s.m.sw);
    bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "stopped");
    return 0;
}

void bg_worker_free(bg_worker *w) {
    if (!w)
        return;
    /* A fiber still running (after a halt) or one whose runner was left to a handler that
     * ignored the cut-off may still read the worker: then its memory is left be. */
    if (w->fibers && !free_fibers(w))
        return;
    free(w->fibers);
    bg__registry_free(&w->reg);
    for (size_t i = 0; i < w->nplugins; i++)
        dlclose(w->plugins[i]);
    free(w->plugins);
    for (size_t i = 0; w->queues && i < w->nqueues; i++)
        free(w->queues[i]);
    free(w->queues);
    free(w->queue_list);
    free(w->ns);
    free(w->url_str);
    free(w->url_masked);
    bg__url_clear(&w->url);
    pthread_mutex_destroy(&w->mu);
    bg__cancels_destroy(&w->cancels);
    pthread_cond_destroy(&w->cv);
    bg__ratelimit_destroy(&w->findings);
    free(w);
}
