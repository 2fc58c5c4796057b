/* test_clientlist.c: how the watcher reads CLIENT LIST and INFO server replies (clientlist.c):
 * the IDs of a namespace's live fiber connections, never another namespace's nor a worker's main
 * connection, and the run_id, from replies as Redis 7 writes them and from malformed ones.
 * No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bg_int.h"

/* Lines as Redis 7.0 writes them; only id= and name= differ between them. */
#define LINE(id, name)                                                                             \
    "id=" id " addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=9 name=" name " age=1 idle=0 "         \
    "flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 "         \
    "rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1928 events=r cmd=blmove user=default redir=-1 "    \
    "resp=2\n"

/* Checks that list holds exactly the n fiber IDs of ns in want (sorted). */
static void fibers_are(const char *list, const char *ns, const long long *want, size_t n) {
    size_t got_n = 99;
    long long *got = bg__live_fibers(list, ns, &got_n);
    assert_non_null(got);
    assert_int_equal(got_n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    free(got);
}

static void test_fibers_of_one_worker(void **state) {
    (void)state;
    const char *list = LINE("5", "bg-worker:host:1234:high,default") /* the main connection */
        LINE("9", "bg-worker-fiber:5")                               /* a fiber of 5 */
        LINE("7", "bg-worker-fiber:5")                               /* a fiber of 5 */
        LINE("8", "bg-worker-fiber:5")                               /* a fiber of 5 */
        LINE("3", "")                                                /* unnamed */
        LINE("4", "bg-cli");                                         /* a producer */
    const long long want[] = {7, 8, 9};
    fibers_are(list, "bg", want, 3);
}

static void test_other_namespaces(void **state) {
    (void)state;
    /* "bgx" and "bg-worker" start like "bg"; their fibers are not bg's, nor are bg's theirs. */
    const char *list = LINE("10", "bgx-worker-fiber:5") /* bgx */
        LINE("11", "bg-worker-fiber:5")                 /* bg */
        LINE("12", "bg-worker-worker-fiber:6")          /* bg-worker */
        LINE("13", "bg-worker:host:1:default")          /* bg's main connection */
        LINE("14", "other-worker-fiber:5");             /* other */
    const long long bg[] = {11}, bgx[] = {10}, bgw[] = {12};
    fibers_are(list, "bg", bg, 1);
    fibers_are(list, "bgx", bgx, 1);
    fibers_are(list, "bg-worker", bgw, 1);
    fibers_are(list, "onyx", NULL, 0);
}

static void test_many_fibers_sorted(void **state) {
    (void)state;
    /* More lines than the first allocation holds, in descending order. */
    char list[200 * 48] = "";
    size_t len = 0;
    long long want[200];
    for (int i = 0; i < 200; i++) {
        len += (size_t)snprintf(list + len, sizeof list - len,
                                "id=%d fd=%d name=bg-worker-fiber:1 age=0\n", 1000 - i, i);
        want[199 - i] = 1000 - i;
    }
    fibers_are(list, "bg", want, 200);
}

static void test_malformed_lists(void **state) {
    (void)state;
    const long long one[] = {12}, neg[] = {-4}, big[] = {LLONG_MAX};
    fibers_are(NULL, "bg", NULL, 0);
    fibers_are("", "bg", NULL, 0);
    fibers_are("\n\n\n", "bg", NULL, 0);
    /* No newline at the end, and \r\n endings. */
    fibers_are("id=12 name=bg-worker-fiber:3", "bg", one, 1);
    fibers_are("id=12 name=bg-worker-fiber:3\r\n", "bg", one, 1);
    /* name= at the end of the line, or a name cut short by it. */
    fibers_are("id=12 name=", "bg", NULL, 0);
    fibers_are("id=12 name=\nid=13 name=bg-worker-fiber", "bg", NULL, 0);
    fibers_are("id=12 name=bg-work\nfiber:3 id=13", "bg", NULL, 0);
    /* Without "id=" at the start of the line, or without " name=". */
    fibers_are("name=bg-worker-fiber:3 id=12\n", "bg", NULL, 0);
    fibers_are(" id=12 name=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id=12 laddr=x fdname=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id=12 lib-name=bg-worker-fiber:3\n", "bg", NULL, 0);
    /* Only the first name= of a line counts. */
    fibers_are("id=12 name=bg-cli x name=bg-worker-fiber:3\n", "bg", NULL, 0);
    /* The number is read as strtoll reads it: a sign, and saturated when too large. */
    fibers_are("id=-4 name=bg-worker-fiber:3\n", "bg", neg, 1);
    fibers_are("id=99999999999999999999999 name=bg-worker-fiber:3\n", "bg", big, 1);
}

static void run_id_is(const char *info, size_t len, const char *want) {
    char out[64];
    memset(out, 'X', sizeof out);
    bg__parse_run_id(info, out, len);
    assert_string_equal(out, want);
}

static void test_run_id(void **state) {
    (void)state;
    const char *info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
                       "process_id:1234\r\nrun_id:8e1d4b1c2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d\r\n"
                       "tcp_port:6379\r\n";
    run_id_is(info, 64, "8e1d4b1c2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d");
    run_id_is(info, 41, "8e1d4b1c2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d");
    /* Cut to the buffer, and always terminated. */
    run_id_is(info, 9, "8e1d4b1c");
    run_id_is(info, 1, "");
    /* Missing, empty, at the very end, or ended by \n alone. */
    run_id_is(NULL, 64, "");
    run_id_is("", 64, "");
    run_id_is("# Server\r\nredis_version:7.0.15\r\n", 64, "");
    run_id_is("run_id:", 64, "");
    run_id_is("run_id:\r\n", 64, "");
    run_id_is("run_id:abc", 64, "abc");
    run_id_is("x:1\nrun_id:abc\nother:2\n", 64, "abc");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fibers_of_one_worker),
        cmocka_unit_test(test_other_namespaces),
        cmocka_unit_test(test_many_fibers_sorted),
        cmocka_unit_test(test_malformed_lists),
        cmocka_unit_test(test_run_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
