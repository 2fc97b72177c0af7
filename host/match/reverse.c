/* reverse.c — the profile index: one policy against many profiles.
 *
 * The mirror image of index.c: bitsets over profiles, one per value a
 * profile field can take (birth year and decade, income bucket, household
 * size, enum code, special status, 시도 at each precision) plus one per
 * field for "unknown". A policy's conditions become ORs of those bitsets;
 * bounds that cut through a birth year or an income bucket, 중위소득 shares
 * and 시군구 lists are checked exactly on the profiles that survive. */
#include "match.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "prog.h"

#define HH_SLOTS (LP_HOUSEHOLD_LIMIT + 2)
#define MAXV     16
#define NSETS    5
#define NSIDO    100

enum { R_AGE = 1, R_INCOME, R_MONTHLY, R_MEDIAN, R_REGION };

typedef struct prec {
    int64_t income; /* capped at LP_INCOME_LIMIT, -1 unknown */
    uint32_t id;
    int32_t birth;   /* 0 unknown                             */
    uint32_t region; /* normalized, 0 unknown                 */
    uint8_t household;
} prec;

struct lp_profile_index {
    atomic_long refs;
    size_t n, nwords;
    uint64_t lastmask;
    size_t bytes;
    prec *recs;
    uint64_t *arena;
    size_t arena_words, arena_used;

    uint64_t *all;
    int ymin, ymax;    /* birth years present; ymin > ymax when none */
    uint64_t **year;   /* [y - ymin]        */
    uint64_t **decade; /* [y / 10 - ymin / 10] */
    uint64_t *birth_unk;
    uint64_t *inc_bin[LP_INCOME_BINS], *inc_unk, *inchh_known, *inchh_unk;
    uint64_t *hh[HH_SLOTS], *hh_unk;
    uint64_t *set_v[NSETS][MAXV], *set_unk[NSETS];
    uint64_t *sp[MAXV], *sp_unk;
    uint64_t *region_unk;
    uint64_t *sido_any[NSIDO], *sido2[NSIDO], *sido5[NSIDO];
};

static inline void bs_set(uint64_t *b, size_t pos)
{
    b[pos >> 6] |= (uint64_t)1 << (pos & 63);
}

static uint64_t *bs_new(lp_profile_index *idx)
{
    uint64_t *b = idx->arena + idx->arena_used;
    idx->arena_used += idx->nwords;
    return b;
}

static void pindex_free(lp_profile_index *idx)
{
    if (!idx) return;
    free(idx->recs);
    free(idx->arena);
    free(idx->year);
    free(idx->decade);
    free(idx);
}

static int sido_ok(uint32_t s)
{
    return s < NSIDO && lp_region_normalize(s) == s;
}

int lp_profile_index_build(lp_profile_index **out, const lp_profile *profiles, size_t n,
                           size_t *bad)
{
    if (!out || (n && !profiles)) return LP_EINVAL;
    *out = NULL;
    int ymin = INT_MAX, ymax = INT_MIN;
    for (size_t i = 0; i < n; i++) {
        int32_t b = profiles[i].birth;
        if (b && !lp_date_valid(b)) {
            if (bad) *bad = i;
            return LP_EINVAL;
        }
        if (b) {
            if (b / 10000 < ymin) ymin = b / 10000;
            if (b / 10000 > ymax) ymax = b / 10000;
        }
    }
    lp_profile_index *idx = calloc(1, sizeof *idx);
    if (!idx) return LP_ENOMEM;
    atomic_init(&idx->refs, 1);
    idx->n = n;
    idx->nwords = n ? (n + 63) / 64 : 1;
    idx->lastmask = n % 64 ? ((uint64_t)1 << (n % 64)) - 1 : n ? ~(uint64_t)0 : 0;
    idx->ymin = ymin;
    idx->ymax = ymax;
    size_t nyears = ymin <= ymax ? (size_t)(ymax - ymin + 1) : 0;
    size_t ndecades = ymin <= ymax ? (size_t)(ymax / 10 - ymin / 10 + 1) : 0;
    idx->recs = malloc((n ? n : 1) * sizeof *idx->recs);
    idx->year = malloc((nyears ? nyears : 1) * sizeof *idx->year);
    idx->decade = malloc((ndecades ? ndecades : 1) * sizeof *idx->decade);
    int nsido = 0;
    for (uint32_t s = 0; s < NSIDO; s++)
        nsido += sido_ok(s);
    size_t nbits = 1 + nyears + ndecades + 1 + LP_INCOME_BINS + 3 + HH_SLOTS + 1 +
                   NSETS * (MAXV + 1) + MAXV + 1 + 1 + 3 * (size_t)nsido;
    idx->arena_words = nbits * idx->nwords;
    idx->arena = calloc(idx->arena_words, sizeof *idx->arena);
    if (!idx->recs || !idx->year || !idx->decade || !idx->arena) {
        pindex_free(idx);
        return LP_ENOMEM;
    }
    idx->all = bs_new(idx);
    for (size_t y = 0; y < nyears; y++)
        idx->year[y] = bs_new(idx);
    for (size_t d = 0; d < ndecades; d++)
        idx->decade[d] = bs_new(idx);
    idx->birth_unk = bs_new(idx);
    for (int b = 0; b < LP_INCOME_BINS; b++)
        idx->inc_bin[b] = bs_new(idx);
    idx->inc_unk = bs_new(idx);
    idx->inchh_known = bs_new(idx);
    idx->inchh_unk = bs_new(idx);
    for (int h = 0; h < HH_SLOTS; h++)
        idx->hh[h] = bs_new(idx);
    idx->hh_unk = bs_new(idx);
    for (int k = 0; k < NSETS; k++) {
        for (int v = 0; v < MAXV; v++)
            idx->set_v[k][v] = bs_new(idx);
        idx->set_unk[k] = bs_new(idx);
    }
    for (int v = 0; v < MAXV; v++)
        idx->sp[v] = bs_new(idx);
    idx->sp_unk = bs_new(idx);
    idx->region_unk = bs_new(idx);
    for (uint32_t s = 0; s < NSIDO; s++) {
        if (!sido_ok(s)) continue;
        idx->sido_any[s] = bs_new(idx);
        idx->sido2[s] = bs_new(idx);
        idx->sido5[s] = bs_new(idx);
    }

    for (size_t i = 0; i < n; i++) {
        const lp_profile *pr = &profiles[i];
        prec *r = &idx->recs[i];
        r->id = pr->id;
        r->birth = pr->birth;
        r->income = pr->income < 0                 ? -1
                    : pr->income > LP_INCOME_LIMIT ? LP_INCOME_LIMIT
                                                   : pr->income;
        r->household = pr->household;
        r->region = pr->region ? lp_region_normalize(pr->region) : 0;
        bs_set(idx->all, i);
        if (pr->birth) {
            int y = pr->birth / 10000;
            bs_set(idx->year[y - ymin], i);
            bs_set(idx->decade[y / 10 - ymin / 10], i);
        } else {
            bs_set(idx->birth_unk, i);
        }
        if (r->income >= 0)
            bs_set(idx->inc_bin[lp_income_bin(r->income)], i);
        else
            bs_set(idx->inc_unk, i);
        bs_set(r->income >= 0 && r->household ? idx->inchh_known : idx->inchh_unk, i);
        if (r->household)
            bs_set(idx->hh[r->household > LP_HOUSEHOLD_LIMIT ? HH_SLOTS - 1 : r->household], i);
        else
            bs_set(idx->hh_unk, i);
        const uint8_t vals[NSETS] = {pr->employment, pr->education, pr->major, pr->marital,
                                     pr->housing};
        for (int k = 0; k < NSETS; k++) {
            if (!vals[k])
                bs_set(idx->set_unk[k], i);
            else if (vals[k] < MAXV)
                bs_set(idx->set_v[k][vals[k]], i);
            /* codes beyond MAXV are in no policy's set: they match nothing */
        }
        if (pr->special_known) {
            for (int v = 1; v < MAXV; v++)
                if (lp__set_has(pr->special, (unsigned)v)) bs_set(idx->sp[v], i);
        } else {
            bs_set(idx->sp_unk, i);
        }
        if (!r->region) {
            bs_set(idx->region_unk, i);
        } else {
            uint32_t s = r->region >= 10000 ? r->region / 1000 : r->region;
            bs_set(idx->sido_any[s], i);
            bs_set(r->region >= 10000 ? idx->sido5[s] : idx->sido2[s], i);
        }
    }
    idx->bytes = sizeof *idx + n * sizeof *idx->recs + (nyears + ndecades) * sizeof(uint64_t *) +
                 idx->arena_words * sizeof(uint64_t);
    *out = idx;
    return 0;
}

void lp_profile_index_retain(lp_profile_index *idx)
{
    if (idx) atomic_fetch_add(&idx->refs, 1);
}

void lp_profile_index_release(lp_profile_index *idx)
{
    if (idx && atomic_fetch_sub(&idx->refs, 1) == 1) pindex_free(idx);
}

size_t lp_profile_index_count(const lp_profile_index *idx)
{
    return idx ? idx->n : 0;
}

size_t lp_profile_index_memory(const lp_profile_index *idx)
{
    return idx ? idx->bytes : 0;
}

/* ---- Reverse matching ---- */

#define SGG_WORDS (100000 / 64 + 1)

typedef struct rev_ctx {
    const lp_profile_index *idx;
    const lp_policy *p;
    int32_t today;
    const uint64_t *sgg; /* bitmap of the policy's 시군구 codes */
    lp_reverse_out *out;
} rev_ctx;

static int rev_exact(void *vctx, int kind, size_t pos)
{
    const rev_ctx *c = vctx;
    const prec *r = &c->idx->recs[pos];
    const lp_policy *p = c->p;
    int ok;
    switch (kind) {
    case R_AGE: {
        int age = lp_age_on(r->birth, c->today);
        if (age < 0) return LP_UNKNOWN;
        ok = age >= p->age_min && (!p->age_max || age <= p->age_max);
        break;
    }
    case R_INCOME:
        ok = (!p->income_min || r->income >= p->income_min) &&
             (!p->income_max || r->income <= p->income_max);
        break;
    case R_MONTHLY:
        ok = r->income <= p->monthly_max * 12;
        break;
    case R_MEDIAN:
        ok = r->income * 100 <= lp_median_income(p->median_year, r->household) * p->median_pct * 12;
        break;
    default: /* R_REGION: a 5-digit profile in a 시도 the policy lists in part */
        ok = (int)((c->sgg[r->region >> 6] >> (r->region & 63)) & 1);
        break;
    }
    return ok ? LP_MET : LP_FAILED;
}

static void rev_emit(void *vctx, size_t w, uint64_t any, uint64_t elig)
{
    rev_ctx *c = vctx;
    lp_reverse_out *o = c->out;
    const prec *recs = c->idx->recs + w * 64;
    for (uint64_t m = elig; m; m &= m - 1) {
        if (o->eligible_n < o->eligible_cap)
            o->eligible[o->eligible_n] = recs[__builtin_ctzll(m)].id;
        o->eligible_n++;
    }
    for (uint64_t m = any & ~elig; m; m &= m - 1) {
        if (o->possible && o->possible_n < o->possible_cap)
            o->possible[o->possible_n] = recs[__builtin_ctzll(m)].id;
        o->possible_n++;
    }
}

/* Pushes the birth years [y0, y1] (clamped to the data), whole decades
 * where they fit. */
static void push_years(const lp_profile_index *idx, lp_prog *g, lp_prog_attr *a, int which, int y0,
                       int y1)
{
    if (y0 < idx->ymin) y0 = idx->ymin;
    if (y1 > idx->ymax) y1 = idx->ymax;
    for (int y = y0; y <= y1;) {
        int d = y / 10;
        int first = d * 10 < idx->ymin ? idx->ymin : d * 10;
        int last = d * 10 + 9 > idx->ymax ? idx->ymax : d * 10 + 9;
        if (y == first && last <= y1) {
            lp_prog_push(g, a, which, idx->decade[d - idx->ymin / 10]);
            y = last + 1;
        } else {
            lp_prog_push(g, a, which, idx->year[y - idx->ymin]);
            y++;
        }
    }
}

static void push_income(const lp_profile_index *idx, lp_prog *g, int kind, int64_t min, int64_t max)
{
    lp_prog_attr *a = lp_prog_attr_begin(g, kind);
    for (int b = 0; b < LP_INCOME_BINS; b++)
        if (lp_income_cover(b, min, max) == 2) lp_prog_push(g, a, LP_P, idx->inc_bin[b]);
    lp_prog_push(g, a, LP_U, idx->inc_unk);
    for (int b = 0; b < LP_INCOME_BINS; b++)
        if (lp_income_cover(b, min, max) == 1) lp_prog_push(g, a, LP_X, idx->inc_bin[b]);
}

int lp_reverse_run(const lp_profile_index *idx, const lp_policy *p, int32_t today,
                   lp_reverse_out *out)
{
    if (!idx || !out || !lp_date_valid(today) || lp_policy_validate(p) != 0) return LP_EINVAL;
    if ((out->eligible_cap && !out->eligible) || (out->possible_cap && !out->possible))
        return LP_EINVAL;
    out->eligible_n = out->possible_n = 0;
    if (!idx->n) return 0;

    lp_prog g;
    lp_prog_init(&g);
    lp_prog_attr *a;
    uint64_t sgg[SGG_WORDS];

    if (p->nregions) {
        uint8_t whole[NSIDO] = {0}, part[NSIDO] = {0};
        memset(sgg, 0, sizeof sgg);
        for (uint32_t i = 0; i < p->nregions; i++) {
            uint32_t c = lp_region_normalize(p->regions[i]);
            if (c < 100) {
                whole[c] = 1;
            } else {
                part[c / 1000] = 1;
                sgg[c >> 6] |= (uint64_t)1 << (c & 63);
            }
        }
        a = lp_prog_attr_begin(&g, R_REGION);
        for (int s = 0; s < NSIDO; s++)
            if (whole[s]) lp_prog_push(&g, a, LP_P, idx->sido_any[s]);
        lp_prog_push(&g, a, LP_U, idx->region_unk);
        for (int s = 0; s < NSIDO; s++)
            if (part[s] && !whole[s]) lp_prog_push(&g, a, LP_U, idx->sido2[s]);
        for (int s = 0; s < NSIDO; s++)
            if (part[s] && !whole[s]) lp_prog_push(&g, a, LP_X, idx->sido5[s]);
    }
    if (p->age_min || p->age_max) {
        int ty = today / 10000;
        int hi = ty - p->age_min;
        int lo = p->age_max ? ty - p->age_max - 1 : INT_MIN / 2;
        a = lp_prog_attr_begin(&g, R_AGE);
        push_years(idx, &g, a, LP_P, lo + 1, hi - 1 < ty - 1 ? hi - 1 : ty - 1);
        lp_prog_push(&g, a, LP_U, idx->birth_unk);
        push_years(idx, &g, a, LP_U, ty + 1, INT_MAX / 2);
        /* the years a bound cuts through, and this year (births after today) */
        int xs[3] = {lo, hi, ty}, nx = 0;
        for (int i = 0; i < 3; i++) {
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= xs[j] == xs[i];
            if (!dup && xs[i] >= idx->ymin && xs[i] <= idx->ymax) xs[nx++] = xs[i];
        }
        for (int i = 0; i < nx; i++)
            lp_prog_push(&g, a, LP_X, idx->year[xs[i] - idx->ymin]);
    }
    const uint32_t sets[NSETS] = {p->employment, p->education, p->major, p->marital, p->housing};
    for (int k = 0; k < NSETS; k++) {
        if (!sets[k]) continue;
        a = lp_prog_attr_begin(&g, 0);
        for (int v = 1; v < MAXV; v++)
            if (lp__set_has(sets[k], (unsigned)v)) lp_prog_push(&g, a, LP_P, idx->set_v[k][v]);
        lp_prog_push(&g, a, LP_U, idx->set_unk[k]);
    }
    if (p->special) {
        a = lp_prog_attr_begin(&g, 0);
        for (int v = 1; v < MAXV; v++)
            if (lp__set_has(p->special, (unsigned)v)) lp_prog_push(&g, a, LP_P, idx->sp[v]);
        lp_prog_push(&g, a, LP_U, idx->sp_unk);
    }
    if (p->household_min || p->household_max) {
        a = lp_prog_attr_begin(&g, 0);
        int h0 = p->household_min ? p->household_min : 1;
        int h1 = p->household_max ? p->household_max : HH_SLOTS - 1;
        for (int h = h0; h <= h1; h++)
            lp_prog_push(&g, a, LP_P, idx->hh[h]);
        lp_prog_push(&g, a, LP_U, idx->hh_unk);
    }
    if (p->income_min || p->income_max)
        push_income(idx, &g, R_INCOME, p->income_min, p->income_max);
    if (p->monthly_max) push_income(idx, &g, R_MONTHLY, 0, p->monthly_max * 12);
    if (p->median_pct) {
        a = lp_prog_attr_begin(&g, R_MEDIAN);
        lp_prog_push(&g, a, LP_U, idx->inchh_unk);
        lp_prog_push(&g, a, LP_X, idx->inchh_known);
    }
    if (p->extra) {
        a = lp_prog_attr_begin(&g, 0);
        lp_prog_push(&g, a, LP_U, idx->all);
    }
    if (g.overflow) return LP_EINVAL;

    rev_ctx c = {idx, p, today, sgg, out};
    lp_prog_run(&g, idx->nwords, idx->lastmask, NULL, rev_exact, rev_emit, &c);
    return 0;
}
