-- 0001_users: accounts and the profile the policy matcher reads.
--
-- Conventions for every migration: ids are BIGINT identities, money is BIGINT
-- won, timestamps are timestamptz, enumerations are text with a CHECK listing
-- the codes of ../shared/API.md (text, not PostgreSQL enums or domains, so the
-- driver sees plain text and adding a code is a one-line constraint change).

-- Keeps updated_at honest on every UPDATE, whatever the module forgets.
CREATE FUNCTION lp_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- users: one row per account. Emails are unique case-insensitively (the index
-- on lower(email)); look them up with WHERE lower(email) = lower($1).
-- Deleting a user cascades to everything of theirs.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    password_hash text NOT NULL,                       -- argon2id string from libsodium
    name          text CHECK (char_length(name) <= 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();

-- user_profiles: one row per user, created at registration. NULL means "not
-- given" (the matcher answers "possible" for conditions on it); for the two
-- lists, NULL is unknown and '{}' is "none of these". Codes are API.md's.
-- version increases on every change (the module bumps it); recommendations
-- and their cache key quote it.
CREATE TABLE user_profiles (
    user_id           bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    birth_date        date CHECK (birth_date >= DATE '1900-01-01'),
    region_code       text CHECK (region_code ~ '^[0-9]{2}([0-9]{3})?$'),
    employment_status text CHECK (employment_status IN ('employed', 'self_employed', 'unemployed',
                          'freelancer', 'day_laborer', 'founder', 'short_term', 'farmer', 'other')),
    education         text CHECK (education IN ('below_high_school', 'high_school_student',
                          'high_school_expected', 'high_school_graduate', 'university_student',
                          'university_expected', 'university_graduate', 'graduate_degree', 'other')),
    major             text CHECK (major IN ('humanities', 'social', 'business', 'natural',
                          'engineering', 'arts', 'agriculture', 'other')),
    special_status    text[] CHECK (special_status <@ ARRAY['sme_employee', 'woman',
                          'basic_livelihood', 'single_parent', 'disabled', 'farmer', 'soldier',
                          'local_talent']::text[]),
    marital_status    text CHECK (marital_status IN ('single', 'married')),
    household_size    smallint CHECK (household_size BETWEEN 1 AND 10),
    housing_type      text CHECK (housing_type IN ('own_home', 'jeonse', 'monthly_rent',
                          'with_parents', 'dormitory', 'other')),
    annual_income     bigint CHECK (annual_income >= 0),  -- won a year, as the user gave it
    interests         text[] CHECK (interests <@ ARRAY['jobs', 'housing', 'education', 'welfare',
                          'participation']::text[]),
    version           bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER user_profiles_touch BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();
