/* keys.c: builds every Redis key and client name bg uses, in the layout of docs/schema.md#keys, so
 * the schema lives in one place (the Lua scripts get their prefixes from here too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

static const char *const kind_names[BG__K_COUNT] = {
    [BG__K_JOBS] = "jobs",
    [BG__K_READY] = "ready",
    [BG__K_SCHEDULED] = "scheduled",
    [BG__K_ATTEMPTS] = "attempts",
    [BG__K_PROCESSING] = "processing",
    [BG__K_COMPLETED] = "completed",
    [BG__K_FAILED] = "failed",
    [BG__K_DEAD] = "dead",
    [BG__K_STATS] = "stats",
    [BG__K_JPS] = "jps",
    [BG__K_QUEUES] = "queues",
    [BG__K_PAUSED] = "paused",
    [BG__K_CANCEL] = "cancel",
    [BG__K_WORKER] = "worker",
    [BG__K_WORKERS] = "workers",
    [BG__K_LEASE] = "lease",
};

/* The kinds that name one key of the namespace, with no suffix. */
static int bare(bg__key_kind kind) {
    return kind == BG__K_QUEUES || kind == BG__K_PAUSED || kind == BG__K_WORKERS;
}

int bg__key(char *buf, size_t len, const char *ns, bg__key_kind kind, const char *suffix) {
    int n;
    if (kind < 0 || kind >= BG__K_COUNT)
        return -1;
    if (bare(kind))
        n = snprintf(buf, len, "%s:%s", ns, kind_names[kind]);
    else
        n = snprintf(buf, len, "%s:%s:%s", ns, kind_names[kind], suffix ? suffix : "");
    return n < 0 || (size_t)n >= len ? -1 : n;
}

char *bg__key_dup(const char *ns, bg__key_kind kind, const char *suffix, size_t slen, size_t *len) {
    if (kind < 0 || kind >= BG__K_COUNT || bare(kind))
        return NULL;
    size_t nslen = strlen(ns), klen = strlen(kind_names[kind]);
    char *buf = malloc(nslen + klen + slen + 3);
    if (!buf)
        return NULL;
    /* memcpy, not snprintf: the suffix may hold NULs, and must be kept whole. */
    memcpy(buf, ns, nslen);
    buf[nslen] = ':';
    memcpy(buf + nslen + 1, kind_names[kind], klen);
    buf[nslen + 1 + klen] = ':';
    if (slen)
        memcpy(buf + nslen + klen + 2, suffix, slen);
    buf[nslen + klen + 2 + slen] = '\0';
    *len = nslen + klen + 2 + slen;
    return buf;
}

int bg__client_name(char *buf, size_t len, const char *ns, const char *role) {
    int n = snprintf(buf, len, "%s-%s", ns, role);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static int name_valid(const char *s, size_t max) {
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
        if (n >= max)
            return 0;
    }
    return n >= 1 && n <= max;
}

int bg_namespace_valid(const char *ns) {
    return name_valid(ns, 64);
}

int bg_queue_valid(const char *queue) {
    return name_valid(queue, 128);
}
