/* enqueue.c: the producer's side of docs/schema.md#keys: enqueue one job or many (a chunk of
 * jobs atomically, through enqueue.lua) and dequeue a job that still waits (dequeue.lua). */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* Jobs per enqueue.lua call of bg_enqueue_bulk(): enough that the call's fixed cost is spread
 * thin, few enough that one call holds Redis for a millisecond or so (a script blocks every
 * other client while it runs) and neither side buffers megabytes. enqueue.lua takes 2000. */
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

/* A number, or "" for none: the form enqueue.lua takes rty, at and in in. */
static void opt_ll(bg__args *a, long long v, int given) {
    if (given)
        bg__args_ll(a, v);
    else
        bg__args_str(a, "");
}

static const char *spec_queue(const bg_job_spec *s) {
    return s->queue ? s->queue : "default";
}

/* Whether b can join the run a heads: the same queue, class and times (enqueue.lua's run). */
static int same_run(const bg_job_spec *a, const bg_job_spec *b) {
    return strcmp(spec_queue(a), spec_queue(b)) == 0 && strcmp(a->cls, b->cls) == 0 &&
           a->retries == b->retries && a->at_ms == b->at_ms && a->in_ms == b->in_ms;
}

/* Appends to a the run of jobs [0, n) of specs that share specs[0]'s queue, class and times,
 * their UUIDs taken from ids. Returns the number of jobs in the run. */
static size_t add_run(bg__args *a, const bg_job_spec *specs, size_t n, bg_uuid *ids) {
    const bg_job_spec *s = &specs[0];
    size_t len = 1;
    while (len < n && same_run(s, &specs[len]))
        len++;
    bg__args_ll(a, (long long)len);
    bg__args_str(a, spec_queue(s));
    bg__args_str(a, s->cls);
    opt_ll(a, s->retries, s->retries >= 0);
    opt_ll(a, s->at_ms, s->at_ms > 0);
    opt_ll(a, s->in_ms, s->in_ms > 0);
    for (size_t i = 0; i < len; i++) {
        const char *arg = specs[i].arg ? specs[i].arg : "{}";
        bg__args_str(a, ids[i]);
        bg__args_add(a, arg, specs[i].arg && specs[i].arg_len ? specs[i].arg_len : strlen(arg));
    }
    return len;
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

/* One enqueue.lua call of jobs [0, n) of specs: all of them, or (a key of the wrong type) none.
 * One call a chunk, not one a job: Redis runs one HSET a job and a few calls a chunk, where a
 * call a job cost it the checks and the other writes each time (docs/performance-notes.md).
 * after: a job of the chunk before, still in flight, or NULL. */
typedef struct {
    bg__args a;
    size_t n;
} chunk;

static int send_chunk(bg_client *c, chunk *k, const bg_job_spec *specs, size_t n, bg_uuid *ids,
                      const char *after, int last) {
    bg__args_init(&k->a);
    k->n = n;
    /* One getrandom() for the chunk's UUIDs: bg_uuid_new() makes several system calls each. */
    bg__uuid_fill(ids, n);
    add_prefixes(&k->a, c->ns);
    bg__args_str(&k->a, after ? after : "");
    for (size_t i = 0; i < n;)
        i += add_run(&k->a, specs + i, n - i, ids + i);
    int rc = bg__conn_append_eval(&c->conn, BG__LUA_ENQUEUE, 0, &k->a);
    /* Behind the last chunk, in the same round trip: the WAIT that covers every chunk. */
    if (rc == BG_OK && last)
        rc = bg__replicas_append(&c->conn, &c->replicas);
    if (rc == BG_OK)
        rc = bg__conn_flush(&c->conn);
    return rc == BG_OK ? BG_OK
                       : bg__client_fail(c, rc, "enqueue on %s: %s", c->url_masked, c->conn.err);
}

/* The reply of the oldest chunk in flight, k. */
static int chunk_reply(bg_client *c, chunk *k) {
    redisReply *r = bg__conn_eval_reply(&c->conn, BG__LUA_ENQUEUE, 0, &k->a);
    int rc = check_reply(c, r, "enqueue");
    if (rc == BG_OK && r->integer != (long long)k->n)
        rc = bg__client_fail(c, BG_EPROTO, "enqueue on %s: %lld jobs written of %zu sent",
                             c->url_masked, r->integer, k->n);
    freeReplyObject(r);
    bg__args_free(&k->a);
    return rc;
}

/* Reads the WAIT sent behind the last chunk (--min-replicas-ack). rc: how the chunks went;
 * after a failed chunk the WAIT's reply is only read, so that the next call does not take it
 * for its own. Returns rc, or what the WAIT says when every chunk was written. */
static int replicas_reply(bg_client *c, int rc) {
    long long acked;
    char what[600], err[BG__ERRLEN];
    if (rc != BG_OK) {
        redisReply *r = bg__conn_reply(&c->conn);
        if (r)
            freeReplyObject(r);
        return rc;
    }
    bg__fmt(what, sizeof what, "enqueue on %s", c->url_masked);
    rc = bg__replicas_reply(&c->conn, &c->replicas, &acked, what, err, sizeof err);
    if (rc == BG_EREPLICAS)
        return bg__client_fail(c, rc,
                               "%s: %lld of %d replicas acknowledged within %d ms; the job is on "
                               "the primary, but a failover now could lose it",
                               what, acked, c->replicas.min_ack, c->replicas.timeout_ms);
    if (rc != BG_OK)
        return bg__client_fail(c, rc, "%s", err);
    return BG_OK;
}

int bg_enqueue_bulk(bg_client *c, const bg_job_spec *specs, size_t n, bg_uuid *ids, size_t *done) {
    size_t ok_total = 0, sent = 0;
    chunk fly[2]; /* two chunks in flight: Redis runs one while the next is on its way */
    int nfly = 0, rc = BG_OK, waiting = 0;
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
        /* A reply read ahead (the chunk in flight met NOSCRIPT while the one before was
         * reloaded) means that chunk is not written yet and runs again when its reply is taken:
         * a chunk sent now would run first and find its after missing. */
        while (rc == BG_OK && nfly < 2 && sent < n && (nfly == 0 || c->conn.nahead == 0)) {
            size_t len = n - sent < BULK_CHUNK ? n - sent : BULK_CHUNK;
            /* The chunk before, unanswered: this one writes only if that one did. */
            const char *after = nfly ? ids[sent - 1] : NULL;
            if ((rc = send_chunk(c, &fly[nfly], specs + sent, len, ids + sent, after,
                                 sent + len == n)) != BG_OK) {
                bg__args_free(&fly[nfly].a);
                break;
            }
            waiting = sent + len == n && c->replicas.min_ack > 0;
            nfly++;
            sent += len;
        }
        if (!nfly)
            break;
        if (rc == BG_OK) {
            if ((rc = chunk_reply(c, &fly[0])) == BG_OK)
                ok_total += fly[0].n;
        } else {
            /* Behind a failed chunk: it wrote nothing (its after), and its reply is not the
             * error to tell. */
            redisReply *r = bg__conn_reply(&c->conn);
            if (r)
                freeReplyObject(r);
            bg__args_free(&fly[0].a);
        }
        if (--nfly)
            fly[0] = fly[1];
        if (rc != BG_OK && !nfly)
            break;
    }
    if (waiting && bg__conn_ok(&c->conn))
        rc = replicas_reply(c, rc);
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
