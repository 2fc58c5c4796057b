/* control.c: pausing and resuming queues (NS:paused) and cancelling jobs (cancel.lua), for
 * bg-cli pause, resume and cancel (docs/cli.md). */
#include <string.h>

#include "bg_int.h"

#define CANCEL_KEEP_MS "3600000" /* a cancel request no worker took is dropped after an hour */

/* SADD or SREM (cmd) of queue in NS:paused; what names the call in messages. */
static int set_paused(bg_client *c, const char *cmd, const char *what, const char *queue,
                      int *changed) {
    char key[256];
    int rc;
    if (!c)
        return BG_EINVAL;
    if (!queue || !bg_queue_valid(queue))
        return bg__client_fail(c, BG_EINVAL, "invalid queue '%s': 1 to 128 of A-Z a-z 0-9 _ . -",
                               queue ? queue : "");
    if ((rc = bg__client_ensure(c)) != BG_OK)
        return rc;
    bg__key(key, sizeof key, c->ns, BG__K_PAUSED, NULL);
    const char *argv[] = {cmd, key, queue};
    redisReply *r = bg__conn_cmd(&c->conn, 3, argv, NULL);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (changed)
            *changed = r->integer > 0;
        rc = BG_OK;
    } else {
        rc = bg__client_reply_fail(c, r, what);
    }
    freeReplyObject(r);
    return rc;
}

int bg_queue_pause(bg_client *c, const char *queue, int *changed) {
    return set_paused(c, "SADD", "pause", queue, changed);
}

int bg_queue_resume(bg_client *c, const char *queue, int *changed) {
    return set_paused(c, "SREM", "resume", queue, changed);
}

/* The reply {'running', attempt}: copies the attempt; 1 when r is one. */
static int running_reply(const redisReply *r, bg_uuid attempt) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "running") != 0 ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return 0;
    if (attempt)
        bg__fmt(attempt, BG_UUID_LEN + 1, "%s", r->element[1]->str);
    return 1;
}

int bg_job_cancel(bg_client *c, const char *job, bg_cancel_result *what, bg_uuid attempt) {
    /* cancel.lua's ARGV: the prefixes of these kinds, then the job and how long to keep. */
    static const bg__key_kind kinds[] = {BG__K_JOBS,       BG__K_READY,    BG__K_SCHEDULED,
                                         BG__K_PROCESSING, BG__K_ATTEMPTS, BG__K_CANCEL};
    enum { NKINDS = sizeof kinds / sizeof kinds[0] };
    char prefix[NKINDS][256];
    const char *argv[NKINDS + 2];
    int rc;
    if (attempt)
        attempt[0] = '\0';
    if (!c)
        return BG_EINVAL;
    if ((rc = bg__client_start_job(c, job)) != BG_OK)
        return rc;
    for (int i = 0; i < NKINDS; i++) {
        bg__key(prefix[i], sizeof prefix[i], c->ns, kinds[i], "");
        argv[i] = prefix[i];
    }
    argv[NKINDS] = job;
    argv[NKINDS + 1] = CANCEL_KEEP_MS;
    redisReply *r = bg__conn_eval_strs(&c->conn, BG__LUA_CANCEL, 0, NKINDS + 2, argv);
    if (r && running_reply(r, attempt)) {
        if (what)
            *what = BG_CANCEL_STOPPING;
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        if (what)
            *what = BG_CANCEL_REMOVED;
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        rc = bg__client_fail(c, BG_ENOTFOUND, "no job %s", job);
    } else if (r && r->type == REDIS_REPLY_INTEGER) {
        rc = bg__client_fail(c, BG_ESTATE, "job %s neither waits nor runs (it is dead or finished)",
                             job);
    } else {
        rc = bg__client_reply_fail(c, r, "cancel");
    }
    freeReplyObject(r);
    return rc;
}
