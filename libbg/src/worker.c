/* worker.c: a worker's lifecycle: options, plugins, the fibers, and the main thread, which
 * holds the main connection (named NS-worker:<queues>), turns Redis's reports of ready-list
 * changes into wake-ups for idle fibers, watches the fibers' connections and job timeouts, and
 * runs the shutdown of SPEC §6. */
#include <dlfcn.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heartbeat.h"
#include "worker_int.h"

#define TICK_MS 20
#define CONNECT_TIMEOUT_MS 3000
#define KILL_GRACE_MS (5000 + 1500) /* exec.c's TERM-to-KILL delay, and a margin */
/* A fiber waits for a reply as long as Redis may take to build a claim of one largest job. */
#define FIBER_TIMEOUT_MS (CONNECT_TIMEOUT_MS + (int)(1000.0 * BG__ARG_MAX / BG__CLAIM_SLOW_RATE))

void bg_worker_options_init(bg_worker_options *o) {
    memset(o, 0, sizeof *o);
    o->concurrency = 10;
    o->retries = 25;
    o->shutdown_timeout_s = 25;
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
    if (o->concurrency < 1 || o->concurrency > 1000)
        return fail(errbuf, errlen, BG_EINVAL, "concurrency must be from 1 to 1000");
    if (o->retries < 0 || o->job_timeout_s < 0 || o->shutdown_timeout_s < 0)
        return fail(errbuf, errlen, BG_EINVAL, "retries and timeouts must not be negative");
    for (size_t i = 0; i < nq; i++)
        if (!bg_queue_valid(queues[i]))
            return fail(errbuf, errlen, BG_EINVAL,
                        "invalid queue name: 1 to 128 of A-Z a-z 0-9 _ . -");

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
    w->job_timeout_ms = o->job_timeout_s * 1000;
    w->shutdown_timeout_ms = o->shutdown_timeout_s * 1000;
    w->log = o->log;
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

int bg_worker_load_plugin(bg_worker *w, const char *path, char *errbuf, size_t errlen) {
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

void bg__worker_wake(bg_worker *w) {
    pthread_mutex_lock(&w->mu);
    w->gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int bg__worker_connect(bg_worker *w, bg__conn *c, const char *name) {
    return bg__conn_open(c, &w->url, w->url_masked, name, CONNECT_TIMEOUT_MS);
}

int bg__worker_connect_fiber(bg_worker *w, bg__conn *c, const char *name) {
    int rc = bg__worker_connect(w, c, name);
    if (rc == BG_OK)
        bg__conn_set_timeout(c, FIBER_TIMEOUT_MS);
    return rc;
}

/* ---- the main connection ---- */

typedef struct {
    bg__notify n;
    int down_logged;
    int warned_policy;
    double next_try_ms, delay_ms;
} main_state;

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

/* Connects the main connection, registers the queues, and subscribes it to Redis's reports of
 * changes to ready lists: that is how an idle worker blocks in Redis on several lists at once
 * without popping (docs/claim.md). */
static int main_connect(bg_worker *w, main_state *m) {
    char name[512], role[400];
    bg__conn *c = &m->n.conn;
    bg__fmt(role, sizeof role, "worker:%s", w->queue_list);
    bg__client_name(name, sizeof name, w->ns, role);
    int rc = bg__worker_connect(w, c, name);
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

    if (bg__notify_track(c, c->id, w->key_prefix[BG__K_READY], 0) == BG_EACL)
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "%s: idle fibers will look for jobs every second",
                c->err);
    if (bg__notify_subscribe(&m->n) != BG_OK)
        return BG_EIO;
    return BG_OK;
}

/* Waits up to wait_ms for news on the main connection; any change to a ready list (or a
 * flush) wakes the idle fibers. */
static void main_poll(bg_worker *w, main_state *m, int wait_ms) {
    int got = bg__notify_wait(&m->n, wait_ms);
    if (got > 0)
        bg__worker_wake(w);
    else if (got < 0 && m->n.hung && !m->down_logged) {
        /* SPEC §10: connection lost and restored are Info, and said once. */
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE,
                "lost the connection to Redis at %s: it stopped answering", w->url_masked);
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
        if (!m->down_logged)
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "lost the connection to Redis at %s",
                    w->url_masked);
        m->down_logged = 1;
        m->delay_ms = 10;
        m->next_try_ms = now;
    }
    if (now < m->next_try_ms)
        return;
    if (main_connect(w, m) != BG_OK) {
        bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "%s", m->n.conn.err);
        m->delay_ms = m->delay_ms * 2 > 1000 ? 1000 : m->delay_ms * 2;
        m->next_try_ms = now + m->delay_ms;
        return;
    }
    if (m->down_logged)
        bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "reconnected to Redis at %s", w->url_masked);
    m->down_logged = 0;
    atomic_store(&w->main_id, m->n.conn.id);
    bg__worker_wake(w);
}

/* ---- fibers ---- */

/* While a fiber runs a job its connection sits idle: notice at once when Redis closed it
 * (CLIENT KILL, restart) and re-own the running attempt before a watcher's grace runs out. */
static void tend_fiber(bg_worker *w, bg__fiber *f, double now) {
    pthread_mutex_lock(&f->mu);
    int busy = f->busy, exec = f->cur_exec;
    double started = f->started_ms;
    pthread_mutex_unlock(&f->mu);
    if (busy && !exec && w->job_timeout_ms > 0 && now - started > w->job_timeout_ms &&
        !atomic_load(&f->timed_out)) {
        atomic_store(&f->timed_out, 1);
        atomic_store(&f->cancel, 1);
    }
    if (!busy || pthread_mutex_trylock(&f->conn_mu) != 0)
        return;
    if (bg__conn_ok(&f->conn)) {
        struct pollfd p = {f->conn.rc->fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            bg__conn_close(&f->conn); /* nothing is outstanding: readable means closed */
    }
    if (!bg__conn_ok(&f->conn) && atomic_load(&w->main_id) > 0)
        bg__fiber_reconnect(f);
    else
        bg__fiber_rename(f);
    bg__fiber_tend_batch(f, now - started);
    pthread_mutex_unlock(&f->conn_mu);
}

static int start_fibers(bg_worker *w, char *errbuf, size_t errlen) {
    w->fibers = calloc((size_t)w->concurrency, sizeof *w->fibers);
    if (!w->fibers)
        return fail(errbuf, errlen, BG_ENOMEM, "out of memory");
    for (int i = 0; i < w->concurrency; i++) {
        bg__fiber *f = &w->fibers[i];
        f->w = w;
        f->index = i;
        f->conn.id = -1;
        f->seed = (unsigned)(getpid() ^ (i * 7919) ^ (unsigned)bg__wall_ms());
        pthread_mutex_init(&f->mu, NULL);
        pthread_mutex_init(&f->conn_mu, NULL);
        if (pthread_create(&f->thread, NULL, bg__fiber_main, f) != 0)
            return fail(errbuf, errlen, BG_ESYS, "cannot start fiber threads");
        f->started = 1;
    }
    return BG_OK;
}

static int all_exited(const bg_worker *w) {
    for (int i = 0; i < w->concurrency; i++)
        if (w->fibers[i].started && !atomic_load(&w->fibers[i].exited))
            return 0;
    return 1;
}

/* At the very end of a shutdown: attempts whose handler ignored the cancellation are recorded
 * as cut off from here (their job back to ready), and their threads abandoned. */
static void abandon(bg_worker *w) {
    bg__conn c;
    memset(&c, 0, sizeof c);
    if (bg__worker_connect(w, &c, NULL) != BG_OK)
        return;
    for (int i = 0; i < w->concurrency; i++) {
        bg__fiber *f = &w->fibers[i];
        if (atomic_load(&f->exited))
            continue;
        pthread_mutex_lock(&f->mu);
        int busy = f->busy;
        char attempt[BG_UUID_LEN + 1], queue[129], took[32];
        /* Its processing time is what it ran until now, as for any attempt. */
        bg__fmt(took, sizeof took, "%.3f", bg__mono_ms() - f->started_ms);
        bg__fmt(attempt, sizeof attempt, "%s", f->cur_attempt);
        bg__fmt(queue, sizeof queue, "%s", f->cur_queue);
        pthread_mutex_unlock(&f->mu);
        if (!busy)
            continue;
        bg__args a;
        bg__finish_rec rec = {
            attempt, queue, "shutdown", took, "Worker Shutdown", "abandoned at the worker's exit",
            0,       NULL,  NULL,       0};
        bg__args_init(&a);
        bg__finish_args(&a, w->ns);
        bg__finish_record(&a, &rec);
        redisReply *r = bg__conn_eval(&c, BG__LUA_FINISH, 0, &a);
        const char *key = "", *what = "";
        bg__finish_code code = BG__FINISH_ODD;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
            code = bg__finish_result(r->element[0], &key, &what);
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "[%s] abandoned: its handler ignored the cut-off",
                attempt);
        if (code == BG__FINISH_REFUSED)
            bg__log(&w->log, BG_LOG_WARN, BG__ROLE,
                    "[%s] cannot record its outcome: %s: %s; the attempt stays processing, for a "
                    "watcher to fail",
                    attempt, key, what);
        if (r)
            freeReplyObject(r);
        bg__args_free(&a);
    }
    bg__conn_close(&c);
}

static void join_fibers(bg_worker *w) {
    for (int i = 0; i < w->concurrency; i++)
        if (w->fibers[i].started && atomic_load(&w->fibers[i].exited)) {
            pthread_join(w->fibers[i].thread, NULL);
            w->fibers[i].started = 0;
        }
}

int bg_worker_run(bg_worker *w, char *errbuf, size_t errlen) {
    main_state m;
    bg__heartbeat hb = {0};
    memset(&m, 0, sizeof m);
    m.delay_ms = 10;
    /* The first connection tells a wrong password or a refused command at once; an
     * unreachable server is waited for, as after any loss. */
    int rc = main_connect(w, &m);
    if (rc == BG_EREDIS || rc == BG_EACL || rc == BG_ENOMEM) {
        bg__fmt(errbuf, errlen, "%s", m.n.conn.err);
        return rc;
    }
    if (rc != BG_OK) {
        bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "%s; retrying", m.n.conn.err);
        m.down_logged = 1;
    } else {
        atomic_store(&w->main_id, m.n.conn.id);
    }
    bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "started: queues %s, %d fibers, namespace %s, Redis %s",
            w->queue_list, w->concurrency, w->ns, w->url_masked);
    if ((rc = start_fibers(w, errbuf, errlen)) != BG_OK) {
        atomic_store(&w->req_halt, 1);
        bg__worker_wake(w);
        return rc;
    }

    double stop_at = 0, cutoff_at = 0;
    for (;;) {
        double now = bg__mono_ms();
        if (atomic_load(&w->req_halt) || atomic_load(&w->req_stop) >= 2) {
            atomic_store(&w->req_halt, 1);
            bg__worker_wake(w);
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "stopping now");
            bg__conn_close(&m.n.conn);
            return 1;
        }
        if (atomic_load(&w->req_stop) == 1 && !atomic_load(&w->stopping)) {
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE,
                    "stopping: taking no new jobs, waiting up to %.1f s for running ones",
                    w->shutdown_timeout_ms / 1000);
            atomic_store(&w->stopping, 1);
            stop_at = now;
            bg__worker_wake(w);
        }
        if (atomic_exchange(&w->req_hangup, 0) > 0)
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "SIGHUP ignored");
        if (atomic_load(&w->req_quiet) != atomic_load(&w->quiet)) {
            int q = atomic_load(&w->req_quiet);
            atomic_store(&w->quiet, q);
            bg__log(&w->log, BG_LOG_INFO, BG__ROLE, q ? "quiet: taking no new jobs" : "resumed");
            bg__worker_wake(w);
        }
        if (atomic_load(&w->stopping)) {
            if (all_exited(w))
                break;
            if (!cutoff_at && now - stop_at >= w->shutdown_timeout_ms) {
                bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "shutdown timeout: ending running jobs");
                cutoff_at = now;
                for (int i = 0; i < w->concurrency; i++)
                    atomic_store(&w->fibers[i].cancel, 1);
                atomic_store(&w->cutoff, 1);
                bg__worker_wake(w);
            }
            if (cutoff_at && now - cutoff_at >= KILL_GRACE_MS) {
                abandon(w);
                bg__heartbeat_end(w, &hb);
                bg__conn_close(&m.n.conn);
                bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "stopped");
                return 0;
            }
        }
        main_keepalive(w, &m);
        bg__heartbeat_beat(w, &hb);
        if (bg__conn_ok(&m.n.conn))
            main_poll(w, &m, TICK_MS);
        else
            bg__sleep_ms(TICK_MS);
        for (int i = 0; i < w->concurrency; i++)
            tend_fiber(w, &w->fibers[i], bg__mono_ms());
    }
    join_fibers(w);
    bg__heartbeat_end(w, &hb);
    bg__conn_close(&m.n.conn);
    bg__log(&w->log, BG_LOG_INFO, BG__ROLE, "stopped");
    return 0;
}

void bg_worker_free(bg_worker *w) {
    if (!w)
        return;
    if (w->fibers) {
        /* Threads abandoned by a halt or a cut-off may still run: leave their memory be. */
        for (int i = 0; i < w->concurrency; i++)
            if (w->fibers[i].started)
                return;
        free(w->fibers);
    }
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
    pthread_cond_destroy(&w->cv);
    bg__ratelimit_destroy(&w->findings);
    free(w);
}
