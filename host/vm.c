/* vm.c — generations, tasks, request dispatch, hot reload.
 *
 * Ownership: the VM holds one reference on the current generation; every
 * task holds one on its generation. A generation is closed (lua_close) when
 * it is retired and its last reference goes. Tasks are anchored in their
 * generation's registry so the GC never collects a suspended coroutine. */
#include "vm.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bindings.h"
#include "log.h"
#include "lp.h"
#include "metrics.h"
#include "ops.h"
#include "router.h"
#include "server.h"

int luaopen_cjson(lua_State *L);

#define MAX_WATCHES   64
#define SPARE_THREADS 64 /* finished coroutines kept per generation for reuse */

typedef struct retire_hook {
    void (*fn)(void *data);
    void *data;
    struct retire_hook *next, *prev;
} retire_hook;

struct lp_gen {
    lp_vm *vm;
    lua_State *L;
    int id;
    int refs;
    int retired;
    lp_router *router;
    int dispatch_ref; /* registry ref of shared.dispatch's function          */
    int build_ref;    /* registry ref of the request-table builder           */
    int handlers_ref; /* registry ref of { [i] = {fn=, opts=, route=} }       */
    retire_hook *hooks;
    /* Coroutines whose last task returned normally: a new task takes one
     * (still anchored by its registry ref) instead of allocating a thread. */
    lua_State *spare_co[SPARE_THREADS];
    int spare_ref[SPARE_THREADS];
    int nspare;
};

struct lp_task {
    lp_gen *gen;
    lua_State *co;
    int ref;     /* anchors co in the generation's registry                */
    int waiting; /* suspended by lp_task_yield                             */
    lp_request *req;
    void (*done)(int ok, void *data);
    void *data;
};

struct lp_vm {
    lp_host *host;
    lp_gen *current;
    int generation; /* increases with every successful load                 */
    int tasks;
    char last_error[2048];
    uv_fs_event_t watches[MAX_WATCHES];
    int nwatches;
    uv_timer_t debounce;
    int watching;
    int closing_handles; /* close callbacks still to come before free      */
    int closed;          /* lp_vm_close called: free once nothing is left    */
};

static void vm_try_free(lp_vm *vm);

/* Registry keys: addresses are unique, so they cannot collide with refs. */
static char host_key, gen_key, events_key;

/* The task whose coroutine is running (innermost: a task may start another,
 * say a request answered inline). lp_task_current compares against it, so
 * finding the task costs no Lua lookup. */
static lp_task *running;

/* ---- small Lua helpers ------------------------------------------------ */

lp_host *lp_host_from(lua_State *L)
{
    lua_pushlightuserdata(L, &host_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lp_host *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return h;
}

lp_gen *lp_gen_of(lua_State *L)
{
    lua_pushlightuserdata(L, &gen_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lp_gen *g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return g;
}

lua_State *lp_gen_state(lp_gen *g)
{
    return g->L;
}

int lp_gen_retired(const lp_gen *g)
{
    return g->retired;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The error without its traceback, on one line: "file:line: message". */
static void error_summary(char *dst, size_t size, const char *s)
{
    const char *tb = strstr(s, "\nstack traceback:");
    size_t n = tb ? (size_t)(tb - s) : strlen(s), o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        if (s[i] == '\n' || s[i] == '\t') {
            if (o > 0 && dst[o - 1] != ' ') dst[o++] = ' ';
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
}

/* ---- generations ------------------------------------------------------ */

void lp_gen_ref(lp_gen *g)
{
    g->refs++;
}

static void gen_close(lp_gen *g)
{
    retire_hook *h = g->hooks;
    g->hooks = NULL;
    for (retire_hook *next; h; h = next) {
        next = h->next;
        h->fn(h->data);
        free(h);
    }
    lua_close(g->L);
    lp_router_free(g->router);
    free(g);
}

void lp_gen_unref(lp_gen *g)
{
    if (--g->refs == 0) gen_close(g);
}

void *lp_gen_on_retire(lp_gen *g, void (*fn)(void *data), void *data)
{
    retire_hook *h = malloc(sizeof(*h));
    if (h == NULL) return NULL;
    h->fn = fn;
    h->data = data;
    h->prev = NULL;
    h->next = g->hooks;
    if (g->hooks) g->hooks->prev = h;
    g->hooks = h;
    return h;
}

void lp_gen_cancel_retire(lp_gen *g, void *hook)
{
    retire_hook *h = hook;
    if (h == NULL) return;
    if (h->prev)
        h->prev->next = h->next;
    else
        g->hooks = h->next;
    if (h->next) h->next->prev = h->prev;
    free(h);
}

static void gen_retire(lp_gen *g)
{
    g->retired = 1;
    retire_hook *h = g->hooks;
    g->hooks = NULL;
    for (retire_hook *next; h; h = next) {
        next = h->next;
        h->fn(h->data);
        free(h);
    }
    lp_gen_unref(g);
}

/* routes:get(pattern, [opts], fn) and friends; upvalue 1 is the method. */
static int l_route(lua_State *L)
{
    const char *method = lua_tostring(L, lua_upvalueindex(1));
    const char *pattern = luaL_checkstring(L, 2);
    int fn_idx = lua_istable(L, 3) ? 4 : 3;
    luaL_checktype(L, fn_idx, LUA_TFUNCTION);
    lp_gen *g = lp_gen_of(L);

    lua_rawgeti(L, LUA_REGISTRYINDEX, g->handlers_ref);
    int n = (int)lua_objlen(L, -1) + 1;
    int flags = 0;
    if (fn_idx == 4) {
        lua_getfield(L, 3, "auth");
        flags = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (lp_router_add(g->router, method, pattern, n, flags) != 0)
        return luaL_error(L, "cannot add route %s %s (malformed or duplicate)", method, pattern);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, fn_idx);
    lua_setfield(L, -2, "fn");
    if (fn_idx == 4)
        lua_pushvalue(L, 3);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "opts");
    lua_pushfstring(L, "%s %s", method, pattern);
    lua_setfield(L, -2, "route");
    lua_rawseti(L, -2, n);
    lua_pop(L, 1);
    lua_settop(L, 1);
    return 1; /* chainable */
}

static void push_routes_object(lua_State *L)
{
    static const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    lua_createtable(L, 0, 5);
    for (size_t i = 0; i < LP_ARRAY_SIZE(methods); i++) {
        char lower[8];
        size_t k = 0;
        for (; methods[i][k]; k++)
            lower[k] = (char)(methods[i][k] | 0x20);
        lower[k] = '\0';
        lua_pushstring(L, methods[i]);
        lua_pushcclosure(L, l_route, 1);
        lua_setfield(L, -2, lower);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The module folders that hold a controller.lua, sorted. Caller frees. */
static int list_controllers(const char *dir, char ***out)
{
    uv_fs_t req;
    uv_dirent_t ent;
    int n = 0, cap = 0;
    char **names = NULL;
    /* Synchronous on purpose: this runs while a generation loads (module
     * files are read the same way by require), never per request. */
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) < 0) {
        uv_fs_req_cleanup(&req);
        *out = NULL;
        return 0;
    }
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s/controller.lua", dir, ent.name);
        if (access(path, R_OK) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, (size_t)cap * sizeof(char *));
            if (nn == NULL) break;
            names = nn;
        }
        names[n++] = strdup(ent.name);
    }
    uv_fs_req_cleanup(&req);
    if (n > 1) qsort(names, (size_t)n, sizeof(char *), cmp_str);
    *out = names;
    return n;
}

/* Calls the function at -nargs-1 under a traceback handler. */
static int pcall_tb(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    return rc;
}

/* The request table is built by a Lua constructor: its constant keys cost
 * nothing per request, where lua_setfield would hash and insert each. */
static const char build_lua[] =
    "return function(method, path, id, route, body, rawQuery, query, headers, params, peer)\n"
    "  return { method = method, path = path, id = id, route = route, body = body,\n"
    "           rawQuery = rawQuery, query = query, headers = headers, params = params,\n"
    "           peer = peer }\n"
    "end\n";

static lp_gen *gen_load(lp_vm *vm, char *err, size_t errsize)
{
    const lp_config *cfg = vm->host->cfg;
    lp_gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    g->vm = vm;
    g->refs = 1;
    g->router = lp_router_new();
    g->L = luaL_newstate();
    if (g->L == NULL || g->router == NULL) {
        snprintf(err, errsize, "out of memory");
        lp_router_free(g->router);
        if (g->L) lua_close(g->L);
        free(g);
        return NULL;
    }
    lua_State *L = g->L;
    luaL_openlibs(L);
    /* A tighter pause than LuaJIT's 200 keeps the heap (and what each cycle
     * sweeps) small enough to stay in cache when many requests are
     * suspended at once: see `scripts/bench chat`. */
    lua_gc(L, LUA_GCSETPAUSE, cfg->lua_gc_pause);
    lua_gc(L, LUA_GCSETSTEPMUL, cfg->lua_gc_stepmul);
    lua_pushlightuserdata(L, &host_key);
    lua_pushlightuserdata(L, vm->host);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &gen_key);
    lua_pushlightuserdata(L, g);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &events_key);
    lua_newtable(L);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    g->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
#define LP_PRELOAD(name)                                                                           \
    lua_pushcfunction(L, luaopen_lp_##name);                                                       \
    lua_setfield(L, -2, "lp." #name);
    LP_BINDINGS(LP_PRELOAD)
#undef LP_PRELOAD
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", cfg->modules_dir, cfg->modules_dir);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    /* 0. the request-table builder (see push_request) */
    if (luaL_loadbuffer(L, build_lua, sizeof(build_lua) - 1, "=request") != 0 ||
        pcall_tb(L, 0, 1) != 0)
        goto fail;
    g->build_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    /* 1. the dispatcher */
    lua_getglobal(L, "require");
    lua_pushstring(L, "shared.dispatch");
    if (pcall_tb(L, 1, 1) != 0) goto fail;
    if (!lua_isfunction(L, -1)) {
        lua_pushstring(L, "shared.dispatch must return a function");
        goto fail;
    }
    g->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    /* 2. the controllers */
    char **names;
    int n = list_controllers(cfg->modules_dir, &names);
    int failed = 0;
    for (int i = 0; i < n && !failed; i++) {
        lua_getglobal(L, "require");
        lua_pushfstring(L, "%s.controller", names[i]);
        if (pcall_tb(L, 1, 1) != 0) {
            failed = 1;
        } else if (!lua_isfunction(L, -1)) {
            lua_pop(L, 1);
            lua_pushfstring(L, "%s/%s/controller.lua must return function(routes)",
                            cfg->modules_dir, names[i]);
            failed = 1;
        } else {
            push_routes_object(L);
            if (pcall_tb(L, 1, 0) != 0) failed = 1;
        }
    }
    /* 3. the OpenAPI document, assembled from the modules' fragments */
    if (!failed) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "shared.openapi");
        if (pcall_tb(L, 1, 1) != 0) {
            failed = 1;
        } else {
            lua_getfield(L, -1, "build");
            lua_pushstring(L, cfg->modules_dir);
            lua_createtable(L, n, 0);
            for (int i = 0; i < n; i++) {
                lua_pushstring(L, names[i]);
                lua_rawseti(L, -2, i + 1);
            }
            if (pcall_tb(L, 2, 1) != 0) {
                failed = 1;
            } else {
                size_t len;
                const char *doc = lua_tolstring(L, -1, &len);
                if (doc) lp_ops_set_openapi(vm->host, doc, len);
                lua_pop(L, 2);
            }
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (failed) goto fail;
    return g;
fail : {
    const char *msg = lua_tostring(L, -1);
    lp_log("error", msg ? msg : "script load failed", NULL, NULL);
    error_summary(err, errsize, msg ? msg : "script load failed");
    /* gen_close, not lua_close: a module may have scheduled a timer or a
     * NOTIFY listener before a later one failed; their retire hooks stop
     * them before the state goes away. */
    gen_close(g);
    return NULL;
}
}

/* ---- tasks ------------------------------------------------------------ */

static lp_task *task_new(lp_gen *g, lp_request *req)
{
    lp_task *t = calloc(1, sizeof(*t));
    if (t == NULL) return NULL;
    t->gen = g;
    t->req = req;
    if (g->nspare > 0) {
        g->nspare--;
        t->co = g->spare_co[g->nspare];
        t->ref = g->spare_ref[g->nspare];
    } else {
        t->co = lua_newthread(g->L);
        t->ref = luaL_ref(g->L, LUA_REGISTRYINDEX); /* anchors and pops it */
    }
    lp_gen_ref(g);
    g->vm->tasks++;
    return t;
}

/* ok: the coroutine returned normally, so it may serve another task. */
static void task_free(lp_task *t, int ok)
{
    lp_gen *g = t->gen;
    lua_State *L = g->L;
    if (ok && !g->retired && g->nspare < SPARE_THREADS) {
        lua_settop(t->co, 0);
        g->spare_co[g->nspare] = t->co;
        g->spare_ref[g->nspare] = t->ref;
        g->nspare++;
    } else {
        luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    }
    lp_vm *vm = g->vm;
    vm->tasks--;
    free(t);
    lp_gen_unref(g);
    if (vm->closed) vm_try_free(vm);
}

lp_task *lp_task_current(lua_State *L)
{
    return running != NULL && running->co == L ? running : NULL;
}

lp_task *lp_task_check(lua_State *L)
{
    lp_task *t = lp_task_current(L);
    if (t == NULL)
        luaL_error(L, "host I/O is only allowed inside a request or task coroutine "
                      "(not while a module loads, nor in a nested coroutine)");
    return t;
}

int lp_task_yield(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    t->waiting = 1;
    return lua_yield(L, 0);
}

int lp_task_client_alive(lp_task *t)
{
    return t->req == NULL || t->req->conn != NULL;
}

const char *lp_task_request_id(lp_task *t)
{
    return t->req ? t->req->id : "";
}

lua_State *lp_task_state(lp_task *t)
{
    return t->gen->L;
}

lp_request *lp_task_request(lp_task *t)
{
    return t->req;
}

/* Answers a request from the values its dispatcher returned:
 * status, body (string), headers (table). */
static void respond_from_stack(lp_task *t)
{
    lua_State *co = t->co;
    lp_request *req = t->req;
    if (req->streaming) {
        lp_request_finish(req);
        return;
    }
    int status = (int)lua_tointeger(co, 1);
    size_t blen = 0;
    const char *body = lua_tolstring(co, 2, &blen);
    if (status < 100 || status > 599) {
        lp_log("error", "dispatcher returned no valid status", req->id, NULL);
        lp_request_problem(req, 500, "internal_error", "Internal Server Error", NULL, NULL);
        return;
    }
    lp_header hdrs[32];
    int n = 0;
    if (lua_istable(co, 3)) {
        lua_pushnil(co);
        while (lua_next(co, 3) != 0 && n < (int)LP_ARRAY_SIZE(hdrs)) {
            if (lua_type(co, -2) == LUA_TSTRING && lua_isstring(co, -1)) {
                lp_header *h = &hdrs[n++];
                h->name = lua_tolstring(co, -2, &h->name_len);
                h->value = lua_tolstring(co, -1, &h->value_len);
            }
            lua_pop(co, 1);
        }
    }
    lp_request_respond(req, status, hdrs, n, body ? body : "", body ? blen : 0);
}

static void task_end(lp_task *t, int ok)
{
    if (!ok) {
        const char *msg = lua_tostring(t->co, -1);
        luaL_traceback(t->gen->L, t->co, msg ? msg : "(non-string error)", 0);
        lp_log("error", lua_tostring(t->gen->L, -1), lp_task_request_id(t), NULL);
        lua_pop(t->gen->L, 1);
    }
    if (t->req) {
        lp_request *req = t->req;
        t->req = NULL;
        if (ok) {
            t->req = req;
            respond_from_stack(t);
            t->req = NULL;
        } else if (req->streaming) {
            lp_request_finish(req);
        } else {
            lp_request_problem(req, 500, "internal_error", "Internal Server Error", NULL, NULL);
        }
    }
    if (t->done) t->done(ok, t->data);
    task_free(t, ok);
}

static void task_run(lp_task *t, int nargs)
{
    t->waiting = 0;
    lp_task *outer = running;
    running = t;
    int rc = lua_resume(t->co, nargs);
    running = outer;
    if (rc == LUA_YIELD) {
        if (t->waiting) return;
        lua_settop(t->co, 0);
        lua_pushstring(t->co, "coroutine.yield() called outside a nested coroutine");
        task_end(t, 0);
        return;
    }
    task_end(t, rc == 0);
}

void lp_task_resume(lp_task *t, lp_task_push_fn push, void *data)
{
    if (!t->waiting) {
        /* A binding resumed a task that is not suspended: a host bug. Refuse
         * rather than corrupt a running coroutine. */
        lp_log("error", "lp_task_resume on a task that is not waiting", lp_task_request_id(t),
               NULL);
        return;
    }
    lua_settop(t->co, 0);
    int n = push ? push(t->co, data) : 0;
    task_run(t, n);
}

/* ---- requests --------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Pushes the percent-decoded string (and '+' as space when form = 1). */
static void push_decoded(lua_State *L, const char *s, size_t n, int form)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            luaL_addchar(&b, (char)(hi * 16 + lo));
            i += 2;
        } else if (form && s[i] == '+') {
            luaL_addchar(&b, ' ');
        } else {
            luaL_addchar(&b, s[i]);
        }
    }
    luaL_pushresult(&b);
}

static void push_query(lua_State *L, const char *q, size_t n)
{
    lua_newtable(L);
    size_t i = 0;
    while (q && i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
            push_decoded(L, q + i, klen, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) { /* the first value of a repeated key wins */
                lua_pop(L, 1);
                if (eq)
                    push_decoded(L, eq + 1, (size_t)(q + j - eq - 1), 1);
                else
                    lua_pushstring(L, "");
                lua_rawset(L, -3);
            } else {
                lua_pop(L, 2);
            }
        }
        i = j + 1;
    }
}

static void push_request(lua_State *co, lp_gen *g, lp_request *req, const lp_route_match *m)
{
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->build_ref);
    lua_pushstring(co, req->method);
    lua_pushlstring(co, req->path, req->path_len);
    lua_pushstring(co, req->id);
    lua_pushstring(co, req->route);
    lua_pushlstring(co, req->body, req->body_len);
    if (req->query)
        lua_pushlstring(co, req->query, req->query_len);
    else
        lua_pushliteral(co, "");
    push_query(co, req->query, req->query_len);
    lua_createtable(co, 0, req->nheaders);
    for (int i = 0; i < req->nheaders; i++) {
        const lp_header *h = &req->headers[i];
        lua_pushlstring(co, h->name, h->name_len);
        lua_pushvalue(co, -1);
        lua_rawget(co, -3);
        if (lua_isnil(co, -1)) {
            lua_pop(co, 1);
            lua_pushlstring(co, h->value, h->value_len);
        } else { /* repeated header: join as a list */
            lua_pushliteral(co, ", ");
            lua_pushlstring(co, h->value, h->value_len);
            lua_concat(co, 3);
        }
        lua_rawset(co, -3);
    }
    lua_createtable(co, 0, m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        push_decoded(co, m->params[i].value, m->params[i].value_len, 0);
        lua_setfield(co, -2, m->params[i].name);
    }
    char peer[64];
    if (lp_request_peer(req, peer, sizeof peer) == 0)
        lua_pushstring(co, peer);
    else
        lua_pushnil(co);
    lua_call(co, 10, 1); /* on the coroutine before it starts: only OOM can raise */
}

void lp_vm_handle(lp_request *req, void *arg)
{
    lp_vm *vm = arg;
    if (lp_ops_handle(vm->host, req)) return;
    lp_gen *g = vm->current;
    if (g == NULL) {
        lp_request_problem(req, 503, "unavailable", "Service Unavailable", "scripts are not loaded",
                           NULL);
        return;
    }
    lp_route_match m;
    char allow[64];
    int found =
        lp_router_match(g->router, req->method, req->path, req->path_len, &m, allow, sizeof(allow));
    if (found == LP_ROUTE_NOT_FOUND) {
        lp_request_problem(req, 404, "not_found", "Not Found", "no such route", NULL);
        return;
    }
    if (found == LP_ROUTE_BAD_METHOD) {
        lp_header h = {"Allow", 5, allow, strlen(allow)};
        lp_request_problem(req, 405, "method_not_allowed", "Method Not Allowed", NULL, &h);
        return;
    }
    req->route = lp_router_label(g->router, m.route);
    lp_task *t = task_new(g, req);
    if (t == NULL) {
        lp_request_problem(req, 503, "unavailable", "Service Unavailable", NULL, NULL);
        return;
    }
    lua_State *co = t->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->dispatch_ref);
    lua_rawgeti(co, LUA_REGISTRYINDEX, g->handlers_ref);
    lua_rawgeti(co, -1, m.handler);
    lua_remove(co, -2);
    push_request(co, g, req, &m);
    task_run(t, 2);
}

/* ---- background tasks ------------------------------------------------- */

int lp_gen_spawn(lp_gen *g, int fn_ref, const char *arg, size_t arg_len)
{
    lp_task *t = task_new(g, NULL);
    if (t == NULL) return LP_ENOMEM;
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, fn_ref);
    if (arg)
        lua_pushlstring(t->co, arg, arg_len);
    else
        lua_pushnil(t->co);
    task_run(t, 1);
    return 0;
}

void lp_vm_emit(lp_vm *vm, const char *event, const char *payload, size_t len)
{
    lp_gen *g = vm->current;
    if (g == NULL) return;
    lua_State *L = g->L;
    lua_pushlightuserdata(L, &events_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, event);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 2);
        return;
    }
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        int ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lp_gen_spawn(g, ref, payload, len);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    }
    lua_pop(L, 2);
}

/* server.on(event, fn): used by lua_server.c through this accessor. */
int lp_vm_push_events(lua_State *L)
{
    lua_pushlightuserdata(L, &events_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    return 1;
}

typedef struct run_ctx {
    void (*done)(int ok, void *data);
    void *data;
} run_ctx;

int lp_vm_run_file(lp_vm *vm, const char *file, int argc, char **argv,
                   void (*done)(int ok, void *data), void *data)
{
    lp_gen *g = vm->current;
    if (g == NULL) return LP_EUNAVAIL;
    if (luaL_loadfile(g->L, file) != 0) {
        lp_log("error", lua_tostring(g->L, -1), NULL, NULL);
        lua_pop(g->L, 1);
        return LP_EINVAL;
    }
    lp_task *t = task_new(g, NULL);
    if (t == NULL) {
        lua_pop(g->L, 1);
        return LP_ENOMEM;
    }
    t->done = done;
    t->data = data;
    lua_xmove(g->L, t->co, 1);
    for (int i = 0; i < argc; i++)
        lua_pushstring(t->co, argv[i]);
    task_run(t, argc);
    return 0;
}

/* ---- reload ----------------------------------------------------------- */

int lp_vm_reload(lp_vm *vm)
{
    char err[sizeof(vm->last_error)];
    lp_gen *g = gen_load(vm, err, sizeof(err));
    if (g == NULL) {
        snprintf(vm->last_error, sizeof(vm->last_error), "%s", err);
        return LP_EINVAL;
    }
    g->id = ++vm->generation;
    vm->last_error[0] = '\0';
    lp_gen *old = vm->current;
    vm->current = g;
    if (old) gen_retire(old);
    lp_logf("info", "script generation %d loaded (%d routes)", g->id, lp_router_count(g->router));
    return 0;
}

int lp_vm_open(lp_vm **out, lp_host *host)
{
    lp_vm *vm = calloc(1, sizeof(*vm));
    if (vm == NULL) return LP_ENOMEM;
    vm->host = host;
    host->vm = vm;
    *out = vm;
    return lp_vm_reload(vm);
}

static void on_debounce(uv_timer_t *t)
{
    lp_vm *vm = t->data;
    lp_vm_reload(vm);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    lp_vm *vm = h->data;
    /* Only script and OpenAPI files matter (not editor swap files or logs). */
    if (filename != NULL) {
        size_t n = strlen(filename);
        int lua = n > 4 && strcmp(filename + n - 4, ".lua") == 0;
        int json = n > 5 && strcmp(filename + n - 5, ".json") == 0;
        if (!lua && !json) return;
    }
    /* Editors write several events per save; reload once they settle. */
    uv_timer_start(&vm->debounce, on_debounce, 150, 0);
}

static void watch_tree(lp_vm *vm, const char *dir, int depth)
{
    if (vm->nwatches >= MAX_WATCHES || depth > 3) return;
    uv_fs_event_t *w = &vm->watches[vm->nwatches];
    if (uv_fs_event_init(vm->host->loop, w) != 0) return;
    w->data = vm;
    if (uv_fs_event_start(w, on_fs_event, dir, 0) != 0) {
        uv_close((uv_handle_t *)w, NULL);
        return;
    }
    vm->nwatches++;
    uv_fs_t req;
    uv_dirent_t ent;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            if (ent.type != UV_DIRENT_DIR || ent.name[0] == '.') continue;
            char sub[1024];
            snprintf(sub, sizeof(sub), "%s/%s", dir, ent.name);
            watch_tree(vm, sub, depth + 1);
        }
    }
    uv_fs_req_cleanup(&req);
}

int lp_vm_watch(lp_vm *vm)
{
    if (vm->watching) return 0;
    uv_timer_init(vm->host->loop, &vm->debounce);
    vm->debounce.data = vm;
    watch_tree(vm, vm->host->cfg->modules_dir, 0);
    vm->watching = 1;
    return 0;
}

/* ---- introspection and close ------------------------------------------ */

int lp_vm_generation(const lp_vm *vm)
{
    return vm->current ? vm->current->id : 0;
}

const char *lp_vm_last_error(const lp_vm *vm)
{
    return vm->last_error[0] ? vm->last_error : NULL;
}

size_t lp_vm_lua_kbytes(const lp_vm *vm)
{
    return vm->current ? (size_t)lua_gc(vm->current->L, LUA_GCCOUNT, 0) : 0;
}

int lp_vm_tasks(const lp_vm *vm)
{
    return vm->tasks;
}

/* The VM outlives lp_vm_close while tasks still run (a task waiting on I/O
 * is resumed with an error once the subsystems close, and must find its
 * generation intact) and while its handles close. */
static void vm_try_free(lp_vm *vm)
{
    if (vm->closing_handles == 0 && vm->tasks == 0) free(vm);
}

static void on_vm_handle_closed(uv_handle_t *h)
{
    lp_vm *vm = h->data;
    vm->closing_handles--;
    vm_try_free(vm);
}

void lp_vm_close(lp_vm *vm)
{
    if (vm == NULL || vm->closed) return;
    vm->closed = 1;
    if (vm->watching) {
        for (int i = 0; i < vm->nwatches; i++) {
            vm->closing_handles++;
            uv_close((uv_handle_t *)&vm->watches[i], on_vm_handle_closed);
        }
        vm->closing_handles++;
        uv_close((uv_handle_t *)&vm->debounce, on_vm_handle_closed);
    }
    if (vm->tasks > 0)
        lp_logf("warn", "closing scripts with %d tasks still running; they end as their I/O fails",
                vm->tasks);
    if (vm->current) {
        lp_gen *g = vm->current;
        vm->current = NULL;
        gen_retire(g); /* closed when its last task ends */
    }
    vm->host->vm = NULL;
    vm_try_free(vm);
}
