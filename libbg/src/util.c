/* util.c: small helpers: clocks, UUIDs, checked number parsing, UTF-8-safe truncation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <uuid/uuid.h>

#include "bg_int.h"

double bg__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int64_t bg__wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bg__sleep_ms(double ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000),
                          (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

size_t bg__utf8_cut(const char *s, size_t len, size_t max, char *out) {
    size_t n = len;
    if (n > max) {
        n = max;
        /* Step back over continuation bytes so a multi-byte character is never split. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

int bg__parse_ll(const char *s, size_t len, long long *out) {
    char buf[32];
    if (!s || len == 0 || len >= sizeof buf)
        return -1;
    /* Exactly -?[0-9]+: strtoll alone would take white space, a '+', or stop at a NUL. */
    for (size_t i = s[0] == '-'; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    if (len == (size_t)(s[0] == '-'))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

char *bg__strdup(const char *s) {
    return s ? bg__strndup(s, strlen(s)) : NULL;
}

char *bg__strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

size_t bg__errbuf_init(char *errbuf, size_t errlen) {
    if (!errbuf)
        return 0;
    if (errlen)
        errbuf[0] = '\0';
    return errlen;
}

void bg__fmt(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    if (!len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* 1 when s[0..36) is a UUID in its 36-character form, hex digits lowercase only or in any
 * case. */
static int uuid_at(const char *s, int any_case) {
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    for (int i = 0; i < BG_UUID_LEN; i++) {
        char ch = s[i];
        if (pat[i] == '-') {
            if (ch != '-')
                return 0;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (any_case && ch >= 'A' && ch <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

int bg_uuid_valid(const char *s) {
    return s && strlen(s) == BG_UUID_LEN && uuid_at(s, 0);
}

int bg_job_id_valid(const char *s) {
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == BG_UUID_LEN + 2 && s[0] == '{' && s[n - 1] == '}')
        return uuid_at(s + 1, 1);
    return n == BG_UUID_LEN && uuid_at(s, 1);
}

void bg_uuid_new(bg_uuid out) {
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

void bg__uuid_fill(bg_uuid *out, size_t n) {
    /* uuid_generate_random makes several system calls a UUID; a worker makes one UUID a job,
     * so a claim's batch takes its random bytes from one getrandom() instead. */
    unsigned char raw[16 * 32];
    while (n > 0) {
        size_t k = n < 32 ? n : 32;
        ssize_t got = getrandom(raw, 16 * k, 0);
        for (size_t i = 0; i < k; i++) {
            unsigned char *u = raw + 16 * i;
            if (got != (ssize_t)(16 * k)) {
                uuid_generate_random(u);
            } else {
                u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4: random */
                u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
            }
            uuid_unparse_lower(u, out[i]);
        }
        out += k;
        n -= k;
    }
}

const char *bg_version(void) {
    return BG_VERSION;
}

int bg__thread_start(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack, int detached) {
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    if (detached)
        rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && stack)
        rc = pthread_attr_setstacksize(&attr, stack);
    if (rc == 0)
        rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}
