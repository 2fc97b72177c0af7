-- chat/service.lua — sessions, messages and answering a question.
--
-- Answering (ask): classify the question (chat.intent), let the intent's
-- flow (chat/flows/<intent>.lua) gather context through other modules'
-- services, build the prompt (chat.prompt), get the answer from the
-- configured provider or the offline responder (chat.llm), keep only
-- citations of policies that were in the context, and store the question
-- and the whole answer together in one transaction — a question is never
-- stored without its answer, and an answer is stored only once complete.
-- The answer is produced and stored even when a streaming client has gone
-- away meanwhile.
--
-- Every query names the user, so another user's session is simply absent.
local crypto  = require "lp.crypto"
local db      = require "lp.db"
local json    = require "lp.json"
local log     = require "lp.log"
local redis   = require "lp.redis"
local problem = require "shared.problem"
local C       = require "chat.context"
local intent  = require "chat.intent"
local llm     = require "chat.llm"
local prompt  = require "chat.prompt"
local types   = require "chat.types"

local M = {}

local MSG_COLS = "id, role, content, intent, citations, degraded, created_at"
local HISTORY_MESSAGES = 20

-- The session `id` if it is the user's; 404 otherwise.
function M.owned(user_id, id)
  local rows = db.query("SELECT id, title, created_at, updated_at FROM chat_sessions WHERE id = $1 AND user_id = $2",
    id, user_id)
  if not rows[1] then problem.not_found("no such chat session") end
  return rows[1]
end

local function encode_cursor(row)
  return crypto.b64url_encode(row.updated_at .. "|" .. tostring(row.id))
end

local function decode_cursor(cursor)
  local raw = crypto.b64url_decode(cursor)
  local ts, id = (raw or ""):match("^([%d%-T:%.Z+]+)|(%d+)$")
  if not ts then problem.bad_request("invalid cursor") end
  return ts, tonumber(id)
end

function M.list(user_id, limit, cursor)
  local sql = [[
    SELECT s.id, s.title, s.created_at, s.updated_at,
           m.id AS m_id, m.role AS m_role, m.content AS m_content, m.intent AS m_intent,
           m.citations AS m_citations, m.degraded AS m_degraded, m.created_at AS m_created_at
      FROM chat_sessions s
      LEFT JOIN LATERAL (SELECT * FROM chat_messages
                          WHERE session_id = s.id AND user_id = s.user_id
                          ORDER BY id DESC LIMIT 1) m ON true
     WHERE s.user_id = $1 %s
     ORDER BY s.updated_at DESC, s.id DESC
     LIMIT $2]]
  local rows
  if cursor then
    local ts, id = decode_cursor(cursor)
    rows = db.query(sql:format("AND (s.updated_at, s.id) < ($3::timestamptz, $4::bigint)"), user_id, limit + 1, ts, id)
  else
    rows = db.query(sql:format(""), user_id, limit + 1)
  end
  local items = {}
  for i = 1, math.min(#rows, limit) do
    local r = rows[i]
    local last = r.m_id and { id = r.m_id, role = r.m_role, content = r.m_content, intent = r.m_intent,
                              citations = r.m_citations, degraded = r.m_degraded, created_at = r.m_created_at }
    items[#items + 1] = types.session_out(r, last)
  end
  local next_cursor = #rows > limit and encode_cursor(rows[limit]) or json.null
  return { items = json.array(items), nextCursor = next_cursor }
end

function M.create(user_id, title)
  local rows = db.query("INSERT INTO chat_sessions (user_id, title) VALUES ($1, $2) RETURNING id, title, created_at, updated_at",
    user_id, title)
  return types.session_out(rows[1], nil)
end

function M.get(user_id, id)
  local session = M.owned(user_id, id)
  local rows = db.query("SELECT " .. MSG_COLS .. " FROM chat_messages WHERE session_id = $1 AND user_id = $2 ORDER BY id",
    id, user_id)
  local messages = {}
  for _, r in ipairs(rows) do messages[#messages + 1] = types.message_out(r) end
  local last = rows[#rows]
  return { session = types.session_out(session, last), messages = json.array(messages) }
end

-- Per-user rate limit on questions (they cost model tokens): at most
-- CHAT_RATE_LIMIT (20) per CHAT_RATE_WINDOW_S (60) seconds, a fixed window
-- counted in Redis so every worker and host shares it. 429 with
-- Retry-After when over. When Redis is unreachable the limit is not
-- enforced (logged): chat keeps working through a Redis outage.
function M.rate_limit(user_id)
  local limit = tonumber(os.getenv("CHAT_RATE_LIMIT") or "") or 20
  local window = tonumber(os.getenv("CHAT_RATE_WINDOW_S") or "") or 60
  if limit <= 0 or window <= 0 then return end
  local now = os.time()
  local key = "chat:rate:" .. tostring(user_id) .. ":" .. math.floor(now / window)
  local replies, err = redis.pipeline { { "INCR", key }, { "EXPIRE", key, window + 1 } }
  if not replies or type(replies[1]) ~= "number" then
    log.warn { msg = "chat rate limit not enforced", err = err or "bad reply" }
    return
  end
  if replies[1] > limit then
    local retry = window - now % window
    problem.raise(429, "rate_limited", "too many chat messages; try again later",
      { headers = { ["Retry-After"] = tostring(math.max(1, retry)) } })
  end
end

local function load_flow(code)
  local ok, flow = pcall(require, "chat.flows." .. code)
  if ok then return flow end
  log.error { msg = "chat flow failed to load", intent = code, err = tostring(flow) }
  return require "chat.flows.unknown"
end

local function history(user_id, session_id)
  local rows = db.query([[SELECT role, content FROM chat_messages WHERE session_id = $1 AND user_id = $2
                          ORDER BY id DESC LIMIT $3]], session_id, user_id, HISTORY_MESSAGES)
  local out = {}
  for i = #rows, 1, -1 do out[#out + 1] = rows[i] end
  return out
end

-- Answers `content` in session `session_id` (already checked to be the
-- user's). on_text(text), when given, receives the answer as it arrives.
-- Returns { userMessage, assistantMessage } as stored.
function M.ask(user_id, session_id, content, on_text)
  local it = intent.classify(content)
  local flow = load_flow(it.code)
  local now = os.time()
  local profile = C.call("profile.service", "get", user_id)
  local ok, ctx = xpcall(flow.context, debug.traceback,
    { user_id = user_id, text = content, intent = it, profile = profile, now = now })
  if not ok or type(ctx) ~= "table" then
    log.error { msg = "chat flow context failed", intent = it.code, err = tostring(ctx) }
    ctx = { policies = {}, facts = {} }
  end
  local p = prompt.build { flow = flow, ctx = ctx, profile = profile, question = content, now = now,
                           history = history(user_id, session_id) }
  local r = llm.answer({ system = p.system, messages = p.messages, flow = flow, ctx = ctx }, on_text)
  local citations = prompt.citations(r.text, ctx)
  local cite_json = json.encode(citations)

  local user_row, bot_row = db.tx(function(q)
    local u = q.query([[INSERT INTO chat_messages (session_id, user_id, role, content, intent)
                        VALUES ($1, $2, 'user', $3, $4) RETURNING ]] .. MSG_COLS,
      session_id, user_id, content, it.code)[1]
    local a = q.query([[INSERT INTO chat_messages (session_id, user_id, role, content, intent, citations, degraded,
                                                   provider, tokens_in, tokens_out)
                        VALUES ($1, $2, 'assistant', $3, $4, $5::jsonb, $6, $7, $8, $9) RETURNING ]] .. MSG_COLS,
      session_id, user_id, r.text, it.code, cite_json, r.degraded == true, r.provider,
      r.tokens_in or db.null, r.tokens_out or db.null)[1]
    q.query([[UPDATE chat_sessions SET title = CASE WHEN title = '' THEN $3 ELSE title END, updated_at = now()
               WHERE id = $1 AND user_id = $2]], session_id, user_id, types.default_title(content))
    return u, a
  end)
  log.info { msg = "chat answered", intent = it.code, provider = r.provider, degraded = r.degraded == true,
             tokensIn = r.tokens_in, tokensOut = r.tokens_out, failure = r.failure }
  return { userMessage = types.message_out(user_row), assistantMessage = types.message_out(bot_row) }
end

return M
