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

static void queue_block(FILE *f, const bg_queue_status *q, int bold, int latency) {
    static const char *const headers[] = {"workers",    "fibers",    "jps",    "ready", "scheduled",
                                          "processing", "completed", "failed", "dead",  "latency"};
    const int64_t figures[] = {q->workers,    q->fibers,    q->jps,    q->ready, q->scheduled,
                               q->processing, q->completed, q->failed, q->dead,  q->latency_ms};
    enum { N = sizeof headers / sizeof headers[0] };
    char text[N][24];
    table_col cols[N];
    for (size_t i = 0; i < N; i++) {
        if (figures[i] < 0 && i == N - 1)
            snprintf(text[i], sizeof text[i], "-");
        else
            snprintf(text[i], sizeof text[i], "%lld", (long long)figures[i]);
        cols[i] = (table_col){headers[i], text[i], TABLE_RIGHT};
    }
    fprintf(f, "%s%s\n", q->name, q->paused ? " (paused)" : "");
    table_print(f, cols, latency ? N : N - 1, bold);
}

void table_queue(FILE *f, const bg_queue_status *q, int bold) {
    queue_block(f, q, bold, 0);
}

void table_queues_v(FILE *f, const bg_queue_status *const *qs, size_t n, int bold, int latency) {
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc('\n', f);
        queue_block(f, qs[i], bold, latency);
    }
}

void table_queues(FILE *f, const bg_queue_status *const *qs, size_t n, int bold) {
    table_queues_v(f, qs, n, bold, 0);
}

/* Characters on screen of UTF-8 text: one per code point (the bytes that are no continuation
 * bytes). */
static size_t text_cols(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* One line of a table_rows() table: the cells right-aligned to their column's width. */
static void row_line(FILE *f, const char *const *cells, const size_t *width, size_t ncols) {
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            fputc(' ', f);
        fprintf(f, "%*s%s", (int)(width[i] - text_cols(cells[i])), "", cells[i]);
    }
    fputc('\n', f);
}

void table_rows(FILE *f, const char *const *headers, size_t ncols, const char *const *cells,
                size_t nrows, int bold) {
    size_t width[16];
    if (ncols > sizeof width / sizeof width[0])
        ncols = sizeof width / sizeof width[0];
    for (size_t i = 0; i < ncols; i++) {
        width[i] = text_cols(headers[i]);
        for (size_t r = 0; r < nrows; r++)
            width[i] = max_size(width[i], text_cols(cells[r * ncols + i]));
    }
    if (bold)
        fputs(BOLD, f);
    /* The header line is printed without its newline inside the bold codes. */
    for (size_t i = 0; i < ncols; i++) {
        if (i)
            fputc(' ', f);
        fprintf(f, "%*s%s", (int)(width[i] - text_cols(headers[i])), "", headers[i]);
    }
    if (bold)
        fputs(RESET, f);
    fputc('\n', f);
    for (size_t r = 0; r < nrows; r++)
        row_line(f, cells + r * ncols, width, ncols);
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
