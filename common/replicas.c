/* replicas.c: the replica options bg-worker, bg-watcher and bg-cli enqueue share,
 * --min-replicas-ack N and --min-replicas-timeout DURATION, and their environment variables
 * (docs/operations.md#replicas-and-failover). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"

static const char *const flags[] = {"--min-replicas-ack", "--min-replicas-timeout"};
static const char *const vars[] = {"BG_MIN_REPLICAS_ACK", "BG_MIN_REPLICAS_TIMEOUT"};

void bgc_replicas_init(bgc_replicas *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            r->value[i] = v;
            r->from[i] = vars[i];
        }
    }
}

int bgc_replicas_option(bgc_replicas *r, int ch, const char *arg) {
    int i = ch - BGC_OPT_MIN_REPLICAS_ACK;
    if (i < 0 || i > 1)
        return 0;
    r->value[i] = arg;
    r->from[i] = flags[i];
    return 1;
}

int bgc_replicas_check(bgc_replicas *r, char *err, size_t errlen) {
    long long n = 0;
    double ms = BG_REPLICAS_TIMEOUT_DEFAULT;
    if (r->value[0] && bgc_parse_int(r->value[0], 0, BG_REPLICAS_MAX, &n) != 0) {
        snprintf(err, errlen,
                 "invalid number '%s' for %s: a whole number from 0 (off) to %d replicas",
                 r->value[0], r->from[0], BG_REPLICAS_MAX);
        return -1;
    }
    if (r->value[1] && (bgc_parse_duration_ms(r->value[1], &ms) != 0 || !(ms > 0) ||
                        ms > BG_REPLICAS_TIMEOUT_MAX)) {
        snprintf(err, errlen,
                 "invalid duration '%s' for %s: above 0 and at most %.0f s, a number with an "
                 "optional unit ms, s, m, h or d (1, 1.5s, 250ms)",
                 r->value[1], r->from[1], BG_REPLICAS_TIMEOUT_MAX / 1000);
        return -1;
    }
    r->opts.min_ack = (int)n;
    r->opts.timeout_ms = ms;
    return 0;
}
