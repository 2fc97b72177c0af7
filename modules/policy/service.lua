-- policy/service.lua — policies for the app and for other modules (chat).
--
--   service.search(q, filters)          → {items = {summary...}, nextCursor}
--       q: text (nil = all); filters: {category, region, status, limit, cursor}
--       (the controller passes types.list_query's result: terms instead of q)
--   service.get(id)                     → detail (no user parts) or nil
--   service.detail(id, user_id)         → detail + isFavorite + eligibility, or nil
--   service.recommend(user_id, opts)    → {profileVersion, items = {{policy,
--       eligibility, score, reasons, missingFields}}}; opts: {limit = 20,
--       includePossible = false}; a second value true when it came from the cache
--   service.eligibility(id, user_id)    → {status, reasons, missingFields} or nil
--   service.favorites(user_id, opts), service.add_favorite(user_id, id) → bool,
--   service.remove_favorite(user_id, id) → bool (false: no such policy)
--   service.match_policy(row)           → lp.match policy table of a policies row
--
-- Caching (Redis; any Redis failure is a cache miss):
--   list and detail answers under the policy-set version this worker knows
--   (index.set_version(): NOTIFY, or policy_set read at most 5 s ago) and
--   today's date, so a collector run moves every reader to new keys;
--   recommendations per user under (profile version, index version, date,
--   options): a profile change or a new index changes the key, nothing is
--   ever deleted, old keys expire.
local db      = require "lp.db"
local json    = require "lp.json"
local redis   = require "lp.redis"
local crypto  = require "lp.crypto"
local index   = require "policy.index"
local types   = require "policy.types"

local M = {}

M.LIST_TTL = 300
M.RECOMMEND_TTL = 3600

M.match_policy = index.match_policy

local function cache_enabled()
  return os.getenv("POLICY_CACHE") ~= "off"
end

local function cache_get(key)
  if not cache_enabled() then return nil end
  local v = redis.call("GET", key)
  if type(v) ~= "string" then return nil end
  return v
end

local function cache_set(key, body, ttl)
  if not cache_enabled() then return end
  redis.call("SET", key, body, "EX", ttl)
end

local function escape_like(s)
  return (s:gsub("[\\%%_]", "\\%0"))
end

local DETAIL_COLUMNS = types.SUMMARY_COLUMNS .. [[, p.source, p.external_id, p.subcategory,
  p.description, p.keywords, p.operating_agency, p.age_min, p.age_max, p.income_kind,
  p.income_min, p.income_max, p.income_median_pct, p.income_monthly_max, p.income_year,
  p.income_text, p.employment_codes, p.education_codes, p.major_codes, p.special_codes,
  p.marital_status, p.housing_types, p.household_min, p.household_max, p.extra_conditions,
  p.excluded_targets, p.business_start, p.business_end, p.how_to_apply, p.selection_method,
  p.documents, p.apply_url, p.ref_urls, p.source_url, p.updated_at]]

-- ---- search ------------------------------------------------------------------

-- The list query. Each term is its own $n (SQL text comes from this fixed
-- template only; values never enter it).
local function list_rows(f, today)
  local where, params = {}, { today }
  local function param(v)
    params[#params + 1] = v
    return "$" .. #params
  end
  for _, term in ipairs(f.terms or {}) do
    where[#where + 1] = "p.search_text ILIKE " .. param("%" .. escape_like(term) .. "%")
  end
  if f.category then where[#where + 1] = "p.category = " .. param(f.category) end
  if f.region then
    local r = param(f.region)
    if #f.region == 2 then
      -- a 시도: nationwide, the 시도 itself, or any of its 시군구
      where[#where + 1] = string.format("(p.region_codes = '{}' OR EXISTS (SELECT 1 FROM "
        .. "unnest(p.region_codes) c WHERE left(c, 2) = %s))", r)
    else
      -- a 시군구: nationwide, that 시군구, or its 시도
      where[#where + 1] = string.format("(p.region_codes = '{}' OR p.region_codes && "
        .. "ARRAY[%s::text, left(%s::text, 2)])", r, r)
    end
  end
  if f.status then
    where[#where + 1] = "lp_policy_status(p.apply_period, p.apply_start, p.apply_end, $1::date) = "
      .. param(f.status)
  end
  if f.cursor then where[#where + 1] = "p.id < " .. param(f.cursor) end
  local sql = "SELECT " .. types.SUMMARY_COLUMNS .. " FROM policies p"
  if #where > 0 then sql = sql .. " WHERE " .. table.concat(where, " AND ") end
  sql = sql .. " ORDER BY p.id DESC LIMIT " .. param(f.limit + 1)
  return db.query(sql, unpack(params, 1, #params))
end

-- filters may carry `terms` (from types.list_query) or the caller's q text.
function M.search(q, filters)
  filters = filters or {}
  local f = {
    terms = filters.terms, category = filters.category, region = filters.region,
    status = filters.status, limit = math.min(tonumber(filters.limit) or types.DEFAULT_LIMIT, types.MAX_LIMIT),
    cursor = filters.cursor,
  }
  if f.terms == nil then
    f.terms = {}
    for term in tostring(q or ""):gmatch("%S+") do
      if #f.terms < types.MAX_TERMS then f.terms[#f.terms + 1] = term end
    end
  end
  local today = types.today()
  local key = "policy:list:v" .. index.set_version() .. ":" .. today .. ":"
    .. crypto.hex(crypto.sha256(json.encode { f.terms, f.category or "", f.region or "",
      f.status or "", f.limit, f.cursor or 0 }))
  local hit = cache_get(key)
  if hit then
    local v = json.decode(hit)
    if v then return types.mark_list(v) end
  end
  local rows = list_rows(f, today)
  local items = {}
  for i = 1, math.min(#rows, f.limit) do items[i] = types.summary(rows[i]) end
  local next_cursor = json.null
  if #rows > f.limit then next_cursor = types.encode_cursor(rows[f.limit].id) end
  local result = { items = json.array(items), nextCursor = next_cursor }
  cache_set(key, json.encode(result), M.LIST_TTL)
  return result
end

-- ---- detail ------------------------------------------------------------------

local function detail_row(id, today)
  return db.query("SELECT " .. DETAIL_COLUMNS .. " FROM policies p WHERE p.id = $2", today, id)[1]
end

-- The public detail (cached). → detail, row (row only on a cache miss)
function M.get(id)
  local today = types.today()
  local key = "policy:detail:v" .. index.set_version() .. ":" .. today .. ":" .. id
  local hit = cache_get(key)
  if hit then
    local v = json.decode(hit)
    if v then return types.mark_detail(v) end
  end
  local row = detail_row(id, today)
  if not row then return nil end
  local d = types.detail(row)
  cache_set(key, json.encode(d), M.LIST_TTL)
  return d, row
end

-- The user's profile as the engine reads it (the API's field names, with
-- `version`); matching_profile skips what matching does not need (inferred).
local function profile_of(user_id)
  local profile = require "profile.service"
  if profile.matching_profile then return profile.matching_profile(user_id) end
  return profile.get(user_id)
end

local function judge(row, profile)
  local match = require "lp.match"
  local item = match.eval(index.match_policy(row), profile, { today = types.today(), includeClosed = true })
  return {
    status = item.eligibility, reasons = types.reasons(item),
    missingFields = json.array(item.missingFields or {}),
  }
end

-- {status, reasons, missingFields} of one policy for the user's profile:
-- the same engine and mapping as recommend.
function M.eligibility(id, user_id)
  local row = db.query("SELECT " .. index.COLUMNS .. " FROM policies WHERE id = $1", id)[1]
  if not row then return nil end
  return judge(row, profile_of(user_id))
end

function M.is_favorite(user_id, id)
  return #db.query("SELECT 1 FROM user_policies WHERE user_id = $1 AND policy_id = $2", user_id, id) > 0
end

function M.detail(id, user_id)
  local d = M.get(id)
  if not d then return nil end
  if user_id then
    d.isFavorite = M.is_favorite(user_id, id)
    d.eligibility = M.eligibility(id, user_id) or json.null
  end
  return d
end

-- ---- recommend ---------------------------------------------------------------

local function summaries(ids)
  if #ids == 0 then return {} end
  local rows = db.query("SELECT " .. types.SUMMARY_COLUMNS
    .. " FROM policies p WHERE p.id IN (SELECT (jsonb_array_elements_text($2::jsonb))::bigint)",
    types.today(), json.encode(ids))
  local by_id = {}
  for _, r in ipairs(rows) do by_id[r.id] = types.summary(r) end
  return by_id
end

function M.recommend(user_id, opts)
  opts = opts or {}
  local limit = math.min(tonumber(opts.limit) or types.DEFAULT_LIMIT, types.MAX_LIMIT)
  local include_possible = opts.includePossible and true or false
  local profile = profile_of(user_id)
  local pv = tonumber(profile.version) or 0
  local idx, version = index.ensure()
  local today = types.today()
  local key = string.format("policy:rec:%s:%s:%s:%s:%d:%d", user_id, pv, version, today, limit,
    include_possible and 1 or 0)
  local hit = cache_get(key)
  if hit then
    local v = json.decode(hit)
    if v then return types.mark_recommend(v), true end
  end
  local r = idx:match(profile, { today = today, limit = limit, includePossible = include_possible })
  local ids = {}
  for i, it in ipairs(r.items) do ids[i] = it.id end
  local by_id = summaries(ids)
  local items = {}
  for _, it in ipairs(r.items) do
    local s = by_id[it.id]
    if s then -- a policy deleted since the index was built is left out
      items[#items + 1] = {
        policy = s, eligibility = it.eligibility, score = it.score,
        reasons = types.reasons(it), missingFields = json.array(it.missingFields or {}),
      }
    end
  end
  local result = {
    profileVersion = pv, policySetVersion = version, items = json.array(items),
    eligibleCount = r.eligible, possibleCount = r.possible,
  }
  cache_set(key, json.encode(result), M.RECOMMEND_TTL)
  return result
end

-- ---- favorites ---------------------------------------------------------------

function M.favorites(user_id, opts)
  opts = opts or {}
  local limit = opts.limit or types.DEFAULT_LIMIT
  local rows
  if opts.cursor then
    rows = db.query("SELECT " .. types.SUMMARY_COLUMNS .. [[, up.created_at AS fav_at
        FROM user_policies up JOIN policies p ON p.id = up.policy_id
       WHERE up.user_id = $2 AND (up.created_at, up.policy_id) < ($3::timestamptz, $4::bigint)
       ORDER BY up.created_at DESC, up.policy_id DESC LIMIT $5]],
      types.today(), user_id, opts.cursor.at, opts.cursor.id, limit + 1)
  else
    rows = db.query("SELECT " .. types.SUMMARY_COLUMNS .. [[, up.created_at AS fav_at
        FROM user_policies up JOIN policies p ON p.id = up.policy_id
       WHERE up.user_id = $2
       ORDER BY up.created_at DESC, up.policy_id DESC LIMIT $3]], types.today(), user_id, limit + 1)
  end
  local items = {}
  for i = 1, math.min(#rows, limit) do items[i] = types.summary(rows[i]) end
  local next_cursor = json.null
  if #rows > limit then
    next_cursor = types.encode_cursor(rows[limit].fav_at .. "|" .. rows[limit].id)
  end
  return { items = json.array(items), nextCursor = next_cursor }
end

function M.add_favorite(user_id, id)
  local rows = db.query([[INSERT INTO user_policies (user_id, policy_id)
      SELECT $1, id FROM policies WHERE id = $2
      ON CONFLICT DO NOTHING RETURNING policy_id]], user_id, id)
  if #rows > 0 then return true end
  return #db.query("SELECT 1 FROM policies WHERE id = $1", id) > 0
end

function M.remove_favorite(user_id, id)
  local _, n = db.query("DELETE FROM user_policies WHERE user_id = $1 AND policy_id = $2", user_id, id)
  if n > 0 then return true end
  return #db.query("SELECT 1 FROM policies WHERE id = $1", id) > 0
end

return M
