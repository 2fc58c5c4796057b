/* conn.c: opening a Redis connection the way every bg connection needs it (timeouts,
 * keepalive, close-on-exec, AUTH, SELECT, a client name, the scripts loaded) and running
 * commands and scripts on it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "bg_int.h"

static void io_error(bg__conn *c, const char *what) {
    char why[256] = "";
    if (c->tls)
        bg__tls_link_why(c->tls, why, sizeof why);
    if (c->rc && c->rc->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        bg__fmt(c->err, sizeof c->err, "%s: Redis did not answer in time", what);
    else if (*why) /* the TLS side's reason: hiredis only saw its socketpair closed */
        bg__fmt(c->err, sizeof c->err, "%s: %s", what, why);
    else if (c->rc && c->rc->err)
        bg__fmt(c->err, sizeof c->err, "%s: %s", what, c->rc->errstr);
    else
        bg__fmt(c->err, sizeof c->err, "%s: connection lost", what);
    bg__conn_close(c);
}

void bg__conn_close(bg__conn *c) {
    if (c->rc)
        redisFree(c->rc);
    c->rc = NULL;
    /* After redisFree: its end of the socketpair closed tells the pump to close the TLS side. */
    bg__tls_link_release(c->tls);
    c->tls = NULL;
    c->id = -1;
    for (int i = 0; i < c->nahead; i++)
        freeReplyObject(c->ahead[i]);
    c->nahead = c->inflight = 0;
}

long long bg__hello_id(const redisReply *r) {
    /* RESP2 gives HELLO's map as a flat array of names and values. */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == 2 && memcmp(k->str, "id", 2) == 0 &&
            v->type == REDIS_REPLY_INTEGER)
            return v->integer;
    }
    return -1;
}

int bg__conn_ok(const bg__conn *c) {
    return c->rc != NULL;
}

void bg__conn_set_timeout(bg__conn *c, int timeout_ms) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (c->rc)
        redisSetTimeout(c->rc, tv);
}

static int is_error(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR;
}

int bg__reply_code(const redisReply *r) {
    if (!r)
        return BG_EIO;
    if (r->type != REDIS_REPLY_ERROR)
        return BG_EPROTO;
    /* An ACL's refusal names itself so ("NOPERM this user has no permissions to run ..."),
     * also when a script's call is the refused one and Redis wraps the error. */
    return strstr(r->str, "NOPERM") ? BG_EACL : BG_EREDIS;
}

int bg__reply_error(const bg__conn *c, const redisReply *r, char *err, size_t errlen,
                    const char *fmt, ...) {
    char ctx[BG__ERRLEN], why[BG__ERRLEN];
    va_list ap;
    /* Copied first: err may be the connection's own message. */
    bg__fmt(why, sizeof why, "%s",
            !r                             ? c->err
            : r->type == REDIS_REPLY_ERROR ? r->str
                                           : "unexpected reply");
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    bg__fmt(err, errlen, "%s: %s", ctx, why);
    return bg__reply_code(r);
}

/* Errors a server gives while it cannot serve yet (loading its data, running a long script, a
 * replica without its primary): wait and connect again, as after a lost connection. */
static int is_transient(const redisReply *r) {
    static const char *const codes[] = {"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN "};
    for (size_t i = 0; is_error(r) && i < sizeof codes / sizeof codes[0]; i++)
        if (strncmp(r->str, codes[i], strlen(codes[i])) == 0)
            return 1;
    return 0;
}

/* For a rediss:// URL, replaces the TCP connection c->rc with one to the TLS pump (tls.c): the
 * handshake runs here, its socket goes to the pump and hiredis gets a socketpair's end, so it
 * reads and writes with its own blocking calls and timeouts as on plaintext. */
static int dial_tls(bg__conn *c, const bg__url *u, const char *url_masked, int timeout_ms) {
    char why[BG__ERRLEN];
    /* hiredis dialled (resolving, with its connect timeout and its messages) and set keepalive
     * on the socket, which the pump keeps. */
    int fd = redisFreeKeepFd(c->rc);
    c->rc = NULL;
    if (!u->ctx) {
        close(fd);
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s: TLS is not set up", url_masked);
        return BG_ECONNECT;
    }
    int plain = bg__tls_connect(u->ctx, u->host, fd, timeout_ms, &c->tls, why, sizeof why);
    if (plain < 0) {
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s: %s", url_masked, why);
        return BG_ECONNECT;
    }
    if (!(c->rc = redisConnectFd(plain))) {
        close(plain);
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s: out of memory", url_masked);
        bg__conn_close(c);
        return BG_ENOMEM;
    }
    return BG_OK;
}

/* Connects to u with bg's socket manners; for a redis-sentinel:// URL, to the primary the
 * sentinels name now. Returns BG_OK, or an error with a message (the connection is closed
 * then). */
static int dial(bg__conn *c, const bg__url *u, const char *url_masked, int timeout_ms) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char primary[256], why[BG__ERRLEN];
    int port = u->port;
    if (u->master) {
        int rc = bg__sentinel_master(u, primary, sizeof primary, &port, why, sizeof why);
        if (rc != BG_OK) {
            bg__fmt(c->err, sizeof c->err, "cannot connect to %s: %s", url_masked, why);
            return rc;
        }
    }
    c->rc = u->path     ? redisConnectUnixWithTimeout(u->path, tv)
            : u->master ? redisConnectWithTimeout(primary, port, tv)
                        : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c->rc) {
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s: out of memory", url_masked);
        return BG_ENOMEM;
    }
    if (c->rc->err) {
        if (u->master)
            bg__fmt(c->err, sizeof c->err, "cannot connect to %s: primary %s:%d: %s", url_masked,
                    primary, port, c->rc->errstr);
        else
            bg__fmt(c->err, sizeof c->err, "cannot connect to %s: %s", url_masked, c->rc->errstr);
        bg__conn_close(c);
        return BG_ECONNECT;
    }
    /* hiredis opens sockets without FD_CLOEXEC; an exec child holding one would keep a dead
     * worker's connection alive in CLIENT LIST. */
    fcntl(c->rc->fd, F_SETFD, fcntl(c->rc->fd, F_GETFD) | FD_CLOEXEC);
    if (!u->path)
        redisEnableKeepAlive(c->rc);
    int rc = u->tls ? dial_tls(c, u, url_masked, timeout_ms) : BG_OK;
    if (rc == BG_OK)
        redisSetTimeout(c->rc, tv);
    return rc;
}

/* Where each command of the handshake sits in its pipeline; -1 for one not sent. */
typedef struct {
    int auth, role, select, name, id, hello, info, script, n;
} handshake;

/* Appends the command in a as the handshake's next one, its place going to *idx; a is reset
 * for the next. */
static int append_step(bg__conn *c, bg__args *a, handshake *h, int *idx) {
    int rc = bg__conn_append_args(c, a);
    bg__args_reset(a);
    if (rc == BG_OK)
        *idx = h->n++;
    return rc;
}

/* Appends AUTH, SELECT, CLIENT SETNAME (each when needed), CLIENT ID, INFO server and a SCRIPT
 * LOAD of every script. Returns BG_OK or BG_ENOMEM: a command that could not be appended must
 * not be waited for. */
static int append_handshake(bg__conn *c, const bg__url *u, const char *name, handshake *h) {
    bg__args a;
    int rc = BG_OK;
    *h = (handshake){-1, -1, -1, -1, -1, -1, -1, -1, 0};
    bg__args_init(&a);
    if (u->pass) {
        bg__args_str(&a, "AUTH");
        if (u->user)
            bg__args_str(&a, u->user);
        bg__args_str(&a, u->pass);
        rc = append_step(c, &a, h, &h->auth);
    }
    /* The sentinels' word is checked: during a failover they may still name a server that
     * is a replica now, and bg never writes to one. */
    if (rc == BG_OK && u->master) {
        bg__args_str(&a, "ROLE");
        rc = append_step(c, &a, h, &h->role);
    }
    if (rc == BG_OK && u->db) {
        bg__args_str(&a, "SELECT");
        bg__args_ll(&a, u->db);
        rc = append_step(c, &a, h, &h->select);
    }
    if (rc == BG_OK && u->hello) {
        /* Where CLIENT is forbidden (docs/operations.md#liveness): HELLO names the connection
         * and its reply gives the client ID, with no CLIENT command. */
        const char *argv[] = {"HELLO", "2", "SETNAME", name};
        bg__args_strs(&a, name ? 4 : 2, argv);
        rc = append_step(c, &a, h, &h->hello);
    }
    if (rc == BG_OK && name && !u->hello) {
        const char *argv[] = {"CLIENT", "SETNAME", name};
        bg__args_strs(&a, 3, argv);
        rc = append_step(c, &a, h, &h->name);
    }
    if (rc == BG_OK && !u->hello) {
        const char *argv[] = {"CLIENT", "ID"};
        bg__args_strs(&a, 2, argv);
        rc = append_step(c, &a, h, &h->id);
    }
    if (rc == BG_OK) {
        const char *argv[] = {"INFO", "server"};
        bg__args_strs(&a, 2, argv);
        rc = append_step(c, &a, h, &h->info);
    }
    h->script = h->n;
    for (int i = 0; rc == BG_OK && i < BG__LUA_COUNT; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", bg__script_source((bg__script_id)i)};
        if ((rc = bg__conn_append(c, 3, argv, NULL)) == BG_OK)
            h->n++;
    }
    bg__args_free(&a);
    return rc;
}

/* Judges reply i of the handshake, keeping what it tells (client ID, run_id, script SHAs).
 * Returns BG_OK or an error with a message. */
static int take_reply(bg__conn *c, const handshake *h, int i, const redisReply *r, const bg__url *u,
                      const char *url_masked) {
    if (is_transient(r)) {
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s yet: %s", url_masked, r->str);
        return BG_ECONNECT;
    }
    if (is_error(r)) {
        if (i == h->auth) {
            bg__fmt(c->err, sizeof c->err, "cannot authenticate to %s: %s", url_masked, r->str);
            return BG_EREDIS;
        }
        if (i == h->select) {
            bg__fmt(c->err, sizeof c->err, "cannot select database %d on %s: %s", u->db, url_masked,
                    r->str);
            return BG_EREDIS;
        }
        if (i == h->role)
            return bg__reply_error(c, r, c->err, sizeof c->err,
                                   "%s refused ROLE (a redis-sentinel:// URL needs +role)",
                                   url_masked);
        /* An ACL that forbids INFO only costs us the run_id. */
        if (i == h->info)
            return BG_OK;
        c->client_refused = i == h->name || i == h->id;
        return bg__reply_error(c, r, c->err, sizeof c->err, "%s refused %s", url_masked,
                               i == h->name    ? "CLIENT SETNAME"
                               : i == h->id    ? "CLIENT ID"
                               : i == h->hello ? "HELLO"
                                               : "SCRIPT LOAD");
    }
    if (i == h->role &&
        (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
         r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0)) {
        bg__fmt(c->err, sizeof c->err,
                "cannot connect to %s yet: the server the sentinels name is not a master (%s)",
                url_masked,
                r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                        r->element[0]->type == REDIS_REPLY_STRING
                    ? r->element[0]->str
                    : "unexpected reply to ROLE");
        return BG_ECONNECT;
    }
    if (i == h->id && r->type == REDIS_REPLY_INTEGER)
        c->id = r->integer;
    else if (i == h->hello)
        c->id = bg__hello_id(r);
    else if (i == h->info && r->type == REDIS_REPLY_STRING)
        bg__parse_run_id(r->str, c->run_id, sizeof c->run_id);
    else if (i >= h->script && r->type == REDIS_REPLY_STRING)
        bg__fmt(c->sha[i - h->script], sizeof c->sha[0], "%s", r->str);
    return BG_OK;
}

/* Reads every reply of the handshake (the first error is the one reported). */
static int read_handshake(bg__conn *c, const handshake *h, const bg__url *u,
                          const char *url_masked) {
    int rc = BG_OK;
    for (int i = 0; i < h->n; i++) {
        redisReply *r = bg__conn_reply(c);
        if (!r) {
            char why[BG__ERRLEN];
            bg__fmt(why, sizeof why, "%s", c->err);
            bg__fmt(c->err, sizeof c->err, "cannot connect to %s: %s", url_masked, why);
            return BG_ECONNECT;
        }
        if (rc == BG_OK)
            rc = take_reply(c, h, i, r, u, url_masked);
        freeReplyObject(r);
    }
    return rc;
}

int bg__conn_open(bg__conn *c, const bg__url *u, const char *url_masked, const char *name,
                  int timeout_ms) {
    handshake h;
    bg__conn_close(c);
    c->err[0] = '\0';
    c->run_id[0] = '\0';
    /* Taken before the sentinels are asked: a move heard meanwhile opens it again. */
    c->genp = u->gen;
    c->gen = u->gen ? atomic_load(u->gen) : 0;
    c->client_refused = 0;
    int rc = dial(c, u, url_masked, timeout_ms);
    if (rc != BG_OK)
        return rc;
    /* The whole handshake goes in one pipeline: one round trip however many scripts. */
    if ((rc = append_handshake(c, u, name, &h)) != BG_OK) {
        bg__fmt(c->err, sizeof c->err, "cannot connect to %s: out of memory", url_masked);
        bg__conn_close(c);
        return rc;
    }
    if ((rc = read_handshake(c, &h, u, url_masked)) != BG_OK)
        bg__conn_close(c);
    return rc;
}

/* A connection to a primary the sentinels replaced since it was opened is closed before
 * another command goes to it (never in the middle of a pipeline): the caller reconnects, as
 * after a loss, and so reaches the new primary. Returns 1 when it was closed. */
static int superseded(bg__conn *c) {
    if (!c->rc || !c->genp || c->inflight || c->nahead || atomic_load(c->genp) == c->gen)
        return 0;
    bg__fmt(c->err, sizeof c->err, "the sentinels moved the primary");
    bg__conn_close(c);
    return 1;
}

/* A write refused because the server is a replica now (a failover turned the old primary into
 * one) is taken as a lost connection: the caller reconnects, and through the sentinels finds
 * the new primary; nothing is ever written to a replica. */
static redisReply *judge(bg__conn *c, redisReply *r) {
    if (!is_error(r) || strncmp(r->str, "READONLY ", 9) != 0)
        return r;
    bg__fmt(c->err, sizeof c->err, "the server is a replica now: %.200s", r->str);
    freeReplyObject(r);
    bg__conn_close(c);
    return NULL;
}

redisReply *bg__conn_cmd(bg__conn *c, int argc, const char **argv, const size_t *lens) {
    if (superseded(c))
        return NULL;
    if (!c->rc) {
        bg__fmt(c->err, sizeof c->err, "not connected");
        return NULL;
    }
    redisReply *r = redisCommandArgv(c->rc, argc, argv, lens);
    if (!r)
        io_error(c, argv[0]);
    return judge(c, r);
}

/* A command that could not be appended breaks the pipeline it belonged to: those appended
 * before it would be answered to whoever reads next. The connection goes (the next call opens
 * a new one), and every caller sees the loss as it sees any other. */
static int append_failed(bg__conn *c) {
    bg__fmt(c->err, sizeof c->err, "out of memory");
    bg__conn_close(c);
    return BG_ENOMEM;
}

int bg__conn_append(bg__conn *c, int argc, const char **argv, const size_t *lens) {
    if (superseded(c) || !c->rc)
        return BG_EIO;
    if (redisAppendCommandArgv(c->rc, argc, argv, lens) != REDIS_OK)
        return append_failed(c);
    c->inflight++;
    return BG_OK;
}

int bg__conn_flush(bg__conn *c) {
    int done = 0;
    if (!c->rc)
        return BG_EIO;
    while (!done)
        if (redisBufferWrite(c->rc, &done) != REDIS_OK) {
            io_error(c, "write");
            return BG_EIO;
        }
    return BG_OK;
}

#define ARGV(a) ((const char **)(void *)(a)->argv)

redisReply *bg__conn_cmd_args(bg__conn *c, const bg__args *a) {
    if (a->oom) {
        bg__fmt(c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    return bg__conn_cmd(c, a->argc, ARGV(a), a->lens);
}

int bg__conn_append_args(bg__conn *c, const bg__args *a) {
    if (a->oom)
        return c->rc ? append_failed(c) : BG_EIO;
    return bg__conn_append(c, a->argc, ARGV(a), a->lens);
}

/* The next reply on the socket, whatever was read ahead. */
static redisReply *read_reply(bg__conn *c) {
    void *r = NULL;
    if (!c->rc) {
        bg__fmt(c->err, sizeof c->err, "not connected");
        return NULL;
    }
    if (redisGetReply(c->rc, &r) != REDIS_OK || !r) {
        io_error(c, "reply");
        return NULL;
    }
    if (c->inflight > 0)
        c->inflight--;
    return judge(c, r);
}

redisReply *bg__conn_reply(bg__conn *c) {
    if (c->nahead) {
        redisReply *r = c->ahead[0];
        memmove(c->ahead, c->ahead + 1, (size_t)--c->nahead * sizeof c->ahead[0]);
        return r;
    }
    return read_reply(c);
}

/* Builds EVALSHA sha nkeys args... into e. */
static void eval_args(bg__conn *c, bg__args *e, bg__script_id id, int nkeys, const bg__args *a) {
    bg__args_str(e, "EVALSHA");
    bg__args_str(e, c->sha[id]);
    bg__args_ll(e, nkeys);
    for (int i = 0; i < a->argc; i++)
        bg__args_add(e, a->argv[i], a->lens[i]);
    if (a->oom)
        e->oom = 1;
}

static int is_noscript(const redisReply *r) {
    return is_error(r) && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Loads the script again (Redis lost its script cache: restart or failover). */
static int reload(bg__conn *c, bg__script_id id) {
    const char *argv[] = {"SCRIPT", "LOAD", bg__script_source(id)};
    redisReply *r = bg__conn_cmd(c, 3, argv, NULL);
    if (!r)
        return BG_EIO;
    int ok = r->type == REDIS_REPLY_STRING;
    if (ok)
        bg__fmt(c->sha[id], sizeof c->sha[0], "%s", r->str);
    freeReplyObject(r);
    return ok ? BG_OK : BG_EREDIS;
}

redisReply *bg__conn_eval(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a) {
    int rc = bg__conn_append_eval(c, id, nkeys, a);
    if (rc != BG_OK) {
        bg__fmt(c->err, sizeof c->err, "%s", rc == BG_ENOMEM ? "out of memory" : "not connected");
        return NULL;
    }
    return bg__conn_eval_reply(c, id, nkeys, a);
}

redisReply *bg__conn_eval_strs(bg__conn *c, bg__script_id id, int nkeys, int argc,
                               const char **argv) {
    bg__args a;
    bg__args_init(&a);
    bg__args_strs(&a, argc, argv);
    redisReply *r = bg__conn_eval(c, id, nkeys, &a);
    bg__args_free(&a);
    return r;
}

int bg__conn_append_eval(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a) {
    bg__args e;
    bg__args_init(&e);
    eval_args(c, &e, id, nkeys, a);
    int rc = bg__conn_append_args(c, &e);
    bg__args_free(&e);
    return rc;
}

redisReply *bg__conn_eval_reply(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a) {
    redisReply *r = bg__conn_reply(c);
    if (!is_noscript(r))
        return r;
    freeReplyObject(r);
    /* The replies of the commands pipelined behind this call (a fiber sends its finish and its
     * next claim together) come before the reload's on the socket: read them ahead now, to be
     * handed out in turn. Else SCRIPT LOAD would take the next call's reply for its own, and
     * that call the SHA for its reply. */
    while (c->inflight > 0) {
        if (c->nahead == BG__CONN_AHEAD) {
            bg__fmt(c->err, sizeof c->err, "script cache lost with too many calls pipelined");
            bg__conn_close(c);
            return NULL;
        }
        if ((r = read_reply(c)) == NULL)
            return NULL;
        c->ahead[c->nahead++] = r;
    }
    /* Another flush may come between the load and the call (SCRIPT FLUSH run in a loop, a
     * failover): load again, a few times. The scripts are loaded, never sent with EVAL, so
     * the ACL of docs/operations.md (SCRIPT LOAD and EVALSHA) is all a program needs. */
    for (int tries = 0;; tries++) {
        if (reload(c, id) != BG_OK)
            return NULL;
        if (bg__conn_append_eval(c, id, nkeys, a) != BG_OK)
            return NULL;
        if ((r = read_reply(c)) == NULL || !is_noscript(r) || tries == 2)
            return r;
        freeReplyObject(r);
    }
}
