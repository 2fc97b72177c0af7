-- Deadline reminders on a fixed clock: `lifeplan jobs run deadlines
-- --today D` (and LIFEPLAN_TODAY) notifies 7 days and 1 day before the
-- application end of each favourite, once.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"

describe("deadline notifications", function()
  local srv, mods, u1, u2, pol
  -- a fixed clock far from the real one, so only this spec's policies end near it
  local TODAY = "2031-03-10"

  local function policy(name, period, apply_end)
    return tonumber(S.sql_value(string.format([[
      INSERT INTO policies (source, external_id, title, category, apply_period, apply_start, apply_end,
                            raw, content_hash)
      VALUES ('notifyspec', 'deadline-%s-%s', '%s', 'housing', '%s', %s, %s, '{}', 'x')
      RETURNING id]], S.run_id, name, name, period,
      apply_end and "DATE '2031-01-01'" or "NULL", apply_end and ("DATE '" .. apply_end .. "'") or "NULL")))
  end

  local function favourite(user, policy_id)
    local res = srv:request("POST", "/api/v1/policies/" .. policy_id .. "/favorite", { headers = S.auth(user) })
    assert.are.equal(204, res.status, res.body)
  end

  -- user's deadline notifications as "policy/daysLeft" strings, sorted
  local function reminders(user)
    local out = {}
    for _, n in ipairs(S.inbox(srv, user)) do
      if n.type == "deadline" then
        local name
        for k, id in pairs(pol) do if id == n.data.policyId then name = k end end
        out[#out + 1] = name .. "/" .. n.data.daysLeft
      end
    end
    table.sort(out)
    return out
  end

  local function run(args, env)
    local out, code = S.jobs_run(mods, "deadlines " .. args, env)
    assert.are.equal(0, code, out)
    return S.job_result(out)
  end

  setup(function()
    srv = H.start { fixtures = S.FIXTURES, env = { NOTIFY_TICK_MS = 600000 } }
    mods = srv.modules
    u1 = S.register(srv, "fav1")
    u2 = S.register(srv, "fav2")
    pol = {
      week = policy("청년 전세자금 대출", "fixed", "2031-03-17"),   -- TODAY + 7
      day = policy("청년 월세 한시 특별지원", "fixed", "2031-03-11"), -- TODAY + 1
      later = policy("청년 주택드림 청약통장", "fixed", "2031-03-13"), -- TODAY + 3
      always = policy("상시 모집 정책", "always", nil),
    }
    favourite(u1, pol.week)
    favourite(u1, pol.day)
    favourite(u1, pol.later)
    favourite(u1, pol.always)
    favourite(u2, pol.week)
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("reminds 7 days and 1 day before the end, for favourites only", function()
    local r = run("--today " .. TODAY)
    assert.are.equal(TODAY, r.today)
    assert.are.same({ "day/1", "week/7" }, reminders(u1))
    assert.are.same({ "week/7" }, reminders(u2))

    local n
    for _, it in ipairs(S.inbox(srv, u1)) do
      if it.type == "deadline" and it.data.policyId == pol.day then n = it end
    end
    assert.are.equal("관심 정책 마감 하루 전", n.title)
    assert.are.equal("'청년 월세 한시 특별지원' 신청이 내일(3월 11일) 마감돼요. 잊지 말고 신청하세요.", n.body)
    assert.are.same({ policyId = pol.day, category = "housing", applyEnd = "2031-03-11", daysLeft = 1 }, n.data)
  end)

  it("sends each reminder once", function()
    local r = run("--today " .. TODAY)
    assert.are.equal(0, r.created)
    assert.are.same({ "day/1", "week/7" }, reminders(u1))
  end)

  it("follows the clock: the next reminders come on their own days", function()
    -- the day after: nothing ends in 7 or 1 days
    run("--today 2031-03-11")
    assert.are.same({ "day/1", "week/7" }, reminders(u1))
    -- two days before `later` ends is not a reminder day; one day before is
    run("", { LIFEPLAN_TODAY = "2031-03-12" })
    assert.are.same({ "day/1", "later/1", "week/7" }, reminders(u1))
    run("--today 2031-03-16")
    assert.are.same({ "day/1", "later/1", "week/1", "week/7" }, reminders(u1))
    assert.are.same({ "week/1", "week/7" }, reminders(u2))
  end)

  it("rejects a malformed date", function()
    local out, code = S.jobs_run(mods, "deadlines --today 2031-02-30")
    assert.are_not.equal(0, code)
    assert.truthy(out:find("usage", 1, true))
    out, code = S.jobs_run(mods, "nosuchjob")
    assert.are_not.equal(0, code)
  end)
end)
