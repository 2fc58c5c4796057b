/* finish.c: builds the arguments of finish.lua, the one script that records every outcome, for
 * fibers, for a worker's shutdown, and for watchers. */
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

void bg__finish_record(bg__args *a, const bg__finish_rec *r) {
    bg__args_str(a, r->attempt);
    bg__args_str(a, r->queue);
    bg__args_str(a, r->outcome);
    bg__args_str(a, r->time ? r->time : "");
    bg__args_str(a, r->err ? r->err : "");
    bg__args_str(a, r->msg ? r->msg : "");
    bg__args_ll(a, r->rnd);
    bg__args_str(a, r->guard_wrk ? r->guard_wrk : "");
    bg__args_str(a, r->guard_rid ? r->guard_rid : "");
    bg__args_ll(a, r->max_itr);
}
