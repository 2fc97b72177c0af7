-- flows/budget_status.lua — "how much budget is left?" Context:
-- transaction.service.budget_view for the month: the overall line and every
-- category line with spent, remaining and usage rate.
local C     = require "chat.context"
local types = require "chat.types"

local M = {
  intent = "budget_status",
  instructions = "[참고 정보]의 예산 숫자만 사용해 이번 달 예산 사용 현황을 설명하세요. "
    .. "80% 이상 쓴 항목과 초과한 항목을 먼저 알려주고, 남은 기간 동안의 조언을 짧게 덧붙이세요.",
}

local function pct(rate)
  rate = tonumber(rate)
  if not rate then return nil end
  return string.format("%d%%", math.floor(rate * 100 + 0.5))
end

local function line_of(label, b)
  local s = string.format("%s: 예산 %s 중 %s 사용, 남은 금액 %s", label, C.won(b.amount), C.won(b.spent),
    C.won(b.remaining or ((b.amount or 0) - (b.spent or 0))))
  local r = tonumber(b.usageRate) or ((tonumber(b.amount) or 0) > 0 and (b.spent or 0) / b.amount or nil)
  if r then s = s .. " (" .. pct(r) .. ")" end
  if r and r >= 1 then s = s .. " — 초과" elseif r and r >= 0.8 then s = s .. " — 80% 이상 사용" end
  return s
end

function M.context(a)
  local month = C.month_of(a.text, a.now)
  local ctx = { policies = {}, facts = {}, month = month, text = a.text, lines = {} }
  if not C.service("transaction.service") then
    ctx.facts[#ctx.facts + 1] = "가계부 정보를 지금 불러올 수 없습니다."
    ctx.unavailable = true
    return ctx
  end
  local view = C.call("transaction.service", "budget_view", a.user_id, month)
  if type(view) ~= "table" then
    ctx.facts[#ctx.facts + 1] = "예산 정보를 지금 불러올 수 없습니다."
    ctx.unavailable = true
    return ctx
  end
  ctx.view = view
  local total = type(view.total) == "table" and view.total or {}
  if C.present(total.amount) then
    ctx.lines[#ctx.lines + 1] = line_of("전체", total)
  elseif total.spent then
    ctx.lines[#ctx.lines + 1] = "전체 예산은 설정되지 않았어요. 이번 달 지출 " .. C.won(total.spent)
  end
  for _, b in ipairs(C.items(view)) do
    if type(b) == "table" and C.present(b.amount) then
      ctx.lines[#ctx.lines + 1] = line_of(types.CATEGORY_LABELS[b.category] or tostring(b.category), b)
    end
  end
  ctx.facts[#ctx.facts + 1] = C.month_label(month) .. " 예산"
  for _, l in ipairs(ctx.lines) do ctx.facts[#ctx.facts + 1] = l end
  return ctx
end

function M.offline(ctx)
  if ctx.unavailable then return "예산 정보를 지금 불러올 수 없어요. 잠시 후 다시 물어봐 주세요." end
  if #ctx.lines == 0 then
    return C.month_label(ctx.month) .. " 예산이 아직 없어요. 예산을 정하면 사용 현황을 알려드릴게요."
  end
  local out = { C.month_label(ctx.month) .. " 예산 현황이에요." }
  for _, l in ipairs(ctx.lines) do out[#out + 1] = "- " .. l end
  return table.concat(out, "\n")
end

return M
