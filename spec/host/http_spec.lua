-- lp.http through the real binary. The upstream is the host itself
-- (/c/up/... routes), so every request here also proves that a task waiting
-- on http.request leaves the worker free to answer the request it made.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

local function esc(s)
  return (s:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

describe("lp.http", function()
  local srv

  setup(function()
    srv = H.start { modules = false, fixtures = { "spec/host/clients_fixtures" } }
  end)

  teardown(function()
    srv:stop()
  end)

  local function fetch(query)
    return srv:request("GET", "/c/http/fetch?" .. query).json
  end

  it("returns status, lower-cased headers and body", function()
    local r = fetch("path=" .. esc("/c/up/hello"))
    assert.are.equal(200, r.status)
    assert.are.equal("1", r.headers["x-up"])
    assert.matches("^application/json", r.headers["content-type"])
    assert.are.same({ hello = "world" }, json.decode(r.body))
  end)

  it("sends method, headers and body", function()
    local r = fetch("method=post&custom=abc&body=" .. esc("x=1&y=한") .. "&path=" .. esc("/c/up/echo"))
    assert.are.equal(200, r.status)
    local echo = json.decode(r.body)
    assert.are.equal("POST", echo.method)
    assert.are.equal("x=1&y=한", echo.body)
    assert.are.equal("abc", echo.custom)
  end)

  it("treats any HTTP status as a response", function()
    local r = fetch("path=" .. esc("/c/up/status/429"))
    assert.are.equal(429, r.status)
    assert.are.equal("3", r.headers["retry-after"])
  end)

  it("times out with 'timeout: ...'", function()
    local r = fetch("timeout_ms=100&path=" .. esc("/c/up/slow?ms=2000"))
    assert.matches("^timeout: ", r.err)
    r = fetch("timeout_ms=10000&read_timeout_ms=100&path=" .. esc("/c/up/slow?ms=2000"))
    assert.matches("^timeout: no data for 100 ms", r.err)
  end)

  it("reports a refused connection as 'unavailable: ...'", function()
    local r = fetch("url=" .. esc("http://127.0.0.1:" .. H.free_port() .. "/"))
    assert.matches("^unavailable: ", r.err)
  end)

  it("rejects other protocols and header injection as 'invalid: ...'", function()
    assert.matches("^invalid: ", fetch("url=" .. esc("file:///etc/passwd")).err)
    assert.matches("^invalid: ", fetch("custom=" .. esc("a\r\nX-Evil: 1") .. "&path=/c/up/hello").err)
  end)

  it("streams chunks to on_chunk, with status and headers, and returns no body", function()
    local r = srv:request("GET", "/c/http/stream?n=4").json
    assert.are.equal(200, r.status)
    assert.are.equal(json.null, r.body)
    assert.is_true(r.streamed)
    assert.are.equal(200, r.first.status)
    assert.matches("^text/event%-stream", r.first.type)
    local n = 0
    for i in r.joined:gmatch('data: {"i":(%d)}') do n = n + 1; assert.are.equal(n, tonumber(i)) end
    assert.are.equal(4, n)
  end)

  it("cancels when on_chunk returns false", function()
    local r = srv:request("GET", "/c/http/cancel").json
    assert.are.equal(json.null, r.status)
    assert.are.equal("cancelled", r.err)
    assert.are.equal(1, r.chunks)
  end)

  it("propagates an error raised in on_chunk as a 500 and keeps serving", function()
    assert.are.equal(500, srv:request("GET", "/c/http/raise").status)
    assert.are.equal(200, fetch("path=" .. esc("/c/up/hello")).status)
  end)

  it("relays a stream as SSE", function()
    local res = srv:request("GET", "/c/http/relay?n=3&key=whole")
    assert.are.equal(200, res.status)
    local n = 0
    for _ in res.body:gmatch("event: up\n") do n = n + 1 end
    assert.are.equal(3, n)
  end)

  it("stops the upstream transfer when the relaying client goes away", function()
    local sock = assert(socket.tcp())
    sock:settimeout(5)
    assert(sock:connect("127.0.0.1", srv.port))
    sock:send("GET /c/http/relay?n=1000&key=gone HTTP/1.1\r\nHost: x\r\n\r\n")
    assert(sock:receive("*l"))          -- the status line: the relay is running
    assert(sock:receive(64))
    sock:close()
    local v
    for _ = 1, 200 do
      v = srv:request("GET", "/c/cache/relay:gone").json.value
      if v ~= json.null then break end
      socket.sleep(0.02)
    end
    local rec = json.decode(v)
    assert.are.equal("cancelled", rec.err)
    assert.is_true(rec.relayed < 1000)
  end)

  it("serves many concurrent outbound requests from one worker", function()
    local socks = {}
    for i = 1, 20 do
      local s = assert(socket.tcp())
      s:settimeout(10)
      assert(s:connect("127.0.0.1", srv.port))
      s:send("GET /c/http/fetch?path=" .. esc("/c/up/slow?ms=100") .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      socks[i] = s
    end
    for i = 1, 20 do
      local res = assert(H.read_response(socks[i], "GET"))
      assert.are.equal(200, json.decode(res.body).status)
      socks[i]:close()
    end
  end)
end)
