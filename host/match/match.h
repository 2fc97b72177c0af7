/* match.h — the policy-matching engine: which youth policies fit a profile.
 *
 * Pure computation, no I/O, no Lua, no allocation on the matching path. A
 * policy carries optional conditions (absent = no restriction); a profile
 * carries optional fields (absent = unknown). Judging one policy against one
 * profile gives, per condition, met / failed / unknown with a reason code and
 * the numbers a caller needs to write the reason in Korean, and overall:
 *
 *   eligible    every condition is met;
 *   possible    nothing failed, but some condition is unknown (a profile
 *               field is missing — listed in `missing` — or the condition
 *               exists only as free text the user must check);
 *   ineligible  some condition failed.
 *
 * lp_match_eval judges one policy directly. An lp_match_index compiles a
 * policy set into per-attribute bitsets (one bitset per enum value, per age,
 * per household size, per income bucket, per region) so that matching one
 * profile is a few word-wide AND/ORs, exact checks on a few survivors, and a
 * top-K selection; reasons are computed only for the K results returned.
 * An lp_profile_index does the reverse: one policy against many profiles.
 *
 * Both indexes are immutable once built and safe to share between threads.
 * An lp_match_slot publishes the current policy index: readers acquire a
 * reference, a writer swaps a new index in with one atomic exchange, and the
 * old index is freed when its last reader releases it.
 *
 * Dates are integers YYYYMMDD. Age is 만 나이 on `today`: (today - birth)
 * / 10000, so it increases on the birthday itself; someone born on 02-29
 * turns a year older on 03-01 in common years (민법 §160③). A birth date
 * after `today` is treated as unknown. Money is integer won. */
#ifndef LP_MATCH_H
#define LP_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../lp.h"

/* ---- Codes. 0 is always "unknown / none"; values are bit positions in sets.
 * The string names (lp_match_code_name) are the API's profile codes. */

enum lp_code_kind {
    LP_KIND_EMPLOYMENT, /* employed self_employed unemployed freelancer day_laborer founder
                           short_term farmer other                                      */
    LP_KIND_EDUCATION,  /* below_high_school high_school_student high_school_expected
                           high_school_graduate university_student university_expected
                           university_graduate graduate_degree other                    */
    LP_KIND_MAJOR,      /* humanities social business natural engineering arts agriculture
                           other                                                        */
    LP_KIND_SPECIAL,    /* sme_employee woman basic_livelihood single_parent disabled farmer
                           soldier local_talent                                         */
    LP_KIND_MARITAL,    /* single married                                               */
    LP_KIND_HOUSING,    /* own_home jeonse monthly_rent with_parents dormitory other    */
    LP_KIND_CATEGORY,   /* jobs housing education welfare participation               */
    LP_KIND__COUNT
};

/* Number of values of a kind (codes are 1..count). */
int lp_match_code_count(int kind);
/* "employed" → 1 etc.; 0 when the name is unknown. */
int lp_match_code_parse(int kind, const char *name, size_t len);
/* 1 → "employed"; NULL when out of range. */
const char *lp_match_code_name(int kind, int code);
/* 1 → "재직자"; NULL when out of range. */
const char *lp_match_code_label(int kind, int code);

#define LP_SET(code) (1u << (code)) /* a set of codes is a bitmask of LP_SET(code) */

/* Profile fields a condition may need; `missing` is a bitmask of LP_SET(field). */
enum lp_field {
    LP_FIELD_NONE,
    LP_FIELD_BIRTH,      /* birthDate        */
    LP_FIELD_REGION,     /* regionCode       */
    LP_FIELD_INCOME,     /* annualIncome     */
    LP_FIELD_HOUSEHOLD,  /* householdSize    */
    LP_FIELD_EMPLOYMENT, /* employmentStatus */
    LP_FIELD_EDUCATION,  /* education        */
    LP_FIELD_MAJOR,      /* major            */
    LP_FIELD_SPECIAL,    /* specialStatus    */
    LP_FIELD_MARITAL,    /* maritalStatus    */
    LP_FIELD_HOUSING,    /* housingType      */
    LP_FIELD__COUNT
};
const char *lp_match_field_name(int field); /* the API's camelCase name */

/* Conditions, in the order results list them. */
enum lp_cond {
    LP_COND_AGE,        /* age in [min, max]                                    */
    LP_COND_REGION,     /* lives in one of the listed 시도/시군구               */
    LP_COND_INCOME,     /* annual income in [min, max]                          */
    LP_COND_MEDIAN,     /* monthly income ≤ pct% of 기준 중위소득(year, household) */
    LP_COND_MONTHLY,    /* monthly income (annual / 12) ≤ cap                   */
    LP_COND_HOUSEHOLD,  /* household size in [min, max]                        */
    LP_COND_EMPLOYMENT, /* employment status in set                             */
    LP_COND_EDUCATION,  /* education level in set                               */
    LP_COND_MAJOR,      /* major in set                                         */
    LP_COND_SPECIAL,    /* has at least one of the special statuses in set      */
    LP_COND_MARITAL,    /* marital status in set                                */
    LP_COND_HOUSING,    /* housing type in set                                  */
    LP_COND_EXTRA,      /* a condition known only as free text: always unknown  */
    LP_COND__COUNT
};
const char *lp_match_cond_name(int cond); /* "age", "region", "income", ... */

enum lp_cond_status { LP_MET = 1, LP_FAILED, LP_UNKNOWN };
const char *lp_match_cond_status_name(int status); /* "met" "failed" "unknown" */

/* Why a condition has its status (machine-readable; lp_match_reason_name). */
enum lp_reason {
    LP_R_IN_RANGE = 1,     /* value within [min, max]                               */
    LP_R_BELOW_MIN,        /* value < min                                           */
    LP_R_ABOVE_MAX,        /* value > max                                           */
    LP_R_IN_SET,           /* value (or one of the statuses) is in the policy's set */
    LP_R_NOT_IN_SET,       /* it is not                                             */
    LP_R_MISSING,          /* the profile lacks `field`                             */
    LP_R_REGION_LISTED,    /* the profile's 시군구 is listed (min = that code)      */
    LP_R_REGION_SIDO,      /* the profile's 시도 is listed whole (min = the 시도)   */
    LP_R_REGION_OUTSIDE,   /* neither                                               */
    LP_R_REGION_IMPRECISE, /* profile has only a 시도; policy lists some of its 시군구 */
    LP_R_TEXT,             /* free-text condition the user must check               */
};
const char *lp_match_reason_name(int reason); /* "in_range", "below_min", ... */

/* One judged condition. Which numbers are set depends on the condition:
 *   age        value = age, min/max = bounds (0 = open)
 *   region     value = profile code, min = matched policy code (if met)
 *   income     value = annual income, min/max = bounds (0 = open)
 *   median     value = monthly income (annual / 12), pct, year, household,
 *              max = the monthly limit in won (pct% of the table value)
 *   monthly    value = monthly income (annual / 12), max = cap
 *   household  value = size, min/max = bounds (0 = open)
 *   sets       value = the profile's code (special: its set), set = policy's set */
typedef struct lp_match_reason {
    uint8_t cond;   /* enum lp_cond                            */
    uint8_t status; /* enum lp_cond_status                     */
    uint8_t code;   /* enum lp_reason                          */
    uint8_t field;  /* enum lp_field the condition depends on  */
    uint16_t pct;   /* median: share of 기준 중위소득 in %     */
    uint16_t year;  /* median: table year used                 */
    uint32_t set;   /* sets: accepted codes, LP_SET(code) bits */
    uint32_t household;
    int64_t value;
    int64_t min, max;
} lp_match_reason;

enum lp_eligibility { LP_INELIGIBLE = 1, LP_POSSIBLE, LP_ELIGIBLE };
const char *lp_match_eligibility_name(int e); /* "ineligible" "possible" "eligible" */

enum lp_period { LP_PERIOD_OPEN = 1, LP_PERIOD_UPCOMING, LP_PERIOD_CLOSED };
const char *lp_match_period_name(int p); /* "open" "upcoming" "closed" */

typedef struct lp_match_result {
    uint32_t policy_id;
    uint32_t index_pos;  /* position in the index (lp_match_run only)     */
    uint8_t eligibility; /* enum lp_eligibility                          */
    uint8_t period;      /* enum lp_period on `today`                    */
    uint16_t missing;    /* LP_SET(lp_field) of fields that would decide */
    int32_t score;       /* higher ranks first (lp_match_score)          */
    uint32_t nreasons;   /* one per condition the policy has             */
    lp_match_reason reasons[LP_COND__COUNT];
} lp_match_result;

/* ---- Input. */

typedef struct lp_policy {
    uint32_t id;               /* caller's id (unique within an index)             */
    uint8_t category;          /* LP_KIND_CATEGORY code, 0 = none                  */
    uint8_t age_min, age_max;  /* inclusive, 0 = open; at most LP_AGE_LIMIT        */
    uint8_t household_min;     /* inclusive, 0 = open; at most LP_HOUSEHOLD_LIMIT  */
    uint8_t household_max;     /* inclusive, 0 = open                              */
    const uint32_t *regions;   /* 2-digit 시도 / 5-digit 시군구; none = nationwide */
    uint32_t nregions;         /* old 강원 42 / 전북 45 codes are accepted          */
    int64_t income_min;        /* annual won, inclusive, 0 = open                  */
    int64_t income_max;        /* annual won, inclusive, 0 = open                  */
    uint16_t median_pct;       /* ≤ pct% of 기준 중위소득, 0 = no such condition   */
    uint16_t median_year;      /* the table's year (nearest known year is used)    */
    int64_t monthly_max;       /* monthly wage cap in won, 0 = none                */
    uint32_t employment;       /* accepted LP_KIND_EMPLOYMENT set, 0 = any          */
    uint32_t education, major; /* accepted sets, 0 = any                           */
    uint32_t special;          /* requires one of these statuses, 0 = none needed  */
    uint32_t marital, housing; /* accepted sets, 0 = any                           */
    int32_t apply_start;       /* YYYYMMDD, 0 = open-ended                          */
    int32_t apply_end;         /* YYYYMMDD, 0 = open-ended (both 0: always open)    */
    uint8_t closed;            /* the source marks applications closed             */
    uint8_t extra;             /* has a free-text condition (always unknown)       */
} lp_policy;

#define LP_AGE_LIMIT       150
#define LP_INCOME_LIMIT    10000000000000LL /* 10조 won: larger incomes are judged as this */
#define LP_HOUSEHOLD_LIMIT 20

typedef struct lp_profile {
    uint32_t id;        /* caller's id (profile indexes report it)               */
    int32_t birth;      /* YYYYMMDD, 0 = unknown                                 */
    uint32_t region;    /* 2-digit 시도 or 5-digit 시군구 code, 0 = unknown      */
    int64_t income;     /* annual won, < 0 = unknown (capped at LP_INCOME_LIMIT)  */
    uint8_t household;  /* 0 = unknown                                           */
    uint8_t employment; /* codes, 0 = unknown                                    */
    uint8_t education, major, marital, housing;
    uint8_t special_known; /* 1 when `special` is known (an empty set is known)    */
    uint32_t special;      /* LP_SET(code) statuses held                            */
    uint32_t interests;    /* LP_SET(category) — ranking only                       */
} lp_profile;

/* ---- Reference data and helpers. */

/* 기준 중위소득, monthly won, for a year and household size (≥ 1). Known
 * years: 2025 and 2026; other years use the nearest known one. Households
 * over 7 add the 6→7 step per person. Returns 0 for household < 1. */
int64_t lp_median_income(int year, int household);
/* The table year lp_median_income uses for `year`. */
int lp_median_year(int year);

/* Maps 42xxx → 51xxx (강원) and 45xxx → 52xxx (전북); 0 for an invalid code
 * (anything but 2 or 5 digits with a plausible 시도). */
uint32_t lp_region_normalize(uint32_t code);

/* 1 when YYYYMMDD is a real calendar date. */
int lp_date_valid(int32_t ymd);
/* 만 나이 on `today`, or -1 when birth is 0 or after today. */
int lp_age_on(int32_t birth, int32_t today);

/* Application period status on `today`. */
int lp_policy_period(const lp_policy *p, int32_t today);

/* Checks a policy's values (bounds, codes, dates); 0 or LP_EINVAL. */
int lp_policy_validate(const lp_policy *p);

/* Judges one policy; fills every field of *out. The policy's regions need
 * not be normalized. */
void lp_match_eval(const lp_policy *p, const lp_profile *pr, int32_t today, lp_match_result *out);

/* The ranking score:
 *   1000 eligible / 500 possible
 * + 40 for a 시군구-limited policy, 20 for a 시도-level one (0 nationwide)
 * + 5 per condition the policy has (more specific to the user)
 * + 100 when its category is one of the profile's interests
 * + period: open with ≤ 7 days left +60, ≤ 30 days +30, other fixed open +10,
 *   always open +5, upcoming 0, closed −300. */
int32_t lp_match_score(const lp_policy *p, const lp_profile *pr, int eligibility, int32_t today);

/* ---- Policy index. */

typedef struct lp_policy_index lp_match_index;

/* Compiles `n` policies (copied; the caller keeps its arrays). The index
 * starts with one reference, owned by the caller. LP_EINVAL names the first
 * bad policy in *bad (its position) when bad is not NULL. */
int lp_match_index_build(lp_match_index **out, const lp_policy *policies, size_t n, size_t *bad);
/* Takes / drops a reference; the last release frees the index. */
void lp_match_index_retain(lp_match_index *idx);
void lp_match_index_release(lp_match_index *idx);

size_t lp_match_index_count(const lp_match_index *idx);
size_t lp_match_index_memory(const lp_match_index *idx); /* bytes held */
/* The policy with this id (NULL if absent); valid while the index is held. */
const lp_policy *lp_match_index_find(const lp_match_index *idx, uint32_t policy_id);

enum {
    LP_MATCH_POSSIBLE = 1 << 0,    /* include `possible` results (else eligible only) */
    LP_MATCH_SKIP_CLOSED = 1 << 1, /* leave out policies closed on `today`            */
};

typedef struct lp_match_query {
    const lp_profile *profile;
    int32_t today;       /* YYYYMMDD                                     */
    unsigned flags;      /* LP_MATCH_*                                   */
    uint32_t categories; /* LP_SET(category) to keep, 0 = all            */
} lp_match_query;

typedef struct lp_match_stats {
    size_t eligible; /* matching policies in total (not only the top K) */
    size_t possible; /* counted even without LP_MATCH_POSSIBLE          */
} lp_match_stats;

/* Writes the best min(k, matches) results into out[0..], best first (score
 * descending, then policy id ascending), reasons included; returns how many
 * were written or LP_EINVAL. Allocates nothing. */
int lp_match_run(const lp_match_index *idx, const lp_match_query *q, lp_match_result *out, size_t k,
                 lp_match_stats *stats);

/* ---- Publishing the current index. */

typedef struct lp_match_slot {
    _Atomic(lp_match_index *) current;
    _Atomic(unsigned long) entering; /* readers between load and retain */
} lp_match_slot;

void lp_match_slot_init(lp_match_slot *slot);
/* The current index with a reference the caller releases, or NULL. */
lp_match_index *lp_match_slot_acquire(lp_match_slot *slot);
/* Publishes idx (taking over the caller's reference; NULL empties the slot)
 * and drops the slot's reference to the previous index. Readers never block;
 * the writer waits only for readers inside the few instructions of acquire. */
void lp_match_slot_swap(lp_match_slot *slot, lp_match_index *idx);
/* Releases the current index. */
void lp_match_slot_destroy(lp_match_slot *slot);

/* ---- Reverse matching: one policy against many profiles. */

typedef struct lp_profile_index lp_profile_index;

/* Compiles `n` profiles (copied). Refcounted like the policy index. */
int lp_profile_index_build(lp_profile_index **out, const lp_profile *profiles, size_t n,
                           size_t *bad);
void lp_profile_index_retain(lp_profile_index *idx);
void lp_profile_index_release(lp_profile_index *idx);
size_t lp_profile_index_count(const lp_profile_index *idx);
size_t lp_profile_index_memory(const lp_profile_index *idx);

typedef struct lp_reverse_out {
    uint32_t *eligible; /* profile ids, in index order; capacity below */
    size_t eligible_cap;
    size_t eligible_n;  /* total found (may exceed the capacity)       */
    uint32_t *possible; /* NULL to skip                               */
    size_t possible_cap;
    size_t possible_n;
} lp_reverse_out;

/* Lists the profiles for which the policy is eligible / possible on
 * `today`; the same judgement as lp_match_eval. Allocates nothing. */
int lp_reverse_run(const lp_profile_index *idx, const lp_policy *p, int32_t today,
                   lp_reverse_out *out);

#endif
