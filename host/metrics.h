/* metrics.h — request counters and latency histograms, Prometheus text.
 *
 * Per worker; labels are route patterns ("GET /api/v1/transactions/:id"),
 * never raw paths, so the series count stays bounded. Other subsystems'
 * gauges are appended by whoever renders /metrics. */
#ifndef LP_METRICS_H
#define LP_METRICS_H

#include <stddef.h>

typedef struct lp_metrics lp_metrics;

lp_metrics *lp_metrics_new(void);
void lp_metrics_free(lp_metrics *m);

/* Records one answered request. `route` may be NULL or "-" (unmatched). */
void lp_metrics_observe(lp_metrics *m, const char *route, int status, double ms);

/* Appends the request series in Prometheus text format. 0 or LP_ENOMEM. */
int lp_metrics_render(const lp_metrics *m, char **buf, size_t *len, size_t *cap);

#endif
