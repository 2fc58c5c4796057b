/* fuzz_clients.c: feeds arbitrary bytes, as a CLIENT LIST reply and as an INFO server reply, to
 * the parsers the watcher judges workers by (clientlist.c), and checks their promises: every ID
 * returned is the id= of a line whose name= starts with NS-worker-fiber:, none is missed, the
 * IDs are sorted, and a run_id is always terminated within its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Namespaces that share prefixes, so a match on too short a name shows. */
static const char *const namespaces[] = {"bg", "bgx", "bg-worker", "b", "onyx-background.v2_"};

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The first field of line (len bytes, no newline) after the first that starts with key, or NULL.
 * Fields are what single spaces separate; *flen is set to the field's length. */
static const char *field(const char *line, size_t len, const char *key, size_t *flen) {
    size_t kl = strlen(key);
    const char *end = line + len, *p = memchr(line, ' ', len);
    while (p && p < end) {
        const char *f = p + 1, *next = memchr(f, ' ', (size_t)(end - f));
        size_t fl = (size_t)((next ? next : end) - f);
        if (fl >= kl && memcmp(f, key, kl) == 0) {
            *flen = fl;
            return f;
        }
        p = next;
    }
    return NULL;
}

/* The IDs bg__live_fibers should return for s, found field by field, unsorted. */
static long long *expected_fibers(const char *s, const char *ns, size_t *n) {
    char prefix[128];
    size_t pl = (size_t)snprintf(prefix, sizeof prefix, "%s-worker-fiber:", ns);
    size_t cap = 16;
    long long *ids = malloc(cap * sizeof *ids);
    *n = 0;
    for (const char *line = s; ids && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line), fl = 0;
        const char *name = field(line, len, "name=", &fl);
        if (len >= 3 && memcmp(line, "id=", 3) == 0 && name && fl - 5 >= pl &&
            memcmp(name + 5, prefix, pl) == 0) {
            if (*n == cap) {
                long long *more = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!more)
                    abort();
                ids = more;
            }
            ids[(*n)++] = strtoll(line + 3, NULL, 10);
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return ids;
}

static void check_fibers(const char *s, const char *ns) {
    size_t n = 0, want_n = 0;
    long long *ids = bg__live_fibers(s, ns, &n);
    long long *want = expected_fibers(s, ns, &want_n);
    if (!ids || !want)
        abort();
    for (size_t i = 1; i < n; i++)
        if (ids[i - 1] > ids[i])
            abort();
    qsort(want, want_n, sizeof *want, cmp_ll);
    if (n != want_n || (n && memcmp(ids, want, n * sizeof *ids) != 0))
        abort();
    free(ids);
    free(want);
}

/* Parses into a heap buffer of exactly len bytes, so the address sanitizer sees a write past
 * it, and checks the result is the start of the run_id: line's value, terminated in time. */
static void check_run_id(const char *s, size_t len) {
    char *out = malloc(len);
    if (!out)
        return;
    memset(out, 'X', len);
    bg__parse_run_id(s, out, len);
    if (memchr(out, '\0', len) == NULL)
        abort();
    const char *p = s ? strstr(s, "run_id:") : NULL;
    size_t want = p ? strcspn(p + 7, "\r\n") : 0;
    if (want > len - 1)
        want = len - 1;
    if (strlen(out) != want || (want && memcmp(out, p + 7, want) != 0))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    for (size_t i = 0; i < sizeof namespaces / sizeof *namespaces; i++)
        check_fibers(s, namespaces[i]);
    size_t none = 1;
    free(bg__live_fibers(NULL, "bg", &none));
    if (none != 0)
        abort();

    static const size_t lens[] = {1, 2, 8, 41, 64};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
        check_run_id(s, lens[i]);
    check_run_id(s, size + 1);
    check_run_id(NULL, 8);

    free(s);
    return 0;
}
