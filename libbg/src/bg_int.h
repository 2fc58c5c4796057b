/* bg_int.h: libbg's internal interfaces, shared by its source files and its unit tests but
 * never installed. Internal non-static names start with bg__. */
#ifndef BG_INT_H
#define BG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "bg/bg.h"

#define BG__ERRLEN 512

/* ---- url.c: docs/schema.md#formats Redis URLs ---- */

typedef struct bg__tls bg__tls;

#define BG__SENTINELS_MAX 16    /* sentinels a redis-sentinel:// URL lists, at most */
#define BG__MASTER_NAME_MAX 255 /* bytes of a master's name */

typedef struct {
    char *host;
    int port;
} bg__hostport;

typedef struct {
    char *host; /* TCP host, or NULL for a unix socket */
    int port;
    char *path; /* unix socket path, or NULL */
    int db;
    char *user;   /* ACL user, decoded; NULL when absent */
    char *pass;   /* password, decoded; NULL when absent */
    int tls;      /* a rediss:// URL */
    bg__tls *ctx; /* its TLS setup (tls.c), made by bg__url_parse_tls(); owned */
    /* Connections name and identify themselves with HELLO 2, never a CLIENT command: set by a
     * worker or watcher judging liveness by leases (docs/operations.md#liveness), for servers
     * that forbid CLIENT. */
    int hello;
    /* A redis-sentinel:// URL (host and path NULL): each connection asks the sentinels, in
     * order, where the master of that name is now (sentinel.c). */
    bg__hostport *sentinels;
    int nsentinels;
    char *master;
    /* Bumped when a sentinel announces a new primary (+switch-master): a connection opened
     * under an older value is closed before its next command and opened again. */
    atomic_uint *gen;
} bg__url;

/* Parses s into u (zeroed first). On failure returns BG_EURL (or BG_ENOMEM) with a message
 * naming the masked URL in err. Free u with bg__url_clear() either way. */
int bg__url_parse(const char *s, bg__url *u, char *err, size_t errlen);
void bg__url_clear(bg__url *u);

/* Checks TLS options t against a parsed URL u: any option set needs a rediss:// URL, a client
 * certificate its key and a key its certificate, and no option may be an empty string. Returns
 * BG_OK, or BG_EINVAL with a message in err. */
int bg__url_tls_check(const bg__url *u, const bg_tls_options *t, char *err, size_t errlen);

/* bg__url_parse(), then bg__url_tls_check() and, for a rediss:// URL, the TLS setup of tls.c
 * (the CA store, the client certificate and key loaded now, so a bad file is reported by the
 * handle's constructor). t may be NULL. Returns BG_OK, BG_EURL, BG_EINVAL or BG_ENOMEM with a
 * message in err. */
int bg__url_parse_tls(const char *s, const bg_tls_options *t, bg__url *u, char *err, size_t errlen);

/* ---- sentinel.c: the primary of a redis-sentinel:// URL (docs/operations.md#sentinel) ---- */

/* Asks the sentinels of u, in turn, where the primary of u->master is; the first that answers
 * with an address wins. Returns BG_OK with the address in host (hostlen bytes) and *port;
 * BG_ENOMASTER when the sentinels that answered know no such master; BG_ECONNECT when none
 * answered. The message is in err. Thread-safe: nothing is kept. */
int bg__sentinel_master(const bg__url *u, char *host, size_t hostlen, int *port, char *err,
                        size_t errlen);

/* A connection to one sentinel subscribed to +switch-master, for a main loop to look at. Zero
 * it to start. */
typedef struct {
    redisContext *rc; /* NULL while no sentinel is listened to */
    int next;         /* the sentinel to try next */
    double retry_ms, last_data_ms, last_ping_ms;
    char addr[300]; /* the primary's "host:port", as last heard; "" before */
} bg__sentinel_watch;

/* Reads what the sentinel said, without waiting; (re)opens the watch on the next sentinel when
 * there is none (at most once a second). When the primary of u moved (a +switch-master for
 * u->master, or another address found on opening), bumps *u->gen, logs it at Info as role, and
 * returns 1; else 0. A no-op returning 0 for a URL that is not redis-sentinel://. */
int bg__sentinel_watch_poll(bg__sentinel_watch *s, const bg__url *u, const bg_logger *log,
                            const char *role);
void bg__sentinel_watch_close(bg__sentinel_watch *s);

/* ---- tls.c: TLS for hiredis 0.14 through a socketpair (docs/operations.md#tls) ---- */

/* One TLS connection carried by the process's pump thread; shared by the connection and the
 * pump, freed by whichever lets go of it last. */
typedef struct bg__tls_link bg__tls_link;

/* Makes the TLS setup of t: NULL fields as bg_tls_options says. BG_OK, or BG_EINVAL naming the
 * file that could not be used, or BG_ENOMEM. */
int bg__tls_new(bg__tls **out, const bg_tls_options *t, char *err, size_t errlen);
void bg__tls_free(bg__tls *t);

/* Runs the TLS handshake on fd, a connected TCP socket in blocking mode, each read and write
 * of it waiting at most timeout_ms, verifying the certificate against host (or the setup's
 * server name). On success hands fd to the pump thread and returns the plaintext end of a
 * socketpair for hiredis (close-on-exec), with *link set; on failure returns -1 with a message
 * in err (fd is closed either way). */
int bg__tls_connect(const bg__tls *t, const char *host, int fd, int timeout_ms, bg__tls_link **link,
                    char *err, size_t errlen);

/* Why the pump ended the link ("" when it did not, or the peer closed it cleanly). */
void bg__tls_link_why(bg__tls_link *l, char *buf, size_t len);

/* Lets go of the connection's hold on l (its hiredis end must be closed first, which tells the
 * pump to close the TLS side). NULL is a no-op. */
void bg__tls_link_release(bg__tls_link *l);

/* ---- keys.c: every Redis key name, in one place (docs/schema.md#keys) ---- */

typedef enum {
    BG__K_JOBS,       /* NS:jobs:<job> */
    BG__K_READY,      /* NS:ready:<queue> */
    BG__K_SCHEDULED,  /* NS:scheduled:<queue> */
    BG__K_ATTEMPTS,   /* NS:attempts:<attempt> */
    BG__K_PROCESSING, /* NS:processing:<queue> */
    BG__K_COMPLETED,  /* NS:completed:<queue> */
    BG__K_FAILED,     /* NS:failed:<queue> */
    BG__K_DEAD,       /* NS:dead:<queue> */
    BG__K_STATS,      /* NS:stats:<queue> */
    BG__K_JPS,        /* NS:jps:<queue>:<100 ms slot> (docs/schema.md) */
    BG__K_QUEUES,     /* NS:queues (no suffix) */
    BG__K_PAUSED,     /* NS:paused (no suffix): the paused queues */
    BG__K_CANCEL,     /* NS:cancel:<attempt>: a request to stop a running attempt */
    BG__K_WORKER,     /* NS:worker:<client ID of a worker's main connection>, its heartbeat */
    BG__K_WORKERS,    /* NS:workers (no suffix): the IDs of the heartbeat hashes */
    BG__K_LEASE,      /* NS:lease:<lease ID>: a fiber's lease, alive while its TTL runs */
    BG__K_COUNT
} bg__key_kind;

/* Writes "NS:<kind>:<suffix>" (or "NS:<kind>:" for an empty suffix, a prefix the Lua scripts
 * complete) into buf. Returns the length, or -1 when it does not fit. */
int bg__key(char *buf, size_t len, const char *ns, bg__key_kind kind, const char *suffix);

/* Builds "NS:<kind>:<suffix>" of a suffix of slen bytes, any bytes included (a set member
 * read back from Redis may hold NULs or be of any length), in a new buffer the caller frees; its
 * length goes to *len. Returns NULL when out of memory or kind is BG__K_QUEUES or BG__K_WORKERS. */
char *bg__key_dup(const char *ns, bg__key_kind kind, const char *suffix, size_t slen, size_t *len);

/* Writes the client name "NS-<role>" into buf; returns the length or -1. */
int bg__client_name(char *buf, size_t len, const char *ns, const char *role);

/* ---- args.c: building argument vectors for redisCommandArgv ---- */

typedef struct {
    int argc;
    int cap;
    char **argv; /* owned copies */
    size_t *lens;
    int oom;
} bg__args;

void bg__args_init(bg__args *a);
void bg__args_reset(bg__args *a); /* argc back to 0, memory kept */
void bg__args_free(bg__args *a);
void bg__args_add(bg__args *a, const char *s, size_t len);
void bg__args_str(bg__args *a, const char *s);
void bg__args_ll(bg__args *a, long long v);
void bg__args_strs(bg__args *a, int n, const char **s); /* n C strings */

/* ---- script.c: the embedded Lua scripts ---- */

typedef enum {
    BG__LUA_ENQUEUE,
    BG__LUA_DEQUEUE,
    BG__LUA_CLAIM,
    BG__LUA_FINISH,
    BG__LUA_REOWN,
    BG__LUA_SCHEDULE,
    BG__LUA_TRIM,
    BG__LUA_RETRY,
    BG__LUA_RETRY_DEAD,
    BG__LUA_OLDEST,
    BG__LUA_DEAD,
    BG__LUA_PURGE,
    BG__LUA_CANCEL,
    BG__LUA_TOUCH,
    BG__LUA_COUNT
} bg__script_id;

const char *bg__script_source(bg__script_id id);
/* Returns 1 when r is a script's refusal, {'badkey', key, what} or {'badarg', name, what}: a
 * check failed before any write, so nothing changed. Sets *key and *what (when not NULL). */
int bg__script_refused(const redisReply *r, const char **key, const char **what);

/* ---- conn.c: one hiredis connection with bg's manners ---- */

/* Replies a connection may read ahead of their turn (bg__conn_eval_reply). */
#define BG__CONN_AHEAD 8

/* A connection. Replaced, never reused, after any error (hiredis 0.14 leaves a context that
 * returned an error unusable). */
typedef struct {
    redisContext *rc;
    bg__tls_link *tls;  /* for a rediss:// connection: rc talks to the pump through a socketpair */
    long long id;       /* CLIENT ID */
    char run_id[41];    /* the server's run_id */
    int client_refused; /* the last open failed because Redis refused CLIENT SETNAME or ID */
    char sha[BG__LUA_COUNT][41];
    char err[BG__ERRLEN];
    int inflight;                      /* commands appended whose replies are still on the socket */
    redisReply *ahead[BG__CONN_AHEAD]; /* replies read ahead of their turn, oldest first */
    int nahead;
    atomic_uint *genp; /* the URL's generation (redis-sentinel://), NULL for other URLs */
    unsigned gen;      /* its value when this connection was opened */
} bg__conn;

/* Opens a connection to u: connect and socket timeouts of timeout_ms, keepalive, FD_CLOEXEC,
 * AUTH, SELECT, CLIENT SETNAME name (when not NULL), CLIENT ID (HELLO 2 [SETNAME name] for both
 * when u->hello), run_id and SCRIPT LOAD of every script, in one pipeline. url_masked names the
 * server in messages. Returns BG_OK or an error with a message in c->err (the connection is closed
 * then). */
int bg__conn_open(bg__conn *c, const bg__url *u, const char *url_masked, const char *name,
                  int timeout_ms);
void bg__conn_close(bg__conn *c);
int bg__conn_ok(const bg__conn *c);
/* The client ID a HELLO reply gives, or -1 when it gives none. */
long long bg__hello_id(const redisReply *r);
/* Sets the socket's read and write timeout of an open connection. */
void bg__conn_set_timeout(bg__conn *c, int timeout_ms);

/* Runs a command given as argv/lens and returns its reply (free with freeReplyObject), or NULL
 * after an I/O error (the connection is closed, message in c->err). An error reply is
 * returned as a reply, not NULL. */
redisReply *bg__conn_cmd(bg__conn *c, int argc, const char **argv, const size_t *lens);

/* Appends a command to the output buffer without waiting; pair each with bg__conn_reply().
 * Returns BG_OK, BG_EIO when not connected, or BG_ENOMEM, which closes the connection (the
 * pipeline it broke cannot be read in step): a pipeline's replies are read as after any other
 * loss. */
int bg__conn_append(bg__conn *c, int argc, const char **argv, const size_t *lens);

/* bg__conn_cmd() and bg__conn_append() of a command built in a bg__args: an argument vector
 * that ran out of memory while it was built is refused here, once for every caller (NULL with
 * "out of memory" in c->err, or BG_ENOMEM as a failed append), and never sent in part. */
redisReply *bg__conn_cmd_args(bg__conn *c, const bg__args *a);
int bg__conn_append_args(bg__conn *c, const bg__args *a);
/* Sends what was appended now, rather than when the next reply is read: the call behind a
 * pending one is then on its way while the caller waits. BG_OK, or BG_EIO (closed). */
int bg__conn_flush(bg__conn *c);

/* Reads the next pipelined reply, as bg__conn_cmd() does. */
redisReply *bg__conn_reply(bg__conn *c);

/* EVALSHA of a script with nkeys keys among the arguments in a (which exclude the sha and the
 * key count); loads the script again on NOSCRIPT (up to three times). Returns the reply or
 * NULL, as bg__conn_cmd_args(). */
redisReply *bg__conn_eval(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a);
/* bg__conn_eval() of a few C strings, for the scripts called with a fixed list of arguments. */
redisReply *bg__conn_eval_strs(bg__conn *c, bg__script_id id, int nkeys, int argc,
                               const char **argv);

/* Appends an EVALSHA to the pipeline; read it back with bg__conn_eval_reply(), which runs the
 * script again (synchronously) when the pipelined call met NOSCRIPT. The replies of commands
 * pipelined behind it are then read ahead and handed out in turn by bg__conn_reply(), at most
 * BG__CONN_AHEAD of them (more: the connection is closed, as after an I/O error). */
int bg__conn_append_eval(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a);
redisReply *bg__conn_eval_reply(bg__conn *c, bg__script_id id, int nkeys, const bg__args *a);

/* The one way a reply that is not the one wanted becomes an error code: NULL (the connection
 * failed) is BG_EIO; an error reply is BG_EACL when an ACL refused the command (NOPERM),
 * BG_EREDIS otherwise; a reply of another type is BG_EPROTO. */
int bg__reply_code(const redisReply *r);

/* Writes "<context>: <why>" into err (of errlen bytes), the context formatted from fmt and why
 * the connection's message (r NULL), the error reply's text or "unexpected reply"; err may be
 * c->err. Returns bg__reply_code(r). */
int bg__reply_error(const bg__conn *c, const redisReply *r, char *err, size_t errlen,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- replicas.c: WAIT after writes (docs/operations.md#replicas-and-failover) ---- */

/* bg_replicas_options, checked: min_ack 0 (off) or more, the timeout in whole ms (never 0,
 * which would make WAIT block for ever). */
typedef struct {
    int min_ack;
    int timeout_ms;
} bg__replicas;

/* Checks o (NULL: off) into r. BG_OK, or BG_EINVAL with a message in err. */
int bg__replicas_init(bg__replicas *r, const bg_replicas_options *o, char *err, size_t errlen);

/* Appends WAIT min_ack timeout_ms to c's pipeline, behind the writes it is to cover (nothing
 * may be appended behind it). BG_OK (also when r is off: nothing appended), or as
 * bg__conn_append(). */
int bg__replicas_append(bg__conn *c, const bg__replicas *r);

/* Reads the reply of the WAIT bg__replicas_append() appended (nothing when r is off: BG_OK).
 * When a script before it was run again after NOSCRIPT (the WAIT's reply was read ahead, and
 * covers none of the rerun's writes), it waits again, now. Returns BG_OK when at least min_ack
 * replicas acknowledged, BG_EREPLICAS when fewer did (how many in *acked), or BG_EIO, BG_EACL,
 * BG_EREDIS (a replica, or a server that refuses WAIT), BG_EPROTO, with a message in err (of
 * errlen bytes) that names the server as what. */
int bg__replicas_reply(bg__conn *c, const bg__replicas *r, long long *acked, const char *what,
                       char *err, size_t errlen);

/* The socket timeout a connection needs when each call may wait up to r's timeout more. */
int bg__replicas_socket_timeout(const bg__replicas *r, int base_ms);

/* ---- notify.c: waiting for key changes without popping ---- */

/* A connection subscribed to __redis__:invalidate, and when it last heard from Redis. */
typedef struct {
    bg__conn conn;
    double last_data_ms, last_ping_ms;
    int hung; /* the last loss was a hang (no answer to PING), not a close */
    /* Called, when set, with each key a report names (the watcher learns new queues so). */
    void (*on_key)(void *ud, const char *key, size_t len);
    void *ud;
} bg__notify;

/* Makes tracker's server report every change to a key under any of the prefixes to redirect_id
 * (with noloop, except changes tracker makes itself). BG_OK, BG_EACL when refused, BG_EIO. */
int bg__notify_track(bg__conn *tracker, long long redirect_id, const char *const *prefixes,
                     int nprefixes, int noloop);

/* Subscribes n->conn (already open) to the reports. BG_OK or BG_EIO. */
int bg__notify_subscribe(bg__notify *n);

/* Waits up to wait_ms for reports, and pings now and then so a hung server is noticed.
 * Returns the number of reports (> 0) when keys changed, 0 when nothing did, -1 when the
 * connection was lost or Redis stopped answering (the connection is closed then). */
int bg__notify_wait(bg__notify *n, int wait_ms);

/* ---- clientlist.c: what bg reads out of CLIENT LIST and INFO server ---- */

/* A worker's main connection, named "NS-worker:<queue>[,<queue>...]" (docs/schema.md#client-names).
 */
typedef struct {
    long long id;       /* its client ID */
    const char *queues; /* "high,low", not terminated, borrowed from the CLIENT LIST reply */
    size_t len;         /* of queues */
    size_t fibers;      /* how many fibers of the census give id in their name */
} bg__census_worker;

/* A fiber's connection, named "NS-worker-fiber:<client ID of its worker>". */
typedef struct {
    long long id;     /* its client ID */
    long long worker; /* the client ID its name gives; 0 without has_worker */
    int has_worker;   /* 0 when the name does not end in a whole number */
} bg__census_fiber;

/* The worker and fiber connections of one namespace in one CLIENT LIST reply, each array sorted
 * by client ID. */
typedef struct {
    bg__census_worker *workers;
    size_t nworkers;
    bg__census_fiber *fibers;
    size_t nfibers;
} bg__census;

/* Reads the CLIENT LIST reply list (len bytes; NULL when len is 0) into out, keeping the
 * connections of the valid namespace ns: the lines whose first field is id=<whole number> and
 * whose first name= field starts with "NS-worker:" and names at least one more byte (a
 * worker), or starts with "NS-worker-fiber:" (a fiber, whatever follows). Returns BG_OK,
 * BG_ENOMEM or BG_EINVAL (out is empty then). The workers' queues point into list, which must
 * outlive out; free out with bg__census_free(). */
int bg__client_census(const char *list, size_t len, const char *ns, bg__census *out);
/* Frees what the census holds and empties it; NULL is a no-op. */
void bg__census_free(bg__census *c);
/* 1 when id is the client ID of one of c's fiber connections, 0 otherwise. */
int bg__census_has_fiber(const bg__census *c, long long id);

/* Copies the value of the run_id: line of an INFO server reply (info may be NULL) into out, cut
 * to len - 1 bytes; out is "" when there is none. len must be at least 1. */
void bg__parse_run_id(const char *info, char *out, size_t len);

/* ---- finish.c: outcomes, and the arguments of finish.lua ---- */

#define BG__QUEUE_BUF 129 /* a queue name (1 to 128 bytes, docs/schema.md#formats) and its NUL */
#define BG__MSG_MAX 1024  /* an attempt's msg, at most, in bytes */
#define BG__ERR_BUF 128   /* an attempt's err, and its NUL */
#define BG__TIME_BUF 32   /* an attempt's time: ms with three decimals, and its NUL */
#define BG__RND_SPAN 10   /* a retry's backoff has a random part of rnd 0 to 9 (finish.lua) */

/* What finish.lua does with an attempt (see its header); the names it takes are in finish.c. */
typedef enum {
    BG__OUTCOME_OK,       /* completed */
    BG__OUTCOME_FAIL,     /* failed, retried while att <= rty, else dead */
    BG__OUTCOME_DEAD,     /* failed, never retried (the job cannot run) */
    BG__OUTCOME_SHUTDOWN, /* failed, the job back at the head of ready, att down by one */
    BG__OUTCOME_UNCLAIM,  /* prefetched, never started: attempt deleted, the job back to ready */
    BG__OUTCOME_VANISH    /* (watcher) its worker vanished: no fin, no time, itr up by one */
} bg__outcome_kind;

/* One attempt's outcome, from the handler that ran it (or the watcher that judged it) to the
 * record finish.lua takes: the one struct every caller fills. Empty strings are sent as "". */
typedef struct {
    char attempt[BG_UUID_LEN + 1];
    char queue[BG__QUEUE_BUF];
    bg__outcome_kind kind;
    char time[BG__TIME_BUF]; /* ms with three decimals, "" for none */
    char err[BG__ERR_BUF];
    char msg[BG__MSG_MAX + 1];
    int rnd;     /* 0 to BG__RND_SPAN - 1, the random part of the backoff */
    int max_itr; /* for BG__OUTCOME_VANISH */
    /* Act only while the attempt still has these (NULL: no guard), guard_wrk_len and
     * guard_rid_len bytes long (an owner another program wrote may hold NULs, and the guard
     * must be all of it; 0 means up to the first NUL). Borrowed until the record is built. */
    const char *guard_wrk, *guard_rid;
    size_t guard_wrk_len, guard_rid_len;
    int refused; /* a worker's: finish.lua refused it (a key of the wrong type), sent again */
} bg__outcome;

/* The name finish.lua takes for kind ("ok", "fail", ...). */
const char *bg__outcome_name(bg__outcome_kind kind);
/* Sets o's kind, err and msg (msg cut to BG__MSG_MAX bytes on a UTF-8 boundary; NULL is ""). */
void bg__outcome_set(bg__outcome *o, bg__outcome_kind kind, const char *err, const char *msg);

/* Starts finish.lua's arguments: the key prefixes of namespace ns, in the script's order, and
 * no short records; bg__finish_record() appends the records. */
void bg__finish_args(bg__args *a, const char *ns);
/* Whether o can go as a short record ('ok', no guard): 2 strings to finish.lua, not 10. */
int bg__finish_is_short(const bg__outcome *o);
/* finish.lua's whole arguments for o[0..n): the prefixes, the leading outcomes that can go
 * short as short records, grouped by queue, and the rest as records of 10. The reply's order is
 * o's: put the short ones first for the most to go short. */
void bg__finish_batch(bg__args *a, const char *ns, const bg__outcome *o, int n);
/* Appends o as one record. */
void bg__finish_record(bg__args *a, const bg__outcome *o);

/* What finish.lua did with a record (the elements of its reply). */
typedef enum {
    BG__FINISH_ODD = -1,     /* an element of no known shape */
    BG__FINISH_SKIPPED = 0,  /* no longer processing (or re-owned); with a key: not an attempt,
                                dropped from processing */
    BG__FINISH_RECORDED = 1, /* recorded */
    BG__FINISH_REFUSED = 2   /* a key it writes is unsound: nothing touched, send it again */
} bg__finish_code;

/* Reads element e of finish.lua's reply: returns its code, and sets *key and *what to the key
 * it names and what is wrong with it ("" for a bare code). */
bg__finish_code bg__finish_result(const redisReply *e, const char **key, const char **what);

/* ---- util.c ---- */

/* Milliseconds on the monotonic clock, with fractions. */
double bg__mono_ms(void);
/* Milliseconds since the epoch on this host's clock (for logs only; bg's records use the Redis
 * server's clock). */
int64_t bg__wall_ms(void);
/* Sleeps ms milliseconds (signals may cut it short). */
void bg__sleep_ms(double ms);
/* Copies at most max bytes of s into out (of at least max+1 bytes), cut on a UTF-8 boundary
 * so no character is split. Returns the copied length. */
size_t bg__utf8_cut(const char *s, size_t len, size_t max, char *out);
/* Writes n new random lowercase UUIDs (version 4) into out, with one getrandom() for up to 32. */
void bg__uuid_fill(bg_uuid *out, size_t n);
/* Starts a thread running fn(arg): detached when detached is set, with a stack of stack bytes
 * when it is not 0. Returns 0, or an errno value (nothing started). */
int bg__thread_start(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack, int detached);
/* Parses a whole decimal integer; returns 0 and sets *out on success, -1 otherwise. */
int bg__parse_ll(const char *s, size_t len, long long *out);
char *bg__strdup(const char *s);
char *bg__strndup(const char *s, size_t n);
/* Empties a constructor's errbuf (docs/api.md#errors), and returns the length to write it
 * with: 0 for a NULL errbuf, so bg__fmt() writes nothing there. */
size_t bg__errbuf_init(char *errbuf, size_t errlen);
/* snprintf that never overflows and always terminates (len 0: writes nothing). */
void bg__fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- log.c ---- */

/* Formats and hands a line to the logger, when its level is enabled, with the fields of the job
 * it is about (NULL for an event about no job) for sinks that write them apart. */
void bg__log_job(const bg_logger *l, bg_log_level level, const char *role,
                 const bg_log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define bg__log(l, level, role, ...) bg__log_job(l, level, role, NULL, __VA_ARGS__)
int bg__log_enabled(const bg_logger *l, bg_log_level level);
/* Tells ev's program of an event, with a text formatted from fmt (NULL for ""). */
void bg__event(const bg_events *ev, bg_event event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- ratelimit.c: reporting a repeated finding at most once an interval ---- */

#define BG__RATELIMIT_SLOTS 64
#define BG__RATELIMIT_MS 60000.0 /* a broken key or bad entry is logged once a minute, at most */

typedef struct {
    uint64_t hash;
    double last_ms;
    unsigned long suppressed;
} bg__ratelimit_slot;

typedef struct {
    pthread_mutex_t mu;
    double interval_ms;
    bg__ratelimit_slot slots[BG__RATELIMIT_SLOTS];
} bg__ratelimit;

void bg__ratelimit_init(bg__ratelimit *rl, double interval_ms);
void bg__ratelimit_destroy(bg__ratelimit *rl);
/* Returns 1 when a finding about key (len bytes) should be logged now: the first time it is
 * met, and again once interval_ms has passed since it was last logged; else 0. On 1,
 * *suppressed (when not NULL) is how many times it was met unlogged since. Thread-safe. */
int bg__ratelimit_allow(bg__ratelimit *rl, const char *key, size_t len, unsigned long *suppressed);

/* ---- client.c: the producer handle ---- */

struct bg_client {
    char *ns;
    char *url_masked;
    char *role;
    bg__url url;
    int timeout_ms;
    bg_logger log;
    bg__replicas replicas;
    bg__conn conn;
    char err[BG__ERRLEN];
};

/* Makes sure c is connected (reconnecting once after a lost connection). */
int bg__client_ensure(bg_client *c);
/* Records an error message in c; returns code. */
int bg__client_fail(bg_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* bg__reply_error() on c: "<what> on <server>: <why>" recorded in c; returns the code. A
 * script's refusal ({'badkey', key, what}, docs/claim.md) is BG_EREDIS, "...: <key>: <what>;
 * nothing was written". */
int bg__client_reply_fail(bg_client *c, const redisReply *r, const char *what);
/* The start of a call about one job: a job was given, and c is connected. BG_OK or an error
 * with a message. */
int bg__client_start_job(bg_client *c, const char *job);
/* Checks every name of a queue list a caller gave (and that there is a list when n is not 0);
 * BG_OK or BG_EINVAL with a message. */
int bg__client_check_queues(bg_client *c, const char *const *queues, size_t n);

/* ---- queues.c: finding the namespace's queues ---- */

/* The valid queue names of an SMEMBERS reply of NS:queues (an array), sorted by byte value,
 * into a new array of n copies (free with bg__free_names()); a name another program put there
 * that bg could not use is left out. Returns BG_OK or BG_ENOMEM. */
int bg__queue_names(const redisReply *members, char ***names, size_t *n);
/* Reads NS:queues on c into names, as bg__queue_names() does. Returns BG_OK or an error with a
 * message on c (what names the command in messages). */
int bg__known_queues(bg_client *c, const char *what, char ***names, size_t *n);
void bg__free_names(char **names, size_t n);

/* Copies into q (of BG_QUEUE_MAX + 1 bytes) the queue a per-queue key of namespace ns names
 * ("NS:ready:<queue>", key of len bytes, any bytes). Returns 1 when it names a valid queue. */
int bg__queue_of_key(const char *ns, const char *key, size_t len, char *q);

/* Called with each queue found; returns 1 when the queue is new to the caller (it is then
 * added to NS:queues), 0 otherwise. */
typedef int (*bg__queue_fn)(void *ud, const char *queue);

/* A SCAN of the namespace's keys for the queues only foreign producers wrote, done a few steps
 * at a time. Zero it to start; next_ms 0 starts a new SCAN at the next step. */
typedef struct {
    char cursor[32]; /* of the SCAN under way, "" when none */
    double next_ms;  /* when a new SCAN may start (monotonic clock) */
    double pass_ms;  /* the time the SCAN calls of the one under way took so far */
} bg__queue_scan;

/* Goes on with the SCAN (a new one at most once a minute, and no sooner than 100 times the time
 * the last one's calls took; a bounded number of SCAN calls per call; a refused or failed SCAN
 * is tried again a minute later), calling fn for the queue of each per-queue key met. */
void bg__queue_scan_step(bg__conn *c, const char *ns, bg__queue_scan *s, bg__queue_fn fn, void *ud);
/* Calls fn for the queue key (len bytes) names, when it is a per-queue key: a tracking report
 * named it. */
void bg__queue_note_key(bg__conn *c, const char *ns, const char *key, size_t len, bg__queue_fn fn,
                        void *ud);

#endif
