/* fuzz_opts.c: feeds arbitrary bytes to the option parsers the programs share (durations, times,
 * whole numbers, queue lists) and checks their promises: a duration is finite and not negative,
 * a number is within its bounds, every queue in a parsed list is a valid queue name, a TLS option
 * passes only with a rediss:// URL. */
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

    /* --liveness takes its two words exactly, nothing else. */
    bg_liveness lv = BG_LIVENESS_CLIENTID;
    int taken = bgc_parse_liveness(s, &lv) == 0;
    if (taken != (strcmp(s, "clientid") == 0 || strcmp(s, "lease") == 0) ||
        (taken && lv != (strcmp(s, "lease") == 0 ? BG_LIVENESS_LEASE : BG_LIVENESS_CLIENTID)))
        abort();

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

    /* The TLS options against a URL: a server name (no file, which the check would open) with
     * the input as the URL, and the input as the name of a rediss:// URL. */
    bgc_tls tls;
    char terr[128];
    memset(&tls, 0, sizeof tls);
    tls.tls.server_name = s;
    tls.from[3] = "--tls-server-name";
    int rc = bgc_tls_check(&tls, s, terr, sizeof terr);
    if ((rc == 0) != (strncmp(s, "rediss://", 9) == 0 && *s))
        abort();
    if (rc != 0 && memchr(terr, '\0', sizeof terr) == NULL)
        abort();
    if (bgc_tls_check(&tls, "rediss://h", terr, sizeof terr) != (*s ? 0 : -1))
        abort();

    free(s);
    return 0;
}
