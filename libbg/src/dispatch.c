/* dispatch.c: runs one claimed job: picks its handler in the order of docs/worker.md
 * (Dispatch: plugin, exact exec mapping, built-in, "*" exec catch-all), runs it on the calling
 * thread (a fiber's runner), and turns what happened into the outcome finish.lua records. It
 * reads the worker's configuration and its cut-off flag, and writes nothing but *out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "worker_int.h"

extern char **environ;

static const char *const env_names[] = {"BG_JOB_ID",  "BG_ATTEMPT_ID", "BG_CLASS",    "BG_QUEUE",
                                        "BG_ATTEMPT", "BG_NAMESPACE",  "BG_REDIS_URL"};
#define NENV (sizeof env_names / sizeof env_names[0])

static int is_ours(const char *entry) {
    for (size_t i = 0; i < NENV; i++) {
        size_t n = strlen(env_names[i]);
        if (strncmp(entry, env_names[i], n) == 0 && entry[n] == '=')
            return 1;
    }
    return 0;
}

/* The child's environment: the worker's own, with the job's BG_* variables set (docs/worker.md,
 * The exec protocol). The strings of the job part are allocated into *owned; free both with
 * free_env(). */
static char **build_env(const bg_worker *w, const bg_job *job, char **owned) {
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + NENV + 1) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_ours(environ[i]))
            env[k++] = environ[i];
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", job->attempt);
    const char *values[NENV] = {job->id, job->attempt_id, job->cls,  job->queue,
                                attempt, w->ns,           w->url_str};
    for (size_t i = 0; i < NENV; i++) {
        size_t len = strlen(env_names[i]) + strlen(values[i]) + 2;
        owned[i] = malloc(len);
        if (!owned[i]) {
            for (size_t j = 0; j < i; j++)
                free(owned[j]);
            free(env);
            return NULL;
        }
        snprintf(owned[i], len, "%s=%s", env_names[i], values[i]);
        env[k++] = owned[i];
    }
    env[k] = NULL;
    return env;
}

typedef struct {
    const bg_worker *w;
    const bg_job *job;
} output_ctx;

static void on_output(void *ud, int is_stderr, const char *line, size_t len) {
    const output_ctx *o = ud;
    bg__log(&o->w->log, BG_LOG_DEBUG, BG__ROLE, "[%s] %s: %.*s", o->job->attempt_id,
            is_stderr ? "stderr" : "stdout", (int)len, line);
}

static void fail(bg__outcome *out, const char *err, const char *msg) {
    bg__outcome_set(out, BG__OUTCOME_FAIL, err, msg);
}

/* Stopped by bg-cli cancel: the job goes dead at once, retries or not (docs/cli.md#cancel). */
static void canceled(bg__outcome *out) {
    bg__outcome_set(out, BG__OUTCOME_DEAD, "Canceled", "canceled (bg-cli cancel)");
}

static void shut_down(bg__outcome *out) {
    bg__outcome_set(out, BG__OUTCOME_SHUTDOWN, "Worker Shutdown", "ended by the worker's shutdown");
}

static void run_exec(const bg_worker *w, const bg_job *job, const char *command,
                     const atomic_int *cancel, bg__outcome *out) {
    char *owned[NENV];
    char **env = build_env(w, job, owned);
    if (!env) {
        fail(out, "ExecError", "out of memory building the environment");
        return;
    }
    output_ctx octx = {w, job};
    bg__exec_params p = {
        .command = command,
        .input = job->arg,
        .input_len = job->arg_len,
        .env = env,
        .timeout_ms = w->job_timeout_ms,
        .cutoff = &w->cutoff,
        .cancel = cancel,
        .on_output = bg__log_enabled(&w->log, BG_LOG_DEBUG) ? on_output : NULL,
        .ud = &octx,
    };
    bg__exec_result res;
    memset(&res, 0, sizeof res);
    bg__exec_run(&p, &res);
    for (size_t i = 0; i < NENV; i++)
        free(owned[i]);
    free(env);
    switch (res.outcome) {
    case BG__EXEC_OK:
        out->kind = BG__OUTCOME_OK;
        break;
    case BG__EXEC_CUTOFF:
        shut_down(out);
        break;
    case BG__EXEC_CANCELED:
        canceled(out);
        break;
    default:
        fail(out, res.err[0] ? res.err : "ExecError", res.msg);
        break;
    }
}

static void run_fn(const bg_worker *w, const bg_job *job, bg_handler_fn fn, void *ud,
                   const atomic_int *timed_out, const atomic_int *cancel, bg__outcome *out) {
    bg_error e;
    memset(&e, 0, sizeof e);
    int rc = fn(job, &e, ud);
    if (rc == 0) {
        out->kind = BG__OUTCOME_OK;
    } else if (atomic_load(&w->cutoff) && atomic_load(job->cancel)) {
        shut_down(out);
    } else if (atomic_load(cancel)) {
        canceled(out);
    } else if (atomic_load(timed_out)) {
        char msg[64];
        bg__fmt(msg, sizeof msg, "timed out after %.3f s", w->job_timeout_ms / 1000);
        fail(out, "Timeout", msg);
    } else {
        fail(out, e.set && e.err[0] ? e.err : "HandlerError", e.msg);
    }
}

void bg__dispatch(const bg_worker *w, const bg_job *job, const atomic_int *timed_out,
                  const atomic_int *canceled, bg__outcome *out) {
    const bg__handler *h = bg__registry_find(&w->reg, job->cls);
    bg_handler_fn fn = NULL;
    void *ud = NULL;
    const char *command = NULL;

    if (h && h->fn) {
        fn = h->fn;
        ud = h->userdata;
    } else if (h) {
        command = h->command;
    } else if ((fn = bg__builtin_find(job->cls)) == NULL &&
               (h = bg__registry_find(&w->reg, "*")) != NULL && !h->fn) {
        command = h->command;
    }

    double t0 = bg__mono_ms();
    if (!fn && !command) {
        char msg[300];
        bg__fmt(msg, sizeof msg, "no handler for class '%.200s'", job->cls);
        fail(out, "UnknownJobClass", msg);
    } else if (fn) {
        run_fn(w, job, fn, ud, timed_out, canceled, out);
    } else {
        run_exec(w, job, command, canceled, out);
    }
    bg__fmt(out->time, sizeof out->time, "%.3f", bg__mono_ms() - t0);
}
