/* test_errors.c: the one way a Redis reply becomes an error (docs/api.md#errors), and the
 * constructors' side of the convention: a malformed option is refused in the caller's errbuf,
 * with no handle returned. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

static redisReply reply(int type, char *str) {
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.str = str;
    r.len = str ? strlen(str) : 0;
    return r;
}

/* NULL is a lost connection, NOPERM an ACL, any other error Redis's, any other type a reply of
 * no expected shape. */
static void test_reply_codes(void **state) {
    (void)state;
    char noperm[] = "NOPERM this user has no permissions to run the 'client|list' command";
    char script[] = "ERR Error running script (call to f_1): @user_script:5: NOPERM this user "
                    "has no permissions";
    char wrongtype[] = "WRONGTYPE Operation against a key";
    char ok[] = "OK";
    redisReply acl = reply(REDIS_REPLY_ERROR, noperm);
    redisReply wrapped = reply(REDIS_REPLY_ERROR, script);
    redisReply wrong = reply(REDIS_REPLY_ERROR, wrongtype);
    redisReply status = reply(REDIS_REPLY_STATUS, ok);
    redisReply integer = reply(REDIS_REPLY_INTEGER, NULL);
    assert_int_equal(bg__reply_code(NULL), BG_EIO);
    assert_int_equal(bg__reply_code(&acl), BG_EACL);
    assert_int_equal(bg__reply_code(&wrapped), BG_EACL);
    assert_int_equal(bg__reply_code(&wrong), BG_EREDIS);
    assert_int_equal(bg__reply_code(&status), BG_EPROTO);
    assert_int_equal(bg__reply_code(&integer), BG_EPROTO);
}

/* The message is "<context>: <why>", why the connection's own message for a lost connection,
 * also when the message is written over the connection's. */
static void test_reply_messages(void **state) {
    (void)state;
    bg__conn c;
    char err[BG__ERRLEN];
    memset(&c, 0, sizeof c);
    bg__fmt(c.err, sizeof c.err, "reply: Redis did not answer in time");
    assert_int_equal(bg__reply_error(&c, NULL, err, sizeof err, "status on %s", "redis://h"),
                     BG_EIO);
    assert_string_equal(err, "status on redis://h: reply: Redis did not answer in time");
    assert_int_equal(bg__reply_error(&c, NULL, c.err, sizeof c.err, "retry"), BG_EIO);
    assert_string_equal(c.err, "retry: reply: Redis did not answer in time");
    char wrongtype[] = "WRONGTYPE Operation against a key";
    redisReply wrong = reply(REDIS_REPLY_ERROR, wrongtype);
    assert_int_equal(bg__reply_error(&c, &wrong, err, sizeof err, "purge"), BG_EREDIS);
    assert_string_equal(err, "purge: WRONGTYPE Operation against a key");
    redisReply integer = reply(REDIS_REPLY_INTEGER, NULL);
    assert_int_equal(bg__reply_error(&c, &integer, err, sizeof err, "ping"), BG_EPROTO);
    assert_string_equal(err, "ping: unexpected reply");
    /* A buffer too short still ends in a NUL. */
    char tiny[8];
    bg__reply_error(&c, &wrong, tiny, sizeof tiny, "purge");
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* A constructor that fails writes its message to errbuf and returns no handle. */
static void test_constructors_refuse_in_errbuf(void **state) {
    (void)state;
    char err[BG__ERRLEN];
    bg_client *c = (bg_client *)&c;
    bg_client_options co;
    bg_client_options_init(&co);
    co.ns = "";
    assert_int_equal(bg_client_new(&c, &co, err, sizeof err), BG_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "invalid namespace"));
    co.ns = NULL;
    co.url = "redis://h:0";
    assert_int_equal(bg_client_new(&c, &co, NULL, 0), BG_EURL); /* no errbuf: still refused */
    assert_null(c);
    assert_int_equal(bg_client_new(NULL, &co, err, sizeof err), BG_EINVAL);

    bg_watcher *w = (bg_watcher *)&w;
    bg_watcher_options wo;
    bg_watcher_options_init(&wo);
    wo.nqueues = 2; /* and no array */
    assert_int_equal(bg_watcher_new(&w, &wo, err, sizeof err), BG_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err, "queues"));
    const char *bad[] = {"ok", "bad/name"};
    wo.queues = bad;
    assert_int_equal(bg_watcher_new(&w, &wo, err, sizeof err), BG_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err, "'bad/name'"));
    bg_watcher_options_init(&wo);
    wo.interval_ms = 0;
    assert_int_equal(bg_watcher_new(&w, &wo, NULL, 0), BG_EINVAL);
    assert_null(w);
    bg_watcher_options_init(&wo);
    assert_int_equal(bg_watcher_new(&w, &wo, err, sizeof err), BG_OK);
    assert_string_equal(err, "");
    assert_string_equal(bg_watcher_errmsg(w), "");
    bg_watcher_free(w);
}

/* Every code has a name and a message; an unknown one too. */
static void test_error_names(void **state) {
    (void)state;
    assert_string_equal(bg_err_name(BG_EACL), "EACL");
    assert_string_equal(bg_strerror(BG_OK), "success");
    assert_string_equal(bg_err_name(BG_OK), "OK");
    assert_string_equal(bg_err_name(-999), "EUNKNOWN");
    assert_string_equal(bg_strerror(1), "unknown error");
    for (int code = BG_EINVAL; code >= BG_EACL; code--)
        assert_string_not_equal(bg_err_name(code), "EUNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_codes),
        cmocka_unit_test(test_reply_messages),
        cmocka_unit_test(test_constructors_refuse_in_errbuf),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
