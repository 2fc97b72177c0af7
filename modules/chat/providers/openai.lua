-- chat/providers/openai.lua — Chat Completions with stream: true, for OpenAI
-- and any compatible server (OPENAI_BASE_URL, e.g. a local model server at
-- http://127.0.0.1:8080/v1).
--
-- POST {base}/chat/completions with Authorization: Bearer, body {model,
-- messages (system first), max_tokens, stream: true, stream_options:
-- {include_usage: true}}. The stream is `data: {chunk}` lines: text in
-- choices[].delta.content, usage in the last chunk (when the server sends
-- it), an {error: ...} object on failure, and `data: [DONE]` at the end; a
-- stream without [DONE] is a failure.
--
-- Interface: see providers/anthropic.lua.
local json = require "lp.json"
local wire = require "chat.providers.wire"

local M = {}

function M.stream(cfg, req, on_text)
  local messages = { { role = "system", content = req.system } }
  for _, m in ipairs(req.messages) do messages[#messages + 1] = m end
  local body = json.encode {
    model = cfg.model, messages = messages, max_tokens = cfg.max_tokens, stream = true,
    stream_options = { include_usage = true },
  }
  local headers = {
    ["Authorization"] = "Bearer " .. cfg.api_key,
    ["Content-Type"] = "application/json", ["Accept"] = "text/event-stream",
  }
  local parts, st = {}, { done = false }
  local ok, failure = wire.post_stream(cfg, cfg.base_url .. "/chat/completions", headers, body, function(_, data)
    if data == "[DONE]" then st.done = true; return true end
    local msg = json.decode(data)
    if type(msg) ~= "table" then
      st.failure = { retryable = true, kind = "stream", message = "undecodable chunk" }
      return false
    end
    if type(msg.error) == "table" then
      local typ = tostring(msg.error.type or msg.error.code or "error")
      st.failure = { retryable = typ == "server_error" or typ == "overloaded_error" or typ == "rate_limit_exceeded",
                     kind = "stream", message = "stream error " .. typ .. ": " .. tostring(msg.error.message) }
      return false
    end
    if type(msg.choices) == "table" then
      for _, choice in ipairs(msg.choices) do
        local d = type(choice) == "table" and choice.delta
        if type(d) == "table" and type(d.content) == "string" and d.content ~= "" then
          parts[#parts + 1] = d.content
          on_text(d.content)
        end
        if type(choice) == "table" and type(choice.finish_reason) == "string" then
          st.stop_reason = choice.finish_reason
        end
      end
    end
    if type(msg.usage) == "table" then
      st.tokens_in = tonumber(msg.usage.prompt_tokens)
      st.tokens_out = tonumber(msg.usage.completion_tokens)
    end
    return true
  end)
  if st.failure then return nil, st.failure end
  if not ok then return nil, failure end
  if not st.done then
    return nil, { retryable = true, kind = "stream", message = "stream ended before [DONE]" }
  end
  return { text = table.concat(parts), tokens_in = st.tokens_in, tokens_out = st.tokens_out,
           stop_reason = st.stop_reason }
end

return M
