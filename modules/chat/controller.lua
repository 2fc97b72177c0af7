-- chat/controller.lua — /api/v1/chat routes (API.md "Chat").
--
-- POST /chat/sessions/:id answers as JSON by default; with
-- `Accept: text/event-stream` it streams server-sent events:
--   event: delta  {"text": "..."}            as the answer arrives
--   event: done   {userMessage, assistantMessage}  both messages as stored
--   event: error  {status, code, detail}     if storing failed after the
--                                            stream had started
-- Ownership, validation and the rate limit are checked before the stream
-- starts, so they are ordinary 404 / 422 / 429 responses.
local log     = require "lp.log"
local sse     = require "shared.sse"
local service = require "chat.service"
local types   = require "chat.types"

local function wants_sse(req)
  local accept = req.headers["accept"] or ""
  return accept:find("text/event-stream", 1, true) ~= nil
end

local function stream_answer(req, session_id, content)
  local stream = sse.open()
  local ok, res = xpcall(service.ask, function(e)
    if type(e) == "table" then return e end
    return debug.traceback(tostring(e), 2)
  end, req.user.id, session_id, content, function(text)
    stream:send("delta", { text = text })
  end)
  if ok then
    stream:send("done", res)
    return
  end
  local status = type(res) == "table" and tonumber(res.status) or 500
  log.error { msg = "chat stream failed", status = status,
              err = type(res) == "table" and (res.code or res.message) or tostring(res) }
  stream:send("error", {
    status = status,
    code = status == 503 and "unavailable" or "internal_error",
    detail = status == 503 and "a dependency is unavailable" or "internal error",
  })
end

return function(routes)
  routes:get("/api/v1/chat/sessions", { auth = true }, function(req)
    return 200, service.list(req.user.id, types.limit(req.query.limit), req.query.cursor)
  end)

  routes:post("/api/v1/chat/sessions", { auth = true }, function(req)
    local body = (req.body ~= nil and req.body ~= "") and req:json() or nil
    return 201, service.create(req.user.id, types.session_input(body))
  end)

  routes:get("/api/v1/chat/sessions/:id", { auth = true }, function(req)
    return 200, service.get(req.user.id, types.session_id(req.params.id))
  end)

  routes:post("/api/v1/chat/sessions/:id", { auth = true }, function(req)
    local id = types.session_id(req.params.id)
    service.owned(req.user.id, id)
    local content = types.message_input(req:json())
    service.rate_limit(req.user.id)
    if wants_sse(req) then return stream_answer(req, id, content) end
    return 200, service.ask(req.user.id, id, content)
  end)
end
