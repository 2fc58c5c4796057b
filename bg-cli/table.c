/* table.c: formats bg-cli's tables (SPEC §8). Kept apart from the commands, and free of Redis,
 * so the unit tests can check the layout byte for byte. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "table.h"

#define BOLD "\033[1m"
#define RESET "\033[0m"

static size_t max_size(size_t a, size_t b) {
    return a > b ? a : b;
}

/* Writes s padded to width, on the side align says; the last left-aligned cell is not padded
 * so no line ends in spaces. */
static void cell(FILE *f, const char *s, size_t width, table_align align, int last) {
    size_t len = strlen(s);
    int pad = (int)(width - len);
    if (align == TABLE_RIGHT)
        fprintf(f, "%*s%s", pad, "", s);
    else if (last)
        fputs(s, f);
    else
        fprintf(f, "%s%*s", s, pad, "");
}

void table_print(FILE *f, const table_col *cols, size_t n, int bold) {
    if (bold)
        fputs(BOLD, f);
    for (size_t i = 0; i < n; i++) {
        size_t w = max_size(strlen(cols[i].header), strlen(cols[i].value));
        if (i)
            fputc(' ', f);
        cell(f, cols[i].header, w, cols[i].align, i + 1 == n);
    }
    if (bold)
        fputs(RESET, f);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        size_t w = max_size(strlen(cols[i].header), strlen(cols[i].value));
        if (i)
            fputc(' ', f);
        cell(f, cols[i].value, w, cols[i].align, i + 1 == n);
    }
    fputc('\n', f);
}

void table_queue(FILE *f, const bg_queue_status *q, int bold) {
    static const char *const headers[] = {"workers",    "fibers",    "jps",    "ready", "scheduled",
                                          "processing", "completed", "failed", "dead"};
    const int64_t figures[] = {q->workers,    q->fibers,    q->jps,    q->ready, q->scheduled,
                               q->processing, q->completed, q->failed, q->dead};
    enum { N = sizeof headers / sizeof headers[0] };
    char text[N][24];
    table_col cols[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "%lld", (long long)figures[i]);
        cols[i] = (table_col){headers[i], text[i], TABLE_RIGHT};
    }
    fprintf(f, "%s\n", q->name);
    table_print(f, cols, N, bold);
}

void table_queues(FILE *f, const bg_queue_status *const *qs, size_t n, int bold) {
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc('\n', f);
        table_queue(f, qs[i], bold);
    }
}

void table_info(FILE *f, double time_ms, const char *url, const char *ns, const char *queues,
                int bold) {
    char ms[32];
    snprintf(ms, sizeof ms, "%.3f", time_ms);
    const table_col cols[] = {
        {"time", ms, TABLE_RIGHT},
        {"url", url, TABLE_RIGHT},
        {"namespace", ns, TABLE_RIGHT},
        {"queues", queues && *queues ? queues : "-", TABLE_RIGHT},
    };
    table_print(f, cols, sizeof cols / sizeof cols[0], bold);
}
