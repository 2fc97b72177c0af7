-- notification/jobs.lua — the jobs that create notifications, and their
-- command line.
--
--   lifeplan jobs run deadlines [--today YYYY-MM-DD]
--   lifeplan jobs run policy_match [--today YYYY-MM-DD]
--   lifeplan jobs run push [--force]
--
-- (main.c runs this file as a task with the job name as the first argument;
-- required as the module "notification.jobs" it returns the job functions.)
--
-- policy_match  The collector NOTIFYs on CHANNEL after changing policies.
--   Every worker of every host listens; each claims the job_runs row
--   ('policy_match', <policy_set version>) and only the one that gets it
--   works: it reverse-matches each policy changed since the last finished
--   run against the index of every user profile (lp.match) and creates one
--   policy_match notification per eligible user and policy. Dedupe keys
--   ('policy_match:<policyId>') make a re-run, a second host or a restart
--   harmless. A tick also runs it, for NOTIFYs missed while a listener was
--   down and for runs whose host died (a 'running' claim older than
--   STALE_MINUTES is taken over).
-- deadlines  Daily from 09:00 Asia/Seoul (the first tick after it; the
--   claim ('deadlines', <Seoul date>) keeps it to one host), or on demand:
--   a reminder 7 days and 1 day before apply_end of every favourite.
-- push  The retry sweep for pushes that failed (each tick; --force ignores
--   the backoff).
--
-- A fixed clock for tests: --today, or LIFEPLAN_TODAY=YYYY-MM-DD.
local args = { ... }
if args[1] ~= nil and args[1] ~= "notification.jobs" then
  return require("notification.jobs").cli(args)
end

local cache   = require "lp.cache"
local db      = require "lp.db"
local json    = require "lp.json"
local log     = require "lp.log"
local match   = require "lp.match"
local server  = require "lp.server"
local timer   = require "lp.timer"
local service = require "notification.service"
local types   = require "notification.types"

local M = {}

M.CHANNEL       = "policies_changed"
M.DAILY_HOUR    = 9        -- Asia/Seoul
M.STALE_MINUTES = 15
M.OVERLAP       = "10 minutes" -- re-read policies this far behind the watermark
M.PROFILE_CHUNK = 2500

-- ---- clock ------------------------------------------------------------------

local function valid_date(s)
  if type(s) ~= "string" then return false end
  local y, m, d = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then return false end
  local t = os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 }
  return os.date("%Y-%m-%d", t) == s
end
M.valid_date = valid_date

-- Today in Asia/Seoul (UTC+9, no daylight saving), or the fixed clock.
function M.today()
  local fixed = os.getenv("LIFEPLAN_TODAY")
  if fixed and valid_date(fixed) then return fixed end
  return os.date("!%Y-%m-%d", os.time() + 9 * 3600)
end

local function seoul_hour()
  return tonumber(os.date("!%H", os.time() + 9 * 3600))
end

-- ---- job claims -------------------------------------------------------------

local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")

-- Who holds a claim, for people reading job_runs: host, pid, worker.
local function claimer()
  return string.format("%s/%d/w%d", os.getenv("HOSTNAME") or "host", ffi.C.getpid(),
                       server.worker())
end

-- True when this task got the run: a new row, a run that failed over a
-- minute ago (not retried by every worker on every tick), or a stale one.
function M.claim(job, key)
  local rows = db.query([[
    INSERT INTO job_runs (job, run_key, claimed_by) VALUES ($1, $2, $3)
    ON CONFLICT (job, run_key) DO NOTHING RETURNING job]], job, key, claimer())
  if rows[1] then return true end
  rows = db.query([[
    UPDATE job_runs SET status = 'running', claimed_by = $3, claimed_at = now(),
                        finished_at = NULL, error = NULL
     WHERE job = $1 AND run_key = $2
       AND (status = 'failed' AND finished_at < now() - interval '1 minute'
            OR status = 'running' AND claimed_at < now() - make_interval(mins => $4))
    RETURNING job]], job, key, claimer(), M.STALE_MINUTES)
  return rows[1] ~= nil
end

local function finish(job, key, result)
  db.query([[UPDATE job_runs SET status = 'done', finished_at = now(), result = $3::jsonb
              WHERE job = $1 AND run_key = $2]], job, key, result)
end

local function fail(job, key, err)
  db.query([[UPDATE job_runs SET status = 'failed', finished_at = now(), error = $3
              WHERE job = $1 AND run_key = $2]], job, key, tostring(err):sub(1, 2000))
end

-- Runs fn under the claim (job, key): nil, "claimed" when another has it.
local function claimed(job, key, fn)
  if not M.claim(job, key) then return nil, "claimed" end
  local ok, res = pcall(fn)
  if not ok then
    pcall(fail, job, key, type(res) == "table" and (res.message or res.code) or res)
    error(res, 0)
  end
  finish(job, key, res)
  return res
end

-- ---- the profile index ------------------------------------------------------

local PROFILE_COLS = [[user_id, birth_date, region_code, employment_status, education, major,
  special_status, marital_status, household_size, housing_type, annual_income, interests]]

local function profile_table(r)
  return {
    id = r.user_id, birthDate = r.birth_date, regionCode = r.region_code,
    employmentStatus = r.employment_status, education = r.education, major = r.major,
    specialStatus = r.special_status, maritalStatus = r.marital_status,
    householdSize = r.household_size, housingType = r.housing_type,
    annualIncome = r.annual_income, interests = r.interests,
  }
end

-- Every profile in one lp.match profile index, rebuilt only when profiles
-- changed (count, newest id, last update) and kept in C across reloads.
function M.profile_index()
  local k = db.query([[SELECT count(*)::bigint AS n, coalesce(max(user_id), 0) AS m,
                              coalesce(max(updated_at)::text, '') AS u FROM user_profiles]])[1]
  local key = string.format("%s/%s/%s", k.n, k.m, k.u)
  local idx = match.profile_index()
  if idx and cache.get("notification:profiles") == key then return idx end
  -- in keyset-paged chunks, each decoded and handed to the engine before the
  -- next is read: decoding 100,000 rows at once would hold the loop for over
  -- a second, a chunk takes a few milliseconds; the index is then compiled
  -- on the thread pool
  local builder, after = match.profile_builder(), 0
  while true do
    local rows = db.query("SELECT " .. PROFILE_COLS .. " FROM user_profiles WHERE user_id > $1" ..
                          " ORDER BY user_id LIMIT " .. M.PROFILE_CHUNK, after)
    local chunk = {}
    for i, r in ipairs(rows) do chunk[i] = profile_table(r) end
    -- one bad profile must not stop everyone's notifications: leave it out
    builder:add(chunk, function(p)
      log.warn { msg = "profile left out of the matching index", user = p.id }
    end)
    if #rows < M.PROFILE_CHUNK then break end
    after = rows[#rows].user_id
  end
  local built = builder:build()
  match.set_profiles(built)
  cache.set("notification:profiles", key, 7 * 86400)
  return built
end

-- ---- policies → the engine's shape ---------------------------------------

M.POLICY_COLS = [[id, title, category, region_codes, age_min, age_max, income_kind, income_min,
  income_max, income_median_pct, income_monthly_max, income_year, income_text, employment_codes,
  education_codes, major_codes, special_codes, marital_status, housing_types, household_min,
  household_max, extra_conditions, apply_period, apply_start, apply_end]]

-- A policies row → lp.match's policy table: policy.service's mapping, so a
-- notification says "eligible" exactly when recommend and the detail do.
-- What the engine cannot judge (free-text income, extra conditions, the
-- "other" special target) makes everyone at best "possible".
function M.match_policy(p)
  return require("policy.service").match_policy(p)
end

-- Reverse-matches one policy row against idx and notifies the eligible
-- users; returns the ids of the notifications created.
function M.notify_policy(idx, row, today)
  local ok, r = pcall(idx.reverse, idx, M.match_policy(row), { today = today })
  if not ok then
    log.warn { msg = "policy skipped by reverse matching", policy = row.id, error = tostring(r) }
    return {}
  end
  if #r.eligible == 0 then return {} end
  return service.create_for_users(r.eligible, types.policy_match(row))
end

-- ---- policy_match -----------------------------------------------------------

local function run_policy_match(version, today, opts)
  local prev = db.query([[
    SELECT result->>'watermark' AS w FROM job_runs
     WHERE job = 'policy_match' AND status = 'done' AND result ? 'watermark'
     ORDER BY finished_at DESC LIMIT 1]])[1]
  local top = db.query("SELECT max(updated_at)::text AS w FROM policies")[1].w
  local since
  if prev and prev.w then
    since = db.query("SELECT ($1::timestamptz - $2::interval)::text AS s", prev.w, M.OVERLAP)[1].s
  else
    -- the first run ever: the policies of the collector run that made this
    -- version (or of the last change to the set)
    since = db.query([[
      SELECT coalesce((SELECT started_at FROM collect_logs WHERE policy_set_version = $1
                        ORDER BY id DESC LIMIT 1),
                      (SELECT changed_at FROM policy_set))::text AS s]], version)[1].s
  end
  local policies = {}
  if top then
    policies = db.query("SELECT " .. M.POLICY_COLS .. [[ FROM policies
       WHERE updated_at >= $1::timestamptz AND updated_at <= $2::timestamptz
         AND lp_policy_status(apply_period, apply_start, apply_end, $3::date) <> 'closed'
       ORDER BY id]], since, top, today)
  end
  local created, notified = {}, 0
  if #policies > 0 then
    local idx = M.profile_index()
    for _, row in ipairs(policies) do
      local ids = M.notify_policy(idx, row, today)
      notified = notified + #ids
      for _, id in ipairs(ids) do created[#created + 1] = id end
    end
  end
  if opts.wait_push then service.push_wait(created) else service.push_later(created) end
  log.info { msg = "policy_match run", version = version, policies = #policies, created = notified }
  return { version = version, policies = #policies, created = notified,
           watermark = top or (prev and prev.w) or json.null }
end

-- Runs the job for the current policy-set version if nobody has.
-- → result, or nil, "claimed" / "empty".
function M.policy_match(opts)
  opts = opts or {}
  local today = opts.today or M.today()
  local v = db.query("SELECT version FROM policy_set")[1]
  if not v or v.version == 0 then return nil, "empty" end
  return claimed("policy_match", tostring(v.version), function()
    return run_policy_match(v.version, today, opts)
  end)
end

-- ---- deadlines --------------------------------------------------------------

-- Reminders for favourites whose application ends `days` after today.
function M.deadlines(opts)
  opts = opts or {}
  local today = opts.today or M.today()
  local created, counts = {}, {}
  for _, days in ipairs { 7, 1 } do
    local text = types.DEADLINE[days]
    local rows = db.query([[
      INSERT INTO notifications (user_id, type, title, body, data, dedupe_key)
      SELECT up.user_id, 'deadline', $2,
             format($3, p.title, to_char(p.apply_end, 'FMMM"월" FMDD"일"')),
             jsonb_build_object('policyId', p.id, 'category', p.category,
                                'applyEnd', to_char(p.apply_end, 'YYYY-MM-DD'), 'daysLeft', $4::int),
             format('deadline:%s:%s:%s', p.id, to_char(p.apply_end, 'YYYY-MM-DD'), $4::int)
        FROM user_policies up JOIN policies p ON p.id = up.policy_id
       WHERE p.apply_period = 'fixed' AND p.apply_end = $1::date + $4::int
       ORDER BY p.id, up.user_id
      ON CONFLICT (user_id, dedupe_key) DO NOTHING
      RETURNING id]], today, text.title, text.body, days)
    counts[tostring(days)] = #rows
    for _, r in ipairs(rows) do created[#created + 1] = r.id end
  end
  if opts.wait_push then service.push_wait(created) else service.push_later(created) end
  log.info { msg = "deadlines run", today = today, created = #created }
  return { today = today, created = #created, d7 = counts["7"], d1 = counts["1"] }
end

-- ---- schedule ---------------------------------------------------------------

local last_daily -- the Seoul date whose daily run this generation has seen to

-- Every TICK_MS: the daily deadlines once it is 09:00 in Seoul, a catch-up
-- policy_match, and the push retry sweep. Each part fails on its own.
function M.tick()
  if not server.serving() then return end -- a one-off command, not a host
  local today = M.today()
  if last_daily ~= today and seoul_hour() >= M.DAILY_HOUR then
    local ok, err = pcall(claimed, "deadlines", today, function() return M.deadlines { today = today } end)
    if ok then last_daily = today else log.warn { msg = "deadlines job failed", error = tostring(err) } end
  end
  local ok, err = pcall(M.policy_match)
  if not ok then log.warn { msg = "policy_match job failed", error = tostring(err) } end
  ok, err = pcall(service.push_sweep)
  if not ok then log.warn { msg = "push sweep failed", error = tostring(err) } end
end

local function on_notify(payload)
  if not server.serving() then return end
  local ok, err = pcall(M.policy_match)
  if not ok then
    log.warn { msg = "policy_match job failed", payload = payload, error = tostring(err) }
  end
end

-- Called while the controller loads: registers the NOTIFY listener and the
-- tick (neither does I/O now; both end with this script generation). Both
-- do nothing outside `lifeplan serve` (the collector's own process hears
-- its NOTIFY too, and must not take the run from the hosts).
function M.install()
  local tick_ms = tonumber(os.getenv("NOTIFY_TICK_MS") or "") or 60000
  db.listen(M.CHANNEL, on_notify)
  timer.every(tick_ms, M.tick)
end

-- ---- command line -----------------------------------------------------------

local function usage()
  error("usage: lifeplan jobs run deadlines|policy_match|push [--today YYYY-MM-DD] [--force]", 0)
end

function M.cli(argv)
  local name, opts = argv[1], { wait_push = true }
  local i = 2
  while argv[i] do
    if argv[i] == "--today" then
      opts.today = argv[i + 1]
      if not valid_date(opts.today) then usage() end
      i = i + 2
    elseif argv[i] == "--force" then
      opts.force = true
      i = i + 1
    else
      usage()
    end
  end
  local result, why
  if name == "deadlines" then
    result = M.deadlines(opts)
  elseif name == "policy_match" then
    result, why = M.policy_match(opts)
    result = result or { skipped = why }
  elseif name == "push" then
    result = service.push_sweep(opts)
  else
    usage()
  end
  io.stdout:write(json.encode(result), "\n")
  return result
end

return M
