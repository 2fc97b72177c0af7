-- shared/sse.lua — server-sent events on top of the host's chunked writer.
--
--   local stream = sse.open()                 -- 200 text/event-stream
--   if not stream:send("delta", { text = "안녕" }) then ... client gone ... end
local json   = require "lp.json"
local server = require "lp.server"

local M = {}
local Stream = {}
Stream.__index = Stream

function M.open(status, headers)
  local h = { ["Content-Type"] = "text/event-stream; charset=utf-8",
              ["Cache-Control"] = "no-cache", ["X-Accel-Buffering"] = "no" }
  if headers then for k, v in pairs(headers) do h[k] = v end end
  local ok = server.stream(status or 200, h)
  return setmetatable({ open = ok and true or false }, Stream)
end

-- Sends one event; data is JSON-encoded unless it is a string. Returns false
-- once the client has gone away.
function Stream:send(event, data)
  if not self.open then return false end
  if type(data) ~= "string" then data = json.encode(data) end
  local frame = (event and ("event: " .. event .. "\n") or "")
      .. "data: " .. data:gsub("\n", "\ndata: ") .. "\n\n"
  self.open = server.write(frame)
  return self.open
end

-- A comment line keeps proxies from timing out an idle stream.
function Stream:ping()
  if not self.open then return false end
  self.open = server.write(": ping\n\n")
  return self.open
end

return M
