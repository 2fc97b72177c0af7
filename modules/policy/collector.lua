-- policy/collector.lua — fetch 온통청년 policy records (URL or file),
-- normalise them (policy/normalize.lua) and upsert `policies`.
--
--   collector.run{ source = URL|FILE, dry_run = bool, page_size = 100,
--                  api_key = "...", progress = function(info) end }
--   → { collectLogId, fetched, inserted, updated, unchanged, skipped,
--       skippedDetails, version, changed = {ids}, error }   (raises on failure
--       after recording it in collect_logs)
--
-- Bookkeeping (migrations/0003_policies.sql):
--   * upsert by (source, external_id); content_hash is the SHA-256 of the
--     normalised fields, so a record whose source changed only in fields we
--     do not keep (inqCnt, the view counter) is "unchanged" and not written;
--   * an update writes one change_logs row per changed field, old → new as
--     JSON; the old value is the stored source record normalised again, so
--     the log compares like with like;
--   * each page is written in one transaction that also bumps
--     policy_set.version (when it changed anything); if the database rejects
--     the page, its records are retried one transaction each and the ones it
--     still rejects are skipped — a bad record never damages the stored
--     version of itself or of any other;
--   * one collect_logs row per run (status running → succeeded | failed);
--   * at the end NOTIFY CHANNEL with a JSON payload (see M.notify_payload).
--
-- URL sources page through getPlcy (pageNum/pageSize/rtnType=json, apiKeyNm
-- from ONTONG_API_KEY): each page has a timeout and bounded retries with
-- exponential backoff on transport errors, HTTP 429/5xx and resultCode 5xx;
-- other resultCodes (401 "인증키가 유효하지 않습니다") end the run at once,
-- since they come with HTTP 200.
local crypto    = require "lp.crypto"
local db        = require "lp.db"
local http      = require "lp.http"
local json      = require "lp.json"
local log       = require "lp.log"
local timer     = require "lp.timer"
local normalize = require "policy.normalize"

local M = {}

M.CHANNEL = "policies_changed"
M.MAX_NOTIFY_IDS = 200 -- NOTIFY payloads must stay under 8000 bytes
M.MAX_PAGES = 10000
M.WRITE_PARAMS = 4000 -- parameters per transaction (a file source is one big page)

local function env_number(name, default)
  return tonumber(os.getenv(name) or "") or default
end

local function fail(msg)
  error({ collect = true, message = msg }, 0)
end

-- ---- sources -----------------------------------------------------------------

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- A decoded getPlcy response → records, totCount; raises on an error page.
local function page_of(body, where)
  if type(body) ~= "table" then fail(where .. ": not a JSON object") end
  -- a capture wrapper ({request, response = {rawBody}}) around the body
  if type(body.response) == "table" and type(body.response.rawBody) == "string" then
    local inner = json.decode(body.response.rawBody)
    if inner == nil then fail(where .. ": response.rawBody is not JSON") end
    body = inner
  end
  if json.is_array(body) and #body > 0 then return body, #body end
  local code = tonumber(body.resultCode)
  if body.resultCode ~= nil and code ~= 200 then
    fail(string.format("%s: resultCode %s %s", where, tostring(body.resultCode),
      tostring(body.resultMessage or "")))
  end
  local result = type(body.result) == "table" and body.result or body
  local list = result.youthPolicyList
  if list == nil or list == json.null then list = {} end
  if type(list) ~= "table" then fail(where .. ": youthPolicyList is not a list") end
  local paging = type(result.pagging) == "table" and result.pagging or {}
  return list, tonumber(paging.totCount)
end

local function file_pages(path)
  local done = false
  return function()
    if done then return nil end
    done = true
    local f, err = io.open(path, "rb")
    if not f then fail("cannot read " .. path .. ": " .. tostring(err)) end
    local s = f:read("*a")
    f:close()
    local body = json.decode(s)
    if body == nil then fail(path .. ": not JSON") end
    local list, total = page_of(body, path)
    return list, { page = 1, pages = 1, total = total or #list }
  end
end

-- One page with retries. → decoded body
local function fetch_page(url, where)
  local retries = env_number("COLLECT_RETRIES", 3)
  local backoff = env_number("COLLECT_BACKOFF_MS", 1000)
  local timeout = env_number("COLLECT_TIMEOUT_MS", 30000)
  local last
  for attempt = 0, retries do
    if attempt > 0 then
      local wait = math.min(backoff * 2 ^ (attempt - 1), 30000)
      log.warn { msg = "collector retrying", page = where, attempt = attempt, wait_ms = wait, error = last }
      timer.sleep(wait)
    end
    local status, _, body = http.request {
      method = "GET", url = url, timeout_ms = timeout,
      connect_timeout_ms = math.min(10000, timeout),
      headers = { Accept = "application/json" },
    }
    if status == nil then
      last = tostring(body or _)
    elseif status == 429 or status >= 500 then
      last = "HTTP " .. status
    elseif status ~= 200 then
      fail(where .. ": HTTP " .. status)
    else
      local decoded = json.decode(body)
      if decoded == nil then
        last = "body is not JSON"
      elseif tonumber(decoded.resultCode) and tonumber(decoded.resultCode) >= 500 then
        last = "resultCode " .. decoded.resultCode
      else
        return decoded
      end
    end
  end
  fail(string.format("%s: gave up after %d attempts: %s", where, retries + 1, tostring(last)))
end

local function url_pages(base, page_size, api_key)
  local page, total, finished = 0, nil, false
  return function()
    if finished then return nil end
    page = page + 1
    if page > M.MAX_PAGES then fail("more than " .. M.MAX_PAGES .. " pages") end
    local sep = base:find("?", 1, true) and "&" or "?"
    local url = string.format("%s%sapiKeyNm=%s&pageNum=%d&pageSize=%d&rtnType=json", base, sep,
      urlencode(api_key or ""), page, page_size)
    local list, tot = page_of(fetch_page(url, "page " .. page), "page " .. page)
    total = tot or total
    if #list == 0 or total == nil or page * page_size >= total then finished = true end
    local pages = total and math.max(1, math.ceil(total / page_size)) or nil
    return list, { page = page, pages = pages, total = total }
  end
end

-- The source as logged: a URL without its query (the key never reaches logs).
local function source_ref(source)
  if source:match("^https?://") then return (source:gsub("%?.*$", "")) end
  return source
end

-- ---- writes ------------------------------------------------------------------

local COLS = { "source", "external_id" }
for _, f in ipairs(normalize.FIELDS) do COLS[#COLS + 1] = f end
COLS[#COLS + 1] = "raw"
COLS[#COLS + 1] = "content_hash"

-- $n as the column needs it: arrays arrive as JSON text.
local function placeholder(col, n)
  if normalize.ARRAY_FIELDS[col] then
    return string.format("ARRAY(SELECT jsonb_array_elements_text($%d::jsonb))", n)
  elseif col == "raw" then
    return string.format("$%d::jsonb", n)
  end
  return "$" .. n
end

local INSERT_SQL, UPDATE_SQL
do
  local ph, sets = {}, {}
  for i, c in ipairs(COLS) do ph[i] = placeholder(c, i) end
  INSERT_SQL = "INSERT INTO policies (" .. table.concat(COLS, ", ") .. ") VALUES ("
    .. table.concat(ph, ", ") .. ") RETURNING id"
  -- UPDATE: $1 = id, then every column but source/external_id
  local n = 1
  for i = 3, #COLS do
    n = n + 1
    sets[#sets + 1] = COLS[i] .. " = " .. placeholder(COLS[i], n)
  end
  UPDATE_SQL = "UPDATE policies SET " .. table.concat(sets, ", ") .. " WHERE id = $1"
end

local function array_json(t)
  if #t == 0 then return "[]" end
  return json.encode(t)
end

local function value_of(col, p, item)
  if col == "raw" then return json.encode(item.raw) end
  if col == "content_hash" then return item.hash end
  local v = p[col]
  if normalize.ARRAY_FIELDS[col] then return array_json(v or {}) end
  if v == nil then return db.null end
  return v
end

local function insert_stmt(item)
  local s = { INSERT_SQL }
  for i, c in ipairs(COLS) do s[i + 1] = value_of(c, item.p, item) end
  s.n = #COLS + 1 -- n counts the SQL too (db.batch), so NULL parameters survive
  return s
end

local function update_stmt(item)
  local s = { UPDATE_SQL, item.id }
  for i = 3, #COLS do s[#s + 1] = value_of(COLS[i], item.p, item) end
  s.n = #COLS -- the SQL, the id and every column but source/external_id
  return s
end

local function jsonb(v)
  if v == nil then return "null" end
  if type(v) == "table" and #v == 0 then return "[]" end
  return json.encode(v)
end

local function change_stmts(item, log_id)
  local out = {}
  for _, f in ipairs(item.changed) do
    out[#out + 1] = { "INSERT INTO change_logs (policy_id, collect_log_id, field, old_value, new_value) "
      .. "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)", item.id, log_id or db.null, f,
      jsonb(item.old[f]), jsonb(item.p[f]) }
  end
  return out
end

local BUMP_SQL = "UPDATE policy_set SET version = version + 1, changed_at = now() RETURNING version"

-- Writes the inserts/updates of `items` in one transaction, sent as one
-- pipeline (inserts, updates, their change_logs rows, the version bump).
-- → version, ids (in the order of items)
local function write(items, log_id)
  return db.tx(function(q)
    local list, at = {}, {}
    for i, item in ipairs(items) do
      if item.action == "insert" then
        list[#list + 1] = insert_stmt(item)
        at[i] = #list
      else
        list[#list + 1] = update_stmt(item)
        for _, c in ipairs(change_stmts(item, log_id)) do list[#list + 1] = c end
      end
    end
    list[#list + 1] = { BUMP_SQL }
    local results = q.batch(list)
    local ids = {}
    for i, item in ipairs(items) do
      ids[i] = at[i] and results[at[i]][1].id or item.id
    end
    return results[#list][1].version, ids
  end)
end

-- ---- a page ------------------------------------------------------------------

local function record_id(r, i)
  local id = type(r) == "table" and normalize.text(r.plcyNo)
  return id or ("#" .. i)
end

local write_chunk

local function process(records, ctx)
  local by_id, order = {}, {}
  for i, r in ipairs(records) do
    ctx.fetched = ctx.fetched + 1
    local ok, p = pcall(normalize.record, r)
    if not ok then
      local reason = type(p) == "table" and p.reason or tostring(p)
      ctx.skip(record_id(r, ctx.fetched), reason)
    else
      local item = { p = p, raw = r, hash = crypto.hex(crypto.sha256(normalize.hash_input(p))) }
      if by_id[p.external_id] then
        ctx.unchanged = ctx.unchanged + 1 -- the same policy twice in one run: the later wins
      else
        order[#order + 1] = p.external_id
      end
      by_id[p.external_id] = item
    end
  end
  if #order == 0 then return end
  local rows = db.query([[
    SELECT id, external_id, content_hash, raw FROM policies
     WHERE source = $1 AND external_id IN (SELECT jsonb_array_elements_text($2::jsonb))]],
    normalize.SOURCE, json.encode(order))
  local existing = {}
  for _, row in ipairs(rows) do existing[row.external_id] = row end
  local writes = {}
  for _, ext in ipairs(order) do
    local item, row = by_id[ext], existing[ext]
    if row == nil then
      item.action = "insert"
      writes[#writes + 1] = item
    elseif row.content_hash == item.hash then
      ctx.unchanged = ctx.unchanged + 1
    else
      item.action, item.id = "update", row.id
      local ok, old = pcall(normalize.record, row.raw)
      item.old = ok and old or {}
      item.changed = normalize.diff(item.old, item.p)
      writes[#writes + 1] = item
    end
  end
  if #writes == 0 then return end
  if ctx.dry_run then
    for _, item in ipairs(writes) do
      if item.action == "insert" then ctx.inserted = ctx.inserted + 1 else ctx.updated = ctx.updated + 1 end
    end
    return
  end
  local function done(items, version, ids)
    ctx.version = version
    for i, item in ipairs(items) do
      if item.action == "insert" then ctx.inserted = ctx.inserted + 1 else ctx.updated = ctx.updated + 1 end
      ctx.changed[#ctx.changed + 1] = ids[i]
    end
  end
  -- chunks bounded by their parameter count: db.batch keeps every
  -- parameter on the Lua stack until the pipeline returns
  local chunk, params = {}, 0
  for _, item in ipairs(writes) do
    local n = #COLS + 5 * #(item.changed or {})
    if #chunk > 0 and params + n > M.WRITE_PARAMS then
      write_chunk(chunk, ctx, done)
      chunk, params = {}, 0
    end
    chunk[#chunk + 1] = item
    params = params + n
  end
  if #chunk > 0 then write_chunk(chunk, ctx, done) end
end

-- Writes one chunk in one transaction; if the database refuses it, one
-- record at a time, skipping the ones it still refuses.
write_chunk = function(writes, ctx, done)
  local ok, version, ids = pcall(write, writes, ctx.log_id)
  if ok then return done(writes, version, ids) end
  if type(version) ~= "table" or version.code ~= "db_error" then error(version, 0) end
  for _, item in ipairs(writes) do
    if item.action == "insert" then item.id = nil end
    local ok1, v1, ids1 = pcall(write, { item }, ctx.log_id)
    if ok1 then
      done({ item }, v1, ids1)
    elseif type(v1) == "table" and v1.code == "db_error" then
      ctx.skip(item.p.external_id, "rejected by the database: " .. tostring(v1.message))
    else
      error(v1, 0)
    end
  end
end

-- ---- the run -----------------------------------------------------------------

-- The NOTIFY payload: {"version": <policy_set.version>, "collectLogId": n,
-- "changed": [policy ids inserted or updated] | null when more than
-- MAX_NOTIFY_IDS (then read change_logs / updated_at), "changedCount": n}.
function M.notify_payload(ctx)
  local changed = json.null
  if #ctx.changed <= M.MAX_NOTIFY_IDS then changed = json.array(ctx.changed) end
  return json.encode { version = ctx.version, collectLogId = ctx.log_id, changed = changed,
                       changedCount = #ctx.changed }
end

function M.run(opts)
  local source = assert(opts.source, "source required")
  local is_url = source:match("^https?://") ~= nil
  local ctx = {
    fetched = 0, inserted = 0, updated = 0, unchanged = 0, skipped = 0,
    skipped_details = {}, changed = {}, dry_run = opts.dry_run and true or false,
  }
  function ctx.skip(id, reason)
    ctx.skipped = ctx.skipped + 1
    ctx.skipped_details[#ctx.skipped_details + 1] = { externalId = id, reason = reason }
    log.warn { msg = "policy record skipped", externalId = id, reason = reason }
  end
  ctx.log_id = db.query([[INSERT INTO collect_logs (source, source_ref, dry_run)
    VALUES ($1, $2, $3) RETURNING id]], normalize.SOURCE, source_ref(source), ctx.dry_run)[1].id
  ctx.version = db.query("SELECT version FROM policy_set")[1].version

  local pages = is_url and url_pages(source, opts.page_size or 100, opts.api_key)
                or file_pages(source)
  local ok, err = pcall(function()
    while true do
      local list, info = pages()
      if list == nil then break end
      process(list, ctx)
      if opts.progress then
        opts.progress { page = info.page, pages = info.pages, total = info.total, ctx = ctx }
      end
    end
  end)
  local errmsg
  if not ok then
    errmsg = type(err) == "table" and (err.message or tostring(err)) or tostring(err)
  end
  db.query([[UPDATE collect_logs SET status = $2, finished_at = now(), fetched = $3,
      inserted = $4, updated = $5, unchanged = $6, skipped = $7, skipped_details = $8::jsonb,
      error = $9, policy_set_version = $10 WHERE id = $1]],
    ctx.log_id, errmsg and "failed" or "succeeded", ctx.fetched, ctx.inserted, ctx.updated,
    ctx.unchanged, ctx.skipped,
    #ctx.skipped_details > 0 and json.encode(ctx.skipped_details) or "[]",
    errmsg or db.null, ctx.version)
  if not ctx.dry_run then
    db.query("SELECT pg_notify($1, $2)", M.CHANNEL, M.notify_payload(ctx))
  end
  local result = {
    collectLogId = ctx.log_id, fetched = ctx.fetched, inserted = ctx.inserted,
    updated = ctx.updated, unchanged = ctx.unchanged, skipped = ctx.skipped,
    skippedDetails = ctx.skipped_details, version = ctx.version, changed = ctx.changed,
    dryRun = ctx.dry_run, error = errmsg,
  }
  log.info { msg = "collect finished", collect_log = ctx.log_id, fetched = ctx.fetched,
             inserted = ctx.inserted, updated = ctx.updated, unchanged = ctx.unchanged,
             skipped = ctx.skipped, version = ctx.version, error = errmsg }
  return result
end

return M
