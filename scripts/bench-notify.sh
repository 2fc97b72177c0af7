#!/usr/bin/env bash
# bench-notify.sh — reverse matching + notification inserts for one new
# policy against 100,000 profiles (wired as `scripts/bench notify`).
#
# Starts a throwaway PostgreSQL and Redis (scripts/services in a temp dir),
# migrates, seeds PROFILES users with varied profiles (default 100000) and
# two policies (one with conditions, one everyone is eligible for), then runs bench/notify_bench.lua through `lifeplan run` with
# the real notification module. Prints index build, reverse matching (with a
# SQL filter as the baseline), insert and re-run (deduped) times.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PROFILES=${PROFILES:-100000}

if ! declare -F bench_services >/dev/null; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j2 >/dev/null
  BENCH_TMP=$(mktemp -d /tmp/lifeplan-bench.XXXXXX)
  chmod 755 "$BENCH_TMP"
  trap '"$ROOT/scripts/services" stop "$BENCH_TMP/services" >/dev/null 2>&1 || true; rm -rf "$BENCH_TMP"' EXIT INT TERM
  bench_services() {
    "$ROOT/scripts/services" start "$BENCH_TMP/services" >/dev/null
    eval "$("$ROOT/scripts/services" env "$BENCH_TMP/services")"
    export DATABASE_URL REDIS_URL
    build/lifeplan migrate >/dev/null
  }
fi
bench_services

echo "seeding $PROFILES profiles"
psql -q -v ON_ERROR_STOP=1 -v n="$PROFILES" "$DATABASE_URL" <<'SQL'
INSERT INTO users (email, password_hash)
SELECT 'bench' || i || '@example.com', 'x' FROM generate_series(1, :n) i;
INSERT INTO user_profiles (user_id, birth_date, region_code, employment_status, education,
                           household_size, housing_type, annual_income, special_status)
SELECT u.id,
       CASE WHEN u.id % 17 = 0 THEN NULL ELSE DATE '1980-01-01' + ((u.id * 7919) % 9500)::int END,
       (ARRAY['11680', '11110', '26110', '41135', '28185', '11', '41', '30', '27', '50'])[1 + u.id % 10],
       CASE WHEN u.id % 13 = 0 THEN NULL
            ELSE (ARRAY['employed', 'unemployed', 'self_employed', 'freelancer', 'founder'])[1 + (u.id / 10) % 5] END,
       (ARRAY['high_school_graduate', 'university_student', 'university_graduate'])[1 + u.id % 3],
       1 + u.id % 4,
       (ARRAY['monthly_rent', 'jeonse', 'with_parents', 'own_home'])[1 + (u.id / 3) % 4],
       CASE WHEN u.id % 11 = 0 THEN NULL ELSE ((u.id * 104729) % 60000000)::bigint END,
       CASE WHEN u.id % 7 = 0 THEN ARRAY['woman'] ELSE '{}'::text[] END
  FROM users u;
INSERT INTO policies (source, external_id, title, category, region_codes, age_min, age_max,
                      employment_codes, apply_period, apply_start, apply_end, raw, content_hash)
VALUES ('bench', 'bench-new', '청년 구직 활동 지원금', 'jobs', '{11,41}', 19, 34, '{unemployed,freelancer}',
        'fixed', DATE '2026-01-01', DATE '2026-12-31', '{}', 'bench'),
       ('bench', 'bench-all', '전 국민 대상 정책', 'welfare', '{}', NULL, NULL, '{}',
        'always', NULL, NULL, '{}', 'bench-all');
ANALYZE;
SQL

MODULES_DIR="$ROOT/modules" LOG_REQUESTS=0 log=$(mktemp /tmp/lifeplan-bench-notify.XXXXXX)
if ! build/lifeplan run bench/notify_bench.lua 2026-06-01 2>"$log"; then cat "$log"; rm -f "$log"; exit 1; fi
rm -f "$log"
