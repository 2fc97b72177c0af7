-- policy/types.lua — query parameters, cursors and the API shapes of a
-- policy (summary, detail) built from `policies` rows.
local crypto    = require "lp.crypto"
local json      = require "lp.json"
local problem   = require "shared.problem"
local normalize = require "policy.normalize"
local regions   = require "policy.regions"

local M = {}

M.DEFAULT_LIMIT = 20
M.MAX_LIMIT = 100
M.MAX_TERMS = 5
M.CATEGORIES = { jobs = true, housing = true, education = true, welfare = true, participation = true }
M.STATUSES = { open = true, upcoming = true, closed = true }

-- Today in Asia/Seoul ("YYYY-MM-DD"); LIFEPLAN_TODAY pins it for tests.
function M.today()
  local pinned = os.getenv("LIFEPLAN_TODAY")
  if pinned and pinned:match("^%d%d%d%d%-%d%d%-%d%d$") then return pinned end
  return os.date("!%Y-%m-%d", os.time() + 9 * 3600)
end

function M.path_id(s)
  if type(s) ~= "string" or not s:match("^[1-9]%d*$") or #s > 15 then return nil end
  return tonumber(s)
end

function M.encode_cursor(s)
  return crypto.b64url_encode(tostring(s))
end

local function decode_cursor(s, pattern)
  local ok, raw = pcall(crypto.b64url_decode, s)
  if not ok or type(raw) ~= "string" or not raw:match(pattern) then
    problem.bad_request("cursor is not valid")
  end
  return raw
end

local function limit_of(q, errors, default, max)
  local limit = default
  if q.limit ~= nil and q.limit ~= "" then
    local n = tostring(q.limit):match("^%d+$") and tonumber(q.limit)
    if not n or n < 1 or n > max then
      errors[#errors + 1] = { field = "limit", message = "must be an integer from 1 to " .. max }
    else
      limit = n
    end
  end
  return limit
end

-- GET /policies query → {terms, category, region, status, limit, cursor}.
-- q is split on spaces into at most MAX_TERMS terms, every one of which must
-- appear (as text: % _ \ are escaped before they reach LIKE).
function M.list_query(q)
  local errors = {}
  local out = { terms = {} }
  if q.q ~= nil then
    local s = tostring(q.q)
    if #s > 200 then errors[#errors + 1] = { field = "q", message = "must be at most 200 bytes" } end
    for term in s:gmatch("%S+") do
      if #out.terms < M.MAX_TERMS then out.terms[#out.terms + 1] = term end
    end
  end
  if q.category ~= nil and q.category ~= "" then
    if not M.CATEGORIES[q.category] then
      errors[#errors + 1] = { field = "category",
        message = "must be one of jobs, housing, education, welfare, participation" }
    else
      out.category = q.category
    end
  end
  if q.region ~= nil and q.region ~= "" then
    local c = regions.canonical(q.region)
    if not c then
      errors[#errors + 1] = { field = "region", message = "must be a known 2-digit 시도 or 5-digit 시군구 code" }
    else
      out.region = c
    end
  end
  if q.status ~= nil and q.status ~= "" then
    if not M.STATUSES[q.status] then
      errors[#errors + 1] = { field = "status", message = "must be one of open, upcoming, closed" }
    else
      out.status = q.status
    end
  end
  out.limit = limit_of(q, errors, M.DEFAULT_LIMIT, M.MAX_LIMIT)
  if #errors > 0 then problem.validation(errors) end
  if q.cursor ~= nil and q.cursor ~= "" then
    out.cursor = tonumber(decode_cursor(q.cursor, "^[1-9]%d*$"))
  end
  return out
end

-- GET /policies/favorites query → {limit, cursor = {at, id}}.
function M.favorites_query(q)
  local errors = {}
  local out = { limit = limit_of(q, errors, M.DEFAULT_LIMIT, M.MAX_LIMIT) }
  if #errors > 0 then problem.validation(errors) end
  if q.cursor ~= nil and q.cursor ~= "" then
    local raw = decode_cursor(q.cursor, "^[%d%-T:%.Z+]+|[1-9]%d*$")
    local at, id = raw:match("^(.+)|(%d+)$")
    out.cursor = { at = at, id = tonumber(id) }
  end
  return out
end

-- GET /policies/recommend query → {limit, includePossible}.
function M.recommend_query(q)
  local errors = {}
  local out = { limit = limit_of(q, errors, M.DEFAULT_LIMIT, M.MAX_LIMIT) }
  local ip = q.includePossible
  if ip == nil or ip == "" or ip == "false" or ip == "0" then
    out.includePossible = false
  elseif ip == "true" or ip == "1" then
    out.includePossible = true
  else
    errors[#errors + 1] = { field = "includePossible", message = "must be true or false" }
  end
  if #errors > 0 then problem.validation(errors) end
  return out
end

-- ---- shapes ------------------------------------------------------------------

-- Columns the summary needs (status computed by the database for `today`).
M.SUMMARY_COLUMNS = [[p.id, p.title, p.category, p.summary, p.region_codes, p.agency,
  p.apply_period, p.apply_start, p.apply_end, p.support_content,
  lp_policy_status(p.apply_period, p.apply_start, p.apply_end, $1::date) AS status]]

local function null(v)
  if v == nil then return json.null end
  return v
end

function M.summary(row)
  local region = regions.summary(row.region_codes)
  return {
    id = row.id, title = row.title, category = row.category, summary = null(row.summary),
    region = region or json.null, agency = null(row.agency),
    applyStart = null(row.apply_period ~= "always" and row.apply_start or nil),
    applyEnd = null(row.apply_period ~= "always" and row.apply_end or nil),
    status = row.status,
    supportSummary = null(normalize.summary_of(row.support_content, 120)),
  }
end

local function arr(t)
  if type(t) ~= "table" or #t == 0 then return json.empty_array end
  return t
end

function M.detail(row)
  local d = M.summary(row)
  local list = {}
  for _, c in ipairs(row.region_codes or {}) do
    list[#list + 1] = { code = c, name = regions.SIDO[c] or regions.NAME[c] or c }
  end
  d.regions = arr(list)
  d.subcategory = null(row.subcategory)
  d.categoryLabel = normalize.CATEGORY_LABEL[row.category]
  d.description = null(row.description)
  d.supportContent = null(row.support_content)
  d.keywords = arr(row.keywords)
  d.operatingAgency = null(row.operating_agency)
  local income = json.null
  if row.income_kind ~= "none" or row.income_text then
    income = {
      kind = row.income_kind, annualMin = null(row.income_min), annualMax = null(row.income_max),
      medianPct = null(row.income_median_pct), medianYear = null(row.income_year),
      monthlyMax = null(row.income_monthly_max), text = null(row.income_text),
    }
  end
  d.conditions = {
    age = (row.age_min or row.age_max) and { min = null(row.age_min), max = null(row.age_max) } or json.null,
    income = income,
    employmentStatus = arr(row.employment_codes),
    education = arr(row.education_codes),
    major = arr(row.major_codes),
    specialStatus = arr(row.special_codes),
    maritalStatus = null(row.marital_status),
    housingType = arr(row.housing_types),
    householdSize = (row.household_min or row.household_max)
      and { min = null(row.household_min), max = null(row.household_max) } or json.null,
    additional = null(row.extra_conditions),
    excluded = null(row.excluded_targets),
  }
  d.applyPeriod = row.apply_period
  d.businessStart = null(row.business_start)
  d.businessEnd = null(row.business_end)
  d.howToApply = null(row.how_to_apply)
  d.selectionMethod = null(row.selection_method)
  d.documents = null(row.documents)
  d.applyUrl = null(row.apply_url)
  d.links = arr(row.ref_urls)
  d.source = {
    name = row.source == normalize.SOURCE and normalize.SOURCE_NAME or row.source,
    externalId = row.external_id, url = null(row.source_url),
  }
  d.updatedAt = row.updated_at
  return d
end

-- Cached answers come back through json.decode, which does not mark arrays:
-- these put the marks back so empty lists still encode as [].
local function mark(t)
  if type(t) == "table" then return json.array(t) end
  return t
end

function M.mark_list(v)
  mark(v.items)
  return v
end

function M.mark_detail(d)
  for _, k in ipairs { "regions", "keywords", "links" } do mark(d[k]) end
  local c = d.conditions
  if type(c) == "table" then
    for _, k in ipairs { "employmentStatus", "education", "major", "specialStatus", "housingType" } do
      mark(c[k])
    end
  end
  return d
end

function M.mark_recommend(v)
  mark(v.items)
  for _, it in ipairs(v.items or {}) do
    mark(it.reasons)
    mark(it.missingFields)
  end
  return v
end

-- An engine item's reasons → the API's [{condition, status, detail}].
function M.reasons(item)
  local out = {}
  for i, r in ipairs(item.reasons or {}) do
    out[i] = { condition = r.condition, status = r.status, detail = r.detail }
  end
  return arr(out)
end

return M
