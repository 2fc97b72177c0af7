/* prog.h — (internal) the bitset program both indexes run.
 *
 * A query is compiled into a list of attributes. For attribute i and a
 * word w of candidates (policies or profiles), three bitsets are ORed from
 * precomputed ones:
 *   P  the condition is met (or absent),
 *   U  it is unknown (the deciding field is missing),
 *   X  it cannot be told from the bitsets: an exact check decides.
 * A candidate is eligible when every attribute has it in P (or X and the
 * check says met), and eligible-or-possible when every attribute has it in
 * P, U or X (and no check failed). One pass over the words, no allocation. */
#ifndef LP_MATCH_PROG_H
#define LP_MATCH_PROG_H

#include <stddef.h>
#include <stdint.h>

#define LP_PROG_POOL  1024 /* operand bitsets per query              */
#define LP_PROG_ATTRS 24   /* attributes per query                   */

typedef struct lp_prog_attr {
    uint16_t p0, np; /* P = OR pool[p0 .. p0+np)       */
    uint16_t u0, nu; /* U = OR pool[u0 .. u0+nu)       */
    uint16_t x0, nx; /* X = OR pool[x0 .. x0+nx)       */
    int kind;        /* passed to the exact check      */
} lp_prog_attr;

typedef struct lp_prog {
    const uint64_t *pool[LP_PROG_POOL];
    int npool;
    lp_prog_attr attrs[LP_PROG_ATTRS];
    int nattrs;
    int overflow; /* set when a list did not fit: the query is refused */
} lp_prog;

/* Returns LP_MET, LP_FAILED or LP_UNKNOWN for candidate `pos`. */
typedef int (*lp_prog_exact_fn)(void *ctx, int kind, size_t pos);
/* Called for each word w with survivors: bit b of `any` is candidate
 * w*64+b (eligible or possible), of `elig` eligible. Words ascend. */
typedef void (*lp_prog_emit_fn)(void *ctx, size_t w, uint64_t any, uint64_t elig);

static inline void lp_prog_init(lp_prog *g)
{
    g->npool = 0;
    g->nattrs = 0;
    g->overflow = 0;
}

/* Starts an attribute; then add P, U and X operands in that order. */
static inline lp_prog_attr *lp_prog_attr_begin(lp_prog *g, int kind)
{
    if (g->nattrs == LP_PROG_ATTRS) {
        g->overflow = 1;
        return &g->attrs[0];
    }
    lp_prog_attr *a = &g->attrs[g->nattrs++];
    a->p0 = a->u0 = a->x0 = (uint16_t)g->npool;
    a->np = a->nu = a->nx = 0;
    a->kind = kind;
    return a;
}

static inline void lp_prog_push(lp_prog *g, lp_prog_attr *a, int which, const uint64_t *bs)
{
    if (!bs) return;
    if (g->npool == LP_PROG_POOL) {
        g->overflow = 1;
        return;
    }
    g->pool[g->npool++] = bs;
    /* operands are pushed P first, then U, then X */
    if (which == 0) {
        a->np++;
        a->u0++;
        a->x0++;
    } else if (which == 1) {
        a->nu++;
        a->x0++;
    } else {
        a->nx++;
    }
}
#define LP_P 0
#define LP_U 1
#define LP_X 2

/* Income buckets shared by both indexes: 2,000,000 won wide up to 200M,
 * then one open bucket. Bucket b is [lo(b), hi(b)] inclusive. */
#define LP_INCOME_STEP 2000000LL
#define LP_INCOME_BINS 101
static inline int lp_income_bin(int64_t v)
{
    int64_t b = v / LP_INCOME_STEP;
    return b >= LP_INCOME_BINS - 1 ? LP_INCOME_BINS - 1 : (int)b;
}
static inline int64_t lp_income_bin_lo(int b)
{
    return b * LP_INCOME_STEP;
}
static inline int64_t lp_income_bin_hi(int b) /* INT64_MAX for the last */
{
    return b == LP_INCOME_BINS - 1 ? INT64_MAX : (b + 1) * LP_INCOME_STEP - 1;
}
/* How a range [min, max] (0 = open) covers bucket b: 2 whole, 1 partly, 0 not. */
static inline int lp_income_cover(int b, int64_t min, int64_t max)
{
    int64_t lo = lp_income_bin_lo(b), hi = lp_income_bin_hi(b);
    int64_t mx = max ? max : INT64_MAX;
    if (mx < lo || min > hi) return 0;
    return min <= lo && mx >= hi ? 2 : 1;
}

/* Shared with match.c so both indexes score exactly like lp_match_score. */
struct lp_policy;
int lp__static_score(const struct lp_policy *p); /* region level and condition count */
int lp__period_bonus(const struct lp_policy *p, int32_t today, int32_t today_day);
int32_t lp__day_number(int32_t ymd);
static inline int lp__set_has(uint32_t set, unsigned v)
{
    return v < 32 && ((set >> v) & 1u);
}

void lp_prog_run(const lp_prog *g, size_t nwords, uint64_t lastmask, const uint64_t *filter,
                 lp_prog_exact_fn exact, lp_prog_emit_fn emit, void *ctx);

#endif
