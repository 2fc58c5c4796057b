/* bg_common.h: what bg-worker, bg-watcher and bg-cli share but libbg does not export: option
 * parsing (durations, times, numbers, queue lists), the defaults taken from the environment,
 * and the log sink that writes the lines of docs/operations.md#logs to standard error. */
#ifndef BG_COMMON_H
#define BG_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bg/bg.h"

/* ---- opts.c ---- */

/* Parses a duration of docs/schema.md#formats: a number, decimals allowed, with an optional unit
 * ms, s (the default), m, h or d ("30", "1.5s", "250ms", "5m", "2h", "1d") into milliseconds.
 * Negative, empty, NaN, infinite or trailing junk: returns -1. */
int bgc_parse_duration_ms(const char *s, double *ms);

/* Parses a time of docs/schema.md#formats: ms since the epoch, or ISO 8601
 * YYYY-MM-DDTHH:MM:SS[.fff] with Z or ±HH:MM, into ms since the epoch. Returns 0 or -1. */
int bgc_parse_time_ms(const char *s, int64_t *ms);

/* Parses a whole decimal number in [min, max] (strtoll with end and range checks). 0 or -1. */
int bgc_parse_int(const char *s, long long min, long long max, long long *out);
/* --liveness and --lease, of bg-worker and bg-watcher (docs/operations.md#liveness). */
#define BGC_OPT_LIVENESS 242
#define BGC_OPT_LEASE 243
/* Parses "clientid" or "lease" into *out. 0, or -1 for anything else. */
int bgc_parse_liveness(const char *s, bg_liveness *out);

/* Splits a comma-separated list of queue names and appends each to *list (a growable array of
 * *n copies). Returns 0, or -1 when a name is invalid (docs/schema.md#formats), writing the bad
 * name into err. */
int bgc_parse_queues(const char *s, char ***list, size_t *n, char *err, size_t errlen);
void bgc_free_list(char **list, size_t n);

/* The Redis URL to use when no -r was given: $BG_REDIS_URL, else $REDIS_URL, else the default. */
const char *bgc_default_url(void);
/* The namespace to use when no -n was given: $BG_NAMESPACE, else "bg". */
const char *bgc_default_ns(void);

/* The TLS options every program takes (docs/operations.md#tls): --tls-ca-cert FILE,
 * --tls-cert FILE, --tls-key FILE and --tls-server-name NAME, each defaulting to its
 * environment variable BG_TLS_CA_CERT, BG_TLS_CERT, BG_TLS_KEY, BG_TLS_SERVER_NAME. from[i]
 * names where option i came from ("--tls-cert" or "BG_TLS_CERT"), for messages. */
typedef struct {
    bg_tls_options tls;
    const char *from[4];
} bgc_tls;

#define BGC_OPT_TLS_CA_CERT 250
#define BGC_OPT_TLS_CERT 251
#define BGC_OPT_TLS_KEY 252
#define BGC_OPT_TLS_SERVER_NAME 253
#define BGC_TLS_LONGOPTS                                                                           \
    {"tls-ca-cert", required_argument, NULL, BGC_OPT_TLS_CA_CERT},                                 \
        {"tls-cert", required_argument, NULL, BGC_OPT_TLS_CERT},                                   \
        {"tls-key", required_argument, NULL, BGC_OPT_TLS_KEY}, {                                   \
        "tls-server-name", required_argument, NULL, BGC_OPT_TLS_SERVER_NAME                        \
    }

/* Fills t from the environment (an empty variable counts as unset). */
void bgc_tls_init(bgc_tls *t);
/* Takes the value of one of BGC_TLS_LONGOPTS (ch its code): returns 1, or 0 for another ch. */
int bgc_tls_option(bgc_tls *t, int ch, const char *arg);
/* Checks t against url before any connection: a TLS option with a URL that is not rediss://,
 * an empty value, a file that cannot be opened for reading. Returns 0, or -1 with a message
 * naming the option (or variable) in err. */
int bgc_tls_check(const bgc_tls *t, const char *url, char *err, size_t errlen);
/* Prints the --tls-* lines of a program's -h, their text from column col, as its other lines. */
void bgc_tls_usage(FILE *f, int col);

/* ---- replicas.c ---- */

/* --min-replicas-ack N and --min-replicas-timeout DURATION (docs/operations.md#replicas-and-
 * failover), taken by bg-worker, bg-watcher and bg-cli enqueue, each defaulting to its
 * environment variable BG_MIN_REPLICAS_ACK, BG_MIN_REPLICAS_TIMEOUT. The values are kept as
 * given and parsed by bgc_replicas_check(), so a bad one is reported naming where it came from
 * (the option or the variable). */
typedef struct {
    bg_replicas_options opts; /* filled by bgc_replicas_check() */
    const char *value[2];     /* ack, timeout: as given, NULL when not */
    const char *from[2];      /* "--min-replicas-ack" or "BG_MIN_REPLICAS_ACK", ... */
} bgc_replicas;

#define BGC_OPT_MIN_REPLICAS_ACK 240
#define BGC_OPT_MIN_REPLICAS_TIMEOUT 241
#define BGC_REPLICAS_LONGOPTS                                                                      \
    {"min-replicas-ack", required_argument, NULL, BGC_OPT_MIN_REPLICAS_ACK}, {                     \
        "min-replicas-timeout", required_argument, NULL, BGC_OPT_MIN_REPLICAS_TIMEOUT              \
    }

/* Fills r from the environment (an empty variable counts as unset). */
void bgc_replicas_init(bgc_replicas *r);
/* Takes the value of one of BGC_REPLICAS_LONGOPTS (ch its code): returns 1, or 0 for another
 * ch. */
int bgc_replicas_option(bgc_replicas *r, int ch, const char *arg);
/* Parses the values into r->opts: the ack a whole number from 0 (off) to BG_REPLICAS_MAX, the
 * timeout a duration above 0 and at most BG_REPLICAS_TIMEOUT_MAX ms. Returns 0, or -1 with a
 * message naming the option (or variable) and the value in err. */
int bgc_replicas_check(bgc_replicas *r, char *err, size_t errlen);

/* ---- log.c ---- */

typedef struct {
    int json;           /* --log-format json */
    bg_log_level level; /* BG_LOG_DEBUG with -v */
} bgc_log_config;

/* ---- prog.c ---- */

/* Prints "PROG: <message> (see PROG -h)" on stderr and exits 2: a usage error. */
void bgc_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));

/* The options bg-worker and bg-watcher take alike: -q, -r, -n, -v, --log-format, -V, -h, the
 * TLS options and --min-replicas-*.
 * Each program lists BGC_DAEMON_LONGOPTS among its long options and BGC_DAEMON_SHORTOPTS in
 * its option string, handles its own options, and hands every other getopt_long result to
 * bgc_daemon_option(). */
typedef struct {
    const char *prog;       /* "bg-worker", for messages */
    void (*usage)(FILE *f); /* prints the program's -h text */
    const char *url, *ns;   /* -r and -n, else the environment's defaults */
    char **queues;          /* -q, every one given, in order */
    size_t nqueues;
    bgc_log_config log;
    bgc_tls tls;           /* --tls-*, else the environment's */
    bgc_replicas replicas; /* --min-replicas-*, else the environment's */
} bgc_daemon;

#define BGC_OPT_LOG_FORMAT 255
#define BGC_DAEMON_SHORTOPTS "q:r:n:vVh"
#define BGC_DAEMON_LONGOPTS                                                                        \
    {"queue", required_argument, NULL, 'q'}, {"redis", required_argument, NULL, 'r'},              \
        {"namespace", required_argument, NULL, 'n'}, {"verbose", no_argument, NULL, 'v'},          \
        {"log-format", required_argument, NULL, BGC_OPT_LOG_FORMAT},                               \
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, BGC_TLS_LONGOPTS,   \
        BGC_REPLICAS_LONGOPTS

void bgc_daemon_init(bgc_daemon *d, const char *prog, void (*usage)(FILE *f));
/* Takes one of the shared options, or reports what getopt_long refused; exits 0 after -V and
 * -h, 2 on a usage error. */
void bgc_daemon_option(bgc_daemon *d, int ch, const char *arg, char **argv);
/* After the options: no operand left, a URL that parses, a valid namespace, TLS options that
 * fit the URL, replica options that parse (into d->replicas.opts); else exits 2. */
void bgc_daemon_check(bgc_daemon *d, int argc, char **argv);
void bgc_daemon_free(bgc_daemon *d);

/* Installs fn for sig with SA_RESTART. fn must only set a flag (or call an async-signal-safe
 * bg_*_signal/stop function). */
void bgc_on_signal(int sig, void (*fn)(int));

/* A bg_log_fn writing one line an event to stderr: text
 * "2026-11-22T10:00:00.123Z I worker: message" or one JSON object. userdata is a
 * bgc_log_config. Safe from several threads at once. */
void bgc_log_sink(void *userdata, bg_log_level level, const char *role, const char *msg);
/* The same with an event's job fields, written as fields of their own in JSON lines (job,
 * attempt, cls, que, err, ms); text lines carry them in the message. */
void bgc_log_event(void *userdata, bg_log_level level, const char *role, const char *msg,
                   const bg_log_fields *fields);

/* Builds a bg_logger that uses bgc_log_event (and bgc_log_sink) with cfg. */
bg_logger bgc_logger(bgc_log_config *cfg);

/* Parses "text" or "json" into cfg->json. 0 or -1. */
int bgc_parse_log_format(const char *s, bgc_log_config *cfg);

/* ---- sdnotify.c ---- */

/* Sends state (one or more "KEY=value" lines, e.g. "READY=1" or "STATUS=connected") in one
 * datagram to the socket systemd names in $NOTIFY_SOCKET: an absolute path, or "@name" in the
 * abstract namespace. Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset or empty (not run by
 * systemd with Type=notify: nothing to do), -1 on an unusable address or a failed send (errno
 * set). Needs no libsystemd; never blocks for long (a full socket buffer fails the send). */
int bgc_sd_notify(const char *state);

/* How often, in microseconds, the process should send "WATCHDOG=1": half of $WATCHDOG_USEC
 * (systemd's WatchdogSec=), so one late ping is not yet a restart; 0 when no watchdog is
 * wanted (the variable is unset or not a positive number, or $WATCHDOG_PID names another
 * process). */
uint64_t bgc_sd_watchdog_interval_us(void);

/* ---- service.c ---- */

/* What the event sink below keeps between events. */
typedef struct {
    uint64_t watchdog_us;    /* bgc_sd_watchdog_interval_us(), read once */
    double last_watchdog_us; /* when WATCHDOG=1 was last sent (monotonic) */
} bgc_service;

/* A bg_events that tells systemd (sd_notify) of a worker's or watcher's life: READY=1,
 * STATUS=<text>, WATCHDOG=1 on each healthy tick (when systemd asks for a watchdog; at most
 * twice per WatchdogSec), STOPPING=1. s must outlive the loop. */
bg_events bgc_service_events(bgc_service *s);

#endif
