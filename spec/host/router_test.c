/* router_test.c — route patterns, precedence, 405 and parameters. */
#include <string.h>

#include "router.h"
#include "test.h"

static int match(lp_router *r, const char *method, const char *path, lp_route_match *m, char *allow)
{
    return lp_router_match(r, method, path, strlen(path), m, allow, 64);
}

int main(void)
{
    lp_router *r = lp_router_new();
    lp_route_match m;
    char allow[64];

    CHECK(lp_router_add(r, "GET", "/api/v1/policies/:id", 1, 0) == 0);
    CHECK(lp_router_add(r, "GET", "/api/v1/policies/recommend", 2, 1) == 0);
    CHECK(lp_router_add(r, "POST", "/api/v1/policies/:id/favorite", 3, 1) == 0);
    CHECK(lp_router_add(r, "DELETE", "/api/v1/policies/:id/favorite", 4, 1) == 0);
    CHECK(lp_router_add(r, "GET", "/", 5, 0) == 0);
    CHECK(lp_router_add(r, "GET", "/api/v1/policies/:id", 9, 0) != 0); /* duplicate */
    CHECK(lp_router_add(r, "GET", "no-slash", 9, 0) != 0);
    CHECK(lp_router_add(r, "GET", "/a//b", 9, 0) != 0);

    CHECK(match(r, "GET", "/api/v1/policies/42", &m, allow) == LP_ROUTE_FOUND);
    CHECK(m.handler == 1 && m.nparams == 1);
    CHECK(strcmp(m.params[0].name, "id") == 0);
    CHECK(m.params[0].value_len == 2 && memcmp(m.params[0].value, "42", 2) == 0);

    CHECK(match(r, "GET", "/api/v1/policies/recommend", &m, allow) == LP_ROUTE_FOUND);
    CHECK(m.handler == 2 && m.flags == 1 && m.nparams == 0);

    CHECK(match(r, "HEAD", "/api/v1/policies/7", &m, allow) == LP_ROUTE_FOUND);
    CHECK(m.handler == 1);

    CHECK(match(r, "PUT", "/api/v1/policies/7/favorite", &m, allow) == LP_ROUTE_BAD_METHOD);
    CHECK(strcmp(allow, "POST, DELETE") == 0);

    CHECK(match(r, "GET", "/api/v1/policies", &m, allow) == LP_ROUTE_NOT_FOUND);
    CHECK(match(r, "GET", "/api/v1/policies/", &m, allow) == LP_ROUTE_NOT_FOUND);
    CHECK(match(r, "GET", "/api/v1/policies/1/2/3", &m, allow) == LP_ROUTE_NOT_FOUND);
    CHECK(match(r, "GET", "/", &m, allow) == LP_ROUTE_FOUND && m.handler == 5);
    CHECK(match(r, "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", &m, allow) == LP_ROUTE_NOT_FOUND);

    CHECK(strcmp(lp_router_label(r, 1), "GET /api/v1/policies/recommend") == 0);
    CHECK(lp_router_count(r) == 5);
    lp_router_free(r);
    return TEST_DONE();
}
