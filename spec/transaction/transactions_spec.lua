-- spec/transaction/transactions_spec.lua — the transaction routes against the
-- real host and PostgreSQL: create/list/update/delete, every validation
-- error, the month summary, paging, categories, CSV export, OpenAPI.
local H = require "spec.helpers.server"
local S = require "spec.transaction.support"
local json = S.json
local TX = S.TX

local function field_errors(res)
  local fields = {}
  for _, e in ipairs(res.json and res.json.errors or {}) do fields[e.field] = e.message end
  return fields
end

local function valid(over)
  local t = { type = "expense", amount = 12000, category = "food", occurredOn = "2026-10-15",
              memo = "점심" }
  for k, v in pairs(over or {}) do
    if v == json.null and k ~= "memo" then t[k] = nil else t[k] = v end
  end
  return t
end

describe("transactions", function()
  local srv, alice
  setup(function()
    srv = H.start {}
    alice = S.register(srv, "alice")
  end)
  teardown(function() srv:stop() end)

  describe("GET /categories", function()
    it("lists every category with its Korean label and type, without a token", function()
      local res = srv:request("GET", "/api/v1/categories")
      assert.equal(200, res.status)
      local items = res.json.items
      assert.equal(22, #items)
      local by = {}
      for _, c in ipairs(items) do by[c.code] = c end
      assert.same({ code = "food", label = "식비", type = "expense" }, by.food)
      assert.same({ code = "cafe", label = "카페·간식", type = "expense" }, by.cafe)
      assert.same({ code = "loan", label = "대출 상환", type = "expense" }, by.loan)
      assert.same({ code = "salary", label = "급여", type = "income" }, by.salary)
      assert.same({ code = "etc_income", label = "기타 수입", type = "income" }, by.etc_income)
      local expense = 0
      for _, c in ipairs(items) do if c.type == "expense" then expense = expense + 1 end end
      assert.equal(16, expense)
      assert.equal(json.null, res.json.nextCursor)
    end)
  end)

  describe("POST /transactions", function()
    it("creates a transaction and answers 201 with it", function()
      local res = S.call(srv, alice, "POST", TX, valid())
      assert.equal(201, res.status)
      local t = res.json
      assert.is_number(t.id)
      assert.equal("expense", t.type)
      assert.equal(12000, t.amount)
      assert.equal("food", t.category)
      assert.equal("2026-10-15", t.occurredOn)
      assert.equal("점심", t.memo)
      assert.truthy(t.createdAt:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z$"))
      assert.truthy(t.updatedAt:match("^%d%d%d%d%-%d%d%-%d%dT"))
      assert.truthy(res.body:find('"amount":12000[,}]'))  -- an integer, no fraction
    end)

    it("stores a missing or null memo as null and ignores unknown fields", function()
      local a = S.call(srv, alice, "POST", TX, valid { memo = json.null, extra = "x", id = 999999 })
      assert.equal(201, a.status)
      assert.equal(json.null, a.json.memo)
      assert.is_nil(a.json.extra)
      assert.are_not.equal(999999, a.json.id)
      local b = S.call(srv, alice, "POST", TX,
                       { type = "income", amount = 5, category = "side", occurredOn = "2026-10-01" })
      assert.equal(201, b.status)
      assert.equal(json.null, b.json.memo)
    end)

    it("accepts the boundaries: amount 1 and 1e10 (100억), a leap day, a 200-character Korean memo", function()
      assert.equal(201, S.call(srv, alice, "POST", TX, valid { amount = 1 }).status)
      local big = S.call(srv, alice, "POST", TX, valid { amount = 10000000000 })
      assert.equal(201, big.status)
      assert.equal(10000000000, big.json.amount)
      assert.equal(201, S.call(srv, alice, "POST", TX, valid { occurredOn = "2024-02-29" }).status)
      local memo = string.rep("가", 200)
      local res = S.call(srv, alice, "POST", TX, valid { memo = memo })
      assert.equal(201, res.status)
      assert.equal(memo, res.json.memo)
    end)

    local cases = {
      { "type missing",              { type = json.null },                 "type" },
      { "type not in the list",      { type = "transfer" },                "type" },
      { "type not a string",         { type = 1 },                         "type" },
      { "amount missing",            { amount = json.null },               "amount" },
      { "amount zero",               { amount = 0 },                       "amount" },
      { "amount negative",           { amount = -500 },                    "amount" },
      { "amount a fraction",         { amount = 1200.5 },                  "amount" },
      { "amount a string",           { amount = "12000" },                 "amount" },
      { "amount a boolean",          { amount = true },                    "amount" },
      { "amount an object",          { amount = { value = 1 } },           "amount" },
      { "amount absurd (1e10 + 1)",  { amount = 10000000001 },             "amount" },
      { "amount absurd (1e12)",      { amount = 1000000000000 },           "amount" },
      { "amount absurd (1e300)",     { amount = 1e300 },                   "amount" },
      { "category missing",          { category = json.null },             "category" },
      { "category unknown",          { category = "pets" },                "category" },
      { "category of the other type", { category = "salary" },             "category" },
      { "income with an expense category", { type = "income", category = "food" }, "category" },
      { "occurredOn missing",        { occurredOn = json.null },           "occurredOn" },
      { "occurredOn 30 February",    { occurredOn = "2026-02-30" },        "occurredOn" },
      { "occurredOn 29 Feb, not leap", { occurredOn = "2025-02-29" },      "occurredOn" },
      { "occurredOn month 13",       { occurredOn = "2026-13-01" },        "occurredOn" },
      { "occurredOn day 00",         { occurredOn = "2026-10-00" },        "occurredOn" },
      { "occurredOn with slashes",   { occurredOn = "2026/10/01" },        "occurredOn" },
      { "occurredOn a timestamp",    { occurredOn = "2026-10-01T10:00:00+09:00" }, "occurredOn" },
      { "occurredOn a number",       { occurredOn = 20261001 },            "occurredOn" },
      { "occurredOn absurd year",    { occurredOn = "9999-01-01" },        "occurredOn" },
      { "memo 201 characters",       { memo = string.rep("가", 201) },     "memo" },
      { "memo not a string",         { memo = 42 },                        "memo" },
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1] .. " with 422 naming the field, and stores nothing", function()
        local before = S.count_rows(alice)
        local res = S.call(srv, alice, "POST", TX, valid(c[2]))
        assert.equal(422, res.status)
        assert.equal("application/problem+json", res.headers["content-type"])
        assert.equal("validation_failed", res.json.code)
        assert.is_string(field_errors(res)[c[3]])
        assert.equal(before, S.count_rows(alice))
      end)
    end

    it("lists every invalid field at once", function()
      local res = S.call(srv, alice, "POST", TX, { type = "x", amount = -1, category = "?",
                                                   occurredOn = "2026-02-31", memo = false })
      assert.equal(422, res.status)
      local f = field_errors(res)
      assert.is_string(f.type)
      assert.is_string(f.amount)
      assert.is_string(f.category)
      assert.is_string(f.occurredOn)
      assert.is_string(f.memo)
    end)

    it("rejects a memo that is not valid UTF-8 with 422", function()
      local before = S.count_rows(alice)
      local body = '{"type":"expense","amount":1,"category":"food","occurredOn":"2026-10-01","memo":"\255\254"}'
      local res = srv:request("POST", TX, { body = body, headers = S.auth(alice,
                              { ["Content-Type"] = "application/json" }) })
      assert.equal(422, res.status)
      assert.is_string(field_errors(res).memo)
      assert.equal(before, S.count_rows(alice))
    end)

    it("answers 400 for a body that is not JSON or not an object, 415 for another type", function()
      local h = S.auth(alice, { ["Content-Type"] = "application/json" })
      assert.equal(400, srv:request("POST", TX, { body = "{nope", headers = h }).status)
      assert.equal(400, srv:request("POST", TX, { body = "[1,2]", headers = h }).status)
      local res = srv:request("POST", TX, { body = "type=expense",
        headers = S.auth(alice, { ["Content-Type"] = "application/x-www-form-urlencoded" }) })
      assert.equal(415, res.status)
      assert.equal("unsupported_media_type", res.json.code)
    end)
  end)

  describe("GET /transactions?month=", function()
    local bob
    setup(function()
      bob = S.register(srv, "bob")
    end)

    it("answers an empty month with empty arrays and zero sums", function()
      local res = S.call(srv, bob, "GET", TX .. "?month=2025-01")
      assert.equal(200, res.status)
      assert.equal("2025-01", res.json.month)
      assert.truthy(res.body:find('"items":%[%]'))
      assert.truthy(res.body:find('"byCategory":%[%]'))
      assert.equal(json.null, res.json.nextCursor)
      assert.same({ income = 0, expense = 0, balance = 0, byCategory = {} }, res.json.summary)
    end)

    it("summarises the whole month by type and by category (every category, many rows)", function()
      local u = S.register(srv, "many")
      local expect = {}          -- category → {amount, count}
      local income, expense = 0, 0
      local res = srv:request("GET", "/api/v1/categories")
      for i, c in ipairs(res.json.items) do
        for k = 1, (i % 3) + 1 do
          local amount = i * 1000 + k
          S.add(srv, u, { type = c.type, amount = amount, category = c.code,
                          occurredOn = string.format("2026-09-%02d", (i + k) % 28 + 1) })
          local e = expect[c.code] or { amount = 0, count = 0, type = c.type }
          e.amount, e.count = e.amount + amount, e.count + 1
          expect[c.code] = e
          if c.type == "income" then income = income + amount else expense = expense + amount end
        end
      end
      -- a neighbour month that must not count
      S.expense(srv, u, 777, "food", "2026-10-01")
      S.expense(srv, u, 888, "food", "2026-08-31")

      local list = S.call(srv, u, "GET", TX .. "?month=2026-09&limit=5")
      assert.equal(200, list.status)
      assert.equal(5, #list.json.items)              -- one page …
      local s = list.json.summary                     -- … but the whole month
      assert.equal(income, s.income)
      assert.equal(expense, s.expense)
      assert.equal(income - expense, s.balance)
      assert.equal(22, #s.byCategory)
      for _, b in ipairs(s.byCategory) do
        local e = expect[b.category]
        assert.same({ category = b.category, type = e.type, amount = e.amount, count = e.count }, b)
      end
    end)

    it("returns items newest first by occurredOn, then by id", function()
      local u = S.register(srv, "order")
      local a = S.expense(srv, u, 1, "food", "2026-10-03")
      local b = S.expense(srv, u, 2, "food", "2026-10-20")
      local c = S.expense(srv, u, 3, "food", "2026-10-03")
      local d = S.income(srv, u, 4, "salary", "2026-10-31")
      local items = S.call(srv, u, "GET", TX .. "?month=2026-10").json.items
      local ids = {}
      for i, it in ipairs(items) do ids[i] = it.id end
      assert.same({ d.id, b.id, c.id, a.id }, ids)
    end)

    it("filters items by type and category, the summary still covering the month", function()
      local u = S.register(srv, "filter")
      S.expense(srv, u, 100, "food")
      S.expense(srv, u, 200, "cafe")
      S.income(srv, u, 1000, "salary", "2026-10-10")
      local r1 = S.call(srv, u, "GET", TX .. "?month=2026-10&type=income")
      assert.equal(1, #r1.json.items)
      assert.equal("salary", r1.json.items[1].category)
      assert.equal(300, r1.json.summary.expense)
      local r2 = S.call(srv, u, "GET", TX .. "?month=2026-10&category=cafe")
      assert.equal(1, #r2.json.items)
      assert.equal(200, r2.json.items[1].amount)
      assert.equal(1000, r2.json.summary.income)
      local r3 = S.call(srv, u, "GET", TX .. "?month=2026-10&type=expense&category=food")
      assert.equal(1, #r3.json.items)
    end)

    it("pages with limit and an opaque cursor, default 100 and at most 1000", function()
      local u = S.register(srv, "pager")
      local values = {}
      for i = 1, 105 do
        values[#values + 1] = string.format(
          "(%d, 'expense', %d, 'food', DATE '2026-07-01' + %d)", u.id, i, i % 31)
      end
      S.sql("INSERT INTO transactions (user_id, type, amount, category, occurred_on) VALUES " ..
            table.concat(values, ","))
      local first = S.call(srv, u, "GET", TX .. "?month=2026-07")
      assert.equal(100, #first.json.items)
      assert.is_string(first.json.nextCursor)
      local rest = S.call(srv, u, "GET", TX .. "?month=2026-07&cursor=" .. first.json.nextCursor)
      assert.equal(5, #rest.json.items)
      assert.equal(json.null, rest.json.nextCursor)
      assert.equal(105, #S.call(srv, u, "GET", TX .. "?month=2026-07&limit=1000").json.items)
      local items, pages = S.all_items(srv, u, "2026-07", 10)
      assert.equal(105, #items)
      assert.equal(11, pages)
      for i = 2, #items do
        local p, c = items[i - 1], items[i]
        assert.is_true(p.occurredOn > c.occurredOn or (p.occurredOn == c.occurredOn and p.id > c.id))
      end
    end)

    it("keeps paging stable under inserts: no item twice, none skipped", function()
      local u = S.register(srv, "stable")
      local before = {}
      for i = 1, 30 do
        local t = S.expense(srv, u, i, "food", string.format("2026-06-%02d", (i % 10) + 10))
        before[t.id] = true
      end
      local page1 = S.call(srv, u, "GET", TX .. "?month=2026-06&limit=12")
      assert.equal(12, #page1.json.items)
      -- new rows land before, inside and after the position of the cursor
      S.expense(srv, u, 901, "food", "2026-06-30")
      S.expense(srv, u, 902, "food", page1.json.items[12].occurredOn)
      local late = S.expense(srv, u, 903, "food", "2026-06-09")
      local seen, cursor = {}, page1.json.nextCursor
      for _, it in ipairs(page1.json.items) do seen[it.id] = (seen[it.id] or 0) + 1 end
      while cursor ~= json.null do
        local res = S.call(srv, u, "GET", TX .. "?month=2026-06&limit=12&cursor=" .. cursor)
        assert.equal(200, res.status)
        for _, it in ipairs(res.json.items) do seen[it.id] = (seen[it.id] or 0) + 1 end
        cursor = res.json.nextCursor
      end
      for id in pairs(before) do assert.equal(1, seen[id]) end
      for _, count in pairs(seen) do assert.equal(1, count) end
      assert.equal(1, seen[late.id])   -- behind the cursor: the next pages have it
    end)

    local bad_queries = {
      { "month=2026-13", "month" }, { "month=2026-1", "month" }, { "month=202610", "month" },
      { "month=2026-10&limit=0", "limit" }, { "month=2026-10&limit=1001", "limit" },
      { "month=2026-10&limit=ten", "limit" }, { "month=2026-10&limit=-5", "limit" },
      { "month=2026-10&type=transfer", "type" }, { "month=2026-10&category=pets", "category" },
      { "month=2026-10&type=income&category=food", "category" },
    }
    for _, q in ipairs(bad_queries) do
      it("answers 422 for ?" .. q[1], function()
        local res = S.call(srv, alice, "GET", TX .. "?" .. q[1])
        assert.equal(422, res.status)
        assert.is_string(field_errors(res)[q[2]])
      end)
    end

    it("answers 400 for a cursor it did not make", function()
      for _, c in ipairs({ "garbage!", "dDIwMjYtMTAtMzE", "eDE6Mg", "dDIwMjYtMTMtMDE6MQ" }) do
        local res = S.call(srv, alice, "GET", TX .. "?month=2026-10&cursor=" .. c)
        assert.equal(400, res.status)
        assert.equal("bad_request", res.json.code)
      end
    end)
  end)

  describe("PUT /transactions/:id", function()
    it("replaces every field and answers 200 with the new transaction", function()
      local t = S.expense(srv, alice, 5000, "cafe", "2026-10-02", "커피")
      local res = S.call(srv, alice, "PUT", TX .. "/" .. t.id,
        { type = "income", amount = 70000, category = "allowance", occurredOn = "2026-11-01",
          memo = "용돈" })
      assert.equal(200, res.status)
      local u = res.json
      assert.equal(t.id, u.id)
      assert.same({ "income", 70000, "allowance", "2026-11-01", "용돈", t.createdAt },
                  { u.type, u.amount, u.category, u.occurredOn, u.memo, u.createdAt })
      assert.are_not.equal(t.updatedAt, u.updatedAt)
      local nov = S.call(srv, alice, "GET", TX .. "?month=2026-11&type=income").json.items
      local found = false
      for _, it in ipairs(nov) do if it.id == t.id then found = true end end
      assert.is_true(found)
    end)

    it("clears the memo when it is left out", function()
      local t = S.expense(srv, alice, 5000, "cafe", "2026-10-02", "메모")
      local res = S.call(srv, alice, "PUT", TX .. "/" .. t.id,
        { type = "expense", amount = 5000, category = "cafe", occurredOn = "2026-10-02" })
      assert.equal(200, res.status)
      assert.equal(json.null, res.json.memo)
    end)

    it("requires every field and validates like POST, changing nothing", function()
      local t = S.expense(srv, alice, 5000, "cafe", "2026-10-02", "그대로")
      local partial = S.call(srv, alice, "PUT", TX .. "/" .. t.id, { amount = 6000 })
      assert.equal(422, partial.status)
      local f = field_errors(partial)
      assert.is_string(f.type)
      assert.is_string(f.category)
      assert.is_string(f.occurredOn)
      local bad = S.call(srv, alice, "PUT", TX .. "/" .. t.id, valid { amount = 1.25 })
      assert.equal(422, bad.status)
      local row = S.sql(string.format("SELECT amount, memo FROM transactions WHERE id = %d", t.id))[1]
      assert.same({ "5000", "그대로" }, row)
    end)

    it("answers 404 for an unknown or malformed id", function()
      for _, id in ipairs({ "999999999", "0", "abc", "-1", "1.5", "12345678901234567890" }) do
        local res = S.call(srv, alice, "PUT", TX .. "/" .. id, valid())
        assert.equal(404, res.status)
        assert.equal("not_found", res.json.code)
      end
    end)
  end)

  describe("DELETE /transactions/:id", function()
    it("deletes and answers 204, then 404", function()
      local t = S.expense(srv, alice, 4321, "etc", "2026-05-05")
      local res = S.call(srv, alice, "DELETE", TX .. "/" .. t.id)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.equal(404, S.call(srv, alice, "DELETE", TX .. "/" .. t.id).status)
      assert.equal(0, #S.call(srv, alice, "GET", TX .. "?month=2026-05").json.items)
      assert.equal(404, S.call(srv, alice, "DELETE", TX .. "/nope").status)
    end)
  end)

  describe("GET /transactions/export?month=", function()
    it("sends the month as CSV in UTF-8 with a BOM, oldest first, fields escaped", function()
      local u = S.register(srv, "csv")
      S.income(srv, u, 2500000, "salary", "2026-10-25")
      S.expense(srv, u, 12000, "food", "2026-10-03", "김밥, \"라면\"\n야식")
      S.expense(srv, u, 3000, "cafe", "2026-10-03", "=HYPERLINK(\"x\")")
      S.expense(srv, u, 999, "food", "2026-11-01", "다음 달")
      local res = S.call(srv, u, "GET", TX .. "/export?month=2026-10")
      assert.equal(200, res.status)
      assert.equal("text/csv; charset=utf-8", res.headers["content-type"])
      assert.truthy(res.headers["content-disposition"]:find('filename="lifeplan%-2026%-10%.csv"'))
      assert.equal("\239\187\191", res.body:sub(1, 3))
      local expected = "\239\187\191날짜,구분,카테고리,금액,메모\r\n" ..
        "2026-10-03,지출,식비,12000,\"김밥, \"\"라면\"\"\n야식\"\r\n" ..
        "2026-10-03,지출,카페·간식,3000,\"'=HYPERLINK(\"\"x\"\")\"\r\n" ..
        "2026-10-25,수입,급여,2500000,\r\n"
      assert.equal(expected, res.body)
    end)

    it("validates the month", function()
      local res = S.call(srv, alice, "GET", TX .. "/export?month=2026-00")
      assert.equal(422, res.status)
      assert.is_string(field_errors(res).month)
    end)
  end)

  describe("authentication", function()
    local routes = {
      { "GET", TX .. "?month=2026-10" }, { "POST", TX }, { "PUT", TX .. "/1" },
      { "DELETE", TX .. "/1" }, { "GET", TX .. "/export?month=2026-10" },
      { "GET", "/api/v1/budgets?month=2026-10" }, { "POST", "/api/v1/budgets" },
    }
    for _, r in ipairs(routes) do
      it("answers 401 with WWW-Authenticate for " .. r[1] .. " " .. r[2] .. " without a valid token", function()
        local res = srv:request(r[1], r[2], { json = valid() })
        assert.equal(401, res.status)
        assert.truthy((res.headers["www-authenticate"] or ""):find("^Bearer"))
        local bad = srv:request(r[1], r[2], { json = valid(),
                                             headers = { Authorization = "Bearer not.a.token" } })
        assert.equal(401, bad.status)
      end)
    end
  end)

  describe("OpenAPI", function()
    it("documents every ledger route", function()
      local res = srv:request("GET", "/api/v1/openapi.json")
      assert.equal(200, res.status)
      local p = res.json.paths
      assert.is_table(p["/api/v1/transactions"].get)
      assert.is_table(p["/api/v1/transactions"].post)
      assert.is_table(p["/api/v1/transactions/{id}"].put)
      assert.is_table(p["/api/v1/transactions/{id}"].delete)
      assert.is_table(p["/api/v1/transactions/export"].get)
      assert.is_table(p["/api/v1/budgets"].get)
      assert.is_table(p["/api/v1/budgets"].post)
      assert.is_table(p["/api/v1/categories"].get)
      local s = res.json.components.schemas
      assert.is_table(s.Transaction)
      assert.is_table(s.BudgetView)
    end)
  end)
end)
