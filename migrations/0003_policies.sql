-- 0003_policies: collected youth policies in our normalised model, the
-- collector's bookkeeping (collect_logs, change_logs), the policy-set version
-- and favourites (user_policies). Source format: ../shared/POLICY_DATA.md.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- array_to_string is only STABLE (it calls type output functions); for text[]
-- it is in fact immutable, which generated columns and indexes require.
CREATE FUNCTION lp_text_join(a text[], sep text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN array_to_string(a, sep);

-- policy_status: the API's status of a policy on a given Seoul date.
-- Pass today explicitly: (now() AT TIME ZONE 'Asia/Seoul')::date.
CREATE FUNCTION lp_policy_status(apply_period text, apply_start date, apply_end date, today date)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN apply_period = 'closed' THEN 'closed'
    WHEN apply_period = 'always' OR apply_end IS NULL AND apply_start IS NULL THEN 'open'
    WHEN apply_start > today THEN 'upcoming'
    WHEN apply_end < today THEN 'closed'
    ELSE 'open'
END;

-- policies: one programme from one source, upserted by (source, external_id)
-- (온통청년: source 'ontong', external_id plcyNo). Conditions use the same codes
-- as user_profiles; an empty array or NULL bound means "no condition"
-- (제한없음). region_codes holds 5-digit 시군구 or 2-digit 시도 codes; '{}' is
-- nationwide (the collector turns "every 시군구" into '{}').
-- Income rule: income_kind says which columns apply —
--   'none'    no condition
--   'annual'  annual income in [income_min, income_max] won (either may be NULL)
--   'median'  at most income_median_pct % of 기준 중위소득 for the household
--             size, table of income_year (NULL = the current year)
--   'monthly' monthly income at most income_monthly_max won
--   'text'    only free text the collector could not parse ("possible")
-- income_text always keeps the source's original wording when there is one.
-- apply_period is the source's classification (fixed / always / closed);
-- the API status comes from lp_policy_status(), never a stored column, so it
-- cannot go stale. content_hash (of the normalised record) lets the collector
-- skip unchanged records; raw is the source record as received.
CREATE TABLE policies (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source             text NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]*$'),
    external_id        text NOT NULL CHECK (external_id <> ''),
    title              text NOT NULL CHECK (title <> ''),
    category           text NOT NULL CHECK (category IN ('jobs', 'housing', 'education', 'welfare',
                           'participation')),
    subcategory        text,
    summary            text,
    description        text,
    support_content    text,
    keywords           text[] NOT NULL DEFAULT '{}',
    agency             text,                           -- supervising (sprvsnInstCdNm)
    operating_agency   text,                           -- operating (operInstCdNm)
    region_codes       text[] NOT NULL DEFAULT '{}' CHECK (
                           lp_text_join(region_codes, ',') ~ '^([0-9]{2}([0-9]{3})?(,|$))*$'),
    age_min            smallint CHECK (age_min BETWEEN 0 AND 150),
    age_max            smallint CHECK (age_max BETWEEN 0 AND 150),
    income_kind        text NOT NULL DEFAULT 'none' CHECK (income_kind IN ('none', 'annual',
                           'median', 'monthly', 'text')),
    income_min         bigint CHECK (income_min >= 0),         -- won a year
    income_max         bigint CHECK (income_max >= 0),         -- won a year
    income_median_pct  smallint CHECK (income_median_pct BETWEEN 1 AND 1000),
    income_monthly_max bigint CHECK (income_monthly_max >= 0), -- won a month
    income_year        smallint CHECK (income_year BETWEEN 2000 AND 2100),
    income_text        text,
    employment_codes   text[] NOT NULL DEFAULT '{}' CHECK (employment_codes <@ ARRAY['employed',
                           'self_employed', 'unemployed', 'freelancer', 'day_laborer', 'founder',
                           'short_term', 'farmer', 'other']::text[]),
    education_codes    text[] NOT NULL DEFAULT '{}' CHECK (education_codes <@ ARRAY[
                           'below_high_school', 'high_school_student', 'high_school_expected',
                           'high_school_graduate', 'university_student', 'university_expected',
                           'university_graduate', 'graduate_degree', 'other']::text[]),
    major_codes        text[] NOT NULL DEFAULT '{}' CHECK (major_codes <@ ARRAY['humanities',
                           'social', 'business', 'natural', 'engineering', 'arts', 'agriculture',
                           'other']::text[]),
    special_codes      text[] NOT NULL DEFAULT '{}' CHECK (special_codes <@ ARRAY['sme_employee',
                           'woman', 'basic_livelihood', 'single_parent', 'disabled', 'farmer',
                           'soldier', 'local_talent', 'other']::text[]),
    marital_status     text CHECK (marital_status IN ('single', 'married')),  -- NULL: either
    housing_types      text[] NOT NULL DEFAULT '{}' CHECK (housing_types <@ ARRAY['own_home',
                           'jeonse', 'monthly_rent', 'with_parents', 'dormitory', 'other']::text[]),
    household_min      smallint CHECK (household_min BETWEEN 1 AND 10),
    household_max      smallint CHECK (household_max BETWEEN 1 AND 10),
    extra_conditions   text,                           -- addAplyQlfcCndCn, verbatim
    excluded_targets   text,                           -- ptcpPrpTrgtCn, verbatim
    apply_period       text NOT NULL DEFAULT 'fixed' CHECK (apply_period IN ('fixed', 'always',
                           'closed')),
    apply_start        date,
    apply_end          date,
    always_open        boolean GENERATED ALWAYS AS (apply_period = 'always') STORED,
    business_start     date,
    business_end       date,
    how_to_apply       text,
    selection_method   text,
    documents          text,
    apply_url          text,
    ref_urls           text[] NOT NULL DEFAULT '{}',
    source_url         text,                           -- the policy's page at the source
    source_created_at  timestamptz,                    -- frstRegDt
    source_updated_at  timestamptz,                    -- lastMdfcnDt
    raw                jsonb NOT NULL,
    content_hash       text NOT NULL,
    search_text        text GENERATED ALWAYS AS (title || ' ' || lp_text_join(keywords, ' ')
                           || ' ' || coalesce(description, '')) STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policies_source_external_id_key UNIQUE (source, external_id),
    CONSTRAINT policies_age_range_check CHECK (age_min <= age_max),
    CONSTRAINT policies_household_range_check CHECK (household_min <= household_max),
    CONSTRAINT policies_income_range_check CHECK (income_min <= income_max),
    CONSTRAINT policies_apply_range_check CHECK (apply_start <= apply_end),
    CONSTRAINT policies_income_rule_check CHECK (
        income_kind = 'none'
        OR income_kind = 'annual' AND (income_min IS NOT NULL OR income_max IS NOT NULL)
        OR income_kind = 'median' AND income_median_pct IS NOT NULL
        OR income_kind = 'monthly' AND income_monthly_max IS NOT NULL
        OR income_kind = 'text' AND income_text IS NOT NULL)
);
-- Korean substring search: search_text ILIKE '%' || $1 || '%' (escape % _ \
-- in $1). Patterns under three characters cannot use trigrams and scan.
CREATE INDEX policies_search_trgm_idx ON policies USING gin (search_text gin_trgm_ops);
CREATE INDEX policies_category_idx ON policies (category, id DESC);
CREATE INDEX policies_region_codes_idx ON policies USING gin (region_codes);
CREATE INDEX policies_apply_end_idx ON policies (apply_end);
CREATE TRIGGER policies_touch BEFORE UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();

-- policy_set: a single row whose version the collector bumps in the same
-- transaction as any policy change (UPDATE policy_set SET version = version
-- + 1 RETURNING version), then NOTIFYs with it. Recommendation caches are
-- keyed by it, so every host sees one number, not its own counter.
CREATE TABLE policy_set (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO policy_set DEFAULT VALUES;

-- collect_logs: one row per collector run, inserted at the start (status
-- 'running') and completed at the end. skipped_details lists the records
-- that could not be normalised: [{"externalId": ..., "reason": ...}].
CREATE TABLE collect_logs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source             text NOT NULL,
    source_ref         text,                           -- URL (without key) or file path
    dry_run            boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded',
                           'failed')),
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    fetched            integer NOT NULL DEFAULT 0 CHECK (fetched >= 0),
    inserted           integer NOT NULL DEFAULT 0 CHECK (inserted >= 0),
    updated            integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    unchanged          integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0),
    skipped            integer NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    skipped_details    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(skipped_details) = 'array'),
    error              text,
    policy_set_version bigint                          -- the version after this run
);
CREATE INDEX collect_logs_started_idx ON collect_logs (started_at DESC);

-- change_logs: one row per changed field of a policy the collector updated
-- (old → new, as JSON so arrays and numbers keep their type). Inserts are
-- counted in collect_logs, not logged field by field.
CREATE TABLE change_logs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy_id      bigint NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    collect_log_id bigint REFERENCES collect_logs (id) ON DELETE SET NULL,
    field          text NOT NULL,                      -- column name in policies
    old_value      jsonb,
    new_value      jsonb,
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_logs_policy_idx ON change_logs (policy_id, id DESC);
CREATE INDEX change_logs_collect_log_idx ON change_logs (collect_log_id);

-- user_policies: favourites, one per user and policy (POST is idempotent via
-- ON CONFLICT DO NOTHING). The deadline job joins it by policy.
CREATE TABLE user_policies (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    policy_id  bigint NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, policy_id)
);
CREATE INDEX user_policies_policy_idx ON user_policies (policy_id);
