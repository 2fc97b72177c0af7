-- auth/service.lua — accounts, passwords, refresh tokens, login rate limits.
--
-- Passwords: argon2id via lp.crypto (libsodium, on the libuv threadpool; cost
-- from PASSWORD_OPSLIMIT / PASSWORD_MEMLIMIT_KB, default t=2, 19 MiB). A login
-- for an unknown email verifies against a dummy hash (made once per worker on
-- first use and kept in lp.cache), so it costs the same as a wrong password
-- and answers the same 401 invalid_credentials.
--
-- Refresh tokens: 32 random bytes, base64url (43 characters). Redis keeps only
-- sha256(token), never the token:
--   auth:rt:<sha256 hex>   hash {uid, fam, used}   TTL 30 days
--   auth:fam:<fam>         uid                      TTL 30 days, renewed on rotation
--   auth:ufam:<uid>        set of the user's families (for account deletion)
--   auth:rtg:<sha256 hex>  grace record of a rotated token, TTL 10 s
-- A family is one login (or registration); every token rotated from it
-- carries its id, and a token is valid only while its family key exists, so
-- revoking a family is one DEL. Rotation is one Redis script (atomic): it
-- marks the old token used, stores the new one and the grace record. The
-- same old token again while the grace record lives gets the same pair back;
-- after that it is reuse, and the script deletes the family (every token of
-- that login, the new ones included, stops working).
--
-- The grace record holds the issued pair without storing either token:
--   "<iat>:<hex(new refresh token bytes XOR HMAC-SHA256(old token, label))>"
-- The pad comes from the old token, which Redis does not have (only its
-- hash), so the record alone reveals nothing; the presenter of the old token
-- recovers the new refresh token, and the access token is re-signed from
-- (user, iat) — signing is deterministic, so it is byte-for-byte the same.
--
-- Login rate limits (fixed windows in Redis; an attempt is counted before the
-- password is checked, atomically, and given back when it succeeds):
--   rl:login:e:<sha256 hex of lower(email)>  LOGIN_MAX_FAILURES (5)
--   rl:login:ip:<client address>              LOGIN_MAX_FAILURES_IP (20)
-- both over LOGIN_WINDOW_SECONDS (900). After the limit the next attempt is
-- 429 with Retry-After (the window's remaining TTL) before any password work;
-- a successful login clears the email counter. Registrations are counted the
-- same way, every attempt that would hash a password:
--   rl:register:ip:<client address>           REGISTER_MAX_PER_IP (20)
-- over REGISTER_WINDOW_SECONDS (3600), so nobody can keep the thread pool
-- busy with password hashing (or probe which emails exist) from one
-- address. The client address is the connection's peer, or what a trusted
-- proxy forwarded (controller.lua, TRUSTED_PROXIES): a client cannot pick
-- its own address.
--
-- Redis down: login/register/refresh/logout answer 503 (tokens cannot be
-- issued or checked); access tokens keep working (shared/auth.lua does not
-- use Redis).
local auth    = require "shared.auth"
local cache   = require "lp.cache"
local crypto  = require "lp.crypto"
local db      = require "lp.db"
local problem = require "shared.problem"
local redis   = require "lp.redis"
local types   = require "auth.types"

local bit = require "bit"

local M = {}

M.REFRESH_TTL = 30 * 24 * 3600
M.GRACE_TTL = 10
local GRACE_LABEL = "lifeplan-refresh-grace"

local function env_int(name, default)
  local v = tonumber(os.getenv(name) or "")
  if v and v >= 1 and v == math.floor(v) then return v end
  return default
end

local MAX_FAILURES_EMAIL = env_int("LOGIN_MAX_FAILURES", 5)
local MAX_FAILURES_IP = env_int("LOGIN_MAX_FAILURES_IP", 20)
local WINDOW = env_int("LOGIN_WINDOW_SECONDS", 900)
local MAX_REGISTER_IP = env_int("REGISTER_MAX_PER_IP", 20)
local REGISTER_WINDOW = env_int("REGISTER_WINDOW_SECONDS", 3600)

-- ---- helpers ------------------------------------------------------------

local function sha_hex(s) return crypto.hex(crypto.sha256(s)) end

local function invalid_credentials()
  problem.raise(401, "invalid_credentials", "email or password is incorrect")
end

local function invalid_refresh()
  problem.raise(401, "unauthorized", "invalid refresh token")
end

-- Redis reply check: nil, err → 503; an error element in a pipeline → 503.
local function ok_or_503(reply, err)
  if reply == nil and err then problem.unavailable("redis") end
  if type(reply) == "table" then
    for _, r in ipairs(reply) do
      if type(r) == "table" and r.err then problem.unavailable("redis") end
    end
  end
  return reply
end

local function xor(a, b)
  local out = {}
  for i = 1, #a do out[i] = string.char(bit.bxor(a:byte(i), b:byte(i))) end
  return table.concat(out)
end

local function dummy_hash()
  local h = cache.get("auth:dummy_hash")
  if type(h) ~= "string" then
    h = crypto.password_hash(crypto.random_hex(16))
    cache.set("auth:dummy_hash", h, 86400 * 365)
  end
  return h
end

local function user_exists(uid)
  return db.query("SELECT 1 AS ok FROM users WHERE id = $1", uid)[1] ~= nil
end

-- ---- token pairs --------------------------------------------------------

local function new_refresh_token()
  local raw = crypto.random(32)
  return crypto.b64url_encode(raw), raw
end

local function pair(uid, iat, refresh)
  local access, ttl = auth.sign_access(uid, iat)
  return { accessToken = access, refreshToken = refresh, expiresIn = ttl }
end

-- Starts a new family for uid and returns a fresh pair.
function M.issue(uid)
  local token = new_refresh_token()
  local fam = crypto.random_hex(16)
  local h = sha_hex(token)
  ok_or_503(redis.pipeline {
    { "SET", "auth:fam:" .. fam, uid, "EX", M.REFRESH_TTL },
    { "HSET", "auth:rt:" .. h, "uid", uid, "fam", fam, "used", "0" },
    { "EXPIRE", "auth:rt:" .. h, M.REFRESH_TTL },
    { "SADD", "auth:ufam:" .. uid, fam },
    { "EXPIRE", "auth:ufam:" .. uid, M.REFRESH_TTL },
  })
  return pair(uid, os.time(), token)
end

-- KEYS: old token, its grace record, new token, family, user's family set.
-- ARGV: grace record, grace TTL, refresh TTL, fam, uid.
local ROTATE = [[
if redis.call('HGET', KEYS[1], 'fam') ~= ARGV[4] then return {'invalid'} end
if redis.call('EXISTS', KEYS[4]) == 0 then return {'revoked'} end
if redis.call('HGET', KEYS[1], 'used') == '1' then
  local g = redis.call('GET', KEYS[2])
  if g then return {'grace', g} end
  redis.call('DEL', KEYS[4])
  redis.call('SREM', KEYS[5], ARGV[4])
  return {'reuse'}
end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[3], 'uid', ARGV[5], 'fam', ARGV[4], 'used', '0')
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[3])
return {'ok'}
]]

function M.refresh(old)
  local oh = sha_hex(old)
  local rec = ok_or_503(redis.call("HGETALL", "auth:rt:" .. oh))
  local f = {}
  for i = 1, #rec - 1, 2 do f[rec[i]] = rec[i + 1] end
  local uid, fam = tonumber(f.uid), f.fam
  if not uid or not fam then invalid_refresh() end
  if not user_exists(uid) then invalid_refresh() end

  local token, raw = new_refresh_token()
  local iat = os.time()
  local pad = crypto.hmac_sha256(old, GRACE_LABEL)
  local grace = iat .. ":" .. crypto.hex(xor(raw, pad))
  local res = ok_or_503(redis.call("EVAL", ROTATE, 5,
    "auth:rt:" .. oh, "auth:rtg:" .. oh, "auth:rt:" .. sha_hex(token), "auth:fam:" .. fam,
    "auth:ufam:" .. uid,
    grace, M.GRACE_TTL, M.REFRESH_TTL, fam, uid))
  local outcome = res[1]
  if outcome == "ok" then
    return pair(uid, iat, token)
  elseif outcome == "grace" then
    local g_iat, enc = tostring(res[2]):match("^(%d+):(%x+)$")
    local bytes = enc and crypto.unhex(enc)
    if not bytes or #bytes ~= 32 then invalid_refresh() end
    return pair(uid, tonumber(g_iat), crypto.b64url_encode(xor(bytes, pad)))
  end
  invalid_refresh()
end

-- Revokes the family of a refresh token; unknown tokens are fine (idempotent).
function M.logout(token)
  local oh = sha_hex(token)
  local rec = ok_or_503(redis.call("HGETALL", "auth:rt:" .. oh))
  local f = {}
  for i = 1, #rec - 1, 2 do f[rec[i]] = rec[i + 1] end
  if f.fam then
    ok_or_503(redis.pipeline {
      { "DEL", "auth:fam:" .. f.fam },
      { "SREM", "auth:ufam:" .. (f.uid or "0"), f.fam },
    })
  end
end

-- ---- rate limits --------------------------------------------------------

local function limit_keys(email, ip)
  return "rl:login:e:" .. sha_hex(email:lower()), "rl:login:ip:" .. (ip or "unknown")
end

-- Takes one attempt from each window {key, limit, seconds} in one round
-- trip before any password work, atomically (INCR), so a burst of concurrent
-- attempts cannot all pass a check made before the first of them is
-- counted. Over any limit → 429 (Retry-After: the longest wait), no work done.
local function take_attempt(windows, detail)
  local cmds = {}
  for _, w in ipairs(windows) do
    cmds[#cmds + 1] = { "SET", w[1], "0", "EX", w[3], "NX" }
    cmds[#cmds + 1] = { "INCR", w[1] }
    cmds[#cmds + 1] = { "TTL", w[1] }
  end
  local r = ok_or_503(redis.pipeline(cmds))
  local retry
  for i, w in ipairs(windows) do
    if (tonumber(r[3 * i - 1]) or 0) > w[2] then
      retry = math.max(retry or 0, tonumber(r[3 * i]) or w[3])
    end
  end
  if retry then
    problem.raise(429, "rate_limited", detail,
      { headers = { ["Retry-After"] = tostring(math.max(retry, 1)) } })
  end
end

local function reserve_attempt(ek, ik)
  take_attempt({ { ek, MAX_FAILURES_EMAIL, WINDOW }, { ik, MAX_FAILURES_IP, WINDOW } },
    "too many failed logins; try again later")
end

-- One registration attempt from ip, counted before the password is hashed.
local function reserve_registration(ip)
  take_attempt({ { "rl:register:ip:" .. (ip or "unknown"), MAX_REGISTER_IP, REGISTER_WINDOW } },
    "too many registrations from this address; try again later")
end

-- A successful login: the email's window starts over, and the attempt taken
-- from the address's window is given back (only failures count there).
local RELEASE = "if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end "
  .. "return redis.call('DEL', KEYS[1])"

local function release_attempt(ek, ik)
  ok_or_503(redis.call("EVAL", RELEASE, 2, ek, ik))
end

-- ---- accounts -----------------------------------------------------------

local USER_COLS = "id, email, name, created_at"

function M.register(input, ip)
  reserve_registration(ip)
  local hash = crypto.password_hash(input.password)
  local ok, res = pcall(db.tx, function(q)
    local user = q.query("INSERT INTO users (email, password_hash, name) VALUES ($1, $2, $3) RETURNING "
      .. USER_COLS, input.email, hash, input.name)[1]
    q.query("INSERT INTO user_profiles (user_id) VALUES ($1)", user.id)
    -- Inside the transaction: if Redis is down the user is not created (503).
    local tokens = M.issue(user.id)
    tokens.user = types.user(user)
    return tokens
  end)
  if ok then return res end
  if type(res) == "table" and res.sqlstate == "23505" then
    problem.raise(409, "conflict", "email already registered")
  end
  error(res, 0)
end

function M.login(input, ip)
  local ek, ik = limit_keys(input.email, ip)
  reserve_attempt(ek, ik)
  local row = db.query("SELECT " .. USER_COLS .. ", password_hash FROM users WHERE lower(email) = lower($1)",
    input.email)[1]
  local good
  if row then
    good = crypto.password_verify(row.password_hash, input.password)
  else
    crypto.password_verify(dummy_hash(), input.password)
    good = false
  end
  if not good then invalid_credentials() end
  release_attempt(ek, ik)
  local tokens = M.issue(row.id)
  tokens.user = types.user(row)
  return tokens
end

-- Deletes the account after checking the password. Everything of the user's
-- goes with the row (ON DELETE CASCADE); access tokens stop at once because
-- the middleware checks the row exists; refresh tokens because refresh checks
-- it too, and their families are deleted here when Redis is reachable.
function M.delete_account(uid, password)
  local row = db.query("SELECT password_hash FROM users WHERE id = $1", uid)[1]
  if not row then problem.raise(401, "unauthorized", "invalid access token") end
  if not crypto.password_verify(row.password_hash, password) then invalid_credentials() end
  db.query("DELETE FROM users WHERE id = $1", uid)
  local fams = redis.call("SMEMBERS", "auth:ufam:" .. uid)
  if type(fams) == "table" then
    local cmds = { { "DEL", "auth:ufam:" .. uid } }
    for _, fam in ipairs(fams) do cmds[#cmds + 1] = { "DEL", "auth:fam:" .. fam } end
    redis.pipeline(cmds)
  end
end

function M.get_user(uid)
  local row = db.query("SELECT " .. USER_COLS .. " FROM users WHERE id = $1", uid)[1]
  return row and types.user(row) or nil
end

return M
