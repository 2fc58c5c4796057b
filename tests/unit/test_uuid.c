/* test_uuid.c: the UUIDs bg makes for jobs and attempts are lowercase RFC 4122 version 4 UUIDs,
 * and a batch made with one getrandom() holds no repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

static void assert_v4(const char *s) {
    assert_true(bg_uuid_valid(s));
    assert_int_equal(s[14], '4');
    assert_non_null(strchr("89ab", s[19]));
}

static void test_one(void **state) {
    (void)state;
    bg_uuid u;
    bg_uuid_new(u);
    assert_v4(u);
}

static void test_batches_of_every_size(void **state) {
    (void)state;
    static bg_uuid many[100];
    for (size_t n = 0; n <= 100; n += 33) {
        memset(many, 'x', sizeof many);
        bg__uuid_fill(many, n);
        for (size_t i = 0; i < n; i++) {
            assert_v4(many[i]);
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(many[i], many[j]);
        }
        if (n < 100)
            assert_int_equal(many[n][0], 'x'); /* nothing written past n */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one),
        cmocka_unit_test(test_batches_of_every_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
