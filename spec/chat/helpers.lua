-- spec/chat/helpers.lua — what the chat specs share: the fake LLM provider
-- (a second lifeplan instance serving spec/chat/fake_llm), a lifeplan
-- configured to use it, users registered through the real auth module, and
-- reading server-sent events.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

local C = {}

function C.fake()
  local fake = H.start { modules = false, fixtures = { "spec/chat/fake_llm" }, workers = 1 }
  function fake:script(steps) return self:request("POST", "/_fake/script", { json = { steps = steps } }) end
  function fake:default(step) return self:request("POST", "/_fake/default", { json = step }) end
  function fake:reset() return self:request("POST", "/_fake/reset", { json = {} }) end
  function fake:requests() return self:request("GET", "/_fake/requests").json.items end
  return fake
end

-- A lifeplan whose provider is the fake. kind: "anthropic" | "openai" | "offline".
function C.server(fake, kind, env)
  local e = { LLM_RETRY_BASE_MS = "20", LLM_TIMEOUT_MS = "20000", CHAT_RATE_LIMIT = "1000" }
  if kind == "anthropic" then
    e.ANTHROPIC_API_KEY = "sk-ant-fake"; e.ANTHROPIC_BASE_URL = fake.url; e.LLM_MODEL = "claude-fake"
  elseif kind == "openai" then
    e.LLM_PROVIDER = "openai"; e.OPENAI_API_KEY = "sk-fake"; e.OPENAI_BASE_URL = fake.url .. "/v1"
    e.LLM_MODEL = "gpt-fake"
  else
    e.LLM_PROVIDER = "offline"
  end
  for k, v in pairs(env or {}) do e[k] = v end
  return H.start { env = e, workers = 1 }
end

local n = 0
-- Registers a fresh user; returns { id, headers = {Authorization=...} }.
function C.user(srv)
  n = n + 1
  local email = string.format("chat-%d-%d-%d@example.com", os.time(), math.random(1, 1e9), n)
  local res = srv:request("POST", "/api/v1/auth/register", { json = { email = email, password = "correct horse 1" } })
  assert(res.status == 201, "register failed: " .. tostring(res.status) .. " " .. tostring(res.body))
  return { id = res.json.user.id, email = email, headers = { Authorization = "Bearer " .. res.json.accessToken } }
end

function C.session(srv, user, title)
  local res = srv:request("POST", "/api/v1/chat/sessions", { headers = user.headers, json = { title = title } })
  assert(res.status == 201, res.body)
  return res.json
end

function C.ask(srv, user, sid, content, opts)
  return srv:request("POST", "/api/v1/chat/sessions/" .. sid,
    { headers = user.headers, json = { content = content }, timeout = (opts and opts.timeout) or 30 })
end

-- Parses an event stream body into { {event=, data=decoded}, ... }.
function C.events(body)
  local out = {}
  for block in (body .. "\n\n"):gmatch("(.-)\r?\n\r?\n") do
    local ev, data = nil, {}
    for line in block:gmatch("[^\n]+") do
      local k, v = line:match("^(%w+): ?(.*)$")
      if k == "event" then ev = v elseif k == "data" then data[#data + 1] = v end
    end
    if ev then out[#out + 1] = { event = ev, data = json.decode(table.concat(data, "\n")) } end
  end
  return out
end

function C.ask_sse(srv, user, sid, content)
  local h = { Accept = "text/event-stream" }
  for k, v in pairs(user.headers) do h[k] = v end
  local res = srv:request("POST", "/api/v1/chat/sessions/" .. sid, { headers = h, json = { content = content }, timeout = 30 })
  res.events = C.events(res.body)
  return res
end

-- Deltas joined, and the done event's data.
function C.stream_parts(events)
  local text, done = {}, nil
  for _, e in ipairs(events) do
    if e.event == "delta" then text[#text + 1] = e.data.text elseif e.event == "done" then done = e.data end
  end
  return table.concat(text), done
end

-- Polls the session until it holds `count` messages (the answer of a
-- request whose client went away is stored when it completes).
function C.wait_messages(srv, user, sid, count, seconds)
  local deadline = socket.gettime() + (seconds or 20)
  local res
  repeat
    res = srv:request("GET", "/api/v1/chat/sessions/" .. sid, { headers = user.headers })
    if #res.json.messages >= count then return res.json end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  return res.json
end

C.H = H
return C
