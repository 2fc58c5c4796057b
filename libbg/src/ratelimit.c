/* ratelimit.c: "say it once a minute": a small table of recently logged keys, so that hostile or
 * broken data (a key of the wrong type, junk in a list) is reported without flooding the log,
 * whatever rate it is met at. Shared by a process's threads. */
#include <string.h>

#include "bg_int.h"

void bg__ratelimit_init(bg__ratelimit *rl, double interval_ms) {
    memset(rl, 0, sizeof *rl);
    rl->interval_ms = interval_ms;
    pthread_mutex_init(&rl->mu, NULL);
}

void bg__ratelimit_destroy(bg__ratelimit *rl) {
    pthread_mutex_destroy(&rl->mu);
}

/* FNV-1a: keys are short names chosen by bg (a key name, a queue), not adversarial enough for
 * collisions to matter: a collision only merges two keys' allowances. */
static uint64_t hash(const char *key, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

int bg__ratelimit_allow(bg__ratelimit *rl, const char *key, size_t len, unsigned long *suppressed) {
    uint64_t h = hash(key, len);
    double now = bg__mono_ms();
    int allow = 0;
    pthread_mutex_lock(&rl->mu);
    bg__ratelimit_slot *s = NULL, *oldest = &rl->slots[0];
    for (size_t i = 0; i < BG__RATELIMIT_SLOTS; i++) {
        if (rl->slots[i].hash == h) {
            s = &rl->slots[i];
            break;
        }
        if (rl->slots[i].last_ms < oldest->last_ms)
            oldest = &rl->slots[i];
    }
    if (!s) {
        /* A new key takes the slot used longest ago: with more broken keys than slots, the
         * log still grows by at most one line per slot per interval. */
        s = oldest;
        s->hash = h;
        s->last_ms = now;
        s->suppressed = 0;
        allow = 1;
    } else if (now - s->last_ms >= rl->interval_ms) {
        s->last_ms = now;
        allow = 1;
    }
    if (suppressed)
        *suppressed = allow ? s->suppressed : 0;
    if (allow)
        s->suppressed = 0;
    else
        s->suppressed++;
    pthread_mutex_unlock(&rl->mu);
    return allow;
}
