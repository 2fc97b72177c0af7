/* subsystems.c — wiring of the per-worker clients. */
#include "subsystems.h"

#include <stdio.h>
#include <stdlib.h>

int lp_subsystems_open(lp_host *h)
{
    return 0;
}

void lp_subsystems_close(lp_host *h) {}

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
    fputs("lifeplan: migrate is not built yet\n", stderr);
    return 1;
}
