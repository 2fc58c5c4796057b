/* sentinel.c: Redis Sentinel for redis-sentinel:// URLs (docs/operations.md#sentinel): asking
 * the sentinels, in turn, where the primary of a master name is now, and listening on one of
 * them for +switch-master, which moves every connection of the URL to the new primary. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "bg_int.h"

/* A sentinel answers from memory: a second is long, and a dead one costs no more than that. */
#define SENTINEL_TIMEOUT_MS 1000
/* The watch's connection is opened from a main loop, which must not stall long. */
#define WATCH_TIMEOUT_MS 500
#define WATCH_RETRY_MS 1000
#define PING_EVERY_MS 1000
#define HANG_AFTER_MS 3000

static redisContext *sentinel_dial(const bg__hostport *hp, int timeout_ms, char *why,
                                   size_t whylen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *rc = redisConnectWithTimeout(hp->host, hp->port, tv);
    if (!rc) {
        bg__fmt(why, whylen, "out of memory");
        return NULL;
    }
    if (rc->err) {
        bg__fmt(why, whylen, "%s", rc->errstr);
        redisFree(rc);
        return NULL;
    }
    /* As every bg socket: no exec child inherits it. */
    fcntl(rc->fd, F_SETFD, fcntl(rc->fd, F_GETFD) | FD_CLOEXEC);
    redisEnableKeepAlive(rc);
    redisSetTimeout(rc, tv);
    return rc;
}

/* Runs a command on a sentinel. The URL's password is the data nodes'; a sentinel that asks
 * for one (NOAUTH) is given the same user and password, and the command is sent again. */
static redisReply *sentinel_cmd(redisContext *rc, const bg__url *u, int argc, const char **argv,
                                char *why, size_t whylen) {
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0 && u->pass) {
        freeReplyObject(r);
        const char *auth[] = {"AUTH", u->user ? u->user : u->pass, u->pass};
        r = redisCommandArgv(rc, u->user ? 3 : 2, auth, NULL);
        if (r && r->type == REDIS_REPLY_ERROR) {
            bg__fmt(why, whylen, "AUTH refused: %s", r->str);
            freeReplyObject(r);
            return NULL;
        }
        if (r)
            freeReplyObject(r);
        r = r ? redisCommandArgv(rc, argc, argv, NULL) : NULL;
    }
    if (!r)
        bg__fmt(why, whylen, "%s",
                rc->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                    ? "it did not answer in time"
                : rc->err ? rc->errstr
                          : "connection lost");
    return r;
}

/* What a get-master-addr-by-name reply says: 1 with the address in host and *port, 0 for a nil
 * (no master of that name), -1 for anything else (the reason in why). */
static int take_addr(const redisReply *r, char *host, size_t hostlen, int *port, char *why,
                     size_t whylen) {
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_ERROR) {
        bg__fmt(why, whylen, "%s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= hostlen) {
        bg__fmt(why, whylen, "unexpected reply to SENTINEL get-master-addr-by-name");
        return -1;
    }
    char *end;
    long p = strtol(r->element[1]->str, &end, 10);
    if (*end || p < 1 || p > 65535) {
        bg__fmt(why, whylen, "the sentinel gave the port '%s'", r->element[1]->str);
        return -1;
    }
    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
    *port = (int)p;
    return 1;
}

/* Asks one sentinel, on its open connection, as take_addr() answers. */
static int ask(redisContext *rc, const bg__url *u, char *host, size_t hostlen, int *port, char *why,
               size_t whylen) {
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", u->master};
    redisReply *r = sentinel_cmd(rc, u, 3, argv, why, whylen);
    if (!r)
        return -1;
    int got = take_addr(r, host, hostlen, port, why, whylen);
    freeReplyObject(r);
    return got;
}

int bg__sentinel_master(const bg__url *u, char *host, size_t hostlen, int *port, char *err,
                        size_t errlen) {
    char why[BG__ERRLEN] = "", last[BG__ERRLEN] = "";
    int unknown = 0;
    for (int i = 0; i < u->nsentinels; i++) {
        const bg__hostport *hp = &u->sentinels[i];
        redisContext *rc = sentinel_dial(hp, SENTINEL_TIMEOUT_MS, why, sizeof why);
        int got = rc ? ask(rc, u, host, hostlen, port, why, sizeof why) : -1;
        if (rc)
            redisFree(rc);
        if (got > 0)
            return BG_OK;
        if (got == 0)
            unknown++;
        else
            bg__fmt(last, sizeof last, "sentinel %s:%d: %s", hp->host, hp->port, why);
    }
    if (unknown) {
        bg__fmt(err, errlen, "no sentinel knows a master named '%s' (%d of %d answered so)",
                u->master, unknown, u->nsentinels);
        return BG_ENOMASTER;
    }
    bg__fmt(err, errlen, "no sentinel answered (%d tried; the last, %s)", u->nsentinels, last);
    return BG_ECONNECT;
}

/* ---- the watch ---- */

void bg__sentinel_watch_close(bg__sentinel_watch *s) {
    if (s->rc)
        redisFree(s->rc);
    s->rc = NULL;
}

/* The primary is at addr now: a move from where it was bumps the URL's generation. */
static int moved_to(bg__sentinel_watch *s, const bg__url *u, const char *addr, const bg_logger *log,
                    const char *role) {
    int moved = s->addr[0] && strcmp(s->addr, addr) != 0;
    if (moved) {
        atomic_fetch_add(u->gen, 1);
        bg__log(log, BG_LOG_INFO, role, "the sentinels moved master %s from %s to %s", u->master,
                s->addr, addr);
    }
    bg__fmt(s->addr, sizeof s->addr, "%s", addr);
    return moved;
}

/* Opens the watch on the next sentinel in turn: asks it where the primary is (a move missed
 * while no sentinel was listened to counts as one heard) and subscribes. */
static int watch_open(bg__sentinel_watch *s, const bg__url *u, const bg_logger *log,
                      const char *role) {
    char why[BG__ERRLEN], host[256], addr[300];
    int port;
    const bg__hostport *hp = &u->sentinels[s->next];
    s->next = (s->next + 1) % u->nsentinels;
    s->rc = sentinel_dial(hp, WATCH_TIMEOUT_MS, why, sizeof why);
    int got = s->rc ? ask(s->rc, u, host, sizeof host, &port, why, sizeof why) : -1;
    if (got == 0)
        bg__fmt(why, sizeof why, "it knows no master named '%s'", u->master);
    if (got > 0) {
        const char *argv[] = {"SUBSCRIBE", "+switch-master"};
        redisReply *r = sentinel_cmd(s->rc, u, 2, argv, why, sizeof why);
        if (r && r->type == REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            s->last_data_ms = s->last_ping_ms = bg__mono_ms();
            bg__fmt(addr, sizeof addr, "%s:%d", host, port);
            return moved_to(s, u, addr, log, role);
        }
        if (r)
            freeReplyObject(r);
    }
    bg__log(log, BG_LOG_DEBUG, role, "cannot listen to sentinel %s:%d: %s", hp->host, hp->port,
            why);
    bg__sentinel_watch_close(s);
    s->retry_ms = bg__mono_ms() + WATCH_RETRY_MS;
    return 0;
}

/* A +switch-master message: "<name> <old ip> <old port> <new ip> <new port>". */
static int heard(bg__sentinel_watch *s, const bg__url *u, const redisReply *r, const bg_logger *log,
                 const char *role) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return 0;
    const char *msg = r->element[2]->str;
    size_t n = strlen(u->master);
    if (strncmp(msg, u->master, n) != 0 || msg[n] != ' ')
        return 0;
    char oldip[256], newip[256];
    int oldport, newport;
    if (sscanf(msg + n + 1, "%255s %d %255s %d", oldip, &oldport, newip, &newport) != 4)
        return 0;
    char addr[300];
    bg__fmt(addr, sizeof addr, "%s:%d", newip, newport);
    return moved_to(s, u, addr, log, role);
}

int bg__sentinel_watch_poll(bg__sentinel_watch *s, const bg__url *u, const bg_logger *log,
                            const char *role) {
    double now = bg__mono_ms();
    if (!u->master)
        return 0;
    if (!s->rc)
        return now >= s->retry_ms ? watch_open(s, u, log, role) : 0;
    int moved = 0;
    struct pollfd p = {s->rc->fd, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) {
        if (redisBufferRead(s->rc) != REDIS_OK) {
            bg__sentinel_watch_close(s);
            return 0;
        }
        s->last_data_ms = now;
        void *reply;
        while (redisGetReplyFromReader(s->rc, &reply) == REDIS_OK && reply) {
            moved |= heard(s, u, reply, log, role);
            freeReplyObject(reply);
        }
    }
    /* A sentinel that stopped answering is left for the next one. */
    if (now - s->last_ping_ms >= PING_EVERY_MS) {
        const char *argv[] = {"PING"};
        int done = 0;
        s->last_ping_ms = now;
        if (redisAppendCommandArgv(s->rc, 1, argv, NULL) != REDIS_OK ||
            redisBufferWrite(s->rc, &done) != REDIS_OK)
            bg__sentinel_watch_close(s);
    }
    if (s->rc && now - s->last_data_ms > HANG_AFTER_MS)
        bg__sentinel_watch_close(s);
    return moved;
}
