-- auth/types.lua — request validation and response shapes for the auth routes.
local json    = require "lp.json"
local problem = require "shared.problem"

local M = {}

M.PASSWORD_MIN = 8
M.PASSWORD_MAX = 128
M.NAME_MAX = 100
M.EMAIL_MAX = 254

-- Characters, not bytes: a Korean password of 8 syllables is 8 characters.
-- Returns nil when s is not valid UTF-8.
local function utf8_len(s)
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = s:byte(i)
    local size
    if c < 0x80 then size = 1
    elseif c >= 0xC2 and c <= 0xDF then size = 2
    elseif c >= 0xE0 and c <= 0xEF then size = 3
    elseif c >= 0xF0 and c <= 0xF4 then size = 4
    else return nil end
    for j = i + 1, i + size - 1 do
      local b = s:byte(j)
      if not b or b < 0x80 or b > 0xBF then return nil end
    end
    i = i + size
    n = n + 1
  end
  return n
end
M.utf8_len = utf8_len

-- A pragmatic address check: one @, a non-empty local part without spaces or
-- control characters, a domain of dot-separated labels with a dot in it.
function M.valid_email(s)
  if type(s) ~= "string" or #s < 3 or #s > M.EMAIL_MAX then return false end
  if s:find("[%s%c]") then return false end
  local localpart, domain = s:match("^([^@]+)@([^@]+)$")
  if not localpart or #localpart > 64 then return false end
  if not domain:find("%.") or domain:find("%.%.") or domain:find("^[.-]") or domain:find("[.-]$") then
    return false
  end
  if not domain:match("^[%w.-]+$") then return false end
  if localpart:find("^%.") or localpart:find("%.$") or localpart:find("%.%.") then return false end
  return true
end

local function add(errors, field, message)
  errors[#errors + 1] = { field = field, message = message }
end

local function check_password(errors, field, pw)
  if pw == nil or pw == json.null then
    add(errors, field, "is required")
  elseif type(pw) ~= "string" then
    add(errors, field, "must be a string")
  else
    local n = utf8_len(pw)
    if not n then
      add(errors, field, "must be valid UTF-8")
    elseif n < M.PASSWORD_MIN or n > M.PASSWORD_MAX then
      add(errors, field, "must be 8 to 128 characters")
    end
  end
end

local function required_string(errors, field, v)
  if v == nil or v == json.null then
    add(errors, field, "is required")
    return false
  elseif type(v) ~= "string" then
    add(errors, field, "must be a string")
    return false
  end
  return true
end

-- {email, password, name?} → {email, password, name}
function M.register(body)
  local errors = {}
  if required_string(errors, "email", body.email) and not M.valid_email(body.email) then
    add(errors, "email", "must be a valid email address")
  end
  check_password(errors, "password", body.password)
  local name = body.name
  if name == json.null then name = nil end
  if name ~= nil then
    if type(name) ~= "string" then
      add(errors, "name", "must be a string")
    else
      local n = utf8_len(name)
      if not n then add(errors, "name", "must be valid UTF-8")
      elseif n > M.NAME_MAX then add(errors, "name", "must be at most 100 characters") end
      if name:find("%c") then add(errors, "name", "must not contain control characters") end
      name = name:match("^%s*(.-)%s*$")
      if name == "" then name = nil end
    end
  end
  if #errors > 0 then problem.validation(errors) end
  return { email = body.email, password = body.password, name = name }
end

-- {email, password}: only the types are checked here; a malformed email or a
-- password of the wrong length is simply not a valid credential (401).
function M.login(body)
  local errors = {}
  required_string(errors, "email", body.email)
  required_string(errors, "password", body.password)
  if #errors > 0 then problem.validation(errors) end
  return { email = body.email, password = body.password }
end

function M.refresh(body)
  local errors = {}
  if required_string(errors, "refreshToken", body.refreshToken) and #body.refreshToken > 512 then
    add(errors, "refreshToken", "is too long")
  end
  if #errors > 0 then problem.validation(errors) end
  return { refreshToken = body.refreshToken }
end

function M.delete_account(body)
  local errors = {}
  required_string(errors, "password", body.password)
  if #errors > 0 then problem.validation(errors) end
  return { password = body.password }
end

-- users row → API user
function M.user(row)
  return { id = row.id, email = row.email, name = row.name or json.null, createdAt = row.created_at }
end

return M
