/* subsystems.h — opening and closing what a worker connects to.
 *
 * One place that knows every subsystem (PostgreSQL, Redis, outbound HTTP),
 * so main.c stays a command dispatcher and each subsystem stays unaware of
 * the others. */
#ifndef LP_SUBSYSTEMS_H
#define LP_SUBSYSTEMS_H

#include "config.h"
#include "host.h"

/* Starts every subsystem on h->loop; never blocks and never fails because a
 * server is down (they connect in the background). 0 or LP_ENOMEM. */
int lp_subsystems_open(lp_host *h);

/* Closes them; pending callbacks get LP_ECLOSED. */
void lp_subsystems_close(lp_host *h);

/* Refuses to start with an unsafe configuration (e.g. production without
 * JWT_SECRET). Prints why and returns non-zero. */
int lp_subsystems_check(const lp_config *cfg);

/* `lifeplan migrate [--status]`. Returns the process exit code. */
int lp_subsystems_migrate(const lp_config *cfg, int argc, char **argv);

#endif
