-- profile/service.lua — the user's profile (user_profiles), for the profile
-- routes and for other modules:
--
--   profile.service.get(user_id)
--     → the API.md profile: {birthDate, regionCode, employmentStatus,
--       education, major, specialStatus, maritalStatus, householdSize,
--       housingType, annualIncome, interests, inferred, completeness,
--       version, updatedAt}; json.null for unknown fields (specialStatus /
--       interests: null = unknown, [] = none of these).
--   profile.service.matching_profile(user_id)
--     → the profile table lp.match wants (host/lua_match.c): {id = user_id,
--       version, birthDate, regionCode, annualIncome, householdSize,
--       employmentStatus, education, major, specialStatus, maritalStatus,
--       housingType, interests}, unknown fields nil; lists are arrays.
--   profile.service.update(user_id, changes) (PUT /profile)
--
-- Both getters answer a blank profile (version 1) when the row is missing;
-- registration creates it, and an update creates it if it is not there.
-- `version` increases by one on every update that changes a value; an update
-- that changes nothing leaves it (and updatedAt) alone.
local db    = require "lp.db"
local json  = require "lp.json"
local types = require "profile.types"

local M = {}

local COLS = "birth_date, region_code, employment_status, education, major, special_status, "
  .. "marital_status, household_size, housing_type, annual_income, interests, version, updated_at"

local function load(q, uid, lock)
  return q.query("SELECT " .. COLS .. " FROM user_profiles WHERE user_id = $1" .. (lock and " FOR UPDATE" or ""),
    uid)[1]
end

local function plain_list(v)
  local out = {}
  for i, x in ipairs(v) do out[i] = x end
  return out
end

-- row → { [api] = value } with nil for unknown
local function raw_fields(row)
  local out = {}
  for _, f in ipairs(types.FIELDS) do
    local v = row and row[f.col]
    if v ~= nil and v ~= json.null then
      out[f.api] = f.list and plain_list(v) or v
    end
  end
  return out
end

local function inferred(uid)
  local ok, tx = pcall(require, "transaction.service")
  if not ok then
    if not tostring(tx):find("module 'transaction.service' not found", 1, true) then error(tx, 0) end
    tx = nil
  end
  if type(tx) == "table" and type(tx.monthly_averages) == "function" then
    local a = tx.monthly_averages(uid) or {}
    return {
      monthlyIncome = tonumber(a.monthlyIncome) or 0,
      monthlyExpense = tonumber(a.monthlyExpense) or 0,
      basedOnMonths = tonumber(a.basedOnMonths) or 0,
    }
  end
  return { monthlyIncome = 0, monthlyExpense = 0, basedOnMonths = 0 }
end

local function completeness(fields)
  local known = 0
  for _, name in ipairs(types.MATCHING) do
    if fields[name] ~= nil then known = known + 1 end
  end
  return math.floor(known / #types.MATCHING * 100 + 0.5) / 100
end

local function to_api(uid, row)
  local fields = raw_fields(row)
  local out = {}
  for _, f in ipairs(types.FIELDS) do
    local v = fields[f.api]
    if v == nil then
      out[f.api] = json.null
    elseif f.list then
      out[f.api] = json.array(v)
    else
      out[f.api] = v
    end
  end
  out.inferred = inferred(uid)
  out.completeness = completeness(fields)
  out.version = row and row.version or 1
  out.updatedAt = row and row.updated_at or json.null
  return out
end

function M.get(user_id)
  return to_api(user_id, load(db, user_id))
end

function M.matching_profile(user_id)
  local row = load(db, user_id)
  local p = raw_fields(row)
  p.id = user_id
  p.version = row and row.version or 1
  return p
end

local function same(a, b)
  if type(a) == "table" and type(b) == "table" then
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return true
  end
  return a == b
end

-- changes: { [api] = value | json.null } as types.update returns.
function M.update(user_id, changes)
  local row = db.tx(function(q)
    q.query("INSERT INTO user_profiles (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", user_id)
    local cur = load(q, user_id, true)
    local fields = raw_fields(cur)
    local changed = false
    for _, f in ipairs(types.FIELDS) do
      local v = changes[f.api]
      if v ~= nil then
        if v == json.null then v = nil end
        if not same(fields[f.api], v) then
          fields[f.api] = v
          changed = true
        end
      end
    end
    if not changed then return cur end
    local params, sets = {}, {}
    for i, f in ipairs(types.FIELDS) do
      local v = fields[f.api]
      if f.list then
        params[i] = v and json.encode(json.array(v)) or db.null
        -- array_agg of no rows is NULL: an empty list must stay '{}'
        sets[i] = string.format("%s = CASE WHEN $%d::jsonb IS NULL THEN NULL ELSE COALESCE((SELECT "
          .. "array_agg(x ORDER BY n) FROM jsonb_array_elements_text($%d::jsonb) WITH ORDINALITY AS t(x, n)), "
          .. "'{}'::text[]) END", f.col, i, i)
      else
        params[i] = v == nil and db.null or v
        sets[i] = string.format("%s = $%d", f.col, i)
      end
    end
    local n = #types.FIELDS
    params[n + 1] = user_id
    params.n = n + 1
    return q.query("UPDATE user_profiles SET " .. table.concat(sets, ", ") .. ", version = version + 1 "
      .. "WHERE user_id = $" .. (n + 1) .. " RETURNING " .. COLS, unpack(params, 1, n + 1))[1]
  end)
  return to_api(user_id, row)
end

return M
