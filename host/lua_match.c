/* lua_match.c — `lp.match`: the policy-matching engine (host/match) from Lua.
 *
 *   local match = require "lp.match"
 *
 *   local idx = match.index(policies)     -- array of policy tables (below);
 *                                         -- raises "policy #i: ..." on a bad one
 *   idx:count(), idx:memory()             -- policies, bytes held
 *   local r = idx:match(profile, opts)    -- opts: today "YYYY-MM-DD" (default:
 *       -- today in Asia/Seoul), limit (20), includePossible (false),
 *       -- includeClosed (false), categories {"jobs", ...}
 *       -- → {items = {item...}, eligible = n, possible = n}
 *   local it = idx:explain(policyId, profile, opts)  -- one policy, ineligible
 *                                         -- included; nil when the id is unknown
 *   match.eval(policy, profile, opts)     -- the same for a policy table, no index
 *
 *   local b = match.policy_builder()      -- match.index a chunk at a time
 *   b:add(policies[, refused])            -- converts now; raises "policy #i:
 *       -- ..." and then adds none of them, or with refused(policy, message)
 *       -- leaves out only the ones the engine cannot take
 *   local idx = b:build()                 -- in a task the index is compiled
 *       -- on the thread pool while the task waits; the builder is empty after
 *       -- (match.profile_builder() the same for match.profiles)
 *   match.set_policies(idx)               -- publish (nil clears); kept in C, so
 *   match.policies()                      -- it survives reloads → idx or nil
 *
 *   local pidx = match.profiles(profiles) -- array of profile tables with `id`
 *   pidx:count(), pidx:memory()
 *   pidx:reverse(policy, opts)            -- opts: today, limit (all)
 *       -- → {eligible = {ids}, possible = {ids}, eligibleCount = n, possibleCount = n}
 *   match.set_profiles(pidx) / match.profile_index()
 *
 *   match.median_income(year, household)  -- 기준 중위소득, monthly won
 *
 * An item: {id, eligibility = "eligible"|"possible"|"ineligible", score,
 *   period = "open"|"upcoming"|"closed", missingFields = {"birthDate", ...},
 *   reasons = {{condition, status = "met"|"failed"|"unknown", code, detail,
 *               value, min, max, set = {...codes}, pct, year, household}}}.
 * `detail` is a Korean sentence ("나이 26세: 19~34세 조건 충족"); the numbers
 * beside it let a client write its own.
 *
 * A policy table: {id, category, ageMin, ageMax, regions = {"11", "11680"},
 *   incomeMin, incomeMax (annual won), medianIncomePct, medianIncomeYear,
 *   monthlyWageMax (won), employment = {...}, education, major, specialStatus,
 *   maritalStatus, housingType (arrays of the API's codes; absent or empty = no
 *   restriction), householdMin, householdMax, applyStart, applyEnd
 *   ("YYYY-MM-DD"; both absent = always open), closed (bool), extraCondition
 *   (free text: always "unknown")}.
 * A profile table is the API's profile: birthDate, regionCode, annualIncome,
 *   householdSize, employmentStatus, education, major, specialStatus (array;
 *   nil = unknown, {} = none), maritalStatus, housingType, interests; nil or
 *   json.null is unknown.
 *
 * Building runs on the calling (loop) thread: about 5 ms for 10,000 policies
 * plus the Lua table walk (see docs/host-api-match.md). Matching allocates
 * only the result tables. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bindings.h"
#include "host.h"
#include "lp.h"
#include "match/match.h"
#include "task.h"

#define INDEX_MT   "lp.match.index"
#define PROFILE_MT "lp.match.profiles"
#define BUILDER_MT "lp.match.builder"

typedef struct match_state {
    lp_match_slot policies;
    lp_profile_index *profiles;
} match_state;

static match_state *state_of(lua_State *L)
{
    lp_host *h = lp_host_from(L);
    if (!h->match_state) {
        match_state *s = calloc(1, sizeof *s);
        if (!s) luaL_error(L, "out of memory");
        lp_match_slot_init(&s->policies);
        h->match_state = s;
    }
    return h->match_state;
}

void lp_match_state_free(struct lp_host *h)
{
    match_state *s = h->match_state;
    if (!s) return;
    lp_match_slot_destroy(&s->policies);
    lp_profile_index_release(s->profiles);
    free(s);
    h->match_state = NULL;
}

/* ---- reading Lua values ---- */

static int is_absent(lua_State *L, int i)
{
    /* nil, or json.null (a NULL light userdata) */
    return lua_isnil(L, i) || (lua_type(L, i) == LUA_TLIGHTUSERDATA && !lua_touserdata(L, i));
}

/* Raises "<what> #<n>: <field> <msg>" (n = 0: no number). */
static int field_error(lua_State *L, const char *what, int n, const char *field, const char *msg)
{
    if (n) return luaL_error(L, "%s #%d: %s %s", what, n, field, msg);
    return luaL_error(L, "%s: %s %s", what, field, msg);
}

typedef struct reader {
    lua_State *L;
    int t;            /* table index */
    const char *what; /* "policy" / "profile" */
    int n;            /* position in the array, 0 for a single table */
} reader;

/* Pushes t[field]; returns 0 (and pops) when absent. */
static int get(reader *r, const char *field)
{
    lua_getfield(r->L, r->t, field);
    if (is_absent(r->L, -1)) {
        lua_pop(r->L, 1);
        return 0;
    }
    return 1;
}

static int64_t get_int(reader *r, const char *field, int64_t lo, int64_t hi, int64_t dflt)
{
    if (!get(r, field)) return dflt;
    lua_Number v = lua_tonumber(r->L, -1);
    if (lua_type(r->L, -1) != LUA_TNUMBER || v != (lua_Number)(int64_t)v || v < lo || v > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer in %lld..%lld", (long long)lo, (long long)hi);
        field_error(r->L, r->what, r->n, field, msg);
    }
    lua_pop(r->L, 1);
    return (int64_t)v;
}

static int parse_date(const char *s, size_t len, int32_t *out)
{
    int y, m, d;
    char tail;
    if (len != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return -1;
    int32_t ymd = y * 10000 + m * 100 + d;
    if (!lp_date_valid(ymd)) return -1;
    *out = ymd;
    return 0;
}

static int32_t get_date(reader *r, const char *field)
{
    if (!get(r, field)) return 0;
    size_t len;
    const char *s = lua_tolstring(r->L, -1, &len);
    int32_t ymd = 0;
    if (lua_type(r->L, -1) != LUA_TSTRING || parse_date(s, len, &ymd) != 0)
        field_error(r->L, r->what, r->n, field, "must be a date YYYY-MM-DD");
    lua_pop(r->L, 1);
    return ymd;
}

static int parse_code(reader *r, int kind, const char *field, int i)
{
    size_t len;
    const char *s = lua_tolstring(r->L, i, &len);
    int code = lua_type(r->L, i) == LUA_TSTRING ? lp_match_code_parse(kind, s, len) : 0;
    if (!code) field_error(r->L, r->what, r->n, field, "has an unknown code");
    return code;
}

static int get_code(reader *r, const char *field, int kind)
{
    if (!get(r, field)) return 0;
    int code = parse_code(r, kind, field, -1);
    lua_pop(r->L, 1);
    return code;
}

/* An array of codes (a single string is accepted too) → LP_SET bits;
 * *present tells an absent field from an empty array. */
static uint32_t get_set(reader *r, const char *field, int kind, int *present)
{
    if (present) *present = 0;
    if (!get(r, field)) return 0;
    if (present) *present = 1;
    uint32_t set = 0;
    if (lua_type(r->L, -1) == LUA_TSTRING) {
        set = LP_SET(parse_code(r, kind, field, -1));
    } else if (lua_type(r->L, -1) == LUA_TTABLE) {
        int n = (int)lua_objlen(r->L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(r->L, -1, i);
            set |= LP_SET(parse_code(r, kind, field, -1));
            lua_pop(r->L, 1);
        }
    } else {
        field_error(r->L, r->what, r->n, field, "must be an array of codes");
    }
    lua_pop(r->L, 1);
    return set;
}

static uint32_t parse_region(lua_State *L, int i)
{
    uint32_t code = 0;
    if (lua_type(L, i) == LUA_TNUMBER) {
        lua_Number v = lua_tonumber(L, i);
        if (v >= 0 && v < 1e6 && v == (lua_Number)(uint32_t)v) code = (uint32_t)v;
    } else if (lua_type(L, i) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, i, &len);
        if (len == 2 || len == 5) {
            for (size_t k = 0; k < len; k++) {
                if (s[k] < '0' || s[k] > '9') return 0;
                code = code * 10 + (uint32_t)(s[k] - '0');
            }
        }
    }
    return lp_region_normalize(code);
}

/* Reads the policy at stack index t; region codes go to codes[]. */
static void read_policy(lua_State *L, int t, int n, lp_policy *p, uint32_t *codes, uint32_t cap)
{
    reader r = {L, t, "policy", n};
    if (!lua_istable(L, t)) field_error(L, "policy", n, "", "must be a table");
    memset(p, 0, sizeof *p);
    p->id = (uint32_t)get_int(&r, "id", 1, UINT32_MAX, 0);
    if (!p->id) field_error(L, "policy", n, "id", "is required");
    p->category = (uint8_t)get_code(&r, "category", LP_KIND_CATEGORY);
    p->age_min = (uint8_t)get_int(&r, "ageMin", 0, LP_AGE_LIMIT, 0);
    p->age_max = (uint8_t)get_int(&r, "ageMax", 0, LP_AGE_LIMIT, 0);
    p->household_min = (uint8_t)get_int(&r, "householdMin", 0, LP_HOUSEHOLD_LIMIT, 0);
    p->household_max = (uint8_t)get_int(&r, "householdMax", 0, LP_HOUSEHOLD_LIMIT, 0);
    p->income_min = get_int(&r, "incomeMin", 0, LP_INCOME_LIMIT, 0);
    p->income_max = get_int(&r, "incomeMax", 0, LP_INCOME_LIMIT, 0);
    p->median_pct = (uint16_t)get_int(&r, "medianIncomePct", 0, 1000, 0);
    p->median_year = (uint16_t)get_int(&r, "medianIncomeYear", 1900, 2200, 2026);
    p->monthly_max = get_int(&r, "monthlyWageMax", 0, LP_INCOME_LIMIT / 12, 0);
    p->employment = get_set(&r, "employment", LP_KIND_EMPLOYMENT, NULL);
    p->education = get_set(&r, "education", LP_KIND_EDUCATION, NULL);
    p->major = get_set(&r, "major", LP_KIND_MAJOR, NULL);
    p->special = get_set(&r, "specialStatus", LP_KIND_SPECIAL, NULL);
    p->marital = get_set(&r, "maritalStatus", LP_KIND_MARITAL, NULL);
    p->housing = get_set(&r, "housingType", LP_KIND_HOUSING, NULL);
    p->apply_start = get_date(&r, "applyStart");
    p->apply_end = get_date(&r, "applyEnd");
    if (get(&r, "closed")) {
        p->closed = (uint8_t)lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (get(&r, "extraCondition")) {
        size_t len = 0;
        if (lua_type(L, -1) == LUA_TSTRING) lua_tolstring(L, -1, &len);
        p->extra = (uint8_t)(lua_type(L, -1) == LUA_TBOOLEAN ? lua_toboolean(L, -1) : len > 0);
        lua_pop(L, 1);
    }
    if (get(&r, "regions")) {
        if (!lua_istable(L, -1)) field_error(L, "policy", n, "regions", "must be an array");
        uint32_t k = (uint32_t)lua_objlen(L, -1);
        if (k > cap) field_error(L, "policy", n, "regions", "has too many codes");
        for (uint32_t i = 0; i < k; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            codes[i] = parse_region(L, -1);
            if (!codes[i]) field_error(L, "policy", n, "regions", "has an unknown region code");
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        p->regions = k ? codes : NULL;
        p->nregions = k;
    }
    if (lp_policy_validate(p) != 0)
        field_error(L, "policy", n, "", "has inconsistent bounds (min above max?)");
}

static uint32_t region_count(lua_State *L, int t)
{
    if (!lua_istable(L, t)) return 0;
    lua_getfield(L, t, "regions");
    uint32_t k = lua_istable(L, -1) ? (uint32_t)lua_objlen(L, -1) : 0;
    lua_pop(L, 1);
    return k;
}

static void read_profile(lua_State *L, int t, int n, lp_profile *pr, int need_id)
{
    reader r = {L, t, "profile", n};
    if (!lua_istable(L, t)) field_error(L, "profile", n, "", "must be a table");
    memset(pr, 0, sizeof *pr);
    pr->id = (uint32_t)get_int(&r, "id", 0, UINT32_MAX, 0);
    if (need_id && !pr->id) field_error(L, "profile", n, "id", "is required");
    pr->birth = get_date(&r, "birthDate");
    if (get(&r, "regionCode")) {
        pr->region = parse_region(L, -1);
        if (!pr->region) field_error(L, "profile", n, "regionCode", "is not a known region code");
        lua_pop(L, 1);
    }
    pr->income = get_int(&r, "annualIncome", 0, INT64_C(1) << 52, -1);
    pr->household = (uint8_t)get_int(&r, "householdSize", 1, 99, 0);
    pr->employment = (uint8_t)get_code(&r, "employmentStatus", LP_KIND_EMPLOYMENT);
    pr->education = (uint8_t)get_code(&r, "education", LP_KIND_EDUCATION);
    pr->major = (uint8_t)get_code(&r, "major", LP_KIND_MAJOR);
    pr->marital = (uint8_t)get_code(&r, "maritalStatus", LP_KIND_MARITAL);
    pr->housing = (uint8_t)get_code(&r, "housingType", LP_KIND_HOUSING);
    int known;
    pr->special = get_set(&r, "specialStatus", LP_KIND_SPECIAL, &known);
    pr->special_known = (uint8_t)known;
    pr->interests = get_set(&r, "interests", LP_KIND_CATEGORY, NULL);
}

/* opts.today, or today's date in Asia/Seoul (UTC+9, no DST). */
static int32_t opt_today(lua_State *L, int opts)
{
    if (lua_istable(L, opts)) {
        reader r = {L, opts, "opts", 0};
        int32_t d = get_date(&r, "today");
        if (d) return d;
    }
    time_t t = time(NULL) + 9 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static int64_t opt_int(lua_State *L, int opts, const char *field, int64_t lo, int64_t hi,
                       int64_t dflt)
{
    if (!lua_istable(L, opts)) return dflt;
    reader r = {L, opts, "opts", 0};
    return get_int(&r, field, lo, hi, dflt);
}

static int opt_bool(lua_State *L, int opts, const char *field)
{
    if (!lua_istable(L, opts)) return 0;
    lua_getfield(L, opts, field);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---- results → Lua ---- */

/* "3,000만원", or "30,000,001원" when not a whole 만원. */
static void money(char *buf, size_t cap, int64_t won)
{
    char digits[32];
    int64_t v = won % 10000 == 0 ? won / 10000 : won;
    snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t len = strlen(digits), o = 0;
    char out[48];
    for (size_t i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    snprintf(buf, cap, "%s%s%s", v < 0 ? "-" : "", out, won % 10000 == 0 ? "만원" : "원");
}

static void range_text(char *buf, size_t cap, int64_t min, int64_t max, const char *unit)
{
    if (min && max)
        snprintf(buf, cap, "%lld~%lld%s", (long long)min, (long long)max, unit);
    else if (min)
        snprintf(buf, cap, "%lld%s 이상", (long long)min, unit);
    else
        snprintf(buf, cap, "%lld%s 이하", (long long)max, unit);
}

static void money_range(char *buf, size_t cap, int64_t min, int64_t max)
{
    char a[48], b[48];
    money(a, sizeof a, min);
    money(b, sizeof b, max);
    if (min && max)
        snprintf(buf, cap, "%s~%s", a, b);
    else if (min)
        snprintf(buf, cap, "%s 이상", a);
    else
        snprintf(buf, cap, "%s 이하", b);
}

static void set_text(char *buf, size_t cap, int kind, uint32_t set)
{
    size_t o = 0;
    buf[0] = 0;
    for (int v = 1; v <= lp_match_code_count(kind); v++) {
        if (!(set & LP_SET(v))) continue;
        int w = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", lp_match_code_label(kind, v));
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

static const char *const field_labels[LP_FIELD__COUNT] = {
    "",     "생년월일", "거주 지역", "연소득",    "가구원 수", "취업 상태",
    "학력", "전공",     "특화 요건", "혼인 여부", "주거 형태",
};

static const struct {
    const char *label;
    int kind;
} cond_info[LP_COND__COUNT] = {
    [LP_COND_AGE] = {"나이", -1},
    [LP_COND_REGION] = {"거주 지역", -1},
    [LP_COND_INCOME] = {"연소득", -1},
    [LP_COND_MEDIAN] = {"월소득", -1},
    [LP_COND_MONTHLY] = {"월소득", -1},
    [LP_COND_HOUSEHOLD] = {"가구원 수", -1},
    [LP_COND_EMPLOYMENT] = {"취업 상태", LP_KIND_EMPLOYMENT},
    [LP_COND_EDUCATION] = {"학력", LP_KIND_EDUCATION},
    [LP_COND_MAJOR] = {"전공", LP_KIND_MAJOR},
    [LP_COND_SPECIAL] = {"특화 요건", LP_KIND_SPECIAL},
    [LP_COND_MARITAL] = {"혼인 여부", LP_KIND_MARITAL},
    [LP_COND_HOUSING] = {"주거 형태", LP_KIND_HOUSING},
    [LP_COND_EXTRA] = {"추가 조건", -1},
};

/* The Korean sentence for one reason. */
static void detail(char *buf, size_t cap, const lp_match_reason *x)
{
    const char *verdict = x->status == LP_MET ? "조건 충족" : "조건 미충족";
    const char *label = cond_info[x->cond].label;
    char a[160], b[160];
    if (x->code == LP_R_MISSING) {
        snprintf(buf, cap, "%s 정보를 입력하면 확인할 수 있어요", field_labels[x->field]);
        return;
    }
    switch (x->cond) {
    case LP_COND_AGE:
        range_text(a, sizeof a, x->min, x->max, "세");
        snprintf(buf, cap, "나이 %lld세: %s %s", (long long)x->value, a, verdict);
        return;
    case LP_COND_REGION:
        if (x->code == LP_R_REGION_LISTED)
            snprintf(buf, cap, "거주 지역(%lld)이 지원 대상 지역이에요", (long long)x->value);
        else if (x->code == LP_R_REGION_SIDO)
            snprintf(buf, cap, "거주 지역(%lld)이 대상 시도(%lld)에 속해요", (long long)x->value,
                     (long long)x->min);
        else if (x->code == LP_R_REGION_IMPRECISE)
            snprintf(buf, cap, "일부 시군구만 대상이에요: 시군구까지 입력하면 확인할 수 있어요");
        else
            snprintf(buf, cap, "거주 지역(%lld)이 지원 대상 지역이 아니에요", (long long)x->value);
        return;
    case LP_COND_INCOME:
        money(a, sizeof a, x->value);
        money_range(b, sizeof b, x->min, x->max);
        snprintf(buf, cap, "연소득 %s: %s %s", a, b, verdict);
        return;
    case LP_COND_MEDIAN:
        money(a, sizeof a, x->value);
        money(b, sizeof b, x->max);
        snprintf(buf, cap, "월소득 %s: 기준 중위소득 %u%% 이하(%u인 가구, %u년 월 %s) %s", a,
                 (unsigned)x->pct, (unsigned)x->household, (unsigned)x->year, b, verdict);
        return;
    case LP_COND_MONTHLY:
        money(a, sizeof a, x->value);
        money(b, sizeof b, x->max);
        snprintf(buf, cap, "월소득 %s: 월 %s 이하 %s", a, b, verdict);
        return;
    case LP_COND_HOUSEHOLD:
        range_text(a, sizeof a, x->min, x->max, "명");
        snprintf(buf, cap, "가구원 수 %lld명: %s %s", (long long)x->value, a, verdict);
        return;
    case LP_COND_EXTRA:
        snprintf(buf, cap, "추가 조건은 공고에서 직접 확인이 필요해요");
        return;
    case LP_COND_SPECIAL:
        set_text(b, sizeof b, LP_KIND_SPECIAL, x->set);
        if (x->status == LP_MET) {
            set_text(a, sizeof a, LP_KIND_SPECIAL, x->set & (uint32_t)x->value);
            snprintf(buf, cap, "특화 요건 %s: %s 중 하나 %s", a, b, verdict);
        } else {
            snprintf(buf, cap, "특화 요건: %s 중 하나 필요 %s", b, verdict);
        }
        return;
    default: {
        int kind = cond_info[x->cond].kind;
        const char *have = lp_match_code_label(kind, (int)x->value);
        set_text(b, sizeof b, kind, x->set);
        snprintf(buf, cap, "%s %s: %s 대상 %s", label, have ? have : "기타", b, verdict);
        return;
    }
    }
}

/* Marks the table on top as a JSON array (lp.json's json.array), so an
 * empty one encodes as [] rather than {}. */
static void mark_array(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "lp.match.array");
    if (lua_isfunction(L, -1)) {
        lua_pushvalue(L, -2);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
}

static void push_set(lua_State *L, int kind, uint32_t set)
{
    lua_newtable(L);
    int i = 0;
    for (int v = 1; v <= lp_match_code_count(kind); v++) {
        if (!(set & LP_SET(v))) continue;
        lua_pushstring(L, lp_match_code_name(kind, v));
        lua_rawseti(L, -2, ++i);
    }
    mark_array(L);
}

static void set_num(lua_State *L, const char *k, lua_Number v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void push_reason(lua_State *L, const lp_match_reason *x)
{
    char buf[1024];
    lua_createtable(L, 0, 8);
    lua_pushstring(L, lp_match_cond_name(x->cond));
    lua_setfield(L, -2, "condition");
    lua_pushstring(L, lp_match_cond_status_name(x->status));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, lp_match_reason_name(x->code));
    lua_setfield(L, -2, "code");
    detail(buf, sizeof buf, x);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "detail");
    if (x->field) {
        lua_pushstring(L, lp_match_field_name(x->field));
        lua_setfield(L, -2, "field");
    }
    if (x->code == LP_R_MISSING || x->code == LP_R_TEXT) {
        if (cond_info[x->cond].kind >= 0 && x->set) {
            push_set(L, cond_info[x->cond].kind, x->set);
            lua_setfield(L, -2, "set");
        }
        return;
    }
    int kind = cond_info[x->cond].kind;
    if (kind >= 0) {
        if (x->cond == LP_COND_SPECIAL)
            push_set(L, kind, (uint32_t)x->value);
        else
            lua_pushstring(L, lp_match_code_name(kind, (int)x->value));
        lua_setfield(L, -2, "value");
        push_set(L, kind, x->set);
        lua_setfield(L, -2, "set");
        return;
    }
    if (x->cond == LP_COND_REGION) {
        char code[16];
        snprintf(code, sizeof code, "%lld", (long long)x->value);
        lua_pushstring(L, code);
        lua_setfield(L, -2, "value");
        if (x->min) {
            snprintf(code, sizeof code, "%lld", (long long)x->min);
            lua_pushstring(L, code);
            lua_setfield(L, -2, "matched");
        }
        return;
    }
    if (x->cond == LP_COND_EXTRA) return;
    set_num(L, "value", (lua_Number)x->value);
    if (x->min) set_num(L, "min", (lua_Number)x->min);
    if (x->max) set_num(L, "max", (lua_Number)x->max);
    if (x->cond == LP_COND_MEDIAN) {
        set_num(L, "pct", x->pct);
        set_num(L, "year", x->year);
        set_num(L, "household", x->household);
    }
}

static void push_result(lua_State *L, const lp_match_result *r)
{
    lua_createtable(L, 0, 6);
    set_num(L, "id", r->policy_id);
    lua_pushstring(L, lp_match_eligibility_name(r->eligibility));
    lua_setfield(L, -2, "eligibility");
    set_num(L, "score", r->score);
    lua_pushstring(L, lp_match_period_name(r->period));
    lua_setfield(L, -2, "period");
    lua_newtable(L);
    int n = 0;
    for (int f = 1; f < LP_FIELD__COUNT; f++) {
        if (!(r->missing & LP_SET(f))) continue;
        lua_pushstring(L, lp_match_field_name(f));
        lua_rawseti(L, -2, ++n);
    }
    mark_array(L);
    lua_setfield(L, -2, "missingFields");
    lua_createtable(L, (int)r->nreasons, 0);
    for (uint32_t i = 0; i < r->nreasons; i++) {
        push_reason(L, &r->reasons[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    mark_array(L);
    lua_setfield(L, -2, "reasons");
}

/* ---- the policy index ---- */

static lp_match_index **check_index(lua_State *L, int i)
{
    lp_match_index **pp = luaL_checkudata(L, i, INDEX_MT);
    if (!*pp) luaL_error(L, "match index already released");
    return pp;
}

static void push_index(lua_State *L, lp_match_index *idx)
{
    lp_match_index **pp = lua_newuserdata(L, sizeof *pp);
    *pp = idx; /* the userdata owns one reference */
    luaL_getmetatable(L, INDEX_MT);
    lua_setmetatable(L, -2);
}

static int l_index_gc(lua_State *L)
{
    lp_match_index **pp = luaL_checkudata(L, 1, INDEX_MT);
    lp_match_index_release(*pp);
    *pp = NULL;
    return 0;
}

static int l_index_count(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lp_match_index_count(*check_index(L, 1)));
    return 1;
}

static int l_index_memory(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lp_match_index_memory(*check_index(L, 1)));
    return 1;
}

static int l_index_match(lua_State *L)
{
    lp_match_index *idx = *check_index(L, 1);
    lp_profile pr;
    read_profile(L, 2, 0, &pr, 0);
    int32_t today = opt_today(L, 3);
    size_t limit = (size_t)opt_int(L, 3, "limit", 0, 1000, 20);
    lp_match_query q = {&pr, today, LP_MATCH_SKIP_CLOSED, 0};
    if (opt_bool(L, 3, "includePossible")) q.flags |= LP_MATCH_POSSIBLE;
    if (opt_bool(L, 3, "includeClosed")) q.flags &= ~(unsigned)LP_MATCH_SKIP_CLOSED;
    if (lua_istable(L, 3)) {
        reader r = {L, 3, "opts", 0};
        q.categories = get_set(&r, "categories", LP_KIND_CATEGORY, NULL);
    }
    lp_match_result *out = lua_newuserdata(L, (limit ? limit : 1) * sizeof *out);
    lp_match_stats st;
    int got = lp_match_run(idx, &q, out, limit, &st);
    if (got < 0) return luaL_error(L, "match: %s", lp_strerror(got));
    lua_createtable(L, 0, 3);
    lua_createtable(L, got, 0);
    for (int i = 0; i < got; i++) {
        push_result(L, &out[i]);
        lua_rawseti(L, -2, i + 1);
    }
    mark_array(L);
    lua_setfield(L, -2, "items");
    set_num(L, "eligible", (lua_Number)st.eligible);
    set_num(L, "possible", (lua_Number)st.possible);
    return 1;
}

static int l_index_explain(lua_State *L)
{
    lp_match_index *idx = *check_index(L, 1);
    lua_Number id = luaL_checknumber(L, 2);
    lp_profile pr;
    read_profile(L, 3, 0, &pr, 0);
    int32_t today = opt_today(L, 4);
    const lp_policy *p =
        id >= 1 && id <= UINT32_MAX ? lp_match_index_find(idx, (uint32_t)id) : NULL;
    if (!p) {
        lua_pushnil(L);
        return 1;
    }
    lp_match_result r;
    lp_match_eval(p, &pr, today, &r);
    push_result(L, &r);
    return 1;
}

static int l_eval(lua_State *L)
{
    uint32_t codes[512];
    lp_policy p;
    read_policy(L, 1, 0, &p, codes, LP_ARRAY_SIZE(codes));
    lp_profile pr;
    read_profile(L, 2, 0, &pr, 0);
    lp_match_result r;
    lp_match_eval(&p, &pr, opt_today(L, 3), &r);
    push_result(L, &r);
    return 1;
}

static int l_set_policies(lua_State *L)
{
    match_state *s = state_of(L);
    lp_match_index *idx = NULL;
    if (!lua_isnoneornil(L, 1)) {
        idx = *check_index(L, 1);
        lp_match_index_retain(idx); /* the slot's own reference */
    }
    lp_match_slot_swap(&s->policies, idx);
    return 0;
}

static int l_policies(lua_State *L)
{
    lp_match_index *idx = lp_match_slot_acquire(&state_of(L)->policies);
    if (!idx) {
        lua_pushnil(L);
        return 1;
    }
    push_index(L, idx);
    return 1;
}

/* ---- the profile index ---- */

static lp_profile_index **check_pindex(lua_State *L, int i)
{
    lp_profile_index **pp = luaL_checkudata(L, i, PROFILE_MT);
    if (!*pp) luaL_error(L, "profile index already released");
    return pp;
}

static void push_pindex(lua_State *L, lp_profile_index *idx)
{
    lp_profile_index **pp = lua_newuserdata(L, sizeof *pp);
    *pp = idx;
    luaL_getmetatable(L, PROFILE_MT);
    lua_setmetatable(L, -2);
}

static int l_pindex_gc(lua_State *L)
{
    lp_profile_index **pp = luaL_checkudata(L, 1, PROFILE_MT);
    lp_profile_index_release(*pp);
    *pp = NULL;
    return 0;
}

/* ---- builders ----
 *
 * match.index and match.profiles convert and compile in one call on the
 * loop: for 100,000 profiles that holds it ~50 ms. A builder takes the
 * conversion a chunk at a time (the caller reads the next chunk from the
 * database in between) and compiles on the thread pool: by then the
 * policies or profiles are plain data. */

typedef struct builder {
    int policies;    /* a policy builder, else a profile builder          */
    void *items;     /* lp_policy or lp_profile, n of them                */
    size_t n, cap;   /* items                                             */
    uint32_t *codes; /* policies: every policy's region codes, in order   */
    size_t ncodes, codes_cap;
    size_t *offs; /* policies: where each one's codes start (offs_cap) */
    size_t offs_cap;
} builder;

static size_t item_size(const builder *b)
{
    return b->policies ? sizeof(lp_policy) : sizeof(lp_profile);
}

static void builder_clear(builder *b)
{
    free(b->items);
    free(b->codes);
    free(b->offs);
    int policies = b->policies;
    memset(b, 0, sizeof *b);
    b->policies = policies;
}

static builder *check_builder(lua_State *L, int i)
{
    return luaL_checkudata(L, i, BUILDER_MT);
}

static int l_builder_gc(lua_State *L)
{
    builder_clear(check_builder(L, 1));
    return 0;
}

static int new_builder(lua_State *L, int policies)
{
    builder *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    b->policies = policies;
    luaL_getmetatable(L, BUILDER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_policy_builder(lua_State *L)
{
    return new_builder(L, 1);
}

static int l_profile_builder(lua_State *L)
{
    return new_builder(L, 0);
}

/* Grows *p (count *cap items of size) to hold want. */
static int grow(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap) return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < want)
        ncap *= 2;
    void *np = realloc(*p, ncap * size);
    if (np == NULL) return LP_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/* b:add(list): converted past the end first, counted only once all are. */
static int l_builder_add(lua_State *L)
{
    builder *b = check_builder(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_objlen(L, 2), ncodes = 0;
    if (b->policies)
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, (int)i);
            ncodes += region_count(L, lua_gettop(L));
            lua_pop(L, 1);
        }
    if (grow(&b->items, &b->cap, b->n + n, item_size(b)) != 0 ||
        (b->policies &&
         (grow((void **)&b->offs, &b->offs_cap, b->n + n, sizeof *b->offs) != 0 ||
          grow((void **)&b->codes, &b->codes_cap, b->ncodes + ncodes, sizeof *b->codes) != 0)))
        return luaL_error(L, "match: out of memory");
    size_t used = b->ncodes;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, (int)i);
        if (b->policies) {
            lp_policy *p = (lp_policy *)b->items + b->n + i - 1;
            read_policy(L, lua_gettop(L), (int)i, p, b->codes + used,
                        (uint32_t)(b->codes_cap - used));
            b->offs[b->n + i - 1] = used;
            used += p->nregions;
        } else {
            read_profile(L, lua_gettop(L), (int)i, (lp_profile *)b->items + b->n + i - 1, 1);
        }
        lua_pop(L, 1);
    }
    b->n += n;
    b->ncodes = used;
    lua_settop(L, 1);
    return 1;
}

static int l_builder_count(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)check_builder(L, 1)->n);
    return 1;
}

/* A builder's contents, moved out of it, and what compiling them gave. */
typedef struct build_job {
    uv_work_t work;
    lp_task *task;
    builder b;
    lp_match_index *idx;
    lp_profile_index *pidx;
    size_t bad;
    int rc;
} build_job;

static void build_run(build_job *j)
{
    builder *b = &j->b;
    if (!b->policies) {
        j->rc = lp_profile_index_build(&j->pidx, b->items, b->n, NULL);
        return;
    }
    lp_policy *ps = b->items; /* codes moved as they grew: point into them now */
    for (size_t i = 0; i < b->n; i++)
        ps[i].regions = ps[i].nregions ? b->codes + b->offs[i] : NULL;
    j->rc = lp_match_index_build(&j->idx, ps, b->n, &j->bad);
}

static void build_work(uv_work_t *w)
{
    build_run(w->data);
}

static int build_push(lua_State *co, void *data)
{
    build_job *j = data;
    if (j->rc == LP_EINVAL && j->b.policies) {
        lua_pushnil(co);
        lua_pushfstring(co, "policy #%d: duplicate id", (int)j->bad + 1);
        return 2;
    }
    if (j->rc != 0) {
        lua_pushnil(co);
        lua_pushfstring(co, "match: %s", lp_strerror(j->rc));
        return 2;
    }
    if (j->b.policies)
        push_index(co, j->idx);
    else
        push_pindex(co, j->pidx);
    return 1;
}

static void build_done(uv_work_t *w, int status)
{
    build_job *j = w->data;
    (void)status; /* nothing cancels it */
    lp_task_resume(j->task, build_push, j);
    builder_clear(&j->b);
    free(j);
}

/* Moves what b holds into j: b is empty (and reusable) at once. */
static void take_contents(build_job *j, builder *b)
{
    j->b = *b;
    memset(b, 0, sizeof *b);
    b->policies = j->b.policies;
}

/* b:build() → the index, or nil and a message (the Lua wrapper raises it).
 * In a task the compiling runs on the thread pool while the task waits. */
static int l_builder_build(lua_State *L)
{
    builder *b = check_builder(L, 1);
    build_job *j = calloc(1, sizeof *j);
    if (j == NULL) return luaL_error(L, "match: out of memory");
    take_contents(j, b);
    lp_task *t = lp_task_current(L);
    if (t != NULL) {
        j->task = t;
        j->work.data = j;
        if (uv_queue_work(lp_host_from(L)->loop, &j->work, build_work, build_done) == 0)
            return lp_task_yield(L);
    }
    build_run(j); /* not in a task: at once */
    int n = build_push(L, j);
    builder_clear(&j->b);
    free(j);
    return n;
}

/* match.index(list) / match.profiles(list): a builder filled and compiled
 * in one call, on the loop. The builder is a userdata on the stack, so a
 * conversion that raises leaves nothing behind. */
static int build_at_once(lua_State *L, int policies, const char *what)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    new_builder(L, policies); /* 2 */
    lua_pushcfunction(L, l_builder_add);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_call(L, 2, 0);
    build_job j;
    memset(&j, 0, sizeof j);
    take_contents(&j, check_builder(L, 2));
    build_run(&j);
    builder_clear(&j.b);
    if (j.rc == LP_EINVAL && policies)
        return luaL_error(L, "policy #%d: duplicate id", (int)j.bad + 1);
    if (j.rc != 0) return luaL_error(L, "%s: %s", what, lp_strerror(j.rc));
    if (policies)
        push_index(L, j.idx);
    else
        push_pindex(L, j.pidx);
    return 1;
}

static int l_index(lua_State *L)
{
    return build_at_once(L, 1, "match.index");
}

static int l_profiles(lua_State *L)
{
    return build_at_once(L, 0, "match.profiles");
}

static int l_pindex_count(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lp_profile_index_count(*check_pindex(L, 1)));
    return 1;
}

static int l_pindex_memory(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lp_profile_index_memory(*check_pindex(L, 1)));
    return 1;
}

static void push_ids(lua_State *L, const uint32_t *ids, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    mark_array(L);
}

static int l_pindex_reverse(lua_State *L)
{
    lp_profile_index *idx = *check_pindex(L, 1);
    uint32_t codes[512];
    lp_policy p;
    read_policy(L, 2, 0, &p, codes, LP_ARRAY_SIZE(codes));
    int32_t today = opt_today(L, 3);
    size_t n = lp_profile_index_count(idx);
    size_t limit = (size_t)opt_int(L, 3, "limit", 0, (int64_t)n, (int64_t)n);
    uint32_t *buf = lua_newuserdata(L, 2 * (limit ? limit : 1) * sizeof *buf);
    lp_reverse_out o = {buf, limit, 0, buf + limit, limit, 0};
    int rc = lp_reverse_run(idx, &p, today, &o);
    if (rc != 0) return luaL_error(L, "reverse: %s", lp_strerror(rc));
    lua_createtable(L, 0, 4);
    push_ids(L, o.eligible, o.eligible_n < limit ? o.eligible_n : limit);
    lua_setfield(L, -2, "eligible");
    push_ids(L, o.possible, o.possible_n < limit ? o.possible_n : limit);
    lua_setfield(L, -2, "possible");
    set_num(L, "eligibleCount", (lua_Number)o.eligible_n);
    set_num(L, "possibleCount", (lua_Number)o.possible_n);
    return 1;
}

static int l_set_profiles(lua_State *L)
{
    match_state *s = state_of(L);
    lp_profile_index *idx = NULL;
    if (!lua_isnoneornil(L, 1)) {
        idx = *check_pindex(L, 1);
        lp_profile_index_retain(idx);
    }
    lp_profile_index_release(s->profiles);
    s->profiles = idx;
    return 0;
}

static int l_profile_index(lua_State *L)
{
    match_state *s = state_of(L);
    if (!s->profiles) {
        lua_pushnil(L);
        return 1;
    }
    lp_profile_index_retain(s->profiles);
    push_pindex(L, s->profiles);
    return 1;
}

static int l_median_income(lua_State *L)
{
    int year = (int)luaL_checkinteger(L, 1);
    int household = (int)luaL_checkinteger(L, 2);
    if (household < 1) return luaL_argerror(L, 2, "household size must be at least 1");
    lua_pushnumber(L, (lua_Number)lp_median_income(year, household));
    return 1;
}

static void new_metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

int luaopen_lp_match(lua_State *L)
{
    static const luaL_Reg index_methods[] = {
        {"count", l_index_count},
        {"memory", l_index_memory},
        {"match", l_index_match},
        {"explain", l_index_explain},
        {NULL, NULL},
    };
    static const luaL_Reg pindex_methods[] = {
        {"count", l_pindex_count},
        {"memory", l_pindex_memory},
        {"reverse", l_pindex_reverse},
        {NULL, NULL},
    };
    static const luaL_Reg builder_methods[] = {
        {"add", l_builder_add},
        {"count", l_builder_count},
        {"build", l_builder_build},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"index", l_index},
        {"eval", l_eval},
        {"set_policies", l_set_policies},
        {"policies", l_policies},
        {"profiles", l_profiles},
        {"profile_builder", l_profile_builder},
        {"policy_builder", l_policy_builder},
        {"set_profiles", l_set_profiles},
        {"profile_index", l_profile_index},
        {"median_income", l_median_income},
        {NULL, NULL},
    };
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lp.json");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "array");
    lua_setfield(L, LUA_REGISTRYINDEX, "lp.match.array");
    lua_pop(L, 1);
    new_metatable(L, INDEX_MT, index_methods, l_index_gc);
    new_metatable(L, PROFILE_MT, pindex_methods, l_pindex_gc);
    new_metatable(L, BUILDER_MT, builder_methods, l_builder_gc);
    /* build raises what the C function returns (it may have waited, so it
     * cannot raise itself); add with `refused` leaves out what the engine
     * cannot take, one item at a time, once the whole list was refused */
    static const char wrap[] = "local methods, build, add = ...\n"
                               "function methods.build(self)\n"
                               "  local idx, err = build(self)\n"
                               "  if idx == nil then error(err, 2) end\n"
                               "  return idx\n"
                               "end\n"
                               "function methods.add(self, list, refused)\n"
                               "  if refused == nil then return add(self, list) end\n"
                               "  if pcall(add, self, list) then return self end\n"
                               "  for _, item in ipairs(list) do\n"
                               "    local ok, err = pcall(add, self, { item })\n"
                               "    if not ok then refused(item, err) end\n"
                               "  end\n"
                               "  return self\n"
                               "end\n";
    if (luaL_loadbuffer(L, wrap, sizeof(wrap) - 1, "=lp.match") != 0) return lua_error(L);
    luaL_getmetatable(L, BUILDER_MT);
    lua_getfield(L, -1, "__index");
    lua_replace(L, -2);
    lua_pushcfunction(L, l_builder_build);
    lua_pushcfunction(L, l_builder_add);
    lua_call(L, 3, 0);
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
