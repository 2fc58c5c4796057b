/* test_table.c: bg-cli's table layout (bg-cli/table.c), byte for byte: column widths,
 * alignment, the example of docs/cli.md, the -v table, and bold headers only when asked. No
 * Redis. table.c is compiled in here, as it belongs to bg-cli rather than to a library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bg-cli/table.c"

/* Runs the formatter into memory and returns what it wrote (free it). */
#define CAPTURE(out, call)                                                                         \
    do {                                                                                           \
        size_t capture_len_;                                                                       \
        FILE *f = open_memstream(&(out), &capture_len_);                                           \
        assert_non_null(f);                                                                        \
        call;                                                                                      \
        fclose(f);                                                                                 \
    } while (0)

static bg_queue_status queue(const char *name, int64_t first, int64_t completed) {
    bg_queue_status q;
    memset(&q, 0, sizeof q);
    q.name = name;
    q.workers = first;
    q.fibers = first;
    q.completed = completed;
    return q;
}

/* docs/cli.md's example of status, reproduced byte for byte. */
static void test_docs_example(void **state) {
    (void)state;
    char *out = NULL;
    bg_queue_status q = queue("high", 4, 500000);
    CAPTURE(out, table_queue(f, &q, 0));
    assert_string_equal(out,
                        "high\n"
                        "workers fibers jps ready scheduled processing completed failed dead\n"
                        "      4      4   0     0         0          0    500000      0    0\n");
    free(out);
}

/* A number wider than its header widens the column; the header is right-aligned too. */
static void test_wide_numbers(void **state) {
    (void)state;
    char *out = NULL;
    bg_queue_status q = queue("default", 12345678, 1);
    q.jps = 12345;
    q.ready = 1234567890123LL;
    q.dead = -1;
    CAPTURE(out, table_queue(f, &q, 0));
    assert_string_equal(out, "default\n"
                             " workers   fibers   jps         ready scheduled processing "
                             "completed failed dead\n"
                             "12345678 12345678 12345 1234567890123         0          0 "
                             "        1      0   -1\n");
    free(out);
}

static void test_blank_line_between_queues(void **state) {
    (void)state;
    char *out = NULL;
    bg_queue_status a = queue("high", 1, 2), b = queue("low", 0, 0);
    const bg_queue_status *qs[] = {&a, &b};
    CAPTURE(out, table_queues(f, qs, 2, 0));
    assert_string_equal(out,
                        "high\n"
                        "workers fibers jps ready scheduled processing completed failed dead\n"
                        "      1      1   0     0         0          0         2      0    0\n"
                        "\n"
                        "low\n"
                        "workers fibers jps ready scheduled processing completed failed dead\n"
                        "      0      0   0     0         0          0         0      0    0\n");
    free(out);
    CAPTURE(out, table_queues(f, qs, 0, 0));
    assert_string_equal(out, "");
    free(out);
}

/* Right- and left-aligned columns; no line ends in spaces. */
static void test_alignment(void **state) {
    (void)state;
    char *out = NULL;
    const table_col cols[] = {
        {"n", "12345", TABLE_RIGHT},
        {"name", "x", TABLE_LEFT},
        {"longheader", "v", TABLE_RIGHT},
        {"last", "a-long-value", TABLE_LEFT},
    };
    CAPTURE(out, table_print(f, cols, 4, 0));
    assert_string_equal(out, "    n name longheader last\n"
                             "12345 x             v a-long-value\n");
    free(out);
    const table_col tail[] = {{"a", "1", TABLE_RIGHT}, {"header", "v", TABLE_LEFT}};
    CAPTURE(out, table_print(f, tail, 2, 0));
    assert_string_equal(out, "a header\n1 v\n");
    free(out);
}

/* The -v table, "like the others" (docs/cli.md): every column right-aligned, time with three
 * decimals. */
static void test_info(void **state) {
    (void)state;
    char *out = NULL;
    CAPTURE(out, table_info(f, 0.4126, "redis://:***@127.0.0.1:6379/0", "bg", "high,low", 0));
    assert_string_equal(out, " time                           url namespace   queues\n"
                             "0.413 redis://:***@127.0.0.1:6379/0        bg high,low\n");
    free(out);
    CAPTURE(out, table_info(f, 1234.5, "unix:///r.sock", "onyx-background", "", 0));
    assert_string_equal(out, "    time            url       namespace queues\n"
                             "1234.500 unix:///r.sock onyx-background      -\n");
    free(out);
}

/* Bold wraps the header line only, and changes no widths. */
static void test_bold(void **state) {
    (void)state;
    char *out = NULL;
    bg_queue_status q = queue("high", 4, 500000);
    CAPTURE(out, table_queue(f, &q, 1));
    assert_string_equal(
        out, "high\n"
             "\033[1mworkers fibers jps ready scheduled processing completed failed dead\033[0m\n"
             "      4      4   0     0         0          0    500000      0    0\n");
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_example),
        cmocka_unit_test(test_wide_numbers),
        cmocka_unit_test(test_blank_line_between_queues),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_bold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
