/* text.c: making bytes from Redis safe for a terminal and for JSON (text.h). A value in Redis
 * may hold escape sequences that would rewrite the operator's screen, NULs, or bytes that are
 * no UTF-8 at all; none of them reaches the output unescaped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

/* The length of the valid UTF-8 sequence at s (of at most n bytes), with its code point in
 * *cp; 0 when the bytes there are not one (overlong forms and surrogates included). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Whether a code point must not reach a terminal as it is: controls, and the marks that
 * reorder or hide text (bidirectional overrides and isolates, line and paragraph separators). */
static int unsafe(unsigned cp) {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

char *text_escape(const char *s, size_t len, size_t width) {
    static const char ellipsis[] = "\xe2\x80\xa6";
    if (!s)
        return strdup("-");
    /* The worst case: every byte becomes \xNN (4 bytes), plus the ellipsis. */
    char *out = malloc(len * 4 + sizeof ellipsis);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, cols = 0, i = 0;
    while (i < len) {
        char tok[32];
        size_t tlen, tcols;
        unsigned cp;
        size_t n = utf8_seq(u + i, len - i, &cp);
        if (n == 1 && cp == '\\') {
            tlen = (size_t)snprintf(tok, sizeof tok, "\\\\");
        } else if (n == 1 && (cp == '\n' || cp == '\r' || cp == '\t')) {
            tlen = (size_t)snprintf(tok, sizeof tok, "\\%c",
                                    cp == '\n'   ? 'n'
                                    : cp == '\r' ? 'r'
                                                 : 't');
        } else if (n == 0) {
            n = 1;
            tlen = (size_t)snprintf(tok, sizeof tok, "\\x%02x", u[i]);
        } else if (unsafe(cp)) {
            tlen = 0;
            for (size_t k = 0; k < n; k++)
                tlen += (size_t)snprintf(tok + tlen, sizeof tok - tlen, "\\x%02x", u[i + k]);
        } else {
            memcpy(tok, u + i, n);
            tlen = n;
        }
        tcols = n == tlen ? 1 : tlen;
        /* Cut so that the ellipsis still fits within width, unless this is the end. */
        if (width && cols + tcols > width - 1 && (i + n < len || cols + tcols > width)) {
            memcpy(out + o, ellipsis, sizeof ellipsis - 1);
            o += sizeof ellipsis - 1;
            break;
        }
        memcpy(out + o, tok, tlen);
        o += tlen;
        cols += tcols;
        i += n;
    }
    out[o] = '\0';
    return out;
}

json_t *text_json(const char *s, size_t len) {
    if (!s)
        return json_null();
    /* U+FFFD takes 3 bytes where the byte it replaces took 1. */
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned cp;
        size_t n = utf8_seq(u + i, len - i, &cp);
        if (n) {
            memcpy(buf + o, u + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

void text_iso_ms(int64_t ms, char *buf, size_t len) {
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "%lld", (long long)ms);
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}
