/* cache.h — an in-process LRU of byte strings with per-entry TTL.
 *
 * One per worker, outside script generations, so it survives reloads.
 * Bounded by entry count: inserting into a full cache evicts the least
 * recently used entry. Expired entries are dropped when touched. */
#ifndef LP_CACHE_H
#define LP_CACHE_H

#include <stddef.h>

typedef struct lp_cache lp_cache;

lp_cache *lp_cache_new(size_t max_entries);
void lp_cache_free(lp_cache *c);

/* Stores a copy of value under key for ttl_ms (<= 0: no expiry).
 * 0 or LP_ENOMEM. */
int lp_cache_set(lp_cache *c, const char *key, size_t klen, const char *value, size_t vlen,
                 double ttl_ms, double now_ms);

/* The value (valid until the next call into the cache) or NULL. */
const char *lp_cache_get(lp_cache *c, const char *key, size_t klen, size_t *vlen, double now_ms);

/* Removes key; returns 1 if it was there. */
int lp_cache_delete(lp_cache *c, const char *key, size_t klen);

size_t lp_cache_count(const lp_cache *c);

#endif
