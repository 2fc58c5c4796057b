/* failures.c: the newest failed attempts and dead jobs of some queues with the reason they
 * failed (bg_failed_list, bg_dead_list), read in a few pipelines. Every value may be junk
 * written by another program: it is copied as bytes, and a key of the wrong type only leaves
 * the fields it would have given empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* The most entries one list may ask for: far more than a screen, little enough for memory. */
#define LIST_MAX 100000

struct bg_failures {
    size_t n;
    bg_failure *rows;
    char **queues; /* the names rows point to */
    size_t nqueues;
    char *warning;
};

size_t bg_failures_count(const bg_failures *f) {
    return f ? f->n : 0;
}

const bg_failure *bg_failures_get(const bg_failures *f, size_t i) {
    return f && i < f->n ? &f->rows[i] : NULL;
}

const char *bg_failures_warning(const bg_failures *f) {
    return f ? f->warning : NULL;
}

static void bytes_free(bg_bytes *b) {
    /* The list owns the copy; the public type shows it const. */
    free((void *)(uintptr_t)b->s);
    b->s = NULL;
    b->len = 0;
}

void bg_failures_free(bg_failures *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        bg_failure *r = &f->rows[i];
        bytes_free(&r->attempt);
        bytes_free(&r->job);
        bytes_free(&r->cls);
        bytes_free(&r->err);
        bytes_free(&r->msg);
    }
    free(f->rows);
    bg__free_names(f->queues, f->nqueues);
    free(f->warning);
    free(f);
}

/* A copy of a bulk string reply; {NULL, 0} for anything else (nil, an error, an integer).
 * Returns -1 when out of memory. */
static int bytes_copy(bg_bytes *b, const redisReply *r) {
    b->s = NULL;
    b->len = 0;
    if (!r || r->type != REDIS_REPLY_STRING)
        return 0;
    if (!(b->s = bg__strndup(r->str, r->len)))
        return -1;
    b->len = r->len;
    return 0;
}

/* Adds "what: why" to the list's warning, "; "-separated. */
static int warn(bg_failures *f, const char *what, const char *why) {
    size_t old = f->warning ? strlen(f->warning) : 0;
    char *w = realloc(f->warning, old + strlen(what) + strlen(why) + 5);
    if (!w)
        return -1;
    if (old)
        strcpy(w + old, "; ");
    else
        w[0] = '\0';
    strcat(w, what);
    strcat(w, strcmp(why, "not a sorted set") == 0 ? " is " : ": ");
    strcat(w, why);
    f->warning = w;
    return 0;
}

/* One command per element of cmds, sent in one pipeline; the replies go to out (n of them, to
 * free with free_replies()). Returns BG_OK or an error reported on c. */
static int pipeline(bg_client *c, bg__args *cmds, size_t n, redisReply ***out) {
    redisReply **rs = calloc(n ? n : 1, sizeof *rs);
    *out = rs;
    if (!rs)
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (bg__conn_append_args(&c->conn, &cmds[i]) != BG_OK)
            return bg__client_fail(c, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(rs[i] = bg__conn_reply(&c->conn)))
            return bg__reply_error(&c->conn, NULL, c->err, sizeof c->err, "%s", c->url_masked);
    return BG_OK;
}

static void free_replies(redisReply **rs, size_t n) {
    for (size_t i = 0; rs && i < n; i++)
        freeReplyObject(rs[i]);
    free(rs);
}

static bg__args *new_cmds(size_t n) {
    bg__args *a = calloc(n ? n : 1, sizeof *a);
    for (size_t i = 0; a && i < n; i++)
        bg__args_init(&a[i]);
    return a;
}

static void free_cmds(bg__args *a, size_t n) {
    for (size_t i = 0; a && i < n; i++)
        bg__args_free(&a[i]);
    free(a);
}

/* Appends the key NS:<kind>:<suffix> to a, whatever bytes the suffix holds. */
static void add_key(bg__args *a, const char *ns, bg__key_kind kind, const char *s, size_t len) {
    size_t klen;
    char *key = bg__key_dup(ns, kind, s, len, &klen);
    if (!key) {
        a->oom = 1;
        return;
    }
    bg__args_add(a, key, klen);
    free(key);
}

/* A score as whole ms; 0 for one that is no finite number in range. */
static int64_t score_ms(const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_STRING)
        return 0;
    char *end;
    double d = strtod(r->str, &end);
    return d >= -9.2e18 && d <= 9.2e18 ? (int64_t)d : 0;
}

/* A candidate row before the cut to the limit: its queue, member and score, and its position
 * (so equal scores keep the order of the queues and of the set). */
typedef struct {
    size_t q, seq;
    bg_bytes member;
    int64_t at;
} candidate;

static int cmp_candidate(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->at != y->at)
        return x->at > y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the newest limit members of NS:<kind>:<queue> of every queue of f into f->rows, newest
 * first across the queues, the member as attempt (failed) or job (dead). */
static int read_sets(bg_client *c, bg_failures *f, bg__key_kind kind, size_t limit) {
    bg__args *cmds = new_cmds(f->nqueues);
    redisReply **rs = NULL;
    candidate *cand = NULL;
    size_t ncand = 0, cap = 0;
    int rc = cmds ? BG_OK : BG_ENOMEM;
    for (size_t i = 0; rc == BG_OK && i < f->nqueues; i++) {
        bg__args_str(&cmds[i], "ZREVRANGE");
        add_key(&cmds[i], c->ns, kind, f->queues[i], strlen(f->queues[i]));
        bg__args_str(&cmds[i], "0");
        bg__args_ll(&cmds[i], (long long)limit - 1);
        bg__args_str(&cmds[i], "WITHSCORES");
    }
    if (rc == BG_OK)
        rc = pipeline(c, cmds, f->nqueues, &rs);
    for (size_t i = 0; rc == BG_OK && i < f->nqueues; i++) {
        const redisReply *r = rs[i];
        if (r->type != REDIS_REPLY_ARRAY) {
            char key[512];
            bg__key(key, sizeof key, c->ns, kind, f->queues[i]);
            const char *why = r->type != REDIS_REPLY_ERROR           ? "unexpected reply"
                              : strncmp(r->str, "WRONGTYPE", 9) == 0 ? "not a sorted set"
                                                                     : r->str;
            if (warn(f, key, why) != 0)
                rc = BG_ENOMEM;
            continue;
        }
        for (size_t k = 0; rc == BG_OK && k + 1 < r->elements; k += 2) {
            if (ncand == cap) {
                cap = cap ? cap * 2 : 64;
                candidate *more = realloc(cand, cap * sizeof *cand);
                if (!more) {
                    rc = BG_ENOMEM;
                    break;
                }
                cand = more;
            }
            candidate *cd = &cand[ncand];
            cd->q = i;
            cd->seq = ncand;
            cd->at = score_ms(r->element[k + 1]);
            if (bytes_copy(&cd->member, r->element[k]) != 0)
                rc = BG_ENOMEM;
            else if (cd->member.s)
                ncand++;
        }
    }
    free_replies(rs, f->nqueues);
    free_cmds(cmds, f->nqueues);
    if (rc == BG_OK && ncand)
        qsort(cand, ncand, sizeof *cand, cmp_candidate);
    size_t keep = ncand < limit ? ncand : limit;
    if (rc == BG_OK && !(f->rows = calloc(keep ? keep : 1, sizeof *f->rows)))
        rc = BG_ENOMEM;
    for (size_t i = 0; i < ncand; i++) {
        if (rc == BG_OK && i < keep) {
            bg_failure *row = &f->rows[f->n++];
            row->queue = f->queues[cand[i].q];
            row->at_ms = cand[i].at;
            *(kind == BG__K_FAILED ? &row->attempt : &row->job) = cand[i].member;
        } else {
            bytes_free(&cand[i].member);
        }
    }
    free(cand);
    if (rc == BG_ENOMEM)
        bg__client_fail(c, rc, "out of memory");
    return rc;
}

/* HMGET of fields of the NS:<kind>:<id> of each row that has an id (member of the row chosen
 * by pick), into the row's fields set by store. */
typedef const bg_bytes *(*pick_fn)(const bg_failure *row);
typedef int (*store_fn)(bg_failure *row, const redisReply *r);

static int fetch(bg_client *c, bg_failures *f, bg__key_kind kind, pick_fn pick,
                 const char *const *fields, int nfields, store_fn store) {
    bg__args *cmds = new_cmds(f->n);
    size_t *row_of = calloc(f->n ? f->n : 1, sizeof *row_of), n = 0;
    redisReply **rs = NULL;
    int rc = cmds && row_of ? BG_OK : bg__client_fail(c, BG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == BG_OK && i < f->n; i++) {
        const bg_bytes *id = pick(&f->rows[i]);
        if (!id->s)
            continue;
        bg__args_str(&cmds[n], "HMGET");
        add_key(&cmds[n], c->ns, kind, id->s, id->len);
        for (int k = 0; k < nfields; k++)
            bg__args_str(&cmds[n], fields[k]);
        row_of[n++] = i;
    }
    if (rc == BG_OK)
        rc = pipeline(c, cmds, n, &rs);
    for (size_t i = 0; rc == BG_OK && i < n; i++) {
        /* A key of the wrong type answers WRONGTYPE: its fields stay unknown. */
        if (rs[i]->type == REDIS_REPLY_ARRAY && rs[i]->elements == (size_t)nfields &&
            store(&f->rows[row_of[i]], rs[i]) != 0)
            rc = bg__client_fail(c, BG_ENOMEM, "out of memory");
    }
    free_replies(rs, n);
    free_cmds(cmds, f->n);
    free(row_of);
    return rc;
}

static const bg_bytes *pick_attempt(const bg_failure *row) {
    return &row->attempt;
}

static const bg_bytes *pick_job(const bg_failure *row) {
    return &row->job;
}

/* The latest attempt of a dead job whose hash holds no ler: where its reason may still be. */
static const bg_bytes *pick_unexplained(const bg_failure *row) {
    static const bg_bytes none = {NULL, 0};
    return row->err.s || row->msg.s ? &none : &row->attempt;
}

static int store_job_err_msg(bg_failure *row, const redisReply *r) {
    return bytes_copy(&row->job, r->element[0]) | bytes_copy(&row->err, r->element[1]) |
           bytes_copy(&row->msg, r->element[2]);
}

static int store_err_msg(bg_failure *row, const redisReply *r) {
    return bytes_copy(&row->err, r->element[0]) | bytes_copy(&row->msg, r->element[1]);
}

static int store_cls(bg_failure *row, const redisReply *r) {
    return bytes_copy(&row->cls, r->element[0]);
}

static int store_cls_reason(bg_failure *row, const redisReply *r) {
    int rc = bytes_copy(&row->cls, r->element[0]) | bytes_copy(&row->attempt, r->element[1]) |
             bytes_copy(&row->err, r->element[2]) | bytes_copy(&row->msg, r->element[3]);
    if (row->attempt.s && !row->attempt.len)
        bytes_free(&row->attempt); /* lat '': no attempt (docs/schema.md#nsjobsjob) */
    return rc;
}

/* Starts a list over the given queues, or NS:queues. */
static int start(bg_client *c, const char *const *queues, size_t nqueues, size_t limit,
                 bg_failures **out, bg_failures **f) {
    int rc;
    if (out)
        *out = NULL;
    if (!c)
        return BG_EINVAL;
    if (!out)
        return bg__client_fail(c, BG_EINVAL, "no place for the list");
    if (limit < 1 || limit > LIST_MAX)
        return bg__client_fail(c, BG_EINVAL, "the limit must be a whole number from 1 to %d",
                               LIST_MAX);
    if ((rc = bg__client_check_queues(c, queues, nqueues)) != BG_OK ||
        (rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    if (!(*f = calloc(1, sizeof **f)))
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    if (!nqueues)
        return bg__known_queues(c, "list", &(*f)->queues, &(*f)->nqueues);
    if (!((*f)->queues = calloc(nqueues, sizeof *(*f)->queues)))
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < nqueues; i++) {
        if (!((*f)->queues[i] = bg__strdup(queues[i])))
            return bg__client_fail(c, BG_ENOMEM, "out of memory");
        (*f)->nqueues++;
    }
    return BG_OK;
}

int bg_failed_list(bg_client *c, const char *const *queues, size_t nqueues, size_t limit,
                   bg_failures **out) {
    static const char *const attempt_fields[] = {"job", "err", "msg"};
    static const char *const job_fields[] = {"cls"};
    bg_failures *f = NULL;
    /* The attempts first, then the jobs they name, each in one pipeline. */
    int rc = start(c, queues, nqueues, limit, out, &f);
    if (rc == BG_OK && (rc = read_sets(c, f, BG__K_FAILED, limit)) == BG_OK &&
        (rc = fetch(c, f, BG__K_ATTEMPTS, pick_attempt, attempt_fields, 3, store_job_err_msg)) ==
            BG_OK)
        rc = fetch(c, f, BG__K_JOBS, pick_job, job_fields, 1, store_cls);
    if (rc != BG_OK) {
        bg_failures_free(f);
        return rc;
    }
    *out = f;
    return BG_OK;
}

int bg_dead_list(bg_client *c, const char *const *queues, size_t nqueues, size_t limit,
                 bg_failures **out) {
    static const char *const job_fields[] = {"cls", "lat", "ler", "lms"};
    static const char *const attempt_fields[] = {"err", "msg"};
    bg_failures *f = NULL;
    /* The job says why it died (ler, lms, written by every failure); a job that died before
     * bg wrote them, or that a producer of its own buried, falls back to its latest attempt. */
    int rc = start(c, queues, nqueues, limit, out, &f);
    if (rc == BG_OK)
        rc = read_sets(c, f, BG__K_DEAD, limit);
    if (rc == BG_OK)
        rc = fetch(c, f, BG__K_JOBS, pick_job, job_fields, 4, store_cls_reason);
    if (rc == BG_OK)
        rc = fetch(c, f, BG__K_ATTEMPTS, pick_unexplained, attempt_fields, 2, store_err_msg);
    if (rc != BG_OK) {
        bg_failures_free(f);
        return rc;
    }
    *out = f;
    return BG_OK;
}
