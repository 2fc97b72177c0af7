/* lua_log.c — `lp.log`: one JSON line per event, with the request id.
 *
 *   log.info{msg = "user registered", userId = 42}
 *   log.warn("redis unavailable", {op = "cache"})
 *   log.error{...}
 *
 * The current task's request id is added automatically. Field values are
 * encoded with lp.json; a value JSON cannot hold is logged as its tostring. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "bindings.h"
#include "log.h"
#include "task.h"

static int l_log(lua_State *L)
{
    const char *level = lua_tostring(L, lua_upvalueindex(1));
    const char *msg = "";
    int fields = 0;
    if (lua_type(L, 1) == LUA_TTABLE) {
        fields = 1;
        lua_getfield(L, 1, "msg");
        msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    } else {
        msg = luaL_optstring(L, 1, "");
        if (lua_type(L, 2) == LUA_TTABLE) fields = 2;
    }
    const char *encoded = NULL;
    if (fields) {
        /* copy without msg, encode with lp.json (upvalue 2) */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, fields)) {
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "msg") == 0) {
                lua_pop(L, 1);
                continue;
            }
            int t = lua_type(L, -1);
            if (t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD) {
                lua_pop(L, 1);
                lua_pushstring(L, luaL_typename(L, -1));
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) == 0) {
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            /* strip the braces: lp_log wants the object's body */
            if (s && n > 2 && s[0] == '{') {
                lua_pushlstring(L, s + 1, n - 2);
                encoded = lua_tostring(L, -1);
            }
        }
    }
    lp_task *t = lp_task_current(L);
    lp_log(level, msg, t ? lp_task_request_id(t) : NULL, encoded);
    return 0;
}

int luaopen_lp_log(lua_State *L)
{
    static const char *levels[] = {"info", "warn", "error", "debug"};
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lp.json");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "encode");
    int enc = lua_gettop(L);
    lua_newtable(L);
    for (int i = 0; i < 4; i++) {
        lua_pushstring(L, levels[i]);
        lua_pushvalue(L, enc);
        lua_pushcclosure(L, l_log, 2);
        lua_setfield(L, -2, levels[i]);
    }
    return 1;
}
