-- flows/policy_eligibility.lua — "can I get <named policy>?"
-- Context: that policy with the engine's judgement for this user's profile
-- (policy.service.get → eligibility {status, reasons, missingFields}).
local C    = require "chat.context"
local find = require "chat.policy_lookup"

local M = {
  intent = "policy_eligibility",
  instructions = "사용자가 물어본 정책의 자격 여부를 [참고 정보]의 판정과 이유에 근거해 설명하세요. "
    .. "판정을 바꾸지 말고, 부족한 정보가 있으면 무엇을 입력하면 되는지 알려주세요. "
    .. "신청 기간(신청 가능/마감)은 자격과 별개임을 구분하세요.",
}

function M.context(a)
  local ctx, d = find.named_context(a)
  if not d then return ctx end
  local el = type(d.eligibility) == "table" and d.eligibility or {}
  local entry = C.policy_entry(d, { eligibility = el.status, reasons = C.reasons_text(el.reasons),
                                    missing = el.missingFields, details = find.detail_lines(d) })
  ctx.policies[1] = entry
  if entry.eligibility then
    ctx.facts[#ctx.facts + 1] = "판정: " .. (C.ELIGIBILITY[entry.eligibility] or tostring(entry.eligibility))
  end
  if entry.reasons then ctx.facts[#ctx.facts + 1] = "이유: " .. entry.reasons end
  if type(entry.missing) == "table" and #entry.missing > 0 then
    ctx.facts[#ctx.facts + 1] = "부족한 프로필 정보: " .. table.concat(entry.missing, ", ")
  end
  return ctx
end

function M.offline(ctx)
  local e = ctx.policies[1]
  if not e then
    local name = ctx.asked and (ctx.asked.name or ("#" .. tostring(ctx.asked.id))) or "그"
    return string.format("'%s' 정책을 찾지 못했어요. 정책 이름을 다시 확인하시거나 정책 검색에서 찾아보세요.", name)
  end
  local lines = { e.line }
  if e.eligibility and C.ELIGIBILITY[e.eligibility] then
    lines[#lines + 1] = "판단: " .. C.ELIGIBILITY[e.eligibility]
  else
    lines[#lines + 1] = "판단: 지금은 자격을 판단할 수 없어요."
  end
  if e.reasons then lines[#lines + 1] = "이유: " .. e.reasons end
  if type(e.missing) == "table" and #e.missing > 0 then
    lines[#lines + 1] = "프로필에 " .. table.concat(e.missing, ", ") .. " 정보를 입력하면 더 정확히 판단할 수 있어요."
  end
  lines[#lines + 1] = "신청 기간은 자격과 별도로 확인하세요."
  return table.concat(lines, "\n")
end

return M
