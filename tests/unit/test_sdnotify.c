/* test_sdnotify.c: common/sdnotify.c against a datagram socket of the test's own, bound where
 * $NOTIFY_SOCKET says, as systemd's would be: the exact bytes arrive, for a path socket and an
 * abstract one; nothing is sent and nothing fails without $NOTIFY_SOCKET; a bad address is an
 * error, not a crash. And the watchdog interval read from $WATCHDOG_USEC and $WATCHDOG_PID. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bg_common.h"

/* A datagram socket bound to addr (a path, or "@name" for the abstract namespace). */
static int listen_at(const char *addr) {
    struct sockaddr_un sa;
    size_t n = strlen(addr);
    assert_true(n < sizeof sa.sun_path);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, addr, n);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] != '@'));
    if (bind(fd, (struct sockaddr *)&sa, len) != 0)
        fail_msg("bind %s: %s", addr, strerror(errno));
    return fd;
}

/* The next datagram on fd, waiting at most 5 s; its length, or -1 when none came. */
static ssize_t receive(int fd, char *buf, size_t size, int timeout_ms) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    return recv(fd, buf, size, 0);
}

static void expect_datagram(int fd, const char *want) {
    char buf[512];
    ssize_t n = receive(fd, buf, sizeof buf, 5000);
    if (n < 0)
        fail_msg("no datagram arrived, want '%s'", want);
    assert_int_equal((size_t)n, strlen(want));
    assert_memory_equal(buf, want, (size_t)n);
}

static void test_path_socket(void **state) {
    (void)state;
    char dir[] = "/tmp/bg-sdnotify-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(bgc_sd_notify("READY=1"), 1);
    expect_datagram(fd, "READY=1");
    /* Several lines go in one datagram, byte for byte. */
    assert_int_equal(bgc_sd_notify("STATUS=connected to redis://127.0.0.1:6379/0\nREADY=1"), 1);
    expect_datagram(fd, "STATUS=connected to redis://127.0.0.1:6379/0\nREADY=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    rmdir(dir);
}

static void test_abstract_socket(void **state) {
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@bg-sdnotify-test-%ld", (long)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(bgc_sd_notify("WATCHDOG=1"), 1);
    expect_datagram(fd, "WATCHDOG=1");
    assert_int_equal(bgc_sd_notify("STOPPING=1"), 1);
    expect_datagram(fd, "STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_no_socket_is_a_no_op(void **state) {
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@bg-sdnotify-none-%ld", (long)getpid());
    int fd = listen_at(name);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(bgc_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(bgc_sd_notify("READY=1"), 0);
    /* Neither call reached the socket that was there all along. */
    char buf[64];
    assert_int_equal(receive(fd, buf, sizeof buf, 100), -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_bad_addresses(void **state) {
    (void)state;
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    const char *bad[] = {"relative/path", "@", longpath, "/nonexistent/bg-sdnotify/socket"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("NOTIFY_SOCKET", bad[i], 1);
        if (bgc_sd_notify("READY=1") != -1)
            fail_msg("NOTIFY_SOCKET='%s' was not an error", bad[i]);
    }
    /* A socket that exists: an empty state is refused rather than sent as a 0-byte datagram. */
    char name[64];
    snprintf(name, sizeof name, "@bg-sdnotify-empty-%ld", (long)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(bgc_sd_notify(""), -1);
    assert_int_equal(bgc_sd_notify(NULL), -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_watchdog_interval(void **state) {
    (void)state;
    char pid[32];
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(bgc_sd_watchdog_interval_us(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(bgc_sd_watchdog_interval_us(), 15000000);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(bgc_sd_watchdog_interval_us(), 15000000);
    /* Meant for another process (this one's parent, say): not for us. */
    snprintf(pid, sizeof pid, "%ld", (long)getppid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(bgc_sd_watchdog_interval_us(), 0);
    const char *bad_pids[] = {"", "0", "-1", "12x", " 1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_pids / sizeof bad_pids[0]; i++) {
        setenv("WATCHDOG_PID", bad_pids[i], 1);
        if (bgc_sd_watchdog_interval_us() != 0)
            fail_msg("WATCHDOG_PID='%s' was taken for this process", bad_pids[i]);
    }
    unsetenv("WATCHDOG_PID");
    const char *bad_usecs[] = {"",    "0",   "-5",  "1.5",
                               "30s", " 30", "abc", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_usecs / sizeof bad_usecs[0]; i++) {
        setenv("WATCHDOG_USEC", bad_usecs[i], 1);
        if (bgc_sd_watchdog_interval_us() != 0)
            fail_msg("WATCHDOG_USEC='%s' asked for a watchdog", bad_usecs[i]);
    }
    setenv("WATCHDOG_USEC", "1", 1);
    assert_int_equal(bgc_sd_watchdog_interval_us(), 1);
    unsetenv("WATCHDOG_USEC");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket),          cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_no_socket_is_a_no_op), cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_watchdog_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
