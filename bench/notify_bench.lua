-- bench/notify_bench.lua — run by scripts/bench-notify.sh through
-- `lifeplan run`, against a database seeded with N profiles and the policy
-- external_id 'bench-new'. Times, for that one new policy: building the
-- profile index (once per profile change, not per policy), reverse matching
-- with lp.match, inserting the notifications, and a re-run (all deduped).
-- A SQL filter over user_profiles with the same conditions is the baseline
-- for the matching step.
local db      = require "lp.db"
local timer   = require "lp.timer"
local jobs    = require "notification.jobs"
local service = require "notification.service"
local types   = require "notification.types"

local today = ...
local now = timer.monotonic_ms

local function best_of(n, fn)
  local best, out = math.huge, nil
  for _ = 1, n do
    local t = now()
    out = fn()
    best = math.min(best, now() - t)
  end
  return best, out
end

local row = assert(db.query("SELECT " .. jobs.POLICY_COLS .. " FROM policies WHERE external_id = 'bench-new'")[1])
local policy = jobs.match_policy(row)

local t = now()
local idx = jobs.profile_index()
local build_ms = now() - t

local reverse_ms, r = best_of(5, function() return idx:reverse(policy, { today = today }) end)

-- the same conditions in SQL (age from birth date, region prefix, employment)
local sql_ms, sql = best_of(5, function()
  return db.query([[
    SELECT user_id FROM user_profiles
     WHERE birth_date IS NOT NULL
       AND date_part('year', age($1::date, birth_date)) BETWEEN $2 AND $3
       AND left(region_code, 2) = ANY($4::text[])
       AND employment_status = ANY($5::text[])]], today, row.age_min, row.age_max,
    "{" .. table.concat(row.region_codes, ",") .. "}",
    "{" .. table.concat(row.employment_codes, ",") .. "}")
end)

t = now()
local created = service.create_for_users(r.eligible, types.policy_match(row))
local insert_ms = now() - t

t = now()
local again = service.create_for_users(r.eligible, types.policy_match(row))
local rerun_ms = now() - t

io.stdout:write(string.format(
  "notify: profiles=%d eligible=%d possible=%d sql_rows=%d\n" ..
  "notify: index_build_ms=%.1f (once per profile change) index_kb=%.0f\n" ..
  "notify: reverse_ms=%.2f sql_filter_ms=%.1f (%.0fx)\n" ..
  "notify: insert_ms=%.1f created=%d (%.0f rows/s)\n" ..
  "notify: reverse+insert_ms=%.1f\n" ..
  "notify: rerun_insert_ms=%.1f created=%d (deduped)\n",
  idx:count(), r.eligibleCount, r.possibleCount, #sql,
  build_ms, idx:memory() / 1024,
  reverse_ms, sql_ms, sql_ms / math.max(reverse_ms, 0.001),
  insert_ms, #created, #created / math.max(insert_ms / 1000, 1e-6),
  reverse_ms + insert_ms,
  rerun_ms, #again))
assert(#created == r.eligibleCount, "every eligible user gets one notification")
assert(#again == 0, "a re-run creates none")
