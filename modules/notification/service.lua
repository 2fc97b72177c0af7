-- notification/service.lua — storing, listing and pushing notifications.
--
-- Other modules create notifications only through create() (the ledger's
-- budget alerts) or create_for_users() (the jobs in notification/jobs.lua):
--
--   local id = notification.create(user_id, { type = "budget", title = ...,
--       body = ..., data = { month = "2026-11", category = "food" },
--       dedupe_key = "budget:2026-11:food:80" })   -- nil when already sent
--
-- The row is the source of truth. Pushing to PUSH_WEBHOOK_URL (when set)
-- happens afterwards in background tasks: a push never delays or fails the
-- request that created the notification, and a push that fails leaves
-- pushed_at NULL (push_attempts counts the tries) for the retry sweep.
local db     = require "lp.db"
local http   = require "lp.http"
local json   = require "lp.json"
local log    = require "lp.log"
local timer  = require "lp.timer"
local types  = require "notification.types"

local M = {}

local COLS = "id, user_id, type, title, body, data, read_at, created_at"

M.PUSH_TRIES       = 3       -- immediate attempts before the sweep takes over
M.PUSH_MAX_TRIES   = 10      -- after this many the sweep gives up
M.PUSH_BACKOFF_MS  = { 200, 1000 }
M.PUSH_TIMEOUT_MS  = 5000
M.PUSHERS          = 4       -- concurrent pushing tasks per worker
local INSERT_CHUNK = 5000    -- users per INSERT of a bulk notification

-- A PostgreSQL array literal of integers, for $n::bigint[].
local function int_array(ids, from, to)
  local parts = {}
  for i = from or 1, to or #ids do parts[#parts + 1] = string.format("%d", ids[i]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
M.int_array = int_array

local function check_notification(n)
  assert(type(n) == "table", "notification: a table expected")
  assert(types.TYPES[n.type], "notification: unknown type " .. tostring(n.type))
  assert(type(n.title) == "string" and n.title ~= "", "notification: title required")
  assert(type(n.body) == "string" and n.body ~= "", "notification: body required")
  assert(type(n.dedupe_key) == "string" and n.dedupe_key ~= "", "notification: dedupe_key required")
  assert(n.data == nil or type(n.data) == "table", "notification: data must be a table")
end

-- Stores one notification unless the user already has one with the same
-- dedupe key. Returns the new id, or nil when it already existed. The push
-- (if configured) follows in a background task.
function M.create(user_id, n)
  check_notification(n)
  local rows = db.query([[
    INSERT INTO notifications (user_id, type, title, body, data, dedupe_key)
    VALUES ($1, $2, $3, $4, $5::jsonb, $6)
    ON CONFLICT (user_id, dedupe_key) DO NOTHING
    RETURNING id]], user_id, n.type, n.title, n.body, n.data or {}, n.dedupe_key)
  if not rows[1] then return nil end
  M.push_later({ rows[1].id })
  return rows[1].id
end

-- The same notification for many users (one policy → everyone it suits):
-- chunked INSERT ... SELECT over an id array; users deleted meanwhile are
-- skipped, existing dedupe keys too. Returns the ids created. Pushing is
-- the caller's choice (push_later / push_wait).
function M.create_for_users(user_ids, n)
  check_notification(n)
  local created = {}
  for from = 1, #user_ids, INSERT_CHUNK do
    local to = math.min(from + INSERT_CHUNK - 1, #user_ids)
    local rows = db.query([[
      INSERT INTO notifications (user_id, type, title, body, data, dedupe_key)
      SELECT u.id, $2, $3, $4, $5::jsonb, $6
        FROM unnest($1::bigint[]) AS x(id) JOIN users u ON u.id = x.id
      ON CONFLICT (user_id, dedupe_key) DO NOTHING
      RETURNING id]], int_array(user_ids, from, to), n.type, n.title, n.body, n.data or {},
      n.dedupe_key)
    for _, r in ipairs(rows) do created[#created + 1] = r.id end
  end
  return created
end

-- GET /notifications: newest first, keyset-paged by id.
function M.list(user_id, q)
  local where = "user_id = $1"
  if q.unread_only then where = where .. " AND read_at IS NULL" end
  local results = db.batch {
    { "SELECT " .. COLS .. " FROM notifications WHERE " .. where ..
      " AND id < $2 ORDER BY id DESC LIMIT $3",
      user_id, q.cursor or 9007199254740991, q.limit + 1 },
    { "SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL", user_id },
  }
  local rows, items = results[1], {}
  for i = 1, math.min(#rows, q.limit) do items[i] = types.notification(rows[i]) end
  local next_cursor = json.null
  if #rows > q.limit then next_cursor = types.encode_cursor(rows[q.limit].id) end
  return { items = json.array(items), nextCursor = next_cursor, unreadCount = results[2][1].n }
end

-- PUT /notifications/:id/read: marks it read once (readAt keeps the first
-- time); nil when it is not the user's.
function M.mark_read(user_id, id)
  local rows = db.query([[
    WITH upd AS (
      UPDATE notifications SET read_at = now()
       WHERE id = $1 AND user_id = $2 AND read_at IS NULL
      RETURNING ]] .. COLS .. [[)
    SELECT * FROM upd
    UNION ALL
    SELECT ]] .. COLS .. [[ FROM notifications
     WHERE id = $1 AND user_id = $2 AND read_at IS NOT NULL]], id, user_id)
  return rows[1] and types.notification(rows[1]) or nil
end

-- ---- push ---------------------------------------------------------------

function M.webhook_url()
  local url = os.getenv("PUSH_WEBHOOK_URL")
  if url and url ~= "" then return url end
  return nil
end

-- One POST; true when the gateway took it (2xx).
local function post(url, row)
  local status, err = http.request {
    method = "POST", url = url,
    headers = { ["Content-Type"] = "application/json",
                ["Idempotency-Key"] = "notification-" .. tostring(row.id) },
    body = json.encode(types.push_payload(row)),
    timeout_ms = M.PUSH_TIMEOUT_MS, connect_timeout_ms = 2000,
  }
  if status and status >= 200 and status < 300 then return true end
  return false, status and ("status " .. status) or tostring(err)
end

-- Immediate delivery with a few quick retries; each try is counted.
local function deliver(url, row)
  for try = 1, M.PUSH_TRIES do
    local ok, why = post(url, row)
    db.query([[UPDATE notifications
                  SET push_attempts = push_attempts + 1,
                      pushed_at = CASE WHEN $2::boolean THEN now() END
                WHERE id = $1 AND pushed_at IS NULL]], row.id, ok)
    if ok then return true end
    if try == M.PUSH_TRIES then
      log.warn { msg = "push failed; left for the retry sweep", notification = row.id, error = why }
    else
      timer.sleep(M.PUSH_BACKOFF_MS[try] or 1000)
    end
  end
  return false
end

-- Ids waiting to be pushed by this worker (lost on reload or restart: the
-- sweep finds them by pushed_at IS NULL).
local queue, head, pushers = {}, 1, 0

local function pusher()
  local ok, err = pcall(function()
    local url = M.webhook_url()
    while url and head <= #queue do
      local batch = {}
      while head <= #queue and #batch < 50 do
        batch[#batch + 1] = queue[head]
        queue[head] = nil
        head = head + 1
      end
      local rows = db.query("SELECT " .. COLS .. " FROM notifications WHERE id = ANY($1::bigint[])" ..
                            " AND pushed_at IS NULL ORDER BY id", int_array(batch))
      for _, row in ipairs(rows) do deliver(url, row) end
    end
  end)
  pushers = pushers - 1
  if head > #queue then queue, head = {}, 1 end
  if not ok then log.error { msg = "pusher failed", error = tostring(err) } end
end

-- Queues ids for pushing in background tasks; returns at once.
function M.push_later(ids)
  if #ids == 0 or not M.webhook_url() then return end
  for _, id in ipairs(ids) do queue[#queue + 1] = id end
  while pushers < M.PUSHERS do
    pushers = pushers + 1
    timer.after(0, pusher)
  end
end

-- Queues ids and waits until this worker's queue has drained (jobs run
-- from the command line end only after their pushes).
function M.push_wait(ids)
  M.push_later(ids)
  while pushers > 0 do timer.sleep(20) end
end

-- Retries pushes that failed: unpushed notifications of the last two days
-- whose backoff (2^attempts minutes after creation) has passed, or all of
-- them with force. Claiming bumps push_attempts under FOR UPDATE SKIP
-- LOCKED, which also pushes the row's next turn out, so two workers
-- sweeping at once do not both send it. Returns {tried, pushed}.
function M.push_sweep(opts)
  opts = opts or {}
  local url = M.webhook_url()
  local tried, pushed, after = 0, 0, 0
  if not url then return { tried = 0, pushed = 0 } end
  while true do
    local rows = db.query([[
      UPDATE notifications n SET push_attempts = n.push_attempts + 1
        FROM (SELECT id FROM notifications
               WHERE pushed_at IS NULL AND id > $1 AND push_attempts < $2
                 AND created_at > now() - interval '2 days'
                 AND ($3::boolean OR created_at < now() - interval '1 minute' * power(2, push_attempts))
               ORDER BY id LIMIT 100
               FOR UPDATE SKIP LOCKED) s
       WHERE n.id = s.id
      RETURNING n.id, n.user_id, n.type, n.title, n.body, n.data, n.read_at, n.created_at]],
      after, M.PUSH_MAX_TRIES, opts.force == true)
    if #rows == 0 then break end
    table.sort(rows, function(a, b) return a.id < b.id end)
    for _, row in ipairs(rows) do
      tried = tried + 1
      if post(url, row) then
        db.query("UPDATE notifications SET pushed_at = now() WHERE id = $1 AND pushed_at IS NULL", row.id)
        pushed = pushed + 1
      end
      after = row.id
    end
  end
  return { tried = tried, pushed = pushed }
end

return M
