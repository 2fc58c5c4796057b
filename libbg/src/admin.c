/* admin.c: the operator's writes and checks: the health check (bg_ping), deleting dead jobs
 * (dead.lua) and emptying a queue (purge.lua), each in bounded atomic batches. */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* Entries a script call takes at most: short enough that Redis never blocks for long. */
#define BATCH 500

int bg_ping(bg_client *c, double *ms) {
    double t0 = bg__mono_ms();
    char key[256];
    int rc;
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg__key(key, sizeof key, c->ns, BG__K_QUEUES, NULL);
    const char *ping[] = {"PING"}, *type[] = {"TYPE", key};
    if (bg__conn_append(&c->conn, 1, ping, NULL) != BG_OK ||
        bg__conn_append(&c->conn, 2, type, NULL) != BG_OK)
        return bg__client_fail(c, BG_ENOMEM, "ping: out of memory");
    redisReply *p = bg__conn_reply(&c->conn);
    redisReply *t = p ? bg__conn_reply(&c->conn) : NULL;
    if (!p || p->type != REDIS_REPLY_STATUS || strcmp(p->str, "PONG") != 0)
        rc = bg__client_reply_fail(c, p, "PING");
    else if (!t || t->type != REDIS_REPLY_STATUS)
        rc = bg__client_reply_fail(c, t, "TYPE of the namespace's keys");
    else if (strcmp(t->str, "set") != 0 && strcmp(t->str, "none") != 0)
        rc = bg__client_fail(c, BG_EREDIS, "%s on %s is a %s, not a set", key, c->url_masked,
                             t->str);
    freeReplyObject(p);
    freeReplyObject(t);
    if (rc == BG_OK && ms)
        *ms = bg__mono_ms() - t0;
    return rc;
}

/* The prefixes dead.lua takes as ARGV[1..2]. */
typedef struct {
    char jobs[256], dead[256];
} dead_prefixes;

static void set_dead_prefixes(dead_prefixes *p, const char *ns) {
    bg__key(p->jobs, sizeof p->jobs, ns, BG__K_JOBS, "");
    bg__key(p->dead, sizeof p->dead, ns, BG__K_DEAD, "");
}

/* Runs dead.lua with argv (prefixes first); returns its reply, an array of two whose first is
 * an integer, or NULL after an error reported on c with its code in *rc. */
static redisReply *run_dead(bg_client *c, int argc, const char **argv, int *rc) {
    redisReply *r = bg__conn_eval_strs(&c->conn, BG__LUA_DEAD, 0, argc, argv);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        return r;
    *rc = bg__client_reply_fail(c, r, "dead --delete");
    freeReplyObject(r);
    return NULL;
}

int bg_dead_delete(bg_client *c, const char *job, const char *const *queues, size_t nqueues) {
    dead_prefixes p;
    char **known = NULL;
    size_t nknown = 0;
    int rc;
    if (!c)
        return BG_EINVAL;
    if (!job || !*job)
        return bg__client_fail(c, BG_EINVAL, "no job given");
    if ((rc = bg__client_check_queues(c, queues, nqueues)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    if (!nqueues && (rc = bg__known_queues(c, "dead --delete", &known, &nknown)) != BG_OK)
        return rc;
    size_t n = nqueues ? nqueues : nknown;
    const char **argv = calloc(5 + n, sizeof *argv);
    if (!argv) {
        bg__free_names(known, nknown);
        return bg__client_fail(c, BG_ENOMEM, "dead --delete: out of memory");
    }
    set_dead_prefixes(&p, c->ns);
    argv[0] = p.jobs;
    argv[1] = p.dead;
    argv[2] = "job";
    argv[3] = job;
    argv[4] = nqueues ? "only" : "que";
    for (size_t i = 0; i < n; i++)
        argv[5 + i] = nqueues ? queues[i] : known[i];
    redisReply *r = run_dead(c, (int)(5 + n), argv, &rc);
    free(argv);
    bg__free_names(known, nknown);
    if (!r)
        return rc;
    const redisReply *why = r->element[1];
    if (r->element[0]->integer == 1)
        rc = BG_OK;
    else if (why->type == REDIS_REPLY_STRING && strcmp(why->str, "notdead") == 0)
        rc = bg__client_fail(c, BG_ESTATE, "job %s is not dead%s", job,
                             nqueues ? " in the queues given" : "");
    else
        rc = bg__client_fail(c, BG_ENOTFOUND, "no job %s", job);
    freeReplyObject(r);
    return rc;
}

int bg_dead_delete_all(bg_client *c, const char *const *queues, size_t nqueues, size_t *deleted) {
    size_t local = 0, nknown = 0;
    char **known = NULL, batch[16];
    dead_prefixes p;
    int rc;
    if (!deleted)
        deleted = &local;
    *deleted = 0;
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_check_queues(c, queues, nqueues)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    if (!nqueues && (rc = bg__known_queues(c, "dead --delete --all", &known, &nknown)) != BG_OK)
        return rc;
    set_dead_prefixes(&p, c->ns);
    bg__fmt(batch, sizeof batch, "%d", BATCH);
    size_t n = nqueues ? nqueues : nknown;
    for (size_t i = 0; i < n && rc == BG_OK; i++) {
        const char *argv[] = {p.jobs, p.dead, "all", nqueues ? queues[i] : known[i], batch};
        for (;;) {
            redisReply *r = run_dead(c, 5, argv, &rc);
            if (!r)
                break;
            long long gone = r->element[0]->integer;
            freeReplyObject(r);
            *deleted += (size_t)(gone > 0 ? gone : 0);
            if (gone < BATCH)
                break;
        }
    }
    bg__free_names(known, nknown);
    return rc;
}

int bg_purge_count(bg_client *c, const char *queue, bg_queue_counts *out) {
    char ready[512], sched[512];
    int rc;
    if (!c)
        return BG_EINVAL;
    if (!out)
        return bg__client_fail(c, BG_EINVAL, "purge: nowhere to put the counts");
    if ((rc = bg__client_check_queues(c, &queue, 1)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg__key(ready, sizeof ready, c->ns, BG__K_READY, queue);
    bg__key(sched, sizeof sched, c->ns, BG__K_SCHEDULED, queue);
    const char *llen[] = {"LLEN", ready}, *zcard[] = {"ZCARD", sched};
    if (bg__conn_append(&c->conn, 2, llen, NULL) != BG_OK ||
        bg__conn_append(&c->conn, 2, zcard, NULL) != BG_OK)
        return bg__client_fail(c, BG_ENOMEM, "purge: out of memory");
    redisReply *a = bg__conn_reply(&c->conn);
    redisReply *b = a ? bg__conn_reply(&c->conn) : NULL;
    char what[600];
    if (!a || a->type != REDIS_REPLY_INTEGER) {
        bg__fmt(what, sizeof what, "purge: LLEN %s", ready);
        rc = bg__client_reply_fail(c, a, what);
    } else if (!b || b->type != REDIS_REPLY_INTEGER) {
        bg__fmt(what, sizeof what, "purge: ZCARD %s", sched);
        rc = bg__client_reply_fail(c, b, what);
    } else {
        out->ready = a->integer;
        out->scheduled = b->integer;
    }
    freeReplyObject(a);
    freeReplyObject(b);
    return rc;
}

int bg_purge(bg_client *c, const char *queue, const bg_queue_counts *at_most,
             bg_queue_counts *removed) {
    bg_queue_counts local;
    char jobs[256], ready[512], sched[512], nr[24], ns[24];
    int rc;
    if (!removed)
        removed = &local;
    memset(removed, 0, sizeof *removed);
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_check_queues(c, &queue, 1)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg__key(jobs, sizeof jobs, c->ns, BG__K_JOBS, "");
    bg__key(ready, sizeof ready, c->ns, BG__K_READY, queue);
    bg__key(sched, sizeof sched, c->ns, BG__K_SCHEDULED, queue);
    int ready_done = at_most && at_most->ready <= 0,
        sched_done = at_most && at_most->scheduled <= 0;
    while (!ready_done || !sched_done) {
        int64_t want_r = ready_done ? 0 : BATCH, want_s = sched_done ? 0 : BATCH;
        if (at_most && want_r > at_most->ready - removed->ready)
            want_r = at_most->ready - removed->ready;
        if (at_most && want_s > at_most->scheduled - removed->scheduled)
            want_s = at_most->scheduled - removed->scheduled;
        bg__fmt(nr, sizeof nr, "%lld", (long long)want_r);
        bg__fmt(ns, sizeof ns, "%lld", (long long)want_s);
        const char *argv[] = {jobs, ready, sched, nr, ns};
        redisReply *r = bg__conn_eval_strs(&c->conn, BG__LUA_PURGE, 0, 5, argv);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER) {
            rc = bg__client_reply_fail(c, r, "purge");
            freeReplyObject(r);
            return rc;
        }
        long long got_r = r->element[0]->integer, got_s = r->element[1]->integer;
        freeReplyObject(r);
        removed->ready += got_r;
        removed->scheduled += got_s;
        /* A short batch means the list or set is empty now (workers may be taking jobs
         * meanwhile); a bound reached means the jobs asked for are gone. */
        ready_done = ready_done || got_r < want_r || (at_most && removed->ready >= at_most->ready);
        sched_done =
            sched_done || got_s < want_s || (at_most && removed->scheduled >= at_most->scheduled);
    }
    return BG_OK;
}
