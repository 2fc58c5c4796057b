/* script.c: the Lua scripts of libbg/lua/, embedded at build time (cmake/embed.cmake). They are
 * loaded with SCRIPT LOAD when a connection opens and run with EVALSHA (conn.c). */
#include <string.h>

#include "bg_int.h"

extern const char bg__lua_enqueue[];
extern const char bg__lua_dequeue[];
extern const char bg__lua_claim[];
extern const char bg__lua_finish[];
extern const char bg__lua_reown[];
extern const char bg__lua_schedule[];
extern const char bg__lua_trim[];
extern const char bg__lua_retry[];
extern const char bg__lua_retry_dead[];
extern const char bg__lua_oldest[];
extern const char bg__lua_dead[];
extern const char bg__lua_purge[];
extern const char bg__lua_cancel[];
extern const char bg__lua_touch[];

static const char *const scripts[BG__LUA_COUNT] = {
    [BG__LUA_ENQUEUE] = bg__lua_enqueue,
    [BG__LUA_DEQUEUE] = bg__lua_dequeue,
    [BG__LUA_CLAIM] = bg__lua_claim,
    [BG__LUA_FINISH] = bg__lua_finish,
    [BG__LUA_REOWN] = bg__lua_reown,
    [BG__LUA_SCHEDULE] = bg__lua_schedule,
    [BG__LUA_TRIM] = bg__lua_trim,
    [BG__LUA_RETRY] = bg__lua_retry,
    [BG__LUA_RETRY_DEAD] = bg__lua_retry_dead,
    [BG__LUA_OLDEST] = bg__lua_oldest,
    [BG__LUA_DEAD] = bg__lua_dead,
    [BG__LUA_PURGE] = bg__lua_purge,
    [BG__LUA_CANCEL] = bg__lua_cancel,
    [BG__LUA_TOUCH] = bg__lua_touch,
};

const char *bg__script_source(bg__script_id id) {
    return scripts[id];
}

int bg__script_refused(const redisReply *r, const char **key, const char **what) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    if (strcmp(r->element[0]->str, "badkey") != 0 && strcmp(r->element[0]->str, "badarg") != 0)
        return 0;
    if (key)
        *key = r->element[1]->str;
    if (what)
        *what = r->element[2]->str;
    return 1;
}
