/* enqueue.c: the producer's side of docs/schema.md#keys: enqueue one job or many (each atomically,
 * through enqueue.lua) and dequeue a job that still waits (dequeue.lua). */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* Jobs sent per write/read round of bg_enqueue_bulk(): enough to hide the round trip, few
 * enough that neither side buffers megabytes of commands or replies. */
#define BULK_CHUNK 512

void bg_job_spec_init(bg_job_spec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->retries = -1;
}

static int check_spec(bg_client *c, const bg_job_spec *s) {
    const char *q = s->queue ? s->queue : "default";
    if (!s->cls || !*s->cls)
        return bg__client_fail(c, BG_EINVAL, "a job needs a class name");
    if (!bg_queue_valid(q))
        return bg__client_fail(c, BG_EINVAL, "invalid queue '%s': 1 to 128 of A-Z a-z 0-9 _ . -",
                               q);
    if (s->at_ms < 0 || s->in_ms < 0)
        return bg__client_fail(c, BG_EINVAL, "a job's time cannot be negative");
    if (s->at_ms > 0 && s->in_ms > 0)
        return bg__client_fail(c, BG_EINVAL, "a job takes at or in, not both");
    if (s->retries < -1)
        return bg__client_fail(c, BG_EINVAL, "retries cannot be negative");
    return BG_OK;
}

/* The prefixes enqueue.lua takes as ARGV[1..4] (see its header). */
static void add_prefixes(bg__args *a, const char *ns) {
    char key[256];
    static const bg__key_kind kinds[] = {BG__K_JOBS, BG__K_READY, BG__K_SCHEDULED, BG__K_QUEUES};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        bg__key(key, sizeof key, ns, kinds[i], "");
        bg__args_str(a, key);
    }
}

/* Builds enqueue.lua's ARGV for one job, with a fresh UUID written into id. */
static void job_args(bg__args *a, const char *ns, const bg_job_spec *s, bg_uuid id) {
    const char *arg = s->arg ? s->arg : "{}";
    size_t arg_len = s->arg && s->arg_len ? s->arg_len : strlen(arg);
    bg_uuid_new(id);
    add_prefixes(a, ns);
    bg__args_str(a, id);
    bg__args_str(a, s->queue ? s->queue : "default");
    bg__args_str(a, s->cls);
    bg__args_add(a, arg, arg_len);
    if (s->retries >= 0)
        bg__args_ll(a, s->retries);
    else
        bg__args_str(a, "");
    if (s->at_ms > 0)
        bg__args_ll(a, s->at_ms);
    else
        bg__args_str(a, "");
    if (s->in_ms > 0)
        bg__args_ll(a, s->in_ms);
    else
        bg__args_str(a, "");
}

/* Turns a script's reply into a code, with a message naming the server on failure. */
static int check_reply(bg_client *c, const redisReply *r, const char *what) {
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return bg__client_reply_fail(c, r, what);
    return BG_OK;
}

int bg_enqueue(bg_client *c, const bg_job_spec *spec, bg_uuid id) {
    size_t done;
    return bg_enqueue_bulk(c, spec, 1, (bg_uuid *)id, &done);
}

/* Sends jobs [from, from+n) in one pipeline and reads their replies. NOSCRIPT replies (the
 * server lost its script cache) are run again one by one once the pipeline is drained: the
 * connection's own retry reads the next reply, which in a pipeline belongs to another job.
 * Returns BG_OK, or the first error with *ok set to the number of leading jobs enqueued. */
static int bulk_chunk(bg_client *c, const bg_job_spec *specs, size_t n, bg_uuid *ids, size_t *ok) {
    bg__args *argv = calloc(n, sizeof *argv);
    char *noscript = calloc(n, 1);
    size_t sent = 0;
    int rc = BG_OK;
    *ok = 0;
    if (!argv || !noscript) {
        rc = bg__client_fail(c, BG_ENOMEM, "out of memory");
        goto out;
    }
    for (; sent < n; sent++) {
        bg__args *a = &argv[sent];
        job_args(a, c->ns, &specs[sent], ids[sent]);
        if (bg__conn_append_eval(&c->conn, BG__LUA_ENQUEUE, 0, a) != BG_OK) {
            rc = bg__client_fail(c, BG_ENOMEM, "out of memory");
            break;
        }
    }
    /* Every reply of what was sent is read, so the connection stays in step. */
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = bg__conn_reply(&c->conn);
        int res;
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            noscript[i] = 1;
            res = BG_OK;
        } else {
            res = check_reply(c, r, "enqueue");
        }
        int lost = r == NULL;
        freeReplyObject(r);
        if (res != BG_OK) {
            if (rc == BG_OK)
                rc = res;
            if (lost)
                break; /* the connection is gone: nothing more to read */
        } else if (rc == BG_OK && !noscript[i]) {
            (*ok)++;
        }
    }
    for (size_t i = 0; i < sent && rc == BG_OK; i++) {
        if (!noscript[i])
            continue;
        bg__args *a = &argv[i];
        redisReply *r = bg__conn_eval(&c->conn, BG__LUA_ENQUEUE, 0, a);
        rc = check_reply(c, r, "enqueue");
        freeReplyObject(r);
        if (rc == BG_OK)
            (*ok)++;
    }
out:
    for (size_t i = 0; argv && i < n; i++)
        bg__args_free(&argv[i]);
    free(argv);
    free(noscript);
    return rc;
}

int bg_enqueue_bulk(bg_client *c, const bg_job_spec *specs, size_t n, bg_uuid *ids, size_t *done) {
    size_t ok_total = 0;
    int rc = BG_OK;
    if (done)
        *done = 0;
    if (!c || (n && (!specs || !ids)))
        return c ? bg__client_fail(c, BG_EINVAL, "no jobs to enqueue") : BG_EINVAL;
    /* Every job is checked before any is sent, so a bad one enqueues none. */
    for (size_t i = 0; i < n; i++)
        if ((rc = check_spec(c, &specs[i])) != BG_OK)
            return rc;
    if (n && (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    while (ok_total < n) {
        size_t chunk = n - ok_total < BULK_CHUNK ? n - ok_total : BULK_CHUNK, ok;
        rc = bulk_chunk(c, specs + ok_total, chunk, ids + ok_total, &ok);
        ok_total += ok;
        if (rc != BG_OK)
            break;
    }
    if (done)
        *done = ok_total;
    return rc;
}

int bg_dequeue(bg_client *c, const char *job_id) {
    char jobs[256], ready[256], sched[256];
    int rc;
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_start_job(c, job_id)) != BG_OK)
        return rc;
    bg__key(jobs, sizeof jobs, c->ns, BG__K_JOBS, "");
    bg__key(ready, sizeof ready, c->ns, BG__K_READY, "");
    bg__key(sched, sizeof sched, c->ns, BG__K_SCHEDULED, "");
    const char *argv[] = {jobs, ready, sched, job_id};
    redisReply *r = bg__conn_eval_strs(&c->conn, BG__LUA_DEQUEUE, 0, 4, argv);
    rc = check_reply(c, r, "dequeue");
    if (rc == BG_OK) {
        if (r->integer == 0)
            rc = bg__client_fail(c, BG_ENOTFOUND, "no job %s", job_id);
        else if (r->integer < 0)
            rc = bg__client_fail(c, BG_ESTATE,
                                 "job %s is not waiting in ready or scheduled (it is running, "
                                 "dead or finished)",
                                 job_id);
    }
    freeReplyObject(r);
    return rc;
}
