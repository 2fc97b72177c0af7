-- spec/transaction/isolation_spec.lua — two users, every ledger route: one
-- never sees, changes or counts the other's data; another user's id is 404.
local H = require "spec.helpers.server"
local S = require "spec.transaction.support"
local json = S.json
local TX, BUDGETS = S.TX, S.BUDGETS

describe("ledger isolation between users", function()
  local srv, alice, bob, a1, a2
  setup(function()
    srv = H.start { fixtures = S.FIXTURES }
    alice = S.register(srv, "iso-alice")
    bob = S.register(srv, "iso-bob")
    a1 = S.expense(srv, alice, 90000, "food", "2026-10-10", "alice's")
    a2 = S.income(srv, alice, 2000000, "salary", "2026-10-25")
    S.budget(srv, alice, "2026-10", "food", 100000)
    S.budget(srv, alice, "2026-10", nil, 500000)
  end)
  teardown(function() srv:stop() end)

  it("GET /transactions lists and sums only the caller's transactions", function()
    local b1 = S.expense(srv, bob, 1000, "cafe", "2026-10-11")
    local res = S.call(srv, bob, "GET", TX .. "?month=2026-10")
    assert.equal(200, res.status)
    assert.equal(1, #res.json.items)
    assert.equal(b1.id, res.json.items[1].id)
    assert.same({ income = 0, expense = 1000, balance = -1000,
                  byCategory = { { category = "cafe", type = "expense", amount = 1000, count = 1 } } },
                res.json.summary)
  end)

  it("a cursor taken from another user's page does not reveal their rows", function()
    local page = S.call(srv, alice, "GET", TX .. "?month=2026-10&limit=1").json
    assert.is_string(page.nextCursor)
    local res = S.call(srv, bob, "GET", TX .. "?month=2026-10&cursor=" .. page.nextCursor)
    assert.equal(200, res.status)
    for _, it in ipairs(res.json.items) do
      assert.are_not.equal(a1.id, it.id)
      assert.are_not.equal(a2.id, it.id)
    end
  end)

  it("PUT another user's transaction is 404 and changes nothing", function()
    local res = S.call(srv, bob, "PUT", TX .. "/" .. a1.id,
                       { type = "expense", amount = 1, category = "food", occurredOn = "2026-10-10" })
    assert.equal(404, res.status)
    assert.equal("not_found", res.json.code)
    assert.same({ "90000", "alice's" }, S.sql(string.format(
      "SELECT amount, memo FROM transactions WHERE id = %d", a1.id))[1])
  end)

  it("answers 404 identically for another user's id and a missing id", function()
    local theirs = S.call(srv, bob, "DELETE", TX .. "/" .. a2.id)
    local missing = S.call(srv, bob, "DELETE", TX .. "/987654321")
    assert.equal(404, theirs.status)
    assert.equal(missing.status, theirs.status)
    assert.equal(missing.json.detail, theirs.json.detail)
  end)

  it("DELETE another user's transaction is 404 and deletes nothing", function()
    assert.equal(404, S.call(srv, bob, "DELETE", TX .. "/" .. a1.id).status)
    assert.equal("1", S.sql_value(string.format("SELECT count(*) FROM transactions WHERE id = %d", a1.id)))
  end)

  it("GET /transactions/export exports only the caller's transactions", function()
    local res = S.call(srv, bob, "GET", TX .. "/export?month=2026-10")
    assert.equal(200, res.status)
    assert.is_nil(res.body:find("alice's", 1, true))
    assert.is_nil(res.body:find("90000", 1, true))
  end)

  it("GET /budgets shows only the caller's lines and spending", function()
    local v = S.call(srv, bob, "GET", BUDGETS .. "?month=2026-10").json
    assert.equal(0, #v.items)
    assert.equal(json.null, v.total.amount)
    assert.is_true(v.total.spent < 90000)
  end)

  it("POST /budgets writes the caller's own line only", function()
    local v = S.budget(srv, bob, "2026-10", "food", 5000)
    assert.equal(1, #v.items)
    assert.equal(5000, v.items[1].amount)
    assert.equal(0, v.items[1].spent)                 -- alice's 90,000 food is not bob's
    S.budget(srv, bob, "2026-10", nil, 0)             -- removing bob's (absent) overall line …
    local mine = S.call(srv, alice, "GET", BUDGETS .. "?month=2026-10").json
    assert.equal(500000, mine.total.amount)           -- … leaves alice's alone
    assert.equal(100000, mine.items[1].amount)
    assert.equal(90000, mine.items[1].spent)
  end)

  it("another user's spending never fires the caller's budget alerts", function()
    local carol = S.register(srv, "iso-carol")
    local dave = S.register(srv, "iso-dave")
    S.budget(srv, carol, "2026-10", "travel", 10000)
    S.budget(srv, dave, "2026-10", "travel", 10000)
    S.expense(srv, dave, 20000, "travel", "2026-10-05")
    assert.equal(0, #S.budget_notifications(carol))
    assert.equal(1, #S.budget_notifications(dave))
  end)

  it("the service functions other modules use are per user", function()
    local e = S.register(srv, "iso-empty")
    local sum = S.call(srv, e, "GET", "/t/ledger/summary/2026-10").json
    assert.same({ 0, 0, 0 }, { sum.income, sum.expense, #sum.byCategory })
    local bv = S.call(srv, e, "GET", "/t/ledger/budgets/2026-10").json
    assert.same({ 0, 0 }, { #bv.items, bv.total.spent })
  end)
end)
