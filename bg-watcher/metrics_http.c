/* metrics_http.c: the watcher's /metrics endpoint. One thread polls the listening socket and
 * every open connection, so a slow or silent client holds only its own slot, never the other
 * scrapes and never the watcher's loop; each connection gets one response and is closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bg_common.h"
#include "metrics_http.h"

#define MAX_CONNS 16          /* open connections at once; more are closed at once */
#define MAX_REQUEST 8192      /* a request's line and headers, at most */
#define CONN_DEADLINE_MS 5000 /* a connection that has not been served by then is closed */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct {
    int fd; /* -1: a free slot */
    double deadline_ms;
    char in[MAX_REQUEST];
    size_t inlen;
    char *out; /* the response, once the request is read */
    size_t outlen, outpos;
} http_conn;

struct bgw_metrics {
    int lfd;
    int wake[2]; /* a byte on wake[1] stops the thread */
    pthread_t thread;
    bg_client *client;
    char **queues;
    size_t nqueues;
    bg_logger log;
    int failing; /* the last scrape could not read Redis: said once, until it can again */
    http_conn conns[MAX_CONNS];
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void logf_(const bgw_metrics *m, bg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const bgw_metrics *m, bg_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    if (!m->log.fn || level < m->log.level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->log.fn(m->log.userdata, level, "watcher", msg);
}

int bgw_listen_parse(const char *spec, bgw_listen *out, char *err, size_t errlen) {
    char host[64];
    const char *port;
    long long p;
    memset(out, 0, sizeof *out);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host) {
            snprintf(err, errlen, "'%s': an IPv6 address is written [ADDR]:PORT", spec);
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host) {
            snprintf(err, errlen, "'%s': expected ADDR:PORT, [ADDR]:PORT or :PORT", spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        if (strchr(host, ':')) {
            snprintf(err, errlen, "'%s': an IPv6 address is written [ADDR]:PORT", spec);
            return -1;
        }
        port = colon + 1;
    }
    if (bgc_parse_int(port, 1, 65535, &p) != 0) {
        snprintf(err, errlen, "'%s': the port must be a whole number from 1 to 65535", spec);
        return -1;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
    if (!host[0] && spec[0] != '[') {
        out->any = 1;
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_any;
        v6->sin6_port = htons((uint16_t)p);
        out->len = sizeof *v6;
    } else if (spec[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        out->len = sizeof *v4;
    } else if (spec[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        out->len = sizeof *v6;
    } else {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 address or a bracketed IPv6 address", spec,
                 host);
        return -1;
    }
    snprintf(out->text, sizeof out->text, "%s", spec);
    return 0;
}

/* A socket listening at l; for ":PORT" an IPv6 socket that takes IPv4 too, or IPv4 alone on a
 * host without IPv6. */
static int listen_at(const bgw_listen *l) {
    struct sockaddr_storage addr = l->addr;
    socklen_t len = l->len;
    int one = 1, zero = 0;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && l->any && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
        uint16_t port = ((const struct sockaddr_in6 *)&l->addr)->sin6_port;
        memset(&addr, 0, sizeof addr);
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = port;
        len = sizeof *v4;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return -1;
    /* A restarted watcher binds again at once, whatever connections linger in TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr.ss_family == AF_INET6 && l->any)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void respond(http_conn *c, int code, const char *reason, const char *type, const char *body,
                    size_t len, int head, const char *extra) {
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     code, reason, type, len, extra ? extra : "");
    size_t blen = head ? 0 : len;
    c->out = malloc((size_t)n + blen);
    if (!c->out) {
        c->outlen = 0;
        return;
    }
    memcpy(c->out, hdr, (size_t)n);
    if (blen)
        memcpy(c->out + n, body, blen);
    c->outlen = (size_t)n + blen;
    c->outpos = 0;
}

static void respond_text(http_conn *c, int code, const char *reason, const char *body, int head,
                         const char *extra) {
    respond(c, code, reason, "text/plain; charset=utf-8", body, strlen(body), head, extra);
}

static void serve_metrics(bgw_metrics *m, http_conn *c, int head) {
    char *text = NULL;
    size_t len = 0;
    int rc = bg_metrics_text(m->client, (const char *const *)m->queues, m->nqueues, &text, &len);
    if (rc != BG_OK) {
        char body[600];
        snprintf(body, sizeof body, "cannot read the figures: %s\n", bg_client_errmsg(m->client));
        if (!m->failing)
            logf_(m, BG_LOG_WARN, "metrics: %s", body);
        m->failing = 1;
        respond_text(c, 503, "Service Unavailable", body, head, NULL);
        return;
    }
    if (m->failing)
        logf_(m, BG_LOG_INFO, "metrics: the figures can be read again");
    m->failing = 0;
    respond(c, 200, "OK", CONTENT_TYPE, text, len, head, NULL);
    free(text);
}

/* Answers a whole request (its line and headers are in c->in). */
static void handle(bgw_metrics *m, http_conn *c) {
    char method[16], target[1024], version[16];
    char *eol = memchr(c->in, '\n', c->inlen);
    size_t linelen = eol ? (size_t)(eol - c->in) : 0;
    char line[1100];
    if (!eol || linelen >= sizeof line) {
        respond_text(c, 400, "Bad Request", "bad request\n", 0, NULL);
        return;
    }
    memcpy(line, c->in, linelen);
    line[linelen] = '\0';
    if (linelen && line[linelen - 1] == '\r')
        line[linelen - 1] = '\0';
    char extra;
    if (sscanf(line, "%15s %1023s %15s %c", method, target, version, &extra) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        respond_text(c, 400, "Bad Request", "bad request\n", 0, NULL);
        return;
    }
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n", 0,
                     "Allow: GET, HEAD\r\n");
        return;
    }
    size_t plen = strcspn(target, "?");
    if (plen == 8 && strncmp(target, "/metrics", 8) == 0)
        serve_metrics(m, c, head);
    else
        respond_text(c, 404, "Not Found", "not found: the metrics are at /metrics\n", head, NULL);
}

static void conn_close(http_conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->inlen = c->outlen = c->outpos = 0;
}

static void on_writable(http_conn *c) {
    ssize_t n = send(c->fd, c->out + c->outpos, c->outlen - c->outpos, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->outpos += (size_t)n;
    if (c->outpos == c->outlen) {
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
    }
}

/* Reads what the client sent; once the headers are whole (or too long), builds the reply. */
static void on_readable(bgw_metrics *m, http_conn *c) {
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen - 1, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->inlen += (size_t)n;
    c->in[c->inlen] = '\0';
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
        handle(m, c);
    else if (c->inlen >= sizeof c->in - 1)
        respond_text(c, 431, "Request Header Fields Too Large", "request too large\n", 0, NULL);
    else
        return;
    if (c->out)
        on_writable(c); /* the socket is all but always writable now: no wait for a poll */
    else
        conn_close(c);
}

static void on_accept(bgw_metrics *m) {
    for (;;) {
        int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        http_conn *slot = NULL;
        for (int i = 0; i < MAX_CONNS && !slot; i++)
            if (m->conns[i].fd < 0)
                slot = &m->conns[i];
        if (!slot) {
            close(fd); /* every slot is taken: the scraper tries again */
            continue;
        }
        slot->fd = fd;
        slot->deadline_ms = now_ms() + CONN_DEADLINE_MS;
    }
}

static void *serve(void *arg) {
    bgw_metrics *m = arg;
    struct pollfd fds[MAX_CONNS + 2];
    http_conn *who[MAX_CONNS + 2];
    for (;;) {
        int n = 0;
        fds[n++] = (struct pollfd){m->wake[0], POLLIN, 0};
        fds[n++] = (struct pollfd){m->lfd, POLLIN, 0};
        double now = now_ms();
        for (int i = 0; i < MAX_CONNS; i++) {
            http_conn *c = &m->conns[i];
            if (c->fd >= 0 && now > c->deadline_ms)
                conn_close(c);
            if (c->fd < 0)
                continue;
            who[n] = c;
            fds[n++] = (struct pollfd){c->fd, (short)(c->out ? POLLOUT : POLLIN), 0};
        }
        if (poll(fds, (nfds_t)n, 250) < 0 && errno != EINTR)
            break;
        if (fds[0].revents)
            break;
        for (int i = 2; i < n; i++) {
            http_conn *c = who[i];
            if (!fds[i].revents || c->fd != fds[i].fd)
                continue;
            if (c->out)
                on_writable(c);
            else
                on_readable(m, c);
        }
        if (fds[1].revents & POLLIN)
            on_accept(m);
    }
    return NULL;
}

static void metrics_free(bgw_metrics *m) {
    for (int i = 0; i < MAX_CONNS; i++)
        conn_close(&m->conns[i]);
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->wake[0] >= 0)
        close(m->wake[0]);
    if (m->wake[1] >= 0)
        close(m->wake[1]);
    bg_client_free(m->client);
    bgc_free_list(m->queues, m->nqueues);
    free(m);
}

bgw_metrics *bgw_metrics_start(const bgw_listen *l, const bgw_metrics_options *o, char *err,
                               size_t errlen) {
    bgw_metrics *m = calloc(1, sizeof *m);
    bg_client_options co;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->lfd = m->wake[0] = m->wake[1] = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        m->conns[i].fd = -1;
    m->log = o->log;
    if (o->nqueues && !(m->queues = calloc(o->nqueues, sizeof *m->queues)))
        goto oom;
    for (; m->nqueues < o->nqueues; m->nqueues++)
        if (!(m->queues[m->nqueues] = strdup(o->queues[m->nqueues])))
            goto oom;
    bg_client_options_init(&co);
    co.url = o->url;
    co.ns = o->ns;
    co.role = "watcher";
    co.log = o->log;
    co.tls = o->tls;
    char why[256];
    if (bg_client_new(&m->client, &co, why, sizeof why) != BG_OK) {
        snprintf(err, errlen, "--metrics: %s", why);
        metrics_free(m);
        return NULL;
    }
    if ((m->lfd = listen_at(l)) < 0) {
        snprintf(err, errlen, "cannot listen on %s for --metrics: %s", l->text, strerror(errno));
        metrics_free(m);
        return NULL;
    }
    if (pipe2(m->wake, O_CLOEXEC) != 0 || pthread_create(&m->thread, NULL, serve, m) != 0) {
        snprintf(err, errlen, "--metrics: cannot start its thread");
        metrics_free(m);
        return NULL;
    }
    logf_(m, BG_LOG_INFO, "serving metrics at http://%s/metrics", l->text);
    return m;
oom:
    snprintf(err, errlen, "out of memory");
    metrics_free(m);
    return NULL;
}

void bgw_metrics_stop(bgw_metrics *m) {
    if (!m)
        return;
    /* Without the byte the thread would run on: leave its memory be. */
    if (write(m->wake[1], "x", 1) != 1)
        return;
    pthread_join(m->thread, NULL);
    metrics_free(m);
}
