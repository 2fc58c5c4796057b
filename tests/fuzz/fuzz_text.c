/* fuzz_text.c: feeds arbitrary bytes to the text helpers of util.c that see data from jobs and
 * from Redis: bg__utf8_cut, which cuts error messages to BG__MSG_MAX bytes, and bg__parse_ll,
 * the checked number parser. Checks the cut is a terminated prefix within max bytes that splits
 * no valid UTF-8 character, and that a parsed number is what strtoll reads. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length of the well-formed UTF-8 character at s[i] (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when none starts there. */
static size_t utf8_char(const uint8_t *s, size_t len, size_t i) {
    uint8_t c = s[i];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
    return n;
}

static int utf8_valid(const uint8_t *s, size_t len) {
    for (size_t i = 0, n; i < len; i += n)
        if ((n = utf8_char(s, len, i)) == 0)
            return 0;
    return 1;
}

static void check_cut(const uint8_t *data, size_t size, size_t max, int valid) {
    /* Exactly the max + 1 bytes the contract asks for, so a write past them is seen. */
    char *out = malloc(max + 1);
    if (!out)
        return;
    memset(out, 0xAA, max + 1);
    size_t n = bg__utf8_cut((const char *)data, size, max, out);
    if (n > max || n > size || out[n] != '\0' || memcmp(out, data, n) != 0)
        abort();
    /* Nothing is cut from what fits. */
    if (size <= max && n != size)
        abort();
    /* No well-formed character of the input starts before the cut and ends after it. */
    for (size_t i = n > 3 ? n - 3 : 0; i < n; i++) {
        if (i + utf8_char(data, size, i) > n)
            abort();
    }
    /* From valid UTF-8, at most one character (up to 4 bytes) is dropped beyond max. */
    if (valid && size > max && n + 3 < max)
        abort();
    free(out);
}

/* Parses the first len bytes from a heap copy of exactly len bytes, so a read past them is
 * seen, and compares an accepted number with strtoll on a terminated copy. */
static void check_ll(const uint8_t *data, size_t len) {
    char *s = malloc(len ? len : 1), *z = malloc(len + 1);
    if (!s || !z)
        abort();
    memcpy(s, data, len);
    memcpy(z, data, len);
    z[len] = '\0';
    long long v = 12345;
    int rc = bg__parse_ll(s, len, &v);
    if (rc == 0) {
        errno = 0;
        long long want = strtoll(z, NULL, 10);
        if (errno != 0 || v != want || len == 0)
            abort();
        /* Only exactly -?[0-9]+ is accepted. */
        for (size_t i = z[0] == '-'; i < len; i++)
            if (z[i] < '0' || z[i] > '9')
                abort();
        if (len == (size_t)(z[0] == '-'))
            abort();
    } else if (rc != -1 || v != 12345) {
        /* A refused number leaves *out alone. */
        abort();
    } else {
        /* A plain decimal (an optional "-" and 1 to 18 digits, always in range) is never
         * refused. */
        size_t i = z[0] == '-';
        while (i < len && z[i] >= '0' && z[i] <= '9')
            i++;
        size_t digits = i - (z[0] == '-');
        if (i == len && digits > 0 && digits < 19)
            abort();
    }
    free(s);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int valid = utf8_valid(data, size);
    /* Small limits, and the 1 KiB an attempt's message is cut to (BG__MSG_MAX). */
    static const size_t maxes[] = {0, 1, 2, 3, 4, 5, 7, 64, 1024};
    for (size_t i = 0; i < sizeof maxes / sizeof *maxes; i++)
        check_cut(data, size, maxes[i], valid);
    check_cut(data, size, size / 2, valid);
    if (size > 0)
        check_cut(data, size, size - 1, valid);
    check_cut(data, size, size, valid);
    check_cut(data, size, size + 1, valid);

    for (size_t len = 0; len <= size && len <= 40; len++)
        check_ll(data, len);
    if (size > 40)
        check_ll(data, size);
    long long v = 7;
    if (bg__parse_ll(NULL, 0, &v) != -1 || v != 7)
        abort();
    return 0;
}
