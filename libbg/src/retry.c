/* retry.c: puts dead jobs, and jobs waiting for their retry, back on their ready list now, for
 * `bg-cli retry`: one job (retry.lua), or every dead job of some queues (retry_dead.lua). */
#include <stdio.h>
#include <string.h>

#include "bg_int.h"

/* Dead jobs moved per script call: short enough that Redis never blocks for long, whatever the
 * size of the dead set. */
#define DEAD_BATCH 500

/* The key prefixes the two scripts take first. */
typedef struct {
    char jobs[256], ready[256], sched[256], dead[256];
} prefixes;

static void set_prefixes(prefixes *p, const char *ns) {
    bg__key(p->jobs, sizeof p->jobs, ns, BG__K_JOBS, "");
    bg__key(p->ready, sizeof p->ready, ns, BG__K_READY, "");
    bg__key(p->sched, sizeof p->sched, ns, BG__K_SCHEDULED, "");
    bg__key(p->dead, sizeof p->dead, ns, BG__K_DEAD, "");
}

/* Runs script id with its arguments; returns its reply (an array) or NULL after an error
 * reported on c, its code in *rc. */
static redisReply *run(bg_client *c, bg__script_id id, int argc, const char **argv, int *rc) {
    redisReply *r = bg__conn_eval_strs(&c->conn, id, 0, argc, argv);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        return r;
    *rc = bg__client_reply_fail(c, r, "retry");
    freeReplyObject(r);
    return NULL;
}

int bg_retry(bg_client *c, const char *job_id) {
    prefixes p;
    int rc;
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_start_job(c, job_id)) != BG_OK)
        return rc;
    set_prefixes(&p, c->ns);
    const char *argv[] = {p.jobs, p.ready, p.sched, p.dead, job_id};
    redisReply *r = run(c, BG__LUA_RETRY, 5, argv, &rc);
    if (!r)
        return rc;
    const char *why = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    if (r->element[0]->integer == 1)
        rc = BG_OK;
    else if (strcmp(why, "nojob") == 0)
        rc = bg__client_fail(c, BG_ENOTFOUND, "no job %s", job_id);
    else if (strcmp(why, "delayed") == 0)
        rc = bg__client_fail(c, BG_ESTATE,
                             "job %s is scheduled but has never run: it is not waiting for a "
                             "retry",
                             job_id);
    else
        rc = bg__client_fail(c, BG_ESTATE,
                             "job %s is neither dead nor waiting for a retry (it is ready, "
                             "running or finished)",
                             job_id);
    freeReplyObject(r);
    return rc;
}

/* Moves every dead job of queue q, DEAD_BATCH per call; adds what moved to *moved, and to
 * *kept the dead entries that cannot be revived (their job key holds another type), with one
 * of them described in kept_ex. */
static int retry_dead_queue(bg_client *c, const prefixes *p, const char *q, size_t *moved,
                            size_t *kept, char *kept_ex, size_t kept_len) {
    char batch[16], skip[24];
    long long skipped = 0;
    snprintf(batch, sizeof batch, "%d", DEAD_BATCH);
    const char *argv[] = {p->jobs, p->ready, p->dead, q, batch, skip};
    int rc;
    for (;;) {
        /* The kept entries stay first in the dead set: each call starts after them. */
        snprintf(skip, sizeof skip, "%lld", skipped);
        redisReply *r = run(c, BG__LUA_RETRY_DEAD, 6, argv, &rc);
        if (!r)
            return rc;
        long long n = r->element[0]->integer;
        long long seen = r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 0;
        long long k = r->elements >= 4 && r->element[2]->type == REDIS_REPLY_INTEGER
                          ? r->element[2]->integer
                          : 0;
        if (k > 0 && !*kept_ex && r->element[3]->type == REDIS_REPLY_STRING)
            bg__fmt(kept_ex, kept_len, "%s", r->element[3]->str);
        freeReplyObject(r);
        *moved += (size_t)(n > 0 ? n : 0);
        if (k > 0) {
            *kept += (size_t)k;
            skipped += k;
        }
        if (seen < DEAD_BATCH)
            return BG_OK;
    }
}

int bg_retry_dead(bg_client *c, const char *const *queues, size_t nqueues, size_t *moved) {
    size_t local = 0, nknown = 0;
    char **known = NULL;
    prefixes p;
    int rc;
    if (!moved)
        moved = &local;
    *moved = 0;
    if (!c || (nqueues && !queues))
        return BG_EINVAL;
    if ((rc = bg__client_check_queues(c, queues, nqueues)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    /* No queue given: every known one, as bg-cli status lists them. */
    if (nqueues == 0 && (rc = bg__known_queues(c, "retry --dead", &known, &nknown)) != BG_OK)
        return rc;
    set_prefixes(&p, c->ns);
    size_t n = known ? nknown : nqueues, kept = 0;
    char kept_ex[512] = "";
    for (size_t i = 0; i < n && rc == BG_OK; i++) {
        const char *q = known ? known[i] : queues[i];
        rc = retry_dead_queue(c, &p, q, moved, &kept, kept_ex, sizeof kept_ex);
    }
    bg__free_names(known, nknown);
    /* The others moved; these are kept dead, where an operator sees them. */
    if (rc == BG_OK && kept)
        rc = bg__client_fail(c, BG_ESTATE,
                             "%zu dead job(s) kept: their job key is not a hash, so they cannot "
                             "run (%s)",
                             kept, kept_ex);
    return rc;
}
