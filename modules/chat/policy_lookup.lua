-- chat/policy_lookup.lua — the policy a question names ({id} or {name}), as
-- policy.service.get returns it for this user (with eligibility when the
-- service gives it), shared by the eligibility and detail flows.
local C = require "chat.context"

local M = {}

local function search_first(name)
  local items = C.items(C.call("policy.service", "search", name, { limit = 3 }))
  return items[1]
end

-- → detail table or nil; also the candidates seen (for "did you mean").
function M.find(user_id, named)
  if type(named) ~= "table" then return nil end
  local id = named.id
  if not id and named.name then
    local hit = search_first(named.name)
    if not hit and named.name:find(" ", 1, true) then hit = search_first((named.name:gsub(" ", ""))) end
    if not hit then hit = search_first(named.name:match("(%S+)$")) end
    id = hit and hit.id
  end
  if not id then return nil end
  -- detail(id, user_id) adds the user's eligibility; get(id) is the public
  -- detail, completed with eligibility(id, user_id) when the service has it.
  local svc = C.service("policy.service")
  local detail
  if svc and svc.detail then
    detail = C.call("policy.service", "detail", id, user_id)
  end
  if type(detail) ~= "table" then -- no detail(), or it failed (e.g. no profile module)
    detail = C.call("policy.service", "get", id)
    if type(detail) == "table" and detail.eligibility == nil then
      detail.eligibility = C.call("policy.service", "eligibility", id, user_id)
    end
  end
  if type(detail) ~= "table" or detail.id == nil then return nil end
  return detail
end

-- Lines about a policy's detail, from whichever documented fields it has.
function M.detail_lines(d)
  local out = { C.policy_line(d) }
  local function add(label, v)
    if C.present(v) and type(v) ~= "table" and tostring(v) ~= "" then out[#out + 1] = label .. ": " .. tostring(v) end
  end
  add("기관", d.agency)
  add("운영 기관", d.operatingAgency)
  add("설명", d.description)
  add("지원 내용", d.supportContent)
  add("신청 시작", d.applyStart)
  add("신청 마감", d.applyEnd)
  add("신청 방법", d.howToApply)
  add("선정 방법", d.selectionMethod)
  add("제출 서류", d.documents)
  add("신청 주소", d.applyUrl)
  local c = type(d.conditions) == "table" and d.conditions or {}
  local cs = {}
  if type(c.age) == "table" then
    local lo, hi = C.present(c.age.min) and c.age.min, C.present(c.age.max) and c.age.max
    if lo or hi then cs[#cs + 1] = "나이 " .. (lo and ("만 " .. lo .. "세") or "") .. "~" .. (hi and ("만 " .. hi .. "세") or "") end
  end
  if type(c.income) == "table" and C.present(c.income.text) then cs[#cs + 1] = "소득 " .. tostring(c.income.text) end
  if C.present(c.additional) then cs[#cs + 1] = tostring(c.additional) end
  if C.present(c.excluded) then cs[#cs + 1] = "제외 대상: " .. tostring(c.excluded) end
  if #cs > 0 then out[#out + 1] = "조건: " .. table.concat(cs, "; ") end
  if type(d.source) == "table" then add("출처", d.source.url) end
  return out
end

-- The context both named-policy flows start from: the asked policy's detail,
-- or a fact saying why it is missing. → ctx, detail (nil when not found).
function M.named_context(a)
  local ctx = { policies = {}, facts = {}, text = a.text, asked = a.intent.policy }
  if not require("chat.context").service("policy.service") then
    ctx.facts[#ctx.facts + 1] = "정책 정보를 지금 불러올 수 없습니다."
    return ctx
  end
  local d = M.find(a.user_id, a.intent.policy)
  if not d then
    ctx.facts[#ctx.facts + 1] = "사용자가 말한 정책을 찾지 못했습니다."
  end
  return ctx, d
end

return M
