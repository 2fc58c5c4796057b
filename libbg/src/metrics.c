/* metrics.c: the figures of status and workers in the Prometheus text exposition format 0.0.4,
 * built once here so `bg-cli metrics` and the watcher's /metrics serve the same text
 * (docs/operations.md#metrics). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s (of at most len bytes), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xe0) == 0xc0 ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (!n || n > len || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* A label value as the format wants it: backslash, double quote and newline escaped, and (the
 * text must be UTF-8) each byte that is not part of valid UTF-8 replaced by U+FFFD. Bytes from
 * a heartbeat hash may have been written by anyone. */
static void label_value(buf *b, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    put(b, "\"", 1);
    for (size_t i = 0; s && i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n) {
            put(b, "\xef\xbf\xbd", 3);
            i++;
        } else if (p[i] == '\\' || p[i] == '"') {
            put(b, "\\", 1);
            put(b, (const char *)p + i, 1);
            i++;
        } else if (p[i] == '\n') {
            put(b, "\\n", 2);
            i++;
        } else {
            put(b, (const char *)p + i, n);
            i += n;
        }
    }
    put(b, "\"", 1);
}

static void family(buf *b, const char *name, const char *type, const char *help) {
    putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family with a sample for each queue; field is the offset of its figure. */
typedef struct {
    const char *name, *type, *help;
    size_t field;
} queue_metric;

#define QM(name, type, help, f)                                                                    \
    { name, type, help, offsetof(bg_queue_status, f) }
static const queue_metric queue_metrics[] = {
    QM("bg_jobs_completed_total", "counter", "Attempts completed successfully, lifetime.",
       completed),
    QM("bg_jobs_failed_total", "counter", "Attempts failed, lifetime (every err counts).", failed),
    QM("bg_jobs_dead_total", "counter", "Jobs that failed with no retry left, lifetime.", dead),
    QM("bg_queue_ready", "gauge", "Jobs waiting in the ready list.", ready),
    QM("bg_queue_scheduled", "gauge", "Jobs waiting for their time or their retry.", scheduled),
    QM("bg_queue_processing", "gauge", "Attempts running now.", processing),
    QM("bg_queue_workers", "gauge", "Live worker processes that take from the queue.", workers),
    QM("bg_queue_fibers", "gauge", "Live fibers of those workers.", fibers),
    QM("bg_queue_jobs_per_second", "gauge", "Attempts completed in the last second.", jps),
    QM("bg_queue_paused", "gauge", "1 when the queue is paused (bg-cli pause), else 0.", paused),
};

static void queues_text(buf *b, const bg_status *st) {
    size_t n = bg_status_count(st);
    for (size_t m = 0; m < sizeof queue_metrics / sizeof queue_metrics[0]; m++) {
        const queue_metric *qm = &queue_metrics[m];
        family(b, qm->name, qm->type, qm->help);
        for (size_t i = 0; i < n; i++) {
            const bg_queue_status *q = bg_status_queue(st, i);
            int64_t v = *(const int64_t *)(const void *)((const char *)q + qm->field);
            putf(b, "%s{queue=", qm->name);
            label_value(b, q->name, strlen(q->name));
            putf(b, "} %lld\n", (long long)v);
        }
    }
    family(b, "bg_queue_latency_seconds", "gauge",
           "Age of the oldest ready job (0 when none waits; absent when unknown).");
    for (size_t i = 0; i < n; i++) {
        const bg_queue_status *q = bg_status_queue(st, i);
        if (q->latency_ms < 0)
            continue;
        put(b, "bg_queue_latency_seconds{queue=", 31);
        label_value(b, q->name, strlen(q->name));
        putf(b, "} %.3f\n", (double)q->latency_ms / 1000.0);
    }
}

/* The workers' labels: host and pid; two hashes of one process (a moment after its main
 * connection changed) give one series, the newest. */
static int same_process(const bg_worker_info *a, const bg_worker_info *b) {
    return a->pid == b->pid && a->host.len == b->host.len &&
           (a->host.len == 0 || memcmp(a->host.s, b->host.s, a->host.len) == 0);
}

static void worker_labels(buf *b, const bg_worker_info *w) {
    put(b, "{host=", 6);
    label_value(b, w->host.s, w->host.len);
    putf(b, ",pid=\"%lld\"}", (long long)w->pid);
}

static void workers_text(buf *b, const bg_workers *l) {
    static const char *const names[] = {"bg_worker_fibers", "bg_worker_busy",
                                        "bg_worker_start_time_seconds", "bg_worker_quiet"};
    static const char *const helps[] = {
        "Fibers of the worker process.", "Fibers of the worker process running a job now.",
        "When the worker process started, seconds since the epoch (the Redis server's clock).",
        "1 while the worker process takes no new job (quiet or stopping)."};
    size_t n = bg_workers_count(l), live = 0;
    for (size_t i = 0; i < n; i++)
        live += i + 1 == n || !same_process(bg_workers_get(l, i), bg_workers_get(l, i + 1));
    family(b, "bg_workers", "gauge", "Live worker processes.");
    putf(b, "bg_workers %zu\n", live);
    for (size_t m = 0; m < sizeof names / sizeof names[0]; m++) {
        family(b, names[m], "gauge", helps[m]);
        for (size_t i = 0; i < n; i++) {
            const bg_worker_info *w = bg_workers_get(l, i);
            /* Sorted by host, pid, ID: the last of a run of one process is its newest. */
            if (i + 1 < n && same_process(w, bg_workers_get(l, i + 1)))
                continue;
            int64_t v = m == 0 ? w->fibers : m == 1 ? w->busy : m == 2 ? w->started_ms : 0;
            if (m == 3 && w->state.s)
                v = strcmp(w->state.s, "running") != 0;
            else if (m == 3 || v < 0)
                continue; /* a field the hash lacks: no sample rather than a made-up one */
            put(b, names[m], strlen(names[m]));
            worker_labels(b, w);
            if (m == 2)
                putf(b, " %.3f\n", (double)v / 1000.0);
            else
                putf(b, " %lld\n", (long long)v);
        }
    }
}

int bg_metrics_text(bg_client *c, const char *const *queues, size_t nqueues, char **out,
                    size_t *len) {
    bg_status *st = NULL;
    bg_workers *l = NULL;
    buf b = {NULL, 0, 0, 0};
    *out = NULL;
    if (len)
        *len = 0;
    int rc = bg_status_read(c, queues, nqueues, &st);
    if (rc == BG_OK)
        rc = bg_workers_list(c, &l);
    if (rc == BG_OK) {
        queues_text(&b, st);
        workers_text(&b, l);
        family(&b, "bg_scrape_duration_seconds", "gauge", "How long reading the figures took.");
        putf(&b, "bg_scrape_duration_seconds %.6f\n", bg_status_time_ms(st) / 1000.0);
        if (b.oom || !b.s) {
            free(b.s);
            rc = bg__client_fail(c, BG_ENOMEM, "metrics: out of memory");
        } else {
            *out = b.s;
            if (len)
                *len = b.len;
        }
    }
    bg_status_free(st);
    bg_workers_free(l);
    return rc;
}
