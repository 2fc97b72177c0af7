-- The auth middleware (modules/shared/auth.lua) through the real binary:
-- tokens made here with openssl, independent of the server's code.
local H = require "spec.helpers.server"
local A = require "spec.helpers.auth"

local SECRET = "spec-secret-" .. A.run_id
local PREVIOUS = "spec-previous-" .. A.run_id

describe("access tokens", function()
  local srv, user

  setup(function()
    srv = H.start { env = { JWT_SECRET = SECRET, JWT_SECRET_PREVIOUS = PREVIOUS } }
    user = A.register(srv, A.email("tok"))
    assert.are.equal(201, user.status)
  end)
  teardown(function() srv:stop() end)

  local function get_profile(token, raw_header)
    local headers = raw_header and { Authorization = raw_header } or (token and A.bearer(token)) or {}
    return srv:request("GET", "/api/v1/profile", { headers = headers })
  end

  local function assert_401(r, code)
    assert.are.equal(401, r.status)
    assert.are.equal('Bearer error="invalid_token"', r.headers["www-authenticate"])
    assert.matches("application/problem%+json", r.headers["content-type"])
    assert.are.equal(code or "unauthorized", r.json.code)
  end

  it("accepts the token the server issued, 15 minutes, with its kid, iss and sub", function()
    assert.are.equal(200, get_profile(user.token).status)
    assert.are.equal(900, user.json.expiresIn)
    local h64, p64 = user.token:match("^([^.]+)%.([^.]+)%.")
    local header = H.sh("printf '%s' " .. H.quote(h64) .. " | tr '_-' '/+' | base64 -d 2>/dev/null")
    assert.matches('"alg":"HS256"', header, 1, true)
    assert.matches('"kid":"' .. A.kid(SECRET) .. '"', header, 1, true)
    local now = os.time()
    local good = A.jwt(A.header(A.kid(SECRET)), A.claims(user.id, now, now + 900), SECRET)
    assert.are.equal(200, get_profile(good).status)
    assert.is_truthy(p64)
  end)

  it("answers 401 with WWW-Authenticate when the token is missing or not a bearer token", function()
    assert_401(get_profile(nil))
    assert_401(get_profile(nil, "Basic dXNlcjpwYXNz"))
    assert_401(get_profile(nil, "Bearer"))
    assert_401(get_profile("not-a-jwt"))
    assert_401(get_profile("a.b.c"))
  end)

  it("rejects a tampered payload or signature", function()
    local h, p, s = user.token:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local now = os.time()
    local other = A.b64url(A.claims(user.id + 1, now, now + 900))
    assert_401(get_profile(h .. "." .. other .. "." .. s))
    local flipped = s:sub(1, 10) .. (s:sub(11, 11) == "A" and "B" or "A") .. s:sub(12)
    assert_401(get_profile(h .. "." .. p .. "." .. flipped))
    assert_401(get_profile(h .. "." .. p .. "."))
    assert_401(get_profile(h .. "." .. p))
  end)

  it("answers token_expired for an expired token", function()
    local now = os.time()
    local t = A.jwt(A.header(A.kid(SECRET)), A.claims(user.id, now - 2000, now - 1100), SECRET)
    assert_401(get_profile(t), "token_expired")
  end)

  it("rejects alg none, RS256 and other algorithms whatever the signature", function()
    local now = os.time()
    local claims = A.claims(user.id, now, now + 900)
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET), "none"), claims, nil)))
    assert_401(get_profile(A.jwt('{"alg":"none","typ":"JWT"}', claims, nil)))
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET), "none"), claims, SECRET)))
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET), "RS256"), claims, SECRET)))
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET), "HS512"), claims, SECRET)))
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET), "hs256"), claims, SECRET)))
  end)

  it("rejects a token signed with another key, even under the right kid", function()
    local now = os.time()
    local claims = A.claims(user.id, now, now + 900)
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET)), claims, "some-other-key")))
    assert_401(get_profile(A.jwt(A.header(A.kid("some-other-key")), claims, "some-other-key")))
    assert_401(get_profile(A.jwt('{"alg":"HS256","typ":"JWT"}', claims, SECRET)))
  end)

  it("accepts JWT_SECRET_PREVIOUS under its kid during a rotation", function()
    local now = os.time()
    local claims = A.claims(user.id, now, now + 900)
    assert.are.equal(200, get_profile(A.jwt(A.header(A.kid(PREVIOUS)), claims, PREVIOUS)).status)
    -- the previous key under the current kid is still a wrong signature
    assert_401(get_profile(A.jwt(A.header(A.kid(SECRET)), claims, PREVIOUS)))
  end)

  it("checks iss, sub and iat", function()
    local now = os.time()
    local kid = A.kid(SECRET)
    assert_401(get_profile(A.jwt(A.header(kid), A.claims(user.id, now, now + 900, "someone-else"), SECRET)))
    assert_401(get_profile(A.jwt(A.header(kid), A.claims("abc", now, now + 900), SECRET)))
    assert_401(get_profile(A.jwt(A.header(kid), A.claims("0", now, now + 900), SECRET)))
    assert_401(get_profile(A.jwt(A.header(kid), string.format('{"iss":"lifeplan","sub":%d,"iat":%d,"exp":%d}',
      user.id, now, now + 900), SECRET)))
    assert_401(get_profile(A.jwt(A.header(kid), string.format('{"iss":"lifeplan","sub":"%d","exp":%d}',
      user.id, now + 900), SECRET)))
    -- issued in the future
    assert_401(get_profile(A.jwt(A.header(kid), A.claims(user.id, now + 3600, now + 4500), SECRET)))
  end)

  it("rejects a well-signed token for a user that does not exist", function()
    local now = os.time()
    local t = A.jwt(A.header(A.kid(SECRET)), A.claims(999999999999, now, now + 900), SECRET)
    assert_401(get_profile(t))
  end)
end)

describe("without JWT_SECRET in development", function()
  it("derives one secret every worker and every restart agrees on", function()
    local srv = H.start { workers = 2, env = { JWT_SECRET = "", LIFEPLAN_ENV = "development" } }
    local u = A.register(srv, A.email("devkey"))
    assert.are.equal(201, u.status)
    for _ = 1, 6 do
      assert.are.equal(200, srv:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) }).status)
    end
    srv:stop()
    local again = H.start { env = { JWT_SECRET = "", LIFEPLAN_ENV = "development" } }
    assert.are.equal(200, again:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) }).status)
    again:stop()
    -- and a server with a real secret does not accept it
    local other = H.start { env = { JWT_SECRET = SECRET } }
    assert.are.equal(401, other:request("GET", "/api/v1/profile", { headers = A.bearer(u.token) }).status)
    other:stop()
  end)

  it("refuses to start in production", function()
    local out = H.sh("(env LIFEPLAN_ENV=production JWT_SECRET= PORT=" .. H.free_port() ..
      " MODULES_DIR=" .. H.root .. "/modules timeout 10 " .. H.bin .. " serve) 2>&1; echo exit=$?")
    assert.matches("JWT_SECRET must be set", out, 1, true)
    assert.is_nil(out:match("exit=0"))
    assert.is_nil(out:match("exit=124")) -- it exited by itself, not by timeout
  end)
end)
