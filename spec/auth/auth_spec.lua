-- /api/v1/auth through the real binary, PostgreSQL and Redis.
local H      = require "spec.helpers.server"
local A      = require "spec.helpers.auth"
local socket = require "socket"

local DATABASE_URL = os.getenv("DATABASE_URL")
local REDIS_URL = os.getenv("REDIS_URL")

local function psql(sql)
  return (H.sh("psql -XAtq " .. H.quote(DATABASE_URL) .. " -c " .. H.quote(sql)):gsub("%s+$", ""))
end

local function redis_cli(...)
  local args = {}
  for i, a in ipairs { ... } do args[i] = H.quote(a) end
  return (H.sh("redis-cli -u " .. H.quote(REDIS_URL) .. " " .. table.concat(args, " ")):gsub("%s+$", ""))
end

local function post(srv, path, body, headers)
  return srv:request("POST", path, { json = body, headers = headers })
end

local function assert_problem(r, status, code)
  assert.are.equal(status, r.status, r.body)
  assert.matches("application/problem%+json", r.headers["content-type"])
  assert.are.equal(code, r.json.code)
  assert.is_string(r.json.requestId)
end

describe("auth", function()
  local srv

  setup(function()
    srv = H.start { workers = 1, env = { LOGIN_MAX_FAILURES = 3, LOGIN_MAX_FAILURES_IP = 6,
                                         MAX_BODY_BYTES = 4096 } }
  end)
  teardown(function() srv:stop() end)

  describe("POST /auth/register", function()
    it("answers 201 {user, accessToken, refreshToken, expiresIn} and creates the profile row", function()
      local email = A.email("Reg")
      local r = A.register(srv, email, nil, { name = "김청년" })
      assert.are.equal(201, r.status)
      local u = r.json.user
      assert.is_number(u.id)
      assert.are.equal(email, u.email)
      assert.are.equal("김청년", u.name)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d", u.createdAt)
      assert.are.equal(900, r.json.expiresIn)
      assert.is_string(r.json.accessToken)
      assert.is_true(#r.json.refreshToken >= 43)
      assert.are.equal("1", psql("SELECT count(*) FROM user_profiles WHERE user_id = " .. u.id))
      -- the password is stored as an argon2id hash, never as given
      local stored = psql("SELECT password_hash FROM users WHERE id = " .. u.id)
      assert.matches("^%$argon2id%$", stored)
      -- the refresh token itself is nowhere in Redis, only its hash
      assert.are.equal("1", redis_cli("EXISTS", "auth:rt:" .. A.sha256_hex(r.json.refreshToken)))
      assert.are.equal("0", redis_cli("EXISTS", "auth:rt:" .. r.json.refreshToken))
    end)

    it("name is optional (null)", function()
      local r = A.register(srv, A.email("noname"))
      assert.are.equal(201, r.status)
      assert.is_truthy(r.body:find('"name":null', 1, true))
    end)

    it("answers 409 conflict for an email already registered, whatever its case", function()
      local email = A.email("dup")
      assert.are.equal(201, A.register(srv, email).status)
      assert_problem(A.register(srv, email), 409, "conflict")
      assert_problem(A.register(srv, email:upper()), 409, "conflict")
      local mixed = email:sub(1, 1):upper() .. email:sub(2)
      assert_problem(A.register(srv, mixed), 409, "conflict")
      assert.are.equal("1", psql("SELECT count(*) FROM users WHERE lower(email) = lower('" .. email .. "')"))
    end)

    it("validates email, password (8–128 characters) and name with 422", function()
      local function fails(body, field)
        local r = post(srv, "/api/v1/auth/register", body)
        assert_problem(r, 422, "validation_failed")
        local fields = {}
        for _, e in ipairs(r.json.errors) do fields[e.field] = true end
        assert.is_true(fields[field], field .. " in " .. r.body)
      end
      fails({ password = A.PASSWORD }, "email")
      fails({ email = 42, password = A.PASSWORD }, "email")
      for _, bad in ipairs { "plainaddress", "a@b", "@example.com", "a b@example.com", "a@@example.com",
                             "a@example..com", string.rep("x", 250) .. "@example.com" } do
        fails({ email = bad, password = A.PASSWORD }, "email")
      end
      fails({ email = A.email("v") }, "password")
      fails({ email = A.email("v"), password = "1234567" }, "password")
      fails({ email = A.email("v"), password = string.rep("p", 129) }, "password")
      fails({ email = A.email("v"), password = 12345678 }, "password")
      fails({ email = A.email("v"), password = A.PASSWORD, name = string.rep("가", 101) }, "name")
      fails({ email = A.email("v"), password = A.PASSWORD, name = 5 }, "name")
      -- the edges are accepted; lengths are characters, not bytes
      assert.are.equal(201, A.register(srv, A.email("v8"), "12345678").status)
      assert.are.equal(201, A.register(srv, A.email("v128"), string.rep("p", 128)).status)
      assert.are.equal(201, A.register(srv, A.email("vko"), "가나다라마바사아").status)
      assert.are.equal(201, A.register(srv, A.email("vname"), nil, { name = string.rep("가", 100) }).status)
    end)

    it("answers 400 for a malformed body, 415 for a non-JSON one and 413 for an oversized one", function()
      local r = srv:request("POST", "/api/v1/auth/register",
        { body = "{not json", headers = { ["Content-Type"] = "application/json" } })
      assert_problem(r, 400, "bad_request")
      r = srv:request("POST", "/api/v1/auth/register",
        { body = "[1, 2]", headers = { ["Content-Type"] = "application/json" } })
      assert_problem(r, 400, "bad_request")
      r = srv:request("POST", "/api/v1/auth/register",
        { body = "email=a@b.c&password=12345678", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      assert_problem(r, 415, "unsupported_media_type")
      r = srv:request("POST", "/api/v1/auth/register",
        { json = { email = A.email("big"), password = A.PASSWORD, name = string.rep("x", 5000) } })
      assert.are.equal(413, r.status)
      r = srv:request("POST", "/api/v1/auth/login", { body = "", headers = { ["Content-Type"] = "application/json" } })
      assert_problem(r, 400, "bad_request")
    end)
  end)

  describe("POST /auth/login", function()
    local email
    setup(function()
      email = A.email("login")
      assert.are.equal(201, A.register(srv, email).status)
    end)

    it("answers 200 with the same shape, for any case of the email", function()
      local r = A.login(srv, email:upper())
      assert.are.equal(200, r.status)
      assert.are.equal(email, r.json.user.email)
      assert.are.equal(900, r.json.expiresIn)
      assert.is_string(r.json.accessToken)
      assert.is_string(r.json.refreshToken)
      assert.are.equal(200, srv:request("GET", "/api/v1/profile", { headers = A.bearer(r.json.accessToken) }).status)
    end)

    it("answers the same 401 invalid_credentials for an unknown email and a wrong password", function()
      local a = A.login(srv, email, "wrong password")
      local b = A.login(srv, A.email("nobody"), A.PASSWORD)
      assert_problem(a, 401, "invalid_credentials")
      assert_problem(b, 401, "invalid_credentials")
      assert.are.equal(a.json.detail, b.json.detail)
      assert.are.equal(a.json.title, b.json.title)
      -- and a malformed email or short password is just a wrong credential
      assert_problem(A.login(srv, "not-an-email-" .. A.run_id, A.PASSWORD), 401, "invalid_credentials")
      assert_problem(A.login(srv, email, "short"), 401, "invalid_credentials")
    end)

    it("answers 422 when email or password is missing or not a string", function()
      assert_problem(post(srv, "/api/v1/auth/login", { email = email }), 422, "validation_failed")
      assert_problem(post(srv, "/api/v1/auth/login", { password = A.PASSWORD }), 422, "validation_failed")
      assert_problem(post(srv, "/api/v1/auth/login", { email = email, password = 12345678 }), 422, "validation_failed")
    end)

    it("answers 429 with Retry-After after repeated failures for an email, whatever the address", function()
      local e = A.email("rl")
      assert.are.equal(201, A.register(srv, e).status)
      for _ = 1, 3 do assert_problem(A.login(srv, e, "wrong password"), 401, "invalid_credentials") end
      local r = A.login(srv, e, A.PASSWORD) -- even the right password, from another address
      assert_problem(r, 429, "rate_limited")
      local retry = tonumber(r.headers["retry-after"])
      assert.is_truthy(retry)
      assert.is_true(retry >= 1 and retry <= 900)
      -- other emails are not affected
      assert.are.equal(200, A.login(srv, email).status)
    end)

    it("a successful login resets the email's counter", function()
      local e = A.email("reset")
      assert.are.equal(201, A.register(srv, e).status)
      for _ = 1, 2 do assert_problem(A.login(srv, e, "wrong password"), 401, "invalid_credentials") end
      assert.are.equal(200, A.login(srv, e).status)
      for _ = 1, 2 do assert_problem(A.login(srv, e, "wrong password"), 401, "invalid_credentials") end
      assert.are.equal(200, A.login(srv, e).status) -- 4 failures in all, never 3 in a row
      for _ = 1, 3 do assert_problem(A.login(srv, e, "wrong password"), 401, "invalid_credentials") end
      assert_problem(A.login(srv, e), 429, "rate_limited")
    end)

    it("answers 429 after repeated failures from one client address, across emails", function()
      local ip = A.ip()
      for i = 1, 6 do
        assert_problem(A.login(srv, A.email("ip" .. i), "wrong password", ip), 401, "invalid_credentials")
      end
      local r = A.login(srv, email, A.PASSWORD, ip)
      assert_problem(r, 429, "rate_limited")
      assert.is_truthy(tonumber(r.headers["retry-after"]))
      assert.are.equal(200, A.login(srv, email, A.PASSWORD, A.ip()).status)
    end)

    it("counts concurrent failures atomically: a burst of guesses gets no more tries than the limit", function()
      local victim = A.email("burst")
      assert.are.equal(201, A.register(srv, victim).status)
      local body = string.format('{"email":"%s","password":"wrong password"}', victim)
      local socks = {}
      for i = 1, 8 do
        local s = srv:connect(30)
        s:send("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" ..
          "Content-Type: application/json\r\nX-Forwarded-For: " .. A.ip() .. "\r\nContent-Length: " .. #body ..
          "\r\n\r\n" .. body)
        socks[i] = s
      end
      local seen = {}
      for _, s in ipairs(socks) do
        local r = H.read_response(s, "POST")
        seen[r.status] = (seen[r.status] or 0) + 1
        s:close()
      end
      assert.are.same({ [401] = 3, [429] = 5 }, seen)
    end)

    it("reads X-Forwarded-For from the right: addresses a client prepends do not give it a new bucket", function()
      local ip = A.ip()
      for i = 1, 6 do
        assert_problem(A.login(srv, A.email("xff" .. i), "wrong password", A.ip() .. ", " .. ip), 401,
          "invalid_credentials")
      end
      assert_problem(A.login(srv, email, A.PASSWORD, A.ip() .. ", " .. ip), 429, "rate_limited")
    end)

    it("answers 429 after repeated registrations from one client address, before hashing", function()
      local limited = H.start { workers = 1, env = { REGISTER_MAX_PER_IP = 3 } }
      local ok, err = pcall(function()
        local ip, other = A.ip(), A.ip()
        local function register(email, from)
          return post(limited, "/api/v1/auth/register", { email = email, password = A.PASSWORD },
                      { ["X-Forwarded-For"] = from })
        end
        local first = A.email("reg1")
        assert.are.equal(201, register(first, ip).status)
        assert.are.equal(409, register(first:upper(), ip).status) -- a taken email counts too
        assert.are.equal(201, register(A.email("reg2"), ip).status)
        local late = A.email("reg3")
        local r = register(late, ip)
        assert_problem(r, 429, "rate_limited")
        local retry = tonumber(r.headers["retry-after"])
        assert.is_true(retry >= 1 and retry <= 3600)
        assert.are.equal("0", psql("SELECT count(*) FROM users WHERE email = '" .. late .. "'"))
        assert.are.equal(201, register(late, other).status) -- another address is not held back
      end)
      limited:stop()
      assert(ok, err)
    end)

    it("ignores X-Forwarded-For from a peer that is not a trusted proxy", function()
      local key = "rl:login:ip:127.0.0.1"
      redis_cli("DEL", key)
      local direct = H.start { workers = 1, env = { TRUSTED_PROXIES = "", LOGIN_MAX_FAILURES = 100,
                                                    LOGIN_MAX_FAILURES_IP = 3 } }
      local ok, err = pcall(function()
        for i = 1, 3 do
          assert_problem(A.login(direct, A.email("direct" .. i), "wrong password", A.ip()), 401,
            "invalid_credentials")
        end
        assert.are.equal("3", redis_cli("GET", key))
        assert_problem(A.login(direct, email, A.PASSWORD, A.ip()), 429, "rate_limited")
      end)
      direct:stop()
      redis_cli("DEL", key)
      assert(ok, err)
    end)

    it("hashes on the threadpool: other requests are answered while 20 logins hash", function()
      -- 20 accounts: concurrent attempts on one email count against its limit
      local emails = {}
      for i = 1, 20 do
        emails[i] = A.email("pool" .. i)
        assert.are.equal(201, A.register(srv, emails[i]).status)
      end
      local socks = {}
      for i = 1, 20 do
        local body = string.format('{"email":"%s","password":"%s"}', emails[i], A.PASSWORD)
        local s = srv:connect(30)
        s:send("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" ..
          "Content-Type: application/json\r\nX-Forwarded-For: " .. A.ip() .. "\r\nContent-Length: " .. #body ..
          "\r\n\r\n" .. body)
        socks[i] = s
      end
      socket.sleep(0.05) -- let the server read them (ordering below does not depend on it)
      local health = srv:request("GET", "/healthz", { timeout = 30 })
      assert.are.equal(200, health.status)
      local lua_route = srv:request("GET", "/api/v1/profile/options", { timeout = 30 })
      assert.are.equal(200, lua_route.status)
      -- at this point at least one login has not answered yet
      local readable = socket.select(socks, nil, 0)
      assert.is_true(#readable < 20, "all 20 logins had answered before /healthz")
      for _, s in ipairs(socks) do
        local r = H.read_response(s, "POST")
        assert.are.equal(200, r.status)
        s:close()
      end
    end)
  end)

  describe("POST /auth/refresh", function()
    local function refresh(token)
      return post(srv, "/api/v1/auth/refresh", { refreshToken = token })
    end

    it("returns a new pair; the old refresh token stops working (reuse later revokes the family)", function()
      local u = A.register(srv, A.email("rot"))
      local r1 = refresh(u.refresh)
      assert.are.equal(200, r1.status)
      assert.are_not.equal(u.refresh, r1.json.refreshToken)
      assert.are.equal(900, r1.json.expiresIn)
      assert.are.equal(200, srv:request("GET", "/api/v1/profile", { headers = A.bearer(r1.json.accessToken) }).status)
      local r2 = refresh(r1.json.refreshToken)
      assert.are.equal(200, r2.status)
      assert.are_not.equal(r1.json.refreshToken, r2.json.refreshToken)
      -- a second login of the same user is a separate family
      local other = A.login(srv, u.json.user.email)
      assert.are.equal(200, other.status)
      -- end the grace window of the first token (10 s) without waiting for it
      redis_cli("DEL", "auth:rtg:" .. A.sha256_hex(u.refresh))
      assert_problem(refresh(u.refresh), 401, "unauthorized")
      -- reuse revoked every token of that login, the newest included
      assert_problem(refresh(r2.json.refreshToken), 401, "unauthorized")
      -- but not the other login's
      assert.are.equal(200, refresh(other.json.refreshToken).status)
    end)

    it("returns the same new pair for the same token again within 10 seconds", function()
      local u = A.register(srv, A.email("grace"))
      local r1 = refresh(u.refresh)
      local r2 = refresh(u.refresh)
      assert.are.equal(200, r1.status)
      assert.are.equal(200, r2.status)
      assert.are.equal(r1.json.refreshToken, r2.json.refreshToken)
      assert.are.equal(r1.json.accessToken, r2.json.accessToken)
      -- the grace record holds neither token
      local g = redis_cli("GET", "auth:rtg:" .. A.sha256_hex(u.refresh))
      assert.is_nil(g:find(r1.json.refreshToken, 1, true))
      assert.is_nil(g:find(r1.json.accessToken, 1, true))
      -- and lives 10 seconds; the token records 30 days
      local ttl = tonumber(redis_cli("TTL", "auth:rtg:" .. A.sha256_hex(u.refresh)))
      assert.is_true(ttl >= 1 and ttl <= 10, tostring(ttl))
      ttl = tonumber(redis_cli("TTL", "auth:rt:" .. A.sha256_hex(r1.json.refreshToken)))
      assert.is_true(ttl > 30 * 86400 - 60 and ttl <= 30 * 86400, tostring(ttl))
      -- the new pair works and rotates once
      assert.are.equal(200, refresh(r1.json.refreshToken).status)
    end)

    it("answers 401 for an unknown token and 422 without one", function()
      assert_problem(refresh("definitely-not-a-token"), 401, "unauthorized")
      assert_problem(refresh(A.b64url(string.rep("\0", 32))), 401, "unauthorized")
      assert_problem(post(srv, "/api/v1/auth/refresh", {}), 422, "validation_failed")
      assert_problem(post(srv, "/api/v1/auth/refresh", { refreshToken = 5 }), 422, "validation_failed")
    end)
  end)

  describe("POST /auth/logout", function()
    it("answers 204 and that login's refresh tokens stop working; others keep working", function()
      local u = A.register(srv, A.email("logout"))
      local rotated = post(srv, "/api/v1/auth/refresh", { refreshToken = u.refresh })
      assert.are.equal(200, rotated.status)
      local other = A.login(srv, u.json.user.email)
      local r = post(srv, "/api/v1/auth/logout", { refreshToken = rotated.json.refreshToken })
      assert.are.equal(204, r.status)
      assert.are.equal("", r.body)
      assert_problem(post(srv, "/api/v1/auth/refresh", { refreshToken = rotated.json.refreshToken }), 401, "unauthorized")
      -- the grace answer of the old token is gone with the family too
      assert_problem(post(srv, "/api/v1/auth/refresh", { refreshToken = u.refresh }), 401, "unauthorized")
      assert.are.equal(200, post(srv, "/api/v1/auth/refresh", { refreshToken = other.json.refreshToken }).status)
      -- idempotent
      assert.are.equal(204, post(srv, "/api/v1/auth/logout", { refreshToken = rotated.json.refreshToken }).status)
      assert_problem(post(srv, "/api/v1/auth/logout", {}), 422, "validation_failed")
    end)
  end)

  describe("DELETE /auth/account", function()
    it("wrong password → 401 invalid_credentials and nothing is deleted", function()
      local u = A.register(srv, A.email("keep"))
      local r = srv:request("DELETE", "/api/v1/auth/account",
        { json = { password = "wrong password" }, headers = A.bearer(u.token) })
      assert_problem(r, 401, "invalid_credentials")
      assert.are.equal("1", psql("SELECT count(*) FROM users WHERE id = " .. u.id))
      assert.are.equal(200, srv:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) }).status)
    end)

    it("needs a token and a password", function()
      local r = srv:request("DELETE", "/api/v1/auth/account", { json = { password = A.PASSWORD } })
      assert_problem(r, 401, "unauthorized")
      assert.are.equal('Bearer error="invalid_token"', r.headers["www-authenticate"])
      local u = A.register(srv, A.email("nopw"))
      r = srv:request("DELETE", "/api/v1/auth/account", { json = {}, headers = A.bearer(u.token) })
      assert_problem(r, 422, "validation_failed")
    end)

    it("204: the user and everything of theirs is gone, and every token stops working", function()
      local email = A.email("gone")
      local u = A.register(srv, email)
      local second = A.login(srv, email)
      local put = srv:request("PUT", "/api/v1/profile",
        { json = { householdSize = 2 }, headers = A.bearer(u.token) })
      assert.are.equal(200, put.status)
      local r = srv:request("DELETE", "/api/v1/auth/account",
        { json = { password = A.PASSWORD }, headers = A.bearer(second.json.accessToken) })
      assert.are.equal(204, r.status)
      assert.are.equal("0", psql("SELECT count(*) FROM users WHERE id = " .. u.id))
      assert.are.equal("0", psql("SELECT count(*) FROM user_profiles WHERE user_id = " .. u.id))
      for _, token in ipairs { u.token, second.json.accessToken } do
        local g = srv:request("GET", "/api/v1/profile", { headers = A.bearer(token) })
        assert_problem(g, 401, "unauthorized")
      end
      for _, rt in ipairs { u.refresh, second.json.refreshToken } do
        assert_problem(post(srv, "/api/v1/auth/refresh", { refreshToken = rt }), 401, "unauthorized")
      end
      assert_problem(A.login(srv, email), 401, "invalid_credentials")
      -- the email is free again
      assert.are.equal(201, A.register(srv, email).status)
    end)
  end)
end)

describe("auth with Redis down", function()
  local srv, port, dir

  local function redis_up()
    H.sh(string.format("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
      .. "--pidfile %s/redis.pid --logfile %s/redis.log --dir %s", port, dir, dir, dir))
    for _ = 1, 200 do
      if H.sh("redis-cli -p " .. port .. " PING"):find("PONG") then return end
      socket.sleep(0.02)
    end
    error("private redis did not start")
  end

  local function redis_down()
    H.sh("redis-cli -p " .. port .. " SHUTDOWN NOSAVE")
    for _ = 1, 200 do
      if not H.sh("redis-cli -p " .. port .. " PING"):find("PONG") then return end
      socket.sleep(0.02)
    end
    error("private redis did not stop")
  end

  setup(function()
    port, dir = H.free_port(), H.tmpdir()
    redis_up()
    srv = H.start { env = { REDIS_URL = "redis://127.0.0.1:" .. port } }
  end)
  teardown(function()
    srv:stop()
    H.sh("redis-cli -p " .. port .. " SHUTDOWN NOSAVE")
  end)

  it("refresh, logout and login answer 503 while access tokens keep working", function()
    local email = A.email("noredis")
    local u = A.register(srv, email)
    assert.are.equal(201, u.status)
    redis_down()
    local r = post(srv, "/api/v1/auth/refresh", { refreshToken = u.refresh })
    assert_problem(r, 503, "unavailable")
    assert_problem(post(srv, "/api/v1/auth/logout", { refreshToken = u.refresh }), 503, "unavailable")
    assert_problem(A.login(srv, email), 503, "unavailable")
    -- registration cannot issue a refresh token: 503 and no user is created
    local e2 = A.email("noredis-reg")
    assert_problem(A.register(srv, e2), 503, "unavailable")
    assert.are.equal("0", psql("SELECT count(*) FROM users WHERE lower(email) = lower('" .. e2 .. "')"))
    local g = srv:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) })
    assert.are.equal(200, g.status)
    local p = srv:request("PUT", "/api/v1/profile", { json = { householdSize = 3 }, headers = A.bearer(u.token) })
    assert.are.equal(200, p.status)
    redis_up()
    -- once Redis is back (empty: this one keeps nothing) refresh answers again, 401 for the lost token
    local back
    for _ = 1, 100 do
      back = post(srv, "/api/v1/auth/refresh", { refreshToken = u.refresh })
      if back.status ~= 503 then break end
      socket.sleep(0.1)
    end
    assert_problem(back, 401, "unauthorized")
    assert.are.equal(200, A.login(srv, email).status)
  end)
end)
