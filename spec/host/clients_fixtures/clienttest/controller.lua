-- Test-only routes for the Redis and outbound-HTTP specs. The "upstream"
-- routes (/c/up/...) are what http.request talks to: the host calls itself,
-- which also shows that a request waiting on http.request never blocks the
-- worker that must answer it.
local redis  = require "lp.redis"
local http   = require "lp.http"
local json   = require "lp.json"
local timer  = require "lp.timer"
local cache  = require "lp.cache"
local server = require "lp.server"
local sse    = require "shared.sse"

local SELF = "http://127.0.0.1:" .. os.getenv("PORT")

local function nullable(v)
  if v == nil then return json.null end
  return v
end

return function(routes)
  -- Redis --------------------------------------------------------------------
  routes:post("/c/redis/call", function(req)
    local args = req:json().args
    local v, err = redis.call(unpack(args))
    return 200, { value = nullable(v), err = nullable(err), type = type(v) }
  end)
  routes:post("/c/redis/pipeline", function(req)
    local replies, err = redis.pipeline(req:json().cmds)
    return 200, { replies = nullable(replies), err = nullable(err) }
  end)
  routes:get("/c/redis/binary", function(req)
    local key = "c:bin:" .. req.query.k
    local value = "a\0b\r\n\255"
    local set = redis.call("SET", key, value)
    local got = redis.call("GET", key)
    return 200, { set = set, same = got == value, len = #got }
  end)
  routes:get("/c/redis/numbers", function(req)
    local key = "c:num:" .. req.query.k
    redis.call("SET", key, 2 ^ 53)
    local sent = redis.call("GET", key)
    local big = redis.call("INCRBY", key, 3)
    return 200, { sent = sent, big = big, big_type = type(big),
                  neg = redis.call("ECHO", -7), frac = redis.call("ECHO", 1.5) }
  end)
  routes:get("/c/redis/misuse", function()
    redis.call("SET", "k", {})
  end)

  -- Upstream -----------------------------------------------------------------
  routes:get("/c/up/hello", function()
    return 200, { hello = "world" }, { ["X-Up"] = "1" }
  end)
  routes:get("/c/up/status/:n", function(req)
    return tonumber(req.params.n), { status = tonumber(req.params.n) }, { ["Retry-After"] = "3" }
  end)
  routes:post("/c/up/echo", function(req)
    return 200, { method = req.method, body = req.body, custom = nullable(req.headers["x-custom"]) }
  end)
  routes:get("/c/up/slow", function(req)
    timer.sleep(tonumber(req.query.ms))
    return 200, { slept = true }
  end)
  routes:get("/c/up/stream", function(req)
    local s = sse.open()
    for i = 1, tonumber(req.query.n) or 3 do
      if not s:send("delta", { i = i }) then return end
      timer.sleep(tonumber(req.query.gap) or 20)
    end
  end)

  -- http.request -------------------------------------------------------------
  routes:get("/c/http/fetch", function(req)
    local q = req.query
    local status, headers, body = http.request {
      url = q.url or (SELF .. q.path), method = q.method,
      timeout_ms = tonumber(q.timeout_ms), read_timeout_ms = tonumber(q.read_timeout_ms),
      headers = { ["X-Custom"] = q.custom, ["Content-Type"] = "text/plain" }, body = q.body,
    }
    if not status then return 200, { err = headers } end
    return 200, { status = status, headers = headers, body = body }
  end)
  routes:get("/c/http/stream", function(req)
    local chunks, seen = {}, nil
    local status, headers, body = http.request {
      url = SELF .. "/c/up/stream?n=" .. (req.query.n or 3),
      on_chunk = function(chunk, st, hdrs)
        timer.sleep(1) -- on_chunk may yield
        chunks[#chunks + 1] = chunk
        seen = seen or { status = st, type = hdrs["content-type"] }
      end,
    }
    return 200, { status = status, body = nullable(body), joined = table.concat(chunks),
                  first = seen, streamed = type(headers) == "table" }
  end)
  routes:get("/c/http/cancel", function()
    local n = 0
    local status, err = http.request {
      url = SELF .. "/c/up/stream?n=50",
      on_chunk = function() n = n + 1; return false end,
    }
    return 200, { status = nullable(status), err = err, chunks = n }
  end)
  routes:get("/c/http/raise", function()
    http.request { url = SELF .. "/c/up/stream?n=50", on_chunk = function() error("boom in on_chunk") end }
  end)
  -- The chat pattern: relay an upstream stream to our own client as SSE, and
  -- stop the upstream transfer as soon as our client goes away.
  routes:get("/c/http/relay", function(req)
    local s = sse.open()
    local relayed = 0
    local _, err = http.request {
      url = SELF .. "/c/up/stream?gap=10&n=" .. (req.query.n or 3),
      on_chunk = function(chunk)
        relayed = relayed + 1
        return s:send("up", chunk)
      end,
    }
    cache.set("relay:" .. (req.query.key or "x"), json.encode({ relayed = relayed, err = nullable(err),
                                                                alive = server.client_alive() }))
  end)
  routes:get("/c/cache/:key", function(req)
    return 200, { value = nullable(cache.get(req.params.key)) }
  end)
end
