-- Each flow's context (what reaches the model) and citations, with real
-- policies loaded by the collector (spec/policy/support) and the real
-- ledger and profile modules; the fake LLM's default answer repeats every
-- "#id" of the system prompt and adds #999999, never in any context.
local C = require "spec.chat.helpers"
local S = require "spec.policy.support"
local H = C.H

local RUN = S.run_id
local month = os.date("!%Y-%m", os.time() + 9 * 3600)

local function ids(citations)
  local out = {}
  for _, c in ipairs(citations) do out[#out + 1] = c.policyId end
  table.sort(out)
  return out
end

describe("chat flows", function()
  local fake, srv, offline, user, P = nil, nil, nil, nil, {}

  setup(function()
    local records = {
      housing = S.record { plcyNm = "채팅 주거 " .. RUN, lclsfNm = "주거", plcyExplnCn = "월세를 돕는 채팅 테스트 정책" },
      jobs = S.record { plcyNm = "채팅 일자리 " .. RUN, lclsfNm = "일자리", plcyAplyMthdCn = "채팅센터 방문 신청" },
      other = S.record { plcyNm = "다른 정책 " .. RUN .. "x", lclsfNm = "교육･직업훈련" },
    }
    local dir = H.tmpdir()
    S.write_json(dir .. "/p.json", S.response { records.housing, records.jobs, records.other })
    local out, code = S.collect("--source " .. dir .. "/p.json")
    assert(code == 0, out)
    for k, r in pairs(records) do
      P[k] = { id = tonumber(S.scalar("SELECT id FROM policies WHERE source = 'ontong' AND external_id = '" .. r.plcyNo .. "'")),
               title = r.plcyNm }
    end
    fake = C.fake()
    srv = C.server(fake, "anthropic", { POLICY_CACHE = "off" })
    offline = C.server(nil, "offline", { POLICY_CACHE = "off" })
    user = C.user(srv)
  end)

  teardown(function()
    for _, s in ipairs({ srv, offline, fake }) do s:stop() end
  end)

  before_each(function() fake:reset() end)

  local function ask(q)
    local sid = C.session(srv, user).id
    local res = C.ask(srv, user, sid, q)
    assert.are.equal(200, res.status)
    local reqs = fake:requests()
    return res.json.assistantMessage, reqs[#reqs] and reqs[#reqs].body
  end

  describe("policy_search", function()
    it("puts the matching policies in the context and cites only those", function()
      local a, body = ask(RUN .. " 관련 정책 뭐 있어?")
      assert.are.equal("policy_search", a.intent)
      assert.truthy(body.system:find("[정책 #" .. P.housing.id .. "] " .. P.housing.title, 1, true))
      assert.truthy(body.system:find("[정책 #" .. P.jobs.id .. "] " .. P.jobs.title, 1, true))
      assert.are.same({ P.housing.id, P.jobs.id, P.other.id }, ids(a.citations))
      for _, c in ipairs(a.citations) do
        if c.policyId == P.jobs.id then assert.are.equal(P.jobs.title, c.title) end
      end
      assert.matches("#999999", a.content) -- mentioned by the model, not cited
    end)

    it("uses the user's recommendations when asked what suits them", function()
      local a, body = ask("나한테 맞는 정책 추천해줘")
      assert.are.equal("policy_search", a.intent)
      assert.truthy(body.system:find("판정: ", 1, true))
      assert.is_true(#a.citations > 0)
      for _, c in ipairs(a.citations) do
        assert.truthy(body.system:find("[정책 #" .. c.policyId .. "]", 1, true))
      end
    end)

    it("narrows by the topic's category", function()
      local a, body = ask(RUN .. " 주거 정책 뭐 있어?")
      assert.truthy(body.system:find("#" .. P.housing.id, 1, true))
      assert.is_nil(body.system:find("#" .. P.jobs.id .. "]", 1, true))
      assert.are.same({ P.housing.id }, ids(a.citations))
    end)

    it("answers offline from the same context, citing what it lists", function()
      local sid = C.session(offline, user).id
      local a = C.ask(offline, user, sid, RUN .. " 관련 정책 뭐 있어?").json.assistantMessage
      assert.is_false(a.degraded)
      assert.truthy(a.content:find(P.housing.title, 1, true))
      assert.are.same({ P.housing.id, P.jobs.id, P.other.id }, ids(a.citations))
    end)
  end)

  describe("policy_detail", function()
    it("finds the named policy and gives its detail to the model", function()
      local a, body = ask("\"" .. P.jobs.title .. "\" 신청 방법 알려줘")
      assert.are.equal("policy_detail", a.intent)
      assert.truthy(body.system:find("신청 방법: 채팅센터 방문 신청", 1, true))
      assert.are.same({ P.jobs.id }, ids(a.citations))
    end)

    it("finds a policy by its number", function()
      local a, body = ask("#" .. P.housing.id .. " 정책 자세히 알려줘")
      assert.truthy(body.system:find("월세를 돕는 채팅 테스트 정책", 1, true))
      assert.are.same({ P.housing.id }, ids(a.citations))
    end)

    it("says so when no such policy exists, citing nothing", function()
      local sid = C.session(offline, user).id
      local a = C.ask(offline, user, sid, "\"없는정책" .. RUN .. "\" 뭐야?").json.assistantMessage
      assert.matches("찾지 못했어요", a.content)
      assert.are.same({}, a.citations)
    end)
  end)

  describe("policy_eligibility", function()
    it("gives the engine's judgement for the user's profile", function()
      local a, body = ask("\"" .. P.housing.title .. "\" 자격 돼?")
      assert.are.equal("policy_eligibility", a.intent)
      assert.truthy(body.system:find("판정: ", 1, true))
      assert.are.same({ P.housing.id }, ids(a.citations))
    end)
  end)

  describe("ledger flows", function()
    local u
    setup(function()
      u = C.user(srv)
      local function tx(t) assert.are.equal(201, srv:request("POST", "/api/v1/transactions", { headers = u.headers, json = t }).status) end
      tx { type = "income", amount = 2000000, category = "salary", occurredOn = month .. "-01" }
      tx { type = "expense", amount = 320000, category = "food", occurredOn = month .. "-02" }
      tx { type = "expense", amount = 80000, category = "food", occurredOn = month .. "-03" }
      tx { type = "expense", amount = 55000, category = "cafe", occurredOn = month .. "-03" }
      assert.are.equal(200, srv:request("POST", "/api/v1/budgets", { headers = u.headers,
        json = { month = month, category = "food", amount = 450000 } }).status)
    end)

    local function ask_u(q, server)
      server = server or srv
      local res = C.ask(server, u, C.session(server, u).id, q)
      local reqs = fake:requests()
      return res.json.assistantMessage, reqs[#reqs] and reqs[#reqs].body
    end

    it("spending_summary: the month's totals and top categories, no citations", function()
      local a, body = ask_u("이번 달 얼마나 썼어?")
      assert.are.equal("spending_summary", a.intent)
      assert.truthy(body.system:find("수입: 2,000,000원, 지출: 455,000원", 1, true))
      assert.truthy(body.system:find("식비 400,000원(2건)", 1, true))
      assert.are.same({}, a.citations)
      local off = ask_u("이번 달 얼마나 썼어?", offline)
      assert.truthy(off.content:find("1. 식비 400,000원 (2건)", 1, true))
    end)

    it("budget_status: each budget line with spent and usage", function()
      local a, body = ask_u("이번 달 예산 얼마 남았어?")
      assert.are.equal("budget_status", a.intent)
      assert.truthy(body.system:find("식비: 예산 450,000원 중 400,000원 사용, 남은 금액 50,000원 (89%) — 80% 이상 사용", 1, true))
    end)

    it("saving_advice: spending, savings policies, tips offline", function()
      local a, body = ask_u("돈 모으는 방법 알려줘")
      assert.are.equal("saving_advice", a.intent)
      assert.truthy(body.system:find("지출이 큰 항목: 식비 400,000원(2건)", 1, true))
      local off = ask_u("돈 모으는 방법 알려줘", offline)
      assert.truthy(off.content:find("식비: 장보기", 1, true))
    end)

    it("never shows one user's ledger to another", function()
      local other = C.user(srv)
      local res = C.ask(srv, other, C.session(srv, other).id, "이번 달 얼마나 썼어?")
      local reqs = fake:requests()
      assert.is_nil(reqs[#reqs].body.system:find("2,000,000원", 1, true))
      assert.are.equal(200, res.status)
    end)
  end)
end)
