-- bench/notify_bench.lua — run by scripts/bench-notify.sh through
-- `lifeplan run`, against a database seeded with N profiles and two policies:
-- 'bench-new' (age, region and employment conditions) and 'bench-all' (none:
-- every profile is eligible, the worst case for inserts). Times building the
-- profile index (once per profile change, not per policy), then per policy
-- reverse matching with lp.match, inserting the notifications, and a re-run
-- (all deduped).
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

-- the SQL baseline: the same conditions over user_profiles (age from birth
-- date, region prefix, employment); nil for a policy without conditions
local function sql_filter(row)
  if not row.age_min then return nil end
  return best_of(5, function()
    return db.query([[
      SELECT user_id FROM user_profiles
       WHERE birth_date IS NOT NULL
         AND date_part('year', age($1::date, birth_date)) BETWEEN $2 AND $3
         AND left(region_code, 2) = ANY($4::text[])
         AND employment_status = ANY($5::text[])]], today, row.age_min, row.age_max,
      "{" .. table.concat(row.region_codes, ",") .. "}",
      "{" .. table.concat(row.employment_codes, ",") .. "}")
  end)
end

local t = now()
local idx = jobs.profile_index()
io.stdout:write(string.format("notify: profiles=%d index_build_ms=%.1f (once per profile change) index_kb=%.0f\n",
                              idx:count(), now() - t, idx:memory() / 1024))

for _, ext in ipairs { "bench-new", "bench-all" } do
  local row = assert(db.query("SELECT " .. jobs.POLICY_COLS .. " FROM policies WHERE external_id = $1", ext)[1])
  local policy = jobs.match_policy(row)
  local reverse_ms, r = best_of(5, function() return idx:reverse(policy, { today = today }) end)
  local sql_ms, sql = sql_filter(row)

  t = now()
  local created = service.create_for_users(r.eligible, types.policy_match(row))
  local insert_ms = now() - t
  t = now()
  local again = service.create_for_users(r.eligible, types.policy_match(row))
  local rerun_ms = now() - t

  io.stdout:write(string.format("notify[%s]: eligible=%d possible=%d\n", ext, r.eligibleCount, r.possibleCount))
  if sql_ms then
    io.stdout:write(string.format("notify[%s]: reverse_ms=%.2f sql_filter_ms=%.1f (%.0fx) sql_rows=%d\n", ext,
                                  reverse_ms, sql_ms, sql_ms / math.max(reverse_ms, 0.001), #sql))
  else
    io.stdout:write(string.format("notify[%s]: reverse_ms=%.2f\n", ext, reverse_ms))
  end
  io.stdout:write(string.format(
    "notify[%s]: insert_ms=%.1f created=%d (%.0f rows/s); reverse+insert_ms=%.1f; rerun_ms=%.1f created=%d (deduped)\n",
    ext, insert_ms, #created, #created / math.max(insert_ms / 1000, 1e-6), reverse_ms + insert_ms,
    rerun_ms, #again))
  assert(#created == r.eligibleCount, "every eligible user gets one notification")
  assert(#again == 0, "a re-run creates none")
  if sql then assert(#sql == r.eligibleCount, "the engine and SQL agree") end
end
