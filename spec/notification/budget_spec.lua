-- Budget alerts: the ledger creates them (through notification.service)
-- when an expense takes a budget line to 80% and to 100%; they appear in
-- the inbox with type "budget", month and category, each once.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"
local json = require "cjson.safe"

describe("budget notifications", function()
  local srv, user
  local MONTH = "2026-10"

  local function post(path, body)
    local res = srv:request("POST", path, { json = body, headers = S.auth(user) })
    assert.is_true(res.status == 200 or res.status == 201, path .. ": " .. res.status .. " " .. res.body)
    return res
  end

  local function expense(amount, category)
    post("/api/v1/transactions", { type = "expense", amount = amount, category = category or "food",
                                   occurredOn = MONTH .. "-15" })
  end

  local function budget_alerts()
    local out = {}
    for _, n in ipairs(S.inbox(srv, user)) do
      if n.type == "budget" then out[#out + 1] = n end
    end
    return out
  end

  setup(function()
    srv = H.start { env = { NOTIFY_TICK_MS = 600000 } }
    user = S.register(srv, "budget")
    post("/api/v1/budgets", { month = MONTH, category = "food", amount = 100000 })
    post("/api/v1/budgets", { month = MONTH, amount = 1000000 })
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("stays quiet below 80%", function()
    expense(50000)
    assert.are.same({}, budget_alerts())
  end)

  it("alerts at 80% of a category line", function()
    expense(35000) -- 85,000 of 100,000
    local alerts = budget_alerts()
    assert.are.equal(1, #alerts)
    local n = alerts[1]
    assert.are.same({ month = MONTH, category = "food" }, n.data)
    assert.truthy(n.title:find("80%", 1, true), n.title)
    assert.truthy(n.body:find("10월", 1, true), n.body)
    assert.are.equal(json.null, n.readAt)
    local res = srv:request("GET", "/api/v1/notifications?unreadOnly=true", { headers = S.auth(user) })
    assert.are.equal(1, res.json.unreadCount)
  end)

  it("alerts again at 100%, then never twice for the same line", function()
    expense(20000) -- 105,000
    local alerts = budget_alerts()
    assert.are.equal(2, #alerts)
    assert.are.same({ month = MONTH, category = "food" }, alerts[1].data)
    assert.truthy(alerts[1].title:find("초과", 1, true), alerts[1].title)
    expense(1000)
    expense(2000)
    assert.are.equal(2, #budget_alerts())
  end)

  it("alerts for the month's total with a null category", function()
    expense(800000, "shopping") -- total 908,000 of 1,000,000
    local alerts = budget_alerts()
    assert.are.equal(3, #alerts)
    assert.are.same({ month = MONTH, category = json.null }, alerts[1].data)
    assert.truthy(alerts[1].title:find("전체", 1, true), alerts[1].title)
  end)
end)
