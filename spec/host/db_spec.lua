-- lp.db through the real binary and a real PostgreSQL (DATABASE_URL).
-- The outage case stops and restarts that server with scripts/services
-- (LP_SERVICES_DIR names its folder, as scripts/test sets it up), and checks
-- that /readyz names postgres meanwhile.
local H      = require "spec.helpers.server"
local socket = require "socket"

local function start(env)
  return H.start { modules = false, fixtures = { "spec/host/db_fixtures" }, env = env }
end

-- Sends n requests at once on n connections, then reads every answer.
local function concurrent(srv, n, path)
  local socks = {}
  for i = 1, n do
    local s = srv:connect(30)
    s:send("GET " .. path(i) .. " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    socks[i] = s
  end
  local out = {}
  for i = 1, n do
    out[i] = assert(H.read_response(socks[i], "GET"))
    socks[i]:close()
  end
  return out
end

local function poll(fn, attempts)
  for _ = 1, attempts or 100 do
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  end
  return nil
end

describe("lp.db", function()
  local srv

  setup(function()
    assert(os.getenv("DATABASE_URL"), "DATABASE_URL must name a test PostgreSQL")
    srv = start { DB_POOL_SIZE = 4 }
    assert.are.equal(204, srv:request("POST", "/t/db/setup").status)
  end)

  teardown(function()
    if srv then assert.are.equal(0, srv:stop()) end
  end)

  describe("type mapping", function()
    local t
    setup(function()
      local res = srv:request("GET", "/t/db/types")
      assert.are.equal(200, res.status)
      t = res.json
    end)

    it("maps int2/int4 to numbers", function()
      assert.are.same({ type = "number", value = 7 }, t.i2)
      assert.are.same({ type = "number", value = -2147483648 }, t.i4)
    end)

    it("maps int8 to a number up to 2^53 and to an exact string beyond", function()
      assert.are.equal("number", t.i8_edge.type)
      assert.are.equal("9007199254740992", t.i8_edge_text)
      assert.are.same({ type = "string", value = "9007199254740993" }, t.i8_big)
      assert.are.same({ type = "string", value = "-9223372036854775808" }, t.i8_min)
      assert.are.same({ type = "number", value = 1500000 }, t.won)
    end)

    it("maps integral numerics to numbers and keeps fractional ones as exact strings", function()
      assert.are.same({ type = "string", value = "12.50" }, t.num_frac)
      assert.are.same({ type = "number", value = 123456789012 }, t.num_int)
      assert.are.same({ type = "number", value = 3 }, t.num_sum) -- sum(bigint) is numeric
      assert.are.same({ type = "string", value = "NaN" }, t.num_nan)
    end)

    it("maps floats, booleans and text types", function()
      assert.are.same({ type = "number", value = 1.5 }, t.f8)
      assert.are.same({ type = "number", value = 0.25 }, t.f4)
      assert.are.same({ type = "boolean", value = true }, t.yes)
      assert.are.same({ type = "boolean", value = false }, t.no)
      assert.are.same({ type = "string", value = "text" }, t.t)
      assert.are.same({ type = "string", value = "vc" }, t.vc)
      assert.are.same({ type = "string", value = "ab " }, t.bp)
      assert.are.same({ type = "string", value = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }, t.u)
    end)

    it("formats date and timestamptz (RFC 3339, UTC)", function()
      assert.are.same({ type = "string", value = "2026-11-28" }, t.d)
      assert.are.same({ type = "string", value = "2026-11-28T10:00:00Z" }, t.ts)
      assert.are.same({ type = "string", value = "2026-11-28T10:00:00.25Z" }, t.ts_frac)
      assert.are.same({ type = "string", value = "2026-11-28T10:00:00" }, t.ts_local)
    end)

    it("decodes json and jsonb, with JSON null as the null sentinel", function()
      assert.are.equal("table", t.jb.type)
      assert.are.same({ c = true }, t.jb.value.b)
      assert.are.same({ type = "null" }, t.jb_a_second)
      assert.are.same({ type = "table", value = { 1, 2 } }, t.j)
      assert.are.same({ type = "null" }, t.jnull)
    end)

    it("maps arrays, with NULL elements, quoting and several dimensions", function()
      assert.are.equal(1, t.a_i4.value[1])
      assert.are.equal(3, t.a_i4.value[3])
      assert.are.same({ type = "null" }, t.a_i4_second)
      assert.are.same({ "9007199254740993" }, t.a_i8.value)
      local txt = t.a_text.value
      assert.are.equal("a b", txt[1])
      assert.are.equal('x"y', txt[2])
      assert.are.same({ type = "null" }, t.a_text_third)
      assert.are.equal("NULL", txt[4]) -- the string, quoted by the server, is not NULL
      assert.are.equal("c,d", txt[5])
      assert.are.equal("{}", txt[6])
      assert.are.equal("back\\slash", txt[7])
      assert.are.same({ { 1, 2 }, { 3, 4 } }, t.a_2d.value)
      assert.are.equal("table", t.a_empty.type)
      assert.are.same({ true, false }, t.a_bool.value)
      assert.are.same({ "2026-01-02" }, t.a_date.value)
      assert.are.same({ "2026-11-28T10:00:00Z" }, t.a_ts.value)
      assert.are.same({ { k = 1 } }, t.a_jsonb.value)
    end)

    it("leaves NULL columns out of the row and other types as text", function()
      assert.are.same({ type = "nil" }, t.nothing)
      assert.are.same({ type = "string", value = "1 day" }, t.iv)
    end)

    it("returns every row and the affected count", function()
      assert.are.equal(2, t.nrows)
      assert.are.equal(2, t.affected)
    end)

    it("encodes an empty result as a JSON array", function()
      local res = srv:request("GET", "/t/db/empty")
      assert.are.equal(200, res.status)
      assert.truthy(res.body:find('"rows":[]', 1, true))
      assert.are.equal(0, res.json.affected)
    end)

    it("returns an empty rows array for a command without columns", function()
      local res = srv:request("POST", "/t/db/command")
      assert.are.equal(200, res.status)
      assert.truthy(res.body:find('"rows":[]', 1, true), res.body)
      assert.are.equal(0, res.json.affected)
    end)
  end)

  describe("parameters", function()
    it("sends Lua values as typed text", function()
      local res = srv:request("POST", "/t/db/params",
        { json = { s = "it's", i = 42, f = 0.1, b = true } })
      assert.are.equal(200, res.status)
      local j = res.json
      assert.are.equal("it's", j.s)
      assert.are.equal(42, j.i)
      assert.are.equal(0.1, j.f)
      assert.are.equal(true, j.b)
      assert.are.equal(true, j.n)
      assert.are.same({ k = "it's", list = { 1, 2 } }, j.j)
      assert.are.equal("1152921504606846976", j.big) -- integral: no exponent, no fraction
      assert.are.equal("-3", j.neg)
      assert.are.same({ type = "nil" }, j.null2) -- a NULL column is absent
    end)

    it("stores and reads back injection strings verbatim", function()
      local values = { "' OR 1=1 --", "'; DROP TABLE lp_spec_rt; --", "a;b;c", "$1",
                       "\"quoted\" \\ back", "한글", "" }
      local res = srv:request("POST", "/t/db/roundtrip", { json = { values = values } })
      assert.are.equal(200, res.status)
      assert.are.same(values, res.json.back)
      for i = 1, #values do assert.are.equal(1, res.json.counts[i]) end
      assert.are.equal(#values, res.json.total) -- the table survived
    end)
  end)

  describe("errors", function()
    it("raises SQL errors as tables services can map (unique → 409)", function()
      assert.are.equal(201, srv:request("POST", "/t/db/users", { json = { email = "a@x" } }).status)
      local res = srv:request("POST", "/t/db/users", { json = { email = "a@x" } })
      assert.are.equal(409, res.status)
      assert.truthy(res.json.detail:find("lp_spec_uniq_email", 1, true))
    end)

    it("answers an unexpected SQL error with 500 and no details", function()
      local res = srv:request("GET", "/t/db/sql_error")
      assert.are.equal(500, res.status)
      assert.falsy(res.body:find("no_such_table_here", 1, true))
    end)
  end)

  describe("transactions", function()
    it("commits when the function returns", function()
      local res = srv:request("POST", "/t/db/tx?mode=commit&key=c1")
      assert.are.equal(200, res.status)
      assert.are.equal(2, res.json.inside)
      assert.are.equal(2, srv:request("GET", "/t/db/tx_count?key=c1").json.n)
    end)

    it("rolls back on a Lua error and re-raises it", function()
      assert.are.equal(500, srv:request("POST", "/t/db/tx?mode=lua_error&key=r1").status)
      assert.are.equal(0, srv:request("GET", "/t/db/tx_count?key=r1").json.n)
    end)

    it("rolls back on an SQL error with the error's sqlstate", function()
      local res = srv:request("POST", "/t/db/tx?mode=sql_error&key=r2")
      assert.are.same({ ok = false, code = "db_error", sqlstate = "23502" }, res.json)
      assert.are.equal(0, srv:request("GET", "/t/db/tx_count?key=r2").json.n)
    end)

    it("does not report a commit when a swallowed error aborted the transaction", function()
      local res = srv:request("POST", "/t/db/tx?mode=swallowed&key=r3")
      assert.are.same({ ok = false, code = "db_error", sqlstate = "25P02" }, res.json)
      assert.are.equal(0, srv:request("GET", "/t/db/tx_count?key=r3").json.n)
    end)

    it("refuses nested transactions", function()
      local res = srv:request("POST", "/t/db/tx?mode=nested")
      assert.are.equal(false, res.json.ok)
      assert.truthy(res.json.err:find("nested", 1, true))
      -- and the outer connection went back to the pool
      assert.truthy(poll(function()
        return srv:request("GET", "/t/db/stats").json.busy == 0
      end))
    end)
  end)

  it("runs a batch in one pipeline and reports the failing statement", function()
    local res = srv:request("GET", "/t/db/batch")
    assert.are.equal(200, res.status)
    local j = res.json
    assert.are.same({ { a = 1 } }, j.results[1])
    assert.are.same({ { isnull = true } }, j.results[2])
    assert.are.same({ { g = 1 }, { g = 2 }, { g = 3 } }, j.results[3])
    assert.are.same({ 1, 1, 3 }, j.affected)
    assert.are.equal(false, j.ok)
    assert.are.equal(2, j.index)
    assert.are.equal("22012", j.sqlstate)
  end)

  it("reports a parameter count mismatch as db_error 08P01, not unavailable", function()
    local res = srv:request("GET", "/t/db/bind_mismatch")
    assert.are.equal(200, res.status)
    assert.are.same({ ok1 = false, code1 = "db_error", sqlstate1 = "08P01", ok2 = false,
                      code2 = "db_error", sqlstate2 = "08P01", after = 3 }, res.json)
  end)

  it("answers 200 concurrent requests on a pool of 4", function()
    local out = concurrent(srv, 200, function(i) return "/t/db/one?n=" .. i end)
    for i = 1, 200 do
      assert.are.equal(200, out[i].status)
      assert.are.equal(i, out[i].json.n)
    end
    local st = srv:request("GET", "/t/db/stats").json
    assert.are.equal(4, st.size)
    assert.is_true(st.open <= 4)
    assert.are.equal(0, st.inflight) -- every multiplexed job was answered
  end)

  it("keeps concurrent reads apart when some fail: each gets its own answer", function()
    local before = srv:request("GET", "/t/db/stats").json.shared
    local out = concurrent(srv, 200, function(i) return "/t/db/div?n=" .. i end)
    for i = 1, 200 do
      if i % 7 == 0 then
        assert.are.equal(500, out[i].status) -- division by zero: its own error
      else
        assert.are.equal(200, out[i].status)
        assert.are.equal(math.floor(i / (i % 7)), out[i].json.n)
      end
    end
    local st = srv:request("GET", "/t/db/stats").json
    assert.is_true(st.shared > before) -- reads did share Syncs with failing ones
    assert.are.equal(0, st.inflight)
  end)

  it("reports the pool in /metrics", function()
    local function metric(body, name)
      return tonumber(body:match("\n" .. name .. " (%d+)"))
    end
    local before = srv:request("GET", "/metrics").body
    concurrent(srv, 50, function(i) return "/t/db/one?n=" .. i end)
    local after = srv:request("GET", "/metrics").body
    assert.are.equal(4, metric(after, "lifeplan_db_pool_size"))
    assert.are.equal(1, metric(after, "lifeplan_db_up"))
    for _, name in ipairs { "lifeplan_db_pool_open", "lifeplan_db_pool_busy", "lifeplan_db_pool_waiting",
                            "lifeplan_db_pool_inflight", "lifeplan_db_errors_total",
                            "lifeplan_db_reconnects_total", "lifeplan_db_coalesced_total" } do
      assert.is_number(metric(after, name), name)
    end
    assert.are.equal(0, metric(after, "lifeplan_db_pool_waiting"))
    assert.is_true(metric(after, "lifeplan_db_shared_sync_total") >= metric(before, "lifeplan_db_shared_sync_total") + 50)
  end)

  it("delivers NOTIFY to db.listen handlers, also after the listen connection breaks", function()
    assert.are.equal(204, srv:request("POST", "/t/db/notify?payload=first").status)
    assert.truthy(poll(function()
      local n = srv:request("GET", "/t/db/notes").json.notes
      return #n >= 1 and n[1].payload == "first" and n[1].channel == "lp_spec_channel"
    end))
    local before = srv:request("GET", "/t/db/stats").json.reconnects
    assert.are.equal(1, srv:request("POST", "/t/db/kill_listener").json.n)
    -- notifications sent while it reconnects are lost by design: keep sending
    -- until one arrives through the new connection
    local got = poll(function()
      srv:request("POST", "/t/db/notify?payload=again")
      local n = srv:request("GET", "/t/db/notes").json.notes
      return n[#n].payload == "again"
    end, 200)
    assert.truthy(got)
    assert.is_true(srv:request("GET", "/t/db/stats").json.reconnects > before)
  end)
end)

describe("lp.db pool limits", function()
  it("answers 503 when no connection frees up within the wait timeout", function()
    local srv = start { DB_POOL_SIZE = 1, DB_WAIT_TIMEOUT_MS = 100 }
    assert.are.equal(200, srv:request("GET", "/t/db/one").status) -- connected
    local slow = srv:connect(10)
    slow:send("GET /t/db/sleep?ms=2000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    socket.sleep(0.2)
    local res = srv:request("GET", "/t/db/one")
    assert.are.equal(503, res.status)
    assert.are.equal("unavailable", res.json.code)
    assert.are.equal(200, H.read_response(slow, "GET").status)
    slow:close()
    assert.are.equal(0, srv:stop())
  end)
end)

describe("lp.db when PostgreSQL goes away", function()
  local dir = os.getenv("LP_SERVICES_DIR")
  local services = H.root .. "/scripts/services"

  it("answers 503 at once while it is down and recovers by itself", function()
    assert(dir, "LP_SERVICES_DIR must name the scripts/services folder of DATABASE_URL")
    -- a long wait timeout: a 503 within the client's 5 s can only be the fast path
    local srv = start { DB_POOL_SIZE = 2, DB_WAIT_TIMEOUT_MS = 30000 }
    assert.are.equal(200, srv:request("GET", "/t/db/one").status)
    local out, code = H.sh(services .. " stop-pg " .. H.quote(dir))
    assert(code == 0, out)
    local ok, err = pcall(function()
      for _ = 1, 3 do
        local res = srv:request("GET", "/t/db/one", { timeout = 5 })
        assert.are.equal(503, res.status)
        assert.are.equal("unavailable", res.json.code)
      end
      local ready = srv:request("GET", "/readyz", { timeout = 5 })
      assert.are.equal(503, ready.status)
      assert.are.same({ "postgres" }, ready.json.down)
    end)
    out, code = H.sh(services .. " start-pg " .. H.quote(dir))
    assert(code == 0, out)
    assert(ok, err)
    assert.truthy(poll(function()
      return srv:request("GET", "/t/db/one", { timeout = 5 }).status == 200
    end, 200))
    assert.are.equal(200, srv:request("GET", "/readyz").status)
    assert.is_true(srv:alive())
    assert.are.equal(0, srv:stop())
  end)
end)
