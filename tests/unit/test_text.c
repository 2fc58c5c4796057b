/* test_text.c: how bg-cli makes bytes from Redis safe to print (common/text.c): escapes,
 * cutting on a character with an ellipsis, JSON of bytes that are not UTF-8, ISO times; and the
 * multi-row table and the latency column of bg-cli/table.c. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bg-cli/table.c"
#include "../../common/text.c"

static void expect_escape(const char *in, size_t len, size_t width, const char *want) {
    char *got = text_escape(in, len, width);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_escape(void **state) {
    (void)state;
    expect_escape(NULL, 0, 0, "-");
    expect_escape("plain text", 10, 0, "plain text");
    expect_escape("a\nb\rc\td\\e", 9, 0, "a\\nb\\rc\\td\\\\e");
    expect_escape("\x1b[31m\x00\x7f", 7, 0, "\\x1b[31m\\x00\\x7f");
    expect_escape("h\xc3\xa9llo", 6, 0, "h\xc3\xa9llo");
    /* Not UTF-8: a lone continuation byte, a cut sequence, an overlong form, a surrogate. */
    expect_escape("\x80\xe2\x82\xc0\xaf\xed\xa0\x80", 8, 0,
                  "\\x80\\xe2\\x82\\xc0\\xaf\\xed\\xa0\\x80");
    /* C1 controls and a bidi override are escaped byte by byte. */
    expect_escape("\xc2\x9b\xe2\x80\xae", 5, 0, "\\xc2\\x9b\\xe2\\x80\\xae");
}

static void test_cut(void **state) {
    (void)state;
    expect_escape("abcde", 5, 5, "abcde");
    expect_escape("abcdef", 6, 5, "abcd\xe2\x80\xa6");
    expect_escape("abcd\n", 5, 5, "abcd\xe2\x80\xa6");
    /* A multi-byte character counts once and is never split. */
    expect_escape("\xc3\xa9\xc3\xa9\xc3\xa9", 6, 3, "\xc3\xa9\xc3\xa9\xc3\xa9");
    expect_escape("\xc3\xa9\xc3\xa9\xc3\xa9x", 7, 3, "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
    /* An escape is not split either. */
    expect_escape("ab\x01", 3, 4, "ab\xe2\x80\xa6");
}

static void test_json(void **state) {
    (void)state;
    json_t *j = text_json("a\x00\xff"
                          "b",
                          4);
    assert_non_null(j);
    assert_int_equal(json_string_length(j), 6);
    assert_memory_equal(json_string_value(j),
                        "a\x00\xef\xbf\xbd"
                        "b",
                        6);
    json_decref(j);
    j = text_json(NULL, 0);
    assert_true(json_is_null(j));
    json_decref(j);
}

static void test_iso(void **state) {
    (void)state;
    char buf[40];
    text_iso_ms(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    text_iso_ms(1795428000123LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-23T10:00:00.123Z");
    text_iso_ms(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

static char *capture_rows(const char *const *headers, size_t ncols, const char *const *cells,
                          size_t nrows) {
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    table_rows(f, headers, ncols, cells, nrows, 0);
    fclose(f);
    return out;
}

static void test_rows(void **state) {
    (void)state;
    const char *headers[] = {"job", "msg"};
    const char *cells[] = {"a", "h\xc3\xa9", "long-job", "x"};
    char *out = capture_rows(headers, 2, cells, 2);
    assert_string_equal(out, "     job msg\n"
                             "       a  h\xc3\xa9\n"
                             "long-job   x\n");
    free(out);
}

static void test_latency_column(void **state) {
    (void)state;
    bg_queue_status a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.name = "a";
    a.latency_ms = 1234567;
    b.name = "b";
    b.latency_ms = -1;
    const bg_queue_status *qs[] = {&a, &b};
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    table_queues_v(f, qs, 2, 0, 1);
    fclose(f);
    assert_string_equal(
        out, "a\n"
             "workers fibers jps ready scheduled processing completed failed dead latency\n"
             "      0      0   0     0         0          0         0      0    0 1234567\n"
             "\n"
             "b\n"
             "workers fibers jps ready scheduled processing completed failed dead latency\n"
             "      0      0   0     0         0          0         0      0    0       -\n");
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape), cmocka_unit_test(test_cut),
        cmocka_unit_test(test_json),   cmocka_unit_test(test_iso),
        cmocka_unit_test(test_rows),   cmocka_unit_test(test_latency_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
