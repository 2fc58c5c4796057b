/* test_url.c: the Redis URLs of docs/schema.md#formats as bg__url_parse reads them: every accepted
 * form, percent-decoding, masking of the password in URLs and in error messages, and every
 * malformed form refused with BG_EURL. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

/* Parses s, expecting success; the caller clears u. */
static void parse_ok(const char *s, bg__url *u) {
    char err[BG__ERRLEN] = "";
    int rc = bg__url_parse(s, u, err, sizeof err);
    if (rc != BG_OK)
        fail_msg("'%s' was refused: %s", s, err);
}

static void expect_tcp(const char *s, const char *host, int port, int db, const char *user,
                       const char *pass) {
    bg__url u;
    parse_ok(s, &u);
    assert_non_null(u.host);
    assert_string_equal(u.host, host);
    assert_null(u.path);
    assert_int_equal(u.port, port);
    assert_int_equal(u.db, db);
    if (user)
        assert_string_equal(u.user, user);
    else
        assert_null(u.user);
    if (pass)
        assert_string_equal(u.pass, pass);
    else
        assert_null(u.pass);
    bg__url_clear(&u);
}

static void test_tcp_forms(void **state) {
    (void)state;
    expect_tcp("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0, NULL, NULL);
    expect_tcp("redis://localhost", "localhost", 6379, 0, NULL, NULL);
    expect_tcp("redis://localhost/", "localhost", 6379, 0, NULL, NULL);
    expect_tcp("redis://redis.example.com:7000", "redis.example.com", 7000, 0, NULL, NULL);
    expect_tcp("redis://h:1/15", "h", 1, 15, NULL, NULL);
    expect_tcp("redis://h:65535/3", "h", 65535, 3, NULL, NULL);
    expect_tcp("redis://:secret@h:6380/2", "h", 6380, 2, NULL, "secret");
    expect_tcp("redis://alice:secret@h", "h", 6379, 0, "alice", "secret");
    expect_tcp("redis://[::1]:6390/1", "::1", 6390, 1, NULL, NULL);
    expect_tcp("redis://[::1]", "::1", 6379, 0, NULL, NULL);
}

static void test_percent_decoding(void **state) {
    (void)state;
    expect_tcp("redis://us%40er:p%3Ass%2Fw%25rd@h:1/0", "h", 1, 0, "us@er", "p:ss/w%rd");
    expect_tcp("redis://:%41%62%63@h", "h", 6379, 0, NULL, "Abc");
    /* A space and a '#' can only be given escaped. */
    expect_tcp("redis://:a%20b%23c@h", "h", 6379, 0, NULL, "a b#c");
}

static void test_unix_forms(void **state) {
    (void)state;
    bg__url u;
    parse_ok("unix:///run/redis/redis.sock", &u);
    assert_null(u.host);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);
    bg__url_clear(&u);
    parse_ok("unix:///tmp/r.sock?db=7", &u);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 7);
    bg__url_clear(&u);
}

/* Expects s refused with BG_EURL, a message that names it (masked) and never shows secret. */
static void expect_bad(const char *s, const char *secret) {
    char err[BG__ERRLEN] = "";
    bg__url u;
    int rc = bg__url_parse(s, &u, err, sizeof err);
    bg__url_clear(&u);
    if (rc != BG_EURL)
        fail_msg("'%s' was accepted (rc %d)", s, rc);
    assert_non_null(strstr(err, "invalid Redis URL"));
    if (secret && strstr(err, secret))
        fail_msg("the message for '%s' shows the password: %s", s, err);
    assert_int_equal(bg_url_check(s, NULL, 0), BG_EURL);
}

static void test_malformed(void **state) {
    (void)state;
    expect_bad("", NULL);
    expect_bad("redis://", NULL);
    expect_bad("redis://:6379", NULL);
    expect_bad("redis://h:abc", NULL);
    expect_bad("redis://h:", NULL);
    expect_bad("redis://h:0", NULL);
    expect_bad("redis://h:65536", NULL);
    expect_bad("redis://h:-1", NULL);
    expect_bad("redis://h:99999999999", NULL);
    expect_bad("redis://h:6379/x", NULL);
    expect_bad("redis://h:6379/-1", NULL);
    expect_bad("redis://h:6379/1x", NULL);
    expect_bad("redis://h/0?foo=bar", NULL);
    expect_bad("redis://:pw%zz@h", "pw");
    expect_bad("redis://:pw%4@h", "pw");
    expect_bad("redis://:pw%@h", "pw");
    expect_bad("redis://us%g0er:pw@h", NULL);
    expect_bad("redis://user@h", NULL);
    expect_bad("redis://user:@h", NULL);
    expect_bad("rediss://h/0?ssl_cert_reqs=none", NULL);
    expect_bad("rediss:/h", NULL);
    expect_bad("rediss://", NULL);
    expect_bad("rediss://:pw%zz@h", "pw");
    expect_bad("http://h:6379", NULL);
    expect_bad("h:6379", NULL);
    expect_bad("redis://h o:6379", NULL);
    expect_bad(" redis://h", NULL);
    expect_bad("redis://h\n", NULL);
    expect_bad("redis://:top secret@h", "secret");
    expect_bad("redis://[::1", NULL);
    expect_bad("redis://[]:1", NULL);
    expect_bad("unix://relative.sock", NULL);
    expect_bad("unix:///", NULL);
    expect_bad("unix:///tmp/r.sock?db=x", NULL);
    expect_bad("unix:///tmp/r.sock?foo=1", NULL);
}

static void test_sentinel_forms(void **state) {
    (void)state;
    bg__url u;
    parse_ok("redis-sentinel://:p%40ss@10.0.0.1,[::1]:26380,s3.example.com:7000/mymaster/2", &u);
    assert_null(u.host);
    assert_null(u.path);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[1].host, "::1");
    assert_int_equal(u.sentinels[1].port, 26380);
    assert_string_equal(u.sentinels[2].host, "s3.example.com");
    assert_int_equal(u.sentinels[2].port, 7000);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 2);
    assert_null(u.user);
    assert_string_equal(u.pass, "p@ss");
    assert_int_equal(u.tls, 0);
    assert_non_null(u.gen);
    bg__url_clear(&u);
    parse_ok("redis-sentinel://alice:pw@h/m.a-1_b/", &u);
    assert_int_equal(u.nsentinels, 1);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.master, "m.a-1_b");
    assert_int_equal(u.db, 0);
    bg__url_clear(&u);
}

static void test_sentinel_malformed(void **state) {
    (void)state;
    expect_bad("redis-sentinel://", NULL);
    expect_bad("redis-sentinel:///m", NULL);
    expect_bad("redis-sentinel://:pw@/m", "pw");
    expect_bad("redis-sentinel://h:0/m", NULL);
    expect_bad("redis-sentinel://h:65536/m", NULL);
    expect_bad("redis-sentinel://h:x/m", NULL);
    expect_bad("redis-sentinel://h,/m", NULL);
    expect_bad("redis-sentinel://,h/m", NULL);
    expect_bad("redis-sentinel://a,,b/m", NULL);
    expect_bad("redis-sentinel://h", NULL);
    expect_bad("redis-sentinel://h/", NULL);
    expect_bad("redis-sentinel://h//0", NULL);
    expect_bad("redis-sentinel://h/m/x", NULL);
    expect_bad("redis-sentinel://h/m/-1", NULL);
    expect_bad("redis-sentinel://h/m/0/1", NULL);
    expect_bad("redis-sentinel://h/m?db=1", NULL);
    expect_bad("redis-sentinel://h/m#x", NULL);
    expect_bad("redis-sentinel://[::1/m", NULL);
    expect_bad("redis-sentinel://:top secret@h/m", "secret");
    expect_bad("rediss-sentinel://h/m", NULL);
    expect_bad("redis-sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", NULL);
    char name[300];
    memset(name, 'n', sizeof name);
    name[sizeof name - 1] = '\0';
    char url[400];
    snprintf(url, sizeof url, "redis-sentinel://h/%s", name);
    expect_bad(url, NULL);
}

static void expect_mask(const char *url, const char *want) {
    char buf[256];
    assert_string_equal(bg_url_mask(url, buf, sizeof buf), want);
}

static void test_mask(void **state) {
    (void)state;
    expect_mask("redis://:secret@h:6379/0", "redis://:***@h:6379/0");
    expect_mask("redis://alice:secret@h:6379/0", "redis://alice:***@h:6379/0");
    expect_mask("redis://alice:p%40ss@h", "redis://alice:***@h");
    expect_mask("redis://h:6379/0", "redis://h:6379/0");
    expect_mask("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1");
    expect_mask("redis-sentinel://u:secret@a:1,b/m/0", "redis-sentinel://u:***@a:1,b/m/0");
    /* An unescaped '@' in the password is masked whole. */
    expect_mask("redis://:a@b@h", "redis://:***@h");
    /* A buffer too small still ends in a NUL, inside the buffer. */
    char small[8];
    bg_url_mask("redis://:secret@h", small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

/* A parse error names the URL with its password masked, whatever is wrong. */
static void test_masked_in_messages(void **state) {
    (void)state;
    char err[BG__ERRLEN];
    bg__url u;
    assert_int_equal(bg__url_parse("redis://bob:hunter2@h:0/0", &u, err, sizeof err), BG_EURL);
    bg__url_clear(&u);
    assert_non_null(strstr(err, "redis://bob:***@h:0/0"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(bg_url_check("redis://:hunter2@h:6379/x", err, sizeof err), BG_EURL);
    assert_non_null(strstr(err, ":***@"));
    assert_null(strstr(err, "hunter2"));
    /* A message cut to a small buffer is still terminated. */
    char small[12];
    assert_int_equal(bg_url_check("http://x", small, sizeof small), BG_EURL);
    assert_true(strlen(small) < sizeof small);
}

/* The client refuses a bad URL in its errbuf, masked, without connecting; a good one is kept
 * masked by the handle. */
static void test_client_reports_url(void **state) {
    (void)state;
    bg_client_options o;
    bg_client *c = NULL;
    char err[512];
    bg_client_options_init(&o);
    o.url = "redis://:hunter2@h:65536";
    assert_int_equal(bg_client_new(&c, &o, err, sizeof err), BG_EURL);
    assert_null(c);
    assert_non_null(strstr(err, "redis://:***@h:65536"));
    assert_null(strstr(err, "hunter2"));
    o.url = "redis://:hunter2@h:6380";
    assert_int_equal(bg_client_new(&c, &o, err, sizeof err), BG_OK);
    assert_string_equal(bg_client_url_masked(c), "redis://:***@h:6380");
    bg_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sentinel_forms),
        cmocka_unit_test(test_sentinel_malformed),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_masked_in_messages),
        cmocka_unit_test(test_client_reports_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
