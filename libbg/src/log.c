/* log.c: the library's only way to speak: format a line when its level is on, hand it to the
 * caller's sink. */
#include <stdio.h>

#include "bg_int.h"

int bg__log_enabled(const bg_logger *l, bg_log_level level) {
    return l && (l->fn || l->event) && level >= l->level;
}

void bg__log_job(const bg_logger *l, bg_log_level level, const char *role,
                 const bg_log_fields *fields, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    if (!bg__log_enabled(l, level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (l->event)
        l->event(l->userdata, level, role, buf, fields);
    else
        l->fn(l->userdata, level, role, buf);
}

void bg__event(const bg_events *ev, bg_event event, const char *fmt, ...) {
    char text[512] = "";
    va_list ap;
    if (!ev || !ev->fn)
        return;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
    }
    ev->fn(ev->userdata, event, text);
}
