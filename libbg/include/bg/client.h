/* bg/client.h: a connection to Redis in one namespace, the handle every producer-side call
 * (enqueue, dequeue, retry, status, the admin calls) takes.
 *
 * Errors follow the convention of bg/error.h: a call on a client returns BG_OK or a negative
 * bg_errno and, on an error, leaves a message readable with bg_client_errmsg(); the
 * constructor, which has no handle yet, writes its message into the caller's errbuf.
 *
 * Threads: a bg_client is not thread-safe. It holds one connection and one error message, so
 * it must be used by one thread at a time (a client may move between threads when the caller
 * orders the calls, e.g. with a mutex); give each thread its own client to run calls at once.
 * Distinct clients share nothing. */
#ifndef BG_CLIENT_H
#define BG_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "bg/export.h"

/* Log levels, in the order of the letters D, I, W, E of the log format. */
typedef enum { BG_LOG_DEBUG = 0, BG_LOG_INFO = 1, BG_LOG_WARN = 2, BG_LOG_ERROR = 3 } bg_log_level;

/* A log sink. The library never prints: it calls this, from any of its threads at once, with a
 * role such as "worker" and a message without a trailing newline. Both strings are borrowed
 * for the duration of the call. */
typedef void (*bg_log_fn)(void *userdata, bg_log_level level, const char *role, const char *msg);

/* What an event about one job carries beside its message, for sinks that write fields of their
 * own (JSON lines): each string NULL when the event does not know it, ms negative. Borrowed for
 * the duration of the call. */
typedef struct {
    const char *job;     /* the job's UUID */
    const char *attempt; /* the attempt's UUID */
    const char *cls;     /* the job's class */
    const char *queue;   /* the queue it was taken from */
    const char *err;     /* the error class of a failed attempt */
    double ms;           /* how long the attempt ran, in ms; negative for its start */
} bg_log_fields;

/* A log sink that also gets an event's fields: fields is NULL for an event about no job. Called
 * as bg_log_fn is. */
typedef void (*bg_log_event_fn)(void *userdata, bg_log_level level, const char *role,
                                const char *msg, const bg_log_fields *fields);

/* Where log lines go and from which level on. The library calls event when it is set, else fn;
 * both NULL discards everything. */
typedef struct {
    bg_log_fn fn;
    void *userdata;
    bg_log_level level;
    bg_log_event_fn event;
} bg_logger;

/* What a worker or watcher loop tells its program about its life, for a service manager such as
 * systemd (sd_notify: READY=1, STATUS=, WATCHDOG=1, STOPPING=1). */
typedef enum {
    BG_EVENT_READY = 0,   /* Redis answered and the scripts are loaded: it serves from now on
                             (once a run) */
    BG_EVENT_STATUS = 1,  /* its one-line state changed; text says it ("serving high,low with 10
                             fibers", "no connection to Redis: ...") */
    BG_EVENT_HEALTHY = 2, /* Redis answered just now: sent about once a second while all is well,
                             never while Redis cannot be reached or hangs */
    BG_EVENT_STOPPING = 3 /* it began to shut down (once a run) */
} bg_event;

/* Called on the loop's own thread (the main thread of a worker); text is borrowed for the call,
 * "" for READY, HEALTHY and STOPPING. Keep it quick: the loop waits for it. */
typedef void (*bg_event_fn)(void *userdata, bg_event event, const char *text);

/* Where events go; a NULL fn sends none. */
typedef struct {
    bg_event_fn fn;
    void *userdata;
} bg_events;

/* The default Redis URL when none is given (docs/schema.md#formats). */
#define BG_DEFAULT_URL "redis://127.0.0.1:6379/0"
/* The default namespace. */
#define BG_DEFAULT_NAMESPACE "bg"
/* The longest queue name, in bytes. */
#define BG_QUEUE_MAX 128

/* TLS for a rediss:// URL (docs/operations.md#tls), shared by the client, worker and watcher
 * options. All NULL (what the options' init functions set) means: verify the server's
 * certificate against the system's CA store and its name against the URL's host, and present
 * no certificate. Any field set with a URL that is not rediss:// is refused (BG_EINVAL), as is
 * a file that cannot be read or a certificate without its key. */
typedef struct {
    const char *ca_cert;     /* PEM file of the CAs to trust instead of the system's */
    const char *cert;        /* PEM client certificate (chain), for mutual TLS; needs key */
    const char *key;         /* PEM private key of cert */
    const char *server_name; /* the name to verify and send (SNI); NULL: the URL's host */
} bg_tls_options;

/* How a watcher tells that the worker running an attempt is gone (docs/operations.md#liveness).
 * CLIENTID: the fiber connection whose client ID the attempt records (wrk) is no longer in
 * CLIENT LIST. LEASE: the lease key the attempt names (lse) expired; the worker keeps it fresh,
 * and neither program sends a CLIENT command, for servers that forbid them. */
typedef enum { BG_LIVENESS_CLIENTID = 0, BG_LIVENESS_LEASE = 1 } bg_liveness;

/* A worker's lease TTL by default, and the bounds it may take (ms). */
#define BG_LEASE_DEFAULT_MS 5000.0
#define BG_LEASE_MIN_MS 100.0
#define BG_LEASE_MAX_MS 3600000.0

/* Waiting for replicas (docs/operations.md#replicas-and-failover), shared by the client, worker
 * and watcher options. Redis replicates asynchronously: a write the primary acknowledged can be
 * lost when a replica that never got it is promoted. With min_ack above 0, every write bg makes
 * is followed by WAIT min_ack timeout_ms, pipelined with it, and fewer acknowledgements than
 * min_ack within timeout_ms count as a failure (BG_EREPLICAS) that loses nothing: the write
 * stands on the primary, and what depends on it is held or sent again (each call says how). */
typedef struct {
    int min_ack;       /* replicas that must acknowledge each write, 0 to BG_REPLICAS_MAX; 0
                          (the default) waits for none */
    double timeout_ms; /* how long to wait for them, above 0 and at most BG_REPLICAS_TIMEOUT_MAX
                          ms (rounded up to whole ms); 0 means the default, 1000 */
} bg_replicas_options;

#define BG_REPLICAS_MAX 100
#define BG_REPLICAS_TIMEOUT_DEFAULT 1000.0
#define BG_REPLICAS_TIMEOUT_MAX 60000.0

/* Options for bg_client_new(). Initialise with bg_client_options_init(), then set fields.
 * Strings are copied by bg_client_new(). Durations are in milliseconds. */
typedef struct {
    const char *url;    /* Redis URL (docs/schema.md#formats); NULL means BG_DEFAULT_URL. */
    const char *ns;     /* namespace; NULL means BG_DEFAULT_NAMESPACE. */
    const char *role;   /* client name after "NS-": "manager" (the default) or "cli". */
    int timeout_ms;     /* connect and socket timeout; default 5000. */
    bg_logger log;      /* optional log sink. */
    bg_tls_options tls; /* for a rediss:// URL */
    /* Each enqueue waits for replicas: bg_enqueue() and bg_enqueue_bulk() return
       BG_EREPLICAS when too few acknowledged (the jobs are on the primary, their IDs given). */
    bg_replicas_options replicas;
} bg_client_options;

typedef struct bg_client bg_client;

/* Fills opts with the defaults. Never fails. */
BG_EXPORT void bg_client_options_init(bg_client_options *opts);

/* Creates a client and checks its URL and namespace; it does not connect yet (the first call
 * that needs Redis does, and reconnects after a lost connection). opts may be NULL for the
 * defaults. Returns BG_OK with *out set (the caller owns it: free it with bg_client_free()),
 * or BG_EURL, BG_EINVAL (a bad namespace) or BG_ENOMEM with *out NULL and a message in errbuf
 * (of errlen bytes; errbuf may be NULL), e.g. naming the URL with its password masked, or a TLS
 * option or file that cannot be used. */
BG_EXPORT int bg_client_new(bg_client **out, const bg_client_options *opts, char *errbuf,
                            size_t errlen);

/* Connects now (useful to report a bad URL or a refused AUTH early); does nothing when the
 * client is connected. Returns BG_OK, or BG_ECONNECT, BG_EREDIS (AUTH or SELECT refused),
 * BG_EACL or BG_ENOMEM with a message in bg_client_errmsg(). */
BG_EXPORT int bg_client_connect(bg_client *c);

/* Frees the client and closes its connection. NULL is a no-op. */
BG_EXPORT void bg_client_free(bg_client *c);

/* The message of the last error on this client ("" before any); borrowed until the next call
 * on c. Never NULL. */
BG_EXPORT const char *bg_client_errmsg(const bg_client *c);

/* The URL with its password masked, e.g. "redis://:***@host:6379/0"; borrowed from c. */
BG_EXPORT const char *bg_client_url_masked(const bg_client *c);

/* The namespace; borrowed from c. */
BG_EXPORT const char *bg_client_namespace(const bg_client *c);

/* Checks a namespace (1 to 64 of A-Z a-z 0-9 _ . -). Returns 1 when valid, 0 otherwise (NULL
 * included). Thread-safe, as every function below that takes no handle. */
BG_EXPORT int bg_namespace_valid(const char *ns);

/* Checks a queue name (1 to BG_QUEUE_MAX of A-Z a-z 0-9 _ . -). Returns 1 when valid, 0
 * otherwise (NULL included). */
BG_EXPORT int bg_queue_valid(const char *queue);

/* Checks a Redis URL of a form docs/schema.md#formats allows. Returns BG_OK or BG_EURL,
 * writing a message that names the URL with its password masked into errbuf (of errlen bytes)
 * when errbuf is not NULL. */
BG_EXPORT int bg_url_check(const char *url, char *errbuf, size_t errlen);

/* Writes url with its password replaced by "***" into buf (of len bytes, cut to fit). Returns
 * buf. */
BG_EXPORT char *bg_url_mask(const char *url, char *buf, size_t len);

#endif
