-- profile/types.lua — the profile's fields, their codes (API.md, 온통청년's
-- enumerations) and the validation of PUT /profile.
local json    = require "lp.json"
local problem = require "shared.problem"
local regions = require "profile.regions"

local M = {}

-- code lists in display order, with Korean labels
M.OPTIONS = {
  employmentStatus = {
    { "employed", "재직자" }, { "self_employed", "자영업자" }, { "unemployed", "미취업자" },
    { "freelancer", "프리랜서" }, { "day_laborer", "일용근로자" }, { "founder", "(예비)창업자" },
    { "short_term", "단기근로자" }, { "farmer", "영농종사자" }, { "other", "기타" },
  },
  education = {
    { "below_high_school", "고졸 미만" }, { "high_school_student", "고교 재학" },
    { "high_school_expected", "고졸 예정" }, { "high_school_graduate", "고교 졸업" },
    { "university_student", "대학 재학" }, { "university_expected", "대졸 예정" },
    { "university_graduate", "대학 졸업" }, { "graduate_degree", "석·박사" }, { "other", "기타" },
  },
  major = {
    { "humanities", "인문" }, { "social", "사회" }, { "business", "상경" }, { "natural", "이학" },
    { "engineering", "공학" }, { "arts", "예체능" }, { "agriculture", "농산업" }, { "other", "기타" },
  },
  specialStatus = {
    { "sme_employee", "중소기업" }, { "woman", "여성" }, { "basic_livelihood", "기초생활수급자" },
    { "single_parent", "한부모가정" }, { "disabled", "장애인" }, { "farmer", "농업인" },
    { "soldier", "군인" }, { "local_talent", "지역인재" },
  },
  maritalStatus = { { "single", "미혼" }, { "married", "기혼" } },
  housingType = {
    { "own_home", "자가" }, { "jeonse", "전세" }, { "monthly_rent", "월세" },
    { "with_parents", "부모님 집" }, { "dormitory", "기숙사" }, { "other", "기타" },
  },
  interests = {
    { "jobs", "일자리" }, { "housing", "주거" }, { "education", "교육･직업훈련" },
    { "welfare", "금융･복지･문화" }, { "participation", "참여･기반" },
  },
}

-- code → position, per enumeration
local rank = {}
for field, list in pairs(M.OPTIONS) do
  rank[field] = {}
  for i, pair in ipairs(list) do rank[field][pair[1]] = i end
end

-- API field → column; `list` fields are text[]
M.FIELDS = {
  { api = "birthDate", col = "birth_date" },
  { api = "regionCode", col = "region_code" },
  { api = "employmentStatus", col = "employment_status" },
  { api = "education", col = "education" },
  { api = "major", col = "major" },
  { api = "specialStatus", col = "special_status", list = true },
  { api = "maritalStatus", col = "marital_status" },
  { api = "householdSize", col = "household_size" },
  { api = "housingType", col = "housing_type" },
  { api = "annualIncome", col = "annual_income" },
  { api = "interests", col = "interests", list = true },
}

-- The fields the policy matcher reads; completeness is the share known.
M.MATCHING = { "birthDate", "regionCode", "employmentStatus", "education", "major",
               "specialStatus", "maritalStatus", "householdSize", "housingType", "annualIncome" }

-- Server-derived fields a client may echo back in a PUT; ignored.
local READ_ONLY = { inferred = true, completeness = true, version = true, updatedAt = true }

M.AGE_MIN, M.AGE_MAX = 14, 100
M.HOUSEHOLD_MIN, M.HOUSEHOLD_MAX = 1, 10
M.INCOME_MAX = 1000000000000 -- 1조 won a year: anything above is a typo

-- Today in Asia/Seoul as y, m, d.
local function seoul_today()
  local t = os.date("!*t", os.time() + 9 * 3600)
  return t.year, t.month, t.day
end
M.seoul_today = seoul_today

local function valid_date(s)
  if type(s) ~= "string" then return nil end
  local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return nil end
  local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  if d > mdays[m] + ((m == 2 and leap) and 1 or 0) then return nil end
  return y, m, d
end

local function age_on(by, bm, bd, y, m, d)
  local age = y - by
  if m < bm or (m == bm and d < bd) then age = age - 1 end
  return age
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and v >= -2 ^ 53 and v <= 2 ^ 53
end

-- Validates one field's value (not null); returns the stored value or nil, message.
local validators = {}

function validators.birthDate(v)
  local by, bm, bd = valid_date(v)
  if not by then return nil, "must be a date YYYY-MM-DD" end
  local y, m, d = seoul_today()
  if by * 10000 + bm * 100 + bd > y * 10000 + m * 100 + d then return nil, "must not be in the future" end
  local age = age_on(by, bm, bd, y, m, d)
  if age < M.AGE_MIN or age > M.AGE_MAX then
    return nil, "must give an age between " .. M.AGE_MIN .. " and " .. M.AGE_MAX
  end
  return v
end

function validators.regionCode(v)
  if type(v) ~= "string" then return nil, "must be a region code string" end
  local code = regions.normalize(v)
  if not code then return nil, "is not a known region code (see GET /api/v1/regions)" end
  return code
end

local function enum(field)
  return function(v)
    if type(v) ~= "string" or not rank[field][v] then
      return nil, "must be one of the codes of GET /api/v1/profile/options"
    end
    return v
  end
end

local function enum_list(field)
  return function(v)
    -- lp.json decodes [] and {} alike (an empty table); any other object
    -- has non-index keys and is caught below
    if type(v) ~= "table" then return nil, "must be an array of codes" end
    local seen, out = {}, {}
    for _, code in ipairs(v) do
      if type(code) ~= "string" or not rank[field][code] then
        return nil, "must contain only codes of GET /api/v1/profile/options"
      end
      if not seen[code] then
        seen[code] = true
        out[#out + 1] = code
      end
    end
    -- the number of elements ipairs saw must be all there is (no holes, no keys)
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    local count = 0
    for _ in ipairs(v) do count = count + 1 end
    if n ~= count then return nil, "must be an array of codes" end
    table.sort(out, function(a, b) return rank[field][a] < rank[field][b] end)
    return out
  end
end

for _, f in ipairs { "employmentStatus", "education", "major", "maritalStatus", "housingType" } do
  validators[f] = enum(f)
end
validators.specialStatus = enum_list("specialStatus")
validators.interests = enum_list("interests")

function validators.householdSize(v)
  if not is_int(v) or v < M.HOUSEHOLD_MIN or v > M.HOUSEHOLD_MAX then
    return nil, "must be an integer from 1 to 10"
  end
  return v
end

function validators.annualIncome(v)
  if not is_int(v) or v < 0 then return nil, "must be a non-negative integer (won)" end
  if v > M.INCOME_MAX then return nil, "must be at most 1000000000000" end
  return v
end

local known = {}
for _, f in ipairs(M.FIELDS) do known[f.api] = f end

-- PUT body → { [api field] = value | json.null } for the fields present.
function M.update(body)
  local errors, changes = {}, {}
  local names = {}
  for k in pairs(body) do names[#names + 1] = tostring(k) end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = body[k]
    if known[k] then
      if v == json.null then
        changes[k] = json.null
      else
        local value, msg = validators[k](v)
        if value == nil then
          errors[#errors + 1] = { field = k, message = msg }
        else
          changes[k] = value
        end
      end
    elseif not READ_ONLY[k] then
      errors[#errors + 1] = { field = k, message = "is not a profile field" }
    end
  end
  if #errors > 0 then problem.validation(errors) end
  return changes
end

-- GET /profile/options
function M.options()
  local out = {}
  for field, list in pairs(M.OPTIONS) do
    local items = {}
    for i, pair in ipairs(list) do items[i] = { code = pair[1], label = pair[2] } end
    out[field] = items
  end
  return out
end

return M
