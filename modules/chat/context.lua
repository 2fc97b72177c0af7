-- chat/context.lua — what the flows share: reaching other modules' services
-- (only ever through their service, and only when the module is installed),
-- months in Asia/Seoul, and Korean formatting of money and policies.
local json = require "lp.json"
local log  = require "lp.log"

local M = {}

-- The service module `name` ("policy.service"), or nil when that module is
-- not installed. A module that is installed but fails to load is an error
-- (a bug to see, not to hide).
function M.service(name)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  local msg = tostring(mod)
  if msg:find("module '" .. name .. "' not found", 1, true) then return nil end
  error(mod, 0)
end

-- Calls service `name`.fn(...) and returns its results; nil when the module
-- or function is absent or the call raised (logged): a flow answers with
-- less context rather than not at all.
function M.call(name, fn, ...)
  local svc = M.service(name)
  if not svc or type(svc[fn]) ~= "function" then return nil end
  local res = { pcall(svc[fn], ...) }
  if not res[1] then
    local e = res[2]
    if type(e) == "table" and e.status == 404 then return nil end
    log.warn { msg = "chat context: service call failed", service = name, fn = fn,
               err = type(e) == "table" and (e.code or e.message) or tostring(e) }
    return nil
  end
  return unpack(res, 2, table.maxn(res))
end

function M.present(v)
  return v ~= nil and v ~= json.null
end

-- 1234567 → "1,234,567원"
function M.won(n)
  n = tonumber(n) or 0
  local s = tostring(math.floor(math.abs(n) + 0.5))
  s = s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return (n < 0 and "-" or "") .. s .. "원"
end

-- The calendar month in Asia/Seoul, `offset` months from now ("2026-05").
function M.month(offset, now)
  local t = os.date("!*t", (now or os.time()) + 9 * 3600)
  local m = t.year * 12 + (t.month - 1) + (offset or 0)
  return string.format("%04d-%02d", math.floor(m / 12), m % 12 + 1)
end

-- The month a question asks about: "지난달"/"저번 달" → last month, "3월" →
-- March of this year (or last year's when March is still to come), else the
-- current month.
function M.month_of(text, now)
  if text:find("지난달", 1, true) or text:find("지난 달", 1, true) or text:find("저번 달", 1, true)
      or text:find("저번달", 1, true) or text:find("전월", 1, true) then
    return M.month(-1, now)
  end
  local mm = tonumber(text:match("(%d%d?)%s*월"))
  if mm and mm >= 1 and mm <= 12 then
    local cur = M.month(0, now)
    local y, c = tonumber(cur:sub(1, 4)), tonumber(cur:sub(6, 7))
    if mm > c then y = y - 1 end
    return string.format("%04d-%02d", y, mm)
  end
  return M.month(0, now)
end

function M.month_label(month)
  return string.format("%d년 %d월", tonumber(month:sub(1, 4)), tonumber(month:sub(6, 7)))
end

-- Items of a list answer: {items = {...}} or a plain array.
function M.items(list)
  if type(list) ~= "table" then return {} end
  if type(list.items) == "table" then return list.items end
  return list
end

local STATUS = { open = "신청 가능", upcoming = "신청 예정", closed = "마감" }
M.ELIGIBILITY = { eligible = "자격 충족", possible = "자격 가능성 있음(정보 부족)", ineligible = "자격 미충족" }

-- One line about a policy for a prompt or an offline answer.
function M.policy_line(p)
  local parts = { string.format("[정책 #%s] %s", tostring(p.id), tostring(p.title or "")) }
  if M.present(p.supportSummary) then parts[#parts + 1] = "지원: " .. tostring(p.supportSummary) end
  if M.present(p.summary) then parts[#parts + 1] = tostring(p.summary) end
  if type(p.region) == "table" and M.present(p.region.name) then
    parts[#parts + 1] = "지역: " .. tostring(p.region.name)
  end
  if M.present(p.status) and STATUS[p.status] then
    local period = ""
    if M.present(p.applyEnd) then period = " (~" .. tostring(p.applyEnd) .. ")" end
    parts[#parts + 1] = STATUS[p.status] .. period
  end
  return table.concat(parts, " — ")
end

-- Reasons of a recommendation or eligibility as short Korean text.
function M.reasons_text(reasons)
  if type(reasons) ~= "table" then return nil end
  local out = {}
  for _, r in ipairs(reasons) do
    if type(r) == "table" then
      local d = M.present(r.detail) and tostring(r.detail) or tostring(r.condition or "")
      if d ~= "" then out[#out + 1] = d end
    elseif type(r) == "string" then
      out[#out + 1] = r
    end
    if #out >= 4 then break end
  end
  if #out == 0 then return nil end
  return table.concat(out, ", ")
end

-- A policy as the prompt's context keeps it: id, title and what the model
-- (and the offline template) may say about it.
function M.policy_entry(p, extra)
  local e = { id = tonumber(p.id) or p.id, title = tostring(p.title or ""), line = M.policy_line(p), policy = p }
  if extra then for k, v in pairs(extra) do e[k] = v end end
  return e
end

return M
