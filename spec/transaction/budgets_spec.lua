-- spec/transaction/budgets_spec.lua — GET/POST /budgets (lines, spent,
-- remaining, usage rate, the overall line) and the budget notifications at
-- 80% and 100%, once per threshold, line and month.
local H = require "spec.helpers.server"
local S = require "spec.transaction.support"
local json = S.json
local TX, BUDGETS = S.TX, S.BUDGETS

local function view(srv, u, month)
  local res = S.call(srv, u, "GET", BUDGETS .. "?month=" .. month)
  assert.equal(200, res.status)
  return res.json
end

local function line(v, category)
  for _, it in ipairs(v.items) do if it.category == category then return it end end
  return nil
end

local function keys(u)
  local out = {}
  for i, n in ipairs(S.budget_notifications(u)) do out[i] = n.key end
  return out
end

describe("budgets", function()
  local srv
  setup(function() srv = H.start {} end)
  teardown(function() srv:stop() end)

  it("answers a month without budgets with a null overall amount and empty items", function()
    local u = S.register(srv, "b-empty")
    S.expense(srv, u, 1500, "cafe", "2026-10-03")
    local res = S.call(srv, u, "GET", BUDGETS .. "?month=2026-10")
    assert.equal(200, res.status)
    assert.truthy(res.body:find('"items":%[%]'))
    assert.same({ month = "2026-10", items = {},
                  total = { amount = json.null, spent = 1500, remaining = json.null } }, res.json)
  end)

  it("sets lines, answers the view with spent, remaining and usageRate, in category order", function()
    local u = S.register(srv, "b-view")
    S.expense(srv, u, 30000, "food", "2026-10-01")
    S.expense(srv, u, 12000, "food", "2026-10-31")
    S.expense(srv, u, 5000, "cafe", "2026-10-15")
    S.expense(srv, u, 99000, "food", "2026-11-01")   -- another month
    S.expense(srv, u, 88000, "food", "2026-09-30")   -- another month
    S.income(srv, u, 3000000, "salary", "2026-10-25") -- income is never "spent"
    S.budget(srv, u, "2026-10", "transport", 50000)
    S.budget(srv, u, "2026-10", "food", 200000)
    local v = S.budget(srv, u, "2026-10", nil, 1000000)
    assert.equal("2026-10", v.month)
    assert.same({ amount = 1000000, spent = 47000, remaining = 953000 }, v.total)
    assert.same({
      { category = "food", amount = 200000, spent = 42000, remaining = 158000, usageRate = 0.21 },
      { category = "transport", amount = 50000, spent = 0, remaining = 50000, usageRate = 0 },
    }, v.items)
    assert.same(v, view(srv, u, "2026-10"))
    assert.same({ amount = json.null, spent = 99000, remaining = json.null }, view(srv, u, "2026-11").total)
    assert.equal(0, #view(srv, u, "2026-11").items)
  end)

  it("upserts a line, and amount 0 removes it", function()
    local u = S.register(srv, "b-upsert")
    S.budget(srv, u, "2026-10", "food", 100000)
    local v = S.budget(srv, u, "2026-10", "food", 150000)
    assert.equal(1, #v.items)
    assert.equal(150000, v.items[1].amount)
    S.budget(srv, u, "2026-10", nil, 500000)
    assert.equal(600000, S.budget(srv, u, "2026-10", nil, 600000).total.amount)
    v = S.budget(srv, u, "2026-10", "food", 0)
    assert.equal(0, #v.items)
    assert.equal(600000, v.total.amount)
    v = S.budget(srv, u, "2026-10", nil, 0)
    assert.equal(json.null, v.total.amount)
    assert.equal(json.null, v.total.remaining)
    -- removing what is not there is fine too
    assert.equal(0, #S.budget(srv, u, "2026-10", "cafe", 0).items)
    assert.equal("0", S.sql_value(string.format("SELECT count(*) FROM budgets WHERE user_id = %d", u.id)))
  end)

  it("follows spending after a transaction is updated or deleted", function()
    local u = S.register(srv, "b-follow")
    S.budget(srv, u, "2026-10", "food", 100000)
    S.budget(srv, u, "2026-10", nil, 300000)
    local a = S.expense(srv, u, 40000, "food", "2026-10-05")
    local b = S.expense(srv, u, 10000, "food", "2026-10-06")
    assert.same({ 50000, 50000, 0.5 }, { line(view(srv, u, "2026-10"), "food").spent,
                                         line(view(srv, u, "2026-10"), "food").remaining,
                                         line(view(srv, u, "2026-10"), "food").usageRate })
    -- amount changed
    S.call(srv, u, "PUT", TX .. "/" .. a.id, { type = "expense", amount = 60000, category = "food",
                                              occurredOn = "2026-10-05" })
    local v = view(srv, u, "2026-10")
    assert.same({ 70000, 30000, 0.7 }, { line(v, "food").spent, line(v, "food").remaining,
                                         line(v, "food").usageRate })
    assert.equal(70000, v.total.spent)
    -- category changed: leaves food, still counts overall
    S.call(srv, u, "PUT", TX .. "/" .. b.id, { type = "expense", amount = 10000, category = "cafe",
                                              occurredOn = "2026-10-06" })
    v = view(srv, u, "2026-10")
    assert.equal(60000, line(v, "food").spent)
    assert.same({ amount = 300000, spent = 70000, remaining = 230000 }, v.total)
    -- moved to another month
    S.call(srv, u, "PUT", TX .. "/" .. b.id, { type = "expense", amount = 10000, category = "cafe",
                                              occurredOn = "2026-11-06" })
    assert.equal(60000, view(srv, u, "2026-10").total.spent)
    -- turned into income
    S.call(srv, u, "PUT", TX .. "/" .. a.id, { type = "income", amount = 60000, category = "side",
                                              occurredOn = "2026-10-05" })
    v = view(srv, u, "2026-10")
    assert.equal(0, line(v, "food").spent)
    assert.equal(0, v.total.spent)
    -- deleted
    local c = S.expense(srv, u, 25000, "food", "2026-10-07")
    assert.equal(25000, line(view(srv, u, "2026-10"), "food").spent)
    assert.equal(204, S.call(srv, u, "DELETE", TX .. "/" .. c.id).status)
    v = view(srv, u, "2026-10")
    assert.same({ category = "food", amount = 100000, spent = 0, remaining = 100000, usageRate = 0 },
                line(v, "food"))
  end)

  it("shows overspending as a negative remaining and a rate above 1", function()
    local u = S.register(srv, "b-over")
    S.budget(srv, u, "2026-10", "cafe", 30000)
    S.budget(srv, u, "2026-10", nil, 30000)
    S.expense(srv, u, 37500, "cafe", "2026-10-09")
    local v = view(srv, u, "2026-10")
    assert.same({ category = "cafe", amount = 30000, spent = 37500, remaining = -7500, usageRate = 1.25 },
                v.items[1])
    assert.same({ amount = 30000, spent = 37500, remaining = -7500 }, v.total)
  end)

  local bad = {
    { "month missing",            { category = "food", amount = 1 },               "month" },
    { "month invalid",            { month = "2026-13", amount = 1 },               "month" },
    { "month a date",             { month = "2026-10-01", amount = 1 },            "month" },
    { "category unknown",         { month = "2026-10", category = "pets", amount = 1 }, "category" },
    { "category of income",       { month = "2026-10", category = "salary", amount = 1 }, "category" },
    { "category not a string",    { month = "2026-10", category = 3, amount = 1 }, "category" },
    { "amount missing",           { month = "2026-10", category = "food" },        "amount" },
    { "amount negative",          { month = "2026-10", amount = -1 },              "amount" },
    { "amount a fraction",        { month = "2026-10", amount = 0.5 },             "amount" },
    { "amount a string",          { month = "2026-10", amount = "1000" },          "amount" },
    { "amount absurd",            { month = "2026-10", amount = 1e15 },            "amount" },
    { "amount above 1e10",        { month = "2026-10", amount = 10000000001 },     "amount" },
  }
  for _, c in ipairs(bad) do
    it("rejects POST with " .. c[1] .. " (422), changing nothing", function()
      local u = S.register(srv, "b-bad")
      S.budget(srv, u, "2026-10", "food", 1000)
      local res = S.call(srv, u, "POST", BUDGETS, c[2])
      assert.equal(422, res.status)
      assert.equal(c[3], res.json.errors[1].field)
      assert.same({ { "food", "1000" } }, S.sql(string.format(
        "SELECT category, amount FROM budgets WHERE user_id = %d", u.id)))
    end)
  end

  it("rejects GET with an invalid month (422)", function()
    local u = S.register(srv, "b-badget")
    local res = S.call(srv, u, "GET", BUDGETS .. "?month=10-2026")
    assert.equal(422, res.status)
    assert.equal("month", res.json.errors[1].field)
  end)

  describe("notifications", function()
    it("fires at 80% and at 100%, once each per line and month", function()
      local u = S.register(srv, "n-once")
      S.budget(srv, u, "2026-10", "food", 100000)
      S.expense(srv, u, 79000, "food", "2026-10-01")
      assert.same({}, keys(u))
      S.expense(srv, u, 1000, "food", "2026-10-02")                -- 80%
      assert.same({ "budget:2026-10:food:80" }, keys(u))
      S.expense(srv, u, 5000, "food", "2026-10-03")                -- 85%: nothing new
      S.expense(srv, u, 10000, "food", "2026-10-04")               -- 95%
      assert.same({ "budget:2026-10:food:80" }, keys(u))
      S.expense(srv, u, 5000, "food", "2026-10-05")                -- exactly 100%
      assert.same({ "budget:2026-10:food:80", "budget:2026-10:food:100" }, keys(u))
      S.expense(srv, u, 50000, "food", "2026-10-06")               -- 150%: nothing new
      S.expense(srv, u, 1, "cafe", "2026-10-06")                   -- no cafe line
      assert.equal(2, #keys(u))
      local n = S.budget_notifications(u)
      assert.equal("식비 예산의 80%를 사용했어요", n[1].title)
      assert.equal("10월 식비 예산 100,000원 중 80,000원(80%)을 사용했어요. 남은 금액은 20,000원이에요.",
                   n[1].body)
      assert.same({ month = "2026-10", category = "food" }, n[1].data)
      assert.equal("식비 예산을 모두 사용했어요", n[2].title)
      -- visible in the inbox API as type budget
      local inbox = S.call(srv, u, "GET", "/api/v1/notifications")
      assert.equal(200, inbox.status)
      assert.equal(2, #inbox.json.items)
      assert.equal("budget", inbox.json.items[1].type)
    end)

    it("fires for the overall line on any expense, with category null in data", function()
      local u = S.register(srv, "n-total")
      S.budget(srv, u, "2026-10", nil, 100000)
      S.expense(srv, u, 50000, "food", "2026-10-01")
      S.expense(srv, u, 20000, "cafe", "2026-10-02")
      S.income(srv, u, 999999, "salary", "2026-10-03")               -- income never counts
      assert.same({}, keys(u))
      S.expense(srv, u, 40000, "travel", "2026-10-04")              -- 110%
      local n = S.budget_notifications(u)
      assert.equal(1, #n)                                           -- only the highest level
      assert.equal("budget:2026-10:total:100", n[1].key)
      assert.equal("전체 예산을 초과했어요", n[1].title)
      assert.equal("10월 전체 예산 100,000원 중 110,000원을 써서 10,000원 초과했어요.", n[1].body)
      assert.same({ month = "2026-10", category = json.null }, n[1].data)
    end)

    it("fires per month: the same line in another month has its own alerts", function()
      local u = S.register(srv, "n-month")
      S.budget(srv, u, "2026-10", "cafe", 10000)
      S.budget(srv, u, "2026-11", "cafe", 10000)
      S.expense(srv, u, 9000, "cafe", "2026-10-31")
      S.expense(srv, u, 8500, "cafe", "2026-11-01")
      assert.same({ "budget:2026-10:cafe:80", "budget:2026-11:cafe:80" }, keys(u))
    end)

    it("fires when an update pushes spending past a threshold", function()
      local u = S.register(srv, "n-update")
      S.budget(srv, u, "2026-10", "health", 100000)
      local t = S.expense(srv, u, 10000, "health", "2026-10-10")
      assert.same({}, keys(u))
      S.call(srv, u, "PUT", TX .. "/" .. t.id, { type = "expense", amount = 85000,
                                                category = "health", occurredOn = "2026-10-10" })
      assert.same({ "budget:2026-10:health:80" }, keys(u))
    end)

    it("fires once when concurrent writes cross the threshold together", function()
      local u = S.register(srv, "n-concurrent")
      S.budget(srv, u, "2026-10", "shopping", 100000)
      S.expense(srv, u, 70000, "shopping", "2026-10-01")
      local raw = '{"type":"expense","amount":20000,"category":"shopping","occurredOn":"2026-10-02"}'
      local reqs = {}
      for i = 1, 6 do
        reqs[i] = { "POST", TX, body = raw, headers = { Authorization = "Bearer " .. u.token,
                                                        ["Content-Type"] = "application/json" } }
      end
      for _, res in ipairs(S.concurrently(srv, reqs)) do assert.equal(201, res.status) end
      local k = keys(u)
      table.sort(k)
      -- 190,000 spent: at most one alert per threshold, and the 100% one for sure
      assert.is_true(#k == 1 or #k == 2)
      assert.equal("budget:2026-10:shopping:100", k[1])
      if #k == 2 then assert.equal("budget:2026-10:shopping:80", k[2]) end
    end)
  end)
end)
