-- flows/saving_advice.lua — "how can I save / spend less?" Context: this
-- month's spending by category, the three-month averages, and savings-type
-- policies (policy.service.search "저축", "자산") the user could look at.
local C        = require "chat.context"
local spending = require "chat.flows.spending_summary"

local M = {
  intent = "saving_advice",
  instructions = "사용자의 가계부 숫자([참고 정보])를 근거로 실천할 수 있는 절약·저축 방법을 3가지 이내로 제안하세요. "
    .. "지출이 큰 항목부터 다루고, 관련 있는 자산형성 정책이 [참고 정보]에 있으면 함께 소개하세요.",
}

local TIPS = {
  food = "식비: 장보기 목록을 정해 주 1~2회 장을 보고, 배달은 횟수를 정해 두세요.",
  cafe = "카페·간식: 주 단위로 카페 예산을 정하고 텀블러 할인을 활용하세요.",
  transport = "교통: 기후동행카드나 K-패스처럼 환급형 교통카드를 확인해 보세요.",
  shopping = "쇼핑: 장바구니에 담고 하루 뒤에 결제하는 규칙이 충동구매를 줄여 줘요.",
  telecom = "통신: 알뜰폰 요금제로 바꾸면 월 몇만 원을 아낄 수 있어요.",
  culture = "문화·여가: 구독 서비스를 점검해 안 쓰는 것은 해지하세요.",
  travel = "여행: 여행 적금처럼 미리 모아 두고 쓰면 카드값 부담이 줄어요.",
  housing = "주거: 월세 지원이나 전세대출 이자 지원 정책을 확인해 보세요.",
}
local GENERAL = "수입이 들어오면 먼저 저축하고 남은 돈으로 생활하는 '선저축' 습관을 들여 보세요."

function M.context(a)
  local month = C.month_of(a.text, a.now)
  local ctx = { policies = {}, facts = {}, month = month, text = a.text, top = {} }
  local summary = C.call("transaction.service", "month_summary", a.user_id, month)
  if type(summary) == "table" then
    ctx.summary = summary
    ctx.top = spending.top_expenses(summary, 3)
    for _, f in ipairs(spending.summary_facts(month, summary)) do ctx.facts[#ctx.facts + 1] = f end
  end
  local avg = C.call("transaction.service", "monthly_averages", a.user_id)
  if type(avg) == "table" and (tonumber(avg.basedOnMonths) or 0) > 0 then
    ctx.averages = avg
    ctx.facts[#ctx.facts + 1] = string.format("최근 %d개월 평균: 수입 %s, 지출 %s", avg.basedOnMonths,
      C.won(avg.monthlyIncome), C.won(avg.monthlyExpense))
  end
  local seen = {}
  for _, q in ipairs({ "저축", "자산" }) do
    for _, p in ipairs(C.items(C.call("policy.service", "search", q, { limit = 3 }))) do
      if type(p) == "table" and p.id and not seen[tostring(p.id)] and #ctx.policies < 3 then
        seen[tostring(p.id)] = true
        ctx.policies[#ctx.policies + 1] = C.policy_entry(p)
      end
    end
  end
  return ctx
end

function M.offline(ctx)
  local lines = {}
  if ctx.summary and #ctx.top > 0 then
    local parts = {}
    for _, c in ipairs(ctx.top) do parts[#parts + 1] = c.label .. " " .. C.won(c.amount) end
    lines[#lines + 1] = C.month_label(ctx.month) .. " 지출이 큰 항목은 " .. table.concat(parts, ", ") .. "이에요."
  end
  if ctx.averages then
    local save = (tonumber(ctx.averages.monthlyIncome) or 0) - (tonumber(ctx.averages.monthlyExpense) or 0)
    if save > 0 then
      lines[#lines + 1] = "최근 평균으로 보면 한 달에 " .. C.won(save) .. " 정도 여유가 있어요. 이 금액을 월초에 자동이체로 먼저 저축해 보세요."
    else
      lines[#lines + 1] = "최근 평균으로 보면 지출이 수입보다 많아요. 고정비부터 점검해 보세요."
    end
  end
  lines[#lines + 1] = "해볼 만한 방법:"
  local n = 0
  for _, c in ipairs(ctx.top) do
    if TIPS[c.category] then n = n + 1; lines[#lines + 1] = n .. ". " .. TIPS[c.category] end
  end
  n = n + 1
  lines[#lines + 1] = n .. ". " .. GENERAL
  if #ctx.policies > 0 then
    lines[#lines + 1] = "함께 보면 좋은 정책:"
    for _, e in ipairs(ctx.policies) do lines[#lines + 1] = "- " .. e.line end
  end
  return table.concat(lines, "\n")
end

return M
