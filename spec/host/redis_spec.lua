-- lp.redis through the real binary, against real redis-servers: the shared
-- one from REDIS_URL and a private one this spec stops and restarts.
local H      = require "spec.helpers.server"
local socket = require "socket"

local REDIS_URL = os.getenv("REDIS_URL")

local function call(srv, ...)
  return srv:request("POST", "/c/redis/call", { json = { args = { ... } } }).json
end

-- A redis-server of our own, so it can be stopped and started again.
local Private = {}
Private.__index = Private

local function start_redis(port, dir)
  local _, code = H.sh(string.format(
    "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
      .. "--pidfile %s/redis.pid --logfile %s/redis.log --dir %s", port, dir, dir, dir))
  assert(code == 0, "redis-server did not start")
  for _ = 1, 200 do
    local out = H.sh("redis-cli -p " .. port .. " PING")
    if out:find("PONG") then return end
    socket.sleep(0.02)
  end
  error("redis-server on port " .. port .. " is not answering")
end

local function stop_redis(port)
  H.sh("redis-cli -p " .. port .. " SHUTDOWN NOSAVE")
  for _ = 1, 200 do
    local out = H.sh("redis-cli -p " .. port .. " PING")
    if not out:find("PONG") then return end
    socket.sleep(0.02)
  end
  error("redis-server on port " .. port .. " did not stop")
end

describe("lp.redis", function()
  local srv

  setup(function()
    assert(REDIS_URL and REDIS_URL ~= "", "REDIS_URL must point at a test Redis")
    srv = H.start { modules = false, fixtures = { "spec/host/clients_fixtures" },
                    env = { REDIS_URL = REDIS_URL } }
  end)

  teardown(function()
    srv:stop()
  end)

  it("maps status, bulk, integer and nil replies", function()
    local key = "spec:redis:" .. H.free_port()
    local r = call(srv, "SET", key, "v1")
    assert.are.equal("OK", r.value)
    assert.are.equal("string", r.type)
    r = call(srv, "GET", key)
    assert.are.equal("v1", r.value)
    r = call(srv, "INCRBY", key .. ":n", 41)
    assert.are.equal(41, r.value)
    assert.are.equal("number", r.type)
    r = call(srv, "GET", key .. ":missing")
    assert.are.equal("nil", r.type)
    r = call(srv, "PING")
    assert.are.equal("PONG", r.value)
  end)

  it("sends integral numbers exactly and keeps 64-bit integers exact", function()
    local r = srv:request("GET", "/c/redis/numbers?k=" .. H.free_port()).json
    assert.are.equal("9007199254740992", r.sent)     -- 2^53, not "9.007199254741e+15"
    assert.are.equal("string", r.big_type)           -- beyond 2^53: a string, not a rounded number
    assert.are.equal("9007199254740995", r.big)
    assert.are.equal("-7", r.neg)
    assert.are.equal("1.5", r.frac)
  end)

  it("is binary safe", function()
    local r = srv:request("GET", "/c/redis/binary?k=" .. H.free_port()).json
    assert.are.equal("OK", r.set)
    assert.is_true(r.same)
    assert.are.equal(6, r.len)
  end)

  it("returns an error reply as nil plus the server's message", function()
    local r = call(srv, "NOSUCHCOMMAND", "x")
    assert.are.equal("nil", r.type)
    assert.matches("^ERR unknown command", r.err)
  end)

  it("maps arrays with nil elements to false", function()
    local key = "spec:redis:arr:" .. H.free_port()
    call(srv, "SET", key, "a")
    local r = call(srv, "MGET", key, key .. ":none", key)
    assert.are.same({ "a", false, "a" }, r.value)
  end)

  it("runs a pipeline and answers each command in order", function()
    local key = "spec:redis:pipe:" .. H.free_port()
    local res = srv:request("POST", "/c/redis/pipeline", { json = { cmds = {
      { "SET", key, "v" }, { "GET", key }, { "GET", key .. ":none" }, { "INCR", key },
      { "APPEND", key, "w" } } } }).json
    local r = res.replies
    assert.are.equal("OK", r[1])
    assert.are.equal("v", r[2])
    assert.are.equal(false, r[3])
    assert.matches("not an integer", r[4].err)
    assert.are.equal(2, r[5])
  end)

  it("refuses commands that would break reply ordering", function()
    local r = call(srv, "SUBSCRIBE", "ch")
    assert.are.equal("invalid command", r.err)
  end)

  it("raises on a table argument (a programming error), answered 500", function()
    assert.are.equal(500, srv:request("GET", "/c/redis/misuse").status)
    assert.are.equal("PONG", call(srv, "PING").value)
  end)
end)

describe("lp.redis when Redis goes away", function()
  local srv, port, dir

  setup(function()
    port = H.free_port()
    dir = H.tmpdir()
    start_redis(port, dir)
    srv = H.start { modules = false, fixtures = { "spec/host/clients_fixtures" },
                    env = { REDIS_URL = "redis://127.0.0.1:" .. port, REDIS_TIMEOUT_MS = 5000 } }
  end)

  teardown(function()
    srv:stop()
    stop_redis(port)
    H.sh("rm -rf " .. dir)
  end)

  it("answers nil, 'unavailable' at once while down and recovers by itself", function()
    local r
    for _ = 1, 100 do -- the host connects in the background
      r = call(srv, "SET", "k", "before")
      if r.value == "OK" then break end
      socket.sleep(0.05)
    end
    assert.are.equal("OK", r.value)

    stop_redis(port)
    -- With a 5 s command deadline, "unavailable" (not "timeout") shows that
    -- nothing waited for the dead server.
    for _ = 1, 10 do
      r = call(srv, "GET", "k")
      assert.are.equal("nil", r.type)
      assert.are.equal("unavailable", r.err)
    end
    assert.are.equal(200, srv:request("GET", "/c/up/hello").status) -- the host serves on

    start_redis(port, dir)
    for _ = 1, 100 do
      r = call(srv, "SET", "k", "after")
      if r.value == "OK" then break end
      socket.sleep(0.05)
    end
    assert.are.equal("OK", r.value)
    assert.are.equal("after", call(srv, "GET", "k").value)
  end)
end)
