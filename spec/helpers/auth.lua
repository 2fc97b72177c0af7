-- spec/helpers/auth.lua — accounts and hand-made tokens for specs.
--
--   local A = require "spec.helpers.auth"
--   local email = A.email("login")                 -- unique per run
--   local u = A.register(srv, email)               -- {status, json, token, refresh, id}
--   local jwt = A.jwt({alg = "HS256", kid = A.kid(secret)}, {sub = "1", ...}, secret)
--
-- Tokens are signed with openssl (independent of the server's code).
local H = require "spec.helpers.server"

local A = {}

local seed_f = io.open("/dev/urandom", "rb")
local seed = 0
for i = 1, 4 do seed = seed * 256 + seed_f:read(1):byte() end
seed_f:close()
math.randomseed(seed)

A.run_id = string.format("%x%04x", os.time(), math.random(0, 0xffff))

local counter = 0
function A.email(tag)
  counter = counter + 1
  return string.format("%s-%s-%d@example.com", tag or "user", A.run_id, counter)
end

function A.ip()
  return string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
end

A.PASSWORD = "correct horse 1"

function A.register(srv, email, password, extra)
  local body = { email = email, password = password or A.PASSWORD }
  for k, v in pairs(extra or {}) do body[k] = v end
  local r = srv:request("POST", "/api/v1/auth/register", { json = body })
  if r.status == 201 then
    r.token, r.refresh, r.id = r.json.accessToken, r.json.refreshToken, r.json.user.id
  end
  return r
end

function A.login(srv, email, password, ip)
  return srv:request("POST", "/api/v1/auth/login", {
    json = { email = email, password = password or A.PASSWORD },
    headers = { ["X-Forwarded-For"] = ip or A.ip() },
  })
end

function A.bearer(token)
  return { Authorization = "Bearer " .. token }
end

local function sh1(cmd)
  local out, code = H.sh(cmd)
  assert(code == 0, cmd .. ": " .. out)
  return (out:gsub("%s+$", ""))
end

local function b64url_file(path)
  return (sh1("openssl base64 -A < " .. path):gsub("+", "-"):gsub("/", "_"):gsub("=", ""))
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

function A.b64url(s)
  local p = tmpfile(s)
  local out = b64url_file(p)
  os.remove(p)
  return out
end

function A.sha256_hex(s)
  local p = tmpfile(s)
  local out = sh1("sha256sum " .. p):match("^(%x+)")
  os.remove(p)
  return out
end

-- HMAC-SHA256 as base64url, key given as raw text.
function A.hmac_b64url(key, msg)
  local p = tmpfile(msg)
  local sig = os.tmpname()
  sh1("openssl dgst -sha256 -hmac " .. H.quote(key) .. " -binary < " .. p .. " > " .. sig)
  local out = b64url_file(sig)
  os.remove(p)
  os.remove(sig)
  return out
end

function A.kid(secret)
  return A.sha256_hex("lifeplan-kid:" .. secret):sub(1, 16)
end

-- header/payload: JSON strings; secret nil → no signature part content.
function A.jwt(header, payload, secret)
  local input = A.b64url(header) .. "." .. A.b64url(payload)
  return input .. "." .. (secret and A.hmac_b64url(secret, input) or "")
end

function A.claims(sub, iat, exp, iss)
  return string.format('{"iss":"%s","sub":"%s","iat":%d,"exp":%d}', iss or "lifeplan", sub, iat, exp)
end

function A.header(kid, alg)
  return string.format('{"alg":"%s","typ":"JWT","kid":"%s"}', alg or "HS256", kid)
end

return A
