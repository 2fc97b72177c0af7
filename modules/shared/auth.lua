-- shared/auth.lua — access tokens and the middleware every module relies on.
--
--   routes:get("/api/v1/x", { auth = true }, handler)   -- dispatch.lua calls
--   auth.authenticate(req)                               -- → req.user = { id = n }
--
-- Access tokens are JWTs (RFC 7519) signed with HS256 and nothing else:
--   header  {"alg":"HS256","typ":"JWT","kid":K}
--   payload {"iss":"lifeplan","sub":"<user id>","iat":t,"exp":t+900}
-- Verification pins the algorithm (a header naming `none`, RS256 or anything
-- but HS256 is rejected before any signature work), picks the key by `kid`
-- (JWT_SECRET, or JWT_SECRET_PREVIOUS during a rotation), compares the
-- signature in constant time, and checks iss, sub (a positive integer), iat
-- (not in the future, 60 s skew) and exp.
--
-- Secrets: JWT_SECRET. Without it, development derives a deterministic one
-- from DATABASE_URL so every worker (and every restart) agrees; production
-- refuses to start without it (host/subsystems.c) and this module raises
-- too, should it ever run there without one. kid = first 16 hex digits of
-- sha256("lifeplan-kid:" .. secret): it names the key, it does not reveal it.
--
-- Account deletion is immediate for access tokens: after the signature the
-- middleware checks that the user row still exists (one primary-key lookup,
-- `SELECT 1 FROM users WHERE id = $1`). PostgreSQL is the source of truth, so
-- nothing can get out of step; if it is down the request is answered 503,
-- as the handler itself would be.
--
-- Every failure is a 401 problem with `WWW-Authenticate: Bearer
-- error="invalid_token"`; code `token_expired` for an expired token,
-- `unauthorized` for everything else (missing, malformed, tampered, wrong
-- key, wrong algorithm, deleted user). No detail says which check failed
-- beyond "expired".
local crypto  = require "lp.crypto"
local json    = require "lp.json"
local problem = require "shared.problem"

local M = {}

M.ISSUER = "lifeplan"
M.ACCESS_TTL = 900 -- seconds (15 minutes)
local SKEW = 60

-- ---- keys ---------------------------------------------------------------

local keys -- { current = {kid, secret}, previous = {kid, secret} | nil }, built on first use

local function kid_of(secret)
  return crypto.hex(crypto.sha256("lifeplan-kid:" .. secret)):sub(1, 16)
end

local function load_keys()
  if keys then return keys end
  local secret = os.getenv("JWT_SECRET")
  if secret == nil or secret == "" then
    if os.getenv("LIFEPLAN_ENV") == "production" then
      error("JWT_SECRET must be set in production", 0)
    end
    secret = crypto.sha256("lifeplan-dev:" .. (os.getenv("DATABASE_URL") or ""))
  end
  local k = { current = { kid = kid_of(secret), secret = secret } }
  local prev = os.getenv("JWT_SECRET_PREVIOUS")
  if prev and prev ~= "" and prev ~= secret then
    k.previous = { kid = kid_of(prev), secret = prev }
  end
  keys = k
  return k
end

-- The kid tokens are signed with now (for tests and diagnostics).
function M.current_kid()
  return load_keys().current.kid
end

-- ---- signing ------------------------------------------------------------

local function b64(s) return crypto.b64url_encode(s) end

-- Deterministic: the same (user, iat) always gives the same token bytes, which
-- the refresh grace window relies on to hand out the same pair twice.
function M.sign_access(user_id, iat)
  local k = load_keys().current
  iat = iat or os.time()
  local header = string.format('{"alg":"HS256","typ":"JWT","kid":"%s"}', k.kid)
  local payload = string.format('{"iss":"%s","sub":"%d","iat":%d,"exp":%d}',
    M.ISSUER, user_id, iat, iat + M.ACCESS_TTL)
  local input = b64(header) .. "." .. b64(payload)
  return input .. "." .. b64(crypto.hmac_sha256(k.secret, input)), M.ACCESS_TTL
end

-- ---- verification -------------------------------------------------------

local function decode_part(s)
  local raw = crypto.b64url_decode(s)
  if not raw then return nil end
  local v = json.decode(raw)
  if type(v) ~= "table" or json.is_array(v) then return nil end
  return v
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- Returns user id, or nil and "expired" | "invalid".
function M.verify(token, now)
  if type(token) ~= "string" or #token > 4096 then return nil, "invalid" end
  local h64, p64, s64 = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  if not h64 then return nil, "invalid" end
  local header = decode_part(h64)
  if not header or header.alg ~= "HS256" then return nil, "invalid" end
  if header.typ ~= nil and header.typ ~= "JWT" then return nil, "invalid" end
  if header.crit ~= nil then return nil, "invalid" end
  local k = load_keys()
  local key
  if header.kid == k.current.kid then
    key = k.current
  elseif k.previous and header.kid == k.previous.kid then
    key = k.previous
  else
    return nil, "invalid"
  end
  local sig = crypto.b64url_decode(s64)
  if not sig or #sig ~= 32 then return nil, "invalid" end
  if not crypto.equal(sig, crypto.hmac_sha256(key.secret, h64 .. "." .. p64)) then
    return nil, "invalid"
  end
  local claims = decode_part(p64)
  if not claims or claims.iss ~= M.ISSUER then return nil, "invalid" end
  if type(claims.sub) ~= "string" or not claims.sub:match("^[1-9]%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$") then
    return nil, "invalid"
  end
  if not is_int(claims.iat) or not is_int(claims.exp) or claims.exp <= claims.iat then
    return nil, "invalid"
  end
  now = now or os.time()
  if claims.iat > now + SKEW then return nil, "invalid" end
  if claims.exp <= now then return nil, "expired" end
  return tonumber(claims.sub)
end

-- ---- middleware ---------------------------------------------------------

local CHALLENGE = { ["WWW-Authenticate"] = 'Bearer error="invalid_token"' }

local function deny(code, detail)
  problem.raise(401, code, detail, { headers = CHALLENGE })
end

-- The bearer token of a request, or nil.
function M.bearer(req)
  local h = req.headers["authorization"]
  if not h then return nil end
  return h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +([%w_.-]+) *$")
end

function M.authenticate(req)
  local token = M.bearer(req)
  if not token then deny("unauthorized", "missing or malformed bearer token") end
  local uid, why = M.verify(token)
  if not uid then
    if why == "expired" then deny("token_expired", "access token expired") end
    deny("unauthorized", "invalid access token")
  end
  local rows = require("lp.db").query("SELECT 1 AS ok FROM users WHERE id = $1", uid)
  if not rows[1] then deny("unauthorized", "invalid access token") end
  req.user = { id = uid }
  return req.user
end

return M
