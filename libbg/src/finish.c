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
