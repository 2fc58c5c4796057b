/* opts.c: the option parsers bg's programs share: durations, times, whole numbers and queue
 * lists (docs/schema.md#formats), and the defaults taken from the environment. Every string a user
 * or an environment variable hands a program passes through one of these, so each is strict: the
 * whole string must parse, or the caller reports a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bg_common.h"

/* Durations above this many ms (2^53, about 285,000 years) are refused so a caller can convert
 * them to int64_t without overflow and without losing whole milliseconds. */
#define MAX_DURATION_MS 9007199254740992.0

/* The latest time accepted: 9999-12-31T23:59:59.999Z, the end of ISO 8601's four-digit years. */
#define MAX_TIME_MS 253402300799999LL

static int is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

/* Multiplier of a duration's unit in ms; 0 for an unknown unit. An empty unit means seconds. */
static double unit_ms(const char *u) {
    static const struct {
        const char *name;
        double ms;
    } units[] = {{"", 1000.0},   {"ms", 1.0},      {"s", 1000.0},
                 {"m", 60000.0}, {"h", 3600000.0}, {"d", 86400000.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(u, units[i].name) == 0)
            return units[i].ms;
    return 0;
}

int bgc_parse_duration_ms(const char *s, double *ms) {
    /* The number is checked by hand first: strtod alone would take leading blanks, signs, hex,
     * exponents, "inf" and "nan", none of which is a duration. */
    size_t i = 0, digits = 0;
    char num[64];
    if (!s)
        return -1;
    while (is_digit(s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (is_digit(s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0 || i >= sizeof num)
        return -1;
    double mult = unit_ms(s + i);
    if (mult == 0)
        return -1;
    memcpy(num, s, i);
    num[i] = '\0';
    double v = strtod(num, NULL) * mult;
    if (!(v >= 0 && v <= MAX_DURATION_MS))
        return -1;
    *ms = v;
    return 0;
}

/* Reads exactly n digits at s into *out. */
static int fixed_digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int year, int month) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* Parses the "Z" or "±HH:MM" that ends an ISO 8601 time into seconds east of UTC. */
static int parse_offset(const char *s, long *offset_s) {
    int hh, mm;
    if (strcmp(s, "Z") == 0) {
        *offset_s = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || fixed_digits(s + 1, 2, &hh) || s[3] != ':' ||
        fixed_digits(s + 4, 2, &mm) || s[6] != '\0' || hh > 23 || mm > 59)
        return -1;
    *offset_s = (s[0] == '-' ? -1L : 1L) * (hh * 3600L + mm * 60L);
    return 0;
}

/* YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM). The fraction takes 1 to 9 digits (what date, Python
 * and JavaScript print) and is cut to whole milliseconds. */
static int parse_iso(const char *s, int64_t *ms) {
    struct tm tm;
    int y, mo, d, h, mi, sec, frac_ms = 0;
    long offset_s;
    if (fixed_digits(s, 4, &y) || s[4] != '-' || fixed_digits(s + 5, 2, &mo) || s[7] != '-' ||
        fixed_digits(s + 8, 2, &d) || s[10] != 'T' || fixed_digits(s + 11, 2, &h) || s[13] != ':' ||
        fixed_digits(s + 14, 2, &mi) || s[16] != ':' || fixed_digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; is_digit(*p); p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n < 1 || n > 9)
            return -1;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    if (parse_offset(p, &offset_s))
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    int64_t v = ((int64_t)t - offset_s) * 1000 + frac_ms;
    if (v < 0 || v > MAX_TIME_MS)
        return -1;
    *ms = v;
    return 0;
}

int bgc_parse_time_ms(const char *s, int64_t *ms) {
    long long v;
    if (!s)
        return -1;
    if (strlen(s) >= 20 && s[4] == '-')
        return parse_iso(s, ms);
    if (bgc_parse_int(s, 0, MAX_TIME_MS, &v))
        return -1;
    *ms = v;
    return 0;
}

int bgc_parse_liveness(const char *s, bg_liveness *out) {
    if (s && strcmp(s, "clientid") == 0)
        *out = BG_LIVENESS_CLIENTID;
    else if (s && strcmp(s, "lease") == 0)
        *out = BG_LIVENESS_LEASE;
    else
        return -1;
    return 0;
}

int bgc_parse_int(const char *s, long long min, long long max, long long *out) {
    char *end;
    /* strtoll would skip blanks and take a '+': a number on a command line has neither. */
    if (!s || !(is_digit(s[0]) || (s[0] == '-' && is_digit(s[1]))))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void set_err(char *err, size_t errlen, const char *s, size_t n) {
    if (!err || errlen == 0)
        return;
    if (n >= errlen)
        n = errlen - 1;
    memcpy(err, s, n);
    err[n] = '\0';
}

/* Appends a copy of name[0..n) to the list, unless it is there already: a queue named twice
 * (-q high -q high,low) means nothing more than once. */
static int list_add(char ***list, size_t *count, const char *name, size_t n) {
    for (size_t i = 0; i < *count; i++)
        if (strlen((*list)[i]) == n && memcmp((*list)[i], name, n) == 0)
            return 0;
    char **grown = realloc(*list, sizeof *grown * (*count + 1));
    if (!grown)
        return -1;
    *list = grown;
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, n);
    copy[n] = '\0';
    grown[(*count)++] = copy;
    return 0;
}

int bgc_parse_queues(const char *s, char ***list, size_t *n, char *err, size_t errlen) {
    char name[130];
    if (!s) {
        set_err(err, errlen, "", 0);
        return -1;
    }
    for (;;) {
        size_t len = strcspn(s, ",");
        /* A name too long for the buffer is invalid anyway (at most 128 characters). */
        size_t take = len < sizeof name - 1 ? len : sizeof name - 1;
        memcpy(name, s, take);
        name[take] = '\0';
        if (len != take || !bg_queue_valid(name)) {
            set_err(err, errlen, s, len);
            return -1;
        }
        if (list_add(list, n, s, len)) {
            set_err(err, errlen, "out of memory", 13);
            return -1;
        }
        if (s[len] == '\0')
            return 0;
        s += len + 1;
    }
}

void bgc_free_list(char **list, size_t n) {
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* getenv that treats an empty variable as unset, as shells and Docker often leave them. */
static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *bgc_default_url(void) {
    const char *v = env("BG_REDIS_URL");
    if (!v)
        v = env("REDIS_URL");
    return v ? v : BG_DEFAULT_URL;
}

const char *bgc_default_ns(void) {
    const char *v = env("BG_NAMESPACE");
    return v ? v : BG_DEFAULT_NAMESPACE;
}

static const char *const tls_flags[] = {"--tls-ca-cert", "--tls-cert", "--tls-key",
                                        "--tls-server-name"};
static const char *const tls_vars[] = {"BG_TLS_CA_CERT", "BG_TLS_CERT", "BG_TLS_KEY",
                                       "BG_TLS_SERVER_NAME"};

static const char **tls_field(bg_tls_options *t, int i) {
    const char **fields[] = {&t->ca_cert, &t->cert, &t->key, &t->server_name};
    return fields[i];
}

void bgc_tls_init(bgc_tls *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 4; i++)
        if ((*tls_field(&t->tls, i) = env(tls_vars[i])) != NULL)
            t->from[i] = tls_vars[i];
}

int bgc_tls_option(bgc_tls *t, int ch, const char *arg) {
    int i = ch - BGC_OPT_TLS_CA_CERT;
    if (i < 0 || i > 3)
        return 0;
    *tls_field(&t->tls, i) = arg;
    t->from[i] = tls_flags[i];
    return 1;
}

void bgc_tls_usage(FILE *f, int col) {
    static const char *const lines[][2] = {
        {"--tls-ca-cert FILE", "for rediss://: the CAs to trust (default\n"
                               "$BG_TLS_CA_CERT, else the system's)"},
        {"--tls-cert FILE", "client certificate, for mutual TLS ($BG_TLS_CERT)"},
        {"--tls-key FILE", "its private key ($BG_TLS_KEY)"},
        {"--tls-server-name N", "the name the server's certificate must hold\n"
                                "(default $BG_TLS_SERVER_NAME, else the URL's host)"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        int w = fprintf(f, "      %s", lines[i][0]);
        fprintf(f, "%*s", w + 2 > col ? 2 : col - w, "");
        for (const char *t = lines[i][1]; *t; t++)
            if (*t == '\n')
                fprintf(f, "\n%*s", col, "");
            else
                fputc(*t, f);
        fputc('\n', f);
    }
}

int bgc_tls_check(const bgc_tls *t, const char *url, char *err, size_t errlen) {
    bg_tls_options tls = t->tls;
    for (int i = 0; i < 4; i++) {
        const char *v = *tls_field(&tls, i);
        if (!v)
            continue;
        if (!url || strncmp(url, "rediss://", 9) != 0) {
            snprintf(err, errlen, "%s needs a rediss:// URL", t->from[i]);
            return -1;
        }
        if (!*v) {
            snprintf(err, errlen, "%s is empty", t->from[i]);
            return -1;
        }
        if (i == 3)
            continue;
        /* Opened here, not only by OpenSSL, so the message names the option and the file. */
        FILE *f = fopen(v, "r");
        if (!f) {
            snprintf(err, errlen, "cannot read %s '%s': %s", t->from[i], v, strerror(errno));
            return -1;
        }
        fclose(f);
    }
    return 0;
}
