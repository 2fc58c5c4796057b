/* test_clientlist.c: how bg reads CLIENT LIST and INFO server replies (clientlist.c): the census
 * of a namespace's worker and fiber connections (the watcher's live fibers, the workers and
 * fibers of bg-cli status), never another namespace's, and the run_id, from replies as Redis 7
 * writes them and from malformed ones. No Redis. */
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

/* Reads list (NULL or a string) into c for ns, which must succeed. */
static void census_of(const char *list, const char *ns, bg__census *c) {
    c->nfibers = c->nworkers = 99;
    assert_int_equal(bg__client_census(list, list ? strlen(list) : 0, ns, c), BG_OK);
}

/* Checks that list holds exactly the n fiber IDs of ns in want (sorted). */
static void fibers_are(const char *list, const char *ns, const long long *want, size_t n) {
    bg__census c;
    census_of(list, ns, &c);
    assert_int_equal(c.nfibers, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c.fibers[i].id, want[i]);
        assert_true(bg__census_has_fiber(&c, want[i]));
    }
    bg__census_free(&c);
}

/* Checks worker i of c: its client ID, queue list and number of fibers. */
static void worker_is(const bg__census *c, size_t i, long long id, const char *queues,
                      size_t fibers) {
    assert_true(i < c->nworkers);
    assert_int_equal(c->workers[i].id, id);
    assert_int_equal(c->workers[i].len, strlen(queues));
    assert_memory_equal(c->workers[i].queues, queues, strlen(queues));
    assert_int_equal(c->workers[i].fibers, fibers);
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
    /* The ID is the whole id= field, a decimal integer that fits: no client otherwise. */
    fibers_are("id=-4 name=bg-worker-fiber:3\n", "bg", neg, 1);
    fibers_are("id=9223372036854775807 name=bg-worker-fiber:3\n", "bg", big, 1);
    fibers_are("id=99999999999999999999999 name=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id=12x name=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id= name=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id=\n12 name=bg-worker-fiber:3\n", "bg", NULL, 0);
    fibers_are("id=+12 name=bg-worker-fiber:3\n", "bg", NULL, 0);
    /* Whatever follows the fiber prefix, even nothing, the connection is a live fiber. */
    fibers_are("id=12 name=bg-worker-fiber:\n", "bg", one, 1);
    fibers_are("id=12 name=bg-worker-fiber:abc\n", "bg", one, 1);
    /* A NUL is a byte like any other: the list goes on after it. */
    bg__census c;
    assert_int_equal(bg__client_census("id=3 a=\0\nid=12 name=bg-worker-fiber:3", 37, "bg", &c),
                     BG_OK);
    assert_int_equal(c.nfibers, 1);
    assert_int_equal(c.fibers[0].id, 12);
    bg__census_free(&c);
}

static void test_census_of_workers(void **state) {
    (void)state;
    bg__census c;
    const char *list = LINE("20", "bg-worker:host:1:high,default") /* two fibers */
        LINE("9", "bg-worker:host:2:low")                          /* one fiber */
        LINE("30", "bg-worker:host:3:default")                     /* none */
        LINE("21", "bg-worker-fiber:20")                           /* of 20 */
        LINE("22", "bg-worker-fiber:20")                           /* of 20 */
        LINE("10", "bg-worker-fiber:9")                            /* of 9 */
        LINE("40", "bg-worker-fiber:77")                           /* of no live worker */
        LINE("41", "bg-worker-fiber:x9")                           /* of no worker at all */
        LINE("42", "bg-worker:")                                   /* no queues: no worker */
        LINE("43", "bg-cli") LINE("44", "bg-watcher");
    census_of(list, "bg", &c);
    assert_int_equal(c.nworkers, 3);
    worker_is(&c, 0, 9, "host:2:low", 1);
    worker_is(&c, 1, 20, "host:1:high,default", 2);
    worker_is(&c, 2, 30, "host:3:default", 0);
    /* Every fiber, in client ID order; the worker its name gives when it gives one. */
    const long long ids[] = {10, 21, 22, 40, 41}, of[] = {9, 20, 20, 77, 0};
    assert_int_equal(c.nfibers, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(c.fibers[i].id, ids[i]);
        assert_int_equal(c.fibers[i].worker, of[i]);
        assert_int_equal(c.fibers[i].has_worker, i < 4);
    }
    assert_false(bg__census_has_fiber(&c, 20));
    assert_false(bg__census_has_fiber(&c, 42));
    bg__census_free(&c);
    bg__census_free(&c); /* emptied: a second free is harmless */
    bg__census_free(NULL);
}

/* Checks that ns has exactly one worker in list, with client ID id and one fiber, and nfibers
 * fibers in all. */
static void one_worker(const char *list, const char *ns, long long id, size_t nfibers) {
    bg__census c;
    census_of(list, ns, &c);
    assert_int_equal(c.nworkers, 1);
    worker_is(&c, 0, id, "h:1:q", 1);
    assert_int_equal(c.nfibers, nfibers);
    bg__census_free(&c);
}

static void test_census_other_namespaces(void **state) {
    (void)state;
    bg__census c;
    /* Each namespace starts like another; none counts another's workers or fibers. */
    const char *list = LINE("1", "bg-worker:h:1:q") /* bg */
        LINE("2", "bg-worker-fiber:1")              /* bg */
        LINE("3", "bgx-worker:h:1:q")               /* bgx */
        LINE("4", "bgx-worker-fiber:3")             /* bgx */
        LINE("5", "bg-worker-worker:h:1:q")         /* bg-worker */
        LINE("6", "bg-worker-worker-fiber:5")       /* bg-worker */
        LINE("7", "bg-worker-worker-fiber:1");      /* bg-worker, naming bg's worker's ID */
    one_worker(list, "bg", 1, 1);
    one_worker(list, "bgx", 3, 1);
    one_worker(list, "bg-worker", 5, 2);
    census_of(list, "b", &c);
    assert_int_equal(c.nworkers + c.nfibers, 0);
    bg__census_free(&c);
}

static void test_census_malformed_workers(void **state) {
    (void)state;
    bg__census c;
    /* Not the first field id=, a name cut by the end of the list, a second name= field, and
     * two lines that claim one ID (Redis writes none of these): each line is read alone. */
    const char *list = "name=bg-worker:h:1:q id=1\n"
                       "id=2 name=bg-worker:h:2:q\r\n"
                       "id=3 name=bg-cli name=bg-worker:h:3:q\n"
                       "id=4 name=bg-worker:h:4:a\n"
                       "id=4 name=bg-worker:h:4:b\n"
                       "id=5 name=bg-worker-fiber:4\n"
                       "id=6 name=bg-worker:h:6:q";
    census_of(list, "bg", &c);
    assert_int_equal(c.nworkers, 4);
    worker_is(&c, 0, 2, "h:2:q\r", 0);
    assert_int_equal(c.workers[1].id, 4);
    assert_int_equal(c.workers[2].id, 4);
    assert_int_equal(c.workers[1].fibers + c.workers[2].fibers, 2);
    worker_is(&c, 3, 6, "h:6:q", 0);
    bg__census_free(&c);
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
        cmocka_unit_test(test_census_of_workers),
        cmocka_unit_test(test_census_other_namespaces),
        cmocka_unit_test(test_census_malformed_workers),
        cmocka_unit_test(test_run_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
