/* heartbeat.c: a worker tells the world it is alive: its heartbeat hash, refreshed every second
 * with a TTL, so `bg-cli workers` shows a worker within a second of its start and forgets it
 * within seconds of its death, whatever killed it (docs/cli.md#workers). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heartbeat.h"

/* The main thread also tends the fibers and the signals: it waits at most this long for one
 * beat (a healthy Redis answers in well under a millisecond; a beat missed on a loaded host is
 * made up by the next, well inside the TTL), and after a failure leaves Redis alone a while,
 * so a hung server costs it little. */
#define TIMEOUT_MS 300
#define RETRY_MS 3000

/* Logs a finding about key at most once a minute, so a broken key is said, never flooded. */
static void finding(bg_worker *w, const char *key, const char *what) {
    unsigned long suppressed = 0;
    if (!bg__ratelimit_allow(&w->findings, key, strlen(key), &suppressed))
        return;
    bg__log(&w->log, BG_LOG_WARN, BG__ROLE, "heartbeat: %s: %s%s", key, what,
            suppressed ? " (and again since)" : "");
}

/* An error reply to a heartbeat command. A key of the wrong type is a finding about that key;
 * anything else (OOM at maxmemory, READONLY on a replica, NOPERM) is about Redis, not a key,
 * and is said once a minute whatever key met it: at Info when Redis is only out of memory or
 * read-only for now, as every other refused write of the worker is. */
static void refused(bg_worker *w, const char *key, const char *err) {
    unsigned long suppressed = 0;
    char kind[40];
    if (strncmp(err, "WRONGTYPE", 9) == 0) {
        finding(w, key, err);
        return;
    }
    bg__fmt(kind, sizeof kind, "heartbeat:%.*s", (int)strcspn(err, " "), err);
    if (!bg__ratelimit_allow(&w->findings, kind, strlen(kind), &suppressed))
        return;
    int passing = strncmp(err, "OOM", 3) == 0 || strncmp(err, "READONLY", 8) == 0 ||
                  strncmp(err, "LOADING", 7) == 0 || strncmp(err, "MASTERDOWN", 10) == 0;
    bg__log(&w->log, passing ? BG_LOG_INFO : BG_LOG_WARN, BG__ROLE,
            "heartbeat: Redis refused it: %s%s", err, suppressed ? " (and again since)" : "");
}

static int connect_hb(bg_worker *w, bg__heartbeat *hb) {
    if (bg__conn_ok(&hb->conn))
        return 0;
    if (bg__conn_open(&hb->conn, &w->url, w->url_masked, NULL, TIMEOUT_MS) != BG_OK) {
        bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "heartbeat: %s", hb->conn.err);
        return -1;
    }
    return 0;
}

/* The server's clock, once: started is when the worker first told Redis it was alive. */
static int read_started(bg_worker *w, bg__heartbeat *hb) {
    const char *argv[] = {"TIME"};
    long long s, us;
    if (hb->started_ms)
        return 0;
    redisReply *r = bg__conn_cmd(&hb->conn, 1, argv, NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        bg__parse_ll(r->element[0]->str, r->element[0]->len, &s) == 0 &&
        bg__parse_ll(r->element[1]->str, r->element[1]->len, &us) == 0)
        hb->started_ms = (int64_t)(s * 1000 + us / 1000);
    else if (r)
        bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "heartbeat: TIME gave no time");
    if (r)
        freeReplyObject(r);
    return hb->started_ms ? 0 : -1;
}

static int busy_fibers(bg_worker *w) {
    int n = 0;
    for (int i = 0; w->fibers && i < w->concurrency; i++)
        n += w->fibers[i] && bg__fiber_busy(w->fibers[i]);
    return n;
}

static const char *state_of(bg_worker *w) {
    if (atomic_load(&w->stopping))
        return "stopping";
    return atomic_load(&w->quiet) ? "quiet" : "running";
}

/* Appends the command in a to the pipeline (bg__conn_append_args refuses one that ran out of
 * memory), and the key it writes to keys[*n], so an error reply can name it. */
static void send(bg__conn *c, bg__args *a, const char *key, const char **keys, int *n) {
    if (bg__conn_append_args(c, a) == BG_OK)
        keys[(*n)++] = key;
    bg__args_reset(a);
}

/* Appends DEL of the hash of main connection ID id and SREM of id from NS:workers. */
static void forget(bg__conn *c, bg_worker *w, long long id, const char **keys, int *n, char *key,
                   size_t keylen) {
    char sid[32];
    bg__args a;
    bg__fmt(sid, sizeof sid, "%lld", id);
    bg__key(key, keylen, w->ns, BG__K_WORKER, sid);
    bg__args_init(&a);
    bg__args_str(&a, "DEL");
    bg__args_str(&a, key);
    send(c, &a, key, keys, n);
    bg__args_str(&a, "SREM");
    bg__args_str(&a, w->key_prefix[BG__K_WORKERS]);
    bg__args_str(&a, sid);
    send(c, &a, w->key_prefix[BG__K_WORKERS], keys, n);
    bg__args_free(&a);
}

/* Reads n pipelined replies; an error reply is a finding about the key its command names, and
 * one about key sets *junk. */
static int read_replies(bg_worker *w, bg__conn *c, int n, const char *const *keys, const char *key,
                        int *junk) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
        redisReply *r = bg__conn_reply(c);
        if (!r) {
            bg__log(&w->log, BG_LOG_DEBUG, BG__ROLE, "heartbeat: %s", c->err);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            refused(w, keys[i], r->str);
            if (junk && keys[i] == key && strncmp(r->str, "WRONGTYPE", 9) == 0)
                *junk = 1;
            ok = 0;
        }
        freeReplyObject(r);
    }
    return ok ? 0 : 1;
}

/* After a beat met another type at the hash's key: 1 while it is still there (the beat leaves
 * it alone then; the one PEXPIRE it got makes it go), 0 once the key is free or a hash. */
static int still_junk(bg_worker *w, bg__heartbeat *hb, const char *key) {
    const char *argv[] = {"TYPE", key};
    redisReply *r = bg__conn_cmd(&hb->conn, 2, argv, NULL);
    int junk = !r || r->type != REDIS_REPLY_STATUS ||
               (strcmp(r->str, "none") != 0 && strcmp(r->str, "hash") != 0);
    if (r && junk)
        finding(w, key, "holds another type than a hash; the worker's row is not written");
    if (r)
        freeReplyObject(r);
    hb->junk = junk;
    return junk;
}

void bg__heartbeat_beat(bg_worker *w, bg__heartbeat *hb) {
    double now = bg__mono_ms();
    long long id = atomic_load(&w->main_id);
    if (now < hb->next_ms || id <= 0)
        return;
    hb->next_ms = now + BG__HEARTBEAT_MS;
    if (connect_hb(w, hb) != 0 || read_started(w, hb) != 0) {
        hb->next_ms = bg__mono_ms() + RETRY_MS;
        return;
    }

    char key[160], old[160], sid[32], host[256];
    const char *keys[5];
    int n = 0;
    bg__fmt(sid, sizeof sid, "%lld", id);
    bg__key(key, sizeof key, w->ns, BG__K_WORKER, sid);
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    /* A new main connection ID (Redis restarted, or the connection dropped): the hash of the old
     * one goes now, not five seconds later, so the worker is never listed twice. */
    if (hb->id != id)
        hb->junk = 0;
    if (hb->junk && still_junk(w, hb, key))
        return;
    if (hb->id && hb->id != id)
        forget(&hb->conn, w, hb->id, keys, &n, old, sizeof old);
    bg__args a;
    bg__args_init(&a);
    bg__args_str(&a, "HSET");
    bg__args_str(&a, key);
    bg__args_str(&a, "host");
    bg__args_str(&a, host);
    bg__args_str(&a, "pid");
    bg__args_ll(&a, (long long)getpid());
    bg__args_str(&a, "queues");
    bg__args_str(&a, w->queue_list);
    bg__args_str(&a, "fibers");
    bg__args_ll(&a, w->concurrency);
    bg__args_str(&a, "busy");
    bg__args_ll(&a, busy_fibers(w));
    bg__args_str(&a, "started");
    bg__args_ll(&a, (long long)hb->started_ms);
    bg__args_str(&a, "state");
    bg__args_str(&a, state_of(w));
    send(&hb->conn, &a, key, keys, &n);
    /* A key of the wrong type there gets the TTL once: it is junk in bg's own key, and the beats
     * leave it alone until it has gone (still_junk), then write the hash again. */
    bg__args_str(&a, "PEXPIRE");
    bg__args_str(&a, key);
    bg__args_ll(&a, BG__HEARTBEAT_TTL_MS);
    send(&hb->conn, &a, key, keys, &n);
    bg__args_str(&a, "SADD");
    bg__args_str(&a, w->key_prefix[BG__K_WORKERS]);
    bg__args_str(&a, sid);
    send(&hb->conn, &a, w->key_prefix[BG__K_WORKERS], keys, &n);
    bg__args_free(&a);
    if (read_replies(w, &hb->conn, n, keys, key, &hb->junk) >= 0)
        hb->id = id;
    else
        hb->next_ms = bg__mono_ms() + RETRY_MS;
}

void bg__heartbeat_end(bg_worker *w, bg__heartbeat *hb) {
    if (hb->id && connect_hb(w, hb) == 0) {
        char key[160];
        const char *keys[2];
        int n = 0;
        forget(&hb->conn, w, hb->id, keys, &n, key, sizeof key);
        read_replies(w, &hb->conn, n, keys, NULL, NULL);
        hb->id = 0;
    }
    bg__conn_close(&hb->conn);
}
