/* test_keys.c: every key and client name bg builds (keys.c), in the layout of docs/schema.md, and
 * the namespace and queue name rules. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

#define JOB "0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d"

static void key_is(const char *ns, bg__key_kind kind, const char *suffix, const char *want) {
    char buf[256];
    int n = bg__key(buf, sizeof buf, ns, kind, suffix);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_every_kind(void **state) {
    (void)state;
    key_is("bg", BG__K_JOBS, JOB, "bg:jobs:" JOB);
    key_is("bg", BG__K_READY, "default", "bg:ready:default");
    key_is("bg", BG__K_SCHEDULED, "default", "bg:scheduled:default");
    key_is("bg", BG__K_ATTEMPTS, JOB, "bg:attempts:" JOB);
    key_is("bg", BG__K_PROCESSING, "high", "bg:processing:high");
    key_is("bg", BG__K_COMPLETED, "high", "bg:completed:high");
    key_is("bg", BG__K_FAILED, "high", "bg:failed:high");
    key_is("bg", BG__K_DEAD, "high", "bg:dead:high");
    key_is("bg", BG__K_STATS, "high", "bg:stats:high");
    key_is("bg", BG__K_JPS, "high:17953416000", "bg:jps:high:17953416000");
    key_is("bg", BG__K_QUEUES, NULL, "bg:queues");
    key_is("bg", BG__K_QUEUES, "ignored", "bg:queues");
}

/* An empty or NULL suffix gives the prefix the Lua scripts complete. */
static void test_prefixes(void **state) {
    (void)state;
    key_is("bg", BG__K_JOBS, "", "bg:jobs:");
    key_is("bg", BG__K_READY, NULL, "bg:ready:");
    key_is("my.app_1", BG__K_ATTEMPTS, "", "my.app_1:attempts:");
}

/* With -n onyx-background the keys are exactly Onyx::Background's. */
static void test_onyx_namespace(void **state) {
    (void)state;
    const char *ns = "onyx-background";
    key_is(ns, BG__K_JOBS, JOB, "onyx-background:jobs:" JOB);
    key_is(ns, BG__K_READY, "default", "onyx-background:ready:default");
    key_is(ns, BG__K_SCHEDULED, "default", "onyx-background:scheduled:default");
    key_is(ns, BG__K_ATTEMPTS, JOB, "onyx-background:attempts:" JOB);
    key_is(ns, BG__K_PROCESSING, "default", "onyx-background:processing:default");
    key_is(ns, BG__K_COMPLETED, "default", "onyx-background:completed:default");
    key_is(ns, BG__K_FAILED, "default", "onyx-background:failed:default");
}

static void test_overflow_and_bad_kind(void **state) {
    (void)state;
    char buf[12];
    assert_int_equal(bg__key(buf, sizeof buf, "bg", BG__K_READY, "default"), -1);
    assert_int_equal(bg__key(buf, sizeof buf, "bg", BG__K_READY, "d"), 10);
    assert_int_equal(bg__key(buf, sizeof buf, "bg", BG__K_COUNT, "d"), -1);
    assert_int_equal(bg__client_name(buf, 4, "bg", "cli"), -1);
}

static void name_is(const char *ns, const char *role, const char *want) {
    char buf[256];
    assert_int_equal(bg__client_name(buf, sizeof buf, ns, role), (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_client_names(void **state) {
    (void)state;
    name_is("bg", "cli", "bg-cli");
    name_is("bg", "manager", "bg-manager");
    name_is("bg", "watcher", "bg-watcher");
    name_is("bg", "worker:high,low", "bg-worker:high,low");
    name_is("bg", "worker-fiber:42", "bg-worker-fiber:42");
    name_is("onyx-background", "cli", "onyx-background-cli");
    name_is("onyx-background", "worker:default", "onyx-background-worker:default");
}

static void test_name_rules(void **state) {
    (void)state;
    char long_ns[66], long_q[130];
    assert_true(bg_namespace_valid("bg"));
    assert_true(bg_namespace_valid("onyx-background"));
    assert_true(bg_namespace_valid("A.z_0-9"));
    assert_false(bg_namespace_valid(""));
    assert_false(bg_namespace_valid(NULL));
    assert_false(bg_namespace_valid("a b"));
    assert_false(bg_namespace_valid("a:b"));
    assert_false(bg_namespace_valid("a*"));
    memset(long_ns, 'n', 64);
    long_ns[64] = '\0';
    assert_true(bg_namespace_valid(long_ns));
    long_ns[64] = 'n';
    long_ns[65] = '\0';
    assert_false(bg_namespace_valid(long_ns));
    memset(long_q, 'q', 128);
    long_q[128] = '\0';
    assert_true(bg_queue_valid(long_q));
    long_q[128] = 'q';
    long_q[129] = '\0';
    assert_false(bg_queue_valid(long_q));
    assert_false(bg_queue_valid("a,b"));
    assert_false(bg_queue_valid(""));
}

/* The client keeps its namespace, and refuses a bad one in its errbuf. */
static void test_client_namespace(void **state) {
    (void)state;
    bg_client_options o;
    bg_client *c = NULL;
    bg_client_options_init(&o);
    o.ns = "onyx-background";
    o.role = "cli";
    char err[512];
    assert_int_equal(bg_client_new(&c, &o, err, sizeof err), BG_OK);
    assert_string_equal(bg_client_namespace(c), "onyx-background");
    bg_client_free(c);
    o.ns = "bad ns";
    assert_int_equal(bg_client_new(&c, &o, err, sizeof err), BG_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "bad ns"));
    bg_client_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),       cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_onyx_namespace),   cmocka_unit_test(test_overflow_and_bad_kind),
        cmocka_unit_test(test_client_names),     cmocka_unit_test(test_name_rules),
        cmocka_unit_test(test_client_namespace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
