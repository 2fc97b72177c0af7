-- The HTTP server and the request/response contract, against the real binary.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

local function read_all_responses(sock, n)
  local out = {}
  for i = 1, n do out[i] = assert(H.read_response(sock, "GET")) end
  return out
end

describe("host server", function()
  local srv

  setup(function()
    srv = H.start {
      modules = false,
      fixtures = { "spec/host/fixtures" },
      env = { HEADER_TIMEOUT_MS = 400, BODY_TIMEOUT_MS = 400, MAX_BODY_BYTES = 65536 },
    }
  end)

  teardown(function()
    srv:stop()
  end)

  describe("routing", function()
    it("passes decoded path params and query values to the handler", function()
      local res = srv:request("GET", "/t/items/a%20b?x=%ED%95%9C&y=1+2&x=ignored")
      assert.are.equal(200, res.status)
      assert.are.equal("a b", res.json.id)
      assert.are.equal("한", res.json.q.x)
      assert.are.equal("1 2", res.json.q.y)
    end)

    it("prefers a literal segment over a parameter", function()
      assert.are.equal(true, srv:request("GET", "/t/items/special").json.special)
    end)

    it("matches several parameters", function()
      local res = srv:request("GET", "/t/users/7/notes/9")
      assert.are.same({ uid = "7", nid = "9" }, res.json)
    end)

    it("answers 404 problem+json for an unknown route", function()
      local res = srv:request("GET", "/nope/nothing")
      assert.are.equal(404, res.status)
      assert.are.equal("application/problem+json", res.headers["content-type"])
      assert.are.equal("not_found", res.json.code)
      assert.are.equal(res.headers["x-request-id"], res.json.requestId)
    end)

    it("answers 405 with Allow for a known path and wrong method", function()
      local res = srv:request("PUT", "/t/items/3")
      assert.are.equal(405, res.status)
      assert.are.equal("method_not_allowed", res.json.code)
      assert.are.equal("GET, DELETE", res.headers["allow"])
    end)

    it("answers HEAD like GET without a body", function()
      local res = srv:request("HEAD", "/t/version")
      assert.are.equal(200, res.status)
      assert.are.equal("", res.body)
      assert.is_true(tonumber(res.headers["content-length"]) > 0)
    end)

    it("sends 204 without a body", function()
      local res = srv:request("DELETE", "/t/items/1")
      assert.are.equal(204, res.status)
      assert.is_nil(res.headers["content-length"])
    end)
  end)

  describe("conventions", function()
    it("echoes a client's X-Request-Id and sets Server and Date", function()
      local res = srv:request("GET", "/t/headers", { headers = { ["X-Request-Id"] = "abc-123" } })
      assert.are.equal("abc-123", res.headers["x-request-id"])
      assert.are.equal("abc-123", res.json.id)
      assert.are.equal("lifeplan", res.headers["server"])
      assert.truthy(res.headers["date"]:match("GMT$"))
    end)

    it("generates a request id when the client's is unsafe", function()
      local res = srv:request("GET", "/t/headers", { headers = { ["X-Request-Id"] = "a b<script>" } })
      assert.truthy(res.headers["x-request-id"]:match("^%x+$"))
    end)

    it("joins repeated request headers", function()
      local sock = srv:connect()
      sock:send("GET /t/headers HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\n\r\n")
      local res = H.read_response(sock, "GET")
      sock:close()
      assert.are.equal("a, b", res.json.x)
    end)

    it("puts marked empty tables back after encoding them, also when encoding fails", function()
      local r = srv:request("GET", "/t/empty/restored").json
      assert.is_true(r.raised)
      assert.is_true(r.kept)
      assert.is_true(r.again)
      assert.are.equal("[]", r.top)
      local v = json.decode(r.text)
      assert.are.same({ a = {}, b = { c = {}, d = { {}, 1 } }, s1 = { list = {} }, s2 = { list = {} } }, v)
      assert.truthy(r.text:find('"a":[]', 1, true))
      assert.truthy(r.text:find('"c":[]', 1, true))
      assert.truthy(r.text:find('"d":[[],1]', 1, true))
      assert.truthy(r.text:find('"s1":{"list":[]}', 1, true))
      assert.truthy(r.text:find('"s2":{"list":[]}', 1, true))
      assert.is_nil(r.text:find("lp-empty-array", 1, true))
    end)

    it("encodes marked empty tables as JSON arrays", function()
      local res = srv:request("GET", "/t/empty")
      assert.truthy(res.body:find('"items":[]', 1, true))
      assert.truthy(res.body:find('"list":[]', 1, true))
      assert.truthy(res.body:find('"full":[1]', 1, true))
    end)
  end)

  describe("JSON numbers", function()
    it("writes integers as digits and other numbers with 14 significant digits", function()
      local res = srv:request("GET", "/t/numbers")
      assert.are.equal('{"n":[0,-0,1,-1,42,-4500,10000000000000,99999999999999,-99999999999999,'
        .. '1e+14,9.007199254741e+15,1.5,-2.25,0.33333333333333,0.1,1e+300,1e-07,123.456]}', res.body)
    end)

    it("reads numbers back as they were sent", function()
      local res = srv:request("POST", "/t/numbers", { body = '{"v":[0,-12,3.25,1e3,-7.5e-3,123456789012]}',
        headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal('{"back":{"v":[0,-12,3.25,1000,-0.0075,123456789012]}}', res.body)
    end)
  end)

  describe("JSON bodies", function()
    it("decodes a JSON object body", function()
      local res = srv:request("POST", "/t/items", { json = { name = "커피", amount = 4500 } })
      assert.are.equal(201, res.status)
      assert.are.same({ name = "커피", amount = 4500 }, res.json.got)
    end)

    it("answers 400 for invalid JSON", function()
      local res = srv:request("POST", "/t/items",
        { body = "{not json", headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(400, res.status)
      assert.are.equal("bad_request", res.json.code)
    end)

    it("answers 400 for a JSON body that is not an object", function()
      local res = srv:request("POST", "/t/items",
        { body = "[1,2]", headers = { ["Content-Type"] = "application/json" } })
      assert.are.equal(400, res.status)
    end)

    it("answers 415 when the body is not JSON", function()
      local res = srv:request("POST", "/t/items",
        { body = "a=1", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert.are.equal(415, res.status)
      assert.are.equal("unsupported_media_type", res.json.code)
    end)
  end)

  describe("errors in scripts", function()
    it("turns a Lua error into a 500 problem without leaking details", function()
      local res = srv:request("GET", "/t/boom")
      assert.are.equal(500, res.status)
      assert.are.equal("internal_error", res.json.code)
      assert.falsy(res.body:find("secret", 1, true))
      assert.falsy(res.body:find("traceback", 1, true))
      assert.falsy(res.body:find(".lua", 1, true))
      local log = srv:read_log()
      assert.truthy(log:find("secret internal detail", 1, true))
      assert.truthy(log:find("stack traceback", 1, true))
      assert.truthy(log:find(res.json.requestId, 1, true))
    end)

    it("answers a raised problem with its status and code", function()
      local res = srv:request("GET", "/t/problem")
      assert.are.equal(409, res.status)
      assert.are.equal("conflict", res.json.code)
      assert.are.equal("already there", res.json.detail)
    end)

    it("keeps serving after errors", function()
      assert.are.equal(200, srv:request("GET", "/t/version").status)
    end)
  end)

  describe("limits", function()
    it("answers 431 when headers exceed the limit", function()
      local big = string.rep("a", 20 * 1024)
      local data = srv:raw("GET /t/version HTTP/1.1\r\nHost: x\r\nX-Big: " .. big .. "\r\n\r\n")
      assert.truthy(data:match("^HTTP/1.1 431"))
      assert.truthy(data:find("Connection: close", 1, true))
    end)

    it("answers 413 from Content-Length before reading the body", function()
      local data, how = srv:raw("POST /t/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
      assert.truthy(data:match("^HTTP/1.1 413"))
      assert.are.equal("closed", how)
    end)

    it("answers 413 when a chunked body grows past the limit", function()
      local chunk = string.rep("x", 40000)
      local req = "POST /t/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. string.format("%x\r\n%s\r\n", #chunk, chunk):rep(2) .. "0\r\n\r\n"
      local data = srv:raw(req)
      assert.truthy(data:match("^HTTP/1.1 413"))
    end)

    it("answers 408 and closes when headers arrive too slowly", function()
      local data, how = srv:raw("GET /t/version HTTP/1.1\r\nHost: x\r\n", 3)
      assert.truthy(data:match("^HTTP/1.1 408"))
      assert.are.equal("closed", how)
    end)

    it("answers 408 when the body arrives too slowly", function()
      local data = srv:raw("POST /t/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 3)
      assert.truthy(data:match("^HTTP/1.1 408"))
    end)

    it("refuses Content-Length together with Transfer-Encoding and closes", function()
      local data, how = srv:raw("POST /t/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /t/version HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.truthy(data:match("^HTTP/1.1 400"))
      assert.are.equal("closed", how)
      local _, count = data:gsub("HTTP/1.1 ", "")
      assert.are.equal(1, count) -- the smuggled second request was never answered
    end)

    it("answers 400 for a malformed request line", function()
      for _, line in ipairs { "GARBAGE\r\n\r\n", "GET /x HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                              "GET /x HTTP/1.1\r\nBad Header\r\n\r\n" } do
        local data, how = srv:raw(line)
        assert.truthy(data:match("^HTTP/1.1 400"), line)
        assert.are.equal("closed", how)
      end
    end)
  end)

  describe("connections", function()
    it("keeps a connection alive across requests", function()
      local sock = srv:connect()
      for i = 1, 3 do
        sock:send("GET /t/items/" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n")
        local res = H.read_response(sock, "GET")
        assert.are.equal(tostring(i), json.decode(res.body).id)
      end
      sock:close()
    end)

    it("answers pipelined requests in order even when the first is slowest", function()
      local sock = srv:connect()
      sock:send("GET /t/sleep?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /t/sleep?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /t/items/3 HTTP/1.1\r\nHost: x\r\n\r\n")
      local res = read_all_responses(sock, 3)
      sock:close()
      assert.are.equal(150, json.decode(res[1].body).slept)
      assert.are.equal(1, json.decode(res[2].body).slept)
      assert.are.equal("3", json.decode(res[3].body).id)
    end)

    it("reads chunked request bodies", function()
      local sock = srv:connect()
      sock:send("POST /t/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
      local res = H.read_response(sock, "POST")
      sock:close()
      assert.are.equal("hello world", json.decode(res.body).body)
    end)

    it("answers Expect: 100-continue before the body", function()
      local sock = srv:connect()
      sock:send("POST /t/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
      assert.are.equal("HTTP/1.1 100 Continue", sock:receive("*l"))
      sock:receive("*l")
      sock:send("abcd")
      local res = H.read_response(sock, "POST")
      sock:close()
      assert.are.equal(4, json.decode(res.body).len)
    end)

    it("closes the connection after an HTTP/1.0 request", function()
      local data, how = srv:raw("GET /t/version HTTP/1.0\r\n\r\n")
      assert.truthy(data:match("^HTTP/1.1 200"))
      assert.are.equal("closed", how)
    end)
  end)

  describe("streaming", function()
    it("streams server-sent events", function()
      local res = srv:request("GET", "/t/sse?n=3")
      assert.are.equal(200, res.status)
      assert.truthy(res.headers["content-type"]:find("text/event-stream", 1, true))
      local events = {}
      for ev, data in res.body:gmatch("event: (%w+)\ndata: ([^\n]*)\n\n") do
        events[#events + 1] = { ev, json.decode(data) }
      end
      assert.are.equal(4, #events)
      assert.are.equal("delta", events[1][1])
      assert.are.equal("토큰1", events[1][2].text)
      assert.are.equal("done", events[4][1])
    end)

    it("lets a handler notice that the client went away", function()
      local sock = srv:connect()
      sock:send("GET /t/sse-forever?key=k1 HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.truthy(sock:receive("*l"):match("200"))
      sock:close()
      local value
      for _ = 1, 100 do
        value = srv:request("GET", "/t/cache/gone:k1").json.value
        if value ~= json.null then break end
        socket.sleep(0.05)
      end
      assert.are.equal("noticed", value)
    end)
  end)

  describe("host API", function()
    it("keeps values in the in-process cache with a TTL", function()
      assert.are.equal(204, srv:request("PUT", "/t/cache/a", { json = { value = { n = 1 } } }).status)
      assert.are.same({ n = 1 }, srv:request("GET", "/t/cache/a").json.value)
      srv:request("PUT", "/t/cache/b?ttl=0.1", { json = { value = "short" } })
      assert.are.equal("short", srv:request("GET", "/t/cache/b").json.value)
      socket.sleep(0.25)
      assert.are.equal(json.null, srv:request("GET", "/t/cache/b").json.value)
    end)

    it("computes SHA-256, HMAC and base64url with libsodium", function()
      local r = srv:request("GET", "/t/crypto").json
      assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", r.sha)
      assert.are.equal("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8", r.hmac)
      assert.are.equal("__5oZWxsbw", r.b64)
      assert.is_true(r.back)
      assert.is_true(r.bad)
      assert.is_true(r.eq)
      assert.is_false(r.neq)
      assert.are.equal(32, r.rnd)
    end)

    it("hashes and verifies passwords with argon2id", function()
      local r = srv:request("POST", "/t/password", { json = { password = "correct horse" } }).json
      assert.truthy(r.hash:match("^%$argon2id%$v=19%$m=19456,t=2,p=1%$"))
      assert.is_true(r.ok)
      assert.is_false(r.wrong)
    end)

    it("runs timer.after callbacks as tasks", function()
      assert.are.equal(202, srv:request("GET", "/t/after?key=z").status)
      local v
      for _ = 1, 50 do
        v = srv:request("GET", "/t/cache/after:z").json.value
        if v ~= json.null then break end
        socket.sleep(0.02)
      end
      assert.are.equal("fired", v)
    end)
  end)

  describe("ops routes", function()
    it("serves /healthz with the generation", function()
      local r = srv:request("GET", "/healthz")
      assert.are.equal(200, r.status)
      assert.are.equal(1, r.json.generation)
      assert.are.equal(json.null, r.json.lastReloadError)
    end)

    it("serves /metrics in Prometheus format", function()
      srv:request("GET", "/t/version")
      local r = srv:request("GET", "/metrics")
      assert.are.equal(200, r.status)
      assert.truthy(r.body:find('lifeplan_http_requests_total{route="GET /t/version",status="200"}', 1, true))
      assert.truthy(r.body:find("lifeplan_http_request_duration_ms_bucket", 1, true))
      assert.truthy(r.body:find("lifeplan_connections_open", 1, true))
      assert.truthy(r.body:find("lifeplan_script_generation 1", 1, true))
      assert.truthy(r.body:find("lifeplan_lua_memory_kbytes", 1, true))
    end)

    it("serves the OpenAPI document", function()
      local r = srv:request("GET", "/api/v1/openapi.json")
      assert.are.equal(200, r.status)
      assert.are.equal("3.1.0", r.json.openapi)
      assert.truthy(r.json.paths["/healthz"])
    end)
  end)
end)

describe("host process", function()
  it("runs a request on the coroutine a finished one left, never on one that failed", function()
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" } }
    finally(function() srv:stop() end)
    local a = srv:request("GET", "/t/co").json.co
    assert.are.equal(a, srv:request("GET", "/t/co").json.co) -- one at a time: one spare, reused
    -- a handler's error is caught by the dispatcher: the coroutine still ends normally
    assert.are.equal(500, srv:request("GET", "/t/boom").status)
    assert.are.equal(a, srv:request("GET", "/t/co").json.co)
    -- a coroutine the host had to abandon (suspended by a bare yield) is dropped
    assert.are.equal(500, srv:request("GET", "/t/co/yield").status)
    local c = srv:request("GET", "/t/co").json.co
    assert.are_not.equal(a, c)
    assert.are.equal(c, srv:request("GET", "/t/co").json.co)
    -- several suspended at once each get their own, and all answer
    local socks = {}
    for i = 1, 5 do
      socks[i] = srv:connect()
      socks[i]:send("GET /t/sleep?ms=" .. (50 + i) .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    end
    for i = 1, 5 do
      local res = assert(H.read_response(socks[i], "GET"))
      assert.are.equal(200, res.status)
      assert.are.equal(50 + i, res.json.slept)
      socks[i]:close()
    end
  end)

  it("sets the Lua GC pause and step multiplier from LUA_GC_PAUSE and LUA_GC_STEPMUL", function()
    local srv
    finally(function() if srv then srv:stop() end end)
    local function gc_of(env)
      if srv then srv:stop() end
      srv = H.start { modules = false, fixtures = { "spec/host/fixtures" }, env = env }
      return srv:request("GET", "/t/gc").json
    end
    assert.are.same({ pause = 150, stepmul = 200 }, gc_of(nil))
    assert.are.same({ pause = 300, stepmul = 400 }, gc_of { LUA_GC_PAUSE = 300, LUA_GC_STEPMUL = 400 })
    -- out of range or not a number: the default, and the host still starts
    assert.are.same({ pause = 150, stepmul = 200 }, gc_of { LUA_GC_PAUSE = 20, LUA_GC_STEPMUL = "lots" })
  end)

  it("limits the number of open connections", function()
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" },
                          env = { MAX_CONNECTIONS = 2 } }
    local a, b = srv:connect(), srv:connect()
    local data, how = srv:raw("GET /t/version HTTP/1.1\r\nHost: x\r\n\r\n", 3)
    assert.are.equal("", data or "")
    assert.are.equal("closed", how)
    a:close(); b:close()
    socket.sleep(0.1)
    assert.are.equal(200, srv:request("GET", "/t/version").status)
    srv:stop()
  end)

  it("finishes in-flight requests on SIGTERM, then exits 0", function()
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" } }
    local sock = srv:connect()
    sock:send("GET /t/sleep?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n")
    socket.sleep(0.1)
    srv:signal("TERM")
    socket.sleep(0.1)
    local refused = not pcall(function()
      local s = assert(socket.tcp()); s:settimeout(1)
      assert(s:connect("127.0.0.1", srv.port)); s:close()
    end)
    local res = H.read_response(sock, "GET")
    sock:close()
    assert.is_true(refused)
    assert.are.equal(200, res.status)
    assert.are.equal("close", res.headers["connection"])
    assert.are.equal(0, srv:wait(10))
  end)

  it("runs several workers sharing the port", function()
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" }, workers = 2 }
    -- The second worker may still be starting (the harness waits for one):
    -- keep opening connections until both answered, for a bounded while.
    local pids, n = {}, 0
    local deadline = socket.gettime() + 10
    while n < 2 and socket.gettime() < deadline do
      local r = srv:request("GET", "/healthz")
      if not pids[r.json.pid] then
        pids[r.json.pid] = true
        n = n + 1
      end
    end
    assert.are.equal(2, n)
    assert.are.equal(0, srv:stop())
  end)
end)

describe("client address", function()
  it("believes X-Forwarded-For only behind a declared proxy", function()
    local direct = H.start { modules = false, fixtures = { "spec/host/fixtures" },
                             env = { TRUSTED_PROXIES = "" } }
    local r = direct:request("GET", "/t/ip", { headers = { ["X-Forwarded-For"] = "203.0.113.9" } })
    direct:stop()
    assert.are.equal("127.0.0.1", r.json.ip)
    local proxied = H.start { modules = false, fixtures = { "spec/host/fixtures" } }
    r = proxied:request("GET", "/t/ip", { headers = { ["X-Forwarded-For"] = "198.51.100.7, 203.0.113.9" } })
    proxied:stop()
    -- read from the right: the entry the trusted proxy (loopback) appended
    assert.are.equal("203.0.113.9", r.json.ip)
  end)
end)

describe("readiness", function()
  it("is 503 naming redis while Redis is down, and 200 again once it is back", function()
    local dir = assert(os.getenv("LP_SERVICES_DIR"), "scripts/test exports LP_SERVICES_DIR")
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" } }
    local ok = srv:request("GET", "/readyz")
    assert.are.equal(200, ok.status)
    assert.is_true(ok.json.checks.redis)
    H.sh(H.root .. "/scripts/services stop-redis " .. dir)
    local down = srv:request("GET", "/readyz")
    H.sh(H.root .. "/scripts/services start-redis " .. dir)
    assert.are.equal(503, down.status)
    assert.are.same({ "redis" }, down.json.down)
    local back
    for _ = 1, 100 do
      back = srv:request("GET", "/readyz")
      if back.status == 200 then break end
      socket.sleep(0.05)
    end
    assert.are.equal(200, back.status)
    assert.truthy(srv:request("GET", "/metrics").body:find("lifeplan_redis_connected 1", 1, true))
    srv:stop()
  end)
end)

-- The connection timer is armed lazily (a later deadline moves a field, the
-- timer re-arms when it fires), so these check that each phase still gets
-- exactly its own timeout, counted from when the phase began.
describe("connection timeouts", function()
  local srv
  setup(function()
    srv = H.start { modules = false, fixtures = { "spec/host/fixtures" },
                    env = { KEEPALIVE_TIMEOUT_MS = 400, HEADER_TIMEOUT_MS = 1500 } }
  end)
  teardown(function() srv:stop() end)

  local function get(sock, i)
    assert(sock:send("GET /t/items/" .. i .. " HTTP/1.1\r\nHost: x\r\n\r\n"))
    local res = assert(H.read_response(sock, "GET"))
    assert.are.equal(tostring(i), json.decode(res.body).id)
  end

  it("counts keep-alive from the last answer, then closes an idle connection", function()
    local sock = srv:connect(3)
    -- requests 250 ms apart: the connection lives well past one keep-alive
    -- period because each answer starts a new one
    for i = 1, 5 do
      get(sock, i)
      socket.sleep(0.25)
    end
    get(sock, 6)
    local data, err, partial = sock:receive("*a") -- idle now: the server closes
    sock:close()
    assert.are_not.equal("timeout", err)
    assert.are.equal("", data or partial)
  end)

  it("gives a request's headers their own timeout after a keep-alive wait", function()
    local sock = srv:connect(5)
    get(sock, 1)
    socket.sleep(0.2)
    -- headers begun 0.2 s into keep-alive and finished 0.6 s later: past the
    -- keep-alive deadline (0.4 s), within the header timeout (1.5 s)
    assert(sock:send("GET /t/items/2 HTTP/1.1\r\n"))
    socket.sleep(0.6)
    assert(sock:send("Host: x\r\n\r\n"))
    local res = assert(H.read_response(sock, "GET"))
    assert.are.equal("2", json.decode(res.body).id)
    -- headers that never finish still get their 408
    assert(sock:send("GET /t/version HTTP/1.1\r\n"))
    local data, err, partial = sock:receive("*a")
    sock:close()
    assert.are_not.equal("timeout", err)
    assert.truthy((data or partial):match("^HTTP/1.1 408"))
  end)
end)
