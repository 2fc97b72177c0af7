/* index.c — the policy index: a policy set compiled into bitsets.
 *
 * Every attribute gets, per value a profile can have, the bitset of
 * policies that accept that value (or have no condition on it): one per age
 * 0..150, per household size, per enum code, per special status, per 시도
 * and per 시군구 some policy names. Income is bucketed (prog.h): a bucket's
 * "sure" bitset holds the policies accepting the whole bucket, its "x"
 * bitset those whose bound falls inside it, checked exactly; a monthly-wage
 * cap is an income bound too. Conditions on 중위소득 are rare, so they are
 * always checked exactly.
 * Application end dates are bucketed too (cumulative "ends before" bitsets),
 * so "closed on today" is a bitset with exact checks only in one bucket.
 *
 * The policies are laid out (index positions) grouped by region (nationwide,
 * then per 시도), marked-closed ones last in a group, then by the static
 * part of the score, descending. A profile's region bitset is then zero on
 * whole runs of words, which a query skips after one load; and the words
 * whose best possible score cannot enter a full top K are only counted
 * (popcounts), never scored. Reasons are computed only for the top K. */
#include "match.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "prog.h"

#define AGE_SLOTS (LP_AGE_LIMIT + 2)       /* 0..150, then "older than 150"        */
#define HH_SLOTS  (LP_HOUSEHOLD_LIMIT + 2) /* 1..20, then "more than 20" (0 unused) */
#define MAXV      16                       /* enum codes are 1..MAXV-1             */
#define NSETS     5                        /* employment education major marital housing */
#define NSIDO     100                      /* 시도 codes are two digits           */
#define CHUNK     512                      /* words ranked together (stack buffers) */
#define MEDY      4                        /* 중위소득 table years kept apart           */
#define NPCT      16                       /* 중위소득 share boundaries per table year    */
#define NDATE     64                       /* end-date bucket boundaries          */
#define NO_START  (-1000000000)            /* day numbers of an open-ended period */
#define NO_END    1000000000

static const int set_kinds[NSETS] = {LP_KIND_EMPLOYMENT, LP_KIND_EDUCATION, LP_KIND_MAJOR,
                                     LP_KIND_MARITAL, LP_KIND_HOUSING};

/* Per policy, the few values emit() reads for every surviving candidate:
 * kept apart from lp_policy so the survivor loop stays in cache. */
typedef struct hot {
    int32_t start_day; /* lp__day_number; NO_START = open-ended start */
    int32_t end_day;   /* lp__day_number; NO_END = no end             */
    int16_t static_sc; /* lp__static_score                            */
    uint8_t category;
    uint8_t closed; /* marked closed, or no end date (bit 1)      */
} hot;

typedef struct id_pos {
    uint32_t id, pos;
} id_pos;

struct lp_policy_index {
    atomic_long refs;
    size_t n, nwords;
    uint64_t lastmask;
    size_t bytes;
    lp_policy *pol;  /* copies; regions point into `codes`            */
    uint32_t *codes; /* every policy's normalized, sorted region codes */
    struct hot *hot; /* what ranking a survivor needs, packed          */
    id_pos *ids;     /* sorted by id, for lp_match_index_find          */
    uint64_t *arena; /* every bitset below lives here                  */
    size_t arena_words, arena_used;

    uint64_t *age_ok[AGE_SLOTS], *age_no, *age_has;
    uint64_t *hh_ok[HH_SLOTS], *hh_no, *hh_has;
    uint64_t *inc_sure[LP_INCOME_BINS], *inc_x[LP_INCOME_BINS], *inc_no, *inc_has;
    uint64_t *med_no, *mon_no, *extra_no, *extra_has;
    /* 중위소득 by table year (slot y: year lp_median_year(0) + y) and share:
     * med_ge[y][i] holds the policies of that year with pct ≥ pct_b[y][i],
     * med_in[y][i] those with pct in [pct_b[y][i], pct_b[y][i+1]), the
     * largest of which is pct_max[y][i]; med_exact a year beyond MEDY. */
    int npct[MEDY];
    uint16_t pct_b[MEDY][NPCT], pct_max[MEDY][NPCT];
    uint64_t *med_ge[MEDY][NPCT], *med_in[MEDY][NPCT], *med_exact;
    uint64_t *set_ok[NSETS][MAXV], *set_no[NSETS], *set_has[NSETS];
    uint64_t *sp_req[MAXV], *sp_no, *sp_has;
    uint64_t *cat[MAXV];
    uint64_t *not_closed; /* policies the source does not mark closed */
    uint64_t *region_no, *region_has;
    int ndate;                     /* end-date boundaries, ascending day numbers */
    int32_t date_b[NDATE];         /* end_lt[i]: ends before date_b[i] (i < ndate) */
    uint64_t *end_lt[NDATE + 1];   /* end_lt[ndate]: has an end date at all      */
    int16_t *wmax;                 /* per word, the largest static_sc in it       */
    uint16_t *word_order;          /* per CHUNK of words, offsets by wmax descending */
    uint64_t *sido_p[NSIDO];       /* nationwide or listing the 시도            */
    uint64_t *sido_partial[NSIDO]; /* listing some of its 시군구, not the 시도 */
    uint32_t nsgg;
    uint32_t *sgg_codes; /* sorted 시군구 codes some policy lists            */
    uint64_t **sgg_p;    /* sido_p of its 시도, or listing the 시군구       */
};

static uint64_t *bs_new(lp_match_index *idx)
{
    uint64_t *b = idx->arena + idx->arena_used;
    idx->arena_used += idx->nwords;
    return b;
}

static inline void bs_set(uint64_t *b, size_t pos)
{
    b[pos >> 6] |= (uint64_t)1 << (pos & 63);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_idpos(const void *a, const void *b)
{
    return cmp_u32(a, b);
}

/* Where a policy goes in the index (see the top of the file). */
typedef struct order_key {
    uint32_t group; /* 0 nationwide, else the 시도 of its first region */
    int closed;     /* marked closed: last in its group               */
    uint32_t sgg;   /* 0 시도-wide (or nationwide), else its first 시군구 */
    int static_sc;  /* descending                                     */
    uint32_t id, in;
} order_key;

static int cmp_order(const void *va, const void *vb)
{
    const order_key *a = va, *b = vb;
    if (a->group != b->group) return a->group < b->group ? -1 : 1;
    if (a->closed != b->closed) return a->closed - b->closed;
    if (a->sgg != b->sgg) return a->sgg < b->sgg ? -1 : 1;
    if (a->static_sc != b->static_sc) return b->static_sc - a->static_sc;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Sorts and dedups n codes in place; returns the new count. */
static uint32_t sort_unique(uint32_t *c, uint32_t n)
{
    if (!n) return 0;
    qsort(c, n, sizeof *c, cmp_u32);
    uint32_t m = 1;
    for (uint32_t i = 1; i < n; i++)
        if (c[i] != c[m - 1]) c[m++] = c[i];
    return m;
}

/* The 중위소득 table-year slot of a policy's condition, -1 beyond MEDY. */
static int med_slot(const lp_policy *p)
{
    int y = lp_median_year(p->median_year) - lp_median_year(0);
    return y < MEDY ? y : -1;
}

static int sido_ok(uint32_t s)
{
    return s < NSIDO && lp_region_normalize(s) == s;
}

static void index_free(lp_match_index *idx)
{
    if (!idx) return;
    free(idx->pol);
    free(idx->codes);
    free(idx->hot);
    free(idx->wmax);
    free(idx->word_order);
    free(idx->ids);
    free(idx->arena);
    free(idx->sgg_codes);
    free(idx->sgg_p);
    free(idx);
}

static int find_sgg(const lp_match_index *idx, uint32_t code)
{
    uint32_t lo = 0, hi = idx->nsgg;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (idx->sgg_codes[mid] < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < idx->nsgg && idx->sgg_codes[lo] == code ? (int)lo : -1;
}

static void index_policy(lp_match_index *idx, size_t i)
{
    const lp_policy *p = &idx->pol[i];

    if (p->age_min || p->age_max) {
        bs_set(idx->age_has, i);
        for (int a = p->age_min; a < AGE_SLOTS && (!p->age_max || a <= p->age_max); a++)
            bs_set(idx->age_ok[a], i);
    } else {
        bs_set(idx->age_no, i);
        for (int a = 0; a < AGE_SLOTS; a++)
            bs_set(idx->age_ok[a], i);
    }
    if (p->household_min || p->household_max) {
        bs_set(idx->hh_has, i);
        for (int h = p->household_min ? p->household_min : 1;
             h < HH_SLOTS && (!p->household_max || h <= p->household_max); h++)
            bs_set(idx->hh_ok[h], i);
    } else {
        bs_set(idx->hh_no, i);
        for (int h = 1; h < HH_SLOTS; h++)
            bs_set(idx->hh_ok[h], i);
    }
    bs_set(p->income_min || p->income_max ? idx->inc_has : idx->inc_no, i);
    /* a known income passes the income range and the monthly-wage cap
     * together iff it lies in their intersection: one set of buckets */
    int64_t lo = p->income_min, hi = p->income_max;
    if (p->monthly_max) hi = hi && hi < p->monthly_max * 12 ? hi : p->monthly_max * 12;
    for (int b = 0; b < LP_INCOME_BINS; b++) {
        int c = lo || hi ? lp_income_cover(b, lo, hi) : 2;
        if (c == 2) bs_set(idx->inc_sure[b], i);
        if (c == 1) bs_set(idx->inc_x[b], i);
    }
    if (!p->median_pct) bs_set(idx->med_no, i);
    if (p->median_pct) {
        int y = med_slot(p);
        if (y < 0) {
            bs_set(idx->med_exact, i);
        } else {
            int b = 0;
            while (b + 1 < idx->npct[y] && idx->pct_b[y][b + 1] <= p->median_pct)
                b++;
            for (int q = 0; q <= b; q++)
                bs_set(idx->med_ge[y][q], i);
            bs_set(idx->med_in[y][b], i);
            if (p->median_pct > idx->pct_max[y][b]) idx->pct_max[y][b] = p->median_pct;
        }
    }
    if (!p->monthly_max) bs_set(idx->mon_no, i);
    bs_set(p->extra ? idx->extra_has : idx->extra_no, i);

    const uint32_t sets[NSETS] = {p->employment, p->education, p->major, p->marital, p->housing};
    for (int k = 0; k < NSETS; k++) {
        int n = lp_match_code_count(set_kinds[k]);
        bs_set(sets[k] ? idx->set_has[k] : idx->set_no[k], i);
        for (int v = 1; v <= n; v++)
            if (!sets[k] || lp__set_has(sets[k], (unsigned)v)) bs_set(idx->set_ok[k][v], i);
    }
    if (p->special) {
        bs_set(idx->sp_has, i);
        for (int v = 1; v < MAXV; v++)
            if (lp__set_has(p->special, (unsigned)v)) bs_set(idx->sp_req[v], i);
    } else {
        bs_set(idx->sp_no, i);
    }
    if (p->category) bs_set(idx->cat[p->category], i);
    if (!p->closed) bs_set(idx->not_closed, i);
    if (p->apply_end) {
        for (int d = 0; d <= idx->ndate; d++)
            if (d == idx->ndate || idx->hot[i].end_day < idx->date_b[d]) bs_set(idx->end_lt[d], i);
    }

    if (!p->nregions) {
        bs_set(idx->region_no, i);
        for (uint32_t s = 0; s < NSIDO; s++)
            if (idx->sido_p[s]) bs_set(idx->sido_p[s], i);
        return;
    }
    bs_set(idx->region_has, i);
    for (uint32_t r = 0; r < p->nregions; r++) {
        uint32_t c = p->regions[r];
        if (c < 100) {
            bs_set(idx->sido_p[c], i);
            continue;
        }
        bs_set(idx->sgg_p[find_sgg(idx, c)], i);
        /* regions are sorted, so a listed 시도 (2 digits) comes first */
        int whole = 0;
        for (uint32_t q = 0; q < r; q++)
            if (p->regions[q] == c / 1000) whole = 1;
        if (!whole) bs_set(idx->sido_partial[c / 1000], i);
    }
}

int lp_match_index_build(lp_match_index **out, const lp_policy *policies, size_t n, size_t *bad)
{
    if (!out || (n && !policies)) return LP_EINVAL;
    *out = NULL;
    size_t ncodes = 0;
    for (size_t i = 0; i < n; i++) {
        if (lp_policy_validate(&policies[i]) != 0) {
            if (bad) *bad = i;
            return LP_EINVAL;
        }
        ncodes += policies[i].nregions;
    }
    order_key *keys = NULL;
    lp_match_index *idx = calloc(1, sizeof *idx);
    if (!idx) return LP_ENOMEM;
    atomic_init(&idx->refs, 1);
    idx->n = n;
    idx->nwords = n ? (n + 63) / 64 : 1;
    idx->lastmask = n % 64 ? ((uint64_t)1 << (n % 64)) - 1 : n ? ~(uint64_t)0 : 0;
    idx->pol = malloc((n ? n : 1) * sizeof *idx->pol);
    idx->codes = malloc((ncodes ? ncodes : 1) * sizeof *idx->codes);
    idx->hot = malloc((n ? n : 1) * sizeof *idx->hot);
    idx->ids = malloc((n ? n : 1) * sizeof *idx->ids);
    if (!idx->pol || !idx->codes || !idx->hot || !idx->ids) goto nomem;

    /* copy policies with normalized, sorted, deduplicated regions */
    size_t used = 0;
    lp_policy *tmp = malloc((n ? n : 1) * sizeof *tmp);
    keys = malloc((n ? n : 1) * sizeof *keys);
    if (!tmp || !keys) {
        free(tmp);
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        lp_policy *p = &tmp[i];
        *p = policies[i];
        uint32_t *c = idx->codes + used;
        for (uint32_t r = 0; r < p->nregions; r++)
            c[r] = lp_region_normalize(p->regions[r]);
        p->nregions = sort_unique(c, p->nregions);
        p->regions = p->nregions ? c : NULL;
        used += p->nregions;
        uint32_t first = p->nregions ? p->regions[0] : 0;
        keys[i] = (order_key){first >= 10000 ? first / 1000 : first,
                              p->closed != 0,
                              first >= 10000 ? first : 0,
                              lp__static_score(p),
                              p->id,
                              (uint32_t)i};
    }
    /* the layout: see the top of the file */
    qsort(keys, n, sizeof *keys, cmp_order);
    for (size_t i = 0; i < n; i++) {
        lp_policy *p = &idx->pol[i];
        *p = tmp[keys[i].in];
        idx->hot[i] =
            (hot){p->apply_start ? lp__day_number(p->apply_start) : NO_START,
                  p->apply_end ? lp__day_number(p->apply_end) : NO_END, (int16_t)keys[i].static_sc,
                  p->category, (uint8_t)(p->closed | (p->apply_end ? 0 : 2))};
        idx->ids[i].id = p->id;
        idx->ids[i].pos = (uint32_t)i;
    }
    free(tmp);
    qsort(idx->ids, n, sizeof *idx->ids, cmp_idpos);
    for (size_t i = 1; i < n; i++) {
        if (idx->ids[i].id == idx->ids[i - 1].id) {
            if (bad) *bad = keys[idx->ids[i].pos].in;
            free(keys);
            index_free(idx);
            return LP_EINVAL;
        }
    }
    free(keys);
    keys = NULL;

    /* the 시군구 codes some policy names */
    idx->sgg_codes = malloc((used ? used : 1) * sizeof *idx->sgg_codes);
    if (!idx->sgg_codes) goto nomem;
    for (size_t i = 0; i < used; i++)
        if (idx->codes[i] >= 10000) idx->sgg_codes[idx->nsgg++] = idx->codes[i];
    idx->nsgg = sort_unique(idx->sgg_codes, idx->nsgg);
    idx->sgg_p = malloc((idx->nsgg ? idx->nsgg : 1) * sizeof *idx->sgg_p);
    if (!idx->sgg_p) goto nomem;

    /* end-date boundaries at quantiles of the end dates, so that each
     * bucket holds about as many policies */
    int32_t *ends = malloc((n ? n : 1) * sizeof *ends);
    idx->wmax = malloc(idx->nwords * sizeof *idx->wmax);
    idx->word_order = malloc(idx->nwords * sizeof *idx->word_order);
    if (!ends || !idx->wmax || !idx->word_order) {
        free(ends);
        goto nomem;
    }
    size_t nends = 0;
    for (size_t i = 0; i < n; i++)
        if (idx->pol[i].apply_end) ends[nends++] = idx->hot[i].end_day;
    qsort(ends, nends, sizeof *ends, cmp_i32);
    for (size_t i = 0; nends && i < NDATE; i++) {
        int32_t b = ends[i * nends / NDATE];
        if (!idx->ndate || b > idx->date_b[idx->ndate - 1]) idx->date_b[idx->ndate++] = b;
    }
    /* 중위소득 share boundaries per table year, the same way */
    for (int y = 0; y < MEDY; y++) {
        nends = 0;
        for (size_t i = 0; i < n; i++)
            if (idx->pol[i].median_pct && med_slot(&idx->pol[i]) == y)
                ends[nends++] = idx->pol[i].median_pct;
        qsort(ends, nends, sizeof *ends, cmp_i32);
        for (size_t i = 0; nends && i < NPCT; i++) {
            int32_t b = ends[i * nends / NPCT];
            if (!idx->npct[y] || b > idx->pct_b[y][idx->npct[y] - 1])
                idx->pct_b[y][idx->npct[y]++] = (uint16_t)b;
        }
    }
    free(ends);
    for (size_t w = 0; w < idx->nwords; w++) {
        int16_t m = INT16_MIN;
        for (size_t i = w * 64; i < n && i < w * 64 + 64; i++)
            if (idx->hot[i].static_sc > m) m = idx->hot[i].static_sc;
        idx->wmax[w] = m;
    }
    for (size_t c0 = 0; c0 < idx->nwords; c0 += CHUNK) {
        size_t cn = idx->nwords - c0 < CHUNK ? idx->nwords - c0 : CHUNK;
        uint32_t keyv[CHUNK];
        for (size_t o = 0; o < cn; o++)
            keyv[o] = (uint32_t)(32767 - idx->wmax[c0 + o]) << 16 | (uint32_t)o;
        qsort(keyv, cn, sizeof *keyv, cmp_u32);
        for (size_t o = 0; o < cn; o++)
            idx->word_order[c0 + o] = (uint16_t)(keyv[o] & 0xffff);
    }

    int nsido = 0;
    for (uint32_t s = 0; s < NSIDO; s++)
        nsido += sido_ok(s);
    size_t nbits = AGE_SLOTS + 2 + HH_SLOTS + 2 + 2 * LP_INCOME_BINS + 2 + 4 + NSETS * (MAXV + 2) +
                   MAXV + 2 + MAXV + 3 + 2 * (size_t)nsido + idx->nsgg + (size_t)idx->ndate + 1 + 1;
    for (int y = 0; y < MEDY; y++)
        nbits += 2 * (size_t)idx->npct[y];
    idx->arena_words = nbits * idx->nwords;
    idx->arena = calloc(idx->arena_words, sizeof *idx->arena);
    if (!idx->arena) goto nomem;

    for (int a = 0; a < AGE_SLOTS; a++)
        idx->age_ok[a] = bs_new(idx);
    idx->age_no = bs_new(idx);
    idx->age_has = bs_new(idx);
    for (int h = 0; h < HH_SLOTS; h++)
        idx->hh_ok[h] = bs_new(idx);
    idx->hh_no = bs_new(idx);
    idx->hh_has = bs_new(idx);
    for (int b = 0; b < LP_INCOME_BINS; b++) {
        idx->inc_sure[b] = bs_new(idx);
        idx->inc_x[b] = bs_new(idx);
    }
    idx->inc_no = bs_new(idx);
    idx->inc_has = bs_new(idx);
    idx->med_no = bs_new(idx);
    for (int y = 0; y < MEDY; y++)
        for (int b = 0; b < idx->npct[y]; b++) {
            idx->med_ge[y][b] = bs_new(idx);
            idx->med_in[y][b] = bs_new(idx);
        }
    idx->med_exact = bs_new(idx);
    idx->mon_no = bs_new(idx);
    idx->extra_no = bs_new(idx);
    idx->extra_has = bs_new(idx);
    for (int k = 0; k < NSETS; k++) {
        for (int v = 0; v < MAXV; v++)
            idx->set_ok[k][v] = bs_new(idx);
        idx->set_no[k] = bs_new(idx);
        idx->set_has[k] = bs_new(idx);
    }
    for (int v = 0; v < MAXV; v++)
        idx->sp_req[v] = bs_new(idx);
    idx->sp_no = bs_new(idx);
    idx->sp_has = bs_new(idx);
    for (int v = 0; v < MAXV; v++)
        idx->cat[v] = bs_new(idx);
    idx->not_closed = bs_new(idx);
    for (int d = 0; d <= idx->ndate; d++)
        idx->end_lt[d] = bs_new(idx);
    idx->region_no = bs_new(idx);
    idx->region_has = bs_new(idx);
    for (uint32_t s = 0; s < NSIDO; s++) {
        if (!sido_ok(s)) continue;
        idx->sido_p[s] = bs_new(idx);
        idx->sido_partial[s] = bs_new(idx);
    }
    for (uint32_t g = 0; g < idx->nsgg; g++)
        idx->sgg_p[g] = bs_new(idx);

    for (size_t i = 0; i < n; i++)
        index_policy(idx, i);
    for (uint32_t g = 0; g < idx->nsgg; g++) {
        const uint64_t *s = idx->sido_p[idx->sgg_codes[g] / 1000];
        for (size_t w = 0; w < idx->nwords; w++)
            idx->sgg_p[g][w] |= s[w];
    }

    idx->bytes = sizeof *idx + n * (sizeof *idx->pol + sizeof *idx->hot + sizeof *idx->ids) +
                 idx->nwords * (sizeof *idx->wmax + sizeof *idx->word_order) +
                 used * sizeof *idx->codes + idx->nsgg * (sizeof(uint32_t) + sizeof(uint64_t *)) +
                 idx->arena_words * sizeof(uint64_t);
    *out = idx;
    return 0;

nomem:
    free(keys);
    index_free(idx);
    return LP_ENOMEM;
}

void lp_match_index_retain(lp_match_index *idx)
{
    if (idx) atomic_fetch_add(&idx->refs, 1);
}

void lp_match_index_release(lp_match_index *idx)
{
    if (idx && atomic_fetch_sub(&idx->refs, 1) == 1) index_free(idx);
}

size_t lp_match_index_count(const lp_match_index *idx)
{
    return idx ? idx->n : 0;
}

size_t lp_match_index_memory(const lp_match_index *idx)
{
    return idx ? idx->bytes : 0;
}

const lp_policy *lp_match_index_find(const lp_match_index *idx, uint32_t policy_id)
{
    if (!idx) return NULL;
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (idx->ids[mid].id < policy_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < idx->n && idx->ids[lo].id == policy_id ? &idx->pol[idx->ids[lo].pos] : NULL;
}

/* ---- Matching ---- */

/* A query compiled to lists of operands: for each word w, a policy is a
 * candidate (eligible or possible) when it is in every ANY term, and
 * eligible when it is also in every ELIG term; a term is the OR of its
 * operands. A condition whose field is known is an ANY term (the policies
 * accepting the value, or without the condition); one whose field is
 * unknown is an ELIG term (the policies without the condition) and leaves
 * the candidates alone. Income, 중위소득 and monthly-wage conditions that
 * the bitsets cannot decide (xmask) are checked exactly. */
#define Q_TERMS 24
#define Q_OPS   64

typedef struct qterm {
    uint8_t o0, n;
} qterm;

typedef struct query {
    const uint64_t *ops[Q_OPS];
    int nops, overflow;
    qterm any[Q_TERMS], elig[Q_TERMS], xmask, interest;
    int nany, nelig;
    const uint64_t *medx[MEDY + 1]; /* 중위소득 policies to check exactly */
    int nmedx;
} query;

typedef struct run_ctx {
    const lp_match_index *idx;
    const lp_profile *pr;
    int32_t today; /* day number */
    int64_t income;
    int chk_income, chk_median, chk_monthly;
    lp_match_result *out;
    size_t k, n;
} run_ctx;

static qterm *term_begin(query *g, qterm *list, int *count)
{
    if (*count == Q_TERMS) {
        g->overflow = 1;
        return &list[0];
    }
    qterm *t = &list[(*count)++];
    t->o0 = (uint8_t)g->nops;
    t->n = 0;
    return t;
}

static void term_push(query *g, qterm *t, const uint64_t *bs)
{
    if (!bs) return;
    if (g->nops == Q_OPS) {
        g->overflow = 1;
        return;
    }
    g->ops[g->nops++] = bs;
    t->n++;
}

static void med_unsure(query *g, const uint64_t *bs)
{
    if (g->nmedx < MEDY + 1) g->medx[g->nmedx++] = bs;
}

static void any1(query *g, const uint64_t *bs)
{
    term_push(g, term_begin(g, g->any, &g->nany), bs);
}

static void elig1(query *g, const uint64_t *bs)
{
    term_push(g, term_begin(g, g->elig, &g->nelig), bs);
}

static inline uint64_t term_word(const query *g, qterm t, size_t w)
{
    uint64_t v = 0;
    for (int i = 0; i < t.n; i++)
        v |= g->ops[t.o0 + i][w];
    return v;
}

/* a ranks before b */
static inline int better(const lp_match_result *a, const lp_match_result *b)
{
    return a->score > b->score || (a->score == b->score && a->policy_id < b->policy_id);
}

/* The heap keeps only the head fields; reasons are filled in at the end. */
static inline void swap_head(lp_match_result *a, lp_match_result *b)
{
    lp_match_result t;
    t.policy_id = a->policy_id;
    t.index_pos = a->index_pos;
    t.eligibility = a->eligibility;
    t.score = a->score;
    a->policy_id = b->policy_id;
    a->index_pos = b->index_pos;
    a->eligibility = b->eligibility;
    a->score = b->score;
    b->policy_id = t.policy_id;
    b->index_pos = t.index_pos;
    b->eligibility = t.eligibility;
    b->score = t.score;
}

/* min-heap on "better": the root is the worst kept result */
static void sift_down(lp_match_result *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && better(&h[m], &h[l])) m = l;
        if (r < n && better(&h[m], &h[r])) m = r;
        if (m == i) return;
        swap_head(&h[i], &h[m]);
        i = m;
    }
}

static void sift_up(lp_match_result *h, size_t i)
{
    while (i) {
        size_t parent = (i - 1) / 2;
        if (!better(&h[parent], &h[i])) return;
        swap_head(&h[parent], &h[i]);
        i = parent;
    }
}

static void insert(run_ctx *c, size_t pos, int eligible, int32_t score)
{
    uint32_t id = c->idx->pol[pos].id;
    lp_match_result *r;
    if (c->n < c->k) {
        r = &c->out[c->n];
    } else {
        r = &c->out[0];
        if (score < r->score || (score == r->score && id > r->policy_id)) return;
    }
    r->policy_id = id;
    r->index_pos = (uint32_t)pos;
    r->eligibility = eligible ? LP_ELIGIBLE : LP_POSSIBLE;
    r->score = score;
    if (c->n < c->k)
        sift_up(c->out, c->n++);
    else
        sift_down(c->out, c->n, 0);
}

/* Scores the candidates `m` of word w (e: the eligible ones, iw: those in
 * one of the profile's interests) and offers them to the top K. Written
 * without data-dependent branches (the period and eligibility of
 * neighbouring policies are unrelated, so branches would mispredict); the
 * only branch per candidate is "beats the worst of the top K". The period
 * logic is lp_policy_period / lp__period_bonus. */
static void score_word(run_ctx *c, size_t w, uint64_t m, uint64_t e, uint64_t iw)
{
    const hot *hw = c->idx->hot + w * 64;
    const int32_t today = c->today;
    int32_t floor_score = c->n == c->k ? c->out[0].score : INT32_MIN;
    static const int16_t bonus_of[6] = {60, 30, 10, 5, 0, -300};
    for (; m; m &= m - 1) {
        int b = __builtin_ctzll(m);
        const hot h = hw[b];
        int el = (int)((e >> b) & 1);
        int closed = (h.closed & 1) | (today > h.end_day);
        int upcoming = today < h.start_day;
        int32_t left = h.end_day - today;
        /* class: 0 ≤7 days left, 1 ≤30, 2 later, 3 no end, 4 upcoming, 5 closed */
        int cls = (left > 7) + (left > 30);
        cls = (h.closed & 2) ? 3 : cls;
        cls = upcoming ? 4 : cls;
        cls = closed ? 5 : cls;
        int32_t score = 500 + 500 * el + h.static_sc + bonus_of[cls] + 100 * (int)((iw >> b) & 1);
        if (score >= floor_score) {
            insert(c, w * 64 + (size_t)b, el, score);
            if (c->n == c->k) floor_score = c->out[0].score;
        }
    }
}

/* 1 when a known income fails one of the policy's income conditions the
 * bitsets could not decide (the same tests as lp_match_eval). */
static int income_fails(const run_ctx *c, size_t pos)
{
    const lp_policy *p = &c->idx->pol[pos];
    int64_t v = c->income;
    int fail = 0;
    if (c->chk_income && (p->income_min || p->income_max))
        fail |= (p->income_min && v < p->income_min) || (p->income_max && v > p->income_max);
    if (c->chk_median && p->median_pct)
        fail |= v * 100 > lp_median_income(p->median_year, c->pr->household) * p->median_pct * 12;
    if (c->chk_monthly && p->monthly_max) fail |= v > p->monthly_max * 12;
    return fail;
}

static void compile(const lp_match_index *idx, const lp_match_query *q, query *g, run_ctx *c)
{
    const lp_profile *pr = q->profile;
    g->nops = g->overflow = g->nany = g->nelig = g->nmedx = 0;
    qterm *t;

    /* region first: it removes most policies for most profiles, and the
     * layout makes it zero on whole runs of words */
    uint32_t region = pr->region ? lp_region_normalize(pr->region) : 0;
    if (!region) {
        elig1(g, idx->region_no);
    } else if (region < 100) {
        t = term_begin(g, g->any, &g->nany);
        term_push(g, t, idx->sido_p[region]);
        term_push(g, t, idx->sido_partial[region]);
        elig1(g, idx->sido_p[region]);
    } else {
        int gi = find_sgg(idx, region);
        any1(g, gi >= 0 ? idx->sgg_p[gi] : idx->sido_p[region / 1000]);
    }

    int age = lp_age_on(pr->birth, q->today);
    if (age >= 0)
        any1(g, idx->age_ok[age > LP_AGE_LIMIT ? LP_AGE_LIMIT + 1 : age]);
    else
        elig1(g, idx->age_no);

    const uint8_t vals[NSETS] = {pr->employment, pr->education, pr->major, pr->marital,
                                 pr->housing};
    for (int k = 0; k < NSETS; k++) {
        int v = vals[k];
        if (v)
            any1(g, v < MAXV && v <= lp_match_code_count(set_kinds[k]) ? idx->set_ok[k][v]
                                                                       : idx->set_no[k]);
        else
            elig1(g, idx->set_no[k]);
    }

    if (pr->special_known) {
        t = term_begin(g, g->any, &g->nany);
        term_push(g, t, idx->sp_no);
        for (int v = 1; v < MAXV; v++)
            if (lp__set_has(pr->special, (unsigned)v)) term_push(g, t, idx->sp_req[v]);
    } else {
        elig1(g, idx->sp_no);
    }

    int h = pr->household;
    if (h)
        any1(g, idx->hh_ok[h > LP_HOUSEHOLD_LIMIT ? LP_HOUSEHOLD_LIMIT + 1 : h]);
    else
        elig1(g, idx->hh_no);

    /* income: a bucket's sure policies, plus its x ones checked exactly;
     * 중위소득 and monthly-wage conditions are always checked exactly */
    int has_income = pr->income >= 0;
    if (has_income) {
        int b = lp_income_bin(pr->income);
        t = term_begin(g, g->any, &g->nany);
        term_push(g, t, idx->inc_sure[b]);
        term_push(g, t, idx->inc_x[b]);
    } else {
        elig1(g, idx->inc_no);
    }
    if (has_income && h) {
        /* share of 중위소득 needed: pct ≥ ceil(100 v / 12 m) for each table year */
        int64_t v = pr->income > LP_INCOME_LIMIT ? LP_INCOME_LIMIT : pr->income;
        t = term_begin(g, g->any, &g->nany);
        term_push(g, t, idx->med_no);
        term_push(g, t, idx->med_exact);
        med_unsure(g, idx->med_exact);
        for (int y = 0; y < MEDY; y++) {
            if (!idx->npct[y]) continue;
            int64_t m12 = lp_median_income(lp_median_year(0) + y, h) * 12;
            int64_t need = (100 * v + m12 - 1) / m12;
            int b = 0;
            while (b < idx->npct[y] && idx->pct_b[y][b] < need)
                b++;
            if (b < idx->npct[y]) term_push(g, t, idx->med_ge[y][b]);
            if (b && idx->pct_max[y][b - 1] >= need) {
                term_push(g, t, idx->med_in[y][b - 1]);
                med_unsure(g, idx->med_in[y][b - 1]);
            }
        }
    } else {
        elig1(g, idx->med_no);
    }
    if (!has_income) elig1(g, idx->mon_no);
    elig1(g, idx->extra_no);

    if (q->categories) {
        t = term_begin(g, g->any, &g->nany);
        for (int cat = 1; cat < MAXV; cat++)
            if (lp__set_has(q->categories, (unsigned)cat)) term_push(g, t, idx->cat[cat]);
    }

    g->xmask.o0 = (uint8_t)g->nops;
    g->xmask.n = 0;
    if (has_income) {
        term_push(g, &g->xmask, idx->inc_x[lp_income_bin(pr->income)]);
        for (int i = 0; i < g->nmedx; i++)
            term_push(g, &g->xmask, g->medx[i]);
    }
    g->interest.o0 = (uint8_t)g->nops;
    g->interest.n = 0;
    for (int cat = 1; cat < MAXV; cat++)
        if (lp__set_has(pr->interests, (unsigned)cat)) term_push(g, &g->interest, idx->cat[cat]);

    c->income = pr->income > LP_INCOME_LIMIT ? LP_INCOME_LIMIT : pr->income;
    c->chk_income = c->chk_monthly = has_income;
    c->chk_median = has_income && h;
}

int lp_match_run(const lp_match_index *idx, const lp_match_query *q, lp_match_result *out, size_t k,
                 lp_match_stats *stats)
{
    if (!idx || !q || !q->profile || !lp_date_valid(q->today) || (k && !out)) return LP_EINVAL;
    lp_match_stats dummy;
    lp_match_stats *st = stats ? stats : &dummy;
    st->eligible = st->possible = 0;
    if (!idx->n) return 0;

    query g;
    run_ctx c = {
        .idx = idx, .pr = q->profile, .today = lp__day_number(q->today), .out = out, .k = k};
    compile(idx, q, &g, &c);
    if (g.overflow) return LP_EINVAL;

    /* closed on today: marked closed, or ends before today. Ends before the
     * boundary at or below today are sure; those in today's bucket are
     * checked exactly. Only needed when closed policies are left out. */
    const int skip_closed = (q->flags & LP_MATCH_SKIP_CLOSED) != 0;
    const int want_possible = (q->flags & LP_MATCH_POSSIBLE) != 0;
    int j = 0;
    while (j < idx->ndate && idx->date_b[j] <= c.today)
        j++;
    const uint64_t *closed_sure = j ? idx->end_lt[j - 1] : NULL;
    const uint64_t *closed_maybe = idx->end_lt[j];

    /* Per chunk of words: first the candidates and counts of every word
     * (bitsets and popcounts), then ranking, best classes first (eligible
     * before possible, of interest before not, ending soon before not),
     * each over the chunk's words by descending static score: once the top
     * K is full and a word's best score cannot beat its worst, neither can
     * any later word's in that class. */
    /* best score per class, less the static part: eligible 1000 / possible
     * 500, +100 of interest, +60 ending within 30 days (or +10 otherwise) */
    static const int32_t class_best[8] = {1160, 1110, 1060, 1010, 660, 610, 560, 510};
    int jn = j;
    while (jn < idx->ndate && idx->date_b[jn] <= c.today + 30)
        jn++;
    const uint64_t *near = idx->end_lt[jn]; /* every policy ending within 30 days, and some more */
    uint64_t bm[CHUNK], be[CHUNK];
    size_t ne = 0, np = 0;
    for (size_t c0 = 0; c0 < idx->nwords; c0 += CHUNK) {
        size_t cn = idx->nwords - c0 < CHUNK ? idx->nwords - c0 : CHUNK;
        for (size_t o = 0; o < cn; o++) {
            size_t w = c0 + o;
            uint64_t m = w + 1 == idx->nwords ? idx->lastmask : ~(uint64_t)0;
            if (skip_closed) m &= idx->not_closed[w];
            for (int i = 0; i < g.nany && m; i++)
                m &= term_word(&g, g.any[i], w);
            bm[o] = be[o] = 0;
            if (!m) continue;
            if (skip_closed) {
                if (closed_sure) m &= ~closed_sure[w];
                for (uint64_t x = m & closed_maybe[w]; x; x &= x - 1) {
                    int b = __builtin_ctzll(x);
                    if (idx->hot[w * 64 + (size_t)b].end_day < c.today) m &= ~((uint64_t)1 << b);
                }
            }
            for (uint64_t x = m & term_word(&g, g.xmask, w); x; x &= x - 1) {
                int b = __builtin_ctzll(x);
                if (income_fails(&c, w * 64 + (size_t)b)) m &= ~((uint64_t)1 << b);
            }
            uint64_t e = m;
            for (int i = 0; i < g.nelig && e; i++)
                e &= term_word(&g, g.elig[i], w);
            ne += (size_t)__builtin_popcountll(e);
            np += (size_t)__builtin_popcountll(m & ~e);
            bm[o] = m;
            be[o] = e;
        }
        if (!k) continue;
        const uint16_t *order = idx->word_order + c0;
        for (int cls = 0; cls < (want_possible ? 8 : 4); cls++) {
            for (size_t i = 0; i < cn; i++) {
                size_t o = order[i], w = c0 + o;
                if (c.n == k && class_best[cls] + idx->wmax[w] < c.out[0].score) break;
                uint64_t m = cls < 4 ? be[o] : bm[o] & ~be[o];
                if (!m) continue;
                uint64_t iw = term_word(&g, g.interest, w);
                m &= cls & 2 ? ~iw : iw;
                m &= cls & 1 ? ~near[w] : near[w];
                if (m) score_word(&c, w, m, be[o], iw);
            }
        }
    }
    st->eligible = ne;
    st->possible = np;

    /* heap → best first: move the worst to the end repeatedly */
    for (size_t n = c.n; n > 1; n--) {
        swap_head(&out[0], &out[n - 1]);
        sift_down(out, n - 1, 0);
    }
    for (size_t i = 0; i < c.n; i++) {
        uint32_t pos = out[i].index_pos;
        lp_match_eval(&idx->pol[pos], q->profile, q->today, &out[i]);
        out[i].index_pos = pos;
    }
    return (int)c.n;
}

/* ---- The slot ---- */

void lp_match_slot_init(lp_match_slot *slot)
{
    atomic_init(&slot->current, NULL);
    atomic_init(&slot->entering, 0);
}

lp_match_index *lp_match_slot_acquire(lp_match_slot *slot)
{
    /* `entering` tells a swapper that someone may hold the old pointer
     * without a reference yet; it waits for that window to close. */
    atomic_fetch_add(&slot->entering, 1);
    lp_match_index *idx = atomic_load(&slot->current);
    if (idx) atomic_fetch_add(&idx->refs, 1);
    atomic_fetch_sub(&slot->entering, 1);
    return idx;
}

void lp_match_slot_swap(lp_match_slot *slot, lp_match_index *idx)
{
    lp_match_index *old = atomic_exchange(&slot->current, idx);
    while (atomic_load(&slot->entering))
        sched_yield();
    lp_match_index_release(old);
}

void lp_match_slot_destroy(lp_match_slot *slot)
{
    lp_match_slot_swap(slot, NULL);
}
