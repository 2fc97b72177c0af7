-- flows/policy_detail.lua — "what is <named policy>? how do I apply?"
-- Context: that policy's detail (policy.service.get).
local C    = require "chat.context"
local find = require "chat.policy_lookup"

local M = {
  intent = "policy_detail",
  instructions = "사용자가 물어본 정책을 [참고 정보]에 있는 내용만으로 설명하세요: 무엇을 지원하는지, "
    .. "누가 대상인지, 신청 기간과 방법. 정보에 없는 내용은 추측하지 말고 정책 화면이나 출처에서 확인하라고 하세요.",
}

function M.context(a)
  local ctx, d = find.named_context(a)
  if not d then return ctx end
  ctx.policies[1] = C.policy_entry(d, { details = find.detail_lines(d) })
  return ctx
end

function M.offline(ctx)
  local e = ctx.policies[1]
  if not e then
    local name = ctx.asked and (ctx.asked.name or ("#" .. tostring(ctx.asked.id))) or "그"
    return string.format("'%s' 정책을 찾지 못했어요. 정책 이름을 다시 확인하시거나 정책 검색에서 찾아보세요.", name)
  end
  return table.concat(e.details, "\n")
end

return M
