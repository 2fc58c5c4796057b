/* test_ratelimit.c: a repeated finding is let through once an interval per key, counts what it
 * held back, and many keys never make more than one line each per interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

static void test_once_per_interval(void **state) {
    (void)state;
    bg__ratelimit rl;
    unsigned long held = 99;
    bg__ratelimit_init(&rl, 50);
    assert_int_equal(bg__ratelimit_allow(&rl, "k", 1, &held), 1);
    assert_int_equal(held, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bg__ratelimit_allow(&rl, "k", 1, NULL), 0);
    /* another key has its own allowance */
    assert_int_equal(bg__ratelimit_allow(&rl, "other", 5, NULL), 1);
    bg__sleep_ms(60);
    assert_int_equal(bg__ratelimit_allow(&rl, "k", 1, &held), 1);
    assert_int_equal(held, 5);
    assert_int_equal(bg__ratelimit_allow(&rl, "k", 1, NULL), 0);
    bg__ratelimit_destroy(&rl);
}

static void test_many_keys_stay_bounded(void **state) {
    (void)state;
    bg__ratelimit rl;
    char key[32];
    int allowed = 0;
    bg__ratelimit_init(&rl, 60000);
    /* Fewer keys than slots, met over and over within the interval: each is reported once. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 8; i++) {
            bg__fmt(key, sizeof key, "key-%d", i);
            allowed += bg__ratelimit_allow(&rl, key, strlen(key), NULL);
        }
    assert_int_equal(allowed, 8);
    bg__ratelimit_destroy(&rl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_per_interval),
        cmocka_unit_test(test_many_keys_stay_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
