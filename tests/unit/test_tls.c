/* test_tls.c: rediss:// URLs and the TLS options as the constructors read them, before any
 * connection: the URL form, each option refused with a plain URL, an empty value, a certificate
 * without its key, a file that cannot be read or is no PEM, each naming what is wrong; and the
 * programs' checks of the same (bgc_tls_check). No Redis, no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bg_common.h"
#include "bg_int.h"

static void test_rediss_form(void **state) {
    (void)state;
    char err[BG__ERRLEN] = "";
    bg__url u;
    assert_int_equal(
        bg__url_parse("rediss://alice:s3cret@redis.example.com:6380/2", &u, err, sizeof err),
        BG_OK);
    assert_true(u.tls);
    assert_string_equal(u.host, "redis.example.com");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.pass, "s3cret");
    bg__url_clear(&u);
    assert_int_equal(bg__url_parse("redis://h", &u, err, sizeof err), BG_OK);
    assert_false(u.tls);
    bg__url_clear(&u);
    char buf[128];
    assert_string_equal(bg_url_mask("rediss://:s3cret@h:6380/0", buf, sizeof buf),
                        "rediss://:***@h:6380/0");
    /* A bad rediss:// URL is named masked, as a redis:// one. */
    assert_int_equal(bg__url_parse("rediss://:s3cret@h:0", &u, err, sizeof err), BG_EURL);
    bg__url_clear(&u);
    assert_non_null(strstr(err, "rediss://:***@h:0"));
    assert_null(strstr(err, "s3cret"));
}

/* Creates a client of url with t and expects rc, with want in the message when rc is an
 * error. */
static void expect_client(const char *url, const bg_tls_options *t, int rc, const char *want) {
    bg_client_options o;
    bg_client *c = NULL;
    char err[512] = "";
    bg_client_options_init(&o);
    o.url = url;
    o.tls = *t;
    int got = bg_client_new(&c, &o, err, sizeof err);
    if (got != rc)
        fail_msg("%s: rc %d, want %d (%s)", url, got, rc, err);
    if (want && !strstr(err, want))
        fail_msg("%s: '%s' does not say '%s'", url, err, want);
    bg_client_free(c);
}

static char *write_file(const char *text) {
    char *path = strdup("/tmp/bg-test-tls-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_client_options(void **state) {
    (void)state;
    bg_tls_options t = {0};
    /* No option: verification against the system's store. */
    expect_client("rediss://127.0.0.1:1", &t, BG_OK, NULL);
    t.ca_cert = "/nonexistent/ca.pem";
    expect_client("redis://127.0.0.1:1", &t, BG_EINVAL, "not rediss://");
    expect_client("unix:///tmp/r.sock", &t, BG_EINVAL, "not rediss://");
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, "/nonexistent/ca.pem");
    char *junk = write_file("not a certificate\n");
    t.ca_cert = junk;
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, junk);
    t.ca_cert = "";
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, "empty");
    t.ca_cert = NULL;
    t.cert = junk;
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, "needs its key");
    t.key = junk;
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, junk);
    t.cert = NULL;
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, "needs its key");
    t.key = NULL;
    t.server_name = "bad name";
    expect_client("rediss://127.0.0.1:1", &t, BG_EINVAL, "server name");
    t.server_name = "redis.internal";
    expect_client("rediss://127.0.0.1:1", &t, BG_OK, NULL);
    expect_client("redis://127.0.0.1:1", &t, BG_EINVAL, "not rediss://");
    unlink(junk);
    free(junk);
}

/* The worker and the watcher refuse the same options the same way. */
static void test_worker_watcher_options(void **state) {
    (void)state;
    char err[512];
    bg_worker_options wo;
    bg_worker *w = NULL;
    bg_worker_options_init(&wo);
    wo.url = "redis://127.0.0.1:1";
    wo.tls.server_name = "x";
    assert_int_equal(bg_worker_new(&w, &wo, err, sizeof err), BG_EINVAL);
    assert_non_null(strstr(err, "rediss://"));
    wo.url = "rediss://127.0.0.1:1";
    assert_int_equal(bg_worker_new(&w, &wo, err, sizeof err), BG_OK);
    bg_worker_free(w);
    bg_watcher_options ao;
    bg_watcher *a = NULL;
    bg_watcher_options_init(&ao);
    ao.url = "redis://127.0.0.1:1";
    ao.tls.ca_cert = "/nonexistent";
    assert_int_equal(bg_watcher_new(&a, &ao, err, sizeof err), BG_EINVAL);
    assert_null(a);
    ao.url = "rediss://127.0.0.1:1";
    assert_int_equal(bg_watcher_new(&a, &ao, err, sizeof err), BG_EINVAL);
    assert_non_null(strstr(err, "/nonexistent"));
    ao.tls.ca_cert = NULL;
    assert_int_equal(bg_watcher_new(&a, &ao, err, sizeof err), BG_OK);
    bg_watcher_free(a);
}

/* Nothing answers on port 1: a rediss:// client fails to connect as a redis:// one would. */
static void test_connect_refused(void **state) {
    (void)state;
    bg_client_options o;
    bg_client *c = NULL;
    char err[512];
    bg_client_options_init(&o);
    o.url = "rediss://:s3cret@127.0.0.1:1";
    assert_int_equal(bg_client_new(&c, &o, err, sizeof err), BG_OK);
    assert_int_equal(bg_client_connect(c), BG_ECONNECT);
    assert_non_null(strstr(bg_client_errmsg(c), "rediss://:***@127.0.0.1:1"));
    assert_null(strstr(bg_client_errmsg(c), "s3cret"));
    bg_client_free(c);
}

static void test_program_checks(void **state) {
    (void)state;
    char err[256];
    bgc_tls t;
    unsetenv("BG_TLS_CA_CERT");
    unsetenv("BG_TLS_CERT");
    unsetenv("BG_TLS_KEY");
    setenv("BG_TLS_SERVER_NAME", "", 1);
    bgc_tls_init(&t);
    assert_null(t.tls.server_name);
    assert_int_equal(bgc_tls_check(&t, "redis://h", err, sizeof err), 0);
    setenv("BG_TLS_SERVER_NAME", "redis.internal", 1);
    bgc_tls_init(&t);
    assert_string_equal(t.tls.server_name, "redis.internal");
    assert_int_equal(bgc_tls_check(&t, "redis://h", err, sizeof err), -1);
    assert_string_equal(err, "BG_TLS_SERVER_NAME needs a rediss:// URL");
    unsetenv("BG_TLS_SERVER_NAME");
    bgc_tls_init(&t);
    assert_int_equal(bgc_tls_option(&t, BGC_OPT_TLS_CA_CERT, "/nonexistent/ca.pem"), 1);
    assert_int_equal(bgc_tls_option(&t, 'r', "x"), 0);
    assert_int_equal(bgc_tls_check(&t, "redis://h", err, sizeof err), -1);
    assert_string_equal(err, "--tls-ca-cert needs a rediss:// URL");
    assert_int_equal(bgc_tls_check(&t, "rediss://h", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read --tls-ca-cert '/nonexistent/ca.pem'"));
    assert_int_equal(bgc_tls_option(&t, BGC_OPT_TLS_CA_CERT, ""), 1);
    assert_int_equal(bgc_tls_check(&t, "rediss://h", err, sizeof err), -1);
    assert_string_equal(err, "--tls-ca-cert is empty");
    assert_int_equal(bgc_tls_option(&t, BGC_OPT_TLS_CA_CERT, "/dev/null"), 1);
    assert_int_equal(bgc_tls_check(&t, "rediss://h", err, sizeof err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rediss_form),
        cmocka_unit_test(test_client_options),
        cmocka_unit_test(test_worker_watcher_options),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_program_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
