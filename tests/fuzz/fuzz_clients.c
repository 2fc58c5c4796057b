/* fuzz_clients.c: feeds arbitrary bytes, as a CLIENT LIST reply and as an INFO server reply, to
 * the parsers bg judges connections by (clientlist.c), and checks their promises: the census of
 * each namespace holds exactly the workers and fibers an independent field-by-field reading
 * finds, sorted, each worker with the number of fibers that name it, never a connection of a
 * namespace that merely shares a prefix; and a run_id is always terminated within its buffer. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Namespaces that share prefixes, so a match on too short a name shows. */
static const char *const namespaces[] = {"bg", "bgx", "bg-worker", "b", "onyx-background.v2_"};
#define NNS (sizeof namespaces / sizeof *namespaces)

/* One field of a line: what single spaces separate. */
typedef struct {
    const char *p;
    size_t len;
} span;

static int starts(span f, const char *prefix) {
    size_t pl = strlen(prefix);
    return f.len >= pl && memcmp(f.p, prefix, pl) == 0;
}

/* Cuts line into its fields; returns how many (the caller frees *out). */
static size_t split(span line, span **out) {
    size_t n = 1;
    for (size_t i = 0; i < line.len; i++)
        n += line.p[i] == ' ';
    span *f = malloc(n * sizeof *f);
    if (!f)
        abort();
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= line.len; i++) {
        if (i == line.len || line.p[i] == ' ') {
            f[k++] = (span){line.p + start, i - start};
            start = i + 1;
        }
    }
    *out = f;
    return k;
}

/* Adds to want the worker or fiber of ns that line is, if any. Numbers are read by
 * bg__parse_ll, which fuzz_text holds to whole decimal integers. */
static void expect_line(span line, const char *ns, bg__census *want) {
    char wp[128], fp[128];
    snprintf(wp, sizeof wp, "%s-worker:", ns);
    snprintf(fp, sizeof fp, "%s-worker-fiber:", ns);
    span *f;
    size_t n = split(line, &f), k = 1;
    long long id, wid = 0;
    while (k < n && !starts(f[k], "name="))
        k++;
    if (starts(f[0], "id=") && bg__parse_ll(f[0].p + 3, f[0].len - 3, &id) == 0 && k < n) {
        span name = {f[k].p + 5, f[k].len - 5};
        size_t wl = strlen(wp), fl = strlen(fp);
        if (starts(name, wp) && name.len > wl) {
            want->workers[want->nworkers++] =
                (bg__census_worker){id, name.p + wl, name.len - wl, 0};
        } else if (starts(name, fp)) {
            int has = bg__parse_ll(name.p + fl, name.len - fl, &wid) == 0;
            want->fibers[want->nfibers++] = (bg__census_fiber){id, has ? wid : 0, has};
        }
    }
    free(f);
}

/* The census bg__client_census should give, unsorted and without fiber counts. */
static void expect(const char *s, size_t size, const char *ns, bg__census *want) {
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += s[i] == '\n';
    want->workers = malloc(lines * sizeof *want->workers);
    want->fibers = malloc(lines * sizeof *want->fibers);
    want->nworkers = want->nfibers = 0;
    if (!want->workers || !want->fibers)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || s[i] == '\n') {
            expect_line((span){s + start, i - start}, ns, want);
            start = i + 1;
        }
    }
}

/* Orders by every field, so two readings of the same lines compare equal. */
static int cmp_worker(const void *a, const void *b) {
    const bg__census_worker *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->queues > y->queues) - (x->queues < y->queues);
}

static int cmp_fiber(const void *a, const void *b) {
    const bg__census_fiber *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    if (x->has_worker != y->has_worker)
        return x->has_worker - y->has_worker;
    return (x->worker > y->worker) - (x->worker < y->worker);
}

/* A copy of the n elements of size bytes at arr, sorted by cmp; the caller frees it. */
static void *sorted_copy(const void *arr, size_t n, size_t size,
                         int (*cmp)(const void *, const void *)) {
    void *copy = malloc(n * size + 1);
    if (!copy)
        abort();
    if (n)
        memcpy(copy, arr, n * size);
    qsort(copy, n, size, cmp);
    return copy;
}

/* Checks got's fibers against want's, and bg__census_has_fiber around each of them. */
static void check_fibers(const bg__census *got, bg__census *want) {
    for (size_t i = 1; i < got->nfibers; i++)
        if (got->fibers[i - 1].id > got->fibers[i].id)
            abort();
    bg__census_fiber *g = sorted_copy(got->fibers, got->nfibers, sizeof *g, cmp_fiber);
    qsort(want->fibers, want->nfibers, sizeof *want->fibers, cmp_fiber);
    if (got->nfibers != want->nfibers)
        abort();
    for (size_t i = 0; i < want->nfibers; i++) {
        long long id = want->fibers[i].id;
        if (cmp_fiber(&g[i], &want->fibers[i]) != 0 || !bg__census_has_fiber(got, id))
            abort();
        /* The IDs just outside each run of known ones are not fibers. */
        if (id > LLONG_MIN && (i == 0 || want->fibers[i - 1].id < id - 1) &&
            bg__census_has_fiber(got, id - 1))
            abort();
        if (id < LLONG_MAX && (i + 1 == want->nfibers || want->fibers[i + 1].id > id + 1) &&
            bg__census_has_fiber(got, id + 1))
            abort();
    }
    free(g);
}

/* Checks got's workers against want's, each with the fibers whose name gives its ID. */
static void check_workers(const bg__census *got, bg__census *want) {
    for (size_t i = 1; i < got->nworkers; i++)
        if (got->workers[i - 1].id > got->workers[i].id)
            abort();
    bg__census_worker *g = sorted_copy(got->workers, got->nworkers, sizeof *g, cmp_worker);
    qsort(want->workers, want->nworkers, sizeof *want->workers, cmp_worker);
    if (got->nworkers != want->nworkers)
        abort();
    for (size_t i = 0; i < want->nworkers; i++) {
        size_t fibers = 0;
        for (size_t j = 0; j < want->nfibers; j++)
            fibers += want->fibers[j].has_worker && want->fibers[j].worker == want->workers[i].id;
        if (cmp_worker(&g[i], &want->workers[i]) != 0 || g[i].len != want->workers[i].len ||
            g[i].fibers != fibers)
            abort();
    }
    free(g);
}

static void check_census(const char *s, size_t size, const char *ns, bg__census *got) {
    bg__census want;
    if (bg__client_census(s, size, ns, got) != BG_OK)
        abort();
    expect(s, size, ns, &want);
    check_workers(got, &want);
    check_fibers(got, &want);
    free(want.workers);
    free(want.fibers);
}

/* A line is one namespace's worker at most: no two censuses share a worker's queue text. */
static void check_apart(const bg__census *c) {
    for (size_t a = 0; a < NNS; a++)
        for (size_t b = a + 1; b < NNS; b++)
            for (size_t i = 0; i < c[a].nworkers; i++)
                for (size_t j = 0; j < c[b].nworkers; j++)
                    if (c[a].workers[i].queues == c[b].workers[j].queues)
                        abort();
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

    /* The whole input, NULs included: the census reads the reply's length, not a string. */
    bg__census c[NNS];
    for (size_t i = 0; i < NNS; i++)
        check_census(s, size, namespaces[i], &c[i]);
    check_apart(c);
    for (size_t i = 0; i < NNS; i++)
        bg__census_free(&c[i]);
    bg__census none;
    if (bg__client_census(NULL, 0, "bg", &none) != BG_OK || none.nworkers || none.nfibers ||
        bg__census_has_fiber(&none, 0))
        abort();
    bg__census_free(&none);

    static const size_t lens[] = {1, 2, 8, 41, 64};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++)
        check_run_id(s, lens[i]);
    check_run_id(s, size + 1);
    check_run_id(NULL, 8);

    free(s);
    return 0;
}
