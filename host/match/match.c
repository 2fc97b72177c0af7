/* match.c — codes, reference tables and the judgement of one policy.
 *
 * lp_match_eval is the definition of a match: the indexes in index.c and
 * reverse.c are faster ways of computing the same answer, and the property
 * test holds them to it. */
#include "match.h"

#include "prog.h"

#include <string.h>

/* ---- Codes ---- */

typedef struct code_def {
    const char *name;
    const char *label;
} code_def;

static const code_def employment_codes[] = {
    {"employed", "재직자"},       {"self_employed", "자영업자"}, {"unemployed", "미취업자"},
    {"freelancer", "프리랜서"},   {"day_laborer", "일용근로자"}, {"founder", "(예비)창업자"},
    {"short_term", "단기근로자"}, {"farmer", "영농종사자"},      {"other", "기타"},
};
static const code_def education_codes[] = {
    {"below_high_school", "고졸 미만"},
    {"high_school_student", "고교 재학"},
    {"high_school_expected", "고졸 예정"},
    {"high_school_graduate", "고교 졸업"},
    {"university_student", "대학 재학"},
    {"university_expected", "대졸 예정"},
    {"university_graduate", "대학 졸업"},
    {"graduate_degree", "석·박사"},
    {"other", "기타"},
};
static const code_def major_codes[] = {
    {"humanities", "인문"},  {"social", "사회"}, {"business", "상경"},      {"natural", "이학"},
    {"engineering", "공학"}, {"arts", "예체능"}, {"agriculture", "농산업"}, {"other", "기타"},
};
static const code_def special_codes[] = {
    {"sme_employee", "중소기업"},
    {"woman", "여성"},
    {"basic_livelihood", "기초생활수급자"},
    {"single_parent", "한부모가정"},
    {"disabled", "장애인"},
    {"farmer", "농업인"},
    {"soldier", "군인"},
    {"local_talent", "지역인재"},
};
static const code_def marital_codes[] = {{"single", "미혼"}, {"married", "기혼"}};
static const code_def housing_codes[] = {
    {"own_home", "자가"},          {"jeonse", "전세"},      {"monthly_rent", "월세"},
    {"with_parents", "부모님 집"}, {"dormitory", "기숙사"}, {"other", "기타"},
};
static const code_def category_codes[] = {
    {"jobs", "일자리"},
    {"housing", "주거"},
    {"education", "교육･직업훈련"},
    {"welfare", "금융･복지･문화"},
    {"participation", "참여･기반"},
};

static const struct {
    const code_def *defs;
    int n;
} kinds[LP_KIND__COUNT] = {
    [LP_KIND_EMPLOYMENT] = {employment_codes, (int)LP_ARRAY_SIZE(employment_codes)},
    [LP_KIND_EDUCATION] = {education_codes, (int)LP_ARRAY_SIZE(education_codes)},
    [LP_KIND_MAJOR] = {major_codes, (int)LP_ARRAY_SIZE(major_codes)},
    [LP_KIND_SPECIAL] = {special_codes, (int)LP_ARRAY_SIZE(special_codes)},
    [LP_KIND_MARITAL] = {marital_codes, (int)LP_ARRAY_SIZE(marital_codes)},
    [LP_KIND_HOUSING] = {housing_codes, (int)LP_ARRAY_SIZE(housing_codes)},
    [LP_KIND_CATEGORY] = {category_codes, (int)LP_ARRAY_SIZE(category_codes)},
};

int lp_match_code_count(int kind)
{
    return kind >= 0 && kind < LP_KIND__COUNT ? kinds[kind].n : 0;
}

int lp_match_code_parse(int kind, const char *name, size_t len)
{
    if (kind < 0 || kind >= LP_KIND__COUNT || !name) return 0;
    for (int i = 0; i < kinds[kind].n; i++) {
        const char *s = kinds[kind].defs[i].name;
        if (strlen(s) == len && memcmp(s, name, len) == 0) return i + 1;
    }
    return 0;
}

const char *lp_match_code_name(int kind, int code)
{
    if (kind < 0 || kind >= LP_KIND__COUNT || code < 1 || code > kinds[kind].n) return NULL;
    return kinds[kind].defs[code - 1].name;
}

const char *lp_match_code_label(int kind, int code)
{
    if (kind < 0 || kind >= LP_KIND__COUNT || code < 1 || code > kinds[kind].n) return NULL;
    return kinds[kind].defs[code - 1].label;
}

const char *lp_match_field_name(int field)
{
    static const char *const names[LP_FIELD__COUNT] = {
        "",
        "birthDate",
        "regionCode",
        "annualIncome",
        "householdSize",
        "employmentStatus",
        "education",
        "major",
        "specialStatus",
        "maritalStatus",
        "housingType",
    };
    return field >= 0 && field < LP_FIELD__COUNT ? names[field] : "";
}

const char *lp_match_cond_name(int cond)
{
    static const char *const names[LP_COND__COUNT] = {
        "age",           "region",     "income",    "medianIncome", "monthlyWage",
        "household",     "employment", "education", "major",        "specialStatus",
        "maritalStatus", "housing",    "extra",
    };
    return cond >= 0 && cond < LP_COND__COUNT ? names[cond] : "";
}

const char *lp_match_cond_status_name(int status)
{
    switch (status) {
    case LP_MET:
        return "met";
    case LP_FAILED:
        return "failed";
    case LP_UNKNOWN:
        return "unknown";
    default:
        return "";
    }
}

const char *lp_match_reason_name(int reason)
{
    static const char *const names[] = {
        "",
        "in_range",
        "below_min",
        "above_max",
        "in_set",
        "not_in_set",
        "missing",
        "region_listed",
        "region_sido",
        "region_outside",
        "region_imprecise",
        "check_text",
    };
    return reason >= 0 && reason < (int)LP_ARRAY_SIZE(names) ? names[reason] : "";
}

const char *lp_match_eligibility_name(int e)
{
    switch (e) {
    case LP_ELIGIBLE:
        return "eligible";
    case LP_POSSIBLE:
        return "possible";
    case LP_INELIGIBLE:
        return "ineligible";
    default:
        return "";
    }
}

const char *lp_match_period_name(int p)
{
    switch (p) {
    case LP_PERIOD_OPEN:
        return "open";
    case LP_PERIOD_UPCOMING:
        return "upcoming";
    case LP_PERIOD_CLOSED:
        return "closed";
    default:
        return "";
    }
}

/* ---- 기준 중위소득 (보건복지부 고시, monthly won, household 1..7) ----
 *
 * 2026 and 2025 1~6인 are the published tables. 2025 7인 (8,988,428) is
 * taken from public secondary sources: it is not the 고시's old 7인 formula
 * (6인 + (6인 − 5인) = 9,021,418) but has the same relation to 5~6인 as the
 * 2026 7인 value (9,515,150) does, so both years are treated alike. */
static const struct {
    int year;
    int64_t won[7];
} median_tables[] = {
    {2025, {2392013, 3932658, 5025353, 6097773, 7108192, 8064805, 8988428}},
    {2026, {2564238, 4199292, 5359036, 6494738, 7556719, 8555952, 9515150}},
};

int lp_median_year(int year)
{
    int first = median_tables[0].year;
    int last = median_tables[LP_ARRAY_SIZE(median_tables) - 1].year;
    return year < first ? first : year > last ? last : year;
}

int64_t lp_median_income(int year, int household)
{
    if (household < 1) return 0;
    year = lp_median_year(year);
    const int64_t *t = median_tables[year - median_tables[0].year].won;
    if (household <= 7) return t[household - 1];
    return t[6] + (int64_t)(household - 7) * (t[6] - t[5]);
}

/* ---- Regions and dates ---- */

static int sido_valid(uint32_t s)
{
    switch (s) {
    case 11:
    case 26:
    case 27:
    case 28:
    case 29:
    case 30:
    case 31:
    case 36:
    case 41:
    case 43:
    case 44:
    case 46:
    case 47:
    case 48:
    case 50:
    case 51:
    case 52:
        return 1;
    default:
        return 0;
    }
}

uint32_t lp_region_normalize(uint32_t code)
{
    if (code >= 10 && code <= 99) {
        if (code == 42) code = 51;
        if (code == 45) code = 52;
        return sido_valid(code) ? code : 0;
    }
    if (code >= 10000 && code <= 99999) {
        uint32_t s = code / 1000;
        if (s == 42) code += 9000;
        if (s == 45) code += 7000;
        return sido_valid(code / 1000) ? code : 0;
    }
    return 0;
}

int lp_date_valid(int32_t ymd)
{
    int y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
    if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1) return 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

int lp_age_on(int32_t birth, int32_t today)
{
    if (birth <= 0 || birth > today) return -1;
    return (today - birth) / 10000;
}

/* Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
int32_t lp__day_number(int32_t ymd)
{
    int y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int lp_policy_period(const lp_policy *p, int32_t today)
{
    if (p->closed) return LP_PERIOD_CLOSED;
    if (p->apply_start && today < p->apply_start) return LP_PERIOD_UPCOMING;
    if (p->apply_end && today > p->apply_end) return LP_PERIOD_CLOSED;
    return LP_PERIOD_OPEN;
}

int lp_policy_validate(const lp_policy *p)
{
    if (!p) return LP_EINVAL;
    if (p->category > kinds[LP_KIND_CATEGORY].n) return LP_EINVAL;
    if (p->age_min > LP_AGE_LIMIT || p->age_max > LP_AGE_LIMIT) return LP_EINVAL;
    if (p->age_max && p->age_min > p->age_max) return LP_EINVAL;
    if (p->household_min > LP_HOUSEHOLD_LIMIT || p->household_max > LP_HOUSEHOLD_LIMIT)
        return LP_EINVAL;
    if (p->household_max && p->household_min > p->household_max) return LP_EINVAL;
    if (p->income_min < 0 || p->income_max < 0) return LP_EINVAL;
    if (p->income_min > LP_INCOME_LIMIT || p->income_max > LP_INCOME_LIMIT) return LP_EINVAL;
    if (p->monthly_max > LP_INCOME_LIMIT / 12) return LP_EINVAL;
    if (p->income_max && p->income_min > p->income_max) return LP_EINVAL;
    if (p->monthly_max < 0 || p->median_pct > 1000) return LP_EINVAL;
    if (p->nregions && !p->regions) return LP_EINVAL;
    for (uint32_t i = 0; i < p->nregions; i++)
        if (!lp_region_normalize(p->regions[i])) return LP_EINVAL;
    const struct {
        uint32_t set;
        int kind;
    } sets[] = {
        {p->employment, LP_KIND_EMPLOYMENT}, {p->education, LP_KIND_EDUCATION},
        {p->major, LP_KIND_MAJOR},           {p->special, LP_KIND_SPECIAL},
        {p->marital, LP_KIND_MARITAL},       {p->housing, LP_KIND_HOUSING},
    };
    for (size_t i = 0; i < LP_ARRAY_SIZE(sets); i++) {
        uint32_t allowed = ((1u << kinds[sets[i].kind].n) - 1) << 1;
        if (sets[i].set & ~allowed) return LP_EINVAL;
    }
    if (p->apply_start && !lp_date_valid(p->apply_start)) return LP_EINVAL;
    if (p->apply_end && !lp_date_valid(p->apply_end)) return LP_EINVAL;
    return 0;
}

/* ---- Judging ---- */

static lp_match_reason *add(lp_match_result *r, int cond, int field)
{
    lp_match_reason *x = &r->reasons[r->nreasons++];
    memset(x, 0, sizeof *x);
    x->cond = (uint8_t)cond;
    x->field = (uint8_t)field;
    return x;
}

static void judge_range(lp_match_reason *x, int64_t v, int64_t min, int64_t max)
{
    x->value = v;
    x->min = min;
    x->max = max;
    if (min && v < min) {
        x->status = LP_FAILED;
        x->code = LP_R_BELOW_MIN;
    } else if (max && v > max) {
        x->status = LP_FAILED;
        x->code = LP_R_ABOVE_MAX;
    } else {
        x->status = LP_MET;
        x->code = LP_R_IN_RANGE;
    }
}

static void judge_set(lp_match_reason *x, int v, uint32_t set)
{
    x->set = set;
    x->value = v;
    int in = lp__set_has(set, (unsigned)v);
    x->status = in ? LP_MET : LP_FAILED;
    x->code = in ? LP_R_IN_SET : LP_R_NOT_IN_SET;
}

static void unknown(lp_match_reason *x, int code)
{
    x->status = LP_UNKNOWN;
    x->code = (uint8_t)code;
}

static void judge_region(lp_match_reason *x, const lp_policy *p, uint32_t code)
{
    x->value = code;
    uint32_t sido = code >= 10000 ? code / 1000 : code;
    int partial = 0;
    for (uint32_t i = 0; i < p->nregions; i++) {
        uint32_t c = lp_region_normalize(p->regions[i]);
        if (c == code && code >= 10000) {
            x->min = c;
            x->status = LP_MET;
            x->code = LP_R_REGION_LISTED;
            return;
        }
        if (c == sido) {
            x->min = c;
            x->status = LP_MET;
            x->code = LP_R_REGION_SIDO;
            /* keep looking: a listed 시군구 is the more precise reason */
        } else if (c >= 10000 && c / 1000 == sido) {
            partial = 1;
        }
    }
    if (x->status == LP_MET) return;
    if (code < 100 && partial) {
        unknown(x, LP_R_REGION_IMPRECISE);
        return;
    }
    x->status = LP_FAILED;
    x->code = LP_R_REGION_OUTSIDE;
}

void lp_match_eval(const lp_policy *p, const lp_profile *pr, int32_t today, lp_match_result *out)
{
    out->policy_id = p->id;
    out->nreasons = 0;
    out->missing = 0;
    lp_match_reason *x;
    int age = lp_age_on(pr->birth, today);
    int has_income = pr->income >= 0;
    int64_t income = pr->income > LP_INCOME_LIMIT ? LP_INCOME_LIMIT : pr->income;
    uint32_t region = pr->region ? lp_region_normalize(pr->region) : 0;

    if (p->age_min || p->age_max) {
        x = add(out, LP_COND_AGE, LP_FIELD_BIRTH);
        if (age < 0)
            unknown(x, LP_R_MISSING);
        else
            judge_range(x, age, p->age_min, p->age_max);
    }
    if (p->nregions) {
        x = add(out, LP_COND_REGION, LP_FIELD_REGION);
        if (!region)
            unknown(x, LP_R_MISSING);
        else
            judge_region(x, p, region);
    }
    if (p->income_min || p->income_max) {
        x = add(out, LP_COND_INCOME, LP_FIELD_INCOME);
        if (!has_income)
            unknown(x, LP_R_MISSING);
        else
            judge_range(x, income, p->income_min, p->income_max);
    }
    if (p->median_pct) {
        x = add(out, LP_COND_MEDIAN, LP_FIELD_INCOME);
        x->pct = p->median_pct;
        x->year = (uint16_t)lp_median_year(p->median_year);
        if (!has_income) {
            unknown(x, LP_R_MISSING);
        } else if (!pr->household) {
            x->field = LP_FIELD_HOUSEHOLD;
            unknown(x, LP_R_MISSING);
        } else {
            int64_t m = lp_median_income(p->median_year, pr->household);
            x->household = pr->household;
            x->value = income / 12;
            x->max = m * p->median_pct / 100;
            /* monthly income ≤ pct% of the median, without rounding the income */
            int ok = income * 100 <= m * p->median_pct * 12;
            x->status = ok ? LP_MET : LP_FAILED;
            x->code = ok ? LP_R_IN_RANGE : LP_R_ABOVE_MAX;
        }
    }
    if (p->monthly_max) {
        x = add(out, LP_COND_MONTHLY, LP_FIELD_INCOME);
        x->max = p->monthly_max;
        if (!has_income) {
            unknown(x, LP_R_MISSING);
        } else {
            x->value = income / 12;
            int ok = income <= p->monthly_max * 12;
            x->status = ok ? LP_MET : LP_FAILED;
            x->code = ok ? LP_R_IN_RANGE : LP_R_ABOVE_MAX;
        }
    }
    if (p->household_min || p->household_max) {
        x = add(out, LP_COND_HOUSEHOLD, LP_FIELD_HOUSEHOLD);
        if (!pr->household)
            unknown(x, LP_R_MISSING);
        else
            judge_range(x, pr->household, p->household_min, p->household_max);
    }
    const struct {
        uint32_t set;
        int cond, field, value;
    } sets[] = {
        {p->employment, LP_COND_EMPLOYMENT, LP_FIELD_EMPLOYMENT, pr->employment},
        {p->education, LP_COND_EDUCATION, LP_FIELD_EDUCATION, pr->education},
        {p->major, LP_COND_MAJOR, LP_FIELD_MAJOR, pr->major},
    };
    for (size_t i = 0; i < LP_ARRAY_SIZE(sets); i++) {
        if (!sets[i].set) continue;
        x = add(out, sets[i].cond, sets[i].field);
        x->set = sets[i].set;
        if (!sets[i].value)
            unknown(x, LP_R_MISSING);
        else
            judge_set(x, sets[i].value, sets[i].set);
    }
    if (p->special) {
        x = add(out, LP_COND_SPECIAL, LP_FIELD_SPECIAL);
        x->set = p->special;
        if (!pr->special_known) {
            unknown(x, LP_R_MISSING);
        } else {
            x->value = pr->special;
            int in = (pr->special & p->special) != 0;
            x->status = in ? LP_MET : LP_FAILED;
            x->code = in ? LP_R_IN_SET : LP_R_NOT_IN_SET;
        }
    }
    const struct {
        uint32_t set;
        int cond, field, value;
    } sets2[] = {
        {p->marital, LP_COND_MARITAL, LP_FIELD_MARITAL, pr->marital},
        {p->housing, LP_COND_HOUSING, LP_FIELD_HOUSING, pr->housing},
    };
    for (size_t i = 0; i < LP_ARRAY_SIZE(sets2); i++) {
        if (!sets2[i].set) continue;
        x = add(out, sets2[i].cond, sets2[i].field);
        x->set = sets2[i].set;
        if (!sets2[i].value)
            unknown(x, LP_R_MISSING);
        else
            judge_set(x, sets2[i].value, sets2[i].set);
    }
    if (p->extra) {
        x = add(out, LP_COND_EXTRA, LP_FIELD_NONE);
        unknown(x, LP_R_TEXT);
    }

    int failed = 0, unk = 0;
    for (uint32_t i = 0; i < out->nreasons; i++) {
        x = &out->reasons[i];
        if (x->status == LP_FAILED) failed = 1;
        if (x->status == LP_UNKNOWN) {
            unk = 1;
            if (x->field) out->missing |= (uint16_t)LP_SET(x->field);
        }
    }
    out->eligibility = failed ? LP_INELIGIBLE : unk ? LP_POSSIBLE : LP_ELIGIBLE;
    out->period = (uint8_t)lp_policy_period(p, today);
    out->score = lp_match_score(p, pr, out->eligibility, today);
}

static int cond_count(const lp_policy *p)
{
    return !!(p->age_min || p->age_max) + !!p->nregions + !!(p->income_min || p->income_max) +
           !!p->median_pct + !!p->monthly_max + !!(p->household_min || p->household_max) +
           !!p->employment + !!p->education + !!p->major + !!p->special + !!p->marital +
           !!p->housing + !!p->extra;
}

static int region_level(const lp_policy *p)
{
    int level = 0;
    for (uint32_t i = 0; i < p->nregions; i++) {
        int l = p->regions[i] >= 10000 ? 2 : 1;
        if (l > level) level = l;
    }
    return level;
}

int lp__static_score(const lp_policy *p)
{
    return region_level(p) * 20 + cond_count(p) * 5;
}

int lp__period_bonus(const lp_policy *p, int32_t today, int32_t today_day)
{
    switch (lp_policy_period(p, today)) {
    case LP_PERIOD_CLOSED:
        return -300;
    case LP_PERIOD_UPCOMING:
        return 0;
    default:
        if (!p->apply_end) return 5;
        int32_t left = lp__day_number(p->apply_end) - today_day;
        return left <= 7 ? 60 : left <= 30 ? 30 : 10;
    }
}

int32_t lp_match_score(const lp_policy *p, const lp_profile *pr, int eligibility, int32_t today)
{
    int32_t s = eligibility == LP_ELIGIBLE ? 1000 : eligibility == LP_POSSIBLE ? 500 : 0;
    s += lp__static_score(p);
    if (p->category && (pr->interests & LP_SET(p->category))) s += 100;
    return s + lp__period_bonus(p, today, lp__day_number(today));
}
