-- New matching policies: a collector run (`lifeplan collect`: policies
-- upserted, policy-set version bumped, NOTIFY) makes the hosts reverse-match
-- the changed policies against every profile and notify each eligible user
-- once — from one host, and never again on a re-run.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"

local CHANNEL = "policies_changed"

local function run_done(version)
  return S.sql_value("SELECT status FROM job_runs WHERE job = 'policy_match' AND run_key = '" ..
                     version .. "'") == "done"
end

local function listeners()
  return tonumber(S.sql_value("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN " ..
                              CHANNEL .. "' OR query LIKE 'LISTEN \"" .. CHANNEL .. "\"%'"))
end

-- Runs the collector over `records` → the policy-set version it ended at.
local function collect(modules, records)
  local out, code = S.collect(modules, records)
  assert(code == 0, out)
  local version = tonumber(out:match("policy set version (%d+)"))
  assert(version, "no version in:\n" .. out)
  return version, out
end

-- name → policy id for the records (by plcyNo)
local function policy_ids(records)
  local ids = {}
  for name, r in pairs(records) do
    ids[name] = tonumber(S.sql_value("SELECT id FROM policies WHERE source = 'ontong' AND external_id = '" ..
                                     r.plcyNo .. "'"))
  end
  return ids
end

-- user name → sorted names of the spec's policies the user was notified
-- about (other specs share the database, so only these count)
local function matches(srv, users, ids)
  local name_of = {}
  for name, id in pairs(ids) do name_of[id] = name end
  local out = {}
  for uname, u in pairs(users) do
    local list = {}
    for _, n in ipairs(S.inbox(srv, u)) do
      if n.type == "policy_match" and name_of[n.data.policyId] then
        list[#list + 1] = name_of[n.data.policyId]
      end
    end
    table.sort(list)
    out[uname] = list
  end
  return out
end

local function values(t)
  local list = {}
  for _, v in pairs(t) do list[#list + 1] = v end
  return list
end

describe("policy_match notifications", function()
  local srv1, srv2, users, records, ids

  setup(function()
    local base = listeners()
    srv1 = H.start { fixtures = S.FIXTURES, env = { NOTIFY_TICK_MS = 600000 } }
    srv2 = H.start { fixtures = S.FIXTURES, env = { NOTIFY_TICK_MS = 600000 } }
    -- both hosts must be listening before the collector runs
    S.eventually(function() return listeners() >= base + 2 end, 15, "both LISTEN connections")
    users = {
      a = S.register(srv1, "a"), b = S.register(srv1, "b"),
      c = S.register(srv1, "c"), d = S.register(srv1, "d"),
    }
    S.set_profile(users.a, { birthDate = "2000-03-01", regionCode = "11680", employmentStatus = "unemployed" })
    S.set_profile(users.b, { birthDate = "1975-05-05", regionCode = "26110", employmentStatus = "employed" })
    S.set_profile(users.c, { regionCode = "11680", employmentStatus = "unemployed" }) -- age unknown
    S.set_profile(users.d, { birthDate = "2001-07-07", regionCode = "41135", employmentStatus = "employed" })
    local open = { aplyPrdSeCd = "0057001", aplyYmd = "20260101 ~ 20991231" }
    local function rec(o)
      for k, v in pairs(open) do if o[k] == nil then o[k] = v end end
      return S.record(o)
    end
    records = {
      p1 = rec { plcyNm = "강남구 청년 월세 지원", lclsfNm = "주거", zipCd = "11680",
                 sprtTrgtMinAge = "19", sprtTrgtMaxAge = "34", sprtTrgtAgeLmtYn = "Y" },
      p2 = rec { plcyNm = "청년 구직활동 지원금", lclsfNm = "일자리", sprtTrgtMinAge = "19",
                 sprtTrgtMaxAge = "34", sprtTrgtAgeLmtYn = "Y", jobCd = "0013003" },
      p3 = rec { plcyNm = "부산 중구 중장년 일자리", zipCd = "26110", sprtTrgtMinAge = "40",
                 sprtTrgtMaxAge = "64", sprtTrgtAgeLmtYn = "Y", aplyPrdSeCd = "0057002", aplyYmd = "" },
      p4 = rec { plcyNm = "마감된 정책", aplyPrdSeCd = "0057003", aplyYmd = "" },
      p5 = rec { plcyNm = "추가 조건이 있는 정책", addAplyQlfcCndCn = "해당 지역 6개월 이상 거주자" },
      p6 = rec { plcyNm = "지난 정책", aplyYmd = "20200101 ~ 20201231" },
    }
  end)

  teardown(function()
    if srv1 then srv1:stop() end
    if srv2 then srv2:stop() end
  end)

  it("notifies exactly the eligible users, once, from one host", function()
    local version = collect(srv1.modules, values(records))
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    ids = policy_ids(records)
    for name in pairs(records) do assert.is_number(ids[name], name) end

    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = {} }, matches(srv1, users, ids))

    -- exactly one of the two hosts did the work (the collector's own
    -- process hears the NOTIFY too, and leaves it to them)
    local worked = 0
    for _, s in ipairs { srv1, srv2 } do
      for line in s:read_log():gmatch("[^\n]+") do
        if line:find('"policy_match run"', 1, true) and line:find('"version":' .. version .. "[,}]") then
          worked = worked + 1
        end
      end
    end
    assert.are.equal(1, worked)

    -- the notification itself: Korean text, the ids the app navigates with
    local n
    for _, it in ipairs(S.inbox(srv1, users.a)) do
      if it.type == "policy_match" and it.data.policyId == ids.p1 then n = it end
    end
    assert.are.same({ policyId = ids.p1, category = "housing" }, n.data)
    assert.are.equal("새로운 맞춤 정책: 주거", n.title)
    assert.are.equal("'강남구 청년 월세 지원' 정책의 신청 조건을 모두 충족해요. 신청 마감은 12월 31일이에요." ..
                     " 지금 확인해 보세요.", n.body)
  end)

  it("notifies only the newly eligible when a policy changes", function()
    -- p2 drops its employment condition: d becomes eligible, a already knew
    records.p2.jobCd = "0013010"
    local version = collect(srv1.modules, { records.p2 })
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = { "p2" } }, matches(srv2, users, ids))
  end)

  it("creates nothing on a re-run or a repeated NOTIFY", function()
    local uids, pids = {}, {}
    for _, u in pairs(users) do uids[#uids + 1] = u.id end
    for _, id in pairs(ids) do pids[#pids + 1] = id end
    local function count()
      return tonumber(S.sql_value("SELECT count(*) FROM notifications WHERE user_id IN (" ..
                                  table.concat(uids, ",") .. ") AND (data->>'policyId')::bigint IN (" ..
                                  table.concat(pids, ",") .. ")"))
    end
    assert.are.equal(4, count())
    -- the same records again change nothing: no new version to work on
    local v0 = tonumber(S.sql_value("SELECT version FROM policy_set"))
    local version = collect(srv1.modules, values(records))
    assert.are.equal(v0, version)
    -- edited records under a new version: reprocessed, all deduplicated
    records.p1.plcyNm = "강남구 청년 월세 한시 지원"
    records.p3.plcySprtCn = "월 30만원 지원"
    version = collect(srv1.modules, { records.p1, records.p3 })
    assert.is_true(version > v0)
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    local processed = tonumber(S.sql_value("SELECT result->>'policies' FROM job_runs " ..
                                           "WHERE job = 'policy_match' AND run_key = '" .. version .. "'"))
    assert.is_true(processed >= 2)
    -- and the same NOTIFY once more
    S.sql("SELECT pg_notify('" .. CHANNEL .. "', '{\"version\":" .. version .. "}')")
    assert.are.equal(4, count())
    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = { "p2" } }, matches(srv1, users, ids))
  end)
end)

describe("policy_match catch-up", function()
  it("runs from the tick when no host heard the NOTIFY", function()
    local mods = H.modules_dir { fixtures = S.FIXTURES }
    -- the collector runs while no host is up: its NOTIFY reaches nobody
    local rec = S.record { plcyNm = "대전 청년 창업 지원", zipCd = "30110", sprtTrgtMinAge = "19",
                           sprtTrgtMaxAge = "39", sprtTrgtAgeLmtYn = "Y", jobCd = "0013006" }
    local srv = H.start { modules_dir = mods, env = { NOTIFY_TICK_MS = 300 } }
    local ok, err = pcall(function()
      local e = S.register(srv, "e")
      S.set_profile(e, { birthDate = "1999-09-09", regionCode = "30110", employmentStatus = "founder" })
      srv:stop()
      local version = collect(mods, { rec })
      assert.is_false(run_done(version))
      srv = H.start { modules_dir = mods, env = { NOTIFY_TICK_MS = 300 } }
      S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
      local pid = tonumber(S.sql_value("SELECT id FROM policies WHERE external_id = '" .. rec.plcyNo .. "'"))
      local got = 0
      for _, n in ipairs(S.inbox(srv, e)) do
        if n.type == "policy_match" and n.data.policyId == pid then got = got + 1 end
      end
      assert.are.equal(1, got)
    end)
    srv:stop()
    assert(ok, err)
  end)
end)
