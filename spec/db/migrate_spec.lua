-- spec/db/migrate_spec.lua — `lifeplan migrate` and the schema it creates,
-- against the real PostgreSQL of DATABASE_URL. Every test works in databases
-- of its own (CREATE DATABASE test_migrate_*), dropped at the end.

local ROOT = os.getenv("LIFEPLAN_ROOT") or assert(io.popen("pwd")):read("*l")
local BIN = os.getenv("LIFEPLAN_BIN") or (ROOT .. "/build/lifeplan")
local BASE_URL = assert(os.getenv("DATABASE_URL"), "DATABASE_URL must point at a test server")
local MIGRATIONS = ROOT .. "/migrations"

-- The design's eleven tables (DESIGN.md), which every later module relies on.
local DESIGN_TABLES = {
  "users", "user_profiles", "transactions", "budgets", "policies", "change_logs",
  "collect_logs", "chat_sessions", "chat_messages", "user_policies", "notifications",
}

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command; returns its output (stdout and stderr) and exit code.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), rc
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
  return path
end

local function write(path, content)
  local f = assert(io.open(path, "w"))
  f:write(content)
  f:close()
end

local function url_for(db)
  return (BASE_URL:gsub("/[^/?]*(%??[^/]*)$", "/" .. db .. "%1"))
end

-- psql on a database: returns trimmed output and exit code.
local function psql(url, sql)
  local file = tmpfile(sql)
  local out, rc = sh("psql -X -A -t -q -v ON_ERROR_STOP=1 -d " .. sh_quote(url) .. " -f " .. file)
  os.remove(file)
  return (out:gsub("%s+$", "")), rc
end

local function must(url, sql)
  local out, rc = psql(url, sql)
  assert(rc == 0, "SQL failed: " .. sql .. "\n" .. out)
  return out
end

local created = {}
local seq = 0
local function fresh_db()
  seq = seq + 1
  local name = string.format("test_migrate_%d_%d", os.time() % 100000, seq)
  must(BASE_URL, "DROP DATABASE IF EXISTS " .. name)
  must(BASE_URL, "CREATE DATABASE " .. name)
  created[#created + 1] = name
  return url_for(name)
end

local function migrate(url, dir, args)
  return sh("DATABASE_URL=" .. sh_quote(url) .. " MIGRATIONS_DIR=" .. sh_quote(dir or MIGRATIONS)
    .. " " .. BIN .. " migrate " .. (args or ""))
end

-- A private copy of migrations/ that a test may edit.
local function copy_migrations()
  local dir = assert(io.popen("mktemp -d /tmp/lifeplan-spec.XXXXXX")):read("*l")
  local _, rc = sh("cp " .. MIGRATIONS .. "/*.sql " .. dir)
  assert(rc == 0)
  return dir
end

local function count_lines(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

local function migration_files()
  local out = sh("ls " .. MIGRATIONS .. " | grep -c '^[0-9][0-9][0-9][0-9]_.*\\.sql$'")
  return tonumber(out:match("%d+"))
end

teardown(function()
  for _, name in ipairs(created) do
    psql(BASE_URL, "DROP DATABASE IF EXISTS " .. name .. " WITH (FORCE)")
  end
end)

describe("lifeplan migrate", function()
  it("applies every migration in order and creates the design's tables", function()
    local url = fresh_db()
    local out, rc = migrate(url)
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("applied 0001_users.sql", 1, true))
    assert.is_true(out:find("0001_users.sql", 1, true) < out:find("0002_ledger.sql", 1, true))
    for _, t in ipairs(DESIGN_TABLES) do
      assert.are.equal("t", must(url, "SELECT to_regclass('public." .. t .. "') IS NOT NULL"), t)
    end
    assert.are.equal(tostring(migration_files()), must(url, "SELECT count(*) FROM schema_migrations"))
    assert.are.equal(64, #must(url, "SELECT checksum FROM schema_migrations WHERE name = '0001_users.sql'"))
    assert.are.equal("pg_trgm", must(url, "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'"))
  end)

  it("does nothing when run again", function()
    local url = fresh_db()
    assert.are.equal(0, select(2, migrate(url)))
    local before = must(url, "SELECT string_agg(name || applied_at, ',' ORDER BY name) FROM schema_migrations")
    local out, rc = migrate(url)
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find("schema is up to date", 1, true), out)
    assert.is_falsy(out:find("applied 0", 1, true), out)
    assert.are.equal(before, must(url, "SELECT string_agg(name || applied_at, ',' ORDER BY name) FROM schema_migrations"))
  end)

  it("--status lists pending, then applied migrations", function()
    local url = fresh_db()
    local out, rc = migrate(url, nil, "--status")
    assert.are.equal(0, rc, out)
    assert.are.equal(migration_files(), count_lines(out, "pending%s+%d%d%d%d_"))
    assert.are.equal("f", must(url, "SELECT to_regclass('users') IS NOT NULL"))
    migrate(url)
    out, rc = migrate(url, nil, "--status")
    assert.are.equal(0, rc, out)
    assert.are.equal(migration_files(), count_lines(out, "applied%s+%d%d%d%d_"))
    assert.are.equal(0, count_lines(out, "pending"))
  end)

  it("rejects unknown options with a usage message", function()
    local out, rc = migrate(fresh_db(), nil, "--frobnicate")
    assert.are.equal(2, rc)
    assert.is_truthy(out:find("usage: lifeplan migrate", 1, true))
  end)

  it("refuses to run when an applied file was changed", function()
    local url, dir = fresh_db(), copy_migrations()
    assert.are.equal(0, select(2, migrate(url, dir)))
    local f = assert(io.open(dir .. "/0002_ledger.sql", "a"))
    f:write("\n-- an innocent-looking edit\n")
    f:close()
    write(dir .. "/0900_new.sql", "CREATE TABLE added_later (id int);\n")
    local out, rc = migrate(url, dir)
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("0002_ledger.sql was changed after it was applied", 1, true), out)
    assert.are.equal("f", must(url, "SELECT to_regclass('added_later') IS NOT NULL"))
    out, rc = migrate(url, dir, "--status")
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("changed%s+0002_ledger.sql"), out)
    assert.is_truthy(out:find("pending%s+0900_new.sql"), out)
    sh("rm -rf " .. dir)
  end)

  it("refuses to run when an applied file is missing", function()
    local url, dir = fresh_db(), copy_migrations()
    assert.are.equal(0, select(2, migrate(url, dir)))
    os.remove(dir .. "/0004_chat.sql")
    local out, rc = migrate(url, dir)
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("0004_chat.sql was applied but is missing", 1, true), out)
    sh("rm -rf " .. dir)
  end)

  it("refuses a new file numbered before an applied one", function()
    local url, dir = fresh_db(), copy_migrations()
    write(dir .. "/0900_later.sql", "SELECT 1;\n")
    assert.are.equal(0, select(2, migrate(url, dir)))
    write(dir .. "/0800_sneaky.sql", "CREATE TABLE sneaky (id int);\n")
    local out, rc = migrate(url, dir)
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("0800_sneaky.sql is new but sorts before 0900_later.sql", 1, true), out)
    assert.are.equal("f", must(url, "SELECT to_regclass('sneaky') IS NOT NULL"))
    sh("rm -rf " .. dir)
  end)

  it("applies nothing of a failing migration and reports its file and line", function()
    local url, dir = fresh_db(), copy_migrations()
    write(dir .. "/0900_broken.sql",
      "-- 잘못된 마이그레이션\nCREATE TABLE half_done (id int);\n\nCREATE TABLE bad (x no_such_type);\n")
    local out, rc = migrate(url, dir)
    assert.are.equal(1, rc, out)
    assert.is_truthy(out:find("0900_broken.sql:4:", 1, true), out)
    assert.are.equal("f", must(url, "SELECT to_regclass('half_done') IS NOT NULL"))
    assert.are.equal("0", must(url, "SELECT count(*) FROM schema_migrations WHERE name = '0900_broken.sql'"))
    -- the migrations before it were applied and recorded
    assert.are.equal("t", must(url, "SELECT to_regclass('notifications') IS NOT NULL"))
    write(dir .. "/0900_broken.sql", "CREATE TABLE half_done (id int);\n")
    out, rc = migrate(url, dir)
    assert.are.equal(0, rc, out)
    assert.are.equal("t", must(url, "SELECT to_regclass('half_done') IS NOT NULL"))
    sh("rm -rf " .. dir)
  end)

  it("is safe when two processes migrate the same database at once", function()
    local url, dir = fresh_db(), copy_migrations()
    -- A slow first migration keeps the lock held while the other process
    -- arrives, so the two really contend (correctness does not depend on it).
    write(dir .. "/0000_slow.sql", "SELECT pg_sleep(0.5);\n")
    local a, b = os.tmpname(), os.tmpname()
    local env = "DATABASE_URL=" .. sh_quote(url) .. " MIGRATIONS_DIR=" .. sh_quote(dir) .. " "
    local _, rc = sh(env .. BIN .. " migrate >" .. a .. " 2>&1 & p1=$!; "
      .. env .. BIN .. " migrate >" .. b .. " 2>&1 & p2=$!; "
      .. "wait $p1 || exit 11; wait $p2 || exit 12")
    local out = assert(io.open(a)):read("*a") .. assert(io.open(b)):read("*a")
    os.remove(a)
    os.remove(b)
    assert.are.equal(0, rc, out)
    assert.are.equal(1, count_lines(out, "applied 0001_users.sql"), out)
    assert.are.equal(1, count_lines(out, "schema is up to date"), out)
    assert.are.equal(tostring(migration_files() + 1), must(url, "SELECT count(*) FROM schema_migrations"))
    sh("rm -rf " .. dir)
  end)
end)

describe("schema", function()
  local url
  local n = 0

  setup(function()
    url = fresh_db()
    local out, rc = migrate(url)
    assert(rc == 0, out)
  end)

  -- A new user; returns its id.
  local function user()
    n = n + 1
    return must(url, string.format(
      "INSERT INTO users (email, password_hash) VALUES ('u%d@example.com', 'h') RETURNING id", n))
  end

  local function policy(title, extra)
    n = n + 1
    return must(url, string.format([[
      INSERT INTO policies (source, external_id, title, category, keywords, description,
                            raw, content_hash %s)
      VALUES ('ontong', 'P%d', %s, 'housing', '{월세,주거}', '무주택 청년에게 월세를 지원합니다',
              '{}', 'h' %s) RETURNING id]],
      extra and (", " .. extra[1]) or "", n, title, extra and (", " .. extra[2]) or ""))
  end

  local function rejects(sql, constraint)
    local out, rc = psql(url, sql)
    assert.are_not.equal(0, rc, "accepted: " .. sql)
    assert.is_truthy(out:find(constraint, 1, true), out)
  end

  it("rejects zero and negative amounts", function()
    local u = user()
    for _, amount in ipairs { "0", "-1000" } do
      rejects(string.format("INSERT INTO transactions (user_id, type, amount, category, occurred_on) "
        .. "VALUES (%s, 'expense', %s, 'food', '2026-10-01')", u, amount), "transactions_amount_check")
    end
    rejects(string.format("INSERT INTO budgets (user_id, month, amount) VALUES (%s, '2026-10-01', -1)", u),
      "budgets_amount_check")
    must(url, string.format("INSERT INTO transactions (user_id, type, amount, category, occurred_on) "
      .. "VALUES (%s, 'expense', 9000000000000, 'food', '2026-10-01')", u))
  end)

  it("rejects unknown categories and categories of the other type", function()
    local u = user()
    local ins = "INSERT INTO transactions (user_id, type, amount, category, occurred_on) "
      .. "VALUES (" .. u .. ", '%s', 1000, '%s', '2026-10-01')"
    rejects(ins:format("expense", "casino"), "transactions_category_check")
    rejects(ins:format("expense", "salary"), "transactions_category_check")
    rejects(ins:format("income", "food"), "transactions_category_check")
    rejects(ins:format("gift", "etc"), "violates check constraint")
    must(url, ins:format("income", "etc_income"))
    must(url, ins:format("expense", "etc"))
    rejects(string.format("INSERT INTO budgets (user_id, month, category, amount) "
      .. "VALUES (%s, '2026-10-01', 'salary', 1000)", u), "budgets_category_check")
  end)

  it("rejects unknown profile, notification, chat and policy codes", function()
    local u = user()
    rejects("INSERT INTO user_profiles (user_id, employment_status) VALUES (" .. u .. ", 'pirate')",
      "user_profiles_employment_status_check")
    rejects("INSERT INTO user_profiles (user_id, special_status) VALUES (" .. u .. ", '{woman,wizard}')",
      "user_profiles_special_status_check")
    rejects("INSERT INTO user_profiles (user_id, region_code) VALUES (" .. u .. ", '1168')",
      "user_profiles_region_code_check")
    must(url, "INSERT INTO user_profiles (user_id, region_code, special_status, interests) VALUES ("
      .. u .. ", '11680', '{woman}', '{housing,jobs}')")
    rejects("INSERT INTO notifications (user_id, type, title, body, dedupe_key) VALUES ("
      .. u .. ", 'spam', 't', 'b', 'k')", "notifications_type_check")
    rejects("INSERT INTO policies (source, external_id, title, category, raw, content_hash) "
      .. "VALUES ('ontong', 'X1', 't', 'lottery', '{}', 'h')", "policies_category_check")
    rejects("INSERT INTO policies (source, external_id, title, category, region_codes, raw, content_hash) "
      .. "VALUES ('ontong', 'X2', 't', 'jobs', '{11680,123}', '{}', 'h')", "policies_region_codes_check")
    rejects("INSERT INTO policies (source, external_id, title, category, income_kind, raw, content_hash) "
      .. "VALUES ('ontong', 'X3', 't', 'jobs', 'median', '{}', 'h')", "policies_income_rule_check")
    local s = must(url, "INSERT INTO chat_sessions (user_id) VALUES (" .. u .. ") RETURNING id")
    rejects("INSERT INTO chat_messages (session_id, user_id, role, content) VALUES ("
      .. s .. ", " .. u .. ", 'system', 'hi')", "chat_messages_role_check")
  end)

  it("treats emails that differ only in case as the same", function()
    must(url, "INSERT INTO users (email, password_hash) VALUES ('Kim.Minji@Example.com', 'h')")
    rejects("INSERT INTO users (email, password_hash) VALUES ('kim.minji@EXAMPLE.COM', 'h')",
      "users_email_lower_key")
    assert.are.equal("Kim.Minji@Example.com",
      must(url, "SELECT email FROM users WHERE lower(email) = lower('KIM.MINJI@example.com')"))
  end)

  it("keeps one budget line per user, month and category, the overall (NULL) line included", function()
    local u = user()
    local ins = "INSERT INTO budgets (user_id, month, category, amount) VALUES (" .. u .. ", '2026-10-01', %s, %d)"
    must(url, ins:format("NULL", 500000))
    must(url, ins:format("'food'", 200000))
    must(url, ins:format("'cafe'", 50000))
    rejects(ins:format("NULL", 600000), "budgets_user_month_category_key")
    rejects(ins:format("'food'", 1), "budgets_user_month_category_key")
    must(url, ins:format("NULL", 700000) .. " ON CONFLICT (user_id, month, category) DO UPDATE SET amount = excluded.amount")
    assert.are.equal("3|700000", must(url, "SELECT count(*), max(amount) FILTER (WHERE category IS NULL) "
      .. "FROM budgets WHERE user_id = " .. u))
    must(url, "INSERT INTO budgets (user_id, month, category, amount) VALUES (" .. u .. ", '2026-11-01', NULL, 1)")
    rejects("INSERT INTO budgets (user_id, month, amount) VALUES (" .. u .. ", '2026-11-15', 1)", "budgets_month_check")
  end)

  it("keeps one favourite per user and policy and one notification per dedupe key", function()
    local u, p = user(), policy("'청년 전세자금 대출'")
    must(url, "INSERT INTO user_policies (user_id, policy_id) VALUES (" .. u .. ", " .. p .. ")")
    rejects("INSERT INTO user_policies (user_id, policy_id) VALUES (" .. u .. ", " .. p .. ")", "user_policies_pkey")
    local ins = "INSERT INTO notifications (user_id, type, title, body, dedupe_key) VALUES ("
      .. u .. ", 'policy_match', '새 정책', '본문', 'policy_match:" .. p .. "')"
    must(url, ins)
    assert.are.equal("", must(url, ins .. " ON CONFLICT (user_id, dedupe_key) DO NOTHING RETURNING id"))
    rejects(ins, "notifications_user_dedupe_key")
    local other = user()
    must(url, (ins:gsub("VALUES %(" .. u, "VALUES (" .. other)))
  end)

  it("deletes everything of a user with the user, and nothing of anyone else", function()
    local u, keep = user(), user()
    local p = policy("'청년도약계좌'")
    for _, id in ipairs { u, keep } do
      must(url, string.format([[
        INSERT INTO user_profiles (user_id, birth_date) VALUES (%s, '2000-01-01');
        INSERT INTO transactions (user_id, type, amount, category, occurred_on)
          VALUES (%s, 'expense', 1000, 'food', '2026-10-01');
        INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES (%s, 'k1', 'abc');
        INSERT INTO budgets (user_id, month, amount) VALUES (%s, '2026-10-01', 100000);
        WITH s AS (INSERT INTO chat_sessions (user_id, title) VALUES (%s, '월세 지원') RETURNING id)
          INSERT INTO chat_messages (session_id, user_id, role, content) SELECT id, %s, 'user', '안녕' FROM s;
        INSERT INTO user_policies (user_id, policy_id) VALUES (%s, %s);
        INSERT INTO notifications (user_id, type, title, body, dedupe_key)
          VALUES (%s, 'budget', '예산', '80%%', 'budget:2026-10:total:80');]],
        id, id, id, id, id, id, id, p, id))
    end
    local counts = [[SELECT (SELECT count(*) FROM user_profiles WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM transactions WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM idempotency_keys WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM budgets WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM chat_sessions WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM chat_messages WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM user_policies WHERE user_id = %s) || ',' ||
      (SELECT count(*) FROM notifications WHERE user_id = %s)]]
    local function of(id) return must(url, counts:gsub("%%s", id)) end
    assert.are.equal("1,1,1,1,1,1,1,1", of(u))
    must(url, "DELETE FROM users WHERE id = " .. u)
    assert.are.equal("0,0,0,0,0,0,0,0", of(u))
    assert.are.equal("1,1,1,1,1,1,1,1", of(keep))
    assert.are.equal("1", must(url, "SELECT count(*) FROM policies WHERE id = " .. p))
  end)

  it("finds policies by Korean substring through the trigram index", function()
    local p = policy("'서울시 청년월세 특별지원'")
    local q = "SELECT id FROM policies WHERE search_text ILIKE '%%' || %s || '%%' ORDER BY id"
    assert.are.equal(p, must(url, q:format("'청년월세 특별'")))
    assert.is_truthy(must(url, q:format("'무주택 청년'")):find(p, 1, true))
    assert.are.equal("", must(url, q:format("'월세'' OR 1=1 --'")))
    local plan = must(url, "SET enable_seqscan = off; EXPLAIN " .. q:format("'청년월세'"))
    assert.is_truthy(plan:find("policies_search_trgm_idx", 1, true), plan)
  end)

  it("derives a policy's status and always_open from its application period", function()
    local p = policy("'상시 모집 정책'", { "apply_period", "'always'" })
    assert.are.equal("t", must(url, "SELECT always_open FROM policies WHERE id = " .. p))
    assert.are.equal("open|upcoming|closed|closed|open", must(url, [[SELECT
      lp_policy_status('fixed', '2026-10-01', '2026-10-31', '2026-10-31') || '|' ||
      lp_policy_status('fixed', '2026-11-01', '2026-11-30', '2026-10-31') || '|' ||
      lp_policy_status('fixed', '2026-10-01', '2026-10-30', '2026-10-31') || '|' ||
      lp_policy_status('closed', NULL, NULL, '2026-10-31') || '|' ||
      lp_policy_status('always', NULL, NULL, '2026-10-31')]]))
    assert.are.equal("1", must(url, "SELECT version + 1 FROM policy_set"))
  end)
end)
