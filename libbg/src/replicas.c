/* replicas.c: WAIT N timeout after bg's writes, and what its reply means
 * (docs/operations.md#replicas-and-failover). Redis replicates asynchronously; WAIT tells how
 * many replicas hold every write this connection made so far, which is what a write needs
 * before a failover cannot lose it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bg_int.h"

int bg__replicas_init(bg__replicas *r, const bg_replicas_options *o, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (!o || o->min_ack == 0)
        return BG_OK;
    if (o->min_ack < 0 || o->min_ack > BG_REPLICAS_MAX) {
        bg__fmt(err, errlen, "min replicas ack must be from 0 to %d, not %d", BG_REPLICAS_MAX,
                o->min_ack);
        return BG_EINVAL;
    }
    double t = o->timeout_ms == 0 ? BG_REPLICAS_TIMEOUT_DEFAULT : o->timeout_ms;
    /* !(t > 0) also refuses NaN. */
    if (!(t > 0) || t > BG_REPLICAS_TIMEOUT_MAX) {
        bg__fmt(err, errlen, "min replicas timeout must be above 0 and at most %.0f ms",
                BG_REPLICAS_TIMEOUT_MAX);
        return BG_EINVAL;
    }
    r->min_ack = o->min_ack;
    /* Rounded up: WAIT takes whole ms, and its 0 would wait for ever. */
    r->timeout_ms = (int)ceil(t);
    return BG_OK;
}

int bg__replicas_socket_timeout(const bg__replicas *r, int base_ms) {
    return r->min_ack > 0 ? base_ms + r->timeout_ms : base_ms;
}

int bg__replicas_append(bg__conn *c, const bg__replicas *r) {
    char n[16], t[16];
    if (r->min_ack <= 0)
        return BG_OK;
    bg__fmt(n, sizeof n, "%d", r->min_ack);
    bg__fmt(t, sizeof t, "%d", r->timeout_ms);
    const char *argv[] = {"WAIT", n, t};
    return bg__conn_append(c, 3, argv, NULL);
}

/* Checks one WAIT reply. */
static int check(bg__conn *c, const bg__replicas *r, const redisReply *rep, long long *acked,
                 const char *what, char *err, size_t errlen) {
    if (!rep || rep->type != REDIS_REPLY_INTEGER)
        return bg__reply_error(c, rep, err, errlen, "WAIT for replicas on %s", what);
    *acked = rep->integer;
    if (rep->integer >= r->min_ack)
        return BG_OK;
    bg__fmt(err, errlen, "%s: %lld of %d replicas acknowledged within %d ms", what, rep->integer,
            r->min_ack, r->timeout_ms);
    return BG_EREPLICAS;
}

int bg__replicas_reply(bg__conn *c, const bg__replicas *r, long long *acked, const char *what,
                       char *err, size_t errlen) {
    *acked = 0;
    if (r->min_ack <= 0)
        return BG_OK;
    /* Replies are read ahead only while a script is run again after NOSCRIPT, and the WAIT is
     * the last call of its pipeline: a reply waiting here was sent before the rerun's writes. */
    int stale = c->nahead > 0;
    redisReply *rep = bg__conn_reply(c);
    if (rep && stale) {
        freeReplyObject(rep);
        char n[16], t[16];
        bg__fmt(n, sizeof n, "%d", r->min_ack);
        bg__fmt(t, sizeof t, "%d", r->timeout_ms);
        const char *argv[] = {"WAIT", n, t};
        rep = bg__conn_cmd(c, 3, argv, NULL);
    }
    int rc = check(c, r, rep, acked, what, err, errlen);
    if (rep)
        freeReplyObject(rep);
    return rc;
}
