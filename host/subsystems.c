/* subsystems.c — wiring of the per-worker clients. */
#include "subsystems.h"

#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "fetch.h"
#include "lp.h"
#include "redis.h"

int lp_subsystems_open(lp_host *h)
{
    int rc = lp_fetch_host_open(h);
    if (rc != 0) return rc;
    /* A malformed REDIS_URL is logged by lp_redis_host_open; the host still
     * serves, with redis.call answering "unavailable". */
    rc = lp_redis_host_open(h);
    return rc == LP_ENOMEM ? rc : 0;
}

/* Before the VM closes: pending I/O resumes its tasks (with LP_ECLOSED) while
 * their Lua states still exist. */
void lp_subsystems_close(lp_host *h)
{
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
