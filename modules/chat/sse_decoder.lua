-- chat/sse_decoder.lua — incremental server-sent-events parser for the
-- provider streams (WHATWG "event stream" rules, the parts LLM APIs use).
--
--   local dec = sse_decoder.new(function(event, data) ... end)
--   dec:feed(chunk)   -- any split: events may straddle chunks, lines may end
--                     -- in \n, \r\n or \r; comment lines (": ping") are skipped
--   dec:finish()      -- dispatches a final event not followed by a blank line
--
-- on_event(event, data): event is the `event:` field or "message"; data is
-- the `data:` lines joined with "\n". Returning false from on_event stops
-- further dispatch in this feed (the caller is failing the stream).
local M = {}
local Decoder = {}
Decoder.__index = Decoder

function M.new(on_event)
  return setmetatable({ buf = "", event = nil, data = nil, on_event = on_event, stopped = false }, Decoder)
end

function Decoder:dispatch()
  if self.data ~= nil and not self.stopped then
    if self.on_event(self.event or "message", self.data) == false then self.stopped = true end
  end
  self.event, self.data = nil, nil
end

function Decoder:line(line)
  if line == "" then return self:dispatch() end
  if line:sub(1, 1) == ":" then return end
  local field, value = line:match("^([^:]*):? ?(.*)$")
  if field == "event" then
    self.event = value
  elseif field == "data" then
    self.data = self.data and (self.data .. "\n" .. value) or value
  end
end

function Decoder:feed(chunk)
  local buf = self.buf .. chunk
  local pos = 1
  while not self.stopped do
    local s, e = buf:find("\r?\n", pos)
    local cr = buf:find("\r", pos, true)
    if cr and (not s or cr < s) and cr < #buf then s, e = cr, cr end -- a lone \r ends a line
    if not s then break end
    self:line(buf:sub(pos, s - 1))
    pos = e + 1
  end
  self.buf = buf:sub(pos)
  return not self.stopped
end

function Decoder:finish()
  if self.buf ~= "" then self:line(self.buf); self.buf = "" end
  self:dispatch()
end

return M
