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
  local detail = C.call("policy.service", "get", id, user_id)
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
  add("설명", d.description)
  add("지원 내용", d.support or d.supportContent)
  add("신청 시작", d.applyStart)
  add("신청 마감", d.applyEnd)
  add("신청 방법", d.howToApply or d.applyMethod or d.application)
  if type(d.conditions) == "table" then
    local cs = {}
    for k, v in pairs(d.conditions) do
      if C.present(v) and type(v) ~= "table" then cs[#cs + 1] = tostring(k) .. "=" .. tostring(v)
      elseif type(v) == "table" and v.text then cs[#cs + 1] = tostring(v.text) end
    end
    table.sort(cs)
    if #cs > 0 then out[#out + 1] = "조건: " .. table.concat(cs, ", ") end
  end
  add("조건", d.conditionsText or d.eligibilityText)
  if type(d.source) == "table" then add("출처", d.source.url or d.source.name) end
  return out
end

return M
