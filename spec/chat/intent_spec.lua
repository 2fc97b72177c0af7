-- chat.intent on a table of Korean questions, and the provider stream
-- decoder (both pure Lua: loaded straight from modules/).
local root = os.getenv("LIFEPLAN_ROOT") or "."
package.path = root .. "/modules/?.lua;" .. package.path
local intent      = require "chat.intent"
local sse_decoder = require "chat.sse_decoder"

describe("chat.intent", function()
  local cases = {
    -- policy search / recommendation
    { "나한테 맞는 청년 정책 추천해줘", "policy_search" },
    { "주거 지원 정책 뭐 있어?", "policy_search" },
    { "내가 받을 수 있는 지원금 있어?", "policy_search" },
    { "취업 관련 혜택 알려줘", "policy_search" },
    { "서울 사는 대학생이 받을 수 있는 정책 찾아줘", "policy_search" },
    { "월세 지원 정책 알려줘", "policy_search" },
    { "청년 창업 지원 혜택들 뭐 있어?", "policy_search" },
    -- eligibility for a named policy
    { "청년도약계좌 가입 자격이 돼?", "policy_eligibility", "청년도약계좌" },
    { "청년 월세 지원 받을 수 있어?", "policy_eligibility", "청년 월세 지원" },
    { "\"청년 마음건강 지원사업\" 나도 신청할 수 있어?", "policy_eligibility", "청년 마음건강 지원사업" },
    { "국민취업지원제도 대상인가요?", "policy_eligibility", "국민취업지원제도" },
    -- detail of a named policy
    { "국민취업지원제도가 뭐야?", "policy_detail", "국민취업지원제도" },
    { "내일배움카드 신청 방법 알려줘", "policy_detail", "내일배움카드" },
    { "구직촉진수당은 얼마 받아?", "policy_detail", "구직촉진수당" },
    -- spending summary
    { "이번 달 식비 얼마나 썼어?", "spending_summary" },
    { "지난달 지출 내역 보여줘", "spending_summary" },
    { "교통카드로 얼마 썼어?", "spending_summary" },
    { "3월 가계부 정리해줘", "spending_summary" },
    -- budget status
    { "이번 달 예산 얼마 남았어?", "budget_status" },
    { "식비 예산 초과했어?", "budget_status" },
    -- saving advice
    { "돈 모으는 방법 알려줘", "saving_advice" },
    { "식비를 줄이려면 어떻게 해야 해?", "saving_advice" },
    { "한 달에 얼마씩 저축하면 좋을까?", "saving_advice" },
    -- small talk
    { "안녕하세요", "small_talk" },
    { "고마워!", "small_talk" },
    { "너는 누구야?", "small_talk" },
    -- unknown
    { "오늘 날씨 어때?", "unknown" },
    { "파이썬 코드 짜줘", "unknown" },
  }
  for _, c in ipairs(cases) do
    it(string.format("classifies %q as %s", c[1], c[2]), function()
      local r = intent.classify(c[1])
      assert.are.equal(c[2], r.code)
      if c[3] then assert.are.equal(c[3], r.policy and r.policy.name) end
    end)
  end

  it("reads a policy id from '#12' and '12번 정책'", function()
    assert.are.same({ id = 12 }, intent.classify("#12 정책 자세히 알려줘").policy)
    assert.are.same({ id = 7 }, intent.classify("7번 정책 자격 조건이 뭐야?").policy)
    assert.are.equal("policy_eligibility", intent.classify("7번 정책 자격 조건이 뭐야?").code)
  end)

  it("is unsure only when no rule fired", function()
    assert.is_false(intent.classify("음...").confident)
    assert.is_true(intent.classify("이번 달 예산 얼마 남았어?").confident)
  end)
end)

describe("chat.sse_decoder", function()
  it("decodes events split anywhere, with CRLF, comments and multi-line data", function()
    local got = {}
    local d = sse_decoder.new(function(ev, data) got[#got + 1] = { ev, data } end)
    local stream = "event: ping\r\ndata: {}\r\n\r\n: comment\n\nevent: a\ndata: 1\ndata: 2\n\ndata: [DONE]\n\n"
    for i = 1, #stream, 3 do d:feed(stream:sub(i, i + 2)) end
    d:finish()
    assert.are.same({ { "ping", "{}" }, { "a", "1\n2" }, { "message", "[DONE]" } }, got)
  end)

  it("stops dispatching when the handler returns false", function()
    local n = 0
    local d = sse_decoder.new(function() n = n + 1; return false end)
    assert.is_false(d:feed("data: 1\n\ndata: 2\n\n"))
    assert.are.equal(1, n)
  end)

  it("dispatches a last event without a blank line on finish", function()
    local got
    local d = sse_decoder.new(function(_, data) got = data end)
    d:feed("data: tail")
    assert.is_nil(got)
    d:finish()
    assert.are.equal("tail", got)
  end)
end)
