/* fuzz_url.c: feeds arbitrary bytes to the Redis URL parser and the password masker, and checks
 * what a parsed URL promises (one of host or socket path, a port in range, the password never
 * shown by the mask, TLS only for rediss://, a redis-sentinel:// URL's list of sentinels). The
 * NUL-separated strings after the URL are TLS options (CA file, certificate, key, server name; one
 * missing is an option not given), checked against the URL as the constructors check them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Masks s into a heap buffer of exactly len bytes, so the address sanitizer sees any write past
 * it, and checks the result is terminated within the buffer. */
static void mask_into(const char *s, size_t len) {
    char *buf = malloc(len);
    if (!buf)
        return;
    if (bg_url_mask(s, buf, len) != buf || memchr(buf, '\0', len) == NULL)
        abort();
    free(buf);
}

/* Takes the NUL-separated strings after the URL in s (of size bytes, NUL-terminated) as t's
 * fields: a field past the end is an option not given. */
static void split_options(const char *s, size_t size, bg_tls_options *t) {
    const char **fields[] = {&t->ca_cert, &t->cert, &t->key, &t->server_name};
    size_t at = strlen(s) + 1;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 4 && at <= size; i++) {
        *fields[i] = s + at;
        at += strlen(s + at) + 1;
    }
}

/* What bg__url_tls_check promises of u and t when it says yes, and bg__url_parse_tls of a
 * setup that needs no file. */
static void check_tls(const char *s, const bg__url *u, const bg_tls_options *t) {
    char err[BG__ERRLEN];
    int any = t->ca_cert || t->cert || t->key || t->server_name;
    int rc = bg__url_tls_check(u, t, err, sizeof err);
    if (rc == BG_OK) {
        if (any && !u->tls)
            abort();
        if (!t->cert != !t->key)
            abort();
        if ((t->ca_cert && !*t->ca_cert) || (t->server_name && !*t->server_name))
            abort();
    } else if (rc != BG_EINVAL || memchr(err, '\0', sizeof err) == NULL) {
        abort();
    }
    /* One input in eight: OpenSSL's setup costs a millisecond. */
    if (rc == BG_OK && !t->ca_cert && !t->cert && strlen(s) % 8 == 0) {
        bg__url v;
        rc = bg__url_parse_tls(s, t, &v, err, sizeof err);
        if (rc != BG_OK || (v.tls && !v.ctx) || (!v.tls && v.ctx))
            abort();
        bg__url_clear(&v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    bg_tls_options t;
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    split_options(s, size, &t);

    char err[BG__ERRLEN];
    bg__url u;
    int rc = bg__url_parse(s, &u, err, sizeof err);
    if (rc == BG_OK) {
        /* A parsed URL names exactly one endpoint, in range: a host, a socket path, or the
         * sentinels (1 to BG__SENTINELS_MAX of them, each a host and port) and a master. */
        int sentinel = strncmp(s, "redis-sentinel://", 17) == 0;
        if (sentinel != (u.master != NULL) || (sentinel && (u.host || u.path || !u.gen)))
            abort();
        if (!sentinel && (u.host == NULL) == (u.path == NULL))
            abort();
        if (sentinel && (u.nsentinels < 1 || u.nsentinels > BG__SENTINELS_MAX || !*u.master ||
                         strlen(u.master) > BG__MASTER_NAME_MAX))
            abort();
        for (int i = 0; i < u.nsentinels; i++)
            if (!u.sentinels[i].host || u.sentinels[i].port < 1 || u.sentinels[i].port > 65535)
                abort();
        if (u.host && (u.port < 1 || u.port > 65535))
            abort();
        if (u.db < 0)
            abort();
        /* A user is only ever given with a password. */
        if (u.user && !u.pass)
            abort();
        if (u.tls != (strncmp(s, "rediss://", 9) == 0) || (u.tls && !u.host))
            abort();
        check_tls(s, &u, &t);
        if (u.pass) {
            char masked[BG__ERRLEN * 4];
            bg_url_mask(s, masked, sizeof masked);
            if (strlen(s) + 4 < sizeof masked && !strstr(masked, ":***@"))
                abort();
        }
    } else if (rc != BG_EURL && rc != BG_ENOMEM) {
        abort();
    } else if (memchr(err, '\0', sizeof err) == NULL) {
        abort();
    }
    bg__url_clear(&u);

    /* The public wrappers, with buffers of every small size. */
    char small[16];
    (void)bg_url_check(s, small, 1 + (size % sizeof small));
    (void)bg_url_check(s, NULL, 0);
    mask_into(s, 1 + (size % 64));
    mask_into(s, size + 8);

    free(s);
    return 0;
}
