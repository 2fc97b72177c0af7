-- chat/providers/anthropic.lua — the Anthropic Messages API, streamed.
--
-- POST {ANTHROPIC_BASE_URL}/v1/messages with x-api-key and
-- anthropic-version: 2023-06-01, body {model, max_tokens, system, messages,
-- stream: true}. The stream's events: message_start (usage.input_tokens),
-- content_block_start, content_block_delta (delta.type "text_delta" carries
-- the text), content_block_stop, message_delta (stop_reason,
-- usage.output_tokens), message_stop, ping, and error ({error: {type,
-- message}}, which may come mid-stream: overloaded_error and api_error are
-- worth a retry). A stream that ends without message_stop is a failure.
--
-- Interface shared by every provider:
--   stream(cfg, req, on_text) → { text, tokens_in, tokens_out, stop_reason }
--                              | nil, failure (see providers/wire.lua)
local json = require "lp.json"
local wire = require "chat.providers.wire"

local M = {}

local RETRYABLE_ERRORS = { overloaded_error = true, api_error = true, rate_limit_error = true }

function M.stream(cfg, req, on_text)
  local body = json.encode {
    model = cfg.model, max_tokens = cfg.max_tokens, system = req.system,
    messages = req.messages, stream = true,
  }
  local headers = {
    ["x-api-key"] = cfg.api_key, ["anthropic-version"] = "2023-06-01",
    ["Content-Type"] = "application/json", ["Accept"] = "text/event-stream",
  }
  local parts, st = {}, { done = false }
  local ok, failure = wire.post_stream(cfg, cfg.base_url .. "/v1/messages", headers, body, function(event, data)
    local msg = json.decode(data)
    if type(msg) ~= "table" then
      st.failure = { retryable = true, kind = "stream", message = "undecodable event " .. tostring(event) }
      return false
    end
    local typ = msg.type or event
    if typ == "content_block_delta" then
      local d = msg.delta
      if type(d) == "table" and d.type == "text_delta" and type(d.text) == "string" and d.text ~= "" then
        parts[#parts + 1] = d.text
        on_text(d.text)
      end
    elseif typ == "message_start" then
      local usage = type(msg.message) == "table" and msg.message.usage
      if type(usage) == "table" then
        st.tokens_in = tonumber(usage.input_tokens)
        st.tokens_out = tonumber(usage.output_tokens)
      end
    elseif typ == "message_delta" then
      if type(msg.usage) == "table" and tonumber(msg.usage.output_tokens) then
        st.tokens_out = tonumber(msg.usage.output_tokens)
      end
      if type(msg.delta) == "table" and type(msg.delta.stop_reason) == "string" then
        st.stop_reason = msg.delta.stop_reason
      end
    elseif typ == "message_stop" then
      st.done = true
    elseif typ == "error" then
      local e = type(msg.error) == "table" and msg.error or {}
      st.failure = { retryable = RETRYABLE_ERRORS[e.type] or false, kind = "stream",
                     message = "stream error " .. tostring(e.type) .. ": " .. tostring(e.message) }
      return false
    end
    -- ping, content_block_start/stop and future event types: nothing to do
    return true
  end)
  if st.failure then return nil, st.failure end
  if not ok then return nil, failure end
  if not st.done then
    return nil, { retryable = true, kind = "stream", message = "stream ended before message_stop" }
  end
  return { text = table.concat(parts), tokens_in = st.tokens_in, tokens_out = st.tokens_out,
           stop_reason = st.stop_reason }
end

return M
