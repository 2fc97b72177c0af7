-- chat/intent.lua — what a question is about, by Korean keyword and pattern
-- rules (fast, deterministic, testable; no LLM call).
--
--   intent.classify("청년도약계좌 가입 자격이 돼?")
--   → { code = "policy_eligibility", policy = { name = "청년도약계좌" }, confident = true }
--
-- Codes: policy_search (search or recommendation), policy_eligibility (a
-- named policy: can I get it?), policy_detail (a named policy: what is it?),
-- spending_summary, budget_status, saving_advice, small_talk, unknown.
-- Order of the rules matters: a named policy wins over generic policy words,
-- budget over spending ("예산 얼마나 썼어" is about the budget), saving advice
-- over spending ("지출 줄이는 법" is advice).
--
-- `policy` is how the flows find a named policy: { id = 12 } for "#12" or
-- "12번 정책", { name = "..." } for a quoted name or a compound noun ending in
-- a policy-like word (계좌, 수당, 지원금, 카드 ...).
local M = {}

local function has(text, words)
  for _, w in ipairs(words) do
    if text:find(w, 1, true) then return true end
  end
  return false
end

local function clen(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end

-- Words that end a policy's name ("청년도약계좌", "구직촉진수당", "내일배움카드").
local NAME_SUFFIXES = {
  "계좌", "수당", "지원금", "장려금", "대출", "통장", "적금", "바우처", "패스", "카드",
  "제도", "사업", "프로그램", "지원", "월세", "공제", "보증금", "주택", "일자리", "센터",
  "인턴", "아카데미", "특례", "자금",
}

-- Compound words that end like a name but name no particular policy.
local GENERIC = {
  ["지원"] = true, ["지원금"] = true, ["정책"] = true, ["혜택"] = true, ["제도"] = true,
  ["수당"] = true, ["사업"] = true, ["프로그램"] = true, ["대출"] = true, ["통장"] = true,
  ["적금"] = true, ["카드"] = true, ["월세"] = true, ["주택"] = true, ["일자리"] = true,
  ["자금"] = true, ["정부지원"] = true, ["청년지원"] = true, ["정책지원"] = true,
  ["주거지원"] = true, ["취업지원"] = true, ["창업지원"] = true, ["생활지원"] = true,
  ["금융지원"] = true, ["청년정책"] = true, ["지원사업"] = true, ["정부지원금"] = true,
  ["신용카드"] = true, ["체크카드"] = true, ["교통카드"] = true, ["카드값"] = true, ["보증금"] = true, ["장려금"] = true,
}

-- Words that may stand before a name's last word ("청년 월세 특별지원").
local NAME_HEADS = {
  "청년", "국민", "내일", "희망", "행복", "특별", "긴급", "서울", "경기", "부산", "인천",
  "대구", "광주", "대전", "울산", "세종", "강원", "충북", "충남", "전북", "전남", "경북",
  "경남", "제주", "전세", "월세", "주거", "구직", "취업", "창업", "도약", "저축", "자산",
  "생활", "교육", "문화", "마음", "건강", "기본", "근로", "미래", "버팀목",
}

local PARTICLES = {
  "에서는", "으로는", "이라는", "이라고", "에서", "으로", "이랑", "에게", "한테", "라는",
  "이요", "은", "는", "이", "가", "을", "를", "에", "의", "도", "로", "랑", "과", "와", "요", "란",
}

local function strip_particle(word)
  for _, p in ipairs(PARTICLES) do
    if #word > #p and word:sub(-#p) == p then
      local stem = word:sub(1, -#p - 1)
      for _, s in ipairs(NAME_SUFFIXES) do
        if stem:sub(-#s) == s then return stem end
      end
    end
  end
  return word
end

local function ends_with_suffix(word)
  for _, s in ipairs(NAME_SUFFIXES) do
    if #word >= #s and word:sub(-#s) == s then return true end
  end
  return false
end

local function is_head(word)
  for _, h in ipairs(NAME_HEADS) do
    if word == h then return true end
  end
  return false
end

-- A policy the question names, or nil.
function M.named_policy(text)
  local quoted = text:match('"([^"]+)"') or text:match("“([^”]+)”") or text:match("'([^']+)'")
      or text:match("「([^」]+)」") or text:match("『([^』]+)』") or text:match("‘([^’]+)’")
  if quoted and clen(quoted) >= 2 then return { name = quoted } end
  local id = text:match("#(%d+)") or text:match("(%d+)번%s*정책") or text:match("정책%s*(%d+)번")
  if id then return { id = tonumber(id) } end

  local words = {}
  for w in text:gmatch("[^%s%p]+") do words[#words + 1] = w end
  for i, raw in ipairs(words) do
    local w = strip_particle(raw)
    if ends_with_suffix(w) then
      -- Head words before it and name-like words after it belong to the
      -- name ("청년 월세 특별지원", "청년 월세 지원").
      local first, last = i, i
      while first > 1 and first > i - 3 and is_head(words[first - 1]) do first = first - 1 end
      local parts = {}
      for j = first, i - 1 do parts[#parts + 1] = words[j] end
      parts[#parts + 1] = w
      while words[last + 1] and ends_with_suffix(strip_particle(words[last + 1])) do
        last = last + 1
        parts[#parts + 1] = strip_particle(words[last])
      end
      local compact = table.concat(parts)
      -- "월세 지원 정책 알려줘", "주거 지원 혜택들": a topic followed by a
      -- category word asks for policies of that kind, not for one of them.
      local after = words[last + 1]
      local topic = after ~= nil and (after:find("^정책") or after:find("^혜택"))
      if not topic and not GENERIC[compact] and clen(compact) >= 4 then
        return { name = table.concat(parts, " ") }
      end
    end
  end
  return nil
end

local ELIGIBILITY = {
  "자격", "대상", "조건", "받을 수 있", "받을수있", "받을 수있", "신청할 수 있", "신청할수있",
  "신청 가능", "신청가능", "가입 가능", "가입할 수 있", "해당돼", "해당되", "해당될", "될까",
  "되나요", "되나", "돼?", "돼요?", "가능할까", "가능해?", "가능한가", "나도", "저도", "받을 수 없",
}

local DETAIL = {
  "뭐야", "무엇", "뭔가요", "뭐예요", "뭐에요", "알려", "설명", "내용", "언제", "기간", "방법",
  "어떻게", "얼마", "혜택", "궁금", "자세히",
}

local POLICY_WORDS = {
  "정책", "지원금", "지원 제도", "지원제도", "혜택", "보조금", "수당", "바우처", "지원사업",
  "지원 사업", "지원받", "지원 받", "청년 지원", "청년지원", "복지", "대출 상품", "정부 지원",
}

local RECOMMEND = {
  "추천", "찾아", "맞는", "받을 수 있는", "받을수있는", "신청할 수 있는", "어떤", "무슨", "뭐 있",
  "뭐가 있", "있어?", "있나요", "있을까", "알려", "목록", "소개",
}

local BUDGET = { "예산" }

local SAVING = {
  "절약", "아끼", "아낄", "아껴", "저축", "모으", "모을", "모아", "재테크", "줄이", "줄일", "줄여",
  "돈 관리", "돈관리", "돈을 관리", "목돈", "비상금", "적금 들", "투자",
}

local SPENDING = {
  "지출", "소비", "썼", "쓴 돈", "쓴돈", "쓴 게", "사용한 돈", "카드값", "가계부", "수입",
  "얼마나 벌", "지난달", "이번 달", "이번달", "내역", "돈을 많이", "돈 많이", "쓰고 있",
}

local SMALL_TALK = {
  "안녕", "고마워", "고맙", "감사", "반가", "ㅎㅎ", "ㅋㅋ", "누구야", "누구세요", "이름이 뭐",
  "잘 지내", "좋은 아침", "잘자", "수고", "hello", "hi ", "thanks", "심심",
}

-- Classifies one question. `confident` is false when no rule fired clearly
-- (unknown, or a bare greeting-like fragment).
function M.classify(text)
  local t = text:lower()
  local named = M.named_policy(text)
  if named then
    if has(t, ELIGIBILITY) then
      return { code = "policy_eligibility", policy = named, confident = true }
    end
    return { code = "policy_detail", policy = named, confident = has(t, DETAIL) }
  end
  if has(t, BUDGET) then return { code = "budget_status", confident = true } end
  if has(t, POLICY_WORDS) and (has(t, RECOMMEND) or has(t, ELIGIBILITY)) then
    return { code = "policy_search", confident = true }
  end
  if has(t, SAVING) then return { code = "saving_advice", confident = true } end
  if has(t, SPENDING) then return { code = "spending_summary", confident = true } end
  if has(t, POLICY_WORDS) then return { code = "policy_search", confident = false } end
  if has(t, SMALL_TALK) then return { code = "small_talk", confident = true } end
  return { code = "unknown", confident = false }
end

return M
