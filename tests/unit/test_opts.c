/* test_opts.c: the option parsers the programs share (common/opts.c): durations, times, whole
 * numbers, queue lists and the environment defaults. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bg_common.h"

static void dur_ok(const char *s, double want) {
    double ms = -1;
    if (bgc_parse_duration_ms(s, &ms) != 0)
        fail_msg("duration '%s' was refused", s);
    if (ms != want)
        fail_msg("duration '%s' gave %f ms, want %f", s, ms, want);
}

static void dur_bad(const char *s) {
    double ms = 12345;
    if (bgc_parse_duration_ms(s, &ms) == 0)
        fail_msg("duration '%s' was accepted as %f ms", s, ms);
    assert_true(ms == 12345); /* untouched on failure */
}

static void test_durations(void **state) {
    (void)state;
    dur_ok("30", 30000);
    dur_ok("30s", 30000);
    dur_ok("1.5s", 1500);
    dur_ok("1.5", 1500);
    dur_ok("250ms", 250);
    dur_ok("0.5ms", 0.5);
    dur_ok("5m", 300000);
    dur_ok("2h", 7200000);
    dur_ok("1d", 86400000);
    dur_ok("0", 0);
    dur_ok("0.1", 100);
    dur_ok(".5s", 500);
    dur_ok("007", 7000);
    dur_ok("1.25h", 4500000);
    dur_bad("");
    dur_bad("s");
    dur_bad(".");
    dur_bad("-1");
    dur_bad("+1");
    dur_bad(" 1");
    dur_bad("1 ");
    dur_bad("1 s");
    dur_bad("1x");
    dur_bad("1S");
    dur_bad("1sec");
    dur_bad("1mss");
    dur_bad("1.2.3");
    dur_bad("1e3");
    dur_bad("0x10");
    dur_bad("inf");
    dur_bad("nan");
    dur_bad("1e309");
    dur_bad("99999999999999999999999999d");
    dur_bad("1,5s");
}

static void time_ok(const char *s, int64_t want) {
    int64_t ms = -1;
    if (bgc_parse_time_ms(s, &ms) != 0)
        fail_msg("time '%s' was refused", s);
    if (ms != want)
        fail_msg("time '%s' gave %lld, want %lld", s, (long long)ms, (long long)want);
}

static void time_bad(const char *s) {
    int64_t ms = 0;
    if (bgc_parse_time_ms(s, &ms) == 0)
        fail_msg("time '%s' was accepted as %lld", s, (long long)ms);
}

static void test_times(void **state) {
    (void)state;
    time_ok("0", 0);
    time_ok("1735689600000", 1735689600000LL);
    time_ok("1970-01-01T00:00:00Z", 0);
    time_ok("2025-01-01T00:00:00Z", 1735689600000LL);
    time_ok("2026-11-22T10:00:00Z", 1795341600000LL);
    time_ok("2026-11-22T10:00:00.123Z", 1795341600123LL);
    time_ok("2026-11-22T10:00:00.1Z", 1795341600100LL);
    time_ok("2026-11-22T10:00:00.123456789Z", 1795341600123LL);
    time_ok("2026-11-22T12:00:00+02:00", 1795341600000LL);
    time_ok("2026-11-22T04:30:00-05:30", 1795341600000LL);
    time_ok("2026-11-22T10:00:00.500+00:00", 1795341600500LL);
    time_ok("2026-11-22T10:00:00-00:00", 1795341600000LL);
    /* Offsets that cross midnight and month ends. */
    time_ok("2026-11-23T09:00:00+23:00", 1795341600000LL);
    time_ok("2024-02-29T23:59:59Z", 1709251199000LL); /* a leap day */
    time_ok("2000-02-29T00:00:00Z", 951782400000LL);  /* divisible by 400: leap */
    time_ok("9999-12-31T23:59:59.999Z", 253402300799999LL);
    time_bad("");
    time_bad("-1");
    time_bad("+1");
    time_bad(" 1");
    time_bad("1.5");
    time_bad("1e3");
    time_bad("now");
    time_bad("2026-11-22");
    time_bad("2026-11-22T10:00:00");  /* no zone: ambiguous */
    time_bad("2026-11-22 10:00:00Z"); /* a space for the T */
    time_bad("2026-11-22t10:00:00z");
    time_bad("2026-11-22T10:00Z"); /* no seconds */
    time_bad("2026-1-22T10:00:00Z");
    time_bad("2026-13-01T00:00:00Z");
    time_bad("2026-00-01T00:00:00Z");
    time_bad("2026-11-00T00:00:00Z");
    time_bad("2026-11-31T00:00:00Z"); /* November has 30 days */
    time_bad("2026-02-29T00:00:00Z"); /* not a leap year */
    time_bad("1900-02-29T00:00:00Z"); /* divisible by 100, not 400 */
    time_bad("2026-02-30T25:61:00-05:30");
    time_bad("2026-11-22T24:00:00Z");
    time_bad("2026-11-22T10:60:00Z");
    time_bad("2026-11-22T10:00:60Z");
    time_bad("2026-11-22T10:00:00.Z");
    time_bad("2026-11-22T10:00:00.1234567890Z");
    time_bad("2026-11-22T10:00:00+2:00");
    time_bad("2026-11-22T10:00:00+0200");
    time_bad("2026-11-22T10:00:00+24:00");
    time_bad("2026-11-22T10:00:00+02:60");
    time_bad("2026-11-22T10:00:00+02:00x");
    time_bad("2026-11-22T10:00:00ZZ");
    time_bad("1969-12-31T23:59:59Z"); /* before the epoch */
    time_bad("1970-01-01T00:30:00+01:00");
    time_bad("99999999999999999999");
}

static void int_ok(const char *s, long long min, long long max, long long want) {
    long long v = 0;
    if (bgc_parse_int(s, min, max, &v) != 0)
        fail_msg("number '%s' was refused", s);
    assert_int_equal(v, want);
}

static void int_bad(const char *s, long long min, long long max) {
    long long v = 77;
    if (bgc_parse_int(s, min, max, &v) == 0)
        fail_msg("number '%s' was accepted as %lld", s, v);
    assert_int_equal(v, 77);
}

static void test_ints(void **state) {
    (void)state;
    int_ok("0", 0, 10, 0);
    int_ok("10", 0, 10, 10);
    int_ok("007", 0, 10, 7);
    int_ok("-5", -5, 5, -5);
    int_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
    int_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
    int_bad("11", 0, 10);
    int_bad("-1", 0, 10);
    int_bad("-6", -5, 5);
    int_bad("", 0, 10);
    int_bad("-", -5, 5);
    int_bad(" 1", 0, 10);
    int_bad("1 ", 0, 10);
    int_bad("+7", 0, 10);
    int_bad("1.0", 0, 10);
    int_bad("1e1", 0, 100);
    int_bad("0x1", 0, 10);
    int_bad("abc", 0, 10);
    int_bad("9223372036854775808", INT64_MIN, INT64_MAX);
    int_bad("-9223372036854775809", INT64_MIN, INT64_MAX);
    int_bad(NULL, 0, 10);
}

static void test_queue_lists(void **state) {
    (void)state;
    char **list = NULL;
    size_t n = 0;
    char err[200];
    assert_int_equal(bgc_parse_queues("high,low", &list, &n, err, sizeof err), 0);
    assert_int_equal(bgc_parse_queues("default", &list, &n, err, sizeof err), 0);
    /* A queue named again is kept once, where it first came. */
    assert_int_equal(bgc_parse_queues("low,a.b-c_D9", &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0], "high");
    assert_string_equal(list[1], "low");
    assert_string_equal(list[2], "default");
    assert_string_equal(list[3], "a.b-c_D9");
    for (size_t i = 0; i < n; i++)
        assert_true(bg_queue_valid(list[i]));
    bgc_free_list(list, n);

    static const struct {
        const char *in, *bad;
    } bad[] = {
        {"", ""},       {",", ""},         {"a,", ""},    {",a", ""},     {"a,,b", ""},
        {"a b", "a b"}, {"ok,x:y", "x:y"}, {"ok,é", "é"}, {"a/b", "a/b"}, {"a,b*", "b*"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        list = NULL;
        n = 0;
        memset(err, 'x', sizeof err);
        if (bgc_parse_queues(bad[i].in, &list, &n, err, sizeof err) == 0)
            fail_msg("queue list '%s' was accepted", bad[i].in);
        assert_string_equal(err, bad[i].bad);
        bgc_free_list(list, n);
    }

    /* 128 characters is the longest name; 129 is too long, and reported cut to the buffer. */
    char name[131];
    memset(name, 'q', 128);
    name[128] = '\0';
    list = NULL;
    n = 0;
    assert_int_equal(bgc_parse_queues(name, &list, &n, err, sizeof err), 0);
    bgc_free_list(list, n);
    name[128] = 'q';
    name[129] = '\0';
    list = NULL;
    n = 0;
    char small[16];
    assert_int_equal(bgc_parse_queues(name, &list, &n, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
    bgc_free_list(list, n);
    bgc_free_list(NULL, 0);
}

static void test_liveness(void **state) {
    (void)state;
    bg_liveness lv = BG_LIVENESS_LEASE;
    assert_int_equal(bgc_parse_liveness("clientid", &lv), 0);
    assert_int_equal(lv, BG_LIVENESS_CLIENTID);
    assert_int_equal(bgc_parse_liveness("lease", &lv), 0);
    assert_int_equal(lv, BG_LIVENESS_LEASE);
    const char *bad[] = {"", "Lease", "lease ", " lease", "leases", "client", "clientid\n", NULL};
    for (int i = 0; bad[i]; i++) {
        lv = BG_LIVENESS_LEASE;
        assert_int_equal(bgc_parse_liveness(bad[i], &lv), -1);
        assert_int_equal(lv, BG_LIVENESS_LEASE); /* untouched */
    }
    assert_int_equal(bgc_parse_liveness(NULL, &lv), -1);
}

static void test_env_defaults(void **state) {
    (void)state;
    unsetenv("BG_REDIS_URL");
    unsetenv("REDIS_URL");
    unsetenv("BG_NAMESPACE");
    assert_string_equal(bgc_default_url(), "redis://127.0.0.1:6379/0");
    assert_string_equal(bgc_default_ns(), "bg");
    setenv("REDIS_URL", "redis://r:1/0", 1);
    assert_string_equal(bgc_default_url(), "redis://r:1/0");
    setenv("BG_REDIS_URL", "redis://b:2/0", 1);
    assert_string_equal(bgc_default_url(), "redis://b:2/0");
    /* An empty variable counts as unset. */
    setenv("BG_REDIS_URL", "", 1);
    assert_string_equal(bgc_default_url(), "redis://r:1/0");
    setenv("REDIS_URL", "", 1);
    assert_string_equal(bgc_default_url(), "redis://127.0.0.1:6379/0");
    setenv("BG_NAMESPACE", "onyx-background", 1);
    assert_string_equal(bgc_default_ns(), "onyx-background");
    setenv("BG_NAMESPACE", "", 1);
    assert_string_equal(bgc_default_ns(), "bg");
    unsetenv("BG_REDIS_URL");
    unsetenv("REDIS_URL");
    unsetenv("BG_NAMESPACE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),    cmocka_unit_test(test_times),
        cmocka_unit_test(test_ints),         cmocka_unit_test(test_queue_lists),
        cmocka_unit_test(test_env_defaults), cmocka_unit_test(test_liveness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
