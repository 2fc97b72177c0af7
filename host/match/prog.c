/* prog.c — runs a bitset program (see prog.h). */
#include "prog.h"

#include "match.h"

static inline uint64_t or_list(const uint64_t *const *ops, int n, size_t w)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= ops[i][w];
    return v;
}

void lp_prog_run(const lp_prog *g, size_t nwords, uint64_t lastmask, const uint64_t *filter,
                 lp_prog_exact_fn exact, lp_prog_emit_fn emit, void *ctx)
{
    uint64_t xw[LP_PROG_ATTRS];
    for (size_t w = 0; w < nwords; w++) {
        uint64_t any = w + 1 == nwords ? lastmask : ~(uint64_t)0;
        if (filter) any &= filter[w];
        uint64_t elig = any, xall = 0;
        int i;
        for (i = 0; i < g->nattrs && any; i++) {
            const lp_prog_attr *a = &g->attrs[i];
            uint64_t p = or_list(g->pool + a->p0, a->np, w);
            uint64_t u = a->nu ? or_list(g->pool + a->u0, a->nu, w) : 0;
            uint64_t x = a->nx ? or_list(g->pool + a->x0, a->nx, w) & ~p : 0;
            xw[i] = x;
            elig &= p | x;
            any &= p | u | x;
            xall |= x;
        }
        if (!any) continue;
        /* exact checks, only on candidates that survived every bitset */
        uint64_t todo = any & xall;
        while (todo) {
            int b = __builtin_ctzll(todo);
            todo &= todo - 1;
            uint64_t bit = (uint64_t)1 << b;
            size_t pos = w * 64 + (size_t)b;
            for (int j = 0; j < g->nattrs; j++) {
                if (!(xw[j] & bit)) continue;
                int r = exact(ctx, g->attrs[j].kind, pos);
                if (r == LP_FAILED) {
                    any &= ~bit;
                    break;
                }
                if (r == LP_UNKNOWN) elig &= ~bit;
            }
        }
        if (any) emit(ctx, w, any, elig & any);
    }
}
