/* lua_redis.c — `lp.redis`: Redis commands from a task.
 *
 *   local redis = require "lp.redis"
 *   local v, err = redis.call("GET", "user:" .. id)
 *   local replies, err = redis.pipeline({ {"SET", "k", "v", "EX", 60}, {"GET", "k"} })
 *
 * Arguments are strings (binary safe) or numbers; an integral number is sent
 * in exact integer form ("60", not "60.0"), others with 17 significant digits.
 *
 * Replies:
 *   status (+OK, +PONG)  → the string ("OK", "PONG")
 *   bulk string          → string
 *   integer              → number; beyond ±2^53 (where a Lua number would
 *                          round) → the decimal string, so nothing is lost
 *   nil                  → nil
 *   array                → Lua array; a nil element is `false` (so # and
 *                          ipairs see every element), an error element is
 *                          {err = "message"}, nested arrays likewise
 *   error (-ERR ...)     → nil, "ERR ..." (the server's text, which starts
 *                          with an upper-case code: ERR, WRONGTYPE, NOAUTH...)
 *
 * Redis trouble never raises: redis.call returns nil plus one of
 * "unavailable" (down or reconnecting), "timeout" (REDIS_TIMEOUT_MS passed;
 * the host reconnects) or "closed" (shutting down), so a caller can treat
 * any failure as a cache miss:
 *
 *   local cached = redis.call("GET", key)   -- nil on a miss *and* on an outage
 *
 * Those words are lower-case, Redis's own error codes upper-case, so the two
 * never collide. Misuse (a table as an argument, calling outside a task)
 * raises a Lua error as usual.
 *
 * redis.pipeline(cmds) sends the commands back to back (not a transaction)
 * and returns one array with a reply per command, mapped as array elements
 * are above (nil → false, error → {err = ...}); or nil, "unavailable" etc.
 * when the connection failed. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>

#include "bindings.h"
#include "host.h"
#include "lp.h"
#include "redis.h"
#include "task.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53 */

static const char *err_word(int status)
{
    switch (status) {
    case LP_ETIMEDOUT:
        return "timeout";
    case LP_ECLOSED:
        return "closed";
    case LP_EINVAL:
        return "invalid command";
    case LP_ENOMEM:
        return "out of memory";
    default:
        return "unavailable";
    }
}

/* ---- Lua arguments → argv ------------------------------------------------- */

typedef struct args {
    const char **argv;
    size_t *argvlen;
    size_t n;
} args;

/* Room for `total` arguments in a userdata left on the stack, so a Lua error
 * part-way leaks nothing. */
static void args_init(lua_State *L, args *a, size_t total)
{
    void *p = lua_newuserdata(L, total * (sizeof(*a->argv) + sizeof(*a->argvlen)));
    a->argv = p;
    a->argvlen = (size_t *)(a->argv + total);
    a->n = 0;
}

/* Appends the value at `idx` (which stays on the stack, so the pointer stays
 * valid); a number is replaced in place by its string form. */
static void args_add(lua_State *L, args *a, int idx, int argn)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNUMBER) {
        lua_Number x = lua_tonumber(L, idx);
        char buf[64];
        if (x == floor(x) && fabs(x) < 9.2e18)
            snprintf(buf, sizeof(buf), "%lld", (long long)x);
        else
            snprintf(buf, sizeof(buf), "%.17g", x);
        lua_pushstring(L, buf);
        lua_replace(L, idx);
    } else if (t != LUA_TSTRING) {
        luaL_error(L, "redis argument #%d: string or number expected, got %s", argn,
                   lua_typename(L, t));
    }
    a->argv[a->n] = lua_tolstring(L, idx, &a->argvlen[a->n]);
    a->n++;
}

/* ---- replies → Lua ----------------------------------------------------------- */

static void push_reply(lua_State *L, const redisReply *r, int nested)
{
    lua_checkstack(L, 4);
    switch (r->type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        if (fabs((double)r->integer) <= MAX_EXACT) {
            lua_pushnumber(L, (lua_Number)r->integer);
        } else {
            char buf[32];
            snprintf(buf, sizeof(buf), "%lld", r->integer);
            lua_pushstring(L, buf);
        }
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)r->elements, 0);
        for (size_t i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case REDIS_REPLY_ERROR:
        /* only reached for nested errors; top-level ones become nil, msg */
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        break;
    default: /* REDIS_REPLY_NIL */
        if (nested)
            lua_pushboolean(L, 0);
        else
            lua_pushnil(L);
        break;
    }
}

typedef struct outcome {
    int status;
    redisReply *reply;    /* call */
    redisReply **replies; /* pipeline */
    size_t n;
} outcome;

static int push_call(lua_State *co, void *data)
{
    outcome *o = data;
    if (o->status != 0) {
        lua_pushnil(co);
        lua_pushstring(co, err_word(o->status));
        return 2;
    }
    if (o->reply->type == REDIS_REPLY_ERROR) {
        lua_pushnil(co);
        lua_pushlstring(co, o->reply->str, o->reply->len);
        return 2;
    }
    push_reply(co, o->reply, 0);
    return 1;
}

static int push_pipeline(lua_State *co, void *data)
{
    outcome *o = data;
    if (o->status != 0) {
        lua_pushnil(co);
        lua_pushstring(co, err_word(o->status));
        return 2;
    }
    lua_createtable(co, (int)o->n, 0);
    for (size_t i = 0; i < o->n; i++) {
        push_reply(co, o->replies[i], 1);
        lua_rawseti(co, -2, (int)i + 1);
    }
    return 1;
}

static void on_call(int status, redisReply *reply, void *data)
{
    outcome o = {status, reply, NULL, 0};
    lp_task_resume(data, push_call, &o);
}

static void on_pipeline(int status, redisReply **replies, size_t n, void *data)
{
    outcome o = {status, NULL, replies, n};
    lp_task_resume(data, push_pipeline, &o);
}

/* ---- the API -------------------------------------------------------------------- */

static int fail(lua_State *L, int status)
{
    lua_pushnil(L);
    lua_pushstring(L, err_word(status));
    return 2;
}

static int l_call(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    int argc = lua_gettop(L);
    luaL_argcheck(L, argc >= 1, 1, "a command name expected");
    args a;
    args_init(L, &a, (size_t)argc);
    for (int i = 1; i <= argc; i++)
        args_add(L, &a, i, i);
    lp_redis *r = lp_host_from(L)->redis;
    int rc = r == NULL ? LP_EUNAVAIL : lp_redis_command(r, argc, a.argv, a.argvlen, on_call, t);
    if (rc != 0) return fail(L, rc);
    return lp_task_yield(L);
}

static int l_pipeline(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    int ncmds = (int)lua_objlen(L, 1);
    luaL_argcheck(L, ncmds >= 1, 1, "at least one command expected");
    size_t total = 0;
    for (int i = 1; i <= ncmds; i++) {
        lua_rawgeti(L, 1, i);
        if (!lua_istable(L, -1) || lua_objlen(L, -1) < 1)
            return luaL_error(L, "redis.pipeline: command #%d is not a non-empty table", i);
        total += lua_objlen(L, -1);
        lua_pop(L, 1);
    }
    int *argcs = lua_newuserdata(L, (size_t)ncmds * sizeof(*argcs));
    args a;
    args_init(L, &a, total);
    /* Each command table stays on the stack, its arguments after it. */
    for (int i = 1; i <= ncmds; i++) {
        lua_rawgeti(L, 1, i);
        int cmd = lua_gettop(L);
        argcs[i - 1] = (int)lua_objlen(L, cmd);
        if (!lua_checkstack(L, argcs[i - 1] + 2))
            return luaL_error(L, "redis.pipeline: too many arguments");
        for (int j = 1; j <= argcs[i - 1]; j++) {
            lua_rawgeti(L, cmd, j);
            args_add(L, &a, lua_gettop(L), j);
        }
    }
    lp_redis *r = lp_host_from(L)->redis;
    int rc = r == NULL
                 ? LP_EUNAVAIL
                 : lp_redis_pipeline(r, (size_t)ncmds, argcs, a.argv, a.argvlen, on_pipeline, t);
    if (rc != 0) return fail(L, rc);
    return lp_task_yield(L);
}

int luaopen_lp_redis(lua_State *L)
{
    static const luaL_Reg fns[] = {{"call", l_call}, {"pipeline", l_pipeline}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
