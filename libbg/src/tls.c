/* tls.c: rediss:// with Debian 12's hiredis 0.14, which speaks no TLS (docs/operations.md#tls).
 *
 * The caller's thread dials and runs the TLS handshake itself, so every verification error is
 * reported at once, in words. The TLS socket then goes to the process's one pump thread, and
 * hiredis gets the other end of a socketpair (redisConnectFd): it reads and writes plaintext
 * there with its own blocking calls and timeouts, exactly as on a TCP socket. The pump moves
 * bytes both ways through OpenSSL and, when the TLS side ends (the server closed it, a TLS
 * error, a keepalive that failed), closes its end, so hiredis sees a lost connection as it
 * would on plaintext; when hiredis closes its end (redisFree), the pump closes the TLS side. A
 * hung server hangs the pump's reads only, so hiredis's read times out as it would. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bg_int.h"

struct bg__tls {
    SSL_CTX *ctx;
    char *server_name; /* NULL: the URL's host */
};

/* The bytes in flight one way: filled whole, then drained, then filled again. */
typedef struct {
    unsigned char buf[16384];
    size_t len, off;
} pump_buf;

struct bg__tls_link {
    SSL *ssl;
    int net;                   /* the TLS socket, non-blocking */
    int plain;                 /* the pump's end of the socketpair, non-blocking */
    int want_read, want_write; /* what OpenSSL waits for on net */
    int net_eof;               /* the TLS side ended: hand hiredis what is left, then close */
    int asked_cert;            /* the server asked for a client certificate, and got none */
    int heard;                 /* the server sent data since the handshake */
    /* Under mu: */
    int refs;
    char why[256];
    /* Last: bg__tls_connect() zeroes what comes before, and only the counts of these. */
    pump_buf up, down; /* hiredis to Redis, Redis to hiredis */
};

/* The pump: every link of the process, served by one thread that runs while there is any. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bg__tls_link **links;
static int nlinks, caplinks, running;
static int wake[2] = {-1, -1};

/* ---- the setup: one SSL_CTX a handle ---- */

static int no_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey);

/* The first OpenSSL error in the thread's queue, in words, or dflt. */
static const char *ssl_reason(const char *dflt) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : dflt;
}

static int load_files(SSL_CTX *ctx, const bg_tls_options *t, char *err, size_t errlen) {
    if (t->ca_cert ? SSL_CTX_load_verify_locations(ctx, t->ca_cert, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        bg__fmt(err, errlen, "cannot load the TLS CA certificates from '%s': %s",
                t->ca_cert ? t->ca_cert : "the system's store", ssl_reason("unreadable"));
        return BG_EINVAL;
    }
    if (t->cert && SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        bg__fmt(err, errlen, "cannot load the TLS client certificate from '%s': %s", t->cert,
                ssl_reason("unreadable"));
        return BG_EINVAL;
    }
    if (t->key && SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        bg__fmt(err, errlen, "cannot load the TLS client key from '%s': %s", t->key,
                ssl_reason("unreadable"));
        return BG_EINVAL;
    }
    if (t->key && SSL_CTX_check_private_key(ctx) != 1) {
        bg__fmt(err, errlen, "the TLS client key '%s' is not the key of '%s'", t->key, t->cert);
        return BG_EINVAL;
    }
    return BG_OK;
}

int bg__tls_new(bg__tls **out, const bg_tls_options *t, char *err, size_t errlen) {
    bg__tls *tls = calloc(1, sizeof *tls);
    *out = NULL;
    if (!tls || !(tls->ctx = SSL_CTX_new(TLS_client_method())) ||
        (t->server_name && !(tls->server_name = bg__strdup(t->server_name)))) {
        bg__tls_free(tls);
        bg__fmt(err, errlen, "out of memory");
        return BG_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_client_cert_cb(tls->ctx, no_client_cert);
    /* A server that goes away without a close_notify (killed, restarted) is a lost connection,
     * as on plaintext, not a TLS error. */
    SSL_CTX_set_options(tls->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
    ERR_clear_error();
    int rc = load_files(tls->ctx, t, err, errlen);
    ERR_clear_error();
    if (rc != BG_OK) {
        bg__tls_free(tls);
        return rc;
    }
    *out = tls;
    return BG_OK;
}

void bg__tls_free(bg__tls *t) {
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

int bg__url_parse_tls(const char *s, const bg_tls_options *t, bg__url *u, char *err,
                      size_t errlen) {
    static const bg_tls_options none;
    int rc = bg__url_parse(s, u, err, errlen);
    if (rc == BG_OK)
        rc = bg__url_tls_check(u, t ? t : &none, err, errlen);
    if (rc == BG_OK && u->tls)
        rc = bg__tls_new(&u->ctx, t ? t : &none, err, errlen);
    return rc;
}

/* ---- the handshake, on the caller's thread ---- */

/* Sets what the certificate must name: an IP address in the URL is checked against the
 * certificate's IP addresses (and sent as no SNI, which names hosts only), a name against its
 * DNS names. */
static int set_peer(SSL *ssl, const bg__tls *t, const char *host) {
    const char *name = t->server_name ? t->server_name : host;
    unsigned char addr[16];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    /* SNI takes a mutable string (OpenSSL's macro casts the const away); a DNS name is at most
     * 253 bytes. */
    char sni[256];
    if (strlen(name) >= sizeof sni)
        return 0;
    memcpy(sni, name, strlen(name) + 1);
    return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, sni) == 1 &&
           SSL_set1_host(ssl, name) == 1;
}

static void handshake_error(SSL *ssl, int ret, char *err, size_t errlen) {
    long vr = SSL_get_verify_result(ssl);
    int e = SSL_get_error(ssl, ret);
    if (vr != X509_V_OK)
        bg__fmt(err, errlen, "TLS: certificate verify failed: %s",
                X509_verify_cert_error_string(vr));
    else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
             (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)))
        bg__fmt(err, errlen, "TLS handshake: Redis did not answer in time");
    else if (e == SSL_ERROR_SSL)
        bg__fmt(err, errlen, "TLS handshake: %s", ssl_reason("failed"));
    else if (e == SSL_ERROR_SYSCALL && errno)
        bg__fmt(err, errlen, "TLS handshake: %s", strerror(errno));
    else
        bg__fmt(err, errlen, "TLS handshake: the server closed the connection (is it a TLS port?)");
}

/* Called when the server asks for a client certificate and none is set: none is sent, and the
 * link remembers it, so a server that requires one (TLS 1.3 says so only after the handshake,
 * by closing) is reported as such. */
static int no_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey) {
    bg__tls_link *l = SSL_get_app_data(ssl);
    (void)x509;
    (void)pkey;
    if (l)
        l->asked_cert = 1;
    return 0;
}

static int handshake(SSL *ssl, const bg__tls *t, const char *host, int fd, int timeout_ms,
                     char *err, size_t errlen) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (!set_peer(ssl, t, host) || SSL_set_fd(ssl, fd) != 1) {
        bg__fmt(err, errlen, "TLS: cannot set up the connection: %s", ssl_reason("out of memory"));
        return -1;
    }
    errno = 0;
    int ret = SSL_connect(ssl);
    if (ret != 1) {
        handshake_error(ssl, ret, err, errlen);
        return -1;
    }
    return 0;
}

static void *pump_main(void *arg);

/* Adds l to the pump, starting its thread when none runs. */
static int pump_add(bg__tls_link *l) {
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (wake[0] < 0 && pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0)
        wake[0] = wake[1] = -1, rc = -1;
    if (rc == 0 && nlinks == caplinks) {
        int cap = caplinks ? caplinks * 2 : 16;
        bg__tls_link **grown = realloc(links, (size_t)cap * sizeof *grown);
        if (grown)
            links = grown, caplinks = cap;
        else
            rc = -1;
    }
    if (rc == 0 && !running) {
        pthread_t th;
        sigset_t all, old;
        /* The pump takes no signal: the programs' handlers and the worker's sigwaitinfo stay
         * with their own threads, and a write to a dead socket raises no SIGPIPE here. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = bg__thread_start(&th, pump_main, NULL, 256 * 1024, 1) == 0 ? 0 : -1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        running = rc == 0;
    }
    if (rc == 0) {
        links[nlinks++] = l;
        (void)!write(wake[1], "", 1);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int bg__tls_connect(const bg__tls *t, const char *host, int fd, int timeout_ms, bg__tls_link **link,
                    char *err, size_t errlen) {
    int sv[2] = {-1, -1};
    /* Not calloc: the buffers' pages stay out of the RSS until bytes go through them. */
    bg__tls_link *l = malloc(sizeof *l);
    *link = NULL;
    if (l) {
        memset(l, 0, offsetof(bg__tls_link, up));
        l->up.len = l->up.off = l->down.len = l->down.off = 0;
    }
    ERR_clear_error();
    if (!l || !(l->ssl = SSL_new(t->ctx))) {
        bg__fmt(err, errlen, "out of memory");
        goto fail;
    }
    SSL_set_app_data(l->ssl, l);
    if (handshake(l->ssl, t, host, fd, timeout_ms, err, errlen) != 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        bg__fmt(err, errlen, "TLS: socketpair: %s", strerror(errno));
        goto fail;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    l->net = fd;
    l->plain = sv[1];
    l->refs = 2; /* the connection's and the pump's */
    if (pump_add(l) != 0) {
        bg__fmt(err, errlen, "TLS: cannot start the pump thread");
        goto fail;
    }
    ERR_clear_error();
    *link = l;
    return sv[0];
fail:
    ERR_clear_error();
    if (sv[0] >= 0)
        close(sv[0]), close(sv[1]);
    close(fd);
    if (l)
        SSL_free(l->ssl);
    free(l);
    return -1;
}

void bg__tls_link_why(bg__tls_link *l, char *buf, size_t len) {
    pthread_mutex_lock(&mu);
    bg__fmt(buf, len, "%s", l->why);
    pthread_mutex_unlock(&mu);
}

static void link_unref(bg__tls_link *l) {
    pthread_mutex_lock(&mu);
    int last = --l->refs == 0;
    pthread_mutex_unlock(&mu);
    if (last)
        free(l);
}

void bg__tls_link_release(bg__tls_link *l) {
    if (l)
        link_unref(l);
}

/* ---- the pump thread ---- */

static void set_why(bg__tls_link *l, const char *why) {
    /* A server that asked for a certificate and closed before its first reply wanted one: the
     * alert that says so may be lost to the reset that follows it. */
    if (l->asked_cert && !l->heard)
        why = "the server requires a client certificate (--tls-cert and --tls-key)";
    pthread_mutex_lock(&mu);
    if (why)
        bg__fmt(l->why, sizeof l->why, "TLS: %s", why);
    pthread_mutex_unlock(&mu);
}

/* Whether an SSL call that returned ret may go on later (noting what it waits for on net). */
static int ssl_retry(bg__tls_link *l, int ret) {
    switch (SSL_get_error(l->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        l->want_read = 1;
        return 1;
    case SSL_ERROR_WANT_WRITE:
        l->want_write = 1;
        return 1;
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
        /* A close, a reset or a failed keepalive is a lost connection, said by hiredis as on
         * plaintext. */
        set_why(l, NULL);
        return 0;
    default:
        set_why(l, ssl_reason("connection broken"));
        return 0;
    }
}

/* hiredis's bytes into TLS. Returns 1 on progress, 0 on none, -1 when the link is over. */
static int pump_up(bg__tls_link *l) {
    int moved = 0;
    if (l->up.len == 0) {
        ssize_t n = recv(l->plain, l->up.buf, sizeof l->up.buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return -1; /* hiredis closed its end */
        if (n > 0)
            l->up.len = (size_t)n, l->up.off = 0, moved = 1;
    }
    if (l->up.off < l->up.len && !l->net_eof) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(l->ssl, l->up.buf + l->up.off, (int)(l->up.len - l->up.off));
        if (n > 0) {
            if ((l->up.off += (size_t)n) == l->up.len)
                l->up.len = l->up.off = 0;
            moved = 1;
        } else if (!ssl_retry(l, n)) {
            l->net_eof = 1;
        }
    }
    return moved;
}

/* Redis's bytes, decrypted, to hiredis. Returns as pump_up(). */
static int pump_down(bg__tls_link *l) {
    int moved = 0;
    if (l->down.len == 0 && !l->net_eof) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(l->ssl, l->down.buf, sizeof l->down.buf);
        if (n > 0)
            l->down.len = (size_t)n, l->down.off = 0, moved = l->heard = 1;
        else if (!ssl_retry(l, n))
            l->net_eof = 1;
    }
    if (l->down.off < l->down.len) {
        ssize_t n =
            send(l->plain, l->down.buf + l->down.off, l->down.len - l->down.off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (n > 0 && (l->down.off += (size_t)n) == l->down.len)
            l->down.len = l->down.off = 0;
        moved |= n > 0;
    }
    /* What the server said before it went is handed over first (an error reply, say). */
    return l->net_eof && l->down.len == 0 ? -1 : moved;
}

/* Moves what can move without waiting. Returns 0, or -1 when the link is over. */
static int pump_step(bg__tls_link *l) {
    int up, down;
    do {
        l->want_read = l->want_write = 0;
        if ((up = pump_up(l)) < 0 || (down = pump_down(l)) < 0)
            return -1;
    } while (up || down);
    return 0;
}

/* Ends a link: the TLS side closed (with a close_notify when it still can), hiredis's end
 * shut, so its next read finds the loss. */
static void pump_end(bg__tls_link *l) {
    if (!l->net_eof) {
        ERR_clear_error();
        SSL_shutdown(l->ssl);
    }
    ERR_clear_error();
    SSL_free(l->ssl);
    close(l->net);
    close(l->plain);
    link_unref(l);
}

/* What l waits for. A socket it waits nothing from is left out of the poll (fd -1), so a
 * hang-up there cannot spin the loop while the other side is busy. */
static void pump_events(const bg__tls_link *l, struct pollfd *p) {
    short plain =
        (short)((l->up.len == 0 ? POLLIN : 0) | (l->down.off < l->down.len ? POLLOUT : 0));
    short net = (short)((l->want_read ? POLLIN : 0) | (l->want_write ? POLLOUT : 0));
    p[0] = (struct pollfd){plain ? l->plain : -1, plain, 0};
    p[1] = (struct pollfd){net ? l->net : -1, net, 0};
}

/* Takes a copy of the pump's links into *mine (grown as needed). Returns how many, 0 when
 * there is none left: the thread then ends (under the same lock, so pump_add() starts another
 * for the next link). */
static int pump_snapshot(bg__tls_link ***mine, struct pollfd **fds, int *cap) {
    for (;;) {
        pthread_mutex_lock(&mu);
        int n = nlinks;
        if (n == 0)
            running = 0;
        if (n <= *cap) {
            memcpy(*mine, links, sizeof **mine * (size_t)n);
            pthread_mutex_unlock(&mu);
            return n;
        }
        pthread_mutex_unlock(&mu);
        bg__tls_link **m = realloc(*mine, sizeof *m * (size_t)n * 2);
        if (m)
            *mine = m;
        struct pollfd *f = realloc(*fds, sizeof *f * ((size_t)n * 4 + 1));
        if (f)
            *fds = f;
        if (m && f)
            *cap = n * 2;
        else
            poll(NULL, 0, 100); /* out of memory: the links wait, as on a slow network */
    }
}

static void pump_drop(bg__tls_link *l) {
    pthread_mutex_lock(&mu);
    for (int j = 0; j < nlinks; j++)
        if (links[j] == l)
            links[j] = links[--nlinks];
    pthread_mutex_unlock(&mu);
    pump_end(l);
}

/* Serves every link until there is none left: moves what can move, then polls the links it
 * knew when it last looked, and the wake pipe for new ones. */
static void *pump_main(void *arg) {
    struct pollfd *fds = NULL;
    bg__tls_link **mine = NULL;
    int cap = 0, n;
    (void)arg;
    while ((n = pump_snapshot(&mine, &fds, &cap)) > 0) {
        for (int i = 0; i < n; i++) {
            fds[2 * i] = fds[2 * i + 1] = (struct pollfd){-1, 0, 0};
            if (pump_step(mine[i]) != 0)
                pump_drop(mine[i]);
            else
                pump_events(mine[i], fds + 2 * i);
        }
        fds[2 * n] = (struct pollfd){wake[0], POLLIN, 0};
        if (poll(fds, (nfds_t)(2 * n + 1), -1) > 0 && (fds[2 * n].revents & POLLIN)) {
            char drain[64];
            while (read(wake[0], drain, sizeof drain) > 0)
                ;
        }
    }
    free(fds);
    free(mine);
    return NULL;
}
