-- policy/normalize.lua — one 온통청년 getPlcy record → lifeplan's policy model
-- (the columns of `policies`, migrations/0003_policies.sql). Pure functions,
-- no I/O; the collector calls normalize.record(raw) and stores the result.
--
-- Decisions (POLICY_DATA.md has the source's codes):
--   * every field is optional and may be padded with spaces; blank = absent;
--     "\r\n" → "\n"; a stray backslash before a newline is dropped;
--   * a code list holding "제한없음" (…010 / 0011009) is no condition ({});
--     an unknown code makes the record invalid (skipped and reported) rather
--     than silently widening the condition;
--   * age 0 = open on that side; 0/0 and 1~99 (or wider) = no condition;
--   * income: 0043001 none; 0043002 annual min/max in 만원 (0 = open side);
--     0043003 free text (kept verbatim in income_text) parsed when it states
--     one rule the engine can judge ("중위소득 150% 이하", "월 385만원 이하",
--     "월급여 …", "연 5,000만원 이하", "연소득 …"); anything else is
--     income_kind 'text' (shown as something to check, "possible");
--   * apply period: 0057002 always, 0057003 closed, 0057001 fixed with the
--     dates of aplyYmd (several ranges → the earliest start, latest end);
--   * category from lclsfNm with any middle dot (･ · ㆍ ・) or none, and
--     the older names (교육, 복지문화, 참여권리);
--   * regions: regions.normalize_list (nationwide lists → {}).
-- A record that cannot be normalised raises {reason = "..."}.
local regions = require "policy.regions"

local M = {}

M.SOURCE = "ontong"
M.SOURCE_NAME = "온통청년"

local function invalid(reason)
  error({ reason = reason }, 0)
end

local function text(v)
  if v == nil then return nil end
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then return nil end
  v = v:gsub("\r\n", "\n"):gsub("\r", "\n"):gsub("\\\n", "\n")
  v = v:gsub("^%s+", ""):gsub("%s+$", "")
  if v == "" then return nil end
  return v
end
M.text = text

local function digits(v)
  local s = text(v)
  if s == nil then return nil end
  if not s:match("^%d+$") then return nil, s end
  return tonumber(s)
end

-- "20260701" → "2026-07-01" (validated), nil when blank; raises when malformed.
local function ymd(v, field)
  local s = text(v)
  if s == nil then return nil end
  local y, m, d = s:match("^(%d%d%d%d)(%d%d)(%d%d)$")
  if not y then invalid(field .. " is not YYYYMMDD: " .. s) end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 then mdays[2] = 29 end
  if y < 1990 or y > 2100 or m < 1 or m > 12 or d < 1 or d > mdays[m] then
    invalid(field .. " is not a date: " .. s)
  end
  return string.format("%04d-%02d-%02d", y, m, d)
end

-- "2026-09-08 09:19:37" (Asia/Seoul) → RFC 3339 with +09:00.
local function seoul_ts(v)
  local s = text(v)
  if s == nil then return nil end
  local d, t = s:match("^(%d%d%d%d%-%d%d%-%d%d)[ T](%d%d:%d%d:%d%d)")
  if d then return d .. "T" .. t .. "+09:00" end
  d = s:match("^(%d%d%d%d%-%d%d%-%d%d)$")
  if d then return d .. "T00:00:00+09:00" end
  return nil
end

-- The real API mangles some URLs by decoding HTML entities inside them
-- (&notSrcKeyword → ¬SrcKeyword, &currentPageNo → ¤tPageNo, &region →
-- ®ion); none of these characters belongs in a URL, so put them back.
local function url(v)
  local s = text(v)
  if s == nil then return nil end
  s = s:gsub("\194\172", "&not"):gsub("\194\164", "&curren"):gsub("\194\174", "&reg")
  if not s:match("^https?://[^%s]+$") then
    if s:match("^www%.[^%s]+$") then return "https://" .. s end
    return nil
  end
  return s
end
M.url = url

-- ---- codes -------------------------------------------------------------------

local CODES = {
  job = { prefix = "0013", none = "0013010", map = {
    ["0013001"] = "employed", ["0013002"] = "self_employed", ["0013003"] = "unemployed",
    ["0013004"] = "freelancer", ["0013005"] = "day_laborer", ["0013006"] = "founder",
    ["0013007"] = "short_term", ["0013008"] = "farmer", ["0013009"] = "other" } },
  school = { prefix = "0049", none = "0049010", map = {
    ["0049001"] = "below_high_school", ["0049002"] = "high_school_student",
    ["0049003"] = "high_school_expected", ["0049004"] = "high_school_graduate",
    ["0049005"] = "university_student", ["0049006"] = "university_expected",
    ["0049007"] = "university_graduate", ["0049008"] = "graduate_degree", ["0049009"] = "other" } },
  major = { prefix = "0011", none = "0011009", map = {
    ["0011001"] = "humanities", ["0011002"] = "social", ["0011003"] = "business",
    ["0011004"] = "natural", ["0011005"] = "engineering", ["0011006"] = "arts",
    ["0011007"] = "agriculture", ["0011008"] = "other" } },
  special = { prefix = "0014", none = "0014010", map = {
    ["0014001"] = "sme_employee", ["0014002"] = "woman", ["0014003"] = "basic_livelihood",
    ["0014004"] = "single_parent", ["0014005"] = "disabled", ["0014006"] = "farmer",
    ["0014007"] = "soldier", ["0014008"] = "local_talent", ["0014009"] = "other" } },
}
M.CODES = CODES

-- "0013001,0013003" → {"employed", "unemployed"} in the enumeration's order;
-- {} for blank or 제한없음.
local function code_list(v, kind, field)
  local spec = CODES[kind]
  local s = text(v)
  if s == nil then return {} end
  local seen, none = {}, false
  for code in s:gmatch("[^,%s]+") do
    if code == spec.none then
      none = true
    elseif spec.map[code] then
      seen[code] = true
    else
      invalid(field .. " has an unknown code " .. code)
    end
  end
  if none then return {} end
  local codes = {}
  for code in pairs(seen) do codes[#codes + 1] = code end
  table.sort(codes)
  local out = {}
  for i, code in ipairs(codes) do out[i] = spec.map[code] end
  return out
end

local MARITAL = { ["0055001"] = "married", ["0055002"] = "single", ["0055003"] = false }

-- ---- category ----------------------------------------------------------------

-- lclsfNm with every kind of middle dot and space removed → category.
local CATEGORY_PREFIX = {
  { "일자리", "jobs" }, { "취업", "jobs" }, { "창업", "jobs" },
  { "주거", "housing" }, { "주택", "housing" },
  { "교육", "education" }, { "직업훈련", "education" },
  { "금융", "welfare" }, { "복지", "welfare" }, { "문화", "welfare" }, { "생활", "welfare" },
  { "참여", "participation" }, { "권리", "participation" },
}
M.CATEGORY_LABEL = {
  jobs = "일자리", housing = "주거", education = "교육･직업훈련",
  welfare = "금융･복지･문화", participation = "참여･기반",
}

function M.category(name)
  local s = text(name)
  if s == nil then return nil end
  -- ･ U+FF65, · U+00B7, ㆍ U+318D, ・ U+30FB, and ASCII separators
  s = s:gsub("\239\189\165", ""):gsub("\194\183", ""):gsub("\227\134\141", "")
       :gsub("\227\131\187", ""):gsub("[%s%.,/]", "")
  for _, p in ipairs(CATEGORY_PREFIX) do
    if s:sub(1, #p[1]) == p[1] then return p[2] end
  end
  return nil
end

-- ---- income ------------------------------------------------------------------

local function won_manwon(s)
  -- "5,000" / "385" in 만원 → won
  local n = tonumber((s:gsub(",", "")))
  return n and n * 10000 or nil
end

-- Free income text → {kind = "median"|"monthly"|"annual", pct | max, rest}
-- or nil when no single rule can be read from it safely. `rest` is what the
-- text says besides the parsed rule (other conditions: "무주택 임차가구"), or
-- nil; the engine then also marks the policy's extra condition to check.
function M.parse_income(s)
  s = text(s)
  if s == nil then return nil end
  local t = s:gsub("퍼센트", "%%")
  local function rest_of(a, b)
    local r = (t:sub(1, a - 1) .. " " .. t:sub(b + 1)):gsub("^[%s,;/%-]+", ""):gsub("[%s,;/%-]+$", "")
    if r == "" or r:match("^[%s%p]*$") then return nil end
    return r
  end
  local H = "[\128-\255]*" -- one Korean word (Lua patterns see bytes)
  local found = {}
  -- 중위소득 150% 이하 / 기준 중위소득 100퍼센트 이하
  for a, pct, b in t:gmatch("()중위소득%s*(%d+)%s*%%%s*이하()") do
    a = t:sub(1, a - 1):match("()기준%s*$") or a
    found[#found + 1] = { kind = "median", pct = tonumber(pct), a = a, b = b - 1 }
  end
  -- 월 385만원 이하 / 월급여 385만원 이하 / 월 평균 소득 300만원 이하
  for a, amount, b in t:gmatch("()월%s*" .. H .. "%s*" .. H .. "%s*([%d,]+)%s*만%s*원%s*이하()") do
    local v = won_manwon(amount)
    if v then found[#found + 1] = { kind = "monthly", max = v, a = a, b = b - 1 } end
  end
  -- 연 5,000만원 이하 / 연소득 5000만원 이하 / 연간 소득 1억원 이하
  for a, amount, unit, b in t:gmatch("()연%s*" .. H .. "%s*" .. H .. "%s*([%d,]+)%s*(" .. H .. ")%s*이하()") do
    local v
    if unit == "만원" then v = won_manwon(amount)
    elseif unit == "억원" then v = won_manwon(amount) and won_manwon(amount) * 10000 end
    if v then found[#found + 1] = { kind = "annual", max = v, a = a, b = b - 1 } end
  end
  if #found ~= 1 then return nil end -- none, or two rules we would have to combine
  local f = found[1]
  if (f.pct and (f.pct < 1 or f.pct > 1000)) or (f.max and f.max <= 0) then return nil end
  return { kind = f.kind, pct = f.pct, max = f.max, rest = rest_of(f.a, f.b) }
end

local function income(r, out)
  local kind = text(r.earnCndSeCd)
  local etc = text(r.earnEtcCn)
  out.income_kind = "none"
  out.income_text = etc
  if kind == nil or kind == "0043001" then
    return
  elseif kind == "0043002" then
    local min, bad1 = digits(r.earnMinAmt)
    local max, bad2 = digits(r.earnMaxAmt)
    if bad1 or bad2 then invalid("earnMinAmt/earnMaxAmt are not numbers") end
    min = (min and min > 0) and min * 10000 or nil
    max = (max and max > 0) and max * 10000 or nil
    if min and max and min > max then invalid("earnMinAmt is above earnMaxAmt") end
    if min or max then
      out.income_kind, out.income_min, out.income_max = "annual", min, max
    elseif etc then
      out.income_kind = "text"
    end
  elseif kind == "0043003" then
    if etc == nil then return end
    local p = M.parse_income(etc)
    if p == nil then
      out.income_kind = "text"
    elseif p.kind == "median" then
      out.income_kind, out.income_median_pct = "median", p.pct
    elseif p.kind == "monthly" then
      out.income_kind, out.income_monthly_max = "monthly", p.max
    else
      out.income_kind, out.income_max = "annual", p.max
    end
  else
    invalid("earnCndSeCd has an unknown code " .. kind)
  end
end

-- ---- application period ------------------------------------------------------

local function apply_period(r, out)
  local kind = text(r.aplyPrdSeCd)
  local s = text(r.aplyYmd)
  local starts, ends = {}, {}
  if s then
    for a, b in s:gmatch("(%d%d%d%d%d%d%d%d)%s*~%s*(%d%d%d%d%d%d%d%d)") do
      starts[#starts + 1] = ymd(a, "aplyYmd")
      ends[#ends + 1] = ymd(b, "aplyYmd")
    end
    if #starts == 0 and kind ~= "0057002" and kind ~= "0057003" then
      invalid("aplyYmd is not \"YYYYMMDD ~ YYYYMMDD\": " .. s)
    end
  end
  table.sort(starts)
  table.sort(ends)
  if kind == "0057002" then
    out.apply_period = "always"
  elseif kind == "0057003" then
    out.apply_period = "closed"
  elseif kind == "0057001" or kind == nil then
    out.apply_period = (#starts > 0 or kind) and "fixed" or "always"
  else
    invalid("aplyPrdSeCd has an unknown code " .. kind)
  end
  if out.apply_period ~= "always" and #starts > 0 then
    out.apply_start, out.apply_end = starts[1], ends[#ends]
    if out.apply_start > out.apply_end then invalid("aplyYmd ends before it starts") end
  end
end

-- ---- the record ----------------------------------------------------------------

local function summary_of(s, n)
  if s == nil then return nil end
  local line = s:match("^[^\n]+") or s
  -- leading bullets ("○ ", "ㅇ ", "· ", "- ", "① ")
  local again = true
  while again do
    again = false
    for _, b in ipairs { "○", "ㅇ ", "·", "-", "*", "①", " " } do
      if line:sub(1, #b) == b then line = line:sub(#b + 1); again = true end
    end
  end
  line = line:gsub("%s+", " ")
  if #line == 0 then return nil end
  -- cut at a character boundary near n bytes (UTF-8 Korean is 3 bytes)
  if #line > n then
    local cut = n
    while cut > 0 and line:byte(cut + 1) and line:byte(cut + 1) >= 0x80 and line:byte(cut + 1) < 0xC0 do
      cut = cut - 1
    end
    line = line:sub(1, cut) .. "…"
  end
  return line
end
M.summary_of = summary_of

function M.source_url(external_id)
  return "https://www.youthcenter.go.kr/youthPolicy/ythPlcyTotalSearch/ythPlcyDetail/" .. external_id
end

-- The normalised policy (column → value; nil = NULL). Raises {reason=...}.
function M.record(r)
  if type(r) ~= "table" then invalid("record is not an object") end
  local id = text(r.plcyNo)
  if id == nil then invalid("plcyNo is missing") end
  if not id:match("^[%w%-]+$") or #id > 40 then invalid("plcyNo is not an id: " .. id) end
  local out = { source = M.SOURCE, external_id = id }
  out.title = text(r.plcyNm)
  if out.title == nil then invalid("plcyNm is missing") end
  out.category = M.category(r.lclsfNm)
  if out.category == nil then invalid("lclsfNm is not a known category: " .. tostring(text(r.lclsfNm))) end
  out.subcategory = text(r.mclsfNm)
  out.description = text(r.plcyExplnCn)
  out.summary = summary_of(out.description or text(r.plcySprtCn), 120)
  out.support_content = text(r.plcySprtCn)
  local kw, seen = {}, {}
  for k in (text(r.plcyKywdNm) or ""):gmatch("[^,]+") do
    k = text(k)
    if k and not seen[k] then seen[k] = true; kw[#kw + 1] = k end
  end
  out.keywords = kw
  out.agency = text(r.sprvsnInstCdNm) or text(r.rgtrInstCdNm)
  out.operating_agency = text(r.operInstCdNm)

  local codes, why = regions.normalize_list(r.zipCd)
  if codes == nil then invalid("zipCd: " .. why) end
  out.region_codes = codes

  local amin, bad1 = digits(r.sprtTrgtMinAge)
  local amax, bad2 = digits(r.sprtTrgtMaxAge)
  if bad1 or bad2 then invalid("sprtTrgtMinAge/sprtTrgtMaxAge are not numbers") end
  if amin == 0 then amin = nil end
  if amax == 0 then amax = nil end
  if (amin or 0) <= 1 and (amax or 150) >= 99 then amin, amax = nil, nil end
  if (amin and amin > 150) or (amax and amax > 150) then invalid("age is out of range") end
  if amin and amax and amin > amax then invalid("sprtTrgtMinAge is above sprtTrgtMaxAge") end
  out.age_min, out.age_max = amin, amax

  income(r, out)

  out.employment_codes = code_list(r.jobCd, "job", "jobCd")
  out.education_codes = code_list(r.schoolCd, "school", "schoolCd")
  out.major_codes = code_list(r.plcyMajorCd, "major", "plcyMajorCd")
  out.special_codes = code_list(r.sbizCd, "special", "sbizCd")
  local m = text(r.mrgSttsCd)
  if m ~= nil then
    if MARITAL[m] == nil then invalid("mrgSttsCd has an unknown code " .. m) end
    out.marital_status = MARITAL[m] or nil
  end
  out.housing_types = {}
  out.extra_conditions = text(r.addAplyQlfcCndCn)
  out.excluded_targets = text(r.ptcpPrpTrgtCn)

  apply_period(r, out)
  out.business_start = ymd(r.bizPrdBgngYmd, "bizPrdBgngYmd")
  out.business_end = ymd(r.bizPrdEndYmd, "bizPrdEndYmd")
  if out.business_start and out.business_end and out.business_start > out.business_end then
    out.business_start, out.business_end = out.business_end, out.business_start
  end
  if out.income_kind == "median" then
    local y = (out.apply_start or out.business_start or text(r.frstRegDt) or ""):match("^(%d%d%d%d)")
    out.income_year = y and tonumber(y) or nil
  end

  out.how_to_apply = text(r.plcyAplyMthdCn)
  out.selection_method = text(r.srngMthdCn)
  out.documents = text(r.sbmsnDcmntCn)
  out.apply_url = url(r.aplyUrlAddr)
  local refs = {}
  for _, k in ipairs { "refUrlAddr1", "refUrlAddr2" } do
    local u = url(r[k])
    if u and u ~= refs[1] then refs[#refs + 1] = u end
  end
  out.ref_urls = refs
  out.source_url = M.source_url(id)
  out.source_created_at = seoul_ts(r.frstRegDt)
  out.source_updated_at = seoul_ts(r.lastMdfcnDt)
  return out
end

-- The columns a record fills, in a fixed order (the upsert, the hash and the
-- field-level change log all use this list).
M.FIELDS = {
  "title", "category", "subcategory", "summary", "description", "support_content", "keywords",
  "agency", "operating_agency", "region_codes", "age_min", "age_max", "income_kind", "income_min",
  "income_max", "income_median_pct", "income_monthly_max", "income_year", "income_text",
  "employment_codes", "education_codes", "major_codes", "special_codes", "marital_status",
  "housing_types", "household_min", "household_max", "extra_conditions", "excluded_targets",
  "apply_period", "apply_start", "apply_end", "business_start", "business_end", "how_to_apply",
  "selection_method", "documents", "apply_url", "ref_urls", "source_url", "source_created_at",
  "source_updated_at",
}
M.ARRAY_FIELDS = {
  keywords = true, region_codes = true, employment_codes = true, education_codes = true,
  major_codes = true, special_codes = true, housing_types = true, ref_urls = true,
}

-- A deterministic JSON text of a value (sorted keys), for hashing and for
-- comparing old and new values of a field.
local function canon(v, buf)
  local t = type(v)
  if v == nil then
    buf[#buf + 1] = "null"
  elseif t == "boolean" or t == "number" then
    buf[#buf + 1] = tostring(v)
  elseif t == "string" then
    buf[#buf + 1] = string.format("%q", v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      buf[#buf + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then buf[#buf + 1] = "," end
        canon(x, buf)
      end
      buf[#buf + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      buf[#buf + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then buf[#buf + 1] = "," end
        buf[#buf + 1] = string.format("%q:", k)
        canon(v[k], buf)
      end
      buf[#buf + 1] = "}"
    end
  else
    buf[#buf + 1] = "null"
  end
end

function M.canonical(v)
  local buf = {}
  canon(v, buf)
  return table.concat(buf)
end

-- The text the content hash is computed over: every field, in order.
function M.hash_input(p)
  local buf = {}
  for _, f in ipairs(M.FIELDS) do
    buf[#buf + 1] = f .. "=" .. M.canonical(p[f])
  end
  return table.concat(buf, "\n")
end

-- Field names whose values differ between two normalised records.
function M.diff(old, new)
  local changed = {}
  for _, f in ipairs(M.FIELDS) do
    if M.canonical(old[f]) ~= M.canonical(new[f]) then changed[#changed + 1] = f end
  end
  return changed
end

return M
