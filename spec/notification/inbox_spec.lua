-- GET /api/v1/notifications and PUT /api/v1/notifications/:id/read through
-- the real host: unread counts, read marking, paging, isolation.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"
local json = require "cjson.safe"

describe("notification inbox", function()
  local srv, alice, bob

  -- Stores a notification through notification.service.create (the
  -- function the ledger's budget alerts use).
  local function create(user, key, extra)
    local body = { userId = user.id, type = "budget", title = "예산 80% 사용",
                   body = "이번 달 식비 예산의 80%를 사용했어요.",
                   data = { month = "2026-11", category = "food" }, dedupeKey = key }
    for k, v in pairs(extra or {}) do body[k] = v end
    local res = srv:request("POST", "/t/notify/create", { json = body })
    assert.are.equal(200, res.status, res.body)
    return res.json.id
  end

  setup(function()
    srv = H.start { fixtures = S.FIXTURES }
    alice = S.register(srv, "alice")
    bob = S.register(srv, "bob")
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("requires a token", function()
    local res = srv:request("GET", "/api/v1/notifications")
    assert.are.equal(401, res.status)
    assert.truthy(res.headers["www-authenticate"]:find("Bearer", 1, true))
    res = srv:request("PUT", "/api/v1/notifications/1/read")
    assert.are.equal(401, res.status)
  end)

  it("starts empty with an unread count of zero", function()
    local res = srv:request("GET", "/api/v1/notifications", { headers = S.auth(alice) })
    assert.are.equal(200, res.status)
    assert.are.equal("[]", res.body:match('"items":(%[%])'))
    assert.are.equal(json.null, res.json.nextCursor)
    assert.are.equal(0, res.json.unreadCount)
  end)

  it("creates once per dedupe key", function()
    local id = create(alice, "budget:2026-11:food:80")
    assert.is_number(id)
    assert.are.equal(false, create(alice, "budget:2026-11:food:80"))
    -- the same key for another user is another notification
    assert.is_number(create(bob, "budget:2026-11:food:80"))
  end)

  it("lists newest first in the API shape, and counts unread", function()
    create(alice, "budget:2026-11:food:100", { title = "예산 초과", body = "이번 달 식비 예산을 모두 사용했어요." })
    local res = srv:request("GET", "/api/v1/notifications", { headers = S.auth(alice) })
    assert.are.equal(200, res.status)
    local items = res.json.items
    assert.are.equal(2, #items)
    assert.are.equal(2, res.json.unreadCount)
    assert.is_true(items[1].id > items[2].id)
    local n = items[1]
    assert.are.equal("budget", n.type)
    assert.are.equal("예산 초과", n.title)
    assert.are.equal("이번 달 식비 예산을 모두 사용했어요.", n.body)
    assert.are.same({ month = "2026-11", category = "food" }, n.data)
    assert.are.equal(json.null, n.readAt)
    assert.truthy(n.createdAt:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d"))
    assert.truthy(n.createdAt:match("Z$") or n.createdAt:match("[+-]%d%d:%d%d$"))
    for k in pairs(n) do
      assert.truthy(({ id = 1, type = 1, title = 1, body = 1, data = 1, readAt = 1, createdAt = 1 })[k], k)
    end
  end)

  it("marks read idempotently and keeps the first readAt", function()
    local items = S.inbox(srv, alice)
    local id = items[#items].id
    local res = srv:request("PUT", "/api/v1/notifications/" .. id .. "/read", { headers = S.auth(alice) })
    assert.are.equal(200, res.status)
    assert.are.equal(id, res.json.id)
    assert.is_string(res.json.readAt)
    local first = res.json.readAt
    res = srv:request("PUT", "/api/v1/notifications/" .. id .. "/read", { headers = S.auth(alice) })
    assert.are.equal(200, res.status)
    assert.are.equal(first, res.json.readAt)

    res = srv:request("GET", "/api/v1/notifications", { headers = S.auth(alice) })
    assert.are.equal(1, res.json.unreadCount)
    res = srv:request("GET", "/api/v1/notifications?unreadOnly=true", { headers = S.auth(alice) })
    assert.are.equal(1, #res.json.items)
    assert.are_not.equal(id, res.json.items[1].id)
    assert.are.equal(1, res.json.unreadCount)
    res = srv:request("GET", "/api/v1/notifications?unreadOnly=false", { headers = S.auth(alice) })
    assert.are.equal(2, #res.json.items)
  end)

  it("answers 404 for another user's notification and for unknown ids", function()
    local mine = S.inbox(srv, bob)[1].id
    local res = srv:request("PUT", "/api/v1/notifications/" .. mine .. "/read", { headers = S.auth(alice) })
    assert.are.equal(404, res.status)
    assert.are.equal("not_found", res.json.code)
    -- bob's stays unread
    res = srv:request("GET", "/api/v1/notifications", { headers = S.auth(bob) })
    assert.are.equal(1, res.json.unreadCount)
    for _, bad in ipairs { "999999999999", "0", "abc", "-1" } do
      res = srv:request("PUT", "/api/v1/notifications/" .. bad .. "/read", { headers = S.auth(alice) })
      assert.are.equal(404, res.status, bad)
    end
  end)

  it("keeps users' inboxes apart", function()
    local a, b = S.inbox(srv, alice), S.inbox(srv, bob)
    assert.are.equal(2, #a)
    assert.are.equal(1, #b)
    for _, x in ipairs(a) do
      for _, y in ipairs(b) do assert.are_not.equal(x.id, y.id) end
    end
  end)

  it("pages with an opaque cursor and no gaps or repeats", function()
    local carol = S.register(srv, "carol")
    local ids = {}
    for i = 1, 25 do ids[i] = create(carol, "budget:2026-" .. string.format("%02d", i % 12 + 1) .. ":k" .. i .. ":80") end
    -- read three of them
    for i = 1, 3 do
      assert.are.equal(200, srv:request("PUT", "/api/v1/notifications/" .. ids[i] .. "/read",
                                        { headers = S.auth(carol) }).status)
    end
    local seen, cursor, pages = {}, nil, 0
    repeat
      local res = srv:request("GET", "/api/v1/notifications?limit=10" .. (cursor and ("&cursor=" .. cursor) or ""),
                              { headers = S.auth(carol) })
      assert.are.equal(200, res.status)
      assert.are.equal(22, res.json.unreadCount)
      pages = pages + 1
      for _, it in ipairs(res.json.items) do seen[#seen + 1] = it.id end
      cursor = res.json.nextCursor ~= json.null and res.json.nextCursor or nil
      if cursor then assert.falsy(cursor:match("^%d+$")) end
    until not cursor
    assert.are.equal(3, pages)
    assert.are.equal(25, #seen)
    for i = 1, 25 do assert.are.equal(ids[26 - i], seen[i]) end

    -- the default page is 20; unreadOnly pages the same way
    local res = srv:request("GET", "/api/v1/notifications", { headers = S.auth(carol) })
    assert.are.equal(20, #res.json.items)
    local unread = S.inbox(srv, carol, "&unreadOnly=true")
    assert.are.equal(22, #unread)
    for _, it in ipairs(unread) do assert.are.equal(json.null, it.readAt) end
  end)

  it("rejects malformed paging parameters", function()
    local res = srv:request("GET", "/api/v1/notifications?limit=0", { headers = S.auth(alice) })
    assert.are.equal(422, res.status)
    assert.are.equal("limit", res.json.errors[1].field)
    res = srv:request("GET", "/api/v1/notifications?limit=101", { headers = S.auth(alice) })
    assert.are.equal(422, res.status)
    res = srv:request("GET", "/api/v1/notifications?unreadOnly=yes", { headers = S.auth(alice) })
    assert.are.equal(422, res.status)
    assert.are.equal("unreadOnly", res.json.errors[1].field)
    res = srv:request("GET", "/api/v1/notifications?cursor=%21%21", { headers = S.auth(alice) })
    assert.are.equal(400, res.status)
    assert.are.equal("bad_request", res.json.code)
  end)

  it("documents its routes in the OpenAPI document", function()
    local res = srv:request("GET", "/api/v1/openapi.json")
    assert.are.equal(200, res.status)
    local doc = res.json
    assert.truthy(doc.paths["/api/v1/notifications"].get)
    assert.truthy(doc.paths["/api/v1/notifications/{id}/read"].put)
    local props = doc.components.schemas.Notification.properties
    for _, k in ipairs { "id", "type", "title", "body", "data", "readAt", "createdAt" } do
      assert.truthy(props[k], k)
    end
    assert.truthy(doc.components.schemas.NotificationPage.properties.unreadCount)
  end)
end)
