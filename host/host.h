/* host.h — the per-worker host: one loop and the subsystems that live on it.
 *
 * Each worker process owns exactly one lp_host. Subsystems that outlive
 * script generations (pools, caches, the matching index) hang off it, so a
 * reload never drops a connection or a cache entry. Lua bindings reach it
 * through lp_host_from(L). */
#ifndef LP_HOST_H
#define LP_HOST_H

#include <lua.h>
#include <uv.h>

#include "config.h"

typedef struct lp_server lp_server;
typedef struct lp_vm lp_vm;
typedef struct lp_pg_pool lp_pg_pool;
typedef struct lp_redis lp_redis;
typedef struct lp_fetch lp_fetch;
typedef struct lp_cache lp_cache;
typedef struct lp_metrics lp_metrics;
typedef struct lp_policy_index lp_policy_index;

typedef struct lp_host {
    uv_loop_t *loop;
    const lp_config *cfg;
    int worker_id;     /* 0..workers-1                                   */
    lp_server *server; /* HTTP listener and connections                  */
    lp_vm *vm;         /* Lua generations                                */
    lp_pg_pool *pg;    /* PostgreSQL pool (NULL until opened)            */
    lp_redis *redis;   /* Redis client (NULL until opened)               */
    lp_fetch *fetch;   /* outbound HTTP (libcurl multi)                  */
    lp_cache *cache;   /* in-process LRU shared by all generations       */
    lp_metrics *metrics;
    void *match_state; /* owned by lua_match.c: policy/profile indexes   */
    int shutting_down; /* set once SIGTERM/SIGINT arrives                */
} lp_host;

/* The host a Lua state belongs to (set when the generation is created). */
lp_host *lp_host_from(lua_State *L);

#endif
