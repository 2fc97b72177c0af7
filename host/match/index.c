/* index.c — the policy index: a policy set compiled into bitsets.
 *
 * Every attribute gets, per value a profile can have, the bitset of
 * policies that accept that value (or have no condition on it): one per age
 * 0..150, per household size, per enum code, per special status, per 시도
 * and per 시군구 some policy names. Income is bucketed (prog.h): a bucket's
 * "sure" bitset holds the policies accepting the whole bucket, its "x"
 * bitset those whose bound falls inside it, checked exactly. Conditions on
 * 중위소득 and monthly wage are rare, so they are always checked exactly.
 * A query therefore reads one bitset per attribute (a few for special
 * statuses), and reasons are computed only for the top K. */
#include "match.h"

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

enum { K_INCOME = 1, K_MEDIAN, K_MONTHLY };

static const int set_kinds[NSETS] = {LP_KIND_EMPLOYMENT, LP_KIND_EDUCATION, LP_KIND_MAJOR,
                                     LP_KIND_MARITAL, LP_KIND_HOUSING};

/* Per policy, the few values emit() reads for every surviving candidate:
 * kept apart from lp_policy so the survivor loop stays in cache. */
typedef struct hot {
    int16_t start_day; /* days since 2000-01-01; INT16_MIN = open-ended start */
    int16_t end_day;   /* days since 2000-01-01; INT16_MAX = no end          */
    int16_t static_sc; /* lp__static_score                                   */
    uint8_t category;
    uint8_t closed; /* marked closed, or no end date (bit 1)             */
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
    uint64_t *med_no, *med_has, *mon_no, *mon_has, *extra_no, *extra_has;
    uint64_t *set_ok[NSETS][MAXV], *set_no[NSETS], *set_has[NSETS];
    uint64_t *sp_req[MAXV], *sp_no, *sp_has;
    uint64_t *cat[MAXV];
    uint64_t *not_closed; /* policies the source does not mark closed */
    uint64_t *region_no, *region_has;
    uint64_t *sido_p[NSIDO];       /* nationwide or listing the 시도            */
    uint64_t *sido_partial[NSIDO]; /* listing some of its 시군구, not the 시도 */
    uint32_t nsgg;
    uint32_t *sgg_codes; /* sorted 시군구 codes some policy lists            */
    uint64_t **sgg_p;    /* sido_p of its 시도, or listing the 시군구       */
};

/* Dates as 16-bit day numbers from 2000-01-01, clamped (validated dates
 * lie in 1900..2200; bounds outside 1911..2089 compare the same way). */
static int16_t day16(int32_t ymd)
{
    int32_t d = lp__day_number(ymd) - 10957;
    return (int16_t)(d < -32000 ? -32000 : d > 32000 ? 32000 : d);
}

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

static int cmp_idpos(const void *a, const void *b)
{
    return cmp_u32(a, b);
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
    if (p->income_min || p->income_max) {
        bs_set(idx->inc_has, i);
        for (int b = 0; b < LP_INCOME_BINS; b++) {
            int c = lp_income_cover(b, p->income_min, p->income_max);
            if (c == 2) bs_set(idx->inc_sure[b], i);
            if (c == 1) bs_set(idx->inc_x[b], i);
        }
    } else {
        bs_set(idx->inc_no, i);
        for (int b = 0; b < LP_INCOME_BINS; b++)
            bs_set(idx->inc_sure[b], i);
    }
    bs_set(p->median_pct ? idx->med_has : idx->med_no, i);
    bs_set(p->monthly_max ? idx->mon_has : idx->mon_no, i);
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
    for (size_t i = 0; i < n; i++) {
        lp_policy *p = &idx->pol[i];
        *p = policies[i];
        uint32_t *c = idx->codes + used;
        for (uint32_t r = 0; r < p->nregions; r++)
            c[r] = lp_region_normalize(p->regions[r]);
        p->nregions = sort_unique(c, p->nregions);
        p->regions = p->nregions ? c : NULL;
        used += p->nregions;
        idx->hot[i] =
            (hot){p->apply_start ? day16(p->apply_start) : INT16_MIN,
                  p->apply_end ? day16(p->apply_end) : INT16_MAX, (int16_t)lp__static_score(p),
                  p->category, (uint8_t)(p->closed | (p->apply_end ? 0 : 2))};
        idx->ids[i].id = p->id;
        idx->ids[i].pos = (uint32_t)i;
    }
    qsort(idx->ids, n, sizeof *idx->ids, cmp_idpos);
    for (size_t i = 1; i < n; i++) {
        if (idx->ids[i].id == idx->ids[i - 1].id) {
            if (bad) *bad = idx->ids[i].pos;
            index_free(idx);
            return LP_EINVAL;
        }
    }

    /* the 시군구 codes some policy names */
    idx->sgg_codes = malloc((used ? used : 1) * sizeof *idx->sgg_codes);
    if (!idx->sgg_codes) goto nomem;
    for (size_t i = 0; i < used; i++)
        if (idx->codes[i] >= 10000) idx->sgg_codes[idx->nsgg++] = idx->codes[i];
    idx->nsgg = sort_unique(idx->sgg_codes, idx->nsgg);
    idx->sgg_p = malloc((idx->nsgg ? idx->nsgg : 1) * sizeof *idx->sgg_p);
    if (!idx->sgg_p) goto nomem;

    int nsido = 0;
    for (uint32_t s = 0; s < NSIDO; s++)
        nsido += sido_ok(s);
    size_t nbits = AGE_SLOTS + 2 + HH_SLOTS + 2 + 2 * LP_INCOME_BINS + 2 + 6 + NSETS * (MAXV + 2) +
                   MAXV + 2 + MAXV + 3 + 2 * (size_t)nsido + idx->nsgg;
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
    idx->med_has = bs_new(idx);
    idx->mon_no = bs_new(idx);
    idx->mon_has = bs_new(idx);
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
                 used * sizeof *idx->codes + idx->nsgg * (sizeof(uint32_t) + sizeof(uint64_t *)) +
                 idx->arena_words * sizeof(uint64_t);
    *out = idx;
    return 0;

nomem:
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

typedef struct run_ctx {
    const lp_match_index *idx;
    const lp_match_query *q;
    const lp_profile *pr;
    int32_t today16;                /* day16(today) */
    const uint64_t *interest[MAXV]; /* cat bitsets of the profile's interests */
    int ninterest;
    lp_match_result *out;
    size_t k, n;
    lp_match_stats *st;
} run_ctx;

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

/* The survivors of one word: count them, rank them. Written without
 * data-dependent branches (the period and eligibility of neighbouring
 * policies are unrelated, so branches would mispredict); the only branch
 * taken per survivor is "beats the worst of the top K", rare once the heap
 * has filled. The period logic is lp_policy_period / lp__period_bonus. */
static void emit(void *vctx, size_t w, uint64_t any, uint64_t elig)
{
    run_ctx *c = vctx;
    const hot *hw = c->idx->hot + w * 64;
    const int32_t today = c->today16;
    const int skip_closed = (c->q->flags & LP_MATCH_SKIP_CLOSED) != 0;
    const int want_possible = (c->q->flags & LP_MATCH_POSSIBLE) != 0;
    uint64_t interest = 0;
    for (int i = 0; i < c->ninterest; i++)
        interest |= c->interest[i][w];
    size_t ne = 0, np = 0;
    /* nothing below the worst kept result can enter a full heap */
    int32_t floor_score = c->n == c->k ? (c->k ? c->out[0].score : INT32_MAX) : INT32_MIN;
    static const int16_t bonus_of[6] = {60, 30, 10, 5, 0, -300};
    for (uint64_t m = any; m; m &= m - 1) {
        int b = __builtin_ctzll(m);
        const hot h = hw[b];
        int e = (int)((elig >> b) & 1);
        int closed = (h.closed & 1) | (today > h.end_day);
        int upcoming = today < h.start_day;
        int32_t left = h.end_day - today;
        /* class: 0 ≤7 days left, 1 ≤30, 2 later, 3 no end, 4 upcoming, 5 closed */
        int cls = (left > 7) + (left > 30);
        cls = (h.closed & 2) ? 3 : cls;
        cls = upcoming ? 4 : cls;
        cls = closed ? 5 : cls;
        int bonus = bonus_of[cls];
        int keep = !(closed & skip_closed);
        ne += (size_t)(keep & e);
        np += (size_t)(keep & !e);
        int32_t score = 500 + 500 * e + h.static_sc + bonus + 100 * (int)((interest >> b) & 1);
        if (keep & (e | want_possible) & (score >= floor_score)) {
            insert(c, w * 64 + (size_t)b, e, score);
            if (c->n == c->k) floor_score = c->out[0].score;
        }
    }
    c->st->eligible += ne;
    c->st->possible += np;
}

static int exact(void *vctx, int kind, size_t pos)
{
    const run_ctx *c = vctx;
    const lp_policy *p = &c->idx->pol[pos];
    int64_t v = c->pr->income > LP_INCOME_LIMIT ? LP_INCOME_LIMIT : c->pr->income;
    int ok;
    switch (kind) {
    case K_INCOME:
        ok = (!p->income_min || v >= p->income_min) && (!p->income_max || v <= p->income_max);
        break;
    case K_MEDIAN:
        ok = v * 100 <= lp_median_income(p->median_year, c->pr->household) * p->median_pct * 12;
        break;
    default: /* K_MONTHLY */
        ok = v <= p->monthly_max * 12;
        break;
    }
    return ok ? LP_MET : LP_FAILED;
}

/* One attribute whose condition needs a single profile field: known →
 * `known` (one bitset), unknown → P = no condition, U = has one. */
static void attr_simple(lp_prog *g, int known, const uint64_t *ok, const uint64_t *no,
                        const uint64_t *has)
{
    lp_prog_attr *a = lp_prog_attr_begin(g, 0);
    if (known) {
        lp_prog_push(g, a, LP_P, ok);
    } else {
        lp_prog_push(g, a, LP_P, no);
        lp_prog_push(g, a, LP_U, has);
    }
}

static void compile(const lp_match_index *idx, const lp_match_query *q, lp_prog *g)
{
    const lp_profile *pr = q->profile;
    lp_prog_init(g);
    lp_prog_attr *a;

    /* region first: it removes most policies for most profiles */
    uint32_t region = pr->region ? lp_region_normalize(pr->region) : 0;
    a = lp_prog_attr_begin(g, 0);
    if (!region) {
        lp_prog_push(g, a, LP_P, idx->region_no);
        lp_prog_push(g, a, LP_U, idx->region_has);
    } else if (region < 100) {
        lp_prog_push(g, a, LP_P, idx->sido_p[region]);
        lp_prog_push(g, a, LP_U, idx->sido_partial[region]);
    } else {
        int gi = find_sgg(idx, region);
        lp_prog_push(g, a, LP_P, gi >= 0 ? idx->sgg_p[gi] : idx->sido_p[region / 1000]);
    }

    int age = lp_age_on(pr->birth, q->today);
    attr_simple(g, age >= 0,
                idx->age_ok[age > LP_AGE_LIMIT ? LP_AGE_LIMIT + 1
                            : age < 0          ? 0
                                               : age],
                idx->age_no, idx->age_has);

    const uint8_t vals[NSETS] = {pr->employment, pr->education, pr->major, pr->marital,
                                 pr->housing};
    for (int k = 0; k < NSETS; k++) {
        int v = vals[k];
        const uint64_t *ok =
            v < MAXV && v <= lp_match_code_count(set_kinds[k]) ? idx->set_ok[k][v] : idx->set_no[k];
        attr_simple(g, v != 0, ok, idx->set_no[k], idx->set_has[k]);
    }

    a = lp_prog_attr_begin(g, 0);
    lp_prog_push(g, a, LP_P, idx->sp_no);
    if (pr->special_known) {
        for (int v = 1; v < MAXV; v++)
            if (lp__set_has(pr->special, (unsigned)v)) lp_prog_push(g, a, LP_P, idx->sp_req[v]);
    } else {
        lp_prog_push(g, a, LP_U, idx->sp_has);
    }

    int h = pr->household;
    attr_simple(g, h != 0, idx->hh_ok[h > LP_HOUSEHOLD_LIMIT ? LP_HOUSEHOLD_LIMIT + 1 : h],
                idx->hh_no, idx->hh_has);

    int has_income = pr->income >= 0;
    if (has_income) {
        int b = lp_income_bin(pr->income);
        a = lp_prog_attr_begin(g, K_INCOME);
        lp_prog_push(g, a, LP_P, idx->inc_sure[b]);
        lp_prog_push(g, a, LP_X, idx->inc_x[b]);
    } else {
        attr_simple(g, 0, NULL, idx->inc_no, idx->inc_has);
    }
    a = lp_prog_attr_begin(g, K_MEDIAN);
    lp_prog_push(g, a, LP_P, idx->med_no);
    lp_prog_push(g, a, has_income && h ? LP_X : LP_U, idx->med_has);
    a = lp_prog_attr_begin(g, K_MONTHLY);
    lp_prog_push(g, a, LP_P, idx->mon_no);
    lp_prog_push(g, a, has_income ? LP_X : LP_U, idx->mon_has);

    attr_simple(g, 0, NULL, idx->extra_no, idx->extra_has);
}

int lp_match_run(const lp_match_index *idx, const lp_match_query *q, lp_match_result *out, size_t k,
                 lp_match_stats *stats)
{
    if (!idx || !q || !q->profile || !lp_date_valid(q->today) || (k && !out)) return LP_EINVAL;
    lp_match_stats dummy;
    lp_match_stats *st = stats ? stats : &dummy;
    st->eligible = st->possible = 0;
    if (!idx->n) return 0;

    lp_prog g;
    compile(idx, q, &g);
    if (g.overflow) return LP_EINVAL;

    /* a category filter is one more attribute with only a P list */
    if (q->categories) {
        lp_prog_attr *a = lp_prog_attr_begin(&g, 0);
        for (int c = 1; c < MAXV; c++)
            if (lp__set_has(q->categories, (unsigned)c)) lp_prog_push(&g, a, LP_P, idx->cat[c]);
    }

    run_ctx c = {.idx = idx,
                 .q = q,
                 .pr = q->profile,
                 .today16 = day16(q->today),
                 .out = out,
                 .k = k,
                 .st = st};
    for (int cat = 1; cat < MAXV; cat++)
        if (lp__set_has(q->profile->interests, (unsigned)cat))
            c.interest[c.ninterest++] = idx->cat[cat];
    /* most policies are closed at any time: drop the marked ones up front */
    const uint64_t *filter = (q->flags & LP_MATCH_SKIP_CLOSED) ? idx->not_closed : NULL;
    lp_prog_run(&g, idx->nwords, idx->lastmask, filter, exact, emit, &c);

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
