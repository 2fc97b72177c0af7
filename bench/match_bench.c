/* match_bench.c — the matching engine against a plain scan and PostgreSQL.
 *
 * Generates synthetic policies shaped like the 온통청년 data (about 40%
 * nationwide, most local ones limited to a few 시군구, ages mostly 19–34 or
 * 19–39, a minority with income rules, multi-valued job/education codes)
 * and profiles like the app's users (some fields missing). For 1k, 10k and
 * 100k policies it times one recommendation (top 20, eligible + possible,
 * closed policies left out) three ways, on the same data:
 *   engine  lp_match_run on the index;
 *   scan    the plain loop: lp_match_eval on every policy, then top 20;
 *   sql     the same judgement as one SQL query over a real table with
 *           indexes, in the PostgreSQL at $LP_BENCH_DATABASE_URL.
 * Then one policy against 1M profiles (reverse), index against scan.
 * Every figure is a median. Without LP_BENCH_DATABASE_URL the SQL column
 * reads "n/a" (scripts/bench-match.sh starts a throwaway server). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "match.h"

#define TODAY 20260315
#define TOPK  20

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

/* ---- synthetic data ---- */

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static int rn(int n)
{
    return (int)(rnd() % (uint32_t)n);
}
static int chance(int pct)
{
    return rn(100) < pct;
}

/* 시도 weighted roughly by population: 서울 and 경기 dominate */
static const unsigned SIDO[] = {11, 11, 11, 41, 41, 41, 41, 26, 27, 28, 28, 29,
                                30, 31, 36, 43, 44, 46, 47, 48, 48, 50, 51, 52};
static unsigned rand_sido(void)
{
    return SIDO[rn((int)(sizeof SIDO / sizeof *SIDO))];
}
static unsigned rand_sgg(unsigned sido)
{
    return sido * 1000 + 110 + (unsigned)rn(25) * 10; /* ~25 시군구 per 시도 */
}

static uint32_t rand_set(int count, int maxpick)
{
    uint32_t s = 0;
    int k = 1 + rn(maxpick);
    for (int i = 0; i < k; i++)
        s |= 1u << (1 + rn(count));
    return s;
}

static int rand_date(int y0, int y1)
{
    int y = y0 + rn(y1 - y0 + 1), m = 1 + rn(12), d = 1 + rn(28);
    return y * 10000 + m * 100 + d;
}

typedef struct pol_store {
    lp_policy p;
    uint32_t regions[8];
} pol_store;

static void gen_policy(pol_store *s, uint32_t id)
{
    lp_policy *p = &s->p;
    memset(s, 0, sizeof *s);
    p->id = id;
    p->category = (uint8_t)(1 + rn(5));
    int r = rn(100);
    if (r < 55)
        p->age_min = 19, p->age_max = 34;
    else if (r < 80)
        p->age_min = 19, p->age_max = 39;
    else if (r < 90)
        p->age_min = 0, p->age_max = 0;
    else
        p->age_min = (uint8_t)(15 + rn(5)), p->age_max = (uint8_t)(29 + rn(20));
    r = rn(100);
    if (r >= 40) {
        unsigned sido = rand_sido();
        if (r < 65) {
            s->regions[p->nregions++] = sido; /* 시도-wide */
        } else {
            int n = r < 90 ? 1 : 2 + rn(5); /* one 구, or a few */
            for (int i = 0; i < n; i++)
                s->regions[p->nregions++] = rand_sgg(sido);
        }
        p->regions = s->regions;
    }
    r = rn(100);
    if (r < 12)
        p->income_max = (int64_t)(30 + rn(31)) * 1000000;
    else if (r < 20)
        p->median_pct = (uint16_t)(60 + rn(13) * 10), p->median_year = 2026;
    else if (r < 23)
        p->monthly_max = (int64_t)(250 + rn(200)) * 10000;
    if (chance(45)) {
        static const uint32_t common[] = {1u << 3, 1u << 1, (1u << 3) | (1u << 6),
                                          (1u << 1) | (1u << 3) | (1u << 4)};
        p->employment = chance(70) ? common[rn(4)] : rand_set(9, 4);
    }
    if (chance(25)) p->education = rand_set(9, 4);
    if (chance(5)) p->major = rand_set(8, 3);
    if (chance(12)) p->special = chance(60) ? 1u << 1 : rand_set(8, 2);
    if (chance(5)) p->marital = 1u << (1 + rn(2));
    if (chance(15)) p->housing = ((1u << 7) - 1) & ~1u & ~(1u << 1); /* 무주택 */
    if (chance(5)) p->household_min = 1, p->household_max = (uint8_t)(2 + rn(4));
    if (chance(20)) p->extra = 1;
    r = rn(100);
    if (r < 35) {
        /* always open */
    } else if (r < 60) {
        p->closed = 1;
    } else {
        p->apply_start = rand_date(2025, 2026);
        p->apply_end = rand_date(2026, 2027);
        if (p->apply_end < p->apply_start) p->apply_end = p->apply_start;
    }
}

static void gen_profile(lp_profile *pr, uint32_t id)
{
    memset(pr, 0, sizeof *pr);
    pr->id = id;
    if (!chance(5)) pr->birth = rand_date(chance(85) ? 1987 : 1960, 2007);
    int r = rn(100);
    unsigned sido = rand_sido();
    pr->region = r < 85 ? rand_sgg(sido) : r < 95 ? sido : 0;
    pr->income = chance(70) ? (int64_t)rn(70000) * 1000 : -1;
    if (!chance(25)) pr->household = (uint8_t)(1 + rn(4));
    if (!chance(10)) pr->employment = (uint8_t)(1 + rn(9));
    if (!chance(15)) pr->education = (uint8_t)(1 + rn(9));
    if (!chance(40)) pr->major = (uint8_t)(1 + rn(8));
    if (!chance(40)) {
        pr->special_known = 1;
        pr->special = chance(70) ? 0 : rand_set(8, 1);
    }
    if (!chance(20)) pr->marital = (uint8_t)(1 + rn(2));
    if (!chance(20)) pr->housing = (uint8_t)(1 + rn(6));
    pr->interests = rand_set(5, 2);
}

/* ---- the plain scan ---- */

static int scan_match(const lp_policy *ps, size_t n, const lp_profile *pr, lp_match_result *top,
                      size_t k)
{
    size_t m = 0;
    lp_match_result r;
    for (size_t i = 0; i < n; i++) {
        lp_match_eval(&ps[i], pr, TODAY, &r);
        if (r.eligibility == LP_INELIGIBLE || r.period == LP_PERIOD_CLOSED) continue;
        /* insertion into the sorted top k */
        size_t at = m;
        while (at > 0 && (top[at - 1].score < r.score ||
                          (top[at - 1].score == r.score && top[at - 1].policy_id > r.policy_id)))
            at--;
        if (at >= k) continue;
        size_t last = m < k ? m : k - 1;
        memmove(&top[at + 1], &top[at], (last - at) * sizeof *top);
        top[at] = r;
        if (m < k) m++;
    }
    return (int)m;
}

/* ---- PostgreSQL ---- */

static const char *SQL_SCHEMA =
    "DROP TABLE IF EXISTS bench_policies; DROP TABLE IF EXISTS bench_median;"
    "CREATE TABLE bench_median (year int, household int, won bigint, PRIMARY KEY (year, "
    "household));"
    "CREATE TABLE bench_policies (id int PRIMARY KEY, category smallint, age_min smallint,"
    " age_max smallint, regions int[] NOT NULL, sidos int[] NOT NULL, income_min bigint,"
    " income_max bigint, median_pct int, median_year int, monthly_max bigint,"
    " employment smallint[], education smallint[], major smallint[], special smallint[],"
    " marital smallint[], housing smallint[], household_min smallint, household_max smallint,"
    " apply_start date, apply_end date, closed bool NOT NULL, extra bool NOT NULL,"
    " static_score int NOT NULL)";

static const char *SQL_INDEXES = "CREATE INDEX ON bench_policies USING gin (sidos);"
                                 "CREATE INDEX ON bench_policies USING gin (regions);"
                                 "CREATE INDEX ON bench_policies (age_min, age_max);"
                                 "CREATE INDEX ON bench_policies (apply_end) WHERE NOT closed;"
                                 "ANALYZE bench_policies; ANALYZE bench_median";

/* One recommendation: $1 age, $2 시군구, $3 시도, $4 income, $5 household,
 * $6 employment, $7 education, $8 major, $9 special (NULL = unknown),
 * $10 marital, $11 housing, $12 interests, $13 today. Each condition scores
 * 2 met, 1 unknown, 0 failed; the row's status is the least of them. */
static const char *SQL_MATCH =
    "SELECT id, status, score FROM ("
    " SELECT t.id, s.status,"
    "  CASE s.status WHEN 2 THEN 1000 ELSE 500 END + t.static_score"
    "  + CASE WHEN t.category = ANY($12::smallint[]) THEN 100 ELSE 0 END"
    "  + CASE WHEN t.apply_start > $13::date THEN 0 WHEN t.apply_end IS NULL THEN 5"
    "         WHEN t.apply_end - $13::date <= 7 THEN 60 WHEN t.apply_end - $13::date <= 30 THEN 30"
    "         ELSE 10 END AS score"
    " FROM bench_policies t"
    " LEFT JOIN bench_median m ON m.year = t.median_year AND m.household = LEAST($5::int, 7)"
    " CROSS JOIN LATERAL (SELECT LEAST("
    "  CASE WHEN t.age_min IS NULL AND t.age_max IS NULL THEN 2 WHEN $1::int IS NULL THEN 1"
    "       WHEN $1::int >= COALESCE(t.age_min, 0) AND $1::int <= COALESCE(t.age_max, 999) THEN 2"
    "       ELSE 0 END,"
    "  CASE WHEN t.regions = '{0}' THEN 2 WHEN $3::int IS NULL THEN 1"
    "       WHEN t.regions && ARRAY[$2::int, $3::int] THEN 2"
    "       WHEN $2::int IS NULL AND $3::int = ANY(t.sidos) THEN 1 ELSE 0 END,"
    "  CASE WHEN t.income_min IS NULL AND t.income_max IS NULL THEN 2 WHEN $4::bigint IS NULL THEN "
    "1"
    "       WHEN $4::bigint BETWEEN COALESCE(t.income_min, 0) AND COALESCE(t.income_max, 9e15)"
    "       THEN 2 ELSE 0 END,"
    "  CASE WHEN t.median_pct IS NULL THEN 2 WHEN $4::bigint IS NULL OR $5::int IS NULL THEN 1"
    "       WHEN $4::bigint * 100 <= m.won * t.median_pct * 12 THEN 2 ELSE 0 END,"
    "  CASE WHEN t.monthly_max IS NULL THEN 2 WHEN $4::bigint IS NULL THEN 1"
    "       WHEN $4::bigint <= t.monthly_max * 12 THEN 2 ELSE 0 END,"
    "  CASE WHEN t.household_min IS NULL AND t.household_max IS NULL THEN 2"
    "       WHEN $5::int IS NULL THEN 1 WHEN $5::int BETWEEN COALESCE(t.household_min, 0)"
    "       AND COALESCE(t.household_max, 999) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.employment IS NULL THEN 2 WHEN $6::smallint IS NULL THEN 1"
    "       WHEN $6::smallint = ANY(t.employment) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.education IS NULL THEN 2 WHEN $7::smallint IS NULL THEN 1"
    "       WHEN $7::smallint = ANY(t.education) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.major IS NULL THEN 2 WHEN $8::smallint IS NULL THEN 1"
    "       WHEN $8::smallint = ANY(t.major) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.special IS NULL THEN 2 WHEN $9::smallint[] IS NULL THEN 1"
    "       WHEN t.special && $9::smallint[] THEN 2 ELSE 0 END,"
    "  CASE WHEN t.marital IS NULL THEN 2 WHEN $10::smallint IS NULL THEN 1"
    "       WHEN $10::smallint = ANY(t.marital) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.housing IS NULL THEN 2 WHEN $11::smallint IS NULL THEN 1"
    "       WHEN $11::smallint = ANY(t.housing) THEN 2 ELSE 0 END,"
    "  CASE WHEN t.extra THEN 1 ELSE 2 END) AS status) s"
    " WHERE NOT t.closed AND (t.apply_end IS NULL OR t.apply_end >= $13::date)"
    "   AND (t.sidos && ARRAY[0, COALESCE($3::int, 0)] OR $3::int IS NULL)"
    ") x WHERE status >= 1 ORDER BY score DESC, id LIMIT 20";

static void put_set(char **w, uint32_t set)
{
    if (!set) {
        *w += sprintf(*w, "\\N\t");
        return;
    }
    *w += sprintf(*w, "{");
    int first = 1;
    for (int v = 1; v < 32; v++)
        if (set & (1u << v)) {
            *w += sprintf(*w, first ? "%d" : ",%d", v);
            first = 0;
        }
    *w += sprintf(*w, "}\t");
}

static void put_num(char **w, long long v, int present)
{
    *w += present ? sprintf(*w, "%lld\t", v) : sprintf(*w, "\\N\t");
}

static void put_date(char **w, int ymd)
{
    *w += ymd ? sprintf(*w, "%04d-%02d-%02d\t", ymd / 10000, ymd / 100 % 100, ymd % 100)
              : sprintf(*w, "\\N\t");
}

static int pg_ok(PGconn *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) {
        fprintf(stderr, "match_bench: %s: %s", what, PQerrorMessage(c));
        PQclear(r);
        return 0;
    }
    PQclear(r);
    return 1;
}

static int static_score(const lp_policy *p)
{
    lp_profile none;
    memset(&none, 0, sizeof none);
    lp_policy q = *p;
    q.closed = 0;
    q.apply_start = q.apply_end = 0; /* period +5, then taken off */
    return lp_match_score(&q, &none, LP_INELIGIBLE, TODAY) - 5;
}

static int pg_load(PGconn *c, const lp_policy *ps, size_t n)
{
    if (!pg_ok(c, PQexec(c, SQL_SCHEMA), "schema")) return 0;
    char buf[256];
    for (int y = 2025; y <= 2026; y++)
        for (int h = 1; h <= 7; h++) {
            snprintf(buf, sizeof buf, "INSERT INTO bench_median VALUES (%d, %d, %lld)", y, h,
                     (long long)lp_median_income(y, h));
            if (!pg_ok(c, PQexec(c, buf), "median")) return 0;
        }
    if (!pg_ok(c, PQexec(c, "COPY bench_policies FROM STDIN"), "copy")) return 0;
    char *line = malloc(4096);
    for (size_t i = 0; i < n; i++) {
        const lp_policy *p = &ps[i];
        char *w = line;
        w += sprintf(w, "%u\t%d\t", p->id, p->category);
        put_num(&w, p->age_min, p->age_min || p->age_max);
        put_num(&w, p->age_max, p->age_max != 0);
        if (!p->nregions) {
            w += sprintf(w, "{0}\t{0}\t");
        } else {
            w += sprintf(w, "{");
            for (uint32_t r = 0; r < p->nregions; r++)
                w += sprintf(w, r ? ",%u" : "%u", p->regions[r]);
            w += sprintf(w, "}\t{");
            for (uint32_t r = 0; r < p->nregions; r++)
                w += sprintf(w, r ? ",%u" : "%u",
                             p->regions[r] >= 10000 ? p->regions[r] / 1000 : p->regions[r]);
            w += sprintf(w, "}\t");
        }
        put_num(&w, p->income_min, p->income_min != 0);
        put_num(&w, p->income_max, p->income_max != 0);
        put_num(&w, p->median_pct, p->median_pct != 0);
        put_num(&w, lp_median_year(p->median_year), p->median_pct != 0);
        put_num(&w, p->monthly_max, p->monthly_max != 0);
        put_set(&w, p->employment);
        put_set(&w, p->education);
        put_set(&w, p->major);
        put_set(&w, p->special);
        put_set(&w, p->marital);
        put_set(&w, p->housing);
        put_num(&w, p->household_min, p->household_min || p->household_max);
        put_num(&w, p->household_max, p->household_max != 0);
        put_date(&w, p->apply_start);
        put_date(&w, p->apply_end);
        w += sprintf(w, "%s\t%s\t%d\n", p->closed ? "t" : "f", p->extra ? "t" : "f",
                     static_score(p));
        if (PQputCopyData(c, line, (int)(w - line)) != 1) break;
    }
    free(line);
    if (PQputCopyEnd(c, NULL) != 1 || !pg_ok(c, PQgetResult(c), "copy end")) return 0;
    return pg_ok(c, PQexec(c, SQL_INDEXES), "indexes");
}

/* Runs the query for one profile; returns the number of rows or -1, and
 * the first row's id in *first. */
static int pg_match(PGconn *c, const lp_profile *pr, uint32_t *first)
{
    char v[13][64];
    const char *vals[13];
    int age = lp_age_on(pr->birth, TODAY);
    uint32_t reg = pr->region;
    uint32_t sido = reg >= 10000 ? reg / 1000 : reg;
#define SETV(i, present, ...)                                                                      \
    do {                                                                                           \
        snprintf(v[i], sizeof v[i], __VA_ARGS__);                                                  \
        vals[i] = (present) ? v[i] : NULL;                                                         \
    } while (0)
    SETV(0, age >= 0, "%d", age);
    SETV(1, reg >= 10000, "%u", reg);
    SETV(2, reg != 0, "%u", sido);
    SETV(3, pr->income >= 0, "%lld", (long long)pr->income);
    SETV(4, pr->household != 0, "%d", pr->household);
    SETV(5, pr->employment != 0, "%d", pr->employment);
    SETV(6, pr->education != 0, "%d", pr->education);
    SETV(7, pr->major != 0, "%d", pr->major);
    char *w = v[8];
    w += sprintf(w, "{");
    for (int s = 1, f = 1; s < 16; s++)
        if (pr->special & (1u << s)) w += sprintf(w, f ? "%d" : ",%d", s), f = 0;
    sprintf(w, "}");
    vals[8] = pr->special_known ? v[8] : NULL;
    SETV(9, pr->marital != 0, "%d", pr->marital);
    SETV(10, pr->housing != 0, "%d", pr->housing);
    w = v[11];
    w += sprintf(w, "{");
    for (int s = 1, f = 1; s < 16; s++)
        if (pr->interests & (1u << s)) w += sprintf(w, f ? "%d" : ",%d", s), f = 0;
    sprintf(w, "}");
    vals[11] = v[11];
    SETV(12, 1, "%04d-%02d-%02d", TODAY / 10000, TODAY / 100 % 100, TODAY % 100);
#undef SETV
    PGresult *r = PQexecPrepared(c, "match", 13, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "match_bench: query: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    *first = rows ? (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return rows;
}

/* ---- one size ---- */

static void bench_size(size_t n, PGconn *pg, const lp_profile *profiles, size_t nprof)
{
    pol_store *store = malloc(n * sizeof *store);
    lp_policy *ps = malloc(n * sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        gen_policy(&store[i], (uint32_t)i + 1);
        ps[i] = store[i].p;
        ps[i].regions = ps[i].nregions ? store[i].regions : NULL;
    }

    lp_match_index *idx = NULL;
    double t0 = now_us();
    if (lp_match_index_build(&idx, ps, n, NULL) != 0) {
        fprintf(stderr, "match_bench: build failed\n");
        exit(1);
    }
    double build_ms = (now_us() - t0) / 1e3;
    lp_match_index_release(idx);
    double builds[5];
    builds[0] = build_ms;
    for (int b = 1; b < 5; b++) {
        t0 = now_us();
        lp_match_index_build(&idx, ps, n, NULL);
        builds[b] = (now_us() - t0) / 1e3;
        if (b < 4) lp_match_index_release(idx);
    }
    build_ms = median(builds, 5);

    lp_match_result top[TOPK], top2[TOPK];
    lp_match_stats st;
    size_t runs = n <= 10000 ? 4000 : 1000;
    double *eng = malloc(runs * sizeof *eng);
    size_t elig_sum = 0, poss_sum = 0, mismatch = 0;
    for (size_t i = 0; i < runs; i++) {
        const lp_profile *pr = &profiles[i % nprof];
        lp_match_query q = {pr, TODAY, LP_MATCH_POSSIBLE | LP_MATCH_SKIP_CLOSED, 0};
        t0 = now_us();
        int got = lp_match_run(idx, &q, top, TOPK, &st);
        eng[i] = now_us() - t0;
        elig_sum += st.eligible;
        poss_sum += st.possible;
        if (i < nprof && i < 200) { /* the scan gives the same answer */
            int want = scan_match(ps, n, pr, top2, TOPK);
            if (got != want) mismatch++;
            for (int j = 0; j < got && j < want; j++)
                if (top[j].policy_id != top2[j].policy_id) mismatch++;
        }
    }
    size_t sruns = n <= 1000 ? 1000 : n <= 10000 ? 200 : 30;
    double *scan = malloc(sruns * sizeof *scan);
    for (size_t i = 0; i < sruns; i++) {
        t0 = now_us();
        scan_match(ps, n, &profiles[i % nprof], top2, TOPK);
        scan[i] = now_us() - t0;
    }
    double e = median(eng, runs), s = median(scan, sruns);

    char sqlbuf[64] = "n/a", ratio[64] = "n/a";
    if (pg) {
        if (!pg_load(pg, ps, n)) exit(1);
        PGresult *r = PQprepare(pg, "match", SQL_MATCH, 13, NULL);
        if (!pg_ok(pg, r, "prepare")) exit(1);
        size_t qruns = n <= 10000 ? 60 : 20;
        double *sq = malloc(qruns * sizeof *sq);
        size_t sql_mismatch = 0;
        for (size_t i = 0; i < qruns + 3; i++) { /* 3 warm-up runs */
            const lp_profile *pr = &profiles[i % nprof];
            uint32_t first = 0;
            t0 = now_us();
            int rows = pg_match(pg, pr, &first);
            double dt = now_us() - t0;
            if (rows < 0) exit(1);
            if (i >= 3) sq[i - 3] = dt;
            /* same first result as the engine (sanity, not a test) */
            lp_match_query q = {pr, TODAY, LP_MATCH_POSSIBLE | LP_MATCH_SKIP_CLOSED, 0};
            int got = lp_match_run(idx, &q, top, TOPK, &st);
            if (got != rows || (got && top[0].policy_id != first)) sql_mismatch++;
        }
        double sqm = median(sq, qruns);
        snprintf(sqlbuf, sizeof sqlbuf, "%.0f", sqm);
        snprintf(ratio, sizeof ratio, "%.0fx", sqm / e);
        if (sql_mismatch)
            fprintf(stderr, "match_bench: SQL disagreed on %zu of %zu profiles\n", sql_mismatch,
                    qruns + 3);
        free(sq);
        PQclear(PQexec(pg, "DEALLOCATE match"));
    }
    printf("match: policies=%zu engine_us=%.1f scan_us=%.0f sql_us=%s vs_scan=%.0fx vs_sql=%s\n", n,
           e, s, sqlbuf, s / e, ratio);
    printf("build: policies=%zu build_ms=%.1f index_bytes_per_policy=%.0f"
           " avg_eligible=%.0f avg_possible=%.0f%s\n",
           n, build_ms, (double)lp_match_index_memory(idx) / (double)n,
           (double)elig_sum / (double)runs, (double)poss_sum / (double)runs,
           mismatch ? " SCAN-MISMATCH" : "");
    fflush(stdout);
    lp_match_index_release(idx);
    free(eng);
    free(scan);
    free(store);
    free(ps);
}

static void bench_reverse(size_t n)
{
    lp_profile *prs = malloc(n * sizeof *prs);
    for (size_t i = 0; i < n; i++)
        gen_profile(&prs[i], (uint32_t)i + 1);
    lp_profile_index *pidx;
    double t0 = now_us();
    if (lp_profile_index_build(&pidx, prs, n, NULL) != 0) exit(1);
    double build_ms = (now_us() - t0) / 1e3;

    enum { NPOL = 16 };
    pol_store pols[NPOL];
    for (int i = 0; i < NPOL; i++)
        gen_policy(&pols[i], (uint32_t)i + 1);
    /* the first one is typical: 서울 강남구, 19–34, 미취업자 */
    memset(&pols[0], 0, sizeof pols[0]);
    pols[0].p.id = 1;
    pols[0].regions[0] = 11680;
    pols[0].p.nregions = 1;
    pols[0].p.age_min = 19;
    pols[0].p.age_max = 34;
    pols[0].p.employment = 1u << 3;
    for (int i = 0; i < NPOL; i++)
        pols[i].p.regions = pols[i].p.nregions ? pols[i].regions : NULL;

    uint32_t *el = malloc(n * sizeof *el), *po = malloc(n * sizeof *po);
    double eng[NPOL * 5], scan[NPOL];
    size_t found = 0, mismatch = 0;
    for (int r = 0; r < NPOL * 5; r++) {
        lp_reverse_out o = {el, n, 0, po, n, 0};
        t0 = now_us();
        lp_reverse_run(pidx, &pols[r % NPOL].p, TODAY, &o);
        eng[r] = (now_us() - t0) / 1e3;
        found += o.eligible_n;
        if (r < NPOL) {
            lp_match_result res;
            size_t ne = 0, np = 0;
            t0 = now_us();
            for (size_t i = 0; i < n; i++) {
                lp_match_eval(&pols[r].p, &prs[i], TODAY, &res);
                if (res.eligibility == LP_ELIGIBLE) ne++;
                if (res.eligibility == LP_POSSIBLE) np++;
            }
            scan[r] = (now_us() - t0) / 1e3;
            if (ne != o.eligible_n || np != o.possible_n) mismatch++;
        }
    }
    printf("reverse: profiles=%zu engine_ms=%.2f scan_ms=%.1f build_ms=%.0f"
           " index_bytes_per_profile=%.0f avg_eligible=%.0f%s\n",
           n, median(eng, NPOL * 5), median(scan, NPOL), build_ms,
           (double)lp_profile_index_memory(pidx) / (double)n, (double)found / (NPOL * 5),
           mismatch ? " SCAN-MISMATCH" : "");
    lp_profile_index_release(pidx);
    free(el);
    free(po);
    free(prs);
}

int main(int argc, char **argv)
{
    const char *url = getenv("LP_BENCH_DATABASE_URL");
    PGconn *pg = NULL;
    if (url && *url) {
        pg = PQconnectdb(url);
        if (PQstatus(pg) != CONNECTION_OK) {
            fprintf(stderr, "match_bench: %s", PQerrorMessage(pg));
            return 1;
        }
        PQclear(PQexec(pg, "SET client_min_messages = warning"));
    }
    enum { NPROF = 500 };
    static lp_profile profiles[NPROF];
    for (int i = 0; i < NPROF; i++)
        gen_profile(&profiles[i], (uint32_t)i + 1);

    size_t sizes[] = {1000, 10000, 100000};
    size_t reverse_n = 1000000;
    if (argc > 1 && !strcmp(argv[1], "--quick")) { /* a smoke run for CI */
        sizes[2] = 20000;
        reverse_n = 100000;
    }
    for (size_t i = 0; i < 3; i++)
        bench_size(sizes[i], pg, profiles, NPROF);
    bench_reverse(reverse_n);
    if (pg) PQfinish(pg);
    return 0;
}
