/* fuzz_url.c: feeds arbitrary bytes to the Redis URL parser and the password masker, and checks
 * what a parsed URL promises (one of host or socket path, a port in range, the password never
 * shown by the mask). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Masks s into a heap buffer of exactly len bytes, so the address sanitizer sees any write past
 * it, and checks the result is terminated within the buffer. */
static void mask_into(const char *s, size_t len) {
    char *buf = malloc(len);
    if (!buf)
        return;
    if (bg_url_mask(s, buf, len) != buf || memchr(buf, '\0', len) == NULL)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    char err[BG__ERRLEN];
    bg__url u;
    int rc = bg__url_parse(s, &u, err, sizeof err);
    if (rc == BG_OK) {
        /* A parsed URL names exactly one endpoint, in range. */
        if ((u.host == NULL) == (u.path == NULL))
            abort();
        if (u.host && (u.port < 1 || u.port > 65535))
            abort();
        if (u.db < 0)
            abort();
        /* A user is only ever given with a password. */
        if (u.user && !u.pass)
            abort();
        if (u.pass) {
            char masked[BG__ERRLEN * 4];
            bg_url_mask(s, masked, sizeof masked);
            if (strlen(s) + 4 < sizeof masked && !strstr(masked, ":***@"))
                abort();
        }
    } else if (rc != BG_EURL && rc != BG_ENOMEM) {
        abort();
    } else if (memchr(err, '\0', sizeof err) == NULL) {
        abort();
    }
    bg__url_clear(&u);

    /* The public wrappers, with buffers of every small size. */
    char small[16];
    (void)bg_url_check(s, small, 1 + (size % sizeof small));
    (void)bg_url_check(s, NULL, 0);
    mask_into(s, 1 + (size % 64));
    mask_into(s, size + 8);

    free(s);
    return 0;
}
