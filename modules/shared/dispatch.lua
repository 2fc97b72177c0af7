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
-- The client's address (rate limits count against it). X-Forwarded-For and
-- X-Real-IP are set by whoever sends the request, so they are believed only
-- when the connection comes from a trusted proxy: TRUSTED_PROXIES, a
-- comma-separated list of addresses (default "127.0.0.1,::1", a proxy on the
-- same host; empty trusts none). X-Forwarded-For is read from the right,
-- skipping trusted proxies, so a client cannot choose its own address by
-- prepending entries.
local trusted = {}
for a in (os.getenv("TRUSTED_PROXIES") or "127.0.0.1,::1"):gmatch("[^,%s]+") do
  trusted[a] = true
end

local function plain(addr)
  return addr and (addr:gsub("^::ffff:(%d+%.%d+%.%d+%.%d+)$", "%1")) or nil
end

function Request:client_ip()
  local addr = plain(self.peer)
  if not addr or not trusted[addr] then return addr end
  local fwd = self.headers["x-forwarded-for"]
  if fwd then
    local hops = {}
    for a in fwd:gmatch("[^,%s]+") do hops[#hops + 1] = plain(a) end
    for i = #hops, 1, -1 do
      addr = hops[i]
      if not trusted[addr] then break end
    end
    return addr
  end
  return plain(self.headers["x-real-ip"]) or addr
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

-- The headers of a response whose handler gave none: shared, read only by
-- the host (which copies them into the response), so not built per request.
local function frozen(t)
  return setmetatable(t, { __newindex = function() error("shared response headers", 2) end })
end
local JSON_HEADERS = frozen { ["Content-Type"] = "application/json" }
local TEXT_HEADERS = frozen { ["Content-Type"] = "text/plain; charset=utf-8" }
local NO_HEADERS = frozen {}

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
  if type(body) == "table" then
    body = json.encode(body)
    if headers == nil then
      headers = JSON_HEADERS
    elseif not headers["Content-Type"] then
      headers["Content-Type"] = "application/json"
    end
  elseif body == nil then
    body = ""
    headers = headers or NO_HEADERS
  elseif headers == nil then
    headers = TEXT_HEADERS
  elseif not headers["Content-Type"] then
    headers["Content-Type"] = "text/plain; charset=utf-8"
  end
  return status or 200, body, headers
end
