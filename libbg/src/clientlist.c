/* clientlist.c: reads two Redis replies bg judges connections by: CLIENT LIST, into a census of
 * a namespace's worker and fiber connections (the watcher's live fibers and the status counts
 * both come from it), and INFO server, for the server's run_id. Kept apart from the Redis calls
 * so both can be tested and fuzzed on their own. */
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

/* The client name prefixes of one namespace (docs/schema.md#client-names), and how much room the
 * census has. */
typedef struct {
    char worker[128], fiber[128]; /* "NS-worker:", "NS-worker-fiber:" */
    size_t wl, fl;
    size_t wcap, fcap;
} census_reader;

static int cmp_worker(const void *a, const void *b) {
    long long x = ((const bg__census_worker *)a)->id, y = ((const bg__census_worker *)b)->id;
    return (x > y) - (x < y);
}

static int cmp_fiber(const void *a, const void *b) {
    long long x = ((const bg__census_fiber *)a)->id, y = ((const bg__census_fiber *)b)->id;
    return (x > y) - (x < y);
}

/* Returns arr with room for more than n elements of size bytes (*cap counts them), or NULL when
 * out of memory (arr is still the caller's then). */
static void *grow(void *arr, size_t n, size_t *cap, size_t size) {
    if (n < *cap)
        return arr;
    size_t more = *cap ? *cap * 2 : 16;
    void *p = realloc(arr, more * size);
    if (p)
        *cap = more;
    return p;
}

/* The value of the first field after the first (id=) that starts with "name=", or NULL; sets
 * *vlen. Fields are what single spaces separate, so "lib-name=" or "fdname=" is never taken for
 * the name. */
static const char *name_field(const char *line, size_t len, size_t *vlen) {
    const char *end = line + len, *p = memchr(line, ' ', len);
    while (p) {
        const char *f = p + 1;
        p = memchr(f, ' ', (size_t)(end - f));
        size_t flen = (size_t)((p ? p : end) - f);
        if (flen >= 5 && memcmp(f, "name=", 5) == 0) {
            *vlen = flen - 5;
            return f + 5;
        }
    }
    return NULL;
}

/* Adds one CLIENT LIST line to the census when it is a worker or fiber connection of the
 * namespace. Names are matched on "NS-worker:" and "NS-worker-fiber:" whole, so namespaces
 * that share a prefix ("bg" and "bg-worker", "bg" and "bgx") never count each other's. */
static int census_line(bg__census *c, census_reader *r, const char *line, size_t len) {
    const char *sp = memchr(line, ' ', len);
    size_t idlen = sp ? (size_t)(sp - line) : len, nlen = 0;
    long long id;
    /* Redis writes id= first; a line that does not start so is not a client. */
    if (idlen < 3 || memcmp(line, "id=", 3) != 0 || bg__parse_ll(line + 3, idlen - 3, &id) != 0)
        return BG_OK;
    const char *name = name_field(line, len, &nlen);
    if (!name)
        return BG_OK;
    if (nlen > r->wl && memcmp(name, r->worker, r->wl) == 0) {
        bg__census_worker *w = grow(c->workers, c->nworkers, &r->wcap, sizeof *w);
        if (!w)
            return BG_ENOMEM;
        c->workers = w;
        w[c->nworkers++] = (bg__census_worker){id, name + r->wl, nlen - r->wl, 0};
    } else if (nlen >= r->fl && memcmp(name, r->fiber, r->fl) == 0) {
        /* Any name with the fiber prefix is a live fiber to the watcher, which must never miss
         * one; only those that give a worker's ID count towards that worker. */
        bg__census_fiber *f = grow(c->fibers, c->nfibers, &r->fcap, sizeof *f);
        if (!f)
            return BG_ENOMEM;
        c->fibers = f;
        bg__census_fiber *nf = &f[c->nfibers++];
        *nf = (bg__census_fiber){id, 0, 0};
        nf->has_worker = bg__parse_ll(name + r->fl, nlen - r->fl, &nf->worker) == 0;
    }
    return BG_OK;
}

/* Gives each worker the number of fibers whose name gives its ID (workers are sorted). */
static void count_fibers(bg__census *c) {
    for (size_t i = 0; i < c->nfibers; i++) {
        if (!c->fibers[i].has_worker)
            continue;
        size_t lo = 0, hi = c->nworkers;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (c->workers[mid].id < c->fibers[i].worker)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < c->nworkers && c->workers[lo].id == c->fibers[i].worker; lo++)
            c->workers[lo].fibers++;
    }
}

int bg__client_census(const char *list, size_t len, const char *ns, bg__census *out) {
    census_reader r = {0};
    memset(out, 0, sizeof *out);
    if (bg__client_name(r.worker, sizeof r.worker, ns, "worker:") < 0 ||
        bg__client_name(r.fiber, sizeof r.fiber, ns, "worker-fiber:") < 0)
        return BG_EINVAL;
    r.wl = strlen(r.worker);
    r.fl = strlen(r.fiber);
    for (const char *p = list, *end = list ? list + len : NULL; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (census_line(out, &r, p, (size_t)((nl ? nl : end) - p)) != BG_OK) {
            bg__census_free(out);
            return BG_ENOMEM;
        }
        p = nl ? nl + 1 : NULL;
    }
    if (out->nworkers)
        qsort(out->workers, out->nworkers, sizeof *out->workers, cmp_worker);
    if (out->nfibers)
        qsort(out->fibers, out->nfibers, sizeof *out->fibers, cmp_fiber);
    count_fibers(out);
    return BG_OK;
}

void bg__census_free(bg__census *c) {
    if (!c)
        return;
    free(c->workers);
    free(c->fibers);
    memset(c, 0, sizeof *c);
}

int bg__census_has_fiber(const bg__census *c, long long id) {
    bg__census_fiber key = {id, 0, 0};
    return c->nfibers && bsearch(&key, c->fibers, c->nfibers, sizeof key, cmp_fiber) != NULL;
}

void bg__parse_run_id(const char *info, char *out, size_t len) {
    const char *p = info ? strstr(info, "run_id:") : NULL;
    out[0] = '\0';
    if (p)
        bg__fmt(out, len, "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
}
