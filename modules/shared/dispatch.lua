-- shared/dispatch.lua — runs one request: middleware, the handler, and the
-- shape of the response. The host calls the function this module returns
-- with the route entry ({fn, opts, route}) and the request table it built.
--
-- A handler returns `status, body, headers`: a table body is sent as JSON,
-- a string as is, nil as no body. Raised problems (shared.problem, or any
-- error value with a numeric `status`) become problem+json; anything else is
-- logged with its traceback and answered 500 without details.
local json    = require "lp.json"
local log     = require "lp.log"
local problem = require "shared.problem"

local Request = {}
Request.__index = Request

-- The decoded JSON body: 415 when it is not JSON, 400 when it does not parse
-- or is not an object.
function Request:json()
  if self._json ~= nil then return self._json end
  local ct = (self.headers["content-type"] or ""):lower()
  if not (ct:find("^application/json") or ct:find("^application/[%w.-]+%+json")) then
    problem.raise(415, "unsupported_media_type", "send Content-Type: application/json")
  end
  local value, err = json.decode(self.body)
  if value == nil then
    problem.raise(400, "bad_request", "body is not valid JSON")
  end
  if type(value) ~= "table" or json.is_array(value) or (#value > 0) then
    problem.raise(400, "bad_request", "body must be a JSON object")
  end
  self._json = value
  return value
end

function Request:header(name)
  return self.headers[name:lower()]
end

-- The client's address as the proxy saw it, or nil (used by rate limits).
-- The client's address. Forwarding headers are believed only behind a proxy
-- the operator declared (TRUST_PROXY=1): otherwise anyone could pick the
-- address a per-address rate limit counts. Falls back to the socket's peer.
local trust_proxy = os.getenv("TRUST_PROXY") == "1"

function Request:client_ip()
  if trust_proxy then
    local fwd = self.headers["x-forwarded-for"]
    if fwd then return (fwd:match("^%s*([^,%s]+)")) end
    if self.headers["x-real-ip"] then return self.headers["x-real-ip"] end
  end
  return self.peer
end

local function encode_problem(p, req_id)
  local body = {
    type = "about:blank", title = p.title or "Error", status = p.status,
    code = p.code or "error", detail = p.detail, errors = p.errors, requestId = req_id,
  }
  local headers = { ["Content-Type"] = "application/problem+json" }
  if p.headers then for k, v in pairs(p.headers) do headers[k] = v end end
  return p.status, json.encode(body), headers
end

local function traceback(err)
  if type(err) == "table" then return err end
  return debug.traceback(tostring(err), 2)
end

local function run(entry, req)
  if entry.opts.auth then
    require("shared.auth").authenticate(req)
  end
  return entry.fn(req)
end

return function(entry, req)
  setmetatable(req, Request)
  local ok, status, body, headers = xpcall(run, traceback, entry, req)
  if not ok then
    local err = status
    if type(err) == "table" and type(err.status) == "number" then
      if err.status >= 500 then
        log.warn { msg = "request failed", status = err.status, code = err.code, detail = err.detail }
      end
      if not problem.is(err) then
        err = problem.new(err.status, err.code or "error", err.detail or err.message)
      end
      return encode_problem(err, req.id)
    end
    if type(err) == "table" then
      log.error { msg = "unhandled error", code = err.code, sqlstate = err.sqlstate,
                  detail = err.message, route = req.route }
    else
      log.error { msg = "unhandled error", traceback = tostring(err), route = req.route }
    end
    return encode_problem(problem.new(500, "internal_error", "internal error"), req.id)
  end
  headers = headers or {}
  if type(body) == "table" then
    if not headers["Content-Type"] then headers["Content-Type"] = "application/json" end
    body = json.encode(body)
  elseif body == nil then
    body = ""
  elseif not headers["Content-Type"] then
    headers["Content-Type"] = "text/plain; charset=utf-8"
  end
  return status or 200, body, headers
end
