/* ops.h — the operations routes, answered in C without touching scripts:
 * GET /healthz, /readyz, /metrics and /api/v1/openapi.json.
 *
 * They keep working when no script generation could be loaded, which is
 * exactly when an operator needs them. Readiness asks every registered probe
 * (PostgreSQL, Redis) and answers 503 naming whichever did not answer. */
#ifndef LP_OPS_H
#define LP_OPS_H

#include "host.h"
#include "http.h"

/* A readiness probe: start a check and call done(ok, data) exactly once,
 * never synchronously. */
typedef void (*lp_probe_done)(int ok, void *data);
typedef int (*lp_probe_fn)(lp_host *h, lp_probe_done done, void *data);

/* Registers a probe named `name` ("postgres", "redis"). At most 8. */
int lp_ops_add_probe(lp_host *h, const char *name, lp_probe_fn fn);

/* A gauge source: appends Prometheus lines for one subsystem. */
typedef int (*lp_gauge_fn)(lp_host *h, char **buf, size_t *len, size_t *cap);
int lp_ops_add_gauges(lp_host *h, lp_gauge_fn fn);

/* Answers req if it is an ops route; returns 1 if it did. */
int lp_ops_handle(lp_host *h, lp_request *req);

/* Replaces the OpenAPI document served (copied; set by each generation load). */
void lp_ops_set_openapi(lp_host *h, const char *doc, size_t len);

/* Frees what ops keeps (at exit). */
void lp_ops_close(lp_host *h);

#endif
