-- The providers against the fake LLM: both wire formats, retries with
-- backoff and retry-after, the time budget, the degraded offline answer,
-- and a client that goes away mid-stream.
local C      = require "spec.chat.helpers"
local socket = require "socket"
local json   = require "cjson.safe"

local function count_path(reqs, path)
  local n = 0
  for _, r in ipairs(reqs) do if r.path == path then n = n + 1 end end
  return n
end

for _, kind in ipairs({ "anthropic", "openai" }) do
  local path = kind == "anthropic" and "/v1/messages" or "/v1/chat/completions"

  describe(kind .. " provider", function()
    local fake, srv, user, sid

    setup(function()
      fake = C.fake()
      srv = C.server(fake, kind, { LLM_MAX_TOKENS = "321" })
      user = C.user(srv)
    end)

    teardown(function()
      if srv then srv:stop() end
      if fake then fake:stop() end
    end)

    before_each(function()
      fake:reset()
      sid = C.session(srv, user).id
    end)

    it("sends the documented request: auth headers, model, max_tokens, stream", function()
      fake:script { { text = "답변", usage_in = 77, usage_out = 5 } }
      local res = C.ask(srv, user, sid, "안녕")
      assert.are.equal("답변", res.json.assistantMessage.content)
      local r = fake:requests()[1]
      assert.are.equal(path, r.path)
      assert.are.equal(true, r.body.stream)
      assert.are.equal(321, r.body.max_tokens)
      if kind == "anthropic" then
        assert.are.equal("sk-ant-fake", r.headers["x-api-key"])
        assert.are.equal("2023-06-01", r.headers["anthropic-version"])
        assert.are.equal("claude-fake", r.body.model)
        assert.matches("한국어", r.body.system)
        assert.are.equal("user", r.body.messages[#r.body.messages].role)
      else
        assert.are.equal("Bearer sk-fake", r.headers.authorization)
        assert.are.equal("gpt-fake", r.body.model)
        assert.are.equal("system", r.body.messages[1].role)
        assert.matches("한국어", r.body.messages[1].content)
      end
    end)

    it("retries 529 and 503 with backoff, then answers", function()
      fake:script { { status = 529 }, { status = 503 }, { text = "세 번째에 성공" } }
      local res = C.ask(srv, user, sid, "안녕")
      assert.are.equal("세 번째에 성공", res.json.assistantMessage.content)
      assert.is_false(res.json.assistantMessage.degraded)
      assert.are.equal(3, count_path(fake:requests(), path))
    end)

    it("retries at most twice, then answers offline with degraded: true", function()
      fake:script { { status = 500 }, { status = 500 }, { status = 500 }, { text = "쓰이지 않는 답" } }
      local res = C.ask(srv, user, sid, "이번 달 예산 얼마 남았어?")
      local a = res.json.assistantMessage
      assert.is_true(a.degraded)
      assert.matches("요약", a.content)
      assert.are.equal("budget_status", a.intent)
      assert.are.equal(3, count_path(fake:requests(), path))
      local got = srv:request("GET", "/api/v1/chat/sessions/" .. sid, { headers = user.headers }).json
      assert.is_true(got.messages[2].degraded)
    end)

    it("does not retry a 4xx other than 429", function()
      fake:script { { status = 401 }, { text = "쓰이지 않는 답" } }
      local res = C.ask(srv, user, sid, "안녕")
      assert.is_true(res.json.assistantMessage.degraded)
      assert.are.equal(1, count_path(fake:requests(), path))
    end)

    it("retries a mid-stream error when nothing reached the client yet (JSON answer)", function()
      fake:script { { text = "첫 시도는 중간에 끊깁니다", error_after = 2 }, { text = "두 번째 답변" } }
      local res = C.ask(srv, user, sid, "안녕")
      assert.are.equal("두 번째 답변", res.json.assistantMessage.content)
      assert.are.equal(2, count_path(fake:requests(), path))
    end)

    it("never retries once tokens were streamed to the client; the stored answer is whole", function()
      fake:script { { text = "스트리밍 도중에 오류가 납니다", chunk = 2, error_after = 3 }, { text = "쓰이지 않는 답" } }
      local res = C.ask_sse(srv, user, sid, "안녕")
      local text, done = C.stream_parts(res.events)
      assert.are.equal(1, count_path(fake:requests(), path))
      assert.are.equal(1, text:find("스트리밍", 1, true))
      assert.is_true(done.assistantMessage.degraded)
      -- the stored message is the offline answer alone, not the broken start
      assert.is_nil(done.assistantMessage.content:find("스트리밍", 1, true))
      local got = srv:request("GET", "/api/v1/chat/sessions/" .. sid, { headers = user.headers }).json
      assert.are.equal(done.assistantMessage.content, got.messages[2].content)
    end)

    it("treats a stream that ends without its final event as a failure", function()
      fake:script { { text = "잘린 스트림", truncate_after = 1 }, { text = "다시 받은 답" } }
      local res = C.ask(srv, user, sid, "안녕")
      assert.are.equal("다시 받은 답", res.json.assistantMessage.content)
      assert.are.equal(2, count_path(fake:requests(), path))
    end)

    it("cites only policies of the context", function()
      local res = C.ask(srv, user, sid, "오늘 날씨 어때?")
      assert.matches("#999999", res.json.assistantMessage.content)
      assert.are.same({}, res.json.assistantMessage.citations)
    end)
  end)
end

describe("retry-after", function()
  local fake

  setup(function() fake = C.fake() end)
  teardown(function() if fake then fake:stop() end end)
  before_each(function() fake:reset() end)

  -- Backoff alone would wait 60 s·(0.5–1) here, past LLM_RETRY_AFTER_MAX_MS,
  -- so a retry happens only if the server's retry-after is used instead.
  local env = { LLM_RETRY_BASE_MS = "60000", LLM_RETRY_AFTER_MAX_MS = "5000" }

  it("retries after the 429's retry-after instead of the backoff", function()
    local srv = C.server(fake, "anthropic", env)
    local ok, err = pcall(function()
      local u = C.user(srv)
      local sid = C.session(srv, u).id
      fake:script { { status = 429, retry_after = "1" }, { text = "기다린 뒤 성공" } }
      local res = C.ask(srv, u, sid, "안녕")
      assert.are.equal("기다린 뒤 성공", res.json.assistantMessage.content)
      assert.are.equal(2, #fake:requests())
      -- without retry-after the backoff is too long: one attempt, degraded
      fake:reset()
      fake:script { { status = 429 }, { text = "쓰이지 않는 답" } }
      res = C.ask(srv, u, sid, "안녕")
      assert.is_true(res.json.assistantMessage.degraded)
      assert.are.equal(1, #fake:requests())
    end)
    srv:stop()
    assert(ok, err)
  end)

  it("honours OpenAI's retry-after-ms, and gives up when retry-after is too long", function()
    local srv = C.server(fake, "openai", env)
    local ok, err = pcall(function()
      local u = C.user(srv)
      local sid = C.session(srv, u).id
      fake:script { { status = 429, retry_after_ms = "50" }, { text = "OK" } }
      assert.are.equal("OK", C.ask(srv, u, sid, "안녕").json.assistantMessage.content)
      assert.are.equal(2, #fake:requests())
      fake:reset()
      fake:script { { status = 429, retry_after = "30" }, { text = "쓰이지 않는 답" } }
      local res = C.ask(srv, u, sid, "안녕")
      assert.is_true(res.json.assistantMessage.degraded)
      assert.are.equal(1, #fake:requests())
    end)
    srv:stop()
    assert(ok, err)
  end)
end)

describe("timeouts", function()
  local fake, srv, user

  setup(function()
    fake = C.fake()
    srv = C.server(fake, "anthropic", { LLM_TIMEOUT_MS = "1500", LLM_FIRST_BYTE_TIMEOUT_MS = "800" })
    user = C.user(srv)
  end)

  teardown(function()
    if srv then srv:stop() end
    if fake then fake:stop() end
  end)

  before_each(function() fake:reset() end)

  it("answers offline with degraded: true when the provider never answers", function()
    fake:default { hang = true }
    local sid = C.session(srv, user).id
    local res = C.ask(srv, user, sid, "나한테 맞는 정책 추천해줘")
    assert.are.equal(200, res.status)
    local a = res.json.assistantMessage
    assert.is_true(a.degraded)
    assert.are.equal("policy_search", a.intent)
    assert.matches("AI 상담 연결이 원활하지 않아", a.content)
  end)

  it("gives up on a stream that goes silent, and streams the offline answer", function()
    fake:default { text = "조용해지는 스트림입니다", chunk = 2, hang_after = 2 }
    local sid = C.session(srv, user).id
    local res = C.ask_sse(srv, user, sid, "이번 달 지출 알려줘")
    local text, done = C.stream_parts(res.events)
    assert.is_true(done.assistantMessage.degraded)
    assert.matches("AI 상담 연결이 원활하지 않아", text)
    assert.are.equal(done.assistantMessage.content,
      srv:request("GET", "/api/v1/chat/sessions/" .. sid, { headers = user.headers }).json.messages[2].content)
  end)
end)

describe("client disconnect", function()
  local fake, srv, user

  setup(function()
    fake = C.fake()
    srv = C.server(fake, "anthropic")
    user = C.user(srv)
  end)

  teardown(function()
    if srv then srv:stop() end
    if fake then fake:stop() end
  end)

  local function start_stream(sid, content)
    local sock = srv:connect(10)
    local body = json.encode { content = content }
    sock:send(table.concat({
      "POST /api/v1/chat/sessions/" .. sid .. " HTTP/1.1", "Host: x", "Accept: text/event-stream",
      "Authorization: " .. user.headers.Authorization, "Content-Type: application/json",
      "Content-Length: " .. #body, "", body }, "\r\n"))
    return sock
  end

  it("stops writing, lets the provider finish and stores the whole answer", function()
    fake:reset()
    local full = "이 답변은 천천히 스트리밍되며 클라이언트가 중간에 연결을 끊어도 끝까지 저장되어야 합니다."
    fake:script { { text = full, chunk = 3, delay_ms = 40 } }
    local sid = C.session(srv, user).id
    local sock = start_stream(sid, "안녕")
    -- read until the first delta arrives, then hang up
    local seen = ""
    repeat
      local line = assert(sock:receive("*l"))
      seen = seen .. line .. "\n"
    until seen:find("event: delta", 1, true)
    sock:close()
    local got = C.wait_messages(srv, user, sid, 2)
    assert.are.equal(2, #got.messages)
    assert.are.equal(full, got.messages[2].content)
    assert.is_false(got.messages[2].degraded)
    -- the server is healthy and still answers
    assert.are.equal(200, srv:request("GET", "/healthz").status)
  end)

  it("stores the offline answer, never a partial one, when the provider then fails", function()
    fake:reset()
    fake:script { { text = "끊긴 뒤에 실패하는 스트림입니다", chunk = 2, delay_ms = 40, error_after = 5 } }
    local sid = C.session(srv, user).id
    local sock = start_stream(sid, "안녕")
    repeat until assert(sock:receive("*l")):find("event: delta", 1, true)
    sock:close()
    local got = C.wait_messages(srv, user, sid, 2)
    assert.are.equal(2, #got.messages)
    assert.is_true(got.messages[2].degraded)
    assert.is_nil(got.messages[2].content:find("끊긴", 1, true))
  end)
end)
