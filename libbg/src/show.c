/* show.c: one job with its attempts, or one attempt (bg_show_read), for `bg-cli show`. A job's
 * attempts are found without a scan: the job's lat names its latest, each attempt's prv the
 * one before (docs/schema.md#nsjobsjob). Every value may be junk another program wrote: it is
 * copied as bytes, and a key of the wrong type ends what it would have given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

static void bytes_free(bg_bytes *b) {
    /* The bg_show owns the copy; the public type shows it const. */
    free((void *)(uintptr_t)b->s);
}

/* A copy of s (n bytes, NUL-terminated too); -1 when out of memory. */
static int bytes_set(bg_bytes *b, const char *s, size_t n) {
    if (!(b->s = bg__strndup(s, n)))
        return -1;
    b->len = n;
    return 0;
}

static void fields_free(bg_field *f, size_t n) {
    for (size_t i = 0; f && i < n; i++) {
        bytes_free(&f[i].name);
        bytes_free(&f[i].value);
    }
    free(f);
}

void bg_show_free(bg_show *s) {
    if (!s)
        return;
    fields_free(s->fields, s->nfields);
    for (size_t i = 0; i < s->nattempts; i++) {
        bytes_free(&s->attempts[i].id);
        fields_free(s->attempts[i].fields, s->attempts[i].nfields);
    }
    free(s->attempts);
    bytes_free(&s->job_id);
    bytes_free(&s->queue);
    free(s);
}

const bg_bytes *bg_show_field(const bg_field *fields, size_t n, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; fields && i < n; i++)
        if (fields[i].name.len == len && memcmp(fields[i].name.s, name, len) == 0)
            return &fields[i].value;
    return NULL;
}

/* The fields of an HGETALL reply into *out (*n of them); -1 when out of memory. */
static int fields_copy(const redisReply *r, bg_field **out, size_t *n) {
    size_t pairs = r->elements / 2;
    *n = 0;
    if (!(*out = calloc(pairs ? pairs : 1, sizeof **out)))
        return -1;
    for (size_t i = 0; i < pairs; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        bg_field *f = &(*out)[(*n)++];
        if (bytes_set(&f->name, k->str, k->len) != 0 || bytes_set(&f->value, v->str, v->len) != 0)
            return -1;
    }
    return 0;
}

/* Sends n commands (C strings) in one pipeline and reads their replies into rs. Returns BG_OK
 * or an error reported on c. */
static int pipeline(bg_client *c, size_t n, const int argc[], const char **argv[],
                    redisReply *rs[]) {
    for (size_t i = 0; i < n; i++)
        if (bg__conn_append(&c->conn, argc[i], argv[i], NULL) != BG_OK)
            return bg__client_fail(c, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(rs[i] = bg__conn_reply(&c->conn)))
            return bg__client_fail(c, BG_EIO, "show on %s: %s", c->url_masked, c->conn.err);
    return BG_OK;
}

static void free_replies(redisReply *rs[], size_t n) {
    for (size_t i = 0; i < n; i++)
        freeReplyObject(rs[i]);
}

/* An attempt's outcome from its fields (docs/cli.md#show). */
static const char *outcome_of(const bg_field *f, size_t n) {
    if (bg_show_field(f, n, "err"))
        return "failed";
    return bg_show_field(f, n, "fin") ? "completed" : "running";
}

/* Reads NS:attempts:<id> (len bytes) into the next entry of s->attempts. Returns 1 when added,
 * 0 when the attempt is gone or is no hash, or an error code below 0. */
static int add_attempt(bg_client *c, bg_show *s, const char *id, size_t len) {
    size_t klen;
    char *key = bg__key_dup(c->ns, BG__K_ATTEMPTS, id, len, &klen);
    if (!key)
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, klen};
    redisReply *r = bg__conn_cmd(&c->conn, 2, argv, lens);
    free(key);
    if (!r)
        return bg__client_fail(c, BG_EIO, "show on %s: %s", c->url_masked, c->conn.err);
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        bg_show_attempt *a = &s->attempts[s->nattempts++];
        if (bytes_set(&a->id, id, len) != 0 || fields_copy(r, &a->fields, &a->nfields) != 0)
            rc = bg__client_fail(c, BG_ENOMEM, "out of memory");
        else
            rc = 1;
        a->outcome = outcome_of(a->fields, a->nfields);
    }
    freeReplyObject(r);
    return rc;
}

/* Walks the job's attempts from its lat along each prv, newest first. */
static int walk_attempts(bg_client *c, bg_show *s) {
    const bg_bytes *next = bg_show_field(s->fields, s->nfields, "lat");
    if (!(s->attempts = calloc(BG_SHOW_MAX_ATTEMPTS, sizeof *s->attempts)))
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    while (next && next->len > 0) {
        if (s->nattempts == BG_SHOW_MAX_ATTEMPTS) {
            s->more = 1;
            break;
        }
        int rc = add_attempt(c, s, next->s, next->len);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            s->trimmed = 1;
            break;
        }
        const bg_show_attempt *a = &s->attempts[s->nattempts - 1];
        next = bg_show_field(a->fields, a->nfields, "prv");
    }
    return BG_OK;
}

/* The places that tell a job's state, in one pipeline: NS:dead, NS:scheduled, NS:ready (LPOS,
 * so no list is sent back) and, for its latest attempt, NS:processing of the queue. */
enum { P_DEAD, P_SCHED, P_READY, P_PROC, NPLACES };

static const char *state_of(const bg_show *s, redisReply *rs[]) {
    const bg_bytes *att = bg_show_field(s->fields, s->nfields, "att");
    int has_run = att && att->len > 0 && strcmp(att->s, "0") != 0;
    if (rs[P_PROC] && rs[P_PROC]->type == REDIS_REPLY_INTEGER && rs[P_PROC]->integer == 1)
        return "running";
    if (rs[P_DEAD]->type == REDIS_REPLY_STRING)
        return "dead";
    if (rs[P_SCHED]->type == REDIS_REPLY_STRING)
        return has_run ? "retrying" : "scheduled";
    if (rs[P_READY]->type == REDIS_REPLY_INTEGER)
        return "waiting";
    if (s->nattempts > 0 && strcmp(s->attempts[0].outcome, "completed") == 0)
        return "completed";
    return "unknown";
}

static int queue_ok(const bg_bytes *q) {
    return q && strlen(q->s) == q->len && bg_queue_valid(q->s);
}

/* Reads the job's state in its queue: the latest attempt's que (a retry goes back there), else
 * the job's que. */
static int read_state(bg_client *c, bg_show *s, const char *id) {
    const bg_bytes *q =
        s->nattempts ? bg_show_field(s->attempts[0].fields, s->attempts[0].nfields, "que") : NULL;
    if (!queue_ok(q))
        q = bg_show_field(s->fields, s->nfields, "que");
    s->state = "unknown";
    if (!queue_ok(q))
        return BG_OK;
    if (bytes_set(&s->queue, q->s, q->len) != 0)
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    char keys[NPLACES][512];
    bg__key(keys[P_DEAD], sizeof keys[0], c->ns, BG__K_DEAD, s->queue.s);
    bg__key(keys[P_SCHED], sizeof keys[0], c->ns, BG__K_SCHEDULED, s->queue.s);
    bg__key(keys[P_READY], sizeof keys[0], c->ns, BG__K_READY, s->queue.s);
    bg__key(keys[P_PROC], sizeof keys[0], c->ns, BG__K_PROCESSING, s->queue.s);
    const char *lat = s->nattempts ? s->attempts[0].id.s : "";
    const char *dead[] = {"ZSCORE", keys[P_DEAD], id}, *sched[] = {"ZSCORE", keys[P_SCHED], id},
               *ready[] = {"LPOS", keys[P_READY], id}, *proc[] = {"SISMEMBER", keys[P_PROC], lat};
    static const int argc[] = {3, 3, 3, 3};
    const char **argv[] = {dead, sched, ready, proc};
    redisReply *rs[NPLACES] = {NULL};
    size_t n = s->nattempts ? NPLACES : P_PROC;
    int rc = pipeline(c, n, argc, argv, rs);
    if (rc == BG_OK)
        s->state = state_of(s, rs);
    free_replies(rs, n);
    return rc;
}

/* The type of a key, from a TYPE reply: "none" when unreadable. */
static const char *type_of(const redisReply *r) {
    return r->type == REDIS_REPLY_STATUS ? r->str : "none";
}

/* What the first round trip found of id's keys: their types and HGETALL replies; *found 1
 * for a job, 2 for an attempt, 0 for nothing. */
static int judge_first(bg_client *c, bg_show *s, redisReply *rs[], const char *jk, const char *ak,
                       int *found) {
    /* An HGETALL of a key of another type fails too: the TYPE replies say why first. */
    for (int i = 0; i < 4; i++)
        if (rs[i]->type == REDIS_REPLY_ERROR && (i % 2 == 0 || strncmp(rs[i]->str, "WRONGTYPE", 9)))
            return bg__client_reply_fail(c, rs[i], "show");
    const char *kj = type_of(rs[0]), *ka = type_of(rs[2]);
    if (strcmp(kj, "none") != 0 && strcmp(kj, "hash") != 0)
        return bg__client_fail(c, BG_EREDIS, "%s is a %s, not a hash: not a key bg wrote", jk, kj);
    if (strcmp(kj, "none") == 0 && strcmp(ka, "none") != 0 && strcmp(ka, "hash") != 0)
        return bg__client_fail(c, BG_EREDIS, "%s is a %s, not a hash: not a key bg wrote", ak, ka);
    *found = strcmp(kj, "hash") == 0 ? 1 : strcmp(ka, "hash") == 0 ? 2 : 0;
    int rc = 0;
    if (*found && rs[*found == 1 ? 1 : 3]->type != REDIS_REPLY_ARRAY)
        return bg__client_fail(c, BG_EPROTO, "show on %s: unexpected reply", c->url_masked);
    if (*found == 1)
        rc = fields_copy(rs[1], &s->fields, &s->nfields);
    else if (*found == 2) {
        s->nattempts = 1;
        rc = fields_copy(rs[3], &s->attempts[0].fields, &s->attempts[0].nfields);
    }
    return rc == 0 ? BG_OK : bg__client_fail(c, BG_ENOMEM, "out of memory");
}

/* Reads what id names in one round trip (see judge_first). */
static int read_first(bg_client *c, bg_show *s, const char *id, int *found) {
    char jk[512], ak[512];
    bg__key(jk, sizeof jk, c->ns, BG__K_JOBS, id);
    bg__key(ak, sizeof ak, c->ns, BG__K_ATTEMPTS, id);
    const char *tj[] = {"TYPE", jk}, *hj[] = {"HGETALL", jk}, *ta[] = {"TYPE", ak},
               *ha[] = {"HGETALL", ak};
    static const int argc[] = {2, 2, 2, 2};
    const char **argv[] = {tj, hj, ta, ha};
    redisReply *rs[4] = {NULL};
    *found = 0;
    int rc = pipeline(c, 4, argc, argv, rs);
    if (rc == BG_OK)
        rc = judge_first(c, s, rs, jk, ak, found);
    free_replies(rs, 4);
    return rc;
}

/* Fills in an attempt's side: its ID, outcome and job. */
static int finish_attempt(bg_client *c, bg_show *s, const char *id) {
    bg_show_attempt *a = &s->attempts[0];
    const bg_bytes *job = bg_show_field(a->fields, a->nfields, "job");
    s->is_attempt = 1;
    a->outcome = outcome_of(a->fields, a->nfields);
    if (bytes_set(&a->id, id, strlen(id)) != 0 || (job && bytes_set(&s->job_id, job->s, job->len)))
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    return BG_OK;
}

int bg_show_read(bg_client *c, const char *id, bg_show **out) {
    int rc, found;
    if (!c || !out)
        return BG_EINVAL;
    *out = NULL;
    if (!id || !bg_job_id_valid(id))
        return bg__client_fail(c, BG_EINVAL, "not a job or attempt UUID: '%.64s'", id ? id : "");
    if ((rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg_show *s = calloc(1, sizeof *s);
    if (!s || !(s->attempts = calloc(1, sizeof *s->attempts))) {
        free(s);
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    }
    rc = read_first(c, s, id, &found);
    if (rc == BG_OK && found == 0)
        rc = bg__client_fail(c, BG_ENOTFOUND, "no job or attempt %s", id);
    if (rc == BG_OK && found == 2) {
        rc = finish_attempt(c, s, id);
    } else if (rc == BG_OK) {
        free(s->attempts);
        s->attempts = NULL;
        if (bytes_set(&s->job_id, id, strlen(id)) != 0)
            rc = bg__client_fail(c, BG_ENOMEM, "out of memory");
        if (rc == BG_OK && (rc = walk_attempts(c, s)) == BG_OK)
            rc = read_state(c, s, id);
    }
    if (rc != BG_OK) {
        bg_show_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}
