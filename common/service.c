/* service.c: a worker's or watcher's events (bg_events) told to systemd over sd_notify
 * (docs/operations.md#systemd): READY=1 once Redis answers and the scripts are loaded, STATUS=
 * lines, WATCHDOG=1 while Redis answers, STOPPING=1. Without $NOTIFY_SOCKET it does nothing. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "bg_common.h"

static double mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A line systemd shows in `systemctl status`: one line, so a newline in an error message
 * would end the field early; it becomes a space. */
static void status_line(char *buf, size_t len, const char *prefix, const char *text) {
    size_t n = (size_t)snprintf(buf, len, "%s%s", prefix, text);
    for (size_t i = 0; i < n && i < len && buf[i]; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
}

static void on_event(void *userdata, bg_event event, const char *text) {
    bgc_service *s = userdata;
    char line[600];
    switch (event) {
    case BG_EVENT_READY:
        bgc_sd_notify("READY=1");
        break;
    case BG_EVENT_STATUS:
        status_line(line, sizeof line, "STATUS=", text);
        bgc_sd_notify(line);
        break;
    case BG_EVENT_HEALTHY:
        /* Fed at the interval bgc_sd_watchdog_interval_us() gives (half of WatchdogSec), not on
         * every tick: a loop that reports health each second sends a few datagrams a minute. */
        if (s->watchdog_us > 0 && mono_us() - s->last_watchdog_us >= (double)s->watchdog_us) {
            bgc_sd_notify("WATCHDOG=1");
            s->last_watchdog_us = mono_us();
        }
        break;
    case BG_EVENT_STOPPING:
        bgc_sd_notify("STOPPING=1");
        break;
    }
}

bg_events bgc_service_events(bgc_service *s) {
    s->watchdog_us = bgc_sd_watchdog_interval_us();
    s->last_watchdog_us = -1e18;
    bg_events ev = {on_event, s};
    return ev;
}
