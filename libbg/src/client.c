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
    return bg__reply_error(&c->conn, r, c->err, sizeof c->err, "%s on %s", what, c->url_masked);
}

int bg__client_check_queues(bg_client *c, const char *const *queues, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!bg_queue_valid(queues[i]))
            return bg__client_fail(c, BG_EINVAL,
                                   "invalid queue '%s': 1 to 128 of A-Z a-z 0-9 _ . -",
                                   queues[i] ? queues[i] : "");
    return BG_OK;
}

int bg_client_new(bg_client **out, const bg_client_options *opts) {
    bg_client_options defaults;
    char masked[512];
    if (!opts) {
        bg_client_options_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    bg_client *c = calloc(1, sizeof *c);
    if (!c)
        return BG_ENOMEM;
    const char *url = opts->url ? opts->url : BG_DEFAULT_URL;
    c->ns = bg__strdup(opts->ns ? opts->ns : BG_DEFAULT_NAMESPACE);
    c->role = bg__strdup(opts->role ? opts->role : "manager");
    c->url_masked = bg__strdup(bg_url_mask(url, masked, sizeof masked));
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    c->log = opts->log;
    c->conn.id = -1;
    if (!c->ns || !c->role || !c->url_masked) {
        bg_client_free(c);
        return BG_ENOMEM;
    }
    *out = c;
    if (!bg_namespace_valid(c->ns))
        return bg__client_fail(c, BG_EINVAL, "invalid namespace '%s': 1 to 64 of A-Z a-z 0-9 _ . -",
                               c->ns);
    int rc = bg__url_parse(url, &c->url, c->err, sizeof c->err);
    if (rc != BG_OK)
        return rc;
    c->url_ok = 1;
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
    if (!c->url_ok)
        return BG_EURL;
    if (bg__conn_ok(&c->conn))
        return BG_OK;
    bg__client_name(name, sizeof name, c->ns, c->role);
    int rc = bg__conn_open(&c->conn, &c->url, c->url_masked, name, c->timeout_ms);
    if (rc != BG_OK)
        bg__client_fail(c, rc, "%s", c->conn.err);
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
