/* metrics.c — an open-addressing table of (route, status) series. */
#include "metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp.h"

static const double bucket_ms[] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKETS LP_ARRAY_SIZE(bucket_ms)
#define NSLOTS   1024 /* routes × statuses seen; far more than a real API has */

typedef struct series {
    char *route; /* NULL = empty slot */
    int status;
    uint64_t count;
    double sum_ms;
    uint64_t buckets[NBUCKETS];
} series;

struct lp_metrics {
    series slots[NSLOTS];
    int used;
};

lp_metrics *lp_metrics_new(void)
{
    return calloc(1, sizeof(lp_metrics));
}

void lp_metrics_free(lp_metrics *m)
{
    if (m == NULL) return;
    for (int i = 0; i < NSLOTS; i++)
        free(m->slots[i].route);
    free(m);
}

static uint32_t hash(const char *s, int status)
{
    uint32_t h = 2166136261u ^ (uint32_t)status;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void lp_metrics_observe(lp_metrics *m, const char *route, int status, double ms)
{
    if (route == NULL || *route == '\0') route = "-";
    uint32_t i = hash(route, status) % NSLOTS;
    for (int probes = 0; probes < NSLOTS; probes++, i = (i + 1) % NSLOTS) {
        series *s = &m->slots[i];
        if (s->route == NULL) {
            if (m->used >= NSLOTS - 1) return; /* full: drop rather than grow without bound */
            s->route = strdup(route);
            if (s->route == NULL) return;
            s->status = status;
            m->used++;
        } else if (s->status != status || strcmp(s->route, route) != 0) {
            continue;
        }
        s->count++;
        s->sum_ms += ms;
        for (size_t b = 0; b < NBUCKETS; b++)
            if (ms <= bucket_ms[b]) s->buckets[b]++;
        return;
    }
}

static int put(char **b, size_t *l, size_t *c, const char *s)
{
    return lp_buf_append(b, l, c, s, strlen(s));
}

int lp_metrics_render(const lp_metrics *m, char **buf, size_t *len, size_t *cap)
{
    char line[512];
    int rc = put(buf, len, cap,
                 "# HELP lifeplan_http_requests_total Requests answered, by route and status.\n"
                 "# TYPE lifeplan_http_requests_total counter\n");
    for (int i = 0; i < NSLOTS && rc == 0; i++) {
        const series *s = &m->slots[i];
        if (s->route == NULL) continue;
        snprintf(line, sizeof(line),
                 "lifeplan_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", s->route,
                 s->status, (unsigned long long)s->count);
        rc |= put(buf, len, cap, line);
    }
    rc |= put(buf, len, cap,
              "# HELP lifeplan_http_request_duration_ms Request latency in milliseconds.\n"
              "# TYPE lifeplan_http_request_duration_ms histogram\n");
    for (int i = 0; i < NSLOTS && rc == 0; i++) {
        const series *s = &m->slots[i];
        if (s->route == NULL) continue;
        for (size_t b = 0; b < NBUCKETS; b++) {
            snprintf(
                line, sizeof(line),
                "lifeplan_http_request_duration_ms_bucket{route=\"%s\",status=\"%d\",le=\"%g\"} "
                "%llu\n",
                s->route, s->status, bucket_ms[b], (unsigned long long)s->buckets[b]);
            rc |= put(buf, len, cap, line);
        }
        snprintf(line, sizeof(line),
                 "lifeplan_http_request_duration_ms_bucket{route=\"%s\",status=\"%d\",le=\"+Inf\"} "
                 "%llu\n"
                 "lifeplan_http_request_duration_ms_sum{route=\"%s\",status=\"%d\"} %.3f\n"
                 "lifeplan_http_request_duration_ms_count{route=\"%s\",status=\"%d\"} %llu\n",
                 s->route, s->status, (unsigned long long)s->count, s->route, s->status, s->sum_ms,
                 s->route, s->status, (unsigned long long)s->count);
        rc |= put(buf, len, cap, line);
    }
    return rc ? LP_ENOMEM : 0;
}
