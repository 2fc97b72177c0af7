-- shared/problem.lua — errors as values: every module raises problems the
-- same way, and the dispatcher turns them into RFC 9457 responses.
--
--   problem.raise(404, "not_found", "no such transaction")
--   problem.validation({ {field = "amount", message = "must be a positive integer"} })
--   problem.unavailable("database")          -- 503, the request changed nothing
local M = {}

local Problem = {}
Problem.__index = Problem
Problem.__tostring = function(p)
  return string.format("problem %d %s: %s", p.status, p.code, p.detail or "")
end

local titles = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [409] = "Conflict",
  [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Validation failed", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [503] = "Service Unavailable",
}

function M.new(status, code, detail, extra)
  local p = setmetatable({ status = status, code = code, detail = detail,
                           title = titles[status] or "Error" }, Problem)
  if extra then for k, v in pairs(extra) do p[k] = v end end
  return p
end

function M.is(v)
  return getmetatable(v) == Problem
end

-- Raises a problem; level 0 so no position is prepended.
function M.raise(status, code, detail, extra)
  error(M.new(status, code, detail, extra), 0)
end

-- 422 with the per-field list; `errors` is { {field=, message=}, ... }.
function M.validation(errors)
  local first = errors[1]
  local detail = first and (first.field .. " " .. first.message) or "invalid request"
  M.raise(422, "validation_failed", detail, { errors = errors })
end

function M.not_found(detail)
  M.raise(404, "not_found", detail or "not found")
end

function M.unavailable(what)
  M.raise(503, "unavailable", (what or "a dependency") .. " is unavailable")
end

function M.bad_request(detail)
  M.raise(400, "bad_request", detail)
end

return M
