-- A fake LLM provider for the chat specs, served by a second lifeplan
-- instance (spec/chat/helpers.lua starts it with modules = false). It speaks
-- both wire formats the chat module uses:
--   POST /v1/messages           Anthropic Messages API (stream true/false)
--   POST /v1/chat/completions   OpenAI Chat Completions (stream true/false)
-- and is scripted by the specs:
--   POST /_fake/script  {steps: [step...]}  queued; each provider request
--                                           takes the next step
--   POST /_fake/default {step}              what to do when the queue is empty
--   POST /_fake/reset                       empties queue, default and log
--   GET  /_fake/requests                    {items: [{path, headers, body}]}
-- A step: {text = "...", chunk = chars per delta (4), delay_ms = between
-- deltas, first_delay_ms = before the response starts, usage_in, usage_out}
-- or {status = 429|500|503|529..., retry_after = "1", retry_after_ms = "..."}
-- or {hang = true} (never answers; waits until the client goes away)
-- plus, on a text step, {error_after = n, error_type = "overloaded_error"}
-- (an error event after n deltas), {hang_after = n} or {truncate_after = n}
-- (the stream stops without its final event).
-- The default answer (no text given) repeats every "#id" of the request's
-- system prompt as "[정책 #id]" and adds "[정책 #999999]", an id that was
-- never in any context, so the specs can check citation filtering.
local json   = require "lp.json"
local server = require "lp.server"
local timer  = require "lp.timer"

local queue, log, default_step = {}, {}, {}

local function chars(s)
  local out = {}
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do out[#out + 1] = ch end
  return out
end

local function pieces(text, n)
  local cs, out = chars(text), {}
  for i = 1, #cs, n do out[#out + 1] = table.concat(cs, "", i, math.min(i + n - 1, #cs)) end
  return out
end

local function default_text(system)
  local ids, seen = {}, {}
  for id in tostring(system or ""):gmatch("#(%d+)") do
    if not seen[id] then seen[id] = true; ids[#ids + 1] = "[정책 #" .. id .. "]" end
  end
  local t = "가짜 모델의 답변입니다."
  if #ids > 0 then t = t .. " 참고한 정책: " .. table.concat(ids, ", ") .. "." end
  return t .. " 그리고 [정책 #999999]도 있어요."
end

local function hang()
  for _ = 1, 1200 do
    if not server.client_alive() then return end
    timer.sleep(50)
  end
end

local function record(req, body)
  log[#log + 1] = {
    path = req.path,
    headers = { ["x-api-key"] = req.headers["x-api-key"], ["anthropic-version"] = req.headers["anthropic-version"],
                authorization = req.headers["authorization"], accept = req.headers["accept"] },
    body = body,
  }
end

local function next_step()
  if #queue > 0 then return table.remove(queue, 1) end
  return default_step
end

local function error_response(step, kind)
  local typ = ({ [429] = "rate_limit_error", [500] = "api_error", [503] = "api_error",
                 [529] = "overloaded_error", [401] = "authentication_error" })[step.status] or "invalid_request_error"
  local headers = { ["Content-Type"] = "application/json" }
  if step.retry_after then headers["Retry-After"] = tostring(step.retry_after) end
  if step.retry_after_ms then headers["retry-after-ms"] = tostring(step.retry_after_ms) end
  local body
  if kind == "anthropic" then
    body = { type = "error", error = { type = typ, message = "fake " .. typ } }
  else
    body = { error = { message = "fake " .. typ, type = typ, param = json.null, code = json.null } }
  end
  return step.status, body, headers
end

-- Streams `step` for one request; fmt knows the wire format.
local function run(req, kind, fmt)
  local body = req:json()
  record(req, body)
  local step = next_step()
  if step.first_delay_ms then timer.sleep(step.first_delay_ms) end
  if step.hang then hang(); return 200, "" end
  if step.status and step.status ~= 200 then return error_response(step, kind) end
  local text = step.text or default_text(kind == "anthropic" and body.system or
    (type(body.messages) == "table" and type(body.messages[1]) == "table" and body.messages[1].content))
  local parts = pieces(text, step.chunk or 4)
  local usage_in, usage_out = step.usage_in or 42, step.usage_out or #parts
  if body.stream ~= true then return 200, fmt.whole(body, text, usage_in, usage_out) end

  server.stream(200, { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache" })
  local function send(s) return server.write(s) end
  send(fmt.start(body, usage_in))
  for i, p in ipairs(parts) do
    if step.error_after and i > step.error_after then
      send(fmt.error(step.error_type or "overloaded_error"))
      return
    end
    if step.hang_after and i > step.hang_after then hang(); return end
    if step.truncate_after and i > step.truncate_after then return end
    if not send(fmt.delta(p)) then return end
    if step.delay_ms then timer.sleep(step.delay_ms) end
  end
  send(fmt.finish(usage_in, usage_out))
end

local function ev(name, data)
  return "event: " .. name .. "\ndata: " .. json.encode(data) .. "\n\n"
end

local anthropic = {
  start = function(body, usage_in)
    return ev("message_start", { type = "message_start", message = {
      id = "msg_fake01", type = "message", role = "assistant", model = body.model,
      content = json.empty_array, stop_reason = json.null, stop_sequence = json.null,
      usage = { input_tokens = usage_in, output_tokens = 1 } } })
      .. ev("content_block_start", { type = "content_block_start", index = 0,
                                     content_block = { type = "text", text = "" } })
      .. ev("ping", { type = "ping" })
  end,
  delta = function(p)
    return ev("content_block_delta", { type = "content_block_delta", index = 0,
                                       delta = { type = "text_delta", text = p } })
  end,
  error = function(typ)
    return ev("error", { type = "error", error = { type = typ, message = "fake " .. typ } })
  end,
  finish = function(_, usage_out)
    return ev("content_block_stop", { type = "content_block_stop", index = 0 })
      .. ev("message_delta", { type = "message_delta", delta = { stop_reason = "end_turn", stop_sequence = json.null },
                               usage = { output_tokens = usage_out } })
      .. ev("message_stop", { type = "message_stop" })
  end,
  whole = function(body, text, usage_in, usage_out)
    return { id = "msg_fake01", type = "message", role = "assistant", model = body.model,
             content = { { type = "text", text = text } }, stop_reason = "end_turn", stop_sequence = json.null,
             usage = { input_tokens = usage_in, output_tokens = usage_out } }
  end,
}

local function chunk(body_model, choices, usage)
  return "data: " .. json.encode { id = "chatcmpl-fake01", object = "chat.completion.chunk", created = os.time(),
    model = body_model, choices = choices, usage = usage } .. "\n\n"
end

local function openai_fmt()
  local model = "fake"
  return {
    start = function(body)
      model = body.model or model
      return chunk(model, { { index = 0, delta = { role = "assistant", content = "" }, finish_reason = json.null } })
    end,
    delta = function(p)
      return chunk(model, { { index = 0, delta = { content = p }, finish_reason = json.null } })
    end,
    error = function(typ)
      return "data: " .. json.encode { error = { message = "fake " .. typ, type = typ, param = json.null, code = json.null } } .. "\n\n"
    end,
    finish = function(usage_in, usage_out)
      return chunk(model, { { index = 0, delta = {}, finish_reason = "stop" } })
        .. chunk(model, json.empty_array, { prompt_tokens = usage_in, completion_tokens = usage_out,
                                            total_tokens = usage_in + usage_out })
        .. "data: [DONE]\n\n"
    end,
    whole = function(body, text, usage_in, usage_out)
      return { id = "chatcmpl-fake01", object = "chat.completion", created = os.time(), model = body.model,
               choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
               usage = { prompt_tokens = usage_in, completion_tokens = usage_out, total_tokens = usage_in + usage_out } }
    end,
  }
end

return function(routes)
  routes:post("/v1/messages", function(req) return run(req, "anthropic", anthropic) end)
  routes:post("/v1/chat/completions", function(req) return run(req, "openai", openai_fmt()) end)
  routes:post("/_fake/script", function(req)
    for _, s in ipairs(req:json().steps or {}) do queue[#queue + 1] = s end
    return 200, { queued = #queue }
  end)
  routes:post("/_fake/default", function(req)
    default_step = req:json()
    return 200, { ok = true }
  end)
  routes:post("/_fake/reset", function()
    queue, log, default_step = {}, {}, {}
    return 200, { ok = true }
  end)
  routes:get("/_fake/requests", function()
    return 200, { items = json.array(log), queued = #queue }
  end)
end
