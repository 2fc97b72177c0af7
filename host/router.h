/* router.h — the route table of one script generation.
 *
 * Controllers register "METHOD /api/v1/things/:id" patterns when their
 * generation loads; each request is matched here in C, so Lua never scans
 * strings to dispatch. A literal segment beats a parameter in the same place
 * ("/policies/recommend" wins over "/policies/:id"). */
#ifndef LP_ROUTER_H
#define LP_ROUTER_H

#include <stddef.h>

#define LP_ROUTE_MAX_SEGMENTS 16
#define LP_ROUTE_MAX_PARAMS   8

typedef struct lp_router lp_router;

typedef struct lp_route_param {
    const char *name;  /* points into the router (valid while it lives)    */
    const char *value; /* points into the matched path, not decoded        */
    size_t value_len;
} lp_route_param;

typedef struct lp_route_match {
    int route;   /* index of the route, for lp_router_route()         */
    int handler; /* the value given to lp_router_add (a Lua ref)      */
    int flags;   /* the value given to lp_router_add                  */
    int nparams;
    lp_route_param params[LP_ROUTE_MAX_PARAMS];
} lp_route_match;

enum { LP_ROUTE_FOUND = 0, LP_ROUTE_NOT_FOUND = 1, LP_ROUTE_BAD_METHOD = 2 };

lp_router *lp_router_new(void);
void lp_router_free(lp_router *r);

/* Adds a route. Returns 0, or LP_EINVAL for a malformed pattern or a
 * duplicate (method, pattern). */
int lp_router_add(lp_router *r, const char *method, const char *pattern, int handler, int flags);

/* Matches path (no query string). Returns LP_ROUTE_FOUND and fills *m;
 * LP_ROUTE_BAD_METHOD and writes the allowed methods ("GET, POST") to allow;
 * or LP_ROUTE_NOT_FOUND. HEAD matches GET routes. */
int lp_router_match(const lp_router *r, const char *method, const char *path, size_t len,
                    lp_route_match *m, char *allow, size_t allow_size);

/* "GET /api/v1/things/:id" for route index i (a stable metrics label). */
const char *lp_router_label(const lp_router *r, int i);
int lp_router_count(const lp_router *r);

#endif
