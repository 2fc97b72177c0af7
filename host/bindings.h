/* bindings.h — the Lua modules the host preloads into every generation.
 *
 * Each area of the host API is one lua_*.c file exporting luaopen_lp_<name>;
 * scripts reach it with `local db = require "lp.db"`. To add an area, write
 * the file and add one LP_BINDING line here. */
#ifndef LP_BINDINGS_H
#define LP_BINDINGS_H

#include <lua.h>

#define LP_BINDINGS(X)                                                                             \
    X(json)   /* lua_json.c:   encode/decode (lua-cjson), null, empty_array          */            \
    X(log)    /* lua_log.c:    info/warn/error{...} one JSON line with request id    */            \
    X(timer)  /* lua_timer.c:  sleep, after, every                                   */            \
    X(cache)  /* lua_cache.c:  in-process LRU with TTL                               */            \
    X(crypto) /* lua_crypto.c: random, sha256, hmac_sha256, equal, password_*    */                \
    X(server) /* lua_server.c: routes, generation info, metrics                      */            \
    X(redis)  /* lua_redis.c:  call, pipeline (nil, "unavailable" when Redis is down) */           \
    X(http)   /* lua_http.c:   request{...} with timeouts and streaming on_chunk     */            \
    X(match)  /* lua_match.c:  policy index, match/explain, reverse, set_policies    */            \
    X(db)     /* lua_db.c:     query, tx, batch, listen (PostgreSQL pool)            */

#define LP_DECLARE_BINDING(name) int luaopen_lp_##name(lua_State *L);
LP_BINDINGS(LP_DECLARE_BINDING)
#undef LP_DECLARE_BINDING

/* Frees the matching indexes lua_match.c keeps in host->match_state (call
 * once the worker's Lua states are closed). */
struct lp_host;
void lp_match_state_free(struct lp_host *h);

#endif
