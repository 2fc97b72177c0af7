-- spec/scripts/services_spec.lua — scripts/services runs a private PostgreSQL
-- and Redis under a folder, and the fault-injection subcommands keep their
-- addresses. Uses its own temporary folder, independent of DATABASE_URL.

local ROOT = os.getenv("LIFEPLAN_ROOT") or assert(io.popen("pwd")):read("*l")

local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), rc
end

describe("scripts/services", function()
  local dir, env

  local function svc(cmd)
    return sh(ROOT .. "/scripts/services " .. cmd .. " " .. dir)
  end
  local function pg(sql)
    return sh("psql -X -A -t -q -d '" .. env.DATABASE_URL .. "' -c \"" .. sql .. "\"")
  end
  local function redis(cmd)
    return sh("redis-cli -u " .. env.REDIS_URL .. " " .. cmd)
  end

  setup(function()
    dir = assert(io.popen("mktemp -d /tmp/lifeplan-spec.XXXXXX")):read("*l")
  end)

  teardown(function()
    svc("stop")
    sh("rm -rf " .. dir)
  end)

  it("starts both servers, creates the lifeplan database with pg_trgm and prints their URLs", function()
    local out, rc = svc("start")
    assert.are.equal(0, rc, out)
    out, rc = svc("env")
    assert.are.equal(0, rc, out)
    env = {}
    for k, v in out:gmatch("export (%u+_URL)=(%S+)") do env[k] = v end
    assert.matches("^postgresql://.*@127%.0%.0%.1:%d+/lifeplan$", env.DATABASE_URL)
    assert.matches("^redis://127%.0%.0%.1:%d+$", env.REDIS_URL)
    assert.are.equal("pg_trgm\n", (pg("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")))
    assert.are.equal("UTF8\n", (pg("SHOW server_encoding")))
    assert.are.equal("PONG\n", (redis("ping")))
    assert.are.equal("yes\n", (redis("config get appendonly"):match("\n(.*)$")))
  end)

  it("runs PostgreSQL as an unprivileged user", function()
    local owner = sh("stat -c %U " .. dir .. "/pg")
    assert.are_not.equal("root\n", owner)
    assert.are.equal(owner, (sh("ps -o user= -p $(head -1 " .. dir .. "/pg/postmaster.pid)")))
  end)

  it("is idempotent: a second start keeps the running servers", function()
    local pid = sh("head -1 " .. dir .. "/pg/postmaster.pid")
    local out, rc = svc("start")
    assert.are.equal(0, rc, out)
    assert.are.equal(pid, (sh("head -1 " .. dir .. "/pg/postmaster.pid")))
  end)

  it("stops and starts PostgreSQL alone on the same address", function()
    local out, rc = svc("stop-pg")
    assert.are.equal(0, rc, out)
    out, rc = svc("status")
    assert.are.equal(3, rc)
    assert.matches("postgresql: stopped", out)
    assert.matches("redis: running", out)
    assert.are_not.equal(0, select(2, pg("SELECT 1")))
    assert.are.equal(0, select(2, svc("stop-pg")))  -- already down: fine
    assert.are.equal(0, select(2, svc("start-pg")))
    assert.are.equal("1\n", (pg("SELECT 1")))
    assert.are.equal(0, select(2, svc("restart-pg")))
    assert.are.equal("1\n", (pg("SELECT 1")))
  end)

  it("stops and starts Redis alone, keeping data in the append-only file", function()
    assert.are.equal("OK\n", (redis("set lifeplan:spec kept")))
    assert.are.equal(0, select(2, svc("stop-redis")))
    assert.are_not.equal("PONG\n", (redis("ping")))
    assert.are.equal(0, select(2, svc("start-redis")))
    assert.are.equal("kept\n", (redis("get lifeplan:spec")))
  end)

  it("stop stops both and tolerates servers already down", function()
    assert.are.equal(0, select(2, svc("stop")))
    local out, rc = svc("status")
    assert.are.equal(3, rc)
    assert.matches("postgresql: stopped", out)
    assert.matches("redis: stopped", out)
    assert.are.equal(0, select(2, svc("stop")))
  end)
end)
