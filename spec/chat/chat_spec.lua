-- /api/v1/chat through the real binary: sessions, validation, isolation,
-- JSON and SSE answers, citations, the rate limit, and the offline
-- responder. The provider is the fake LLM (spec/chat/fake_llm).
local C = require "spec.chat.helpers"

describe("chat API", function()
  local fake, srv, alice, bob

  setup(function()
    fake = C.fake()
    srv = C.server(fake, "anthropic")
    alice = C.user(srv)
    bob = C.user(srv)
  end)

  teardown(function()
    if srv then srv:stop() end
    if fake then fake:stop() end
  end)

  before_each(function() fake:reset() end)

  describe("sessions", function()
    it("creates a session with an optional title", function()
      local res = srv:request("POST", "/api/v1/chat/sessions", { headers = alice.headers, json = { title = "  정책 상담 " } })
      assert.are.equal(201, res.status)
      assert.are.equal("정책 상담", res.json.title)
      assert.is_number(res.json.id)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", res.json.createdAt)
      local empty = srv:request("POST", "/api/v1/chat/sessions", { headers = alice.headers })
      assert.are.equal(201, empty.status)
      assert.are.equal("", empty.json.title)
    end)

    it("defaults the title to the first question, shortened", function()
      local s = C.session(srv, alice)
      local q = "이번 달 식비가 너무 많이 나온 것 같은데 어디에 얼마나 썼는지 항목별로 자세히 정리해서 알려줄 수 있어?"
      assert.are.equal(200, C.ask(srv, alice, s.id, q).status)
      C.ask(srv, alice, s.id, "두 번째 질문")
      local got = srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers }).json
      assert.are.equal(40, select(2, got.session.title:gsub("[^\128-\191]", "")))
      assert.matches("…$", got.session.title)
      assert.are.equal(1, got.session.title:find("이번 달 식비가", 1, true))
    end)

    it("rejects a title over 200 characters", function()
      local res = srv:request("POST", "/api/v1/chat/sessions", { headers = alice.headers, json = { title = ("가"):rep(201) } })
      assert.are.equal(422, res.status)
      assert.are.equal("title", res.json.errors[1].field)
    end)

    it("lists the user's sessions, most recently active first, with the last message", function()
      local user = C.user(srv)
      local a = C.session(srv, user, "A")
      local b = C.session(srv, user, "B")
      C.ask(srv, user, a.id, "안녕")
      local res = srv:request("GET", "/api/v1/chat/sessions", { headers = user.headers })
      assert.are.equal(200, res.status)
      assert.are.equal(2, #res.json.items)
      assert.are.equal(a.id, res.json.items[1].id)
      assert.are.equal("assistant", res.json.items[1].lastMessage.role)
      assert.are.equal(b.id, res.json.items[2].id)
      assert.are.equal(require("cjson").null, res.json.items[2].lastMessage)
      local page = srv:request("GET", "/api/v1/chat/sessions?limit=1", { headers = user.headers }).json
      assert.are.equal(1, #page.items)
      local rest = srv:request("GET", "/api/v1/chat/sessions?limit=1&cursor=" .. page.nextCursor, { headers = user.headers }).json
      assert.are.equal(b.id, rest.items[1].id)
      assert.are.equal(require("cjson").null, rest.nextCursor)
    end)

    it("requires a token", function()
      local res = srv:request("GET", "/api/v1/chat/sessions")
      assert.are.equal(401, res.status)
      assert.truthy(res.headers["www-authenticate"])
    end)
  end)

  describe("isolation", function()
    it("answers 404 for another user's session on every route", function()
      local s = C.session(srv, alice)
      C.ask(srv, alice, s.id, "안녕")
      fake:reset()
      local get = srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = bob.headers })
      assert.are.equal(404, get.status)
      assert.are.equal("not_found", get.json.code)
      local post = C.ask(srv, bob, s.id, "남의 세션에 질문")
      assert.are.equal(404, post.status)
      local invalid = srv:request("POST", "/api/v1/chat/sessions/" .. s.id, { headers = bob.headers, json = { content = "" } })
      assert.are.equal(404, invalid.status)
      for _, item in ipairs(srv:request("GET", "/api/v1/chat/sessions", { headers = bob.headers }).json.items) do
        assert.are_not.equal(s.id, item.id)
      end
      -- nothing was added to alice's session, and no provider call was made for bob
      assert.are.equal(2, #srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers }).json.messages)
      assert.are.equal(0, #fake:requests())
    end)

    it("answers 404 for a session id that is not a number or does not exist", function()
      assert.are.equal(404, srv:request("GET", "/api/v1/chat/sessions/abc", { headers = alice.headers }).status)
      assert.are.equal(404, srv:request("GET", "/api/v1/chat/sessions/999999999", { headers = alice.headers }).status)
    end)
  end)

  describe("validation", function()
    local s
    before_each(function() s = C.session(srv, alice) end)

    it("rejects empty content with 422", function()
      for _, content in ipairs({ "", "   " }) do
        local res = srv:request("POST", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers, json = { content = content } })
        assert.are.equal(422, res.status)
        assert.are.equal("validation_failed", res.json.code)
        assert.are.equal("content", res.json.errors[1].field)
      end
    end)

    it("rejects 2,001 characters with 422 and accepts 2,000", function()
      local res = C.ask(srv, alice, s.id, ("가"):rep(2001))
      assert.are.equal(422, res.status)
      assert.are.equal("content", res.json.errors[1].field)
      assert.are.equal(200, C.ask(srv, alice, s.id, ("가"):rep(2000)).status)
    end)

    it("rejects a missing or non-string content, and a body that is not JSON", function()
      local res = srv:request("POST", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers, json = { content = 5 } })
      assert.are.equal(422, res.status)
      res = srv:request("POST", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers, json = { } })
      assert.are.equal(422, res.status)
      local h = { Authorization = alice.headers.Authorization, ["Content-Type"] = "text/plain" }
      assert.are.equal(415, srv:request("POST", "/api/v1/chat/sessions/" .. s.id, { headers = h, body = "hi" }).status)
    end)

    it("stores nothing and calls no provider for an invalid question", function()
      C.ask(srv, alice, s.id, "")
      assert.are.equal(0, #srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers }).json.messages)
      assert.are.equal(0, #fake:requests())
    end)
  end)

  describe("answers", function()
    it("answers as JSON and stores both messages with the intent", function()
      local s = C.session(srv, alice)
      fake:script { { text = "안녕하세요! 무엇을 도와드릴까요?" } }
      local res = C.ask(srv, alice, s.id, "안녕하세요")
      assert.are.equal(200, res.status)
      assert.are.equal("user", res.json.userMessage.role)
      assert.are.equal("안녕하세요", res.json.userMessage.content)
      assert.are.equal("small_talk", res.json.userMessage.intent)
      local a = res.json.assistantMessage
      assert.are.equal("assistant", a.role)
      assert.are.equal("안녕하세요! 무엇을 도와드릴까요?", a.content)
      assert.are.equal("small_talk", a.intent)
      assert.is_false(a.degraded)
      assert.are.same({}, a.citations)
      local got = srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers }).json
      assert.are.equal(2, #got.messages)
      assert.are.equal(res.json.userMessage.id, got.messages[1].id)
      assert.are.equal(a.id, got.messages[2].id)
      assert.are.equal(a.content, got.messages[2].content)
    end)

    it("streams server-sent events: deltas, then done with both stored messages", function()
      local s = C.session(srv, alice)
      fake:script { { text = "천천히 나오는 긴 답변입니다.", chunk = 3 } }
      local res = C.ask_sse(srv, alice, s.id, "안녕")
      assert.are.equal(200, res.status)
      assert.matches("^text/event%-stream", res.headers["content-type"])
      local text, done = C.stream_parts(res.events)
      local deltas = 0
      for _, e in ipairs(res.events) do if e.event == "delta" then deltas = deltas + 1 end end
      assert.is_true(deltas >= 5)
      assert.are.equal("천천히 나오는 긴 답변입니다.", text)
      assert.are.equal("done", res.events[#res.events].event)
      assert.are.equal(text, done.assistantMessage.content)
      assert.are.equal("안녕", done.userMessage.content)
      local got = srv:request("GET", "/api/v1/chat/sessions/" .. s.id, { headers = alice.headers }).json
      assert.are.equal(done.assistantMessage.id, got.messages[2].id)
    end)

    it("sends the conversation so far as history, the question last", function()
      local s = C.session(srv, alice)
      fake:script { { text = "첫 답변" }, { text = "둘째 답변" } }
      C.ask(srv, alice, s.id, "안녕")
      C.ask(srv, alice, s.id, "고마워")
      local reqs = fake:requests()
      local msgs = reqs[2].body.messages
      assert.are.same({ "user", "assistant", "user" }, { msgs[1].role, msgs[2].role, msgs[3].role })
      assert.are.equal("안녕", msgs[1].content)
      assert.are.equal("첫 답변", msgs[2].content)
      assert.are.equal("고마워", msgs[3].content)
      assert.matches("lifeplan", reqs[2].body.system)
    end)

    it("cites no policy that was not in the context", function()
      local s = C.session(srv, alice)
      -- the fake's default answer cites [정책 #999999], never in any context
      local res = C.ask(srv, alice, s.id, "오늘 날씨 어때?")
      assert.matches("#999999", res.json.assistantMessage.content)
      assert.are.same({}, res.json.assistantMessage.citations)
      assert.are.equal("unknown", res.json.assistantMessage.intent)
    end)
  end)

  it("documents its routes in the OpenAPI document", function()
    local doc = srv:request("GET", "/api/v1/openapi.json").json
    assert.truthy(doc.paths["/api/v1/chat/sessions"].get)
    assert.truthy(doc.paths["/api/v1/chat/sessions"].post)
    assert.truthy(doc.paths["/api/v1/chat/sessions/{id}"].get)
    assert.truthy(doc.paths["/api/v1/chat/sessions/{id}"].post.responses["429"])
    assert.truthy(doc.components.schemas.ChatMessage)
  end)

  describe("rate limit", function()
    it("answers 429 with Retry-After past CHAT_RATE_LIMIT questions in the window", function()
      local limited = C.server(fake, "anthropic", { CHAT_RATE_LIMIT = "2", CHAT_RATE_WINDOW_S = "3600" })
      local ok, err = pcall(function()
        local u = C.user(limited)
        local s = C.session(limited, u)
        assert.are.equal(200, C.ask(limited, u, s.id, "안녕").status)
        assert.are.equal(200, C.ask(limited, u, s.id, "안녕").status)
        local res = C.ask(limited, u, s.id, "안녕")
        assert.are.equal(429, res.status)
        assert.are.equal("rate_limited", res.json.code)
        assert.is_true(tonumber(res.headers["retry-after"]) >= 1)
        -- another user is not affected
        local v = C.user(limited)
        assert.are.equal(200, C.ask(limited, v, C.session(limited, v).id, "안녕").status)
      end)
      limited:stop()
      assert(ok, err)
    end)
  end)
end)

describe("chat API with the offline provider", function()
  local srv, user

  setup(function()
    srv = C.server(nil, "offline")
    user = C.user(srv)
  end)

  teardown(function() if srv then srv:stop() end end)

  it("answers from templates, says it is a summary, and is not degraded", function()
    local s = C.session(srv, user)
    local res = C.ask(srv, user, s.id, "이번 달 식비 얼마나 썼어?")
    assert.are.equal(200, res.status)
    local a = res.json.assistantMessage
    assert.is_false(a.degraded)
    assert.are.equal("spending_summary", a.intent)
    assert.matches("요약", a.content)
  end)

  it("answers small talk without the summary note", function()
    local s = C.session(srv, user)
    local res = C.ask_sse(srv, user, s.id, "안녕하세요")
    local text, done = C.stream_parts(res.events)
    assert.are.equal(done.assistantMessage.content, text)
    assert.matches("lifeplan 도우미", text)
    assert.is_nil(text:find("요약 답변", 1, true))
  end)
end)
