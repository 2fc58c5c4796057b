/* fuzz_opts.c: feeds arbitrary bytes to the option parsers the programs share (durations, times,
 * whole numbers, queue lists) and checks their promises: a duration is finite and not negative,
 * a number is within its bounds, every queue in a parsed list is a valid queue name. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_int(const char *s, long long min, long long max) {
    long long v = 0;
    if (bgc_parse_int(s, min, max, &v) == 0 && (v < min || v > max))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    double ms = 0;
    if (bgc_parse_duration_ms(s, &ms) == 0 && (!isfinite(ms) || ms < 0))
        abort();

    int64_t t = 0;
    (void)bgc_parse_time_ms(s, &t);

    check_int(s, 0, 1000000);
    check_int(s, -5, 5);
    check_int(s, INT64_MIN, INT64_MAX);

    char **list = NULL;
    size_t n = 0;
    char err[64];
    if (bgc_parse_queues(s, &list, &n, err, sizeof err) == 0) {
        for (size_t i = 0; i < n; i++)
            if (!bg_queue_valid(list[i]))
                abort();
    } else if (memchr(err, '\0', sizeof err) == NULL) {
        abort();
    }
    bgc_free_list(list, n);

    free(s);
    return 0;
}
