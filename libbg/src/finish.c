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

bg__finish_code bg__finish_result(const redisReply *e, const char **key, const char **what) {
    *key = *what = "";
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer >= 0 && e->integer <= 2 ? (bg__finish_code)e->integer : BG__FINISH_ODD;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_STRING ||
        e->element[2]->type != REDIS_REPLY_STRING)
        return BG__FINISH_ODD;
    *key = e->element[1]->str;
    *what = e->element[2]->str;
    long long code = e->element[0]->integer;
    return code == 0 || code == 2 ? (bg__finish_code)code : BG__FINISH_ODD;
}
