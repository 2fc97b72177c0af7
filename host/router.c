/* router.c — pattern routes matched segment by segment. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp.h"

typedef struct route {
    char method[8];
    char *label;   /* "GET /a/:id"                          */
    char *pattern; /* "/a/:id", segments split in place      */
    int nsegs;
    const char *segs[LP_ROUTE_MAX_SEGMENTS]; /* literal text, or param name after ':' */
    size_t seglen[LP_ROUTE_MAX_SEGMENTS];
    unsigned char is_param[LP_ROUTE_MAX_SEGMENTS];
    int handler;
    int flags;
    int next; /* 1 + the next route with as many segments, 0 = none    */
} route;

/* Routes in the order they were added; a match only looks at the ones with
 * as many segments as the path (a chain per count, in that same order). */
struct lp_router {
    route *routes;
    int n, cap;
    int first[LP_ROUTE_MAX_SEGMENTS + 1], last[LP_ROUTE_MAX_SEGMENTS + 1]; /* 1 + index, 0 = none */
};

lp_router *lp_router_new(void)
{
    return calloc(1, sizeof(lp_router));
}

void lp_router_free(lp_router *r)
{
    if (r == NULL) return;
    for (int i = 0; i < r->n; i++) {
        free(r->routes[i].label);
        free(r->routes[i].pattern);
    }
    free(r->routes);
    free(r);
}

/* Splits "/a/b/c" into segments; returns the count or -1 if too many. */
static int split_path(const char *p, size_t len, const char **segs, size_t *lens)
{
    int n = 0;
    size_t i = 0;
    if (len > 0 && p[0] == '/') i = 1;
    while (i < len) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        if (n == LP_ROUTE_MAX_SEGMENTS) return -1;
        segs[n] = p + i;
        lens[n] = j - i;
        n++;
        i = j + 1;
    }
    return n;
}

int lp_router_add(lp_router *r, const char *method, const char *pattern, int handler, int flags)
{
    size_t plen = strlen(pattern);
    if (plen == 0 || pattern[0] != '/' || strlen(method) >= sizeof(((route *)0)->method))
        return LP_EINVAL;
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->routes[i].method, method) == 0 && strcmp(r->routes[i].pattern, pattern) == 0)
            return LP_EINVAL;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        route *nr = realloc(r->routes, (size_t)cap * sizeof(route));
        if (nr == NULL) return LP_ENOMEM;
        r->routes = nr;
        r->cap = cap;
    }
    route *rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    snprintf(rt->method, sizeof(rt->method), "%s", method);
    rt->pattern = strdup(pattern);
    size_t lsize = strlen(method) + plen + 2;
    rt->label = malloc(lsize);
    if (rt->pattern == NULL || rt->label == NULL) {
        free(rt->pattern);
        free(rt->label);
        return LP_ENOMEM;
    }
    snprintf(rt->label, lsize, "%s %s", method, pattern);
    rt->nsegs = split_path(rt->pattern, plen, rt->segs, rt->seglen);
    if (rt->nsegs < 0) goto bad;
    int nparams = 0;
    for (int i = 0; i < rt->nsegs; i++) {
        if (rt->seglen[i] > 1 && rt->segs[i][0] == ':') {
            rt->is_param[i] = 1;
            rt->segs[i]++;
            rt->seglen[i]--;
            if (++nparams > LP_ROUTE_MAX_PARAMS) goto bad;
        } else if (rt->seglen[i] == 0 && i != rt->nsegs - 1) {
            goto bad;
        }
    }
    /* Param names are compared with their length; terminate them in place so
     * they can be handed out as C strings too. */
    for (int i = 0; i < rt->nsegs; i++)
        if (rt->is_param[i]) ((char *)rt->segs[i])[rt->seglen[i]] = '\0';
    rt->handler = handler;
    rt->flags = flags;
    if (r->last[rt->nsegs])
        r->routes[r->last[rt->nsegs] - 1].next = r->n + 1;
    else
        r->first[rt->nsegs] = r->n + 1;
    r->last[rt->nsegs] = r->n + 1;
    r->n++;
    return 0;
bad:
    free(rt->pattern);
    free(rt->label);
    return LP_EINVAL;
}

/* Returns a specificity score (higher wins) if the route's pattern matches
 * the segments, or -1. Literal segments earlier in the path weigh more. */
static int match_route(const route *rt, int n, const char **segs, const size_t *lens)
{
    if (rt->nsegs != n) return -1;
    int score = 0;
    for (int i = 0; i < n; i++) {
        if (rt->is_param[i]) {
            if (lens[i] == 0) return -1;
            continue;
        }
        if (rt->seglen[i] != lens[i] || memcmp(rt->segs[i], segs[i], lens[i]) != 0) return -1;
        score |= 1 << (LP_ROUTE_MAX_SEGMENTS - i);
    }
    return score;
}

int lp_router_match(const lp_router *r, const char *method, const char *path, size_t len,
                    lp_route_match *m, char *allow, size_t allow_size)
{
    const char *segs[LP_ROUTE_MAX_SEGMENTS];
    size_t lens[LP_ROUTE_MAX_SEGMENTS];
    int n = split_path(path, len, segs, lens);
    if (n < 0) return LP_ROUTE_NOT_FOUND;
    if (strcmp(method, "HEAD") == 0) method = "GET";

    int best = -1, best_score = -1, path_known = 0;
    for (int i = r->first[n] - 1; i >= 0; i = r->routes[i].next - 1) {
        int s = match_route(&r->routes[i], n, segs, lens);
        if (s < 0) continue;
        path_known = 1;
        if (strcmp(r->routes[i].method, method) != 0) continue;
        if (s > best_score) {
            best_score = s;
            best = i;
        }
    }
    if (best < 0) {
        if (!path_known) return LP_ROUTE_NOT_FOUND;
        size_t off = 0;
        if (allow_size) allow[0] = '\0';
        for (int i = r->first[n] - 1; i >= 0; i = r->routes[i].next - 1) {
            if (match_route(&r->routes[i], n, segs, lens) < 0) continue;
            if (strstr(allow, r->routes[i].method) != NULL) continue; /* listed already */
            int w = snprintf(allow + off, allow_size - off, "%s%s", off ? ", " : "",
                             r->routes[i].method);
            if (w < 0 || (size_t)w >= allow_size - off) break;
            off += (size_t)w;
        }
        return LP_ROUTE_BAD_METHOD;
    }
    const route *rt = &r->routes[best];
    m->route = best;
    m->handler = rt->handler;
    m->flags = rt->flags;
    m->nparams = 0;
    for (int i = 0; i < n; i++) {
        if (!rt->is_param[i]) continue;
        lp_route_param *p = &m->params[m->nparams++];
        p->name = rt->segs[i];
        p->value = segs[i];
        p->value_len = lens[i];
    }
    return LP_ROUTE_FOUND;
}

const char *lp_router_label(const lp_router *r, int i)
{
    return (i >= 0 && i < r->n) ? r->routes[i].label : "";
}

int lp_router_count(const lp_router *r)
{
    return r->n;
}
