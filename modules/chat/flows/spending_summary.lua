-- flows/spending_summary.lua — "how much did I spend (this month / last
-- month / in March)?" Context: transaction.service.month_summary for that
-- month in Asia/Seoul: income, expense, balance and spending by category.
local C     = require "chat.context"
local types = require "chat.types"

local M = {
  intent = "spending_summary",
  instructions = "[참고 정보]의 가계부 숫자만 사용해 사용자의 수입과 지출을 요약하세요. "
    .. "지출이 큰 항목을 짚어 주고, 숫자는 원 단위로 정확히 쓰세요. 숫자를 지어내지 마세요.",
}

-- Expense categories, largest first: { {category, label, amount, count} }
function M.top_expenses(summary, n)
  local out = {}
  if type(summary) ~= "table" or type(summary.byCategory) ~= "table" then return out end
  for _, c in ipairs(summary.byCategory) do
    if type(c) == "table" and c.type == "expense" and (tonumber(c.amount) or 0) > 0 then
      out[#out + 1] = { category = c.category, label = types.CATEGORY_LABELS[c.category] or tostring(c.category),
                        amount = tonumber(c.amount), count = tonumber(c.count) or 0 }
    end
  end
  table.sort(out, function(a, b) return a.amount > b.amount end)
  while n and #out > n do out[#out] = nil end
  return out
end

function M.summary_facts(month, summary)
  local facts = {}
  facts[#facts + 1] = string.format("%s 수입: %s, 지출: %s, 잔액: %s", C.month_label(month),
    C.won(summary.income), C.won(summary.expense), C.won(summary.balance or ((summary.income or 0) - (summary.expense or 0))))
  local top = M.top_expenses(summary, 5)
  if #top > 0 then
    local parts = {}
    for _, c in ipairs(top) do parts[#parts + 1] = string.format("%s %s(%d건)", c.label, C.won(c.amount), c.count) end
    facts[#facts + 1] = "지출이 큰 항목: " .. table.concat(parts, ", ")
  end
  return facts
end

function M.context(a)
  local month = C.month_of(a.text, a.now)
  local ctx = { policies = {}, facts = {}, month = month, text = a.text }
  if not C.service("transaction.service") then
    ctx.facts[#ctx.facts + 1] = "가계부 정보를 지금 불러올 수 없습니다."
    ctx.unavailable = true
    return ctx
  end
  local summary = C.call("transaction.service", "month_summary", a.user_id, month)
  if type(summary) ~= "table" then
    ctx.facts[#ctx.facts + 1] = "가계부 정보를 지금 불러올 수 없습니다."
    ctx.unavailable = true
    return ctx
  end
  ctx.summary = summary
  for _, f in ipairs(M.summary_facts(month, summary)) do ctx.facts[#ctx.facts + 1] = f end
  return ctx
end

function M.offline(ctx)
  if ctx.unavailable then return "가계부 정보를 지금 불러올 수 없어요. 잠시 후 다시 물어봐 주세요." end
  local s = ctx.summary
  if (tonumber(s.income) or 0) == 0 and (tonumber(s.expense) or 0) == 0 then
    return C.month_label(ctx.month) .. "에는 기록된 수입·지출이 없어요. 가계부에 내역을 입력하면 정리해 드릴게요."
  end
  local lines = { C.month_label(ctx.month) .. " 가계부 요약이에요.",
                  "- 수입: " .. C.won(s.income), "- 지출: " .. C.won(s.expense),
                  "- 잔액: " .. C.won(s.balance or ((s.income or 0) - (s.expense or 0))) }
  local top = M.top_expenses(s, 5)
  if #top > 0 then
    lines[#lines + 1] = "지출이 큰 항목:"
    for i, c in ipairs(top) do
      lines[#lines + 1] = string.format("%d. %s %s (%d건)", i, c.label, C.won(c.amount), c.count)
    end
  end
  return table.concat(lines, "\n")
end

return M
