-- lp.match through the real binary: `lifeplan run` for the binding's
-- behaviour, a running server for an index that outlives a reload.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

-- A modules dir with modules/shared and the test controller: `run` needs no
-- domain module.
local modules

-- Runs Lua source as a script through `lifeplan run`; the script prints one
-- JSON value with lp.json. Returns the decoded value, the exit code, stderr.
local function run(source)
  modules = modules or H.modules_dir { modules = false, fixtures = { "spec/match/fixtures" } }
  local dir = H.tmpdir()
  local file = dir .. "/script.lua"
  local f = assert(io.open(file, "w"))
  f:write('local match = require "lp.match"\nlocal json = require "lp.json"\n', source)
  f:close()
  local out, code = H.sh("cd " .. H.quote(dir) .. " && MODULES_DIR=" .. H.quote(modules) ..
    " " .. H.quote(H.bin) .. " run " .. H.quote(file) .. " 2>" .. H.quote(dir .. "/err"))
  local ef = io.open(dir .. "/err")
  local err = ef and ef:read("*a") or ""
  if ef then ef:close() end
  local last
  for line in out:gmatch("[^\n]+") do last = line end
  return last and json.decode(last), code, err
end

local POLICIES = [[
local policies = {
  { id = 1, category = "jobs", ageMin = 19, ageMax = 34, regions = { "11" },
    employment = { "unemployed", "founder" } },
  { id = 2, category = "housing", ageMin = 19, ageMax = 39, regions = { "11680" },
    medianIncomePct = 150, medianIncomeYear = 2026, housingType = { "jeonse", "monthly_rent" } },
  { id = 3, category = "jobs", ageMin = 19, ageMax = 34, regions = { "26" } },
  { id = 4, category = "welfare", incomeMax = 50000000, extraCondition = "무주택자" },
  { id = 5, category = "education", closed = true },
  { id = 6, category = "participation", applyStart = "2026-03-01", applyEnd = "2026-03-20" },
}
local profile = { birthDate = "2000-03-15", regionCode = "11680", annualIncome = 30000000,
  householdSize = 1, employmentStatus = "unemployed", interests = { "housing" } }
]]

describe("lp.match", function()
  it("matches a profile with eligibility, reasons in Korean and missing fields", function()
    local r, code, err = run(POLICIES .. [[
      local idx = match.index(policies)
      print(json.encode(idx:match(profile, { today = "2026-03-15", includePossible = true })))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal(2, r.eligible)    -- 1 and 6 (5 is closed, 3 is 부산)
    assert.are.equal(2, r.possible)    -- 2 (housing unknown) and 4 (free-text condition)
    local byid = {}
    for _, it in ipairs(r.items) do byid[it.id] = it end
    assert.is_nil(byid[3])
    assert.is_nil(byid[5])
    local age = byid[1].reasons[1]
    assert.are.same({ "age", "met", "in_range", 26, 19, 34 },
      { age.condition, age.status, age.code, age.value, age.min, age.max })
    assert.are.equal("나이 26세: 19~34세 조건 충족", age.detail)
    assert.are.equal("possible", byid[2].eligibility)
    assert.are.same({ "housingType" }, byid[2].missingFields)
    local median = byid[2].reasons[3]
    assert.are.equal("medianIncome", median.condition)
    assert.are.equal(3846357, median.max)       -- 150% of 2,564,238 (2026, 1인)
    assert.are.equal(1, median.household)
    assert.are.equal("check_text", byid[4].reasons[2].code)
    -- ranked: the 구 policy in the user's interests first, eligible before possible
    assert.are.equal(1, r.items[1].eligibility == "eligible" and 1 or 0)
    assert.is_true(r.items[1].score >= r.items[2].score)
  end)

  it("leaves out possible results unless asked, and filters categories", function()
    local r, code, err = run(POLICIES .. [[
      local idx = match.index(policies)
      local a = idx:match(profile, { today = "2026-03-15" })
      local b = idx:match(profile, { today = "2026-03-15", categories = { "participation" } })
      local c = idx:match(profile, { today = "2026-03-15", includeClosed = true, limit = 1 })
      print(json.encode({ a = a, b = b, c = c }))
    ]])
    assert.are.equal(0, code, err)
    for _, it in ipairs(r.a.items) do assert.are.equal("eligible", it.eligibility) end
    assert.are.equal(1, #r.b.items)
    assert.are.equal(6, r.b.items[1].id)
    assert.are.equal("open", r.b.items[1].period)
    assert.are.equal(1, #r.c.items)
    assert.are.equal(3, r.c.eligible)           -- the closed policy 5 counts now
  end)

  it("judges age on the birthday itself", function()
    local r, code, err = run(POLICIES .. [[
      local idx = match.index(policies)
      local p = { birthDate = "1991-03-15", regionCode = "11", employmentStatus = "unemployed" }
      print(json.encode({
        before = idx:explain(1, p, { today = "2026-03-14" }),
        on = idx:explain(1, p, { today = "2026-03-15" }),
      }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("eligible", r.before.eligibility)
    assert.are.equal(34, r.before.reasons[1].value)
    assert.are.equal("ineligible", r.on.eligibility)
    assert.are.equal("above_max", r.on.reasons[1].code)
    assert.are.equal("나이 35세: 19~34세 조건 미충족", r.on.reasons[1].detail)
  end)

  it("treats a profile with only a 시도 as possible for a 구 policy", function()
    local r, code, err = run(POLICIES .. [[
      local idx = match.index(policies)
      local p = { birthDate = "2000-01-01", regionCode = "11", annualIncome = 1000000,
                  householdSize = 1, housingType = "jeonse" }
      print(json.encode({ two = idx:explain(2, p, { today = "2026-03-15" }),
                          none = idx:explain(99, p) or json.null,
                          eval = match.eval(policies[3], p, { today = "2026-03-15" }) }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("possible", r.two.eligibility)
    assert.are.same({ "regionCode" }, r.two.missingFields)
    assert.are.equal("region_imprecise", r.two.reasons[2].code)
    assert.are.equal(json.null, r.none)
    assert.are.equal("ineligible", r.eval.eligibility)
    assert.are.equal("region_outside", r.eval.reasons[2].code)
  end)

  it("rejects bad policies and profiles with the position and field", function()
    local r, code, err = run([[
      local ok1, e1 = pcall(match.index, { { id = 1 }, { id = 2, employment = { "astronaut" } } })
      local ok2, e2 = pcall(match.index, { { id = 1 }, { id = 1 } })
      local ok3, e3 = pcall(match.eval, { id = 1 }, { birthDate = "2001-02-29" })
      local ok4, e4 = pcall(match.index, { { id = 1, ageMin = 40, ageMax = 30 } })
      print(json.encode({ ok1, e1, ok2, e2, ok3, e3, ok4, e4 }))
    ]])
    assert.are.equal(0, code, err)
    assert.is_false(r[1]); assert.truthy(r[2]:find("policy #2: employment has an unknown code", 1, true))
    assert.is_false(r[3]); assert.truthy(r[4]:find("policy #2: duplicate id", 1, true))
    assert.is_false(r[5]); assert.truthy(r[6]:find("birthDate must be a date", 1, true))
    assert.is_false(r[7]); assert.truthy(r[8]:find("policy #1", 1, true))
  end)

  it("lists the profiles a new policy makes eligible or possible", function()
    local r, code, err = run([[
      local pidx = match.profiles({
        { id = 10, birthDate = "2000-01-01", regionCode = "11680", employmentStatus = "unemployed" },
        { id = 11, birthDate = "2000-01-01", regionCode = "26110", employmentStatus = "unemployed" },
        { id = 12, birthDate = "1980-01-01", regionCode = "11110", employmentStatus = "unemployed" },
        { id = 13, regionCode = "11", employmentStatus = "unemployed" },
        { id = 14, birthDate = "2001-05-05", regionCode = "11740" },
      })
      local policy = { id = 1, ageMin = 19, ageMax = 34, regions = { "11" },
                       employment = { "unemployed" } }
      print(json.encode({ n = pidx:count(), r = pidx:reverse(policy, { today = "2026-03-15" }) }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal(5, r.n)
    assert.are.same({ 10 }, r.r.eligible)
    assert.are.same({ 13, 14 }, r.r.possible)
    assert.are.equal(1, r.r.eligibleCount)
  end)

  it("builds the same profile index a chunk at a time, compiled off the loop", function()
    local r, code, err = run([[
      local timer = require "lp.timer"
      local profiles = {}
      for i = 1, 3000 do
        profiles[i] = { id = i, birthDate = string.format("%d-01-01", 1980 + i % 30),
          regionCode = ({ "11680", "26110", "11" })[1 + i % 3], employmentStatus = "unemployed" }
      end
      local b = match.profile_builder()
      for from = 1, #profiles, 1000 do
        b:add({ unpack(profiles, from, from + 999) })
      end
      local bad_ok, bad_err = pcall(b.add, b, { { id = 9001 }, { id = 9002, regionCode = "99999" } })
      local counted = b:count()
      -- the loop keeps turning while the index compiles: a timer fires meanwhile
      local ticks = 0
      timer.after(0, function() ticks = ticks + 1 end)
      local built = b:build()
      local ticked = ticks
      local whole = match.profiles(profiles)
      local policy = { id = 1, ageMin = 19, ageMax = 34, regions = { "11" },
                       employment = { "unemployed" } }
      local opts = { today = "2026-03-15" }
      print(json.encode({ counted = counted, bad_ok = bad_ok, bad_err = tostring(bad_err),
        n = built:count(), after = b:count(), a = built:reverse(policy, opts),
        b = whole:reverse(policy, opts), empty = match.profile_builder():build():count(),
        ticked = ticked }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal(3000, r.counted) -- the list with a bad profile added none of it
    assert.is_false(r.bad_ok)
    assert.truthy(r.bad_err:find("profile #2", 1, true))
    assert.are.equal(3000, r.n)
    assert.are.equal(0, r.after)     -- the builder is empty once built
    assert.are.same(r.b, r.a)
    assert.is_true(r.a.eligibleCount > 0)
    assert.are.equal(0, r.empty)
    assert.are.equal(1, r.ticked)
  end)

  it("builds the same policy index a chunk at a time, compiled off the loop", function()
    local r, code, err = run(POLICIES .. [[
      local timer = require "lp.timer"
      local b = match.policy_builder()
      b:add({ policies[1], policies[2], policies[3] })
      local bad_ok, bad_err = pcall(b.add, b, { policies[4], { id = 99, regions = { "99999" } } })
      b:add({ policies[4], policies[5], policies[6] })
      local ticks = 0
      timer.after(0, function() ticks = ticks + 1 end)
      local built = b:build()
      local ticked = ticks
      local opts = { today = "2026-03-15", includePossible = true }
      -- enough region codes that the builder's code array moves as it grows
      local many, mb = {}, match.policy_builder()
      for i = 1, 3000 do
        many[i] = { id = i, regions = { ({ "11", "26", "11680", "41135" })[1 + i % 4], "30" },
                    ageMin = 19 + i % 10, ageMax = 34 }
      end
      for from = 1, 3000, 1000 do mb:add({ unpack(many, from, from + 999) }) end
      local big = mb:build():match(profile, { today = "2026-03-15", limit = 1000 })
      local whole = match.index(many):match(profile, { today = "2026-03-15", limit = 1000 })
      local left = {}
      local kept = match.policy_builder():add({ policies[1], { id = 98, regions = { "99999" } }, policies[2] },
        function(p, e) left[#left + 1] = { p.id, tostring(e) } end)
      local dup = match.policy_builder()
      dup:add({ policies[1] }):add({ policies[2], policies[1] })
      local dup_ok, dup_err = pcall(dup.build, dup)
      print(json.encode({ n = built:count(), bad_ok = bad_ok, bad_err = tostring(bad_err),
        a = built:match(profile, opts), b = match.index(policies):match(profile, opts),
        ticked = ticked, dup_ok = dup_ok, dup_err = tostring(dup_err), after = b:count(),
        big = big, whole = whole, kept = kept:count(), left = left }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal(6, r.n) -- the chunk with a bad policy added none of it
    assert.is_false(r.bad_ok)
    assert.truthy(r.bad_err:find("policy #2", 1, true))
    assert.are.same(r.b, r.a)
    assert.are.equal(2, r.a.eligible)
    assert.are.equal(1, r.ticked)
    assert.is_false(r.dup_ok)
    assert.truthy(r.dup_err:find("policy #3: duplicate id", 1, true))
    assert.are.equal(0, r.after)
    assert.are.same(r.whole, r.big)
    assert.is_true(r.big.eligible > 100)
    assert.are.equal(2, r.kept) -- with refused, only the bad one is left out
    assert.are.equal(1, #r.left)
    assert.are.equal(98, r.left[1][1])
    assert.truthy(r.left[1][2]:find("policy #1", 1, true))
  end)

  it("knows the 2026 and 2025 기준 중위소득", function()
    local r, code, err = run([[
      print(json.encode({ match.median_income(2026, 1), match.median_income(2026, 4),
                          match.median_income(2025, 1) }))
    ]])
    assert.are.equal(0, code, err)
    assert.are.same({ 2564238, 6494738, 2392013 }, r)
  end)
end)

describe("lp.match across reloads", function()
  it("keeps the published index when the scripts reload", function()
    local srv = H.start { modules = false, fixtures = { "spec/match/fixtures" } }
    local policies = {}
    for i = 1, 2000 do
      policies[i] = { id = i, ageMin = 19, ageMax = (i % 2 == 0) and 34 or 39,
                      regions = { (i % 3 == 0) and "26" or "11" } }
    end
    local set = srv:request("POST", "/mt/policies", { json = { policies = policies } })
    assert.are.equal(200, set.status)
    assert.are.equal(2000, set.json.count)
    local body = { profile = { birthDate = "1990-06-01", regionCode = "11680" }, today = "2026-03-15" }
    local before = srv:request("POST", "/mt/match", { json = body }).json
    assert.are.equal(2000, before.count)

    local controller = srv.modules .. "/matchtest/controller.lua"
    local f = assert(io.open(controller)); local src = f:read("*a"); f:close()
    f = assert(io.open(controller, "w")); f:write((src:gsub('"v1"', '"v2"'))); f:close()
    srv:signal("HUP")
    local deadline = socket.gettime() + 10
    repeat socket.sleep(0.05)
    until srv:request("GET", "/mt/version").json.version == "v2" or socket.gettime() > deadline
    assert.are.equal("v2", srv:request("GET", "/mt/version").json.version)

    local after = srv:request("POST", "/mt/match", { json = body }).json
    assert.are.equal(2000, after.count)
    assert.are.same(before.result, after.result)
    -- 35 years old: only the 19–39 policies in 서울 (odd ids not divisible by 3)
    assert.are.equal(667, after.result.eligible)
    srv:stop()
  end)
end)
