-- chat/types.lua — validators and response shapes of the chat module.
local json    = require "lp.json"
local problem = require "shared.problem"

local M = {}

M.CONTENT_MAX = 2000
M.TITLE_MAX = 200
M.TITLE_DEFAULT_CHARS = 40 -- a session's default title: the first question, shortened

M.INTENTS = {
  "policy_search", "policy_eligibility", "policy_detail", "spending_summary",
  "budget_status", "saving_advice", "small_talk", "unknown",
}

-- Category labels (API.md), used when an answer names a ledger category.
M.CATEGORY_LABELS = {
  food = "식비", cafe = "카페·간식", transport = "교통", housing = "주거·관리비",
  utilities = "공과금", telecom = "통신", shopping = "쇼핑", health = "의료·건강",
  education = "교육", culture = "문화·여가", travel = "여행", insurance = "보험",
  savings = "저축·투자", loan = "대출 상환", gift = "경조사·선물", etc = "기타",
  salary = "급여", side = "부수입", allowance = "용돈", benefit = "지원금·수당",
  interest = "금융 수익", etc_income = "기타 수입",
}

-- Characters of a UTF-8 string (continuation bytes do not count). Invalid
-- UTF-8 is rejected where user text enters, so this is exact there.
function M.utf8_len(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end

local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then len = 3
    elseif c >= 0xF0 and c <= 0xF4 then len = 4
    else return false end
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if not b or b < 0x80 or b > 0xBF then return false end
    end
    i = i + len
  end
  return true
end

-- The first n characters of s (whole UTF-8 sequences).
function M.utf8_prefix(s, n)
  local count, i = 0, 1
  while i <= #s do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    if count == n then return s:sub(1, i - 1) end
    count = count + 1
    i = i + len
  end
  return s
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- A session id from the path: anything but a positive integer is 404, the
-- same answer as someone else's session.
function M.session_id(raw)
  local id = tonumber(raw)
  if not id or id < 1 or id ~= math.floor(id) or id > 2 ^ 53 or not tostring(raw):match("^%d+$") then
    problem.not_found("no such chat session")
  end
  return id
end

-- POST /chat/sessions/:id body → the question (1–2000 characters after trimming).
function M.message_input(body)
  local content = body.content
  if type(content) ~= "string" then
    problem.validation { { field = "content", message = "must be a string of 1 to 2000 characters" } }
  end
  if not valid_utf8(content) then
    problem.validation { { field = "content", message = "must be valid UTF-8" } }
  end
  content = trim(content)
  local n = M.utf8_len(content)
  if n < 1 or n > M.CONTENT_MAX then
    problem.validation { { field = "content", message = "must be 1 to 2000 characters" } }
  end
  return content
end

-- POST /chat/sessions body (may be absent) → title ("" until the first question).
function M.session_input(body)
  local title = body and body.title
  if title == nil or title == json.null then return "" end
  if type(title) ~= "string" or not valid_utf8(title) then
    problem.validation { { field = "title", message = "must be a string of at most 200 characters" } }
  end
  title = trim(title)
  if M.utf8_len(title) > M.TITLE_MAX then
    problem.validation { { field = "title", message = "must be at most 200 characters" } }
  end
  return title
end

-- The default title: the first question on one line, shortened with "…".
function M.default_title(content)
  local line = trim(content:gsub("%s+", " "))
  if M.utf8_len(line) <= M.TITLE_DEFAULT_CHARS then return line end
  return trim(M.utf8_prefix(line, M.TITLE_DEFAULT_CHARS - 1)) .. "…"
end

function M.limit(raw)
  if raw == nil then return 20 end
  local n = tonumber(raw)
  if not n or n ~= math.floor(n) or n < 1 or n > 100 then
    problem.validation { { field = "limit", message = "must be an integer from 1 to 100" } }
  end
  return n
end

-- Shapes ----------------------------------------------------------------

function M.message_out(row)
  local citations = row.citations
  if type(citations) ~= "table" or #citations == 0 then citations = json.empty_array end
  return {
    id = row.id, role = row.role, content = row.content,
    intent = row.intent or json.null,
    citations = citations,
    degraded = row.degraded == true,
    createdAt = row.created_at,
  }
end

function M.session_out(row, last)
  return {
    id = row.id, title = row.title,
    createdAt = row.created_at, updatedAt = row.updated_at,
    lastMessage = last and M.message_out(last) or json.null,
  }
end

return M
