#!/usr/bin/env bash
# bench-ledger.sh — the ledger's read paths under load (wired as
# `scripts/bench ledger`; run directly, it re-enters through scripts/bench,
# which provides bench_services / bench_server / wrk_run and the cleanup).
#
# Starts a throwaway PostgreSQL and Redis, migrates, registers one user
# through POST /api/v1/auth/register, seeds 1,000 transactions in one month
# (every category, days spread over the month) and a budget line per
# expense category plus the overall line, then runs wrk (with a small Lua
# script adding the Authorization header) against:
#   GET /api/v1/categories                      baseline: a Lua route, no I/O
#   GET /api/v1/transactions?month=             first page (100) + whole-month summary
#   GET /api/v1/transactions?month=&limit=1000  the whole month in one page
#   GET /api/v1/budgets?month=                  16 lines + the overall line
# and prints requests/s, p50, p99 and the ratio to the baseline.
# BENCH_SECONDS (default 5) and BENCH_CONNS (default 32) tune the runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! declare -F bench_server >/dev/null; then exec "$ROOT/scripts/bench" ledger "$@"; fi
cd "$ROOT"
MONTH=2026-10
CONNS=${BENCH_CONNS:-32}

bench_services
bench_server
# this script runs as a child of scripts/bench, whose cleanup cannot see
# SERVER_PID: stop the server here
trap 'kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true' EXIT
BASE="http://127.0.0.1:$BENCH_PORT"

email="bench-ledger-$$@example.com"
reg=$(curl -fsS -X POST "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"bench password 1\"}")
TOKEN=$(printf '%s' "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
USER_ID=$(printf '%s' "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["id"])')

psql -X -q -v ON_ERROR_STOP=1 -v uid="$USER_ID" -v month="$MONTH-01" "$DATABASE_URL" <<'SQL'
WITH cats(i, type, category) AS (VALUES
  (0, 'expense', 'food'), (1, 'expense', 'cafe'), (2, 'expense', 'transport'),
  (3, 'expense', 'housing'), (4, 'expense', 'utilities'), (5, 'expense', 'telecom'),
  (6, 'expense', 'shopping'), (7, 'expense', 'health'), (8, 'expense', 'education'),
  (9, 'expense', 'culture'), (10, 'expense', 'travel'), (11, 'expense', 'insurance'),
  (12, 'expense', 'savings'), (13, 'expense', 'loan'), (14, 'expense', 'gift'),
  (15, 'expense', 'etc'), (16, 'income', 'salary'), (17, 'income', 'side'),
  (18, 'income', 'allowance'), (19, 'income', 'benefit'), (20, 'income', 'interest'),
  (21, 'income', 'etc_income'))
INSERT INTO transactions (user_id, type, amount, category, occurred_on, memo)
SELECT :uid, c.type, 1000 + (g * 7919) % 90000, c.category,
       (:'month'::date + (g % 31)), '벤치마크 ' || g
  FROM generate_series(1, 1000) g JOIN cats c ON c.i = g % 22;
INSERT INTO budgets (user_id, month, category, amount)
SELECT :uid, :'month'::date, category, 500000
  FROM unnest(ARRAY['food', 'cafe', 'transport', 'housing', 'utilities', 'telecom', 'shopping',
                    'health', 'education', 'culture', 'travel', 'insurance', 'savings', 'loan',
                    'gift', 'etc']) AS category;
INSERT INTO budgets (user_id, month, category, amount) VALUES (:uid, :'month'::date, NULL, 5000000);
ANALYZE transactions; ANALYZE budgets;
SQL

cat >"$BENCH_TMP/auth.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LEDGER_TOKEN")
LUA
export LEDGER_TOKEN=$TOKEN

# Sanity: the routes answer what they should before they are measured.
n=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/transactions?month=$MONTH&limit=1000" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["items"]), sum(c["count"] for c in d["summary"]["byCategory"]))')
[ "$n" = "1000 1000" ] || { echo "seeding failed: items/count = $n"; exit 1; }

echo "ledger: 1 user, 1000 transactions in $MONTH, 17 budget lines; wrk c=$CONNS ${BENCH_SECONDS:-5}s each"
wrk_run "GET /categories (baseline)" "$CONNS" "$BASE/api/v1/categories"
base=$WRK_RPS
ratio() { awk -v r="$WRK_RPS" -v b="$base" 'BEGIN { printf "  → %.2f of the baseline\n", r / b }'; }
wrk_run "GET /transactions?month=" "$CONNS" "$BASE/api/v1/transactions?month=$MONTH" -s "$BENCH_TMP/auth.lua"
ratio
wrk_run "GET /transactions limit=1000" "$CONNS" "$BASE/api/v1/transactions?month=$MONTH&limit=1000" -s "$BENCH_TMP/auth.lua"
ratio
wrk_run "GET /budgets?month=" "$CONNS" "$BASE/api/v1/budgets?month=$MONTH" -s "$BENCH_TMP/auth.lua"
ratio
echo "peak RSS: $(peak_rss)"
