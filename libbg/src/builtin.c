/* builtin.c: the handlers every worker has (docs/worker.md, Dispatch): bg.noop, bg.sleep {"ms":N}
 * (which honours cancellation) and bg.fail {"err":"Name","msg":"text"}. */
#include <string.h>

#include <jansson.h>

#include "worker_int.h"

static int noop(const bg_job *job, bg_error *err, void *ud) {
    (void)job;
    (void)err;
    (void)ud;
    return 0;
}

/* Parses the job's arg as a JSON object, or names the failure. */
static json_t *arg_object(const bg_job *job, bg_error *err) {
    json_error_t jerr;
    json_t *o = json_loadb(job->arg, job->arg_len, 0, &jerr);
    if (!o || !json_is_object(o)) {
        bg_error_set(err, "ArgumentError", "%s expects a JSON object: %s", job->cls,
                     o ? "not an object" : jerr.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

static int sleep_ms(const bg_job *job, bg_error *err, void *ud) {
    (void)ud;
    json_t *o = arg_object(job, err);
    if (!o)
        return -1;
    json_t *ms = json_object_get(o, "ms");
    if (!json_is_number(ms) || json_number_value(ms) < 0 || json_number_value(ms) > 86400e3) {
        bg_error_set(err, "ArgumentError", "bg.sleep expects {\"ms\": N} with 0 <= N <= 86400000");
        json_decref(o);
        return -1;
    }
    double until = bg__mono_ms() + json_number_value(ms);
    json_decref(o);
    /* Sleep in short slices so a cancellation (timeout, shutdown) is seen within 10 ms. */
    for (;;) {
        double left = until - bg__mono_ms();
        if (left <= 0)
            return 0;
        if (bg_job_cancelled(job)) {
            bg_error_set(err, "Cancelled", "bg.sleep was cancelled");
            return -1;
        }
        bg__sleep_ms(left < 10 ? left : 10);
    }
}

static int fail(const bg_job *job, bg_error *err, void *ud) {
    (void)ud;
    json_t *o = arg_object(job, err);
    if (!o)
        return -1;
    const char *name = json_string_value(json_object_get(o, "err"));
    const char *msg = json_string_value(json_object_get(o, "msg"));
    bg_error_set(err, name && *name ? name : "bg.fail", "%s", msg ? msg : "");
    json_decref(o);
    return -1;
}

bg_handler_fn bg__builtin_find(const char *cls) {
    if (strcmp(cls, "bg.noop") == 0)
        return noop;
    if (strcmp(cls, "bg.sleep") == 0)
        return sleep_ms;
    if (strcmp(cls, "bg.fail") == 0)
        return fail;
    return NULL;
}
