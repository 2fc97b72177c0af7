-- spec/policy/support.lua — what the policy specs share: running the
-- collector, a local 온통청년 stand-in (ontong_server.lua), records, users,
-- and reading the database with psql.
local H      = require "spec.helpers.server"
local socket = require "socket"
local cjson  = require "cjson"

local S = {}

S.run_id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local seq = 0

-- A unique 20-digit plcyNo for this spec run.
function S.plcy_no()
  seq = seq + 1
  return string.format("2099%09d%07d", tonumber(S.run_id), seq)
end

-- A valid getPlcy record; `o` overrides fields.
function S.record(o)
  local r = {
    plcyNo = S.plcy_no(), plcyNm = "테스트 청년 정책", plcyKywdNm = "보조금",
    plcyExplnCn = "테스트용 청년 지원 사업", lclsfNm = "일자리", mclsfNm = "취업",
    plcySprtCn = "월 50만원 지원", sprvsnInstCdNm = "테스트시청", operInstCdNm = "",
    aplyPrdSeCd = "0057002", aplyYmd = "", bizPrdBgngYmd = "        ", bizPrdEndYmd = "        ",
    plcyAplyMthdCn = "온라인 신청", aplyUrlAddr = "https://example.go.kr/apply",
    refUrlAddr1 = "", refUrlAddr2 = "", sprtTrgtMinAge = "0", sprtTrgtMaxAge = "0",
    sprtTrgtAgeLmtYn = "N", mrgSttsCd = "0055003", earnCndSeCd = "0043001", earnMinAmt = "0",
    earnMaxAmt = "0", earnEtcCn = "", addAplyQlfcCndCn = "", ptcpPrpTrgtCn = "", zipCd = "",
    plcyMajorCd = "0011009", jobCd = "0013010", schoolCd = "0049010", sbizCd = "0014010",
    inqCnt = "1", frstRegDt = "2026-06-01 09:00:00", lastMdfcnDt = "2026-06-01 09:00:00",
  }
  for k, v in pairs(o or {}) do r[k] = v end
  return r
end

function S.response(records)
  return { resultCode = 200, resultMessage = "ok",
           result = { pagging = { totCount = #records, pageNum = 1, pageSize = #records },
                      youthPolicyList = records } }
end

function S.write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end

function S.write_json(path, v)
  S.write(path, cjson.encode(v))
end

-- Rows of a query as arrays of strings (psql, unaligned, tab-separated).
function S.sql(query)
  local out, code = H.sh("psql " .. H.quote(os.getenv("DATABASE_URL")) .. " -X -q -At -F '\t' -c "
    .. H.quote(query))
  assert(code == 0, out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local row = {}
    for v in (line .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = v end
    rows[#rows + 1] = row
  end
  return rows
end

function S.scalar(query)
  local rows = S.sql(query)
  return rows[1] and rows[1][1]
end

local modules_dir
-- Runs `lifeplan collect ARGS` with the real modules; → output, exit code.
function S.collect(args, env)
  modules_dir = modules_dir or H.modules_dir {}
  local parts = { "MODULES_DIR=" .. H.quote(modules_dir), "COLLECT_BACKOFF_MS=20" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.quote(v) end
  local out = H.sh("env " .. table.concat(parts, " ") .. " " .. H.bin .. " collect " .. args
    .. " 2>&1; echo \"exit=$?\"")
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code
end

-- The summary line's numbers.
function S.summary(out)
  local f, i, u, n, s = out:match("(%d+) fetched, (%d+) inserted, (%d+) updated, (%d+) unchanged, (%d+) skipped")
  assert(f, "no summary line in:\n" .. out)
  return { fetched = tonumber(f), inserted = tonumber(i), updated = tonumber(u),
           unchanged = tonumber(n), skipped = tonumber(s),
           version = tonumber(out:match("policy set version (%d+)")),
           log = tonumber(out:match("%(log (%d+)")) }
end

-- A local 온통청년 API on a free port serving `records` with key `key`.
function S.ontong(records, key)
  local o = { dir = H.tmpdir(), port = H.free_port() }
  o.url = "http://127.0.0.1:" .. o.port .. "/go/ythip/getPlcy"
  S.write_json(o.dir .. "/records.json", records)
  S.write(o.dir .. "/key", key or "test-key")
  os.execute(string.format("luajit %s/spec/policy/ontong_server.lua %d %s > %s/log 2>&1 &",
    H.root, o.port, o.dir, o.dir))
  local deadline = socket.gettime() + 10
  while not io.open(o.dir .. "/ready") do
    assert(socket.gettime() < deadline, "ontong stand-in did not start")
    socket.sleep(0.02)
  end
  function o.set(recs) S.write_json(o.dir .. "/records.json", recs) end
  function o.fail(n) S.write(o.dir .. "/fail", tostring(n)) end
  function o.requests()
    local list = {}
    local f = io.open(o.dir .. "/requests.log")
    if f then
      for line in f:lines() do list[#list + 1] = line end
      f:close()
    end
    return list
  end
  function o.clear() S.write(o.dir .. "/requests.log", "") end
  function o.stop() S.write(o.dir .. "/stop", "1") end
  return o
end

-- Registers a user (POST /auth/register) and sets a profile (PUT /profile).
-- → token, user id
function S.user(srv, profile)
  local email = "policy-" .. S.run_id .. "-" .. S.plcy_no() .. "@example.com"
  local res = srv:request("POST", "/api/v1/auth/register", { json = { email = email, password = "correct horse 1" } })
  assert(res.status == 201, res.body)
  local token = res.json.accessToken
  if profile then
    local p = srv:request("PUT", "/api/v1/profile", { json = profile,
      headers = { Authorization = "Bearer " .. token } })
    assert(p.status == 200, p.body)
  end
  return token, res.json.user.id
end

function S.auth(token)
  return { headers = { Authorization = "Bearer " .. token } }
end

-- Polls fn() until it returns a truthy value (or `seconds` pass).
function S.eventually(fn, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  return fn()
end

return S
