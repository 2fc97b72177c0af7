-- policy/index.lua — the worker's matching index (lp.match) of every policy,
-- and the policy-set version it was built from.
--
-- The index itself lives in C (match.set_policies: host->match_state), so
-- it survives script reloads and every generation of this worker shares it;
-- its version is kept beside it in the worker's lp.cache. It is built from
-- PostgreSQL (policies + policy_set.version read in one REPEATABLE READ
-- snapshot, so the version names exactly the rows the index holds):
--   * first by a timer.after(0) task the controller schedules at start-up
--     (never while modules load);
--   * again when the collector's NOTIFY (policies_changed) carries a newer
--     version, or when M.set_version() learns of one some other way (a
--     NOTIFY lost while the listener reconnected): in a background task,
--     off the request path. Requests keep using the published index and see
--     the new one the moment match.set_policies swaps it in.
-- Only a request that arrives before the very first build waits for it.
local cache     = require "lp.cache"
local db        = require "lp.db"
local log       = require "lp.log"
local match     = require "lp.match"
local timer     = require "lp.timer"
local normalize = require "policy.normalize"

local M = {}

local VERSION_KEY = "policy:index_version"
local SET_VERSION_KEY = "policy:set_version"
local SET_VERSION_TTL = 5 -- seconds a worker trusts its idea of policy_set.version

M.COLUMNS = [[id, category, region_codes, age_min, age_max, income_kind, income_min, income_max,
  income_median_pct, income_monthly_max, income_year, income_text, employment_codes,
  education_codes, major_codes, special_codes, marital_status, housing_types, household_min,
  household_max, extra_conditions, apply_period, apply_start, apply_end]]

local function nonempty(a)
  if type(a) == "table" and #a > 0 then return a end
  return nil
end

-- A policies row (M.COLUMNS) → lp.match's policy table. What the engine
-- cannot judge makes the policy at best "possible" (extraCondition): free
-- text income rules, income text that says more than the parsed rule
-- ("중위소득 150% 이하, 거래금액 2억원 이하 무주택 임차가구"), the further
-- conditions of addAplyQlfcCndCn and the "other" special target.
function M.match_policy(p)
  local t = {
    id = p.id, category = p.category, regions = nonempty(p.region_codes),
    ageMin = p.age_min, ageMax = p.age_max,
    employment = nonempty(p.employment_codes), education = nonempty(p.education_codes),
    major = nonempty(p.major_codes), maritalStatus = p.marital_status and { p.marital_status } or nil,
    housingType = nonempty(p.housing_types),
    householdMin = p.household_min, householdMax = p.household_max,
    closed = p.apply_period == "closed",
  }
  if p.apply_period ~= "always" then
    t.applyStart, t.applyEnd = p.apply_start, p.apply_end
  end
  local extra = type(p.extra_conditions) == "string" and p.extra_conditions:find("%S") ~= nil
  if nonempty(p.special_codes) then
    local special = {}
    for _, c in ipairs(p.special_codes) do
      if c == "other" then extra = true else special[#special + 1] = c end
    end
    t.specialStatus = nonempty(special)
  end
  if p.income_kind == "annual" then
    t.incomeMin, t.incomeMax = p.income_min, p.income_max
  elseif p.income_kind == "median" then
    t.medianIncomePct, t.medianIncomeYear = p.income_median_pct, p.income_year
  elseif p.income_kind == "monthly" then
    t.monthlyWageMax = p.income_monthly_max
  elseif p.income_kind == "text" then
    extra = true
  end
  if p.income_kind ~= "text" and p.income_text then
    local parsed = normalize.parse_income(p.income_text)
    if parsed == nil or parsed.rest then extra = true end
  end
  t.extraCondition = extra
  return t
end

M.CHUNK = 1000 -- policies read, converted and handed to the engine at a time

-- Adds a chunk of policies rows to the builder; a policy the engine refuses
-- (e.g. a region code it does not know) is left out and logged, never the
-- whole set.
local function add_policies(builder, rows)
  local chunk = {}
  for i, row in ipairs(rows) do chunk[i] = M.match_policy(row) end
  builder:add(chunk, function(p, err)
    log.warn { msg = "policy left out of the matching index", policy = p.id, error = tostring(err) }
  end)
end

local building = false

-- Reads every policy and publishes a new index unless a newer one is
-- already published. → version
function M.build()
  while building do timer.sleep(5) end -- one build at a time per generation
  building = true
  local ok, v = pcall(function()
    -- one snapshot for the version and every chunk; each chunk is decoded
    -- and converted before the next is read, and the index is compiled on
    -- the thread pool, so 10,000 policies never hold the loop for long
    local builder, t0 = match.policy_builder(), timer.monotonic_ms()
    local version = db.tx(function(q)
      q.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
      local version = q.query("SELECT version FROM policy_set")[1].version
      local current = M.version()
      if current and current >= version then return version end
      local after = 0
      while true do
        local rows = q.query("SELECT " .. M.COLUMNS .. " FROM policies WHERE id > $1 ORDER BY id" ..
                             " LIMIT " .. M.CHUNK, after)
        add_policies(builder, rows)
        if #rows < M.CHUNK then break end
        after = rows[#rows].id
      end
      return version
    end)
    local current = M.version()
    if current and current >= version then return current end
    local idx = builder:build()
    match.set_policies(idx)
    cache.set(VERSION_KEY, version, 0)
    M.set_version_known(version)
    log.info { msg = "policy index built", version = version, policies = idx:count(),
               build_ms = timer.monotonic_ms() - t0 }
    return version
  end)
  building = false
  if not ok then error(v, 0) end
  return v
end

-- The published index's version, or nil when there is none.
function M.version()
  if match.policies() == nil then return nil end
  return tonumber((cache.get(VERSION_KEY)))
end

-- The index and its version, building it first if this worker has none.
function M.ensure()
  local idx, v = match.policies(), M.version()
  if idx and v then
    M.check()
    return idx, v
  end
  v = M.build()
  return match.policies(), v
end

-- Rebuilds in the background when `version` is newer than the index.
local pending = false
function M.refresh(version)
  local current = M.version()
  if current and version and version <= current then return end
  if pending then return end
  pending = true
  timer.after(0, function()
    local ok, err = pcall(M.build)
    pending = false
    if not ok then log.warn { msg = "policy index rebuild failed", error = tostring(err) } end
  end)
end

-- The policy-set version as this worker last learnt it (NOTIFY, a build, or
-- a read of policy_set at most SET_VERSION_TTL seconds ago).
function M.set_version()
  local v = tonumber((cache.get(SET_VERSION_KEY)))
  if v then return v end
  v = db.query("SELECT version FROM policy_set")[1].version
  cache.set(SET_VERSION_KEY, v, SET_VERSION_TTL)
  return v
end

function M.set_version_known(v)
  local cur = tonumber((cache.get(SET_VERSION_KEY)))
  if cur == nil or v > cur then cache.set(SET_VERSION_KEY, v, SET_VERSION_TTL) end
end

-- Starts a rebuild when policy_set moved past the index (a missed NOTIFY).
function M.check()
  local ok, v = pcall(M.set_version)
  if ok and v then M.refresh(v) end
end

-- The collector's NOTIFY: {"version": n, ...}.
function M.on_notify(payload)
  local v = tonumber(type(payload) == "string" and payload:match('"version"%s*:%s*(%d+)'))
  if v then M.set_version_known(v) end
  M.refresh(v)
end

return M
