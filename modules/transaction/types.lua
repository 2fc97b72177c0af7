-- transaction/types.lua — the ledger's vocabulary and validators: categories,
-- months, dates, amounts, request bodies, query strings, paging cursors and
-- the API shapes of rows. Pure functions, no I/O.
--
-- Decisions written down here (API.md is silent on them):
-- - amount: a JSON number with no fractional part, 1..MAX_AMOUNT. JSON (and
--   JSON Schema's "integer") does not tell 100 from 100.0, so 100.0 is the
--   integer 100; 100.5, "100", -1, 0, 1e13, true are rejected.
-- - dates and months: real calendar dates from MIN_YEAR to MAX_YEAR.
-- - memo: optional; null or absent stores null; at most 200 characters
--   (Unicode code points, not bytes), valid UTF-8 without NUL.
-- - PUT replaces the whole transaction: type, amount, category and
--   occurredOn are required, an absent memo clears it.
-- - query errors: month/type/category/limit values → 422 with `errors`
--   naming the parameter; an unreadable cursor → 400 (it is opaque).
-- - unknown body fields and query parameters are ignored.
local json    = require "lp.json"
local crypto  = require "lp.crypto"
local problem = require "shared.problem"

local M = {}

-- 100억 원: beyond any young household's single entry, and low enough that
-- every sum the API reports stays exact: lp.json writes numbers with 14
-- significant digits, and a month would need 10,000 maximal entries to
-- pass 10^14.
M.MAX_AMOUNT    = 10000000000
M.MEMO_MAX      = 200
M.DEFAULT_LIMIT = 100
M.MAX_LIMIT     = 1000
M.MIN_YEAR      = 1970
M.MAX_YEAR      = 2099
M.KEY_MAX       = 255           -- Idempotency-Key length

-- API.md's lists, in display order.
M.CATEGORIES = {
  { code = "food",       label = "식비",         type = "expense" },
  { code = "cafe",       label = "카페·간식",    type = "expense" },
  { code = "transport",  label = "교통",         type = "expense" },
  { code = "housing",    label = "주거·관리비",  type = "expense" },
  { code = "utilities",  label = "공과금",       type = "expense" },
  { code = "telecom",    label = "통신",         type = "expense" },
  { code = "shopping",   label = "쇼핑",         type = "expense" },
  { code = "health",     label = "의료·건강",    type = "expense" },
  { code = "education",  label = "교육",         type = "expense" },
  { code = "culture",    label = "문화·여가",    type = "expense" },
  { code = "travel",     label = "여행",         type = "expense" },
  { code = "insurance",  label = "보험",         type = "expense" },
  { code = "savings",    label = "저축·투자",    type = "expense" },
  { code = "loan",       label = "대출 상환",    type = "expense" },
  { code = "gift",       label = "경조사·선물",  type = "expense" },
  { code = "etc",        label = "기타",         type = "expense" },
  { code = "salary",     label = "급여",         type = "income" },
  { code = "side",       label = "부수입",       type = "income" },
  { code = "allowance",  label = "용돈",         type = "income" },
  { code = "benefit",    label = "지원금·수당",  type = "income" },
  { code = "interest",   label = "금융 수익",    type = "income" },
  { code = "etc_income", label = "기타 수입",    type = "income" },
}

M.CATEGORY = {}            -- code → {code, label, type}
M.EXPENSE_CODES = {}       -- in display order, for SQL ordering
for i, c in ipairs(M.CATEGORIES) do
  c.order = i
  M.CATEGORY[c.code] = c
  if c.type == "expense" then M.EXPENSE_CODES[#M.EXPENSE_CODES + 1] = c.code end
end

M.TYPES = { income = true, expense = true }
M.TYPE_LABEL = { income = "수입", expense = "지출" }

-- ---- scalars ---------------------------------------------------------------

local function days_in_month(y, m)
  if m == 2 then
    local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
    return leap and 29 or 28
  end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- "YYYY-MM-DD" naming a real day in range → the same string, else nil.
function M.parse_date(s)
  if type(s) ~= "string" then return nil end
  local y, m, d = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if y < M.MIN_YEAR or y > M.MAX_YEAR or m < 1 or m > 12 then return nil end
  if d < 1 or d > days_in_month(y, m) then return nil end
  return s
end

-- "YYYY-MM" in range → the same string, else nil.
function M.parse_month(s)
  if type(s) ~= "string" then return nil end
  local y, m = s:match("^(%d%d%d%d)-(%d%d)$")
  if not y then return nil end
  y, m = tonumber(y), tonumber(m)
  if y < M.MIN_YEAR or y > M.MAX_YEAR or m < 1 or m > 12 then return nil end
  return s
end

-- The first day of a "YYYY-MM" month, as SQL takes it.
function M.month_start(month)
  return month .. "-01"
end

-- An integer JSON number in [lo, hi], else nil. Rejects strings, booleans,
-- NaN, infinities and fractions.
local function integer_in(v, lo, hi)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return nil end
  if v ~= math.floor(v) or v < lo or v > hi then return nil end
  return v
end
M.integer_in = integer_in

-- Number of code points of a valid UTF-8 string without NUL; nil otherwise.
local function utf8_length(s)
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = s:byte(i)
    local extra, min
    if c == 0 then return nil
    elseif c < 0x80 then extra, min = 0, 0
    elseif c >= 0xC2 and c <= 0xDF then extra, min = 1, 0x80
    elseif c >= 0xE0 and c <= 0xEF then extra, min = 2, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then extra, min = 3, 0x10000
    else return nil end
    if i + extra > len then return nil end
    local cp = extra == 0 and c or (c % (2 ^ (6 - extra)))
    for k = 1, extra do
      local b = s:byte(i + k)
      if b < 0x80 or b > 0xBF then return nil end
      cp = cp * 64 + (b - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
    n = n + 1
    i = i + extra + 1
  end
  return n
end
M.utf8_length = utf8_length

-- ---- request bodies ----------------------------------------------------------

-- POST/PUT /transactions body → {type, amount, category, occurred_on, memo}
-- (memo nil for null). Raises one 422 listing every invalid field.
function M.transaction_input(body)
  local errors = {}
  local function bad(field, message) errors[#errors + 1] = { field = field, message = message } end

  local t = body.type
  if t == nil or t == json.null then
    bad("type", "is required")
  elseif not M.TYPES[t] then
    bad("type", "must be income or expense")
    t = nil
  end

  local amount = body.amount
  if amount == nil or amount == json.null then
    bad("amount", "is required")
  elseif not integer_in(amount, 1, M.MAX_AMOUNT) then
    bad("amount", "must be a positive integer up to " .. string.format("%d", M.MAX_AMOUNT))
  end

  local category = body.category
  if category == nil or category == json.null then
    bad("category", "is required")
  elseif type(category) ~= "string" or not M.CATEGORY[category] then
    bad("category", "is not a known category")
  elseif t and M.CATEGORY[category].type ~= t then
    bad("category", "is not an " .. t .. " category")
  end

  local on = body.occurredOn
  if on == nil or on == json.null then
    bad("occurredOn", "is required")
  elseif not M.parse_date(on) then
    bad("occurredOn", "must be a calendar date YYYY-MM-DD")
  end

  local memo = body.memo
  if memo == json.null then memo = nil end
  if memo ~= nil then
    local n = type(memo) == "string" and utf8_length(memo)
    if type(memo) ~= "string" then
      bad("memo", "must be a string")
    elseif not n then
      bad("memo", "must be valid UTF-8 text")
    elseif n > M.MEMO_MAX then
      bad("memo", "must be at most " .. M.MEMO_MAX .. " characters")
    end
  end

  if #errors > 0 then problem.validation(errors) end
  return { type = t, amount = amount, category = category, occurred_on = on, memo = memo }
end

-- The canonical text of a validated transaction input: what an
-- Idempotency-Key is bound to (so a retry that re-serialises the same
-- values in another key order or spacing still counts as the same request).
function M.request_hash(input)
  local canon = table.concat({
    "POST /api/v1/transactions", input.type, string.format("%d", input.amount), input.category,
    input.occurred_on, input.memo == nil and "\0null" or ("\1" .. input.memo),
  }, "\n")
  return crypto.hex(crypto.sha256(canon))
end

-- The Idempotency-Key header: 1..255 visible ASCII characters, or nil when
-- absent. Raises 422 when malformed.
function M.idempotency_key(v)
  if v == nil then return nil end
  if #v < 1 or #v > M.KEY_MAX or not v:match("^[\33-\126]+$") then
    problem.validation({ { field = "Idempotency-Key",
                           message = "must be 1 to " .. M.KEY_MAX .. " visible ASCII characters" } })
  end
  return v
end

-- POST /budgets body → {month, category (nil = overall), amount (0 = remove)}.
function M.budget_input(body)
  local errors = {}
  local function bad(field, message) errors[#errors + 1] = { field = field, message = message } end
  local month = body.month
  if month == nil or month == json.null then
    bad("month", "is required")
  elseif not M.parse_month(month) then
    bad("month", "must be a month YYYY-MM")
  end
  local category = body.category
  if category == json.null then category = nil end
  if category ~= nil then
    local c = type(category) == "string" and M.CATEGORY[category]
    if not c then
      bad("category", "is not a known category")
    elseif c.type ~= "expense" then
      bad("category", "must be an expense category (or null for the overall budget)")
    end
  end
  local amount = body.amount
  if amount == nil or amount == json.null then
    bad("amount", "is required")
  elseif not integer_in(amount, 0, M.MAX_AMOUNT) then
    bad("amount", "must be an integer from 0 to " .. string.format("%d", M.MAX_AMOUNT))
  end
  if #errors > 0 then problem.validation(errors) end
  return { month = month, category = category, amount = amount }
end

-- ---- query strings ---------------------------------------------------------

-- Cursors are opaque to clients: the (occurredOn, id) of a page's last item.
function M.encode_cursor(occurred_on, id)
  return crypto.b64url_encode(string.format("t%s:%d", occurred_on, id))
end

function M.decode_cursor(s)
  local ok, raw = pcall(crypto.b64url_decode, s)
  local on, id
  if ok and type(raw) == "string" then on, id = raw:match("^t(%d%d%d%d%-%d%d%-%d%d):(%d+)$") end
  id = id and #id <= 16 and tonumber(id)
  if not (on and M.parse_date(on) and id and id >= 1 and id <= 2 ^ 53) then
    problem.bad_request("cursor is not valid")
  end
  return { occurred_on = on, id = id }
end

-- ?month= → "YYYY-MM", or nil when absent (the caller defaults to the
-- current Seoul month). Adds to errors when invalid.
local function month_param(q, errors)
  local v = q.month
  if v == nil or v == "" then return nil end
  if not M.parse_month(v) then
    errors[#errors + 1] = { field = "month", message = "must be a month YYYY-MM" }
  end
  return v
end

-- GET /transactions query → {month (or nil), type, category, limit, cursor}.
function M.list_query(q)
  local errors = {}
  local r = { month = month_param(q, errors), limit = M.DEFAULT_LIMIT }
  if q.type ~= nil and q.type ~= "" then
    if not M.TYPES[q.type] then
      errors[#errors + 1] = { field = "type", message = "must be income or expense" }
    end
    r.type = q.type
  end
  if q.category ~= nil and q.category ~= "" then
    local c = M.CATEGORY[q.category]
    if not c then
      errors[#errors + 1] = { field = "category", message = "is not a known category" }
    elseif r.type and M.TYPES[r.type] and c.type ~= r.type then
      errors[#errors + 1] = { field = "category", message = "is not an " .. r.type .. " category" }
    end
    r.category = q.category
  end
  if q.limit ~= nil and q.limit ~= "" then
    local n = tostring(q.limit):match("^%d+$") and #q.limit <= 6 and tonumber(q.limit)
    if not n or n < 1 or n > M.MAX_LIMIT then
      errors[#errors + 1] = { field = "limit", message = "must be an integer from 1 to " .. M.MAX_LIMIT }
    else
      r.limit = n
    end
  end
  if #errors > 0 then problem.validation(errors) end
  if q.cursor ~= nil and q.cursor ~= "" then r.cursor = M.decode_cursor(q.cursor) end
  return r
end

-- ?month= alone (budgets, export) → "YYYY-MM" or nil.
function M.month_query(q)
  local errors = {}
  local month = month_param(q, errors)
  if #errors > 0 then problem.validation(errors) end
  return month
end

-- A path id: a positive integer, or nil (answered 404 like a missing row).
function M.path_id(s)
  if type(s) ~= "string" or not s:match("^%d+$") or #s > 15 then return nil end
  local n = tonumber(s)
  if n < 1 then return nil end
  return n
end

-- ---- shapes ------------------------------------------------------------------

-- A transactions row (lp.db shape) → the API's transaction.
function M.transaction(row)
  return {
    id         = row.id,
    type       = row.type,
    amount     = row.amount,
    category   = row.category,
    occurredOn = row.occurred_on,
    memo       = row.memo == nil and json.null or row.memo,
    createdAt  = row.created_at,
    updatedAt  = row.updated_at,
  }
end

function M.categories()
  local items = {}
  for i, c in ipairs(M.CATEGORIES) do
    items[i] = { code = c.code, label = c.label, type = c.type }
  end
  return { items = json.array(items), nextCursor = json.null }
end

-- ---- CSV ---------------------------------------------------------------------

-- One CSV field (RFC 4180). Text that a spreadsheet would run as a formula
-- (=, +, -, @, tab, CR first) gets a leading apostrophe (OWASP CSV injection).
function M.csv_field(v)
  local s = tostring(v)
  if s:match("^[=+%-@\t\r]") then s = "'" .. s end
  if s:find('[",\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

M.CSV_BOM = "\239\187\191"
M.CSV_HEADER = { "날짜", "구분", "카테고리", "금액", "메모" }

-- A transactions row → one CSV line (CRLF-terminated).
function M.csv_line(row)
  local c = M.CATEGORY[row.category]
  local fields = {
    row.occurred_on, M.TYPE_LABEL[row.type] or row.type, c and c.label or row.category,
    string.format("%d", row.amount), row.memo or "",
  }
  for i, f in ipairs(fields) do fields[i] = M.csv_field(f) end
  return table.concat(fields, ",") .. "\r\n"
end

-- ---- budget notifications -------------------------------------------------------

local function won(n)
  local s = string.format("%d", n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end
M.won = won

-- The notification for a budget line that reached `level` (80 or 100).
-- line: {month = "YYYY-MM", category = code or nil, amount, spent}.
function M.budget_notification(line, level)
  local m = tonumber(line.month:sub(6, 7))
  local what = line.category and M.CATEGORY[line.category].label or "전체"
  local title, body
  if level >= 100 then
    if line.spent > line.amount then
      title = string.format("%s 예산을 초과했어요", what)
      body = string.format("%d월 %s 예산 %s원 중 %s원을 써서 %s원 초과했어요.", m, what,
                           won(line.amount), won(line.spent), won(line.spent - line.amount))
    else
      title = string.format("%s 예산을 모두 사용했어요", what)
      body = string.format("%d월 %s 예산 %s원을 모두 사용했어요.", m, what, won(line.amount))
    end
  else
    title = string.format("%s 예산의 80%%를 사용했어요", what)
    body = string.format("%d월 %s 예산 %s원 중 %s원(%d%%)을 사용했어요. 남은 금액은 %s원이에요.",
                         m, what, won(line.amount), won(line.spent),
                         math.floor(line.spent * 100 / line.amount), won(line.amount - line.spent))
  end
  return {
    type = "budget", title = title, body = body,
    data = { month = line.month, category = line.category or json.null },
    dedupe_key = string.format("budget:%s:%s:%d", line.month, line.category or "total", level),
  }
end

return M
