/* url.c: parses and masks the Redis URLs of docs/schema.md#formats:
 * redis://[[user]:password@]host[:port][/db], the same with rediss:// for TLS, and
 * unix:///path/to/redis.sock[?db=N],
 * redis-sentinel://[[user]:password@]host[:port][,...]/MASTER[/DB]; and checks TLS options against
 * the URL. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

char *bg_url_mask(const char *url, char *buf, size_t len) {
    const char *scheme = strstr(url, "://");
    const char *start = scheme ? scheme + 3 : url;
    const char *at = NULL;
    /* The userinfo ends at the last '@' before the path, so a password holding '@' (which
     * should have been escaped) is masked whole all the same. */
    for (const char *p = start; *p && *p != '/' && *p != '?'; p++)
        if (*p == '@')
            at = p;
    const char *colon = NULL;
    if (at)
        colon = memchr(start, ':', (size_t)(at - start));
    if (!at || !colon) {
        bg__fmt(buf, len, "%s", url);
        return buf;
    }
    bg__fmt(buf, len, "%.*s***%s", (int)(colon + 1 - url), url, at);
    return buf;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Decodes %XX escapes of s[0..n) into a new string; NULL on a bad escape or no memory. */
static char *pct_decode(const char *s, size_t n, int *bad) {
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) {
                *bad = 1;
                free(out);
                return NULL;
            }
            if (hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0) {
                *bad = 1;
                free(out);
                return NULL;
            }
            *o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int parse_uint(const char *s, size_t n, long max, long *out) {
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static int fail(const char *s, char *err, size_t errlen, const char *why) {
    char masked[512];
    bg__fmt(err, errlen, "invalid Redis URL '%s': %s", bg_url_mask(s, masked, sizeof masked), why);
    return BG_EURL;
}

static int parse_unix(const char *s, const char *rest, bg__url *u, char *err, size_t errlen) {
    if (rest[0] != '/')
        return fail(s, err, errlen,
                    "a unix URL needs an absolute path: unix:///path/to/redis.sock");
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen < 2)
        return fail(s, err, errlen, "the socket path is empty");
    u->path = bg__strndup(rest, plen);
    if (!u->path)
        return BG_ENOMEM;
    if (q) {
        long db;
        if (strncmp(q + 1, "db=", 3) != 0 || parse_uint(q + 4, strlen(q + 4), 1000000, &db) != 0)
            return fail(s, err, errlen, "the only query it takes is ?db=N");
        u->db = (int)db;
    }
    return BG_OK;
}

/* Takes the "[user]:password@" before end off *p, when there is one, decoded into u. */
static int parse_userinfo(const char *s, const char **pp, const char *end, bg__url *u, char *err,
                          size_t errlen) {
    const char *p = *pp, *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (!at)
        return BG_OK;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    int bad = 0;
    if (!colon)
        return fail(s, err, errlen, "a user needs a password: redis://user:password@host");
    if (colon > p) {
        u->user = pct_decode(p, (size_t)(colon - p), &bad);
        if (!u->user)
            return bad ? fail(s, err, errlen, "bad percent-escape in the user") : BG_ENOMEM;
    }
    u->pass = pct_decode(colon + 1, (size_t)(at - colon - 1), &bad);
    if (!u->pass)
        return bad ? fail(s, err, errlen, "bad percent-escape in the password") : BG_ENOMEM;
    if (!*u->pass)
        return fail(s, err, errlen, "the password is empty");
    *pp = at + 1;
    return BG_OK;
}

/* Parses host[:port] (a [v6] host in brackets) of p..end into a new *host and *port. */
static int parse_hostport(const char *s, const char *p, const char *end, int defport, char **host,
                          int *port, char *err, size_t errlen) {
    const char *hend, *portp = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb || rb == p + 1)
            return fail(s, err, errlen, "unterminated or empty [IPv6] host");
        hend = rb + 1;
        if (hend < end && *hend != ':')
            return fail(s, err, errlen, "junk after the [IPv6] host");
        if (hend < end)
            portp = hend + 1;
        *host = bg__strndup(p + 1, (size_t)(rb - p - 1));
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        if (hend == p)
            return fail(s, err, errlen, "the host is empty");
        for (const char *q = p; q < hend; q++)
            if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_')
                return fail(s, err, errlen, "the host holds a character a host name cannot");
        if (colon)
            portp = colon + 1;
        *host = bg__strndup(p, (size_t)(hend - p));
    }
    if (!*host)
        return BG_ENOMEM;
    *port = defport;
    if (portp) {
        long v;
        if (parse_uint(portp, (size_t)(end - portp), 65535, &v) != 0 || v == 0)
            return fail(s, err, errlen, "the port must be a number from 1 to 65535");
        *port = (int)v;
    }
    return BG_OK;
}

/* redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/DB]: the sentinels
 * to ask (port 26379 by default), in order, and the name of the master they watch. */
static int parse_sentinel(const char *s, const char *p, bg__url *u, char *err, size_t errlen) {
    const char *end = p + strcspn(p, "/");
    if (strpbrk(p, "?#"))
        return fail(s, err, errlen, "redis-sentinel:// URLs take no query or fragment");
    int rc = parse_userinfo(s, &p, end, u, err, errlen);
    if (rc != BG_OK)
        return rc;
    if (p == end)
        return fail(s, err, errlen, "no sentinel is given: redis-sentinel://host:26379/MASTER");
    int n = 1;
    for (const char *q = p; q < end; q++)
        n += *q == ',';
    if (n > BG__SENTINELS_MAX)
        return fail(s, err, errlen, "more sentinels than bg takes (16)");
    if (!(u->sentinels = calloc((size_t)n, sizeof *u->sentinels)))
        return BG_ENOMEM;
    for (const char *h = p; u->nsentinels < n;) {
        const char *comma = memchr(h, ',', (size_t)(end - h));
        const char *hend = comma ? comma : end;
        /* Counted first, so bg__url_clear() frees its host whatever fails after. */
        bg__hostport *hp = &u->sentinels[u->nsentinels++];
        if (hend == h)
            return fail(s, err, errlen, "a sentinel in the list is empty");
        if ((rc = parse_hostport(s, h, hend, 26379, &hp->host, &hp->port, err, errlen)) != BG_OK)
            return rc;
        h = hend + 1;
    }
    if (*end != '/' || !end[1] || end[1] == '/')
        return fail(s, err, errlen, "the master's name is missing: redis-sentinel://host/MASTER");
    const char *name = end + 1, *slash = strchr(name, '/');
    size_t nlen = slash ? (size_t)(slash - name) : strlen(name);
    if (nlen > BG__MASTER_NAME_MAX)
        return fail(s, err, errlen, "the master's name is longer than 255 bytes");
    if (!(u->master = bg__strndup(name, nlen)))
        return BG_ENOMEM;
    if (slash && slash[1]) {
        long db;
        if (parse_uint(slash + 1, strlen(slash + 1), 1000000, &db) != 0)
            return fail(s, err, errlen,
                        "the database must be a whole number: redis-sentinel://host/MASTER/0");
        u->db = (int)db;
    }
    if (!(u->gen = calloc(1, sizeof *u->gen)))
        return BG_ENOMEM;
    atomic_init(u->gen, 0);
    return BG_OK;
}

int bg__url_parse(const char *s, bg__url *u, char *err, size_t errlen) {
    memset(u, 0, sizeof *u);
    if (!s || !*s)
        return fail("", err, errlen, "empty");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return fail(s, err, errlen, "it holds a space or control character");
    if (strncmp(s, "unix://", 7) == 0)
        return parse_unix(s, s + 7, u, err, errlen);
    if (strncmp(s, "redis-sentinel://", 17) == 0)
        return parse_sentinel(s, s + 17, u, err, errlen);
    if (strncmp(s, "rediss-sentinel://", 18) == 0)
        return fail(s, err, errlen,
                    "TLS to sentinels is not supported: use redis-sentinel:// over a private "
                    "network, or rediss:// to one server");
    if (strncmp(s, "rediss://", 9) == 0)
        u->tls = 1;
    else if (strncmp(s, "redis://", 8) != 0)
        return fail(s, err, errlen,
                    "it must start with redis://, rediss://, redis-sentinel:// or unix://");

    const char *p = s + (u->tls ? 9 : 8);
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#')
        return fail(s, err, errlen, "redis:// and rediss:// URLs take no query or fragment");
    int rc = parse_userinfo(s, &p, end, u, err, errlen);
    if (rc != BG_OK)
        return rc;
    if ((rc = parse_hostport(s, p, end, 6379, &u->host, &u->port, err, errlen)) != BG_OK)
        return rc;
    if (*end == '/' && end[1]) {
        long db;
        if (parse_uint(end + 1, strlen(end + 1), 1000000, &db) != 0)
            return fail(s, err, errlen, "the database must be a whole number: redis://host:port/0");
        u->db = (int)db;
    }
    return BG_OK;
}

int bg__url_tls_check(const bg__url *u, const bg_tls_options *t, char *err, size_t errlen) {
    const struct {
        const char *what, *v;
    } opts[] = {{"CA certificate file", t->ca_cert},
                {"client certificate file", t->cert},
                {"client key file", t->key},
                {"server name", t->server_name}};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (!opts[i].v)
            continue;
        if (!u->tls) {
            bg__fmt(err, errlen, "a TLS %s was given, but the URL is not rediss://", opts[i].what);
            return BG_EINVAL;
        }
        if (!*opts[i].v) {
            bg__fmt(err, errlen, "the TLS %s is empty", opts[i].what);
            return BG_EINVAL;
        }
    }
    if (t->server_name && strlen(t->server_name) > 253) {
        bg__fmt(err, errlen, "the TLS server name is longer than a host name can be (253)");
        return BG_EINVAL;
    }
    for (const char *p = t->server_name; p && *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p)) {
            bg__fmt(err, errlen, "the TLS server name holds a character a host name cannot");
            return BG_EINVAL;
        }
    if (!t->cert != !t->key) {
        bg__fmt(err, errlen, "a TLS client certificate needs its key, and a key its certificate");
        return BG_EINVAL;
    }
    return BG_OK;
}

void bg__url_clear(bg__url *u) {
    if (u->ctx)
        bg__tls_free(u->ctx);
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->pass);
    for (int i = 0; i < u->nsentinels; i++)
        free(u->sentinels[i].host);
    free(u->sentinels);
    free(u->master);
    free(u->gen);
    memset(u, 0, sizeof *u);
}

int bg_url_check(const char *url, char *errbuf, size_t errlen) {
    bg__url u;
    char tmp[BG__ERRLEN];
    int rc = bg__url_parse(url, &u, errbuf ? errbuf : tmp, errbuf ? errlen : sizeof tmp);
    bg__url_clear(&u);
    return rc;
}
