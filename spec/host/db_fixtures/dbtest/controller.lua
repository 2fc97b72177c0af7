-- Test-only routes for spec/host/db_spec.lua (lp.db through the real host).
local db      = require "lp.db"
local json    = require "lp.json"
local problem = require "shared.problem"

-- NOTIFYs received by this generation, in order.
local notes = {}
db.listen("lp_spec_channel", function(payload, channel)
  notes[#notes + 1] = { payload = payload, channel = channel }
end)

-- Describes a value precisely: JSON alone cannot tell nil from null.
local function describe(v)
  if v == nil then return { type = "nil" } end
  if v == json.null then return { type = "null" } end
  return { type = type(v), value = v }
end

return function(routes)
  routes:post("/t/db/setup", function()
    db.query("DROP TABLE IF EXISTS lp_spec_rt, lp_spec_tx, lp_spec_uniq")
    db.query("CREATE TABLE lp_spec_rt (id serial PRIMARY KEY, v text)")
    db.query("CREATE TABLE lp_spec_tx (k text NOT NULL)")
    db.query("CREATE TABLE lp_spec_uniq (email text CONSTRAINT lp_spec_uniq_email UNIQUE)")
    return 204
  end)

  routes:get("/t/db/types", function()
    local rows, affected = db.query([==[
      SELECT 7::int2 AS i2, (-2147483648)::int4 AS i4,
             9007199254740992::int8 AS i8_edge, 9007199254740993::int8 AS i8_big,
             (-9223372036854775808)::int8 AS i8_min, 1500000::int8 AS won,
             12.50::numeric AS num_frac, 123456789012::numeric AS num_int,
             (SELECT sum(y) FROM (VALUES (1::bigint), (2::bigint)) w(y)) AS num_sum, 'NaN'::numeric AS num_nan,
             1.5::float8 AS f8, 0.25::float4 AS f4,
             true AS yes, false AS no,
             'text'::text AS t, 'vc'::varchar AS vc, 'ab'::char(3) AS bp,
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
             DATE '2026-11-28' AS d,
             TIMESTAMPTZ '2026-11-28 19:00:00+09' AS ts,
             TIMESTAMPTZ '2026-11-28 10:00:00.25+00' AS ts_frac,
             TIMESTAMP '2026-11-28 10:00:00' AS ts_local,
             '{"a":[1,null,"x"],"b":{"c":true}}'::jsonb AS jb,
             '[1,2]'::json AS j, 'null'::jsonb AS jnull,
             ARRAY[1,NULL,3]::int4[] AS a_i4, ARRAY[9007199254740993]::int8[] AS a_i8,
             ARRAY['a b', 'x"y', NULL, 'NULL', 'c,d', '{}', 'back\slash']::text[] AS a_text,
             ARRAY[[1,2],[3,4]] AS a_2d, '{}'::int[] AS a_empty,
             ARRAY[true,false] AS a_bool, ARRAY[DATE '2026-01-02'] AS a_date,
             ARRAY[TIMESTAMPTZ '2026-11-28 10:00:00+00'] AS a_ts,
             ARRAY['{"k":1}'::jsonb] AS a_jsonb,
             NULL::text AS nothing, '1 day'::interval AS iv
        FROM (VALUES (1::bigint), (2::bigint)) v(x)]==])
    local row = rows[1]
    local out = {}
    for _, k in ipairs({ "i2", "i4", "i8_edge", "i8_big", "i8_min", "won", "num_frac",
                         "num_int", "num_sum", "num_nan", "f8", "f4", "yes", "no", "t", "vc",
                         "bp", "u", "d", "ts", "ts_frac", "ts_local", "jb", "j", "jnull",
                         "a_i4", "a_i8", "a_text", "a_2d", "a_empty", "a_bool", "a_date", "a_ts",
                         "a_jsonb", "nothing", "iv" }) do
      out[k] = describe(row[k])
    end
    out.nrows = #rows
    -- lp.json keeps 14 significant digits: compare big integers as text
    out.i8_edge_text = string.format("%.17g", row.i8_edge)
    out.affected = affected
    out.a_i4_second = describe(row.a_i4[2])
    out.a_text_third = describe(row.a_text[3])
    out.jb_a_second = describe(row.jb.a[2])
    return 200, out
  end)

  routes:get("/t/db/empty", function()
    local rows, affected = db.query("SELECT 1 AS x WHERE false")
    return 200, { rows = rows, affected = affected }
  end)

  routes:post("/t/db/command", function()
    local rows, affected = db.query("UPDATE lp_spec_rt SET v = v WHERE false")
    return 200, { rows = rows, affected = affected }
  end)

  routes:post("/t/db/params", function(req)
    local b = req:json()
    local rows = db.query([[SELECT $1::text AS s, $2::int8 AS i, $3::float8 AS f, $4::bool AS b,
                                   $5::text IS NULL AS n, $6::jsonb AS j, $7::text AS big,
                                   $8::text AS neg, $9::text AS null2]],
                          b.s, b.i, b.f, b.b, nil, { k = b.s, list = { 1, 2 } }, 2 ^ 60, -3,
                          json.null)
    local r = rows[1]
    return 200, { s = r.s, i = r.i, f = r.f, b = r.b, n = r.n, j = r.j, big = r.big,
                  neg = r.neg, null2 = describe(r.null2) }
  end)

  routes:post("/t/db/roundtrip", function(req)
    local values = req:json().values
    local back, counts = {}, {}
    for i, v in ipairs(values) do
      local rows = db.query("INSERT INTO lp_spec_rt (v) VALUES ($1) RETURNING id", v)
      back[i] = db.query("SELECT v FROM lp_spec_rt WHERE id = $1", rows[1].id)[1].v
      counts[i] = db.query("SELECT count(*) AS n FROM lp_spec_rt WHERE v = $1", v)[1].n
    end
    local total = db.query("SELECT count(*) AS n FROM lp_spec_rt")[1].n
    return 200, { back = back, counts = counts, total = total }
  end)

  routes:post("/t/db/tx", function(req)
    local mode = req.query.mode
    local key = req.query.key
    if mode == "commit" then
      local n = db.tx(function(q)
        q.query("INSERT INTO lp_spec_tx (k) VALUES ($1)", key)
        q.query("INSERT INTO lp_spec_tx (k) VALUES ($1)", key)
        return q.query("SELECT count(*) AS n FROM lp_spec_tx WHERE k = $1", key)[1].n
      end)
      return 200, { inside = n }
    elseif mode == "lua_error" then
      db.tx(function(q)
        q.query("INSERT INTO lp_spec_tx (k) VALUES ($1)", key)
        error("boom after insert")
      end)
    elseif mode == "sql_error" then
      local ok, err = pcall(db.tx, function(q)
        q.query("INSERT INTO lp_spec_tx (k) VALUES ($1)", key)
        q.query("INSERT INTO lp_spec_tx (k) VALUES (NULL)")
      end)
      return 200, { ok = ok, code = err.code, sqlstate = err.sqlstate }
    elseif mode == "swallowed" then
      local ok, err = pcall(db.tx, function(q)
        q.query("INSERT INTO lp_spec_tx (k) VALUES ($1)", key)
        pcall(q.query, "SELECT 1/0")
        return "fine"
      end)
      return 200, { ok = ok, code = err.code, sqlstate = err.sqlstate }
    elseif mode == "nested" then
      local ok, err = pcall(db.tx, function()
        return db.tx(function() end)
      end)
      return 200, { ok = ok, err = tostring(err) }
    end
    return 400
  end)

  routes:get("/t/db/tx_count", function(req)
    return 200, db.query("SELECT count(*) AS n FROM lp_spec_tx WHERE k = $1", req.query.key)[1]
  end)

  routes:post("/t/db/users", function(req)
    local email = req:json().email
    local ok, err = pcall(db.query, "INSERT INTO lp_spec_uniq (email) VALUES ($1)", email)
    if not ok then
      if type(err) == "table" and err.sqlstate == "23505" then
        problem.raise(409, "conflict", "email taken (" .. tostring(err.constraint) .. ")")
      end
      error(err, 0)
    end
    return 201, { email = email }
  end)

  routes:get("/t/db/sql_error", function()
    db.query("SELECT * FROM no_such_table_here")
  end)

  routes:get("/t/db/batch", function()
    local results, affected = db.batch({
      { "SELECT $1::int AS a", 1 },
      { "SELECT $1::text IS NULL AS isnull", json.null, n = 2 },
      { "SELECT g FROM generate_series(1, 3) g" },
    })
    local ok, err = pcall(db.batch, { { "SELECT 1" }, { "SELECT 1/0" }, { "SELECT 2" } })
    return 200, { results = results, affected = affected, ok = ok, index = err.index,
                  sqlstate = err.sqlstate }
  end)

  -- more parameters than the statement takes: an ordinary SQL error (08P01)
  routes:get("/t/db/bind_mismatch", function()
    local ok1, e1 = pcall(db.query, "SELECT 1", json.null)
    local ok2, e2 = pcall(db.batch, { { "SELECT 1" }, { "SELECT $1::int AS v", n = 1 } })
    local rows = db.query("SELECT 3 AS v")
    return 200, { ok1 = ok1, code1 = e1.code, sqlstate1 = e1.sqlstate, ok2 = ok2,
                  code2 = e2.code, sqlstate2 = e2.sqlstate, after = rows[1].v }
  end)

  routes:get("/t/db/sleep", function(req)
    db.query("SELECT pg_sleep($1::float8 / 1000)", tonumber(req.query.ms) or 10)
    return 200, { slept = true }
  end)

  routes:get("/t/db/one", function(req)
    local rows = db.query("SELECT $1::int AS n", tonumber(req.query.n) or 1)
    return 200, rows[1]
  end)

  routes:get("/t/db/div", function(req)
    local rows = db.query("SELECT $1::int / ($1::int % 7) AS n", tonumber(req.query.n))
    return 200, rows[1]
  end)

  routes:get("/t/db/stats", function()
    return 200, db.stats()
  end)

  routes:post("/t/db/notify", function(req)
    db.query("SELECT pg_notify('lp_spec_channel', $1)", req.query.payload)
    return 204
  end)

  routes:get("/t/db/notes", function()
    return 200, { notes = json.array(notes) }
  end)

  routes:post("/t/db/kill_listener", function()
    local rows = db.query([[SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                             WHERE query LIKE 'LISTEN %lp_spec_channel%']])
    return 200, rows[1]
  end)
end
