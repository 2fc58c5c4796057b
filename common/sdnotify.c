/* sdnotify.c: systemd's readiness protocol without libsystemd. A service started with
 * Type=notify finds the path of a datagram socket in $NOTIFY_SOCKET and sends it lines such as
 * "READY=1" or "STATUS=..."; with WatchdogSec= it must also send "WATCHDOG=1" often enough, or
 * systemd restarts it. The protocol is a few bytes in one datagram, so linking libsystemd (and
 * its own dependencies) for it is not worth it; see sd_notify(3) for what systemd accepts. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "bg_common.h"

/* Fills sa with $NOTIFY_SOCKET's address: an absolute path, or "@name" for a name in the
 * abstract namespace (a leading NUL byte, no trailing one). Returns the address length, 0 when
 * the variable is unset or empty, -1 when it names no address a datagram could go to. */
static int notify_address(struct sockaddr_un *sa, socklen_t *len) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa->sun_path || (path[0] == '@' && n < 2))
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@')
        sa->sun_path[0] = '\0';
    /* A path socket's address includes its terminating NUL; an abstract one's length is exact,
     * since every byte of sun_path after the first is part of the name. */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    return 1;
}

int bgc_sd_notify(const char *state) {
    struct sockaddr_un sa;
    socklen_t len = 0;
    int rc = notify_address(&sa, &len);
    if (rc <= 0)
        return rc;
    if (!state || !*state)
        return -1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t n = strlen(state);
    ssize_t sent;
    do
        sent = sendto(fd, state, n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len);
    while (sent < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)n ? 1 : -1;
}

/* A positive decimal number of at most 18 digits, nothing else (what systemd writes), or 0. */
static uint64_t env_number(const char *name) {
    const char *s = getenv(name);
    uint64_t v = 0;
    size_t i;
    if (!s)
        return 0;
    for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 18; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return s[i] == '\0' ? v : 0;
}

uint64_t bgc_sd_watchdog_interval_us(void) {
    uint64_t usec = env_number("WATCHDOG_USEC");
    if (usec == 0)
        return 0;
    /* WATCHDOG_PID names the process the watchdog is meant for: a child that inherited the
     * environment (an exec job's shell) must not think it is watched. */
    if (getenv("WATCHDOG_PID") && env_number("WATCHDOG_PID") != (uint64_t)getpid())
        return 0;
    /* sd_watchdog_enabled(3) advises pinging at half the timeout, so one late ping is not
     * fatal; a timeout of 1 us still gets a ping every microsecond, not never. */
    return usec > 1 ? usec / 2 : 1;
}
