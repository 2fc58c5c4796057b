/* registry.c: the table of class names a worker dispatches on (plugin handlers and exec
 * mappings), and the accessors the plugin ABI gives handlers for their job and error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_int.h"

static int add(bg_registry *reg, const char *cls, bg_handler_fn fn, void *userdata,
               const char *command) {
    if (!reg || !cls || !*cls || (!fn && !command))
        return BG_EINVAL;
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->items[i].cls, cls) == 0 && (reg->items[i].fn != NULL) == (fn != NULL))
            return BG_EEXIST;
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        bg__handler *items = realloc(reg->items, cap * sizeof *items);
        if (!items)
            return BG_ENOMEM;
        reg->items = items;
        reg->cap = cap;
    }
    bg__handler *h = &reg->items[reg->n];
    h->cls = bg__strdup(cls);
    h->command = command ? bg__strdup(command) : NULL;
    h->fn = fn;
    h->userdata = userdata;
    if (!h->cls || (command && !h->command)) {
        free(h->cls);
        free(h->command);
        return BG_ENOMEM;
    }
    reg->n++;
    return BG_OK;
}

int bg_registry_add(bg_registry *reg, const char *cls, bg_handler_fn fn, void *userdata) {
    if (!fn)
        return BG_EINVAL;
    return add(reg, cls, fn, userdata, NULL);
}

int bg__registry_add_exec(bg_registry *reg, const char *cls, const char *command) {
    if (!command || !*command)
        return BG_EINVAL;
    return add(reg, cls, NULL, NULL, command);
}

/* Dispatch order of docs/worker.md (Dispatch): a plugin handler, an exec mapping for the exact
 * class, a built-in, the "*" exec catch-all. The caller handles built-ins between the two lookups,
 * so this finds one kind at a time: fn handlers first, then exact exec mappings. */
const bg__handler *bg__registry_find(const bg_registry *reg, const char *cls) {
    for (size_t i = 0; i < reg->n; i++)
        if (reg->items[i].fn && strcmp(reg->items[i].cls, cls) == 0)
            return &reg->items[i];
    for (size_t i = 0; i < reg->n; i++)
        if (!reg->items[i].fn && strcmp(reg->items[i].cls, cls) == 0)
            return &reg->items[i];
    return NULL;
}

void bg__registry_free(bg_registry *reg) {
    for (size_t i = 0; i < reg->n; i++) {
        free(reg->items[i].cls);
        free(reg->items[i].command);
    }
    free(reg->items);
    memset(reg, 0, sizeof *reg);
}

const char *bg_job_id(const bg_job *job) {
    return job->id;
}

const char *bg_job_attempt_id(const bg_job *job) {
    return job->attempt_id;
}

const char *bg_job_class(const bg_job *job) {
    return job->cls;
}

const char *bg_job_queue(const bg_job *job) {
    return job->queue;
}

const char *bg_job_arg(const bg_job *job, size_t *len) {
    if (len)
        *len = job->arg_len;
    return job->arg;
}

int bg_job_attempt(const bg_job *job) {
    return job->attempt;
}

int bg_job_cancelled(const bg_job *job) {
    return job && job->cancel && atomic_load(job->cancel);
}

void bg_error_set(bg_error *err, const char *err_class, const char *fmt, ...) {
    char msg[4096];
    if (!err)
        return;
    err->set = 1;
    bg__fmt(err->err, sizeof err->err, "%s", err_class ? err_class : "HandlerError");
    err->msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (n > 0)
            bg__utf8_cut(msg, strlen(msg), BG__MSG_MAX, err->msg);
    }
}
