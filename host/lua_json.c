/* lua_json.c — `lp.json`: JSON through lua-cjson, plus empty arrays.
 *
 *   json.encode(v)       → string (raises on NaN, cycles, functions)
 *   json.decode(s)       → value, or nil, "message" (never raises)
 *   json.null            the JSON null sentinel (cjson.null)
 *   json.array(t)        marks t as an array, so an empty t encodes as []
 *   json.empty_array     a marked empty table
 *   json.is_array(t)     true if t was marked
 *
 * lua-cjson 2.1 encodes every empty table as {}. So encode first walks the
 * value (in C) and puts a placeholder string in place of each marked empty
 * table, encodes, puts the tables back (also when cjson raises) and turns
 * the placeholders into []: no copy of the value, and no second pass over
 * the text when it held none. Numbers keep 14 significant digits (cjson's
 * maximum): integers up to 10^14 are exact, which covers won amounts and
 * ids. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"

int luaopen_cjson(lua_State *L);

/* ---- cjson's number hooks ------------------------------------------------
 *
 * lua-cjson formats and parses numbers through three functions of its own
 * fpconv.c (a locale shim around snprintf/strtod). They are defined here,
 * so the linker takes these instead of that object (were both linked, it
 * would fail on the duplicates). The host never calls setlocale, so the
 * decimal point is always '.', and the output is what fpconv gives:
 * snprintf "%.<precision>g". Integers below 10^precision, which "%g" prints
 * as plain digits, are written by hand first: snprintf costs ~150 ns a
 * number (plus its mallocs), and ids and won amounts are integers. */
#define FPCONV_G_FMT_BUFSIZE 32

void fpconv_init(void);
int fpconv_g_fmt(char *str, double num, int precision);
double fpconv_strtod(const char *nptr, char **endptr);

void fpconv_init(void) {}

double fpconv_strtod(const char *nptr, char **endptr)
{
    return strtod(nptr, endptr);
}

int fpconv_g_fmt(char *str, double num, int precision)
{
    static const double limit[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14};
    if (precision < 1 || precision > 14) precision = 14;
    double a = fabs(num);
    if (a < limit[precision] && a == floor(a) && !(num == 0 && signbit(num))) {
        unsigned long long u = (unsigned long long)a;
        char digits[20], *d = digits + sizeof(digits);
        do
            *--d = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        int n = 0;
        if (num < 0) str[n++] = '-';
        size_t len = (size_t)(digits + sizeof(digits) - d);
        memcpy(str + n, d, len);
        n += (int)len;
        str[n] = '\0';
        return n;
    }
    return snprintf(str, FPCONV_G_FMT_BUFSIZE, "%.*g", precision, num);
}

static char array_mt_key;
/* The string put in place of a marked empty table, and how cjson writes it. */
#define PLACEHOLDER_RAW "\0lp-empty-array\0"
#define PLACEHOLDER     "\"\\u0000lp-empty-array\\u0000\""

static void push_array_mt(lua_State *L)
{
    lua_pushlightuserdata(L, &array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

static int is_marked_empty(lua_State *L, int idx)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    if (!lua_getmetatable(L, idx)) return 0;
    push_array_mt(L);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!marked) return 0;
    lua_pushnil(L);
    if (lua_next(L, idx)) {
        lua_pop(L, 2);
        return 0;
    }
    return 1;
}

/* Puts the placeholder in place of every marked empty table under the
 * table at idx (rawset: an existing field, allowed while traversing) and
 * records each swap as (parent, key, table) in the undo table at `undo`.
 * A table reached twice has its empties swapped already; depth bounds
 * cycles (cjson refuses them anyway). */
static void swap_marked(lua_State *L, int idx, int undo, int *n, int depth)
{
    if (depth > 100) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            if (is_marked_empty(L, -1)) {
                lua_pushvalue(L, idx);
                lua_rawseti(L, undo, ++*n);
                lua_pushvalue(L, -2);
                lua_rawseti(L, undo, ++*n);
                lua_pushvalue(L, -1);
                lua_rawseti(L, undo, ++*n);
                lua_pushvalue(L, -2);
                lua_pushliteral(L, PLACEHOLDER_RAW);
                lua_rawset(L, idx);
            } else {
                swap_marked(L, lua_gettop(L), undo, n, depth + 1);
            }
        }
        lua_pop(L, 1);
    }
}

/* Puts the swapped tables back. */
static void unswap(lua_State *L, int undo, int n)
{
    for (int i = 1; i + 2 <= n; i += 3) {
        lua_rawgeti(L, undo, i);
        lua_rawgeti(L, undo, i + 1);
        lua_rawgeti(L, undo, i + 2);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
}

/* Replaces each (JSON-quoted) placeholder in the string on top by []. */
static void placeholders_to_arrays(lua_State *L)
{
    size_t n, phl = sizeof(PLACEHOLDER) - 1;
    const char *s = lua_tolstring(L, -1, &n), *end = s + n, *at;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while ((at = memmem(s, (size_t)(end - s), PLACEHOLDER, phl)) != NULL) {
        luaL_addlstring(&b, s, (size_t)(at - s));
        luaL_addlstring(&b, "[]", 2);
        s = at + phl;
    }
    luaL_addlstring(&b, s, (size_t)(end - s));
    luaL_pushresult(&b);
}

/* json.encode(v): marked empty tables become placeholders for the time of
 * the encode (restored even when it raises), then [] in the text. */
static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushvalue(L, lua_upvalueindex(1)); /* cjson encode */
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    if (is_marked_empty(L, 1)) {
        lua_pushliteral(L, "[]");
        return 1;
    }
    lua_newtable(L); /* 2: undo */
    int swapped = 0;
    swap_marked(L, 1, 2, &swapped, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    int rc = lua_pcall(L, 1, 1, 0);
    unswap(L, 2, swapped);
    if (rc != 0) return lua_error(L);
    if (swapped > 0) placeholders_to_arrays(L);
    return 1;
}

static int l_decode(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* cjson decode */
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_is_array(lua_State *L)
{
    if (!lua_istable(L, 1) || !lua_getmetatable(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    push_array_mt(L);
    lua_pushboolean(L, lua_rawequal(L, -1, -2));
    return 1;
}

int luaopen_lp_json(lua_State *L)
{
    lua_pushlightuserdata(L, &array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_isnil(L, -1)) {
        lua_pushlightuserdata(L, &array_mt_key);
        lua_newtable(L);
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__name");
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);

    /* A private cjson instance, so no script can change our settings. */
    luaopen_cjson(L);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    int cj = lua_gettop(L);
    lua_getfield(L, cj, "encode_sparse_array");
    lua_pushboolean(L, 1);
    lua_call(L, 1, 0);
    lua_getfield(L, cj, "decode_max_depth");
    lua_pushinteger(L, 128);
    lua_call(L, 1, 0);
    lua_getfield(L, cj, "encode_max_depth");
    lua_pushinteger(L, 128);
    lua_call(L, 1, 0);
    lua_getfield(L, cj, "encode_number_precision");
    lua_pushinteger(L, 14);
    lua_call(L, 1, 0);

    lua_newtable(L);
    lua_getfield(L, cj, "encode");
    lua_pushcclosure(L, l_encode, 1);
    lua_setfield(L, -2, "encode");
    lua_getfield(L, cj, "decode");
    lua_pushcclosure(L, l_decode, 1);
    lua_setfield(L, -2, "decode");
    lua_getfield(L, cj, "null");
    lua_setfield(L, -2, "null");
    lua_pushcfunction(L, l_array);
    lua_setfield(L, -2, "array");
    lua_pushcfunction(L, l_is_array);
    lua_setfield(L, -2, "is_array");
    lua_newtable(L);
    push_array_mt(L);
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "empty_array");
    return 1;
}
