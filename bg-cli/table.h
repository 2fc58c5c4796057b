/* table.h: the tables bg-cli prints (SPEC §8): a header line and one row, each column as wide
 * as the wider of its header and its value, one space between columns. */
#ifndef BG_CLI_TABLE_H
#define BG_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "bg/bg.h"

typedef enum { TABLE_RIGHT = 0, TABLE_LEFT = 1 } table_align;

/* One column: its header, its value, and which side the shorter of the two is padded on. */
typedef struct {
    const char *header;
    const char *value;
    table_align align;
} table_col;

/* Writes the header line and the row of n columns to f. No line ends in spaces: a left-aligned
 * last column is not padded. With bold (a terminal), the header line is wrapped in the ANSI
 * bold and reset codes, which take no room on screen. */
void table_print(FILE *f, const table_col *cols, size_t n, int bold);

/* Writes one queue's block: its name on a line (with " (paused)" after it for a paused
 * queue), then the header and row of the columns
 * workers fibers jps ready scheduled processing completed failed dead, all right-aligned. */
void table_queue(FILE *f, const bg_queue_status *q, int bold);

/* Writes the blocks of n queues with a blank line between them. */
void table_queues(FILE *f, const bg_queue_status *const *qs, size_t n, int bold);

/* As table_queues(), with latency non-zero adding the column latency after dead (`status -v`):
 * the age of the oldest ready job in ms, "-" when unknown. */
void table_queues_v(FILE *f, const bg_queue_status *const *qs, size_t n, int bold, int latency);

/* Writes a header line and nrows rows of ncols cells (cells row after row), each column as wide
 * as the widest of its header and cells in characters (UTF-8), right-aligned, one space between
 * columns. Cells must be printable: escape what came from Redis first (text.h). */
void table_rows(FILE *f, const char *const *headers, size_t ncols, const char *const *cells,
                size_t nrows, int bold);

/* Writes the two-line table of `status -v`: time (ms with three decimals, right-aligned, as
 * numbers are), url, namespace and queues (comma-joined; "-" when there are none), the text
 * columns left-aligned so they read from where they start. */
void table_info(FILE *f, double time_ms, const char *url, const char *ns, const char *queues,
                int bold);

#endif
