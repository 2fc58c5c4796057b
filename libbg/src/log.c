/* log.c: the library's only way to speak: format a line when its level is on, hand it to the
 * caller's sink. */
#include <stdio.h>

#include "bg_int.h"

int bg__log_enabled(const bg_logger *l, bg_log_level level) {
    return l && l->fn && level >= l->level;
}

void bg__log(const bg_logger *l, bg_log_level level, const char *role, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    if (!bg__log_enabled(l, level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    l->fn(l->userdata, level, role, buf);
}
