-- chat/providers/wire.lua — what the HTTP providers share: one streaming POST
-- through lp.http (libcurl multi on the loop) and the classification of a
-- failure into "retry it" or "give up".
--
-- A failure is { retryable = bool, retry_after_ms = n|nil, status = n|nil,
-- kind = "timeout"|"connect"|"http"|"stream"|..., message = "..." }.
-- Retryable: connection errors (refused, reset), HTTP 429, 500, 502, 503, 504,
-- 529, and a stream that broke or reported overload before it finished.
-- Not retried: timeouts (the answer's time budget is spent), 4xx other than
-- 429 (retrying a bad key or request cannot help).
local http        = require "lp.http"
local json        = require "lp.json"
local sse_decoder = require "chat.sse_decoder"

local M = {}

local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true, [529] = true }

-- retry-after-ms (OpenAI) or retry-after in seconds; an HTTP-date is left to
-- the caller's backoff.
function M.retry_after_ms(headers)
  if not headers then return nil end
  local ms = tonumber(headers["retry-after-ms"])
  if ms and ms >= 0 then return math.floor(ms) end
  local s = tonumber(headers["retry-after"])
  if s and s >= 0 then return math.floor(s * 1000) end
  return nil
end

local function error_message(body)
  local doc = body and json.decode(body)
  if type(doc) == "table" and type(doc.error) == "table" then
    return tostring(doc.error.message or doc.error.type or "error"), doc.error.type
  end
  return body and body:sub(1, 200) or "", nil
end

-- POSTs body to url and feeds a 200 response's event stream to on_event
-- (see chat.sse_decoder; on_event returning false cancels the transfer).
-- Returns true when the stream ended normally, or nil, failure.
function M.post_stream(cfg, url, headers, body, on_event)
  local dec = sse_decoder.new(on_event)
  local err_parts, err_len = {}, 0
  local status, resp_headers, err = http.request {
    method = "POST", url = url, headers = headers, body = body,
    timeout_ms = cfg.timeout_ms, connect_timeout_ms = cfg.connect_timeout_ms,
    read_timeout_ms = cfg.read_timeout_ms,
    on_chunk = function(chunk, st)
      if st ~= 200 then
        if err_len < 65536 then err_parts[#err_parts + 1] = chunk; err_len = err_len + #chunk end
        return true
      end
      return dec:feed(chunk)
    end,
  }
  if not status then
    if err == "cancelled" then return nil, { retryable = false, kind = "cancelled", message = "cancelled" } end
    local word = tostring(err):match("^(%a+):") or tostring(err)
    if word == "unavailable" or word == "io" then
      return nil, { retryable = true, kind = "connect", message = tostring(err) }
    end
    return nil, { retryable = false, kind = word, message = tostring(err) }
  end
  if status ~= 200 then
    local msg, typ = error_message(table.concat(err_parts))
    return nil, {
      retryable = RETRY_STATUS[status] or false, status = status, kind = "http",
      retry_after_ms = M.retry_after_ms(resp_headers),
      message = "HTTP " .. status .. (typ and (" " .. typ) or "") .. ": " .. msg,
    }
  end
  dec:finish()
  return true
end

return M
