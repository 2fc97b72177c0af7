/* cache.c — chained hash table + doubly-linked recency list. */
#include "cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp.h"

typedef struct entry {
    struct entry *hnext;       /* hash chain                          */
    struct entry *prev, *next; /* recency: head = most recent        */
    uint32_t hash;
    double expires; /* 0 = never                           */
    size_t klen, vlen;
    char data[]; /* key bytes, then value bytes         */
} entry;

struct lp_cache {
    entry **buckets;
    size_t nbuckets;
    size_t count, max;
    entry *head, *tail;
};

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

lp_cache *lp_cache_new(size_t max_entries)
{
    lp_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->max = max_entries ? max_entries : 1;
    c->nbuckets = 64;
    while (c->nbuckets < c->max)
        c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof(entry *));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void lp_cache_free(lp_cache *c)
{
    if (c == NULL) return;
    for (entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(c->buckets);
    free(c);
}

static void list_unlink(lp_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
}

static void list_push_front(lp_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (c->tail == NULL) c->tail = e;
}

static entry **find_slot(lp_cache *c, const char *key, size_t klen, uint32_t h)
{
    entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->data, key, klen) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void remove_entry(lp_cache *c, entry **pp)
{
    entry *e = *pp;
    *pp = e->hnext;
    list_unlink(c, e);
    c->count--;
    free(e);
}

int lp_cache_delete(lp_cache *c, const char *key, size_t klen)
{
    entry **pp = find_slot(c, key, klen, hash_bytes(key, klen));
    if (*pp == NULL) return 0;
    remove_entry(c, pp);
    return 1;
}

int lp_cache_set(lp_cache *c, const char *key, size_t klen, const char *value, size_t vlen,
                 double ttl_ms, double now_ms)
{
    uint32_t h = hash_bytes(key, klen);
    entry **pp = find_slot(c, key, klen, h);
    if (*pp) remove_entry(c, pp);
    if (c->count >= c->max && c->tail) {
        entry *victim = c->tail;
        lp_cache_delete(c, victim->data, victim->klen);
    }
    entry *e = malloc(sizeof(*e) + klen + vlen);
    if (e == NULL) return LP_ENOMEM;
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    e->expires = ttl_ms > 0 ? now_ms + ttl_ms : 0;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, value, vlen);
    pp = find_slot(c, key, klen, h);
    e->hnext = NULL;
    *pp = e;
    list_push_front(c, e);
    c->count++;
    return 0;
}

const char *lp_cache_get(lp_cache *c, const char *key, size_t klen, size_t *vlen, double now_ms)
{
    entry **pp = find_slot(c, key, klen, hash_bytes(key, klen));
    entry *e = *pp;
    if (e == NULL) return NULL;
    if (e->expires && now_ms >= e->expires) {
        remove_entry(c, pp);
        return NULL;
    }
    list_unlink(c, e);
    list_push_front(c, e);
    *vlen = e->vlen;
    return e->data + e->klen;
}

size_t lp_cache_count(const lp_cache *c)
{
    return c->count;
}
