/* finish.c: outcomes, and the arguments of finish.lua, the one script that records every
 * outcome, for fibers and for watchers. An outcome is one bg__outcome from the handler (or the
 * watcher's judgement) to the script's ARGV; its names are written here only. */
#include <string.h>

#include "bg_int.h"

static void prefixes(bg__args *a, const char *ns) {
    static const bg__key_kind kinds[] = {
        BG__K_ATTEMPTS,  BG__K_JOBS, BG__K_PROCESSING, BG__K_COMPLETED, BG__K_FAILED,
        BG__K_SCHEDULED, BG__K_DEAD, BG__K_READY,      BG__K_STATS,     BG__K_JPS};
    char prefix[128];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        bg__key(prefix, sizeof prefix, ns, kinds[i], "");
        bg__args_str(a, prefix);
    }
}

void bg__finish_args(bg__args *a, const char *ns) {
    prefixes(a, ns);
    bg__args_ll(a, 0);
}

int bg__finish_is_short(const bg__outcome *o) {
    return o->kind == BG__OUTCOME_OK && o->time[0] && !(o->guard_wrk && *o->guard_wrk) &&
           !(o->guard_rid && *o->guard_rid);
}

void bg__finish_batch(bg__args *a, const char *ns, const bg__outcome *o, int n) {
    int nshort = 0, groups = 0;
    while (nshort < n && bg__finish_is_short(&o[nshort]))
        nshort++;
    for (int i = 0; i < nshort; i++)
        groups += i == 0 || strcmp(o[i].queue, o[i - 1].queue) != 0;
    prefixes(a, ns);
    bg__args_ll(a, groups);
    for (int i = 0; i < nshort;) {
        int k = 1;
        while (i + k < nshort && strcmp(o[i + k].queue, o[i].queue) == 0)
            k++;
        bg__args_str(a, o[i].queue);
        bg__args_ll(a, k);
        for (int j = i; j < i + k; j++) {
            bg__args_str(a, o[j].attempt);
            bg__args_str(a, o[j].time);
        }
        i += k;
    }
    for (int i = nshort; i < n; i++)
        bg__finish_record(a, &o[i]);
}

/* The outcome names of finish.lua's ARGV, written once. */
static const char *const outcome_names[] = {
    [BG__OUTCOME_OK] = "ok",           [BG__OUTCOME_FAIL] = "fail",
    [BG__OUTCOME_DEAD] = "dead",       [BG__OUTCOME_SHUTDOWN] = "shutdown",
    [BG__OUTCOME_UNCLAIM] = "unclaim", [BG__OUTCOME_VANISH] = "vanish"};

const char *bg__outcome_name(bg__outcome_kind kind) {
    return (unsigned)kind < sizeof outcome_names / sizeof outcome_names[0] ? outcome_names[kind]
                                                                           : "";
}

void bg__outcome_set(bg__outcome *o, bg__outcome_kind kind, const char *err, const char *msg) {
    o->kind = kind;
    bg__fmt(o->err, sizeof o->err, "%s", err ? err : "");
    if (!msg)
        msg = "";
    bg__utf8_cut(msg, strlen(msg), BG__MSG_MAX, o->msg);
}

/* A guard, byte for byte: finish.lua compares it whole with what the attempt holds. */
static void guard(bg__args *a, const char *s, size_t len) {
    if (!s)
        s = "";
    bg__args_add(a, s, len ? len : strlen(s));
}

void bg__finish_record(bg__args *a, const bg__outcome *o) {
    bg__args_str(a, o->attempt);
    bg__args_str(a, o->queue);
    bg__args_str(a, bg__outcome_name(o->kind));
    bg__args_str(a, o->time);
    bg__args_str(a, o->err);
    bg__args_str(a, o->msg);
    bg__args_ll(a, o->rnd);
    guard(a, o->guard_wrk, o->guard_wrk_len);
    guard(a, o->guard_rid, o->guard_rid_len);
    bg__args_ll(a, o->max_itr);
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
