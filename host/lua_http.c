/* lua_http.c — `lp.http`: outbound HTTP(S) from a task.
 *
 *   local http = require "lp.http"
 *   local status, headers, body = http.request{
 *       method = "POST", url = "https://api.example/v1/chat",
 *       headers = { ["Content-Type"] = "application/json" }, body = payload,
 *       timeout_ms = 30000,          -- whole transfer (default HTTP_TIMEOUT_MS)
 *       connect_timeout_ms = 3000,   -- TCP + TLS set-up (default min(10 s, timeout))
 *       read_timeout_ms = 15000,     -- longest silence before the first byte or
 *                                    -- between chunks (default: none)
 *       max_body_bytes = 1048576,    -- unstreamed bodies (default 16 MiB)
 *       on_chunk = function(chunk, status, headers) ... end,
 *   }
 *
 * Returns status (number), headers (table: lower-case names; a repeated
 * header's values joined with ", ") and body (string; nil when on_chunk
 * streamed it). Any status is a response — 429 and 500 included. When no
 * response could be had it returns nil and an error string whose first word
 * says what happened: "timeout: ...", "unavailable: ..." (could not resolve
 * or connect), "io: ..." (connection broke), "toobig: ...", "cancelled",
 * "closed: ..." (host shutting down), "invalid: ..." (bad URL, method,
 * header). Wrong argument types raise.
 *
 * Streaming. on_chunk(chunk, status, headers) runs for each piece of body as
 * it arrives, in the request's own coroutine; it may yield (write to an SSE
 * stream, call Redis...). Returning false cancels the transfer: http.request
 * then returns nil, "cancelled". An error raised in on_chunk cancels the
 * transfer and propagates.
 *
 * How it avoids calling into a suspended coroutine (STYLE.md, luv #734): the
 * request is a small Lua loop (LOOP below) around three C functions. start()
 * begins the transfer; wait() yields the task until the next event; libcurl's
 * data is queued in C by the fetch callbacks, which only ever *resume* the
 * task from the loop (never run Lua while the coroutine is suspended
 * elsewhere). The Lua loop calls on_chunk with each chunk it is resumed with,
 * then waits again. Chunks that arrive while on_chunk is itself suspended
 * (on a socket write, say) are kept in order until the loop asks for them.
 * There is no back-pressure: a consumer slower than the upstream buffers the
 * difference in memory (fine for LLM token streams, which are small). */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"
#include "fetch.h"
#include "host.h"
#include "lp.h"
#include "task.h"

#define REQ_MT "lp.http.request"

static const char LOOP[] =
    "local start, wait, cancel = ...\n"
    "return function(opts)\n"
    "  if type(opts) ~= 'table' then error('http.request: a table of options expected', 2) end\n"
    "  local on_chunk = opts.on_chunk\n"
    "  if on_chunk ~= nil and type(on_chunk) ~= 'function' then\n"
    "    error('http.request: on_chunk must be a function', 2)\n"
    "  end\n"
    "  local req, err = start(opts)\n"
    "  if not req then return nil, err end\n"
    "  local status, headers, cancelled\n"
    "  while true do\n"
    "    local kind, a, b, c = wait(req)\n"
    "    if kind == 'chunk' then\n"
    "      if b then status, headers = b, c end\n"
    "      if not cancelled then\n"
    "        local ok, more = pcall(on_chunk, a, status, headers)\n"
    "        if not ok then cancel(req); error(more, 0) end\n"
    "        if more == false then cancelled = true; cancel(req) end\n"
    "      end\n"
    "    elseif a == nil then\n"
    "      return nil, b\n"
    "    else\n"
    "      return a, b, c\n"
    "    end\n"
    "  end\n"
    "end\n";

typedef struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
} chunk;

typedef struct lhttp {
    lp_fetch_req *fr;   /* in flight; NULL once on_done ran             */
    lp_task *waiter;    /* the task suspended in wait(), or NULL         */
    chunk *head, *tail; /* chunks not yet handed to Lua                  */
    int head_kept;      /* status and headers copied at the first chunk   */
    int head_pushed;    /* status and headers went with a chunk already */
    int done;           /* on_done ran: the fields below are final       */
    int status;
    int err;
    char *errmsg;
    char *hdrs; /* "name\0value\0" * nh of the latest head       */
    size_t hdrs_len, nh;
    char *body; /* NULL when streamed or failed                   */
    size_t body_len;
    int lua_gone; /* the userdata was collected                     */
} lhttp;

static void lhttp_free(lhttp *p)
{
    for (chunk *c = p->head, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(p->errmsg);
    free(p->hdrs);
    free(p->body);
    free(p);
}

static void keep_headers(lhttp *p, const lp_fetch_response *r)
{
    size_t len = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        len += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 2;
    char *h = malloc(len + 1);
    if (h == NULL) return;
    char *w = h;
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t n = strlen(r->headers[i].name) + 1;
        memcpy(w, r->headers[i].name, n), w += n;
        n = strlen(r->headers[i].value) + 1;
        memcpy(w, r->headers[i].value, n), w += n;
    }
    free(p->hdrs);
    p->hdrs = h;
    p->hdrs_len = len;
    p->nh = r->nheaders;
    p->status = r->status;
}

static void push_headers(lua_State *L, const lhttp *p)
{
    lua_createtable(L, 0, (int)p->nh);
    const char *s = p->hdrs;
    for (size_t i = 0; i < p->nh; i++) {
        const char *name = s, *value = s + strlen(s) + 1;
        s = value + strlen(value) + 1;
        lua_getfield(L, -1, name);
        if (lua_isstring(L, -1)) { /* repeated: join */
            lua_pushliteral(L, ", ");
            lua_pushstring(L, value);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, value);
        }
        lua_setfield(L, -2, name);
    }
}

static const char *err_word(int err)
{
    switch (err) {
    case LP_ETIMEDOUT:
        return "timeout";
    case LP_EUNAVAIL:
        return "unavailable";
    case LP_ETOOBIG:
        return "toobig";
    case LP_ECLOSED:
        return "closed";
    case LP_EINVAL:
        return "invalid";
    case LP_ENOMEM:
        return "nomem";
    default:
        return "io";
    }
}

/* wait()'s values: "chunk", data[, status, headers] or "done", ... */
static int push_event(lua_State *L, lhttp *p)
{
    if (p->head != NULL) {
        chunk *c = p->head;
        p->head = c->next;
        if (p->head == NULL) p->tail = NULL;
        lua_pushliteral(L, "chunk");
        lua_pushlstring(L, c->data, c->len);
        free(c);
        if (p->head_pushed) return 2;
        p->head_pushed = 1;
        lua_pushinteger(L, p->status);
        push_headers(L, p);
        return 4;
    }
    lua_pushliteral(L, "done");
    if (p->err != 0) {
        lua_pushnil(L);
        if (p->errmsg != NULL && strcmp(p->errmsg, "cancelled") == 0)
            lua_pushliteral(L, "cancelled");
        else
            lua_pushfstring(L, "%s: %s", err_word(p->err), p->errmsg ? p->errmsg : "");
        return 3;
    }
    lua_pushinteger(L, p->status);
    push_headers(L, p);
    if (p->body != NULL)
        lua_pushlstring(L, p->body, p->body_len);
    else
        lua_pushnil(L);
    return 4;
}

static int push_waiting(lua_State *co, void *data)
{
    return push_event(co, data);
}

static void wake(lhttp *p)
{
    lp_task *t = p->waiter;
    if (t == NULL) return;
    p->waiter = NULL;
    lp_task_resume(t, push_waiting, p);
}

/* ---- fetch callbacks (on the loop, outside libcurl) ---------------------------- */

static void on_chunk(const lp_fetch_response *head, const char *data, size_t len, void *ud)
{
    lhttp *p = ud;
    if (p->lua_gone) return;
    if (!p->head_kept) {
        keep_headers(p, head);
        p->head_kept = 1;
    }
    chunk *c = malloc(sizeof(*c) + len);
    if (c == NULL) {
        lp_fetch_cancel(p->fr);
        return;
    }
    c->next = NULL;
    c->len = len;
    memcpy(c->data, data, len);
    if (p->tail != NULL)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    wake(p);
}

static void on_done(const lp_fetch_response *r, void *ud)
{
    lhttp *p = ud;
    p->fr = NULL;
    p->done = 1;
    if (p->lua_gone) {
        lhttp_free(p);
        return;
    }
    keep_headers(p, r);
    p->err = r->err;
    if (r->err != 0) p->errmsg = strdup(r->errmsg);
    if (r->err == 0 && r->body != NULL) {
        p->body = malloc(r->body_len + 1);
        if (p->body != NULL) {
            memcpy(p->body, r->body, r->body_len);
            p->body_len = r->body_len;
        } else {
            p->err = LP_ENOMEM;
        }
    }
    wake(p);
}

/* ---- the C half of the Lua loop -------------------------------------------------- */

static lhttp *check_req(lua_State *L)
{
    lhttp **pp = luaL_checkudata(L, 1, REQ_MT);
    return *pp;
}

static int l_gc(lua_State *L)
{
    lhttp **pp = luaL_checkudata(L, 1, REQ_MT);
    lhttp *p = *pp;
    if (p == NULL) return 0;
    *pp = NULL;
    p->lua_gone = 1;
    p->waiter = NULL; /* its state is going away too */
    if (p->done)
        lhttp_free(p);
    else
        lp_fetch_cancel(p->fr); /* on_done frees it */
    return 0;
}

static int l_wait(lua_State *L)
{
    lhttp *p = check_req(L);
    lp_task *t = lp_task_check(L);
    if (p->head != NULL || p->done) return push_event(L, p);
    p->waiter = t;
    return lp_task_yield(L);
}

static int l_cancel(lua_State *L)
{
    lhttp *p = check_req(L);
    if (!p->done) lp_fetch_cancel(p->fr);
    return 0;
}

static int opt_int(lua_State *L, const char *name)
{
    lua_getfield(L, 1, name);
    int v = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 0 || lua_tonumber(L, -1) > 2e9)
            luaL_error(L, "http.request: %s must be a non-negative number", name);
        v = (int)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_str(lua_State *L, int idx, const char *name, size_t *len)
{
    lua_getfield(L, idx, name);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "http.request: %s must be a string", name);
        s = lua_tolstring(L, -1, len);
    }
    /* left on the stack so the string stays alive */
    return s;
}

static int l_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lp_task_check(L);
    lp_fetch *f = lp_host_from(L)->fetch;

    lp_fetch_options o;
    memset(&o, 0, sizeof(o));
    o.url = opt_str(L, 1, "url", NULL);
    if (o.url == NULL) return luaL_error(L, "http.request: url is required");
    size_t mlen = 0;
    const char *method = opt_str(L, 1, "method", &mlen);
    char upper[17];
    if (method != NULL) {
        if (mlen == 0 || mlen >= sizeof(upper)) {
            lua_pushnil(L);
            lua_pushliteral(L, "invalid: bad method");
            return 2;
        }
        for (size_t i = 0; i <= mlen; i++)
            upper[i] = (char)toupper((unsigned char)method[i]);
        o.method = upper;
    }
    o.body = opt_str(L, 1, "body", &o.body_len);
    o.timeout_ms = opt_int(L, "timeout_ms");
    o.connect_timeout_ms = opt_int(L, "connect_timeout_ms");
    o.read_timeout_ms = opt_int(L, "read_timeout_ms");
    o.max_body_bytes = (size_t)opt_int(L, "max_body_bytes");
    lua_getfield(L, 1, "on_chunk");
    int streaming = !lua_isnil(L, -1);
    lua_pop(L, 1);

    /* "Name: value" lines, kept on the stack until lp_fetch_start copied them */
    lua_getfield(L, 1, "headers");
    int hidx = lua_gettop(L);
    size_t nh = 0;
    if (!lua_isnil(L, hidx)) {
        if (!lua_istable(L, hidx)) return luaL_error(L, "http.request: headers must be a table");
        lua_pushnil(L);
        while (lua_next(L, hidx) != 0) {
            lua_pop(L, 1);
            nh++;
        }
    }
    const char **lines = lua_newuserdata(L, (nh ? nh : 1) * sizeof(*lines));
    if (nh > 0) {
        luaL_checkstack(L, (int)nh + 4, "too many headers");
        size_t i = 0;
        lua_pushnil(L);
        while (lua_next(L, hidx) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                return luaL_error(L, "http.request: headers must map names to strings");
            lua_pushvalue(L, -2);
            lua_pushliteral(L, ": ");
            lua_pushvalue(L, -3);
            lua_concat(L, 3);
            lines[i++] = lua_tostring(L, -1);
            lua_insert(L, -3); /* keep the line below key and value */
            lua_pop(L, 1);
        }
    }
    o.headers = lines;
    o.nheaders = nh;

    if (f == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed: outbound HTTP is not available");
        return 2;
    }
    lhttp *p = calloc(1, sizeof(*p));
    if (p == NULL) return luaL_error(L, "out of memory");
    lhttp **pp = lua_newuserdata(L, sizeof(*pp));
    *pp = NULL;
    luaL_getmetatable(L, REQ_MT);
    lua_setmetatable(L, -2);
    o.on_chunk = streaming ? on_chunk : NULL;
    o.on_done = on_done;
    o.ud = p;
    int rc = lp_fetch_start(f, &o, &p->fr);
    if (rc != 0) {
        free(p);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", err_word(rc),
                        rc == LP_EINVAL ? "bad method, URL, header or timeout" : lp_strerror(rc));
        return 2;
    }
    *pp = p;
    return 1;
}

int luaopen_lp_http(lua_State *L)
{
    if (luaL_newmetatable(L, REQ_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    if (luaL_loadbuffer(L, LOOP, sizeof(LOOP) - 1, "=lp.http") != 0) return lua_error(L);
    lua_pushcfunction(L, l_start);
    lua_pushcfunction(L, l_wait);
    lua_pushcfunction(L, l_cancel);
    lua_call(L, 3, 1);
    lua_setfield(L, -2, "request");
    return 1;
}
