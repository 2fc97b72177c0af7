/* config.c — environment → lp_config, with defaults that suit development. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void env_str(char *dst, size_t size, const char *name, const char *def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') v = def;
    snprintf(dst, size, "%s", v);
}

static long env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"ignoring invalid %s=%s, using %ld\"}\n",
                name, v, def);
        return def;
    }
    return n;
}

void lp_config_load(lp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *env = getenv("LIFEPLAN_ENV");
    cfg->dev = env != NULL && strcmp(env, "development") == 0;
    cfg->production = env != NULL && strcmp(env, "production") == 0;

    env_str(cfg->host, sizeof(cfg->host), "HOST", "127.0.0.1");
    cfg->port = (int)env_long("PORT", 8080, 0, 65535);
    cfg->workers = (int)env_long("WORKERS", 1, 1, 256);
    cfg->max_header_bytes = (size_t)env_long("MAX_HEADER_BYTES", 16 * 1024, 1024, 1 << 20);
    cfg->max_body_bytes = (size_t)env_long("MAX_BODY_BYTES", 1 << 20, 1024, 64L << 20);
    cfg->header_timeout_ms = (int)env_long("HEADER_TIMEOUT_MS", 10000, 10, 3600000);
    cfg->body_timeout_ms = (int)env_long("BODY_TIMEOUT_MS", 10000, 10, 3600000);
    cfg->keepalive_timeout_ms = (int)env_long("KEEPALIVE_TIMEOUT_MS", 75000, 10, 3600000);
    cfg->max_connections = (int)env_long("MAX_CONNECTIONS", 10000, 1, 1000000);
    cfg->shutdown_timeout_ms = (int)env_long("SHUTDOWN_TIMEOUT_MS", 10000, 0, 3600000);
    env_str(cfg->modules_dir, sizeof(cfg->modules_dir), "MODULES_DIR", "modules");
    env_str(cfg->migrations_dir, sizeof(cfg->migrations_dir), "MIGRATIONS_DIR", "migrations");
    cfg->cache_max_entries = (size_t)env_long("CACHE_MAX_ENTRIES", 10000, 16, 10000000);
    cfg->lua_gc_pause = (int)env_long("LUA_GC_PAUSE", 150, 100, 1000);
    cfg->lua_gc_stepmul = (int)env_long("LUA_GC_STEPMUL", 200, 100, 10000);

    env_str(cfg->database_url, sizeof(cfg->database_url), "DATABASE_URL", "postgresql:///lifeplan");
    cfg->db_pool_size = (int)env_long("DB_POOL_SIZE", 8, 1, 512);
    cfg->db_wait_timeout_ms = (int)env_long("DB_WAIT_TIMEOUT_MS", 2000, 1, 600000);
    cfg->db_statement_timeout_ms = (int)env_long("DB_STATEMENT_TIMEOUT_MS", 5000, 0, 3600000);
    cfg->db_connect_timeout_ms = (int)env_long("DB_CONNECT_TIMEOUT_MS", 2000, 100, 600000);
    cfg->db_pipeline_depth = (int)env_long("DB_PIPELINE_DEPTH", 8, 1, 64);
    cfg->db_pipeline_pack = (int)env_long("DB_PIPELINE_PACK", 0, 0, 64);

    env_str(cfg->redis_url, sizeof(cfg->redis_url), "REDIS_URL", "redis://127.0.0.1:6379");
    cfg->redis_timeout_ms = (int)env_long("REDIS_TIMEOUT_MS", 1000, 1, 600000);

    cfg->http_timeout_ms = (int)env_long("HTTP_TIMEOUT_MS", 30000, 10, 3600000);
}
