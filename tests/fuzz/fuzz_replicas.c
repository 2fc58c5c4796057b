/* fuzz_replicas.c: feeds arbitrary bytes to bgc_replicas_check, the parser of --min-replicas-ack
 * and --min-replicas-timeout and their environment variables, and checks its promises: a value
 * it takes is within its bounds (the ack 0 to BG_REPLICAS_MAX, the timeout above 0 and at most
 * BG_REPLICAS_TIMEOUT_MAX ms, the default where none was given), a value it refuses is named
 * with where it came from in a terminated message. The input is the ack, a NUL, the timeout;
 * each is also tried alone. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *ack, const char *timeout) {
    bgc_replicas r;
    char err[96];
    memset(&r, 0, sizeof r);
    memset(err, 'x', sizeof err);
    if (ack && !bgc_replicas_option(&r, BGC_OPT_MIN_REPLICAS_ACK, ack))
        abort();
    if (timeout && !bgc_replicas_option(&r, BGC_OPT_MIN_REPLICAS_TIMEOUT, timeout))
        abort();
    if (bgc_replicas_check(&r, err, sizeof err) == 0) {
        if (r.opts.min_ack < 0 || r.opts.min_ack > BG_REPLICAS_MAX)
            abort();
        if (!ack && r.opts.min_ack != 0)
            abort();
        if (!isfinite(r.opts.timeout_ms) || !(r.opts.timeout_ms > 0) ||
            r.opts.timeout_ms > BG_REPLICAS_TIMEOUT_MAX)
            abort();
        if (!timeout && r.opts.timeout_ms != BG_REPLICAS_TIMEOUT_DEFAULT)
            abort();
    } else {
        if (memchr(err, '\0', sizeof err) == NULL)
            abort();
        if (strncmp(err, "invalid ", 8) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 2);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    s[size + 1] = '\0';
    /* The timeout starts after the first NUL, or is empty when there is none. */
    const char *t = s + strlen(s) + 1;

    check(s, NULL);
    check(NULL, s);
    check(NULL, t);
    check(s, t);

    /* Out-of-range codes are not replica options and leave r untouched. */
    bgc_replicas r;
    memset(&r, 0, sizeof r);
    if (bgc_replicas_option(&r, BGC_OPT_MIN_REPLICAS_ACK - 1, s) ||
        bgc_replicas_option(&r, BGC_OPT_MIN_REPLICAS_TIMEOUT + 1, s) || r.value[0] || r.value[1])
        abort();

    free(s);
    return 0;
}
