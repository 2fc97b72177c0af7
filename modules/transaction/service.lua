-- transaction/service.lua — the household ledger: transactions, monthly
-- views, budgets, budget alerts and the figures other modules read.
--
-- Every statement that touches user data carries the user id in its WHERE
-- clause (or VALUES), so another user's row is simply not found.
--
-- Months are calendar months in Asia/Seoul. occurred_on is a date the app
-- already chose in the user's (Seoul) calendar, so a month is the date range
-- [YYYY-MM-01, next month's first day) with no time-zone arithmetic; the
-- time zone only decides what "now" is (the current month when ?month= is
-- absent, the last three full months of monthly_averages). Korea has kept
-- UTC+9 without daylight saving since 1988, so Seoul time is UTC + 9 h.
-- LIFEPLAN_NOW (an RFC 3339 instant) fixes the clock for tests; it is
-- ignored when LIFEPLAN_ENV=production.
--
-- Other modules use:
--   monthly_averages(user_id)        → {monthlyIncome, monthlyExpense, basedOnMonths}
--   month_summary(user_id, "YYYY-MM") → {month, income, expense, balance, byCategory}
--   budget_view(user_id, "YYYY-MM")   → GET /budgets's body
local db           = require "lp.db"
local json         = require "lp.json"
local log          = require "lp.log"
local problem      = require "shared.problem"
local types        = require "transaction.types"
local notification = require "notification.service"

local M = {}

local COLS = "id, type, amount, category, occurred_on, memo, created_at, updated_at"

-- A month's date range, as SQL conditions on $2 = the month's first day.
local IN_MONTH = "occurred_on >= $2::date AND occurred_on < ($2::date + interval '1 month')::date"

-- ---- clock -------------------------------------------------------------------

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- "2026-10-31T23:30:00+09:00" (or …Z, fractions allowed) → Unix seconds.
local function parse_instant(s)
  local y, mo, d, h, mi, sec, rest =
    s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)%.?%d*(.*)$")
  if not y then return nil end
  local offset = 0
  if rest ~= "Z" and rest ~= "z" then
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60 * (sign == "-" and -1 or 1)
  end
  return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 +
         tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - offset
end
M.parse_instant = parse_instant

-- Today's date in Asia/Seoul, "YYYY-MM-DD".
function M.seoul_today()
  local now = os.time()
  local fixed = os.getenv("LIFEPLAN_NOW")
  if fixed and fixed ~= "" and os.getenv("LIFEPLAN_ENV") ~= "production" then
    now = parse_instant(fixed) or now
  end
  return os.date("!%Y-%m-%d", now + 9 * 3600)
end

function M.current_month()
  return M.seoul_today():sub(1, 7)
end

-- ---- transactions ------------------------------------------------------------

local SUMMARY_SQL = [[
  SELECT type, category, sum(amount) AS amount, count(*)::int AS count
    FROM transactions
   WHERE user_id = $1 AND ]] .. IN_MONTH .. [[

   GROUP BY type, category
   ORDER BY type, amount DESC, category]]

-- PostgreSQL's per-category sums → the summary (the two type totals are
-- the sums of at most 22 groups; a GROUPING SETS query doing it in SQL
-- measured twice as slow).
local function summary_of(rows)
  local s = { income = 0, expense = 0, byCategory = {} }
  for _, r in ipairs(rows) do
    s[r.type] = s[r.type] + r.amount
    s.byCategory[#s.byCategory + 1] =
      { category = r.category, type = r.type, amount = r.amount, count = r.count }
  end
  s.balance = s.income - s.expense
  s.byCategory = json.array(s.byCategory)
  return s
end

-- GET /transactions: one page of the month, newest first (keyset on
-- (occurred_on, id), so inserts between pages neither repeat nor skip an
-- item), and the whole month's summary — both in one round trip. The type
-- and category filters narrow the items, not the summary.
function M.list(user_id, q)
  local month = q.month or M.current_month()
  local c = q.cursor or {}
  local results = db.batch {
    { "SELECT " .. COLS .. [[
        FROM transactions
       WHERE user_id = $1 AND ]] .. IN_MONTH .. [[

         AND ($3::text IS NULL OR type = $3::text)
         AND ($4::text IS NULL OR category = $4::text)
         AND ($5::date IS NULL OR (occurred_on, id) < ($5::date, $6::bigint))
       ORDER BY occurred_on DESC, id DESC
       LIMIT $7]],
      user_id, types.month_start(month), q.type or db.null, q.category or db.null,
      c.occurred_on or db.null, c.id or db.null, q.limit + 1 },
    { SUMMARY_SQL, user_id, types.month_start(month) },
  }
  local rows, items = results[1], {}
  for i = 1, math.min(#rows, q.limit) do items[i] = types.transaction(rows[i]) end
  local next_cursor = json.null
  if #rows > q.limit then
    local last = rows[q.limit]
    next_cursor = types.encode_cursor(last.occurred_on, last.id)
  end
  return { month = month, items = json.array(items), nextCursor = next_cursor,
           summary = summary_of(results[2]) }
end

function M.month_summary(user_id, month)
  local s = summary_of(db.query(SUMMARY_SQL, user_id, types.month_start(month)))
  s.month = month
  return s
end

-- Budget alerts after an expense was written: every line of its month that
-- it counts toward (its category and the overall line) is checked against
-- 80% and 100%; notification dedupe keys make each fire once per line and
-- month, also when concurrent writes both see the threshold crossed. Only
-- the highest threshold reached is sent (50% → 120% in one write is one
-- "exceeded" alert, not two). The write is already committed: a failure
-- here is logged, never turned into a failed response.
local function check_budgets(user_id, row)
  if row.type ~= "expense" then return end
  local month = row.occurred_on:sub(1, 7)
  local ok, err = pcall(function()
    local lines = db.query([[
      SELECT b.category, b.amount,
             (SELECT coalesce(sum(t.amount), 0) FROM transactions t
               WHERE t.user_id = b.user_id AND t.type = 'expense'
                 AND t.occurred_on >= b.month
                 AND t.occurred_on < (b.month + interval '1 month')::date
                 AND (b.category IS NULL OR t.category = b.category)) AS spent
        FROM budgets b
       WHERE b.user_id = $1 AND b.month = $2::date
         AND (b.category IS NULL OR b.category = $3)]],
      user_id, types.month_start(month), row.category)
    for _, l in ipairs(lines) do
      local level = (l.spent >= l.amount and 100) or (l.spent * 5 >= l.amount * 4 and 80) or nil
      if level then
        notification.create(user_id, types.budget_notification(
          { month = month, category = l.category, amount = l.amount, spent = l.spent }, level))
      end
    end
  end)
  if not ok then
    log.warn { msg = "budget alert check failed", user = user_id, error = tostring(err) }
  end
end

local INSERT_SQL = [[
  INSERT INTO transactions (user_id, type, amount, category, occurred_on, memo)
  VALUES ($1, $2, $3, $4, $5::date, $6)
  RETURNING ]] .. COLS

local function insert_params(user_id, t)
  return user_id, t.type, t.amount, t.category, t.occurred_on, t.memo or db.null
end

-- POST /transactions → status, body (a table, or the stored JSON text of
-- a replay), replayed.
--
-- With an Idempotency-Key, one database transaction claims the key
-- (INSERT ... ON CONFLICT DO NOTHING on its primary key), inserts the
-- transaction and stores the response. A concurrent request with the same
-- key blocks on the uncommitted key row until that transaction ends, then
-- finds the key taken and reads the committed response: an in-progress key
-- is never visible, and there is never a second row. Keys live 24 h; an
-- expired one is deleted and claimed anew. Same key, other request → 422.
function M.create(user_id, input, key)
  if not key then
    local row = db.query(INSERT_SQL, insert_params(user_id, input))[1]
    check_budgets(user_id, row)
    return 201, types.transaction(row), false
  end
  local hash = types.request_hash(input)
  local r = db.tx(function(q)
    q.query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_at <= now()",
            user_id, key)
    local claimed = q.query([[
      INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
      ON CONFLICT (user_id, key) DO NOTHING
      RETURNING true AS claimed]], user_id, key, hash)
    if not claimed[1] then
      local prev = q.query([[
        SELECT request_hash, status, response FROM idempotency_keys
         WHERE user_id = $1 AND key = $2]], user_id, key)[1]
      return { prev = prev or false }
    end
    local row = q.query(INSERT_SQL, insert_params(user_id, input))[1]
    local body = json.encode(types.transaction(row))
    q.query([[UPDATE idempotency_keys SET status = 201, response = $3, transaction_id = $4
               WHERE user_id = $1 AND key = $2]], user_id, key, body, row.id)
    return { row = row, body = body }
  end)
  if r.row then
    check_budgets(user_id, r.row)
    return 201, r.body, false
  end
  local prev = r.prev
  if not prev or not prev.status then
    -- Only possible if the key expired and was re-claimed in between.
    problem.raise(409, "conflict", "a request with this Idempotency-Key is in progress; retry")
  end
  if prev.request_hash ~= hash then
    problem.raise(422, "validation_failed",
      "Idempotency-Key was already used for a different request",
      { errors = { { field = "Idempotency-Key",
                     message = "was already used with a different request body" } } })
  end
  return prev.status, prev.response, true
end

-- PUT /transactions/:id → the transaction, or nil when it is not the user's.
function M.update(user_id, id, t)
  local row = db.query([[
    UPDATE transactions
       SET type = $3, amount = $4, category = $5, occurred_on = $6::date, memo = $7
     WHERE id = $1 AND user_id = $2
    RETURNING ]] .. COLS, id, user_id, t.type, t.amount, t.category, t.occurred_on,
    t.memo or db.null)[1]
  if not row then return nil end
  check_budgets(user_id, row)
  return types.transaction(row)
end

-- DELETE /transactions/:id → true, or false when it is not the user's.
function M.delete(user_id, id)
  local _, affected = db.query("DELETE FROM transactions WHERE id = $1 AND user_id = $2", id, user_id)
  return affected > 0
end

-- GET /transactions/export → the month as CSV text (UTF-8 with a BOM so
-- spreadsheet apps read Korean), oldest first like a paper ledger.
function M.export_csv(user_id, month)
  local rows = db.query("SELECT " .. COLS .. " FROM transactions WHERE user_id = $1 AND " ..
                        IN_MONTH .. " ORDER BY occurred_on, id", user_id, types.month_start(month))
  local out = { types.CSV_BOM, table.concat(types.CSV_HEADER, ","), "\r\n" }
  for _, row in ipairs(rows) do out[#out + 1] = types.csv_line(row) end
  return table.concat(out)
end

-- ---- budgets -----------------------------------------------------------------

-- GET /budgets: the month's category lines (in category order) with what
-- that category spent, and the overall line against every expense.
-- remaining goes negative when overspent; usageRate is spent / amount as a
-- ratio (1.25 = 125%), 4 decimals.
function M.budget_view(user_id, month)
  local from = types.month_start(month)
  local results = db.batch {
    { [[SELECT b.category, b.amount, coalesce(s.spent, 0) AS spent
          FROM budgets b
          LEFT JOIN (SELECT category, sum(amount) AS spent FROM transactions
                      WHERE user_id = $1 AND type = 'expense' AND ]] .. IN_MONTH .. [[

                      GROUP BY category) s ON s.category = b.category
         WHERE b.user_id = $1 AND b.month = $2::date AND b.category IS NOT NULL]], user_id, from },
    { [[SELECT (SELECT amount FROM budgets
                 WHERE user_id = $1 AND month = $2::date AND category IS NULL) AS amount,
               (SELECT coalesce(sum(amount), 0) FROM transactions
                 WHERE user_id = $1 AND type = 'expense' AND ]] .. IN_MONTH .. [[) AS spent]],
      user_id, from },
  }
  local items = {}
  for _, r in ipairs(results[1]) do
    items[#items + 1] = {
      category = r.category, amount = r.amount, spent = r.spent, remaining = r.amount - r.spent,
      usageRate = math.floor(r.spent / r.amount * 10000 + 0.5) / 10000,
    }
  end
  table.sort(items, function(a, b)
    return types.CATEGORY[a.category].order < types.CATEGORY[b.category].order
  end)
  local t = results[2][1]
  local total = { amount = json.null, spent = t.spent, remaining = json.null }
  if t.amount then
    total.amount = t.amount
    total.remaining = t.amount - t.spent
  end
  return { month = month, total = total, items = json.array(items) }
end

-- POST /budgets: upsert the line, or remove it when amount is 0.
function M.set_budget(user_id, b)
  local from = types.month_start(b.month)
  if b.amount == 0 then
    db.query([[DELETE FROM budgets WHERE user_id = $1 AND month = $2::date
                AND category IS NOT DISTINCT FROM $3::text]], user_id, from, b.category or db.null)
  else
    db.query([[
      INSERT INTO budgets (user_id, month, category, amount) VALUES ($1, $2::date, $3::text, $4)
      ON CONFLICT ON CONSTRAINT budgets_user_month_category_key
      DO UPDATE SET amount = EXCLUDED.amount]], user_id, from, b.category or db.null, b.amount)
  end
  return M.budget_view(user_id, b.month)
end

-- ---- for other modules ---------------------------------------------------------

-- The profile's `inferred`: average monthly income and expense over the
-- last three full Seoul months before the current one. Months without any
-- transaction are taken as "not recorded" rather than zero: the averages
-- are over the months that have data (basedOnMonths, 0–3), null when none.
function M.monthly_averages(user_id)
  local first = types.month_start(M.current_month())
  local r = db.query([[
    SELECT count(DISTINCT date_trunc('month', occurred_on))::int AS months,
           coalesce(sum(amount) FILTER (WHERE type = 'income'), 0) AS income,
           coalesce(sum(amount) FILTER (WHERE type = 'expense'), 0) AS expense
      FROM transactions
     WHERE user_id = $1
       AND occurred_on >= ($2::date - interval '3 months')::date AND occurred_on < $2::date]],
    user_id, first)[1]
  if r.months == 0 then
    return { monthlyIncome = json.null, monthlyExpense = json.null, basedOnMonths = 0 }
  end
  return {
    monthlyIncome  = math.floor(r.income / r.months + 0.5),
    monthlyExpense = math.floor(r.expense / r.months + 0.5),
    basedOnMonths  = r.months,
  }
end

return M
