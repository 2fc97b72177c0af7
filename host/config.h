/* config.h — the host's configuration, read once from the environment.
 *
 * Every knob has a default that suits development; production sets them in
 * the container's environment. lp_config_load never fails on a bad value: it
 * keeps the default and logs a warning, so a typo cannot stop a deploy. */
#ifndef LP_CONFIG_H
#define LP_CONFIG_H

#include <stddef.h>

typedef struct lp_config {
    /* server */
    char host[64];            /* HOST, 127.0.0.1                               */
    int port;                 /* PORT, 8080                                    */
    int workers;              /* WORKERS or --workers, 1                       */
    int dev;                  /* LIFEPLAN_ENV=development or --dev             */
    int production;           /* LIFEPLAN_ENV=production                       */
    size_t max_header_bytes;  /* MAX_HEADER_BYTES, 16 KiB → 431                */
    size_t max_body_bytes;    /* MAX_BODY_BYTES, 1 MiB → 413                   */
    int header_timeout_ms;    /* HEADER_TIMEOUT_MS, 10000 → 408                */
    int body_timeout_ms;      /* BODY_TIMEOUT_MS, 10000 → 408                  */
    int keepalive_timeout_ms; /* KEEPALIVE_TIMEOUT_MS, 75000                   */
    int max_connections;      /* MAX_CONNECTIONS, 10000 per worker             */
    int shutdown_timeout_ms;  /* SHUTDOWN_TIMEOUT_MS, 10000                    */
    char modules_dir[512];    /* MODULES_DIR, ./modules                        */
    char migrations_dir[512]; /* MIGRATIONS_DIR, ./migrations                  */
    char openapi_path[512];   /* OPENAPI_PATH, ./spec/openapi.json             */
    size_t cache_max_entries; /* CACHE_MAX_ENTRIES, 10000                      */
    int lua_gc_pause;         /* LUA_GC_PAUSE, 150: a GC cycle starts when the
                                 heap reaches this % of what the last one kept */
    int lua_gc_stepmul;       /* LUA_GC_STEPMUL, 200: GC work per step (LuaJIT's) */
    /* PostgreSQL */
    char database_url[512];      /* DATABASE_URL, postgresql:///lifeplan          */
    int db_pool_size;            /* DB_POOL_SIZE, 8                               */
    int db_wait_timeout_ms;      /* DB_WAIT_TIMEOUT_MS, 2000 → 503                */
    int db_statement_timeout_ms; /* DB_STATEMENT_TIMEOUT_MS, 5000               */
    int db_connect_timeout_ms;   /* DB_CONNECT_TIMEOUT_MS, 2000                   */
    int db_pipeline_depth;       /* DB_PIPELINE_DEPTH, 8: jobs in flight per
                                    connection once every connection is busy     */
    int db_pipeline_pack;        /* DB_PIPELINE_PACK, 0: jobs queued on a busy
                                    connection before an idle one is used        */
    /* Redis */
    char redis_url[512];  /* REDIS_URL, redis://127.0.0.1:6379             */
    int redis_timeout_ms; /* REDIS_TIMEOUT_MS, 1000                        */
    /* outbound HTTP */
    int http_timeout_ms; /* HTTP_TIMEOUT_MS, 30000 default per request    */
} lp_config;

/* Fills cfg from the environment (defaults for anything unset or invalid). */
void lp_config_load(lp_config *cfg);

#endif
