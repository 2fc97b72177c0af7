-- spec/transaction/idempotency_spec.lua — POST /transactions with an
-- Idempotency-Key: a retry from a flaky mobile network never books twice.
local H = require "spec.helpers.server"
local S = require "spec.transaction.support"
local TX = S.TX

local function body(amount, memo)
  return { type = "expense", amount = amount or 8900, category = "transport",
           occurredOn = "2026-10-12", memo = memo }
end

local function post(srv, user, key, b)
  return S.call(srv, user, "POST", TX, b, key and { ["Idempotency-Key"] = key } or nil)
end

describe("Idempotency-Key on POST /transactions", function()
  local srv, u
  setup(function()
    srv = H.start {}
    u = S.register(srv, "idem")
  end)
  teardown(function() srv:stop() end)

  it("answers a retry with the original response and stores one row", function()
    local key = "retry-" .. S.run_id
    local first = post(srv, u, key, body(8900, "택시"))
    assert.equal(201, first.status)
    assert.is_nil(first.headers["idempotent-replayed"])
    local before = S.count_rows(u)
    local again = post(srv, u, key, body(8900, "택시"))
    assert.equal(201, again.status)
    assert.equal(first.body, again.body)
    assert.equal("true", again.headers["idempotent-replayed"])
    assert.equal("application/json", again.headers["content-type"])
    assert.equal(before, S.count_rows(u))
  end)

  it("counts the same values in another key order or spacing as the same request", function()
    local key = "order-" .. S.run_id
    local h = S.auth(u, { ["Idempotency-Key"] = key, ["Content-Type"] = "application/json" })
    local a = srv:request("POST", TX, { headers = h, body =
      '{"type":"expense","amount":100,"category":"food","occurredOn":"2026-10-01"}' })
    assert.equal(201, a.status)
    local b = srv:request("POST", TX, { headers = h, body =
      '{ "occurredOn": "2026-10-01", "category": "food", "amount": 100, "type": "expense", "x": 1 }' })
    assert.equal(201, b.status)
    assert.equal(a.json.id, b.json.id)
  end)

  it("answers the original response even after the transaction was edited", function()
    local key = "edited-" .. S.run_id
    local first = post(srv, u, key, body(5000))
    assert.equal(200, S.call(srv, u, "PUT", TX .. "/" .. first.json.id, body(6000)).status)
    local again = post(srv, u, key, body(5000))
    assert.equal(first.body, again.body)
  end)

  it("rejects the same key with another body with 422 and stores nothing", function()
    local key = "misuse-" .. S.run_id
    assert.equal(201, post(srv, u, key, body(1000)).status)
    local before = S.count_rows(u)
    for _, b in ipairs({ body(1001), body(1000, "memo"), { type = "income", amount = 1000,
                         category = "salary", occurredOn = "2026-10-12" } }) do
      local res = post(srv, u, key, b)
      assert.equal(422, res.status)
      assert.equal("validation_failed", res.json.code)
      assert.equal("Idempotency-Key", res.json.errors[1].field)
    end
    assert.equal(before, S.count_rows(u))
  end)

  it("does not spend a key on an invalid request", function()
    local key = "invalid-first-" .. S.run_id
    assert.equal(422, post(srv, u, key, body(-5)).status)
    local ok = post(srv, u, key, body(5))
    assert.equal(201, ok.status)
    assert.is_nil(ok.headers["idempotent-replayed"])
  end)

  it("keeps keys per user: another user's key of the same name is independent", function()
    local other = S.register(srv, "idem-other")
    local key = "shared-name-" .. S.run_id
    local a = post(srv, u, key, body(700))
    local b = post(srv, other, key, body(700))
    assert.equal(201, b.status)
    assert.are_not.equal(a.json.id, b.json.id)
    assert.is_nil(b.headers["idempotent-replayed"])
    assert.equal(1, S.count_rows(other))
  end)

  it("creates one row for concurrent identical requests, all answered alike", function()
    local c = S.register(srv, "idem-concurrent")
    local raw = '{"type":"expense","amount":45000,"category":"shopping","occurredOn":"2026-10-20"}'
    for round = 1, 3 do
      local key = "concurrent-" .. round .. "-" .. S.run_id
      local reqs = {}
      for i = 1, 8 do
        reqs[i] = { "POST", TX, body = raw, headers = {
          Authorization = "Bearer " .. c.token, ["Content-Type"] = "application/json",
          ["Idempotency-Key"] = key } }
      end
      local res = S.concurrently(srv, reqs)
      local replayed = 0
      for i = 1, #res do
        assert.equal(201, res[i].status)
        assert.equal(res[1].body, res[i].body)
        if res[i].headers["idempotent-replayed"] then replayed = replayed + 1 end
      end
      assert.equal(7, replayed)
      assert.equal(round, S.count_rows(c))
    end
  end)

  it("without a key, identical requests are distinct transactions", function()
    local d = S.register(srv, "idem-none")
    post(srv, d, nil, body(1))
    post(srv, d, nil, body(1))
    assert.equal(2, S.count_rows(d))
  end)

  it("forgets a key after 24 hours", function()
    local key = "expired-" .. S.run_id
    local first = post(srv, u, key, body(300))
    S.sql(string.format([[UPDATE idempotency_keys SET created_at = now() - interval '25 hours',
                            expires_at = now() - interval '1 hour'
                          WHERE user_id = %d AND key = '%s']], u.id, key))
    local before = S.count_rows(u)
    local later = post(srv, u, key, body(300))
    assert.equal(201, later.status)
    assert.is_nil(later.headers["idempotent-replayed"])
    assert.are_not.equal(first.json.id, later.json.id)
    assert.equal(before + 1, S.count_rows(u))
    -- and the renewed key now replays the new transaction
    assert.equal(later.body, post(srv, u, key, body(300)).body)
  end)

  it("rejects a malformed key with 422", function()
    for _, key in ipairs({ string.rep("k", 256), "has space", "한글키" }) do
      local res = post(srv, u, key, body(1))
      assert.equal(422, res.status)
      assert.equal("Idempotency-Key", res.json.errors[1].field)
    end
    assert.equal(201, post(srv, u, string.rep("k", 255), body(1)).status)
  end)

  it("is documented in the OpenAPI document", function()
    local doc = srv:request("GET", "/api/v1/openapi.json").json
    local params = doc.paths["/api/v1/transactions"].post.parameters
    assert.equal("Idempotency-Key", params[1].name)
  end)
end)
