/* lua_cache.c — `lp.cache`: the worker's in-process LRU, from Lua.
 *
 *   cache.set(key, value, ttl_seconds)  value: string, number, boolean or a
 *                                       JSON-encodable table (stored encoded)
 *   cache.get(key)                      → value, or nil when absent/expired
 *   cache.delete(key)                   → true if it was there
 *
 * The cache lives in C, outside generations: entries survive a reload. */
#include <lauxlib.h>
#include <lua.h>

#include "bindings.h"
#include "cache.h"
#include "host.h"
#include "lp.h"

/* The first byte of a stored value says how to give it back. */
enum { TAG_STRING = 's', TAG_JSON = 'j' };

static lp_cache *cache_of(lua_State *L)
{
    lp_cache *c = lp_host_from(L)->cache;
    if (c == NULL) luaL_error(L, "cache not available");
    return c;
}

static int l_set(lua_State *L)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    luaL_checkany(L, 2);
    lua_Number ttl = luaL_optnumber(L, 3, 0);
    char tag = TAG_STRING;
    if (lua_type(L, 2) != LUA_TSTRING) {
        tag = TAG_JSON;
        lua_pushvalue(L, lua_upvalueindex(1)); /* json.encode */
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        lua_replace(L, 2);
    }
    size_t vlen;
    const char *v = lua_tolstring(L, 2, &vlen);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, tag);
    luaL_addlstring(&b, v, vlen);
    luaL_pushresult(&b);
    v = lua_tolstring(L, -1, &vlen);
    if (lp_cache_set(cache_of(L), key, klen, v, vlen, ttl * 1000.0, lp_now_ms()) != 0)
        return luaL_error(L, "out of memory");
    return 0;
}

static int l_get(lua_State *L)
{
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *v = lp_cache_get(cache_of(L), key, klen, &vlen, lp_now_ms());
    if (v == NULL || vlen == 0) return 0;
    if (v[0] == TAG_STRING) {
        lua_pushlstring(L, v + 1, vlen - 1);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(2)); /* json.decode */
    lua_pushlstring(L, v + 1, vlen - 1);
    lua_call(L, 1, 1);
    return 1;
}

static int l_delete(lua_State *L)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    lua_pushboolean(L, lp_cache_delete(cache_of(L), key, klen));
    return 1;
}

int luaopen_lp_cache(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lp.json");
    lua_call(L, 1, 1);
    int json = lua_gettop(L);
    lua_newtable(L);
    lua_getfield(L, json, "encode");
    lua_pushcclosure(L, l_set, 1);
    lua_setfield(L, -2, "set");
    lua_getfield(L, json, "encode");
    lua_getfield(L, json, "decode");
    lua_pushcclosure(L, l_get, 2);
    lua_setfield(L, -2, "get");
    lua_pushcfunction(L, l_delete);
    lua_setfield(L, -2, "delete");
    return 1;
}
