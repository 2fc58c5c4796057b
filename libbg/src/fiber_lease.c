/* fiber_lease.c: a fiber's lease, with --liveness lease (docs/operations.md#liveness): the key
 * NS:lease:<lease ID> that the fiber's claims set and that it keeps fresh, every third of its
 * TTL, while it runs a job. Each attempt the fiber claims names the lease in its lse field; a
 * watcher takes an attempt whose lease expired for one whose worker vanished. Fiber thread
 * only. */
#include <string.h>

#include "fiber_int.h"

void bg__fiber_lease_init(bg__fiber *f) {
    f->lease[0] = f->lease_key[0] = '\0';
    if (f->w->lease_ms <= 0)
        return;
    /* A lease of its own per fiber and run: a fiber that died leaves only its own attempts
     * to expire with it. */
    bg_uuid_new(f->lease);
    bg__fmt(f->lease_key, sizeof f->lease_key, "%s%s", f->w->key_prefix[BG__K_LEASE], f->lease);
}

void bg__fiber_lease_args(const bg__fiber *f, bg__args *a) {
    bg__args_str(a, f->lease_key);
    bg__args_str(a, f->lease);
    bg__args_ll(a, f->w->lease_ms);
}

void bg__fiber_lease_tend(bg__fiber *f) {
    double now = bg__mono_ms();
    if (!f->lease[0] || !bg__conn_ok(&f->conn) || now - f->lease_at_ms < f->w->lease_ms / 3.0)
        return;
    /* SET ... PX whatever the key holds: a lease is the fiber's alone, and a key of another type
     * another tool wrote there is replaced rather than left to fail the fiber's attempts. */
    bg__args a;
    bg__args_init(&a);
    bg__args_str(&a, "SET");
    bg__args_str(&a, f->lease_key);
    bg__args_str(&a, "1");
    bg__args_str(&a, "PX");
    bg__args_ll(&a, f->w->lease_ms);
    redisReply *r = bg__conn_cmd_args(&f->conn, &a);
    bg__args_free(&a);
    if (!r)
        return; /* the connection went: tend_conn reconnects, and reown.lua sets the lease */
    if (r->type == REDIS_REPLY_ERROR)
        bg__fiber_finding(f, BG_LOG_ERROR, f->lease_key, strlen(f->lease_key),
                          "cannot refresh the lease %s: %s; a watcher will fail this fiber's "
                          "attempts once it expires",
                          f->lease_key, r->str);
    else
        f->lease_at_ms = now;
    freeReplyObject(r);
}
