-- chat/prompt.lua — the model's input for one question, and the citations
-- of its answer.
--
--   local p = prompt.build{ flow =, ctx =, profile =, history =, question = }
--   -- p.system: Korean instructions + the profile summary + the flow's
--   --           context (policies as "[정책 #id] ..." lines, ledger facts)
--   -- p.messages: recent history trimmed to CHAT_HISTORY_TOKENS (default
--   --           1500, estimated), then the question; roles alternate and
--   --           start with "user" as the Messages API requires
--   local cites = prompt.citations(answer_text, ctx)
--
-- Citations are the "#id" references of the answer that name a policy of
-- the context, in order of first mention: an id the model made up, or one
-- from an older turn, is never cited.
local json  = require "lp.json"
local C     = require "chat.context"

local M = {}

local BASE = table.concat({
  "당신은 한국 청년을 위한 가계부·정책 앱 'lifeplan'의 상담 도우미입니다.",
  "- 한국어로, 친절하고 간결하게(5~10문장 이내) 답하세요.",
  "- 사실은 아래 [사용자 프로필]과 [참고 정보]에 있는 것만 사용하고, 없는 숫자나 정책을 지어내지 마세요.",
  "- 정책을 언급할 때는 반드시 [참고 정보]에 있는 정책만, \"[정책 #번호]\" 형식으로 번호를 함께 쓰세요.",
  "- 자격 판단은 [참고 정보]의 판정을 따르고, 최종 확인은 공식 공고에서 하라고 안내하세요.",
  "- 금액은 원 단위 정수로 씁니다.",
}, "\n")

local EMPLOYMENT = { employed = "재직자", self_employed = "자영업자", unemployed = "미취업자",
  freelancer = "프리랜서", day_laborer = "일용근로자", founder = "(예비)창업자", short_term = "단기근로자",
  farmer = "영농종사자", other = "기타" }
local HOUSING = { own_home = "자가", jeonse = "전세", monthly_rent = "월세", with_parents = "부모님 집",
  dormitory = "기숙사", other = "기타" }
local INTERESTS = { jobs = "일자리", housing = "주거", education = "교육·직업훈련", welfare = "금융·복지·문화",
  participation = "참여·기반" }

-- Rough token count: a Hangul syllable is about one token, other text
-- about four bytes a token. Only used to bound the history.
function M.tokens(s)
  local hangul = 0
  for _ in s:gmatch("[\234-\237][\128-\191][\128-\191]") do hangul = hangul + 1 end
  return hangul + math.ceil((#s - hangul * 3) / 4)
end

local function age_of(birth, now)
  local y, m, d = tostring(birth):match("^(%d%d%d%d)-(%d%d)-(%d%d)")
  if not y then return nil end
  local t = os.date("!*t", (now or os.time()) + 9 * 3600)
  local age = t.year - tonumber(y)
  if t.month < tonumber(m) or (t.month == tonumber(m) and t.day < tonumber(d)) then age = age - 1 end
  return age
end

function M.profile_summary(p, now)
  if type(p) ~= "table" then return "정보 없음" end
  local out = {}
  local age = C.present(p.birthDate) and age_of(p.birthDate, now)
  if age then out[#out + 1] = "만 " .. age .. "세" end
  if C.present(p.regionCode) then out[#out + 1] = "지역코드 " .. tostring(p.regionCode) end
  if C.present(p.employmentStatus) then out[#out + 1] = EMPLOYMENT[p.employmentStatus] or tostring(p.employmentStatus) end
  if C.present(p.householdSize) then out[#out + 1] = tostring(p.householdSize) .. "인 가구" end
  if C.present(p.housingType) then out[#out + 1] = "주거: " .. (HOUSING[p.housingType] or tostring(p.housingType)) end
  if C.present(p.annualIncome) then out[#out + 1] = "연소득 " .. C.won(p.annualIncome) end
  if C.present(p.maritalStatus) then out[#out + 1] = p.maritalStatus == "married" and "기혼" or "미혼" end
  if type(p.interests) == "table" and #p.interests > 0 then
    local l = {}
    for _, i in ipairs(p.interests) do l[#l + 1] = INTERESTS[i] or tostring(i) end
    out[#out + 1] = "관심: " .. table.concat(l, ", ")
  end
  if #out == 0 then return "입력된 정보 없음" end
  return table.concat(out, ", ")
end

function M.context_text(ctx)
  local out = {}
  for _, e in ipairs(ctx.policies or {}) do
    out[#out + 1] = e.details and table.concat(e.details, "\n  ") or e.line
    if e.eligibility then
      out[#out + 1] = "  판정: " .. (C.ELIGIBILITY[e.eligibility] or tostring(e.eligibility))
          .. (e.reasons and (" — " .. e.reasons) or "")
    end
    if type(e.missing) == "table" and #e.missing > 0 then
      out[#out + 1] = "  부족한 정보: " .. table.concat(e.missing, ", ")
    end
  end
  for _, f in ipairs(ctx.facts or {}) do out[#out + 1] = f end
  if #out == 0 then return "없음" end
  return table.concat(out, "\n")
end

local function history_budget()
  local n = tonumber(os.getenv("CHAT_HISTORY_TOKENS") or "")
  return n and n >= 0 and n or 1500
end

-- history: the session's earlier messages, oldest first ({role, content}).
-- Kept whole turns from the newest back while the budget lasts.
function M.trim_history(history, budget)
  local kept, used = {}, 0
  local i = #history
  while i >= 1 do
    local m = history[i]
    local cost = M.tokens(m.content)
    if used + cost > budget then break end
    used = used + cost
    table.insert(kept, 1, { role = m.role, content = m.content })
    i = i - 1
  end
  -- Roles must alternate and start with user; drop what breaks that.
  while kept[1] and kept[1].role ~= "user" do table.remove(kept, 1) end
  local out = {}
  for _, m in ipairs(kept) do
    if #out == 0 or out[#out].role ~= m.role then out[#out + 1] = m
    else out[#out].content = out[#out].content .. "\n" .. m.content end
  end
  if out[#out] and out[#out].role == "user" then out[#out] = nil end
  return out
end

function M.build(a)
  local system = table.concat({
    BASE,
    "\n[이번 질문의 안내]\n" .. (a.flow.instructions or ""),
    "\n[사용자 프로필]\n" .. M.profile_summary(a.profile, a.now),
    "\n[참고 정보]\n" .. M.context_text(a.ctx),
  }, "\n")
  local messages = M.trim_history(a.history or {}, history_budget())
  messages[#messages + 1] = { role = "user", content = a.question }
  return { system = system, messages = messages }
end

function M.citations(text, ctx)
  local by_id = {}
  for _, e in ipairs(ctx.policies or {}) do by_id[tostring(e.id)] = e end
  local out, seen = {}, {}
  for id in tostring(text):gmatch("#%s*(%d+)") do
    local e = by_id[id]
    if e and not seen[id] then
      seen[id] = true
      out[#out + 1] = { policyId = tonumber(id), title = e.title }
    end
  end
  return json.array(out)
end

return M
