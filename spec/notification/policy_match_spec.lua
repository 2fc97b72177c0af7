-- New matching policies: a collector run (policies upserted, policy-set
-- version bumped, NOTIFY) makes the hosts reverse-match the changed
-- policies against every profile and notify each eligible user once.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"

local CHANNEL = "policies_changed"

-- What the collector does in one transaction: log the run, upsert policies
-- (`values`: SQL rows for the columns below), bump the policy-set version,
-- close the log and (unless quiet) NOTIFY. Returns the new version.
local function collector_run(values, quiet)
  local upsert = ""
  if values then
    upsert = [[
      INSERT INTO policies (source, external_id, title, category, region_codes, age_min, age_max,
                            employment_codes, extra_conditions, apply_period, apply_start, apply_end,
                            raw, content_hash)
      VALUES ]] .. values .. [[
      ON CONFLICT (source, external_id) DO UPDATE SET title = EXCLUDED.title,
        region_codes = EXCLUDED.region_codes, age_min = EXCLUDED.age_min, age_max = EXCLUDED.age_max,
        employment_codes = EXCLUDED.employment_codes, extra_conditions = EXCLUDED.extra_conditions,
        apply_period = EXCLUDED.apply_period, apply_start = EXCLUDED.apply_start,
        apply_end = EXCLUDED.apply_end, content_hash = EXCLUDED.content_hash;]]
  end
  return tonumber(S.sql_value([[
    BEGIN;
    INSERT INTO collect_logs (source, source_ref) VALUES ('notifyspec', 'spec');
    ]] .. upsert .. [[
    UPDATE policy_set SET version = version + 1, changed_at = now();
    UPDATE collect_logs SET status = 'succeeded', finished_at = now(),
           policy_set_version = (SELECT version FROM policy_set)
     WHERE id = currval(pg_get_serial_sequence('collect_logs', 'id'));
    ]] .. (quiet and "" or ("SELECT pg_notify('" .. CHANNEL .. "', (SELECT version FROM policy_set)::text);")) .. [[
    COMMIT;
    SELECT version FROM policy_set;]]))
end

local function run_done(version)
  return S.sql_value("SELECT status FROM job_runs WHERE job = 'policy_match' AND run_key = '" ..
                     version .. "'") == "done"
end

-- user id → sorted list of policy ids with a policy_match notification,
-- counting only the spec's own policies (other specs share the database).
local function matches(srv, users, ours)
  local out = {}
  for name, u in pairs(users) do
    local list = {}
    for _, n in ipairs(S.inbox(srv, u)) do
      if n.type == "policy_match" and ours[n.data.policyId] then
        list[#list + 1] = ours[n.data.policyId]
      end
    end
    table.sort(list)
    out[name] = list
  end
  return out
end

local function listeners()
  return tonumber(S.sql_value("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN " ..
                              CHANNEL .. "' OR query LIKE 'LISTEN \"" .. CHANNEL .. "\"%'"))
end

describe("policy_match notifications", function()
  local srv1, srv2, users, ours
  local ext = "notify-" .. S.run_id .. "-"

  local function policy_ids()
    local ids = {}
    for _, r in ipairs(S.sql("SELECT id, external_id FROM policies WHERE source = 'notifyspec' AND external_id LIKE '" ..
                             ext .. "%'")) do
      ids[tonumber(r[1])] = r[2]:sub(#ext + 1)
    end
    return ids
  end

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
    S.set_profile(users.c, { regionCode = "11", employmentStatus = "unemployed" }) -- age unknown
    S.set_profile(users.d, { birthDate = "2001-07-07", regionCode = "41135", employmentStatus = "employed" })
  end)

  teardown(function()
    if srv1 then srv1:stop() end
    if srv2 then srv2:stop() end
  end)

  local function row(name, title, category, regions, amin, amax, emp, extra, period, s, e)
    local function q(v) return v and ("'" .. v .. "'") or "NULL" end
    return string.format("('notifyspec', '%s%s', '%s', '%s', '%s', %s, %s, '%s', %s, '%s', %s, %s, '{}', '%s')",
      ext, name, title, category, regions, amin or "NULL", amax or "NULL", emp, q(extra), period,
      q(s), q(e), name .. tostring(emp) .. tostring(extra))
  end

  it("notifies exactly the eligible users, once, from one host", function()
    local version = collector_run(table.concat({
      row("p1", "서울 청년 월세 지원", "housing", "{11}", 19, 34, "{}", nil, "fixed", "2026-01-01", "2099-12-31"),
      row("p2", "청년 구직활동 지원금", "jobs", "{}", 19, 34, "{unemployed}", nil, "fixed", "2026-01-01", "2099-12-31"),
      row("p3", "부산 중장년 일자리", "jobs", "{26}", 40, 64, "{}", nil, "always", nil, nil),
      row("p4", "마감된 정책", "welfare", "{}", nil, nil, "{}", nil, "closed", nil, nil),
      row("p5", "추가 조건이 있는 정책", "welfare", "{}", nil, nil, "{}", "해당 지역 6개월 이상 거주자", "always", nil, nil),
      row("p6", "지난 정책", "welfare", "{}", nil, nil, "{}", nil, "fixed", "2020-01-01", "2020-12-31"),
    }, ",\n"))
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    ours = policy_ids()

    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = {} }, matches(srv1, users, ours))

    -- exactly one of the two hosts did the work
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
      if it.type == "policy_match" and ours[it.data.policyId] == "p1" then n = it end
    end
    assert.are.equal("housing", n.data.category)
    assert.truthy(n.title:find("맞춤 정책", 1, true))
    assert.truthy(n.body:find("서울 청년 월세 지원", 1, true))
  end)

  it("notifies only the newly eligible when a policy changes", function()
    -- p2 drops its employment condition: d becomes eligible, a already knew
    local version = collector_run(
      row("p2", "청년 구직활동 지원금", "jobs", "{}", 19, 34, "{}", nil, "fixed", "2026-01-01", "2099-12-31"))
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = { "p2" } }, matches(srv2, users, ours))
  end)

  it("creates nothing on a re-run or a repeated NOTIFY", function()
    local count = function()
      local ids = {}
      for _, u in pairs(users) do ids[#ids + 1] = u.id end
      local pids = {}
      for id in pairs(ours) do pids[#pids + 1] = id end
      return tonumber(S.sql_value("SELECT count(*) FROM notifications WHERE user_id IN (" ..
                                  table.concat(ids, ",") .. ") AND (data->>'policyId')::bigint IN (" ..
                                  table.concat(pids, ",") .. ")"))
    end
    local before = count()
    assert.are.equal(4, before)
    -- the same policies again under a new version (a collector re-run)
    local version = collector_run(table.concat({
      row("p1", "서울 청년 월세 지원", "housing", "{11}", 19, 34, "{}", nil, "fixed", "2026-01-01", "2099-12-31"),
      row("p2", "청년 구직활동 지원금", "jobs", "{}", 19, 34, "{}", nil, "fixed", "2026-01-01", "2099-12-31"),
    }, ",\n"))
    S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
    -- and the same NOTIFY once more
    S.sql("SELECT pg_notify('" .. CHANNEL .. "', '" .. version .. "')")
    local rerun = S.sql_value("SELECT result->>'policies' FROM job_runs WHERE job = 'policy_match' AND run_key = '" ..
                              version .. "'")
    assert.truthy(tonumber(rerun) >= 2)
    assert.are.equal(before, count())
    assert.are.same({ a = { "p1", "p2" }, b = { "p3" }, c = {}, d = { "p2" } }, matches(srv1, users, ours))
  end)
end)

describe("policy_match catch-up", function()
  it("runs from the tick when the NOTIFY was missed", function()
    local srv = H.start { fixtures = S.FIXTURES, env = { NOTIFY_TICK_MS = 300 } }
    local ok, err = pcall(function()
      local e = S.register(srv, "e")
      S.set_profile(e, { birthDate = "1999-09-09", regionCode = "30", employmentStatus = "founder" })
      local ext = "notify-" .. S.run_id .. "-quiet"
      local version = collector_run(string.format(
        "('notifyspec', '%s', '대전 청년 창업 지원', 'jobs', '{30}', 19, 39, '{founder}', NULL, 'always', NULL, NULL, '{}', 'q')",
        ext), true)
      S.eventually(function() return run_done(version) end, 20, "policy_match run " .. version)
      local pid = tonumber(S.sql_value("SELECT id FROM policies WHERE external_id = '" .. ext .. "'"))
      local got = {}
      for _, n in ipairs(S.inbox(srv, e)) do
        if n.type == "policy_match" and n.data.policyId == pid then got[#got + 1] = n.data.policyId end
      end
      assert.are.same({ pid }, got)
    end)
    srv:stop()
    assert(ok, err)
  end)
end)
