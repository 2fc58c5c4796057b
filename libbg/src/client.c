/* client.c: the producer handle: a URL, a namespace and one lazily (re)opened connection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

void bg_client_options_init(bg_client_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 5000;
    opts->log.level = BG_LOG_INFO;
}

int bg__client_fail(bg_client *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return code;
}

int bg__client_reply_fail(bg_client *c, const redisReply *r, const char *what) {
    const char *key, *why;
    if (bg__script_refused(r, &key, &why))
        return bg__client_fail(c, BG_EREDIS, "%s on %s: %s: %s; nothing was written", what,
                               c->url_masked, key, why);
    return bg__reply_error(&c->conn, r, c->err, sizeof c->err, "%s on %s", what, c->url_masked);
}

int bg__client_start_job(bg_client *c, const char *job) {
    if (!job || !*job)
        return bg__client_fail(c, BG_EINVAL, "no job given");
    return bg__client_ensure(c);
}

int bg__client_check_queues(bg_client *c, const char *const *queues, size_t n) {
    if (n && !queues)
        return bg__client_fail(c, BG_EINVAL, "%zu queues given, but no queue list", n);
    for (size_t i = 0; i < n; i++)
        if (!bg_queue_valid(queues[i]))
            return bg__client_fail(c, BG_EINVAL,
                                   "invalid queue '%s': 1 to 128 of A-Z a-z 0-9 _ . -",
                                   queues[i] ? queues[i] : "");
    return BG_OK;
}

/* Fills a new client from opts; returns BG_OK or an error with a message in c->err. */
static int client_init(bg_client *c, const bg_client_options *opts) {
    char masked[512];
    const char *url = opts->url ? opts->url : BG_DEFAULT_URL;
    c->ns = bg__strdup(opts->ns ? opts->ns : BG_DEFAULT_NAMESPACE);
    c->role = bg__strdup(opts->role ? opts->role : "manager");
    c->url_masked = bg__strdup(bg_url_mask(url, masked, sizeof masked));
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    c->log = opts->log;
    c->conn.id = -1;
    if (!c->ns || !c->role || !c->url_masked)
        return bg__client_fail(c, BG_ENOMEM, "out of memory");
    if (!bg_namespace_valid(c->ns))
        return bg__client_fail(c, BG_EINVAL, "invalid namespace '%s': 1 to 64 of A-Z a-z 0-9 _ . -",
                               c->ns);
    if (bg__replicas_init(&c->replicas, &opts->replicas, c->err, sizeof c->err) != BG_OK)
        return BG_EINVAL;
    return bg__url_parse_tls(url, &opts->tls, &c->url, c->err, sizeof c->err);
}

int bg_client_new(bg_client **out, const bg_client_options *opts, char *errbuf, size_t errlen) {
    bg_client_options defaults;
    errlen = bg__errbuf_init(errbuf, errlen);
    if (!out)
        return BG_EINVAL;
    *out = NULL;
    bg_client *c = calloc(1, sizeof *c);
    if (!c) {
        bg__fmt(errbuf, errlen, "out of memory");
        return BG_ENOMEM;
    }
    bg_client_options_init(&defaults);
    int rc = client_init(c, opts ? opts : &defaults);
    if (rc != BG_OK) {
        /* A constructor that fails returns no handle: its message goes to the caller. */
        bg__fmt(errbuf, errlen, "%s", c->err);
        bg_client_free(c);
        return rc;
    }
    *out = c;
    return BG_OK;
}

void bg_client_free(bg_client *c) {
    if (!c)
        return;
    bg__conn_close(&c->conn);
    bg__url_clear(&c->url);
    free(c->ns);
    free(c->role);
    free(c->url_masked);
    free(c);
}

int bg__client_ensure(bg_client *c) {
    char name[128];
    if (bg__conn_ok(&c->conn))
        return BG_OK;
    bg__client_name(name, sizeof name, c->ns, c->role);
    int rc = bg__conn_open(&c->conn, &c->url, c->url_masked, name, c->timeout_ms);
    if (rc != BG_OK && c->conn.client_refused && !c->url.hello) {
        /* A server that forbids or renames CLIENT (docs/operations.md#liveness): a client's
         * name is only for CLIENT LIST, and HELLO gives it without a CLIENT command. */
        c->url.hello = 1;
        rc = bg__conn_open(&c->conn, &c->url, c->url_masked, name, c->timeout_ms);
    }
    if (rc != BG_OK)
        bg__client_fail(c, rc, "%s", c->conn.err);
    else /* a call's WAIT may take the replicas' timeout on top of the call's own */
        bg__conn_set_timeout(&c->conn, bg__replicas_socket_timeout(&c->replicas, c->timeout_ms));
    return rc;
}

int bg_client_connect(bg_client *c) {
    return bg__client_ensure(c);
}

const char *bg_client_errmsg(const bg_client *c) {
    return c ? c->err : "no client";
}

const char *bg_client_url_masked(const bg_client *c) {
    return c->url_masked;
}

const char *bg_client_namespace(const bg_client *c) {
    return c->ns;
}
