/* cancels.c: the cancel requests a worker heard of (NS:cancel:<attempt>, written by bg-cli
 * cancel, docs/cli.md#cancel): the main thread adds each attempt its tracking reports, fibers
 * look for the attempts they hold. A small ring: a request is for a job running now, acted on
 * within a tick, so the last BG__CANCELS_MAX are plenty. */
#include <string.h>

#include "worker_int.h"

void bg__cancels_init(bg__cancels *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

void bg__cancels_destroy(bg__cancels *c) {
    pthread_mutex_destroy(&c->mu);
}

void bg__cancels_add(bg__cancels *c, const char *attempt, size_t len) {
    if (len != BG_UUID_LEN)
        return; /* not an attempt bg wrote: no fiber holds it */
    pthread_mutex_lock(&c->mu);
    memcpy(c->ids[c->next], attempt, BG_UUID_LEN);
    c->ids[c->next][BG_UUID_LEN] = '\0';
    c->next = (c->next + 1) % BG__CANCELS_MAX;
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->gen, 1);
}

int bg__cancels_has(bg__cancels *c, const char *attempt) {
    int found = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < BG__CANCELS_MAX && !found; i++)
        found = strcmp(c->ids[i], attempt) == 0;
    pthread_mutex_unlock(&c->mu);
    return found;
}
