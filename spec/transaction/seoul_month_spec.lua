-- spec/transaction/seoul_month_spec.lua — months are calendar months in
-- Asia/Seoul.
--
-- What "a transaction at 2026-10-31 23:30 KST belongs to October" means
-- here: occurredOn is a date, the day in the user's (Seoul) calendar the app
-- records, so that transaction is sent with occurredOn 2026-10-31. The server
-- must then (1) put occurredOn 2026-10-31 in October and 2026-11-01 in
-- November, everywhere (list, summary, budgets and their alerts, export),
-- never shifting a day by a UTC conversion; and (2) take "now" in Seoul
-- wherever it decides a month by itself: the default ?month= of the GET
-- routes and the "last three full months" of monthly_averages. The clock is
-- fixed with LIFEPLAN_NOW. At 2026-10-31T23:30+09:00 the month is October;
-- at 2026-11-01T08:30+09:00, which is still 2026-10-31 (23:30) in UTC, it is
-- November.
local H = require "spec.helpers.server"
local S = require "spec.transaction.support"
local json = S.json
local TX, BUDGETS = S.TX, S.BUDGETS

local function at(now)
  return H.start { fixtures = S.FIXTURES, env = { LIFEPLAN_NOW = now } }
end

describe("Seoul months", function()
  describe("the current month", function()
    local cases = {
      { "2026-10-31T23:30:00+09:00", "2026-10-31" },
      { "2026-10-31T14:30:00Z",      "2026-10-31" },  -- the same instant
      { "2026-10-31T23:59:59+09:00", "2026-10-31" },
      { "2026-11-01T00:00:00+09:00", "2026-11-01" },
      { "2026-10-31T15:00:00Z",      "2026-11-01" },  -- the same instant
      { "2026-10-31T23:30:00Z",      "2026-11-01" },  -- October in UTC, November in Seoul
      { "2026-12-31T15:00:00.5Z",    "2027-01-01" },
      { "2028-02-28T15:10:00Z",      "2028-02-29" },
    }
    local servers = {}
    teardown(function() for _, s in pairs(servers) do s:stop() end end)
    for _, c in ipairs(cases) do
      it("at " .. c[1] .. " is " .. c[2]:sub(1, 7) .. " (today " .. c[2] .. ")", function()
        local srv = at(c[1])
        servers[#servers + 1] = srv
        local res = srv:request("GET", "/t/ledger/today")
        assert.same({ today = c[2], month = c[2]:sub(1, 7) }, res.json)
      end)
    end
  end)

  it("ignores LIFEPLAN_NOW in production", function()
    local srv = H.start { fixtures = S.FIXTURES, env = { LIFEPLAN_NOW = "2001-01-01T00:00:00Z",
      LIFEPLAN_ENV = "production", JWT_SECRET = string.rep("s", 48) } }
    local res = srv:request("GET", "/t/ledger/today")
    srv:stop()
    assert.equal(200, res.status)
    assert.are_not.equal("2001-01", res.json.month)
    assert.truthy(res.json.month:match("^20%d%d%-%d%d$"))
  end)

  describe("at 2026-10-31 23:30 KST", function()
    local srv, u, oct, nov
    setup(function()
      srv = at("2026-10-31T23:30:00+09:00")
      u = S.register(srv, "kst-oct")
      S.budget(srv, u, "2026-10", "food", 10000)
      S.budget(srv, u, "2026-11", "food", 10000)
      oct = S.expense(srv, u, 9000, "food", "2026-10-31", "밤 11시 반 야식")
      nov = S.expense(srv, u, 500, "food", "2026-11-01")
    end)
    teardown(function() srv:stop() end)

    it("a transaction dated 2026-10-31 belongs to October, in the list and the summary", function()
      local res = S.call(srv, u, "GET", TX .. "?month=2026-10")
      assert.equal(1, #res.json.items)
      assert.equal(oct.id, res.json.items[1].id)
      assert.equal(9000, res.json.summary.expense)
      local n = S.call(srv, u, "GET", TX .. "?month=2026-11")
      assert.equal(1, #n.json.items)
      assert.equal(nov.id, n.json.items[1].id)
      assert.equal(500, n.json.summary.expense)
    end)

    it("without ?month= the list, budgets and export are October's", function()
      local list = S.call(srv, u, "GET", TX)
      assert.equal("2026-10", list.json.month)
      assert.equal(oct.id, list.json.items[1].id)
      assert.equal(1, #list.json.items)
      local b = S.call(srv, u, "GET", BUDGETS)
      assert.equal("2026-10", b.json.month)
      assert.equal(9000, b.json.items[1].spent)
      local csv = S.call(srv, u, "GET", TX .. "/export")
      assert.truthy(csv.headers["content-disposition"]:find("2026%-10"))
      assert.truthy(csv.body:find("2026-10-31", 1, true))
      assert.is_nil(csv.body:find("2026-11-01", 1, true))
    end)

    it("its budget alert is October's", function()
      local n = S.budget_notifications(u)
      assert.equal(1, #n)
      assert.equal("budget:2026-10:food:80", n[1].key)
      assert.equal("2026-10", n[1].data.month)
      assert.truthy(n[1].body:find("^10월"))
    end)
  end)

  describe("at 2026-11-01 08:30 KST (2026-10-31 23:30 UTC)", function()
    local srv
    setup(function() srv = at("2026-10-31T23:30:00Z") end)
    teardown(function() srv:stop() end)

    it("without ?month= the list and budgets are November's", function()
      local u = S.register(srv, "kst-nov")
      S.expense(srv, u, 100, "food", "2026-10-31")
      local b = S.expense(srv, u, 200, "food", "2026-11-01")
      local list = S.call(srv, u, "GET", TX)
      assert.equal("2026-11", list.json.month)
      assert.equal(1, #list.json.items)
      assert.equal(b.id, list.json.items[1].id)
      assert.equal("2026-11", S.call(srv, u, "GET", BUDGETS).json.month)
    end)

    it("monthly_averages counts October as a full month already", function()
      local u = S.register(srv, "kst-avg")
      S.income(srv, u, 3000000, "salary", "2026-10-25")
      S.expense(srv, u, 1000000, "housing", "2026-10-01")
      local avg = S.call(srv, u, "GET", "/t/ledger/averages").json
      assert.same({ monthlyIncome = 3000000, monthlyExpense = 1000000, basedOnMonths = 1 }, avg)
    end)
  end)

  describe("transaction.service for other modules (at 2026-11-15 10:00 KST)", function()
    local srv
    setup(function() srv = at("2026-11-15T10:00:00+09:00") end)
    teardown(function() srv:stop() end)

    it("monthly_averages averages the last three full months that have transactions", function()
      local u = S.register(srv, "avg")
      S.income(srv, u, 9999999, "salary", "2026-07-31")   -- before the window
      S.income(srv, u, 3000000, "salary", "2026-08-01")
      S.expense(srv, u, 1000000, "housing", "2026-08-20")
      S.income(srv, u, 3000000, "salary", "2026-09-25")
      S.expense(srv, u, 1500000, "housing", "2026-09-20")
      S.income(srv, u, 2400000, "salary", "2026-10-25")
      S.expense(srv, u, 2000001, "housing", "2026-10-31")
      S.expense(srv, u, 7777777, "travel", "2026-11-01")  -- the current month
      local avg = S.call(srv, u, "GET", "/t/ledger/averages").json
      -- (1,000,000 + 1,500,000 + 2,000,001) / 3 = 1,500,000.33 → 1,500,000
      assert.same({ monthlyIncome = 2800000, monthlyExpense = 1500000, basedOnMonths = 3 }, avg)
      -- what the profile shows as `inferred`
      local profile = S.call(srv, u, "GET", "/api/v1/profile")
      assert.equal(200, profile.status)
      assert.same(avg, profile.json.inferred)
    end)

    it("monthly_averages rounds to whole won over the months with data", function()
      local u = S.register(srv, "avg2")
      S.expense(srv, u, 100, "food", "2026-09-01")
      S.expense(srv, u, 201, "food", "2026-10-01")
      local avg = S.call(srv, u, "GET", "/t/ledger/averages").json
      assert.same({ monthlyIncome = 0, monthlyExpense = 151, basedOnMonths = 2 }, avg)
    end)

    it("monthly_averages is null over no data", function()
      local u = S.register(srv, "avg0")
      S.expense(srv, u, 100, "food", "2026-11-02")
      local res = S.call(srv, u, "GET", "/t/ledger/averages")
      assert.truthy(res.body:find('"monthlyIncome":null'))
      assert.same({ monthlyIncome = json.null, monthlyExpense = json.null, basedOnMonths = 0 }, res.json)
    end)

    it("month_summary and budget_view agree with the routes", function()
      local u = S.register(srv, "views")
      S.expense(srv, u, 12000, "food", "2026-11-03")
      S.expense(srv, u, 3000, "cafe", "2026-11-04")
      S.income(srv, u, 500000, "side", "2026-11-05")
      S.budget(srv, u, "2026-11", "food", 20000)
      S.budget(srv, u, "2026-11", nil, 100000)
      local sum = S.call(srv, u, "GET", "/t/ledger/summary/2026-11").json
      local route = S.call(srv, u, "GET", TX .. "?month=2026-11").json
      assert.equal("2026-11", sum.month)
      sum.month = nil
      assert.same(route.summary, sum)
      assert.equal(485000, sum.balance)
      local bv = S.call(srv, u, "GET", "/t/ledger/budgets/2026-11").json
      assert.same(S.call(srv, u, "GET", BUDGETS .. "?month=2026-11").json, bv)
      assert.same({ amount = 100000, spent = 15000, remaining = 85000 }, bv.total)
    end)
  end)
end)
