/* lua_db.c — `lp.db`: PostgreSQL for scripts, on top of pg.h.
 *
 *   local db = require "lp.db"
 *   local rows, affected = db.query("SELECT id, name FROM users WHERE email = $1", email)
 *   db.tx(function(q) q.query("UPDATE ...", a) q.query("INSERT ...", b) end)
 *   local results, affected = db.batch{ {"SELECT $1::int", 1}, {"SELECT now()"} }
 *   local h = db.listen("policies_changed", function(payload, channel) ... end)
 *
 * Parameters are $1..$n only; there is no API that puts a value into SQL
 * text. Lua → parameter: nil or db.null → NULL; boolean → true/false;
 * number → integer text when integral (no exponent, no fraction), else 17
 * significant digits, NaN/±Infinity spelled as PostgreSQL reads them;
 * string → as is (no NUL bytes); table → JSON text (for json/jsonb columns).
 * Parameters are sent untyped: the server infers each from the statement,
 * so cast where it cannot (`$1::int`).
 *
 * query returns rows (an array of tables keyed by column name; a NULL
 * column is absent, i.e. nil) and affected (rows inserted/updated/deleted,
 * or the row count of a SELECT). Rows carry no other field, so
 * json.encode(rows) is a JSON array (an empty result is an empty table).
 * Column types, by OID:
 *   int2, int4, oid, float4, float8 → number
 *   int8 → number when |v| <= 2^53, else a decimal string: a BIGINT never
 *          silently loses precision (money is won in BIGINT; ids fit)
 *   numeric → number when it has no fractional part and |v| <= 2^53 (e.g.
 *          sum(bigint)), else a string that keeps every digit ("12.50")
 *   bool → boolean;  text, varchar, char, name, uuid → string
 *   date → "YYYY-MM-DD"
 *   timestamptz → RFC 3339 "2026-11-28T10:00:00Z" (connections run in UTC;
 *          fractional seconds kept: "…10:00:00.25Z"; another session zone
 *          gives "+09:00"); timestamp → "2026-11-28T10:00:00"
 *   json, jsonb → the decoded Lua value (JSON null → db.null, the json.null
 *          light userdata)
 *   arrays of any of these (any dimension) → Lua arrays, NULL elements as
 *          db.null so that # and JSON encoding keep their positions
 *   anything else (interval, bytea, inet, ±infinity dates…) → its text
 *
 * Errors are raised as tables (with a __tostring for logs):
 *   SQL error:      {code="db_error", sqlstate="23505", message=..., detail=...,
 *                    constraint=..., table=..., column=...}
 *   statement_timeout (57014): {code="timeout", sqlstate="57014", status=503, ...}
 *   server away, pool exhausted, pool closing:
 *                   {code="unavailable", status=503, message=...}
 * A raised table with a numeric status is answered by the dispatcher as that
 * status (problem+json); db_error has none, so an unexpected one is a 500,
 * and a service turns the expected ones (23505 → 409) into its own errors.
 *
 * db.tx(fn) pins one connection: BEGIN, fn(q) with q.query / q.batch bound
 * to it, COMMIT when fn returns (its return values are tx's), ROLLBACK and
 * re-raise when it raises. A COMMIT that the server turns into a rollback
 * (fn swallowed a failed statement) raises db_error 25P02. The connection is
 * always released. Nested db.tx in one task raises; db.query inside fn runs
 * on another connection (outside the transaction), so use q.query.
 *
 * db.batch(list) sends every statement as one pipeline (one round trip) in
 * one implicit transaction: a failing statement rolls back the whole batch
 * and raises its error with `index` = its position. Each list item is
 * {sql, p1, p2, ...}; for a NULL parameter use db.null (or set `n`).
 *
 * db.listen(channel, fn) runs fn(payload, channel) as a new task for each
 * NOTIFY, on a dedicated connection that LISTENs again after a reconnect
 * (notifications sent while it is down are lost: re-read the source of
 * truth). It returns a handle with :close() (nil, "unavailable" when the
 * host has no pool); the listener also ends with the script generation that
 * made it, and may be registered while a module loads (it does no I/O). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "bindings.h"
#include "host.h"
#include "lp.h"
#include "pg.h"
#include "task.h"
#include "vm.h"

#define CONN_MT   "lp.db.conn"
#define LISTEN_MT "lp.db.listener"
#define ERROR_MT  "lp.db.error"
#define TWO53     9007199254740992LL /* 2^53: beyond it doubles skip integers */

/* Registry key of lp.json's array marker: rows and array columns carry it,
 * so an empty one still encodes as [] rather than {}. */
static char array_mt_key;

static void mark_array(lua_State *L)
{
    lua_pushlightuserdata(L, &array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_istable(L, -1))
        lua_setmetatable(L, -2);
    else
        lua_pop(L, 1);
}

/* Upvalues of the C functions below. */
#define UV_ENCODE  lua_upvalueindex(1)
#define UV_DECODE  lua_upvalueindex(2)
#define UV_CONVERT lua_upvalueindex(3)

/* ---- Lua values → text parameters --------------------------------------- */

/* Pushes the text form of argument idx (or nothing for NULL) and stores a
 * pointer to it in *out: the pushed string keeps it alive on the stack. An
 * integer is written into num instead when the caller gives room
 * (PARAM_NUM bytes), so it costs no Lua string. */
#define PARAM_NUM 24
static void param_text(lua_State *L, int idx, const char **out, char *num)
{
    char buf[64];
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        *out = NULL;
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* json.null */
            *out = NULL;
            return;
        }
        break;
    case LUA_TBOOLEAN:
        *out = lua_toboolean(L, idx) ? "true" : "false";
        return;
    case LUA_TNUMBER: {
        double v = lua_tonumber(L, idx);
        if (isnan(v))
            snprintf(buf, sizeof(buf), "NaN");
        else if (isinf(v))
            snprintf(buf, sizeof(buf), v > 0 ? "Infinity" : "-Infinity");
        else if (v == floor(v) && fabs(v) < 9.2e18) {
            /* integers by hand: the common case, and snprintf is costly */
            long long iv = (long long)v;
            unsigned long long u = iv < 0 ? 0ULL - (unsigned long long)iv : (unsigned long long)iv;
            char *e = num != NULL ? num + PARAM_NUM - 1 : buf + sizeof(buf) - 1, *d = e;
            *e = '\0';
            do
                *--d = (char)('0' + u % 10);
            while ((u /= 10) != 0);
            if (iv < 0) *--d = '-';
            if (num != NULL) {
                *out = d;
                return;
            }
            lua_pushlstring(L, d, (size_t)(e - d));
            *out = lua_tostring(L, -1);
            return;
        } else
            snprintf(buf, sizeof(buf), "%.17g", v);
        lua_pushstring(L, buf);
        *out = lua_tostring(L, -1);
        return;
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len) luaL_error(L, "db: parameter $%d contains a NUL byte", idx);
        *out = s;
        return;
    }
    case LUA_TTABLE:
        lua_pushvalue(L, UV_ENCODE);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        *out = lua_tostring(L, -1);
        return;
    default:
        break;
    }
    luaL_error(L, "db: cannot send a %s as a parameter", luaL_typename(L, idx));
}

/* Room for the parameters of a call on the C stack: the usual few, with
 * their numbers' text. More go in a userdata on the Lua stack (so a raised
 * error frees it), their numbers as Lua strings. */
#define PARAMS_LOCAL 16
typedef struct param_room {
    const char *ptrs[PARAMS_LOCAL];
    char nums[PARAMS_LOCAL][PARAM_NUM];
} param_room;

/* Converts arguments first..last into parameters; the texts stay alive on
 * the stack or in room until the call returns, and the pool copies them.
 * Returns NULL for no parameters. */
static const char **params_from(lua_State *L, int first, int last, param_room *room)
{
    int n = last - first + 1;
    if (n <= 0) return NULL;
    if (n > 65535) luaL_error(L, "db: too many parameters");
    luaL_checkstack(L, n + 8, "db: too many parameters");
    int local = n <= PARAMS_LOCAL;
    const char **params = local ? room->ptrs : lua_newuserdata(L, (size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++)
        param_text(L, first + i, &params[i], local ? room->nums[i] : NULL);
    return params;
}

/* ---- waiting for the pool ----------------------------------------------- */

static void push_error(lua_State *L, int status, const PGresult *res);

typedef struct pending {
    lp_task *task;
    lua_State *main; /* the generation's main state: conversion runs there */
    int convert_ref; /* registry ref of the converter (l_convert)           */
    int status;
    PGresult *res;
    PGresult **batch; /* batch results, n of them */
    int n;
    lp_pg_conn *conn;
} pending;

/* Resume values of a query or batch: what l_convert returns. The coroutine
 * is suspended, so no Lua function may run on it: the converter runs,
 * protected, on the generation's main state (idle while the loop runs
 * callbacks) and its values move over. A conversion error (a malformed
 * array) resumes with (-1, message). No userdata, so nothing for the GC to
 * finalize; the callbacks free the results once the task has them. */
static int push_converted(lua_State *co, void *data)
{
    pending *p = data;
    lua_State *L = p->main;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->convert_ref);
    lua_pushlightuserdata(L, p);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != 0) {
        lua_pushinteger(co, -1);
        lua_xmove(L, co, 1);
        return 2;
    }
    int n = lua_gettop(L) - top;
    lua_xmove(L, co, n);
    return n;
}

static void on_query(int status, PGresult *res, void *data)
{
    pending *p = data;
    p->status = status;
    p->res = res;
    lp_task_resume(p->task, push_converted, p);
    PQclear(p->res);
    free(p);
}

static void on_batch(int status, PGresult **res, int n, void *data)
{
    pending *p = data;
    p->status = status;
    p->batch = res;
    p->n = n;
    lp_task_resume(p->task, push_converted, p);
    for (int i = 0; i < n; i++)
        PQclear(res[i]);
    free(p);
}

typedef struct conn_ud {
    lp_pg_conn *conn; /* NULL once released                                   */
} conn_ud;

static int push_acquire(lua_State *co, void *data)
{
    pending *p = data;
    lua_pushinteger(co, p->status);
    if (p->status != 0) {
        push_error(co, p->status, NULL); /* no Lua call: fine on the suspended co */
        return 2;
    }
    conn_ud *c = lua_newuserdata(co, sizeof(*c));
    c->conn = p->conn;
    luaL_getmetatable(co, CONN_MT);
    lua_setmetatable(co, -2);
    p->conn = NULL; /* the userdata releases it from now on */
    return 2;
}

static void on_acquire(int status, lp_pg_conn *conn, void *data)
{
    pending *p = data;
    p->status = status;
    p->conn = conn;
    lp_task_resume(p->task, push_acquire, p);
    if (p->conn != NULL) lp_pg_release(p->conn); /* nobody took it */
    free(p);
}

static lp_pg_pool *pool_of(lua_State *L)
{
    lp_host *h = lp_host_from(L);
    return h != NULL ? h->pg : NULL;
}

/* Called by the C functions of the module table only: their third upvalue
 * is the converter's registry ref. */
static pending *pending_new(lua_State *L, lp_task *t)
{
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL) luaL_error(L, "db: out of memory");
    p->task = t;
    p->main = lp_task_state(t);
    p->convert_ref = (int)lua_tointeger(L, UV_CONVERT);
    return p;
}

/* A call the pool refused at once (p may be NULL): the same (status, error)
 * a callback gives. */
static int refused(lua_State *L, pending *p, int err)
{
    free(p);
    lua_pushinteger(L, err);
    push_error(L, err, NULL);
    return 2;
}

/* _query(sql, ...) → yields → status, result */
static int l_query(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    const char *sql = luaL_checkstring(L, 1);
    int top = lua_gettop(L);
    param_room room;
    const char **params = params_from(L, 2, top, &room);
    lp_pg_pool *pool = pool_of(L);
    if (pool == NULL) return refused(L, NULL, LP_EUNAVAIL);
    pending *p = pending_new(L, t);
    int err = lp_pg_query(pool, sql, top - 1, params, on_query, p);
    if (err != 0) return refused(L, p, err);
    return lp_task_yield(L);
}

/* Fills specs from a list of {sql, p1, ...}; strings stay on the stack. */
static lp_pg_query_spec *specs_from(lua_State *L, int idx, int *count)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)lua_objlen(L, idx);
    if (n < 1) luaL_error(L, "db.batch: empty list");
    lp_pg_query_spec *q = lua_newuserdata(L, (size_t)n * sizeof(*q));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        int item = lua_gettop(L);
        if (!lua_istable(L, item)) luaL_error(L, "db.batch: item %d is not a table", i + 1);
        lua_rawgeti(L, item, 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "db.batch: item %d has no SQL", i + 1);
        q[i].sql = lua_tostring(L, -1);
        lua_getfield(L, item, "n");
        int np = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) - 1 : (int)lua_objlen(L, item) - 1;
        lua_pop(L, 1);
        if (np < 0 || np > 65535) luaL_error(L, "db.batch: item %d: bad parameter count", i + 1);
        q[i].nparams = np;
        luaL_checkstack(L, np + 8, "db.batch: too many parameters");
        const char **params = np > 0 ? lua_newuserdata(L, (size_t)np * sizeof(char *)) : NULL;
        for (int k = 0; k < np; k++) {
            lua_rawgeti(L, item, k + 2);
            param_text(L, lua_gettop(L), &params[k], NULL);
            /* param_text may have pushed a converted string above the raw
             * value: both stay on the stack until the call returns */
        }
        q[i].params = params;
    }
    *count = n;
    return q;
}

/* _batch(list) → yields → status, {result...} */
static int l_batch(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    int n;
    lp_pg_query_spec *q = specs_from(L, 1, &n);
    lp_pg_pool *pool = pool_of(L);
    if (pool == NULL) return refused(L, NULL, LP_EUNAVAIL);
    pending *p = pending_new(L, t);
    int err = lp_pg_batch(pool, q, n, on_batch, p);
    if (err != 0) return refused(L, p, err);
    return lp_task_yield(L);
}

/* _acquire() → yields → status, conn */
static int l_acquire(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    lp_pg_pool *pool = pool_of(L);
    if (pool == NULL) return refused(L, NULL, LP_EUNAVAIL);
    pending *p = pending_new(L, t);
    int err = lp_pg_acquire(pool, on_acquire, p);
    if (err != 0) return refused(L, p, err);
    return lp_task_yield(L);
}

static conn_ud *check_conn(lua_State *L, int idx)
{
    conn_ud *c = luaL_checkudata(L, idx, CONN_MT);
    if (c->conn == NULL) luaL_error(L, "db.tx: the transaction is over");
    return c;
}

/* _conn_query(conn, sql, ...) → yields → status, result */
static int l_conn_query(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    conn_ud *c = check_conn(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    int top = lua_gettop(L);
    param_room room;
    const char **params = params_from(L, 3, top, &room);
    pending *p = pending_new(L, t);
    int err = lp_pg_conn_query(c->conn, sql, top - 2, params, on_query, p);
    if (err != 0) return refused(L, p, err);
    return lp_task_yield(L);
}

/* _conn_batch(conn, list) → yields → status, {result...} */
static int l_conn_batch(lua_State *L)
{
    lp_task *t = lp_task_check(L);
    conn_ud *c = check_conn(L, 1);
    int n;
    lp_pg_query_spec *q = specs_from(L, 2, &n);
    pending *p = pending_new(L, t);
    int err = lp_pg_conn_batch(c->conn, q, n, on_batch, p);
    if (err != 0) return refused(L, p, err);
    return lp_task_yield(L);
}

static int l_release(lua_State *L)
{
    conn_ud *c = luaL_checkudata(L, 1, CONN_MT);
    if (c->conn != NULL) lp_pg_release(c->conn);
    c->conn = NULL;
    return 0;
}

/* ---- results → Lua values ----------------------------------------------- */

enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

/* Element type of an array type, or 0 when oid is not an array we know. */
static Oid array_elem(Oid oid)
{
    switch (oid) {
    case 1000:
        return OID_BOOL;
    case 1005:
        return OID_INT2;
    case 1007:
        return OID_INT4;
    case 1016:
        return OID_INT8;
    case 1021:
        return OID_FLOAT4;
    case 1022:
        return OID_FLOAT8;
    case 1231:
        return OID_NUMERIC;
    case 1115:
        return OID_TIMESTAMP;
    case 1185:
        return OID_TIMESTAMPTZ;
    case 199:
        return OID_JSON;
    case 3807:
        return OID_JSONB;
    case 1028:
        return OID_OID;
    case 1009: /* text */
    case 1015: /* varchar */
    case 1014: /* bpchar */
    case 1003: /* name */
    case 1182: /* date */
    case 2951: /* uuid */
        return 25;
    default:
        return 0;
    }
}

/* "-123" → number when |v| <= 2^53, else the digits as a string. */
static void push_integer_text(lua_State *L, const char *s, size_t len)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == 0 && end == s + len && v >= -TWO53 && v <= TWO53)
        lua_pushnumber(L, (double)v);
    else
        lua_pushlstring(L, s, len);
}

static int all_digits(const char *s, size_t len)
{
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == len) return 0;
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* "2026-11-28 10:00:00.25+00" → "2026-11-28T10:00:00.25Z"; "+09" → "+09:00". */
static void push_timestamp(lua_State *L, const char *s, size_t len, int tz)
{
    char buf[64];
    if (len < 19 || len + 4 > sizeof(buf) || s[4] != '-' || s[10] != ' ' || s[len - 1] == 'C') {
        lua_pushlstring(L, s, len); /* infinity, BC or years past 9999: as the server says */
        return;
    }
    memcpy(buf, s, len);
    buf[10] = 'T';
    size_t n = len;
    if (tz) {
        size_t off = 19;
        while (off < len && s[off] != '+' && s[off] != '-')
            off++;
        size_t olen = len - off;
        if (olen == 3 && memcmp(s + off, "+00", 3) == 0) {
            buf[off] = 'Z';
            n = off + 1;
        } else if (olen == 3) {
            memcpy(buf + len, ":00", 3);
            n = len + 3;
        }
    }
    lua_pushlstring(L, buf, n);
}

static void push_value(lua_State *L, Oid type, const char *s, size_t len);

/* PostgreSQL array text: {1,2,NULL,"a \"b\""} and {{1,2},{3,4}}, possibly
 * prefixed by explicit bounds "[0:1]=". scratch holds one element. */
static const char *parse_array(lua_State *L, const char *s, Oid elem, char *scratch)
{
    if (*s == '[') { /* dimension decoration */
        s = strchr(s, '=');
        if (s == NULL) luaL_error(L, "db: malformed array");
        s++;
    }
    if (*s != '{') luaL_error(L, "db: malformed array");
    s++;
    lua_newtable(L);
    mark_array(L);
    int idx = 1;
    if (*s == '}') return s + 1;
    for (;;) {
        if (*s == '{') {
            s = parse_array(L, s, elem, scratch);
        } else if (*s == '"') {
            size_t n = 0;
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && s[1]) s++;
                scratch[n++] = *s;
            }
            if (*s != '"') luaL_error(L, "db: malformed array");
            s++;
            push_value(L, elem, scratch, n);
        } else {
            const char *start = s;
            while (*s && *s != ',' && *s != '}')
                s++;
            size_t n = (size_t)(s - start);
            if (n == 4 && strncasecmp(start, "NULL", 4) == 0) {
                lua_pushlightuserdata(L, NULL);
            } else {
                memcpy(scratch, start, n);
                push_value(L, elem, scratch, n);
            }
        }
        lua_rawseti(L, -2, idx++);
        if (*s == ',')
            s++;
        else if (*s == '}')
            return s + 1;
        else
            luaL_error(L, "db: malformed array");
    }
}

/* Pushes one non-NULL column value of type `type` (text format). */
static void push_value(lua_State *L, Oid type, const char *s, size_t len)
{
    switch (type) {
    case OID_BOOL:
        lua_pushboolean(L, len > 0 && s[0] == 't');
        return;
    case OID_INT2:
    case OID_INT4:
    case OID_OID:
    case OID_INT8:
        push_integer_text(L, s, len);
        return;
    case OID_NUMERIC:
        if (all_digits(s, len))
            push_integer_text(L, s, len);
        else
            lua_pushlstring(L, s, len);
        return;
    case OID_FLOAT4:
    case OID_FLOAT8: {
        char buf[64];
        if (len >= sizeof(buf)) break;
        memcpy(buf, s, len);
        buf[len] = '\0';
        lua_pushnumber(L, strtod(buf, NULL));
        return;
    }
    case OID_TIMESTAMP:
        push_timestamp(L, s, len, 0);
        return;
    case OID_TIMESTAMPTZ:
        push_timestamp(L, s, len, 1);
        return;
    case OID_JSON:
    case OID_JSONB:
        lua_pushvalue(L, UV_DECODE);
        lua_pushlstring(L, s, len);
        lua_call(L, 1, 1);
        return;
    default: {
        Oid elem = array_elem(type);
        if (elem != 0 && len > 0 && (s[0] == '{' || s[0] == '[')) {
            char *scratch = lua_newuserdata(L, len + 1);
            int at = lua_gettop(L);
            /* parse_array needs the NUL-terminated value: PQgetvalue gives it */
            parse_array(L, s, elem, scratch);
            lua_remove(L, at);
            return;
        }
        break;
    }
    }
    lua_pushlstring(L, s, len);
}

/* Pushes rows, affected and the command tag (db.tx checks COMMIT's). */
static void push_rows(lua_State *L, PGresult *res)
{
    int rows = PQntuples(res), cols = PQnfields(res);
    luaL_checkstack(L, cols + 16, "db: result");
    int names = lua_gettop(L) + 1; /* each column name interned once */
    for (int c = 0; c < cols; c++)
        lua_pushstring(L, PQfname(res, c));
    lua_createtable(L, rows, 0);
    mark_array(L);
    for (int r = 0; r < rows; r++) {
        lua_createtable(L, 0, cols);
        for (int c = 0; c < cols; c++) {
            if (PQgetisnull(res, r, c)) continue;
            lua_pushvalue(L, names + c);
            push_value(L, PQftype(res, c), PQgetvalue(res, r, c), (size_t)PQgetlength(res, r, c));
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, r + 1);
    }
    if (cols > 0) { /* the rows take the first name's slot, the names go */
        lua_replace(L, names);
        lua_settop(L, names);
    }
    const char *affected = PQcmdTuples(res); /* digits, or "" for commands without a count */
    lua_pushnumber(L, *affected ? (double)strtoull(affected, NULL, 10) : rows);
    lua_pushstring(L, PQcmdStatus(res));
}

static void set_field(lua_State *L, const char *k, const char *v)
{
    if (v == NULL) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Pushes the error table for status; res is the failed statement's result
 * (LP_EQUERY) or NULL. */
static void push_error(lua_State *L, int status, const PGresult *res)
{
    lua_newtable(L);
    if (status == LP_EQUERY && res != NULL) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int timeout = state != NULL && strcmp(state, "57014") == 0;
        set_field(L, "code", timeout ? "timeout" : "db_error");
        if (timeout) {
            lua_pushinteger(L, 503);
            lua_setfield(L, -2, "status");
        }
        set_field(L, "sqlstate", state);
        set_field(L, "message", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        set_field(L, "detail", PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
        set_field(L, "hint", PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
        set_field(L, "constraint", PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
        set_field(L, "table", PQresultErrorField(res, PG_DIAG_TABLE_NAME));
        set_field(L, "column", PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
    } else {
        const char *msg;
        switch (status) {
        case LP_ETIMEDOUT:
            msg = "database busy: no free connection in time";
            break;
        case LP_EBUSY:
            msg = "database busy: too many requests waiting";
            break;
        case LP_ECLOSED:
            msg = "database pool is closing";
            break;
        case LP_EUNAVAIL:
            msg = "database unavailable";
            break;
        default:
            msg = lp_strerror(status);
        }
        set_field(L, "code", "unavailable");
        set_field(L, "message", msg);
        lua_pushinteger(L, 503);
        lua_setfield(L, -2, "status");
    }
    luaL_getmetatable(L, ERROR_MT);
    lua_setmetatable(L, -2);
}

static int statement_failed(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE;
}

/* The converter (see push_converted), on the main state:
 *   query: 0, rows, affected, tag      batch: 0, {rows...}, {affected...}
 *   failure: status, error table (a batch's carries `index`, the position
 *   of the statement that failed) */
static int l_convert(lua_State *L)
{
    const pending *p = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (p->batch == NULL) {
        lua_pushinteger(L, p->status);
        if (p->status == 0 && p->res != NULL) {
            push_rows(L, p->res);
            return 4;
        }
        push_error(L, p->status != 0 ? p->status : LP_EUNAVAIL, p->res);
        return 2;
    }
    lua_pushinteger(L, p->status);
    if (p->status == 0) {
        lua_createtable(L, p->n, 0);
        mark_array(L);
        lua_createtable(L, p->n, 0);
        mark_array(L);
        for (int i = 0; i < p->n; i++) {
            if (p->batch[i] == NULL) continue;
            push_rows(L, p->batch[i]);
            lua_pop(L, 1); /* the tag */
            lua_rawseti(L, 3, i + 1);
            lua_rawseti(L, 2, i + 1);
        }
        return 3;
    }
    for (int i = 0; i < p->n; i++) {
        if (p->batch[i] != NULL && statement_failed(p->batch[i])) {
            push_error(L, p->status, p->batch[i]);
            lua_pushinteger(L, i + 1);
            lua_setfield(L, -2, "index");
            return 2;
        }
    }
    push_error(L, p->status, NULL);
    return 2;
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "sqlstate");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "%s%s%s: %s", luaL_optstring(L, 2, "error"), lua_isstring(L, 3) ? " " : "",
                    luaL_optstring(L, 3, ""), luaL_optstring(L, 4, ""));
    return 1;
}

/* ---- LISTEN ------------------------------------------------------------- */

/* A listener belongs to the generation that registered it, like a timer: a
 * reload stops it (the new generation's modules listen again), so a reload
 * never doubles a handler. It is the handle userdata itself, anchored in the
 * registry until it stops, so dropping the handle does not stop it; the
 * generation runs its retire hooks before closing its state, so the hook
 * always finds the userdata alive. */
typedef struct listener {
    lp_host *host;
    lp_pg_pool *pool; /* the pool it was registered on                     */
    lp_gen *gen;
    void *hook;       /* the generation's retire hook, NULL once it ran     */
    unsigned long id; /* lp_pg_listen id, 0 once stopped                    */
    int fn_ref;       /* function(payload) in the generation's registry     */
    int self_ref;     /* the anchor                                         */
} listener;

static void listener_stop(listener *l)
{
    if (l->id == 0) return;
    /* the pool may already be closed (worker stopping): h->pg says */
    if (l->host->pg == l->pool) lp_pg_unlisten(l->pool, l->id);
    l->id = 0;
    lua_State *L = lp_gen_state(l->gen);
    luaL_unref(L, LUA_REGISTRYINDEX, l->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, l->self_ref);
}

static void on_listener_retire(void *data)
{
    listener *l = data;
    l->hook = NULL; /* the generation frees its hook */
    listener_stop(l);
}

static void on_notify(const char *channel, const char *payload, void *data)
{
    listener *l = data;
    if (l->id == 0 || lp_gen_retired(l->gen)) return;
    lp_gen_spawn(l->gen, l->fn_ref, payload, strlen(payload));
}

static int l_listener_close(lua_State *L)
{
    listener *l = luaL_checkudata(L, 1, LISTEN_MT);
    if (l->id == 0) return 0;
    lp_gen_cancel_retire(l->gen, l->hook);
    l->hook = NULL;
    listener_stop(l);
    return 0;
}

/* Only reached when the state closes with the listener still anchored. */
static int l_listener_gc(lua_State *L)
{
    listener *l = lua_touserdata(L, 1);
    if (l->id != 0 && l->host->pg == l->pool) lp_pg_unlisten(l->pool, l->id);
    l->id = 0;
    return 0;
}

/* _listen(channel, fn) → handle; fn(payload) runs as a new task. No I/O
 * here, so modules may listen while they load. */
static int l_listen(lua_State *L)
{
    const char *channel = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lp_host *h = lp_host_from(L);
    lp_gen *g = lp_gen_of(L);
    if (h == NULL || g == NULL) return luaL_error(L, "db.listen: not in a script generation");
    if (h->pg == NULL) { /* DATABASE_URL unusable (logged at start): like an outage */
        lua_pushnil(L);
        lua_pushstring(L, "unavailable");
        return 2;
    }
    if (lp_gen_retired(g)) return luaL_error(L, "db.listen: generation retired");
    listener *l = lua_newuserdata(L, sizeof(*l));
    memset(l, 0, sizeof(*l));
    luaL_getmetatable(L, LISTEN_MT);
    lua_setmetatable(L, -2);
    l->host = h;
    l->pool = h->pg;
    l->gen = g;
    l->hook = lp_gen_on_retire(g, on_listener_retire, l);
    if (l->hook == NULL) return luaL_error(L, "db.listen: out of memory");
    int err = lp_pg_listen(h->pg, channel, on_notify, l, &l->id);
    if (err != 0) {
        lp_gen_cancel_retire(g, l->hook);
        l->hook = NULL;
        l->id = 0;
        return luaL_error(L, "db.listen: %s", lp_strerror(err));
    }
    lua_pushvalue(L, 2);
    l->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    l->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* _stats() → {size, open, busy, waiting, inflight, down, errors, reconnects,
 *             coalesced, shared} */
static int l_stats(lua_State *L)
{
    lp_pg_pool *pool = pool_of(L);
    lua_createtable(L, 0, 10);
    if (pool == NULL) return 1;
    lp_pg_stats st;
    lp_pg_pool_stats(pool, &st);
#define F(name)                                                                                    \
    lua_pushnumber(L, (lua_Number)st.name);                                                        \
    lua_setfield(L, -2, #name)
    F(size);
    F(open);
    F(busy);
    F(waiting);
    F(inflight);
    F(errors);
    F(reconnects);
    F(coalesced);
    F(shared);
#undef F
    lua_pushboolean(L, st.down);
    lua_setfield(L, -2, "down");
    return 1;
}

/* ---- the module ----------------------------------------------------------- */

/* The raising and transaction logic reads best in Lua. `C` holds the C
 * functions above; the chunk returns the module table. */
static const char db_lua[] =
    "local C, json = ...\n"
    "local error, pcall, select, type, unpack = error, pcall, select, type, unpack\n"
    "local running = coroutine.running\n"
    "local M = { null = json.null }\n"
    "-- C's calls give status, then their values or the error table\n"
    "local function values_of(st, a, b, c)\n"
    "  if st ~= 0 then error(a, 0) end\n"
    "  return a, b, c\n"
    "end\n"
    "function M.query(sql, ...)\n"
    "  local rows, affected = values_of(C.query(sql, ...))\n"
    "  return rows, affected\n"
    "end\n"
    "function M.batch(list)\n"
    "  return values_of(C.batch(list))\n"
    "end\n"
    "local in_tx = setmetatable({}, { __mode = 'k' })\n"
    "local function finish(conn, co, ok, ...)\n"
    "  if ok then\n"
    "    local cok, err = pcall(function()\n"
    "      local _, _, tag = values_of(C.conn_query(conn, 'COMMIT'))\n"
    "      if tag ~= 'COMMIT' then\n"
    "        error(setmetatable({ code = 'db_error', sqlstate = '25P02', message =\n"
    "          'transaction rolled back: a statement inside it failed' }, C.error_mt), 0)\n"
    "      end\n"
    "    end)\n"
    "    in_tx[co] = nil\n"
    "    C.release(conn)\n"
    "    if not cok then error(err, 0) end\n"
    "    return ...\n"
    "  end\n"
    "  local err = ...\n"
    "  pcall(function() values_of(C.conn_query(conn, 'ROLLBACK')) end)\n"
    "  in_tx[co] = nil\n"
    "  C.release(conn)\n"
    "  error(err, 0)\n"
    "end\n"
    "function M.tx(fn)\n"
    "  if type(fn) ~= 'function' then error('db.tx: expects a function', 2) end\n"
    "  local co = running()\n"
    "  if co == nil or in_tx[co] then error('db.tx: nested transactions are not supported', 2) "
    "end\n"
    "  local st, conn = C.acquire()\n"
    "  if st ~= 0 then error(conn, 0) end\n"
    "  in_tx[co] = true\n"
    "  local q = {}\n"
    "  function q.query(sql, ...)\n"
    "    local rows, affected = values_of(C.conn_query(conn, sql, ...))\n"
    "    return rows, affected\n"
    "  end\n"
    "  function q.batch(list) return values_of(C.conn_batch(conn, list)) end\n"
    "  local ok, err = pcall(q.query, 'BEGIN')\n"
    "  if not ok then\n"
    "    in_tx[co] = nil\n"
    "    C.release(conn)\n"
    "    error(err, 0)\n"
    "  end\n"
    "  return finish(conn, co, pcall(fn, q))\n"
    "end\n"
    "function M.listen(channel, fn)\n"
    "  if type(fn) ~= 'function' then error('db.listen: expects a function', 2) end\n"
    "  return C.listen(channel, function(payload) return fn(payload, channel) end)\n"
    "end\n"
    "M.stats = C.stats\n"
    "return M\n";

static void new_mt(lua_State *L, const char *name, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    if (gc != NULL) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
    }
}

int luaopen_lp_db(lua_State *L)
{
    new_mt(L, CONN_MT, l_release); /* a task that never finished still hands it back */
    lua_pop(L, 1);
    new_mt(L, LISTEN_MT, l_listener_gc);
    lua_newtable(L);
    lua_pushcfunction(L, l_listener_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    new_mt(L, ERROR_MT, NULL);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    /* json: the host's lp.json (encode, decode, array, null) */
    lua_getglobal(L, "require");
    lua_pushstring(L, "lp.json");
    lua_call(L, 1, 1);
    int json = lua_gettop(L);
    lua_pushlightuserdata(L, &array_mt_key);
    lua_getfield(L, json, "array");
    lua_newtable(L);
    lua_call(L, 1, 1);
    if (!lua_getmetatable(L, -1)) lua_pushnil(L);
    lua_remove(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);

    static const luaL_Reg fns[] = {
        {"query", l_query},           {"batch", l_batch},           {"acquire", l_acquire},
        {"conn_query", l_conn_query}, {"conn_batch", l_conn_batch}, {"release", l_release},
        {"listen", l_listen},         {"stats", l_stats},           {NULL, NULL}};
    /* the converter, for push_converted: registry-anchored for the life of
     * the state (a generation requires lp.db once) */
    lua_getfield(L, json, "encode");
    lua_getfield(L, json, "decode");
    lua_pushcclosure(L, l_convert, 2);
    int convert_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    int C = lua_gettop(L);
    for (const luaL_Reg *f = fns; f->name != NULL; f++) {
        /* upvalues: json.encode, a never-raising decode, the converter's ref */
        lua_getfield(L, json, "encode");
        lua_getfield(L, json, "decode");
        lua_pushinteger(L, convert_ref);
        lua_pushcclosure(L, f->func, 3);
        lua_setfield(L, C, f->name);
    }
    luaL_getmetatable(L, ERROR_MT);
    lua_setfield(L, C, "error_mt");
    if (luaL_loadbuffer(L, db_lua, sizeof(db_lua) - 1, "=lp.db") != 0) return lua_error(L);
    lua_pushvalue(L, C);
    lua_pushvalue(L, json);
    lua_call(L, 2, 1);
    return 1;
}
