/* subsystems.c — wiring of the per-worker clients. */
#include "subsystems.h"

#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "fetch.h"
#include "log.h"
#include "lp.h"
#include "ops.h"
#include "pg.h"
#include "redis.h"

/* ---- readiness and gauges --------------------------------------------- */

typedef struct probe_ctx {
    lp_probe_done done;
    void *data;
} probe_ctx;

static void on_redis_ping(int status, void *data)
{
    probe_ctx *p = data;
    p->done(status == 0, p->data);
    free(p);
}

static int probe_redis(lp_host *h, lp_probe_done done, void *data)
{
    if (h->redis == NULL) return LP_EUNAVAIL;
    probe_ctx *p = malloc(sizeof(*p));
    if (p == NULL) return LP_ENOMEM;
    *p = (probe_ctx){done, data};
    int rc = lp_redis_ping(h->redis, on_redis_ping, p);
    if (rc != 0) free(p);
    return rc;
}

static int redis_gauges(lp_host *h, char **buf, size_t *len, size_t *cap)
{
    if (h->redis == NULL) return 0;
    lp_redis_stats st;
    lp_redis_get_stats(h->redis, &st);
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "# TYPE lifeplan_redis_connected gauge\nlifeplan_redis_connected %d\n"
                     "# TYPE lifeplan_redis_errors_total counter\nlifeplan_redis_errors_total %lu\n"
                     "# TYPE lifeplan_redis_reconnects_total counter\n"
                     "lifeplan_redis_reconnects_total %lu\n",
                     st.connected, st.errors, st.reconnects);
    return lp_buf_append(buf, len, cap, line, (size_t)n);
}

static void on_pg_ping(int status, PGresult *res, void *data)
{
    probe_ctx *p = data;
    PQclear(res);
    p->done(status == 0, p->data);
    free(p);
}

static int probe_postgres(lp_host *h, lp_probe_done done, void *data)
{
    if (h->pg == NULL) return LP_EUNAVAIL;
    probe_ctx *p = malloc(sizeof(*p));
    if (p == NULL) return LP_ENOMEM;
    *p = (probe_ctx){done, data};
    int rc = lp_pg_ping(h->pg, on_pg_ping, p); /* fails at once while PostgreSQL is down */
    if (rc != 0) free(p);
    return rc;
}

static int pg_gauges(lp_host *h, char **buf, size_t *len, size_t *cap)
{
    if (h->pg == NULL) return 0;
    lp_pg_stats st;
    lp_pg_pool_stats(h->pg, &st);
    char line[1024];
    int n = snprintf(line, sizeof(line),
                     "# TYPE lifeplan_db_pool_size gauge\nlifeplan_db_pool_size %d\n"
                     "# TYPE lifeplan_db_pool_open gauge\nlifeplan_db_pool_open %d\n"
                     "# TYPE lifeplan_db_pool_busy gauge\nlifeplan_db_pool_busy %d\n"
                     "# TYPE lifeplan_db_pool_waiting gauge\nlifeplan_db_pool_waiting %d\n"
                     "# TYPE lifeplan_db_pool_inflight gauge\nlifeplan_db_pool_inflight %d\n"
                     "# TYPE lifeplan_db_up gauge\nlifeplan_db_up %d\n"
                     "# TYPE lifeplan_db_errors_total counter\nlifeplan_db_errors_total %lu\n"
                     "# TYPE lifeplan_db_reconnects_total counter\n"
                     "lifeplan_db_reconnects_total %lu\n"
                     "# TYPE lifeplan_db_coalesced_total counter\n"
                     "lifeplan_db_coalesced_total %lu\n"
                     "# TYPE lifeplan_db_shared_sync_total counter\n"
                     "lifeplan_db_shared_sync_total %lu\n",
                     st.size, st.open, st.busy, st.waiting, st.inflight, !st.down, st.errors,
                     st.reconnects, st.coalesced, st.shared);
    return lp_buf_append(buf, len, cap, line, (size_t)n);
}

int lp_subsystems_open(lp_host *h)
{
    int rc = lp_fetch_host_open(h);
    if (rc != 0) return rc;
    /* A malformed REDIS_URL is logged by lp_redis_host_open; the host still
     * serves, with redis.call answering "unavailable". */
    rc = lp_redis_host_open(h);
    if (rc == LP_ENOMEM) return rc;
    lp_ops_add_probe(h, "redis", probe_redis);
    lp_ops_add_gauges(h, redis_gauges);
    /* Likewise a DATABASE_URL libpq cannot parse: db calls answer 503. */
    rc = lp_pg_host_open(h);
    if (rc == LP_ENOMEM) return rc;
    if (rc != 0) lp_logf("error", "postgres: DATABASE_URL is not a valid connection string");
    lp_ops_add_probe(h, "postgres", probe_postgres);
    lp_ops_add_gauges(h, pg_gauges);
    return 0;
}

/* Before the VM closes: pending I/O resumes its tasks (with LP_ECLOSED) while
 * their Lua states still exist. */
void lp_subsystems_close(lp_host *h)
{
    lp_pg_host_close(h);
    lp_redis_host_close(h);
    lp_fetch_host_close(h);
}

int lp_subsystems_check(const lp_config *cfg)
{
    const char *secret = getenv("JWT_SECRET");
    if (cfg->production && (secret == NULL || *secret == '\0')) {
        fputs("lifeplan: JWT_SECRET must be set when LIFEPLAN_ENV=production\n", stderr);
        return 1;
    }
    return 0;
}

int lp_subsystems_migrate(const lp_config *cfg, int argc, char **argv)
{
    return lp_migrate_main(cfg, argc, argv);
}
