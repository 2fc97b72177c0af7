-- chat/llm.lua — one answer from the configured provider, with the time
-- budget, retries and the offline fallback.
--
--   local r = llm.answer(req, on_text)
--   -- req: { system, messages, flow, ctx }; on_text(text) for each piece as
--   -- it arrives (nil when nobody is streaming)
--   -- r: { text, provider, degraded, tokens_in, tokens_out, failure }
--
-- Configuration (environment, read per answer so a restart is not needed to
-- see a change in tests):
--   LLM_PROVIDER         anthropic | openai | offline. Unset: anthropic when
--                        ANTHROPIC_API_KEY is set, else openai when
--                        OPENAI_API_KEY is set, else offline. A provider whose
--                        key is missing falls back to offline.
--   LLM_MODEL            model name (defaults per provider)
--   ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL (https://api.anthropic.com)
--   OPENAI_API_KEY, OPENAI_BASE_URL (https://api.openai.com/v1)
--   LLM_MAX_TOKENS       max_tokens of an answer (800)
--   LLM_TIMEOUT_MS       whole answer, every attempt and wait included (60000)
--   LLM_CONNECT_TIMEOUT_MS  TCP + TLS set-up per attempt (3000)
--   LLM_FIRST_BYTE_TIMEOUT_MS  longest silence before the first byte and
--                        between chunks (20000)
--   LLM_MAX_RETRIES      retries after the first attempt (2)
--   LLM_RETRY_BASE_MS    backoff base: base·2^n, times a jitter in [0.5, 1) (500)
--   LLM_RETRY_AFTER_MAX_MS  a retry-after longer than this gives up (20000)
--
-- Retries: see providers/wire.lua for what is retryable; retry-after(-ms)
-- is honoured; never after a token reached the streaming client (the
-- client would see the answer twice). A final failure answers from the
-- offline responder with degraded = true.
local log   = require "lp.log"
local timer = require "lp.timer"

local M = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local function env_int(name, default)
  local n = tonumber(env(name))
  if not n or n < 0 then return default end
  return math.floor(n)
end

function M.config()
  local provider = env("LLM_PROVIDER")
  if not provider then
    if env("ANTHROPIC_API_KEY") then provider = "anthropic"
    elseif env("OPENAI_API_KEY") then provider = "openai"
    else provider = "offline" end
  end
  local cfg = {
    provider = provider,
    max_tokens = math.max(1, env_int("LLM_MAX_TOKENS", 800)),
    timeout_ms = math.max(1, env_int("LLM_TIMEOUT_MS", 60000)),
    connect_timeout_ms = math.max(1, env_int("LLM_CONNECT_TIMEOUT_MS", 3000)),
    read_timeout_ms = math.max(1, env_int("LLM_FIRST_BYTE_TIMEOUT_MS", 20000)),
    max_retries = math.min(env_int("LLM_MAX_RETRIES", 2), 2),
    retry_base_ms = env_int("LLM_RETRY_BASE_MS", 500),
    retry_after_max_ms = env_int("LLM_RETRY_AFTER_MAX_MS", 20000),
  }
  if provider == "anthropic" then
    cfg.api_key = env("ANTHROPIC_API_KEY")
    cfg.base_url = env("ANTHROPIC_BASE_URL", "https://api.anthropic.com"):gsub("/+$", "")
    cfg.model = env("LLM_MODEL", "claude-sonnet-4-5")
  elseif provider == "openai" then
    cfg.api_key = env("OPENAI_API_KEY")
    cfg.base_url = env("OPENAI_BASE_URL", "https://api.openai.com/v1"):gsub("/+$", "")
    cfg.model = env("LLM_MODEL", "gpt-4o-mini")
  else
    cfg.provider = "offline"
  end
  if cfg.provider ~= "offline" and not cfg.api_key then
    log.warn { msg = "LLM provider has no API key; answering offline", provider = provider }
    cfg.provider = "offline"
  end
  return cfg
end

local function backoff_ms(cfg, attempt)
  return math.floor(cfg.retry_base_ms * 2 ^ attempt * (0.5 + math.random() * 0.5))
end

local function offline(req, on_text, degraded, streamed)
  local off = require "chat.providers.offline"
  local first = true
  local emit = function(text)
    if not on_text then return end
    -- After a broken stream the client already shows part of an answer:
    -- start the summary on a fresh paragraph. done carries the stored text.
    if first and streamed then text = "\n\n" .. text end
    first = false
    on_text(text)
  end
  local r = off.stream(nil, { flow = req.flow, ctx = req.ctx, degraded = degraded }, emit)
  r.provider = "offline"
  r.degraded = degraded
  return r
end

function M.answer(req, on_text)
  local cfg = M.config()
  if cfg.provider == "offline" then return offline(req, on_text, false, false) end
  local provider = require("chat.providers." .. cfg.provider)

  local deadline = timer.monotonic_ms() + cfg.timeout_ms
  local streamed = false
  local relay = function(text)
    if on_text then
      streamed = true
      on_text(text)
    end
  end
  local failure
  for attempt = 0, cfg.max_retries do
    local remaining = deadline - timer.monotonic_ms()
    if remaining <= 0 then
      failure = { kind = "timeout", message = "timeout: answer budget spent" }
      break
    end
    local acfg = setmetatable({ timeout_ms = remaining,
                                connect_timeout_ms = math.min(cfg.connect_timeout_ms, remaining) },
                              { __index = cfg })
    local r, f = provider.stream(acfg, req, relay)
    if r and not r.text:find("%S") then
      r, f = nil, { retryable = false, kind = "empty", message = "the model answered nothing" }
    end
    if r then
      r.provider = cfg.provider
      r.degraded = false
      r.attempts = attempt + 1
      return r
    end
    failure = f
    log.warn { msg = "LLM attempt failed", provider = cfg.provider, attempt = attempt + 1,
               kind = f.kind, status = f.status, detail = f.message }
    if streamed or not f.retryable or attempt == cfg.max_retries then break end
    local wait = f.retry_after_ms or backoff_ms(cfg, attempt)
    if wait > cfg.retry_after_max_ms or timer.monotonic_ms() + wait >= deadline then break end
    if wait > 0 then timer.sleep(wait) end
  end
  local r = offline(req, on_text, true, streamed)
  r.failure = failure and failure.message
  return r
end

return M
