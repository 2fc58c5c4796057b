/* finish.c: builds the arguments of finish.lua, the one script that records every outcome, for
 * fibers, for a worker's shutdown, and for watchers. */
#include <string.h>

#include "bg_int.h"

void bg__finish_args(bg__args *a, const char *ns) {
    static const bg__key_kind kinds[] = {
        BG__K_ATTEMPTS,  BG__K_JOBS, BG__K_PROCESSING, BG__K_COMPLETED, BG__K_FAILED,
        BG__K_SCHEDULED, BG__K_DEAD, BG__K_READY,      BG__K_STATS,     BG__K_JPS};
    char prefix[128];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        bg__key(prefix, sizeof prefix, ns, kinds[i], "");
        bg__args_str(a, prefix);
    }
}

/* A guard, byte for byte: finish.lua compares it whole with what the attempt holds. */
static void guard(bg__args *a, const char *s, size_t len) {
    if (!s)
        s = "";
    bg__args_add(a, s, len ? len : strlen(s));
}

void bg__finish_record(bg__args *a, const bg__finish_rec *r) {
    bg__finish_record_n(a, r, 0, 0);
}

void bg__finish_record_n(bg__args *a, const bg__finish_rec *r, size_t wrk_len, size_t rid_len) {
    bg__args_str(a, r->attempt);
    bg__args_str(a, r->queue);
    bg__args_str(a, r->outcome);
    bg__args_str(a, r->time ? r->time : "");
    bg__args_str(a, r->err ? r->err : "");
    bg__args_str(a, r->msg ? r->msg : "");
    bg__args_ll(a, r->rnd);
    guard(a, r->guard_wrk, wrk_len);
    guard(a, r->guard_rid, rid_len);
    bg__args_ll(a, r->max_itr);
}
