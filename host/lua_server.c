/* lua_server.c — `lp.server`: streaming responses and host events.
 *
 *   server.stream(status, headers)  starts a chunked response for the
 *                                   calling request → true, or nil, "closed"
 *   server.write(data)              sends one chunk → true, or false once the
 *                                   client went away (stop producing then)
 *   server.client_alive()           false once the request's client is gone
 *   server.on(event, fn)            fn(payload) runs as a background task
 *                                   whenever the host emits `event` (e.g.
 *                                   "pg:<channel>" for NOTIFY)
 *   server.generation()             the current script generation number
 *   server.worker()                 this worker's index (0-based)
 *   server.dev()                    true in development mode
 *   server.serving()                true in a `lifeplan serve` worker once it
 *                                   listens; false under `lifeplan run`,
 *                                   `collect` and `jobs run` (background jobs
 *                                   check it so a one-off command never
 *                                   takes over the hosts' work)
 *
 * After a handler that streamed returns, the host ends the chunked body. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "bindings.h"
#include "host.h"
#include "http.h"
#include "task.h"
#include "vm.h"

static lp_request *current_request(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    lp_request *req = lp_task_request(t);
    if (req == NULL) luaL_error(L, "not inside a request");
    return req;
}

static int l_stream(lua_State *L)
{
    lp_request *req = current_request(L);
    int status = (int)luaL_optinteger(L, 1, 200);
    if (req->streaming) return luaL_error(L, "response already started");
    lp_header hdrs[32];
    int n = 0;
    if (lua_istable(L, 2)) {
        lua_pushnil(L);
        while (lua_next(L, 2) != 0 && n < 32) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
                lp_header *h = &hdrs[n++];
                h->name = lua_tolstring(L, -2, &h->name_len);
                h->value = lua_tolstring(L, -1, &h->value_len); /* anchored in the table */
            }
            lua_pop(L, 1);
        }
    }
    if (lp_request_stream_start(req, status, hdrs, n) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_write(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lp_request *req = current_request(L);
    if (!req->streaming) return luaL_error(L, "call server.stream first");
    lua_pushboolean(L, lp_request_stream_write(req, s, n) == 0);
    return 1;
}

static int l_client_alive(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    lua_pushboolean(L, lp_task_client_alive(t));
    return 1;
}

static int l_on(lua_State *L)
{
    const char *event = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lp_vm_push_events(L);
    lua_getfield(L, -1, event);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, event);
    }
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
    return 0;
}

static int l_generation(lua_State *L)
{
    lua_pushinteger(L, lp_vm_generation(lp_host_from(L)->vm));
    return 1;
}

static int l_worker(lua_State *L)
{
    lua_pushinteger(L, lp_host_from(L)->worker_id);
    return 1;
}

static int l_dev(lua_State *L)
{
    lua_pushboolean(L, lp_host_from(L)->cfg->dev);
    return 1;
}

static int l_serving(lua_State *L)
{
    lua_pushboolean(L, lp_host_from(L)->server != NULL);
    return 1;
}

int luaopen_lp_server(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"stream", l_stream}, {"write", l_write},           {"client_alive", l_client_alive},
        {"on", l_on},         {"generation", l_generation}, {"worker", l_worker},
        {"dev", l_dev},       {"serving", l_serving},       {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
