-- flows/policy_search.lua — "what policies are there for me / about X?"
-- Context: the user's recommendations (policy.service.recommend) when the
-- question is about themselves or names no topic, then a keyword search
-- (policy.service.search) for the topic words; at most 5 policies.
local C = require "chat.context"

local M = {
  intent = "policy_search",
  instructions = "사용자에게 맞는 청년 정책을 소개하세요. [참고 정보]의 정책 중 관련 있는 것만 골라, "
    .. "각 정책마다 무엇을 지원하는지와 왜 맞는지(자격 판단 이유)를 한두 문장으로 설명하세요. "
    .. "자격 판단에 필요한 정보가 부족하면 프로필에 입력해 달라고 안내하세요.",
}

local LIMIT = 5

local PERSONAL = { "나한테", "나에게", "내가", "제가", "저한테", "저에게", "맞는", "추천", "받을 수 있", "받을수있",
                   "신청할 수 있", "해당되는", "해당하는" }

local CATEGORY = {
  { "housing", { "주거", "월세", "전세", "집", "주택", "보증금", "임대" } },
  { "jobs", { "일자리", "취업", "구직", "채용", "인턴", "일하", "창업" } },
  { "education", { "교육", "훈련", "자격증", "학습", "강의", "학비", "장학" } },
  { "welfare", { "금융", "복지", "문화", "저축", "자산", "생활비", "건강", "대출" } },
  { "participation", { "참여", "봉사", "동아리", "커뮤니티" } },
}

local STOP = {
  ["정책"] = true, ["정책이"] = true, ["정책은"] = true, ["정책을"] = true, ["지원"] = true, ["혜택"] = true,
  ["추천"] = true, ["추천해줘"] = true, ["추천해"] = true, ["알려줘"] = true, ["알려"] = true, ["주세요"] = true,
  ["뭐"] = true, ["뭐가"] = true, ["있어"] = true, ["있어요"] = true, ["있나요"] = true, ["있을까"] = true,
  ["어떤"] = true, ["무슨"] = true, ["관련"] = true, ["관련된"] = true, ["받을"] = true, ["수"] = true,
  ["있는"] = true, ["내가"] = true, ["제가"] = true, ["나한테"] = true, ["저한테"] = true, ["맞는"] = true,
  ["청년"] = true, ["청년을"] = true, ["위한"] = true, ["좀"] = true, ["찾아줘"] = true, ["지원금"] = true,
  ["제도"] = true, ["신청할"] = true, ["혹시"] = true, ["요즘"] = true, ["할"] = true, ["정부"] = true,
}

local function has(text, words)
  for _, w in ipairs(words) do if text:find(w, 1, true) then return true end end
  return false
end

-- Topic words of the question (particles dropped), for policy.service.search.
function M.keywords(text)
  local out = {}
  for w in text:gmatch("[^%s%p]+") do
    w = w:gsub("[은는이가을를에의도]$", "")
    if #w >= 6 and not STOP[w] then out[#out + 1] = w end -- two or more Hangul syllables
    if #out == 3 then break end
  end
  return out
end

function M.category(text)
  for _, c in ipairs(CATEGORY) do
    if has(text, c[2]) then return c[1] end
  end
  return nil
end

function M.context(a)
  local ctx = { policies = {}, facts = {}, text = a.text }
  local seen = {}
  local function add(p, extra)
    if type(p) ~= "table" or p.id == nil or seen[tostring(p.id)] or #ctx.policies >= LIMIT then return end
    seen[tostring(p.id)] = true
    ctx.policies[#ctx.policies + 1] = C.policy_entry(p, extra)
  end
  local svc = C.service("policy.service")
  if not svc then
    ctx.facts[#ctx.facts + 1] = "정책 정보를 지금 불러올 수 없습니다."
    return ctx
  end
  local category = M.category(a.text)
  local keywords = M.keywords(a.text)
  if has(a.text, PERSONAL) or #keywords == 0 then
    local rec = C.call("policy.service", "recommend", a.user_id, { limit = 20, includePossible = true })
    if type(rec) == "table" then ctx.profile_version = rec.profileVersion end
    for _, item in ipairs(C.items(rec)) do
      local p = item.policy
      if type(p) == "table" and (not category or p.category == category) then
        add(p, { eligibility = item.eligibility, reasons = C.reasons_text(item.reasons),
                 missing = item.missingFields })
      end
    end
  end
  for _, kw in ipairs(keywords) do
    for _, p in ipairs(C.items(C.call("policy.service", "search", kw, { category = category, limit = LIMIT }))) do
      add(p)
    end
  end
  if #ctx.policies == 0 and category then
    for _, p in ipairs(C.items(C.call("policy.service", "search", nil, { category = category, limit = LIMIT }))) do
      add(p)
    end
  end
  return ctx
end

function M.offline(ctx)
  if #ctx.policies == 0 then
    return "질문에 맞는 정책을 찾지 못했어요. 프로필(나이, 지역, 소득, 취업 상태)을 채워 주시면 "
        .. "받을 수 있는 정책을 더 정확히 찾아드릴게요."
  end
  local lines = { "찾아본 정책이에요." }
  for i, e in ipairs(ctx.policies) do
    local line = string.format("%d. %s", i, e.line)
    if e.eligibility and C.ELIGIBILITY[e.eligibility] then
      line = line .. "\n   판단: " .. C.ELIGIBILITY[e.eligibility] .. (e.reasons and (" (" .. e.reasons .. ")") or "")
    end
    if type(e.missing) == "table" and #e.missing > 0 then
      line = line .. "\n   확인이 더 필요한 정보: " .. table.concat(e.missing, ", ")
    end
    lines[#lines + 1] = line
  end
  lines[#lines + 1] = "자세한 조건과 신청 방법은 각 정책 화면에서 확인하세요."
  return table.concat(lines, "\n")
end

return M
