-- spec/notification/support.lua — helpers shared by the notification specs:
-- SQL through psql (test setup and inspection only), users through the
-- auth API, waiting for background work, a one-shot webhook receiver.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

local S = {}

S.FIXTURES = { "spec/notification/fixtures" }

-- A random suffix so runs never collide in the shared test database.
S.run_id = string.format("%d%04d", os.time() % 100000, math.random(0, 9999))

S.sql, S.sql_value = H.sql, H.sql_value

local n = 0
-- Registers a user through the API → {id, token, email}.
function S.register(srv, name)
  n = n + 1
  local email = string.format("notify-%s-%s-%d@example.com", name or "u", S.run_id, n)
  local res = srv:request("POST", "/api/v1/auth/register",
                          { json = { email = email, password = "correct horse 1", name = name } })
  assert(res.status == 201, "register: " .. tostring(res.status) .. " " .. res.body)
  return { id = res.json.user.id, token = res.json.accessToken, email = email }
end

function S.auth(user)
  return { Authorization = "Bearer " .. user.token }
end

-- Sets the matching-relevant profile fields directly (setup only).
function S.set_profile(user, p)
  local function lit(v)
    if v == nil then return "NULL" end
    if type(v) == "number" then return tostring(v) end
    if type(v) == "table" then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = "'" .. x .. "'" end
      return "ARRAY[" .. table.concat(parts, ",") .. "]::text[]"
    end
    return "'" .. tostring(v):gsub("'", "''") .. "'"
  end
  S.sql(string.format([[
    INSERT INTO user_profiles (user_id, birth_date, region_code, employment_status, special_status)
    VALUES (%d, %s, %s, %s, %s)
    ON CONFLICT (user_id) DO UPDATE SET birth_date = EXCLUDED.birth_date,
      region_code = EXCLUDED.region_code, employment_status = EXCLUDED.employment_status,
      special_status = EXCLUDED.special_status, version = user_profiles.version + 1]],
    user.id, lit(p.birthDate), lit(p.regionCode), lit(p.employmentStatus), lit(p.specialStatus)))
end

-- Polls fn() every 50 ms until it returns a truthy value (or fails after
-- `seconds`): background work has no completion signal the spec can await.
function S.eventually(fn, seconds, what)
  local deadline = socket.gettime() + (seconds or 15)
  while true do
    local v = fn()
    if v then return v end
    if socket.gettime() > deadline then error("timed out waiting for " .. (what or "condition"), 2) end
    socket.sleep(0.05)
  end
end

-- All of a user's notifications through the API (following cursors).
function S.inbox(srv, user, query)
  local items, cursor = {}, nil
  repeat
    local path = "/api/v1/notifications?limit=100" .. (query or "") ..
                 (cursor and ("&cursor=" .. cursor) or "")
    local res = srv:request("GET", path, { headers = S.auth(user) })
    assert(res.status == 200, res.body)
    for _, it in ipairs(res.json.items) do items[#items + 1] = it end
    cursor = res.json.nextCursor
  until cursor == nil or cursor == json.null
  return items
end

-- `lifeplan jobs run ...` against a modules folder → output, exit code.
function S.jobs_run(modules, args, env)
  local parts = { "MODULES_DIR=" .. H.quote(modules) }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.quote(v) end
  -- the exit status is echoed: io.popen's close does not give it under LuaJIT
  local out = H.sh("(env " .. table.concat(parts, " ") .. " " .. H.bin .. " jobs run " .. args ..
                   " 2>&1; echo \"exit=$?\")")
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code
end

-- The last JSON line a job printed.
function S.job_result(out)
  local last
  for line in out:gmatch("[^\n]+") do
    local v = json.decode(line)
    if type(v) == "table" and v.msg == nil then last = v end
  end
  return last
end

-- ---- the collector ------------------------------------------------------

local seq = 0
-- A getPlcy (온통청년) record with a plcyNo unique to this run; `o`
-- overrides fields (zipCd regions, sprtTrgtMin/MaxAge, jobCd, aplyPrdSeCd
-- 0057001 fixed / 0057002 always / 0057003 closed with aplyYmd, ...).
function S.record(o)
  seq = seq + 1
  local r = {
    plcyNo = string.format("2098%09d%07d", tonumber(S.run_id), seq), plcyNm = "알림 테스트 정책",
    plcyKywdNm = "보조금", plcyExplnCn = "알림 테스트용 청년 정책", lclsfNm = "일자리", mclsfNm = "취업",
    plcySprtCn = "월 50만원 지원", sprvsnInstCdNm = "테스트시청", operInstCdNm = "",
    aplyPrdSeCd = "0057002", aplyYmd = "", bizPrdBgngYmd = "", bizPrdEndYmd = "",
    plcyAplyMthdCn = "온라인 신청", aplyUrlAddr = "", refUrlAddr1 = "", refUrlAddr2 = "",
    sprtTrgtMinAge = "0", sprtTrgtMaxAge = "0", sprtTrgtAgeLmtYn = "N", mrgSttsCd = "0055003",
    earnCndSeCd = "0043001", earnMinAmt = "0", earnMaxAmt = "0", earnEtcCn = "",
    addAplyQlfcCndCn = "", ptcpPrpTrgtCn = "", zipCd = "", plcyMajorCd = "0011009",
    jobCd = "0013010", schoolCd = "0049010", sbizCd = "0014010", inqCnt = "1",
    frstRegDt = "2026-06-01 09:00:00", lastMdfcnDt = "2026-06-01 09:00:00",
  }
  for k, v in pairs(o or {}) do r[k] = v end
  return r
end

-- `lifeplan collect --source FILE` over `records` → output, exit code.
function S.collect(modules, records)
  local file = H.tmpdir() .. "/getPlcy.json"
  local f = assert(io.open(file, "w"))
  f:write(json.encode { resultCode = 200, resultMessage = "ok",
    result = { pagging = { totCount = #records, pageNum = 1, pageSize = #records },
               youthPolicyList = records } })
  f:close()
  local out = H.sh("(env MODULES_DIR=" .. H.quote(modules) .. " " .. H.bin .. " collect --source " ..
                   H.quote(file) .. " 2>&1; echo \"exit=$?\")")
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out, code
end

-- ---- a webhook receiver -------------------------------------------------

local Receiver = {}
Receiver.__index = Receiver

function S.receiver(port)
  local srv = assert(socket.bind("127.0.0.1", port or 0))
  local _, p = srv:getsockname()
  return setmetatable({ sock = srv, port = tonumber(p), url = "http://127.0.0.1:" .. p .. "/push",
                        got = {} }, Receiver)
end

-- Accepts one request, answers `status`; returns {path, headers, body, json}.
function Receiver:accept(timeout, status)
  self.sock:settimeout(timeout or 10)
  local c = self.sock:accept()
  if not c then return nil end
  c:settimeout(5)
  local line = c:receive("*l") or ""
  local headers = {}
  while true do
    local h = c:receive("*l")
    if not h or h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local len = tonumber(headers["content-length"] or "0")
  local body = len > 0 and c:receive(len) or ""
  c:send(string.format("HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status or 200))
  c:close()
  local req = { line = line, headers = headers, body = body, json = json.decode(body) }
  self.got[#self.got + 1] = req
  return req
end

-- Accepts requests until one carries notification `id` (other rows a sweep
-- may push are answered 200 too); nil on timeout.
function Receiver:wait_for(id, timeout)
  local deadline = socket.gettime() + (timeout or 15)
  while socket.gettime() < deadline do
    local req = self:accept(math.max(0.05, deadline - socket.gettime()))
    if req and req.json and req.json.id == id then return req end
  end
  return nil
end

function Receiver:close()
  self.sock:close()
end

return S
