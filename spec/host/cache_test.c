/* cache_test.c — LRU order, TTL expiry, replacement and bounds. */
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "test.h"

static const char *get(lp_cache *c, const char *k, double now)
{
    static char out[64];
    size_t n;
    const char *v = lp_cache_get(c, k, strlen(k), &n, now);
    if (v == NULL) return NULL;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

static void set(lp_cache *c, const char *k, const char *v, double ttl, double now)
{
    CHECK(lp_cache_set(c, k, strlen(k), v, strlen(v), ttl, now) == 0);
}

int main(void)
{
    lp_cache *c = lp_cache_new(3);
    set(c, "a", "1", 0, 0);
    set(c, "b", "2", 0, 0);
    set(c, "c", "3", 0, 0);
    CHECK(get(c, "a", 0) && strcmp(get(c, "a", 0), "1") == 0); /* a is now most recent */
    set(c, "d", "4", 0, 0);                                    /* evicts b, the LRU */
    CHECK(get(c, "b", 0) == NULL);
    CHECK(get(c, "a", 0) != NULL && get(c, "c", 0) != NULL && get(c, "d", 0) != NULL);
    CHECK(lp_cache_count(c) == 3);

    set(c, "a", "one", 0, 0); /* replace keeps the count */
    CHECK(strcmp(get(c, "a", 0), "one") == 0);
    CHECK(lp_cache_count(c) == 3);

    set(c, "t", "ttl", 100, 1000);
    CHECK(get(c, "t", 1050) != NULL);
    CHECK(get(c, "t", 1100) == NULL); /* expired exactly at the deadline */

    CHECK(lp_cache_delete(c, "a", 1) == 1);
    CHECK(lp_cache_delete(c, "a", 1) == 0);

    /* many keys through a small cache stay bounded */
    for (int i = 0; i < 10000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        lp_cache_set(c, k, strlen(k), "v", 1, 0, 0);
    }
    CHECK(lp_cache_count(c) == 3);
    CHECK(get(c, "k9999", 0) != NULL);
    lp_cache_free(c);
    return TEST_DONE();
}
