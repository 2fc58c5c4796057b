/* clientlist.c: reads what the watcher needs out of two Redis replies: the IDs of a namespace's
 * live fiber connections in CLIENT LIST, and the server's run_id in INFO server. Kept apart from
 * the Redis calls so both parsers can be tested and fuzzed on their own. */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

long long *bg__live_fibers(const char *list, const char *ns, size_t *n) {
    char want[128];
    size_t cap = 64, wl;
    long long *ids = malloc(cap * sizeof *ids);
    *n = 0;
    bg__client_name(want, sizeof want, ns, "worker-fiber:");
    wl = strlen(want);
    for (const char *line = list; ids && line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        /* The first " name=" of the line is the name field: fields are separated by single
         * spaces, and no value before it (id, addr, laddr, fd) ever holds one. */
        const char *name = memmem(line, len, " name=", 6);
        if (strncmp(line, "id=", 3) == 0 && name && (size_t)(line + len - (name + 6)) >= wl &&
            strncmp(name + 6, want, wl) == 0) {
            if (*n == cap) {
                long long *more = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!more)
                    break;
                ids = more;
            }
            ids[(*n)++] = strtoll(line + 3, NULL, 10);
        }
        line = end ? end + 1 : NULL;
    }
    if (ids)
        qsort(ids, *n, sizeof *ids, cmp_ll);
    return ids;
}

void bg__parse_run_id(const char *info, char *out, size_t len) {
    const char *p = info ? strstr(info, "run_id:") : NULL;
    out[0] = '\0';
    if (p)
        bg__fmt(out, len, "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
}
