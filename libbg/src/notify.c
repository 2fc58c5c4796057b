/* notify.c: Redis's reports of key changes, for blocking on several keys at once without
 * popping anything: client tracking in broadcast mode for key prefixes, redirected to a
 * connection subscribed to __redis__:invalidate. Workers wait on their ready lists this way,
 * watchers on their scheduled sets (docs/claim.md). */
#include <poll.h>
#include <string.h>

#include "bg_int.h"

#define PING_EVERY_MS 1000
#define HANG_AFTER_MS 3000 /* no answer to a PING for this long: Redis hangs */

int bg__notify_track(bg__conn *tracker, long long redirect_id, const char *const *prefixes,
                     int nprefixes, int noloop) {
    bg__args a;
    bg__args_init(&a);
    bg__args_str(&a, "CLIENT");
    bg__args_str(&a, "TRACKING");
    bg__args_str(&a, "ON");
    bg__args_str(&a, "REDIRECT");
    bg__args_ll(&a, redirect_id);
    bg__args_str(&a, "BCAST");
    for (int i = 0; i < nprefixes; i++) {
        bg__args_str(&a, "PREFIX");
        bg__args_str(&a, prefixes[i]);
    }
    if (noloop)
        bg__args_str(&a, "NOLOOP");
    redisReply *r = bg__conn_cmd_args(tracker, &a);
    bg__args_free(&a);
    if (!r)
        return BG_EIO;
    int rc = r->type == REDIS_REPLY_ERROR ? BG_EACL : BG_OK;
    if (rc != BG_OK)
        bg__fmt(tracker->err, sizeof tracker->err, "CLIENT TRACKING refused: %s", r->str);
    freeReplyObject(r);
    return rc;
}

int bg__notify_subscribe(bg__notify *n) {
    const char *argv[] = {"SUBSCRIBE", "__redis__:invalidate"};
    redisReply *r = bg__conn_cmd(&n->conn, 2, argv, NULL);
    if (!r)
        return BG_EIO;
    freeReplyObject(r);
    n->last_data_ms = n->last_ping_ms = bg__mono_ms();
    n->hung = 0;
    return BG_OK;
}

int bg__notify_wait(bg__notify *n, int wait_ms) {
    if (!bg__conn_ok(&n->conn))
        return -1;
    struct pollfd p = {n->conn.rc->fd, POLLIN, 0};
    int got = 0, ready = poll(&p, 1, wait_ms < 0 ? 0 : wait_ms);
    double now = bg__mono_ms();
    if (ready > 0) {
        if (redisBufferRead(n->conn.rc) != REDIS_OK) {
            bg__conn_close(&n->conn);
            return -1;
        }
        n->last_data_ms = now;
        void *reply;
        while (redisGetReplyFromReader(n->conn.rc, &reply) == REDIS_OK && reply) {
            const redisReply *r = reply;
            /* ["message", "__redis__:invalidate", [keys]] (or a nil for a flush) */
            if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[0]->str, "message") == 0) {
                got++;
                const redisReply *keys = r->elements >= 3 ? r->element[2] : NULL;
                for (size_t i = 0;
                     n->on_key && keys && keys->type == REDIS_REPLY_ARRAY && i < keys->elements;
                     i++)
                    if (keys->element[i]->type == REDIS_REPLY_STRING)
                        n->on_key(n->ud, keys->element[i]->str, keys->element[i]->len);
            }
            freeReplyObject(reply);
        }
    }
    if (now - n->last_ping_ms >= PING_EVERY_MS) {
        const char *argv[] = {"PING"};
        int done = 0;
        n->last_ping_ms = now;
        if (redisAppendCommandArgv(n->conn.rc, 1, argv, NULL) != REDIS_OK ||
            redisBufferWrite(n->conn.rc, &done) != REDIS_OK) {
            bg__conn_close(&n->conn);
            return -1;
        }
    }
    if (now - n->last_data_ms > HANG_AFTER_MS) {
        n->hung = 1;
        bg__conn_close(&n->conn);
        return -1;
    }
    return got;
}
