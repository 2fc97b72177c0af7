-- Push: after a notification is stored, the host POSTs it as JSON to
-- PUSH_WEBHOOK_URL in the background; when the gateway is down the
-- notification is still there, the tries are counted, and the retry sweep
-- delivers it later.
local H = require "spec.helpers.server"
local S = require "spec.notification.support"
local json = require "cjson.safe"

describe("push webhook", function()
  local srv, user, receiver, down_port

  local function create(key)
    local res = srv:request("POST", "/t/notify/create", { json = {
      userId = user.id, type = "budget", title = "예산 초과",
      body = "이번 달 전체 예산을 모두 사용했어요.",
      data = { month = "2026-11", category = json.null }, dedupeKey = key } })
    assert.are.equal(200, res.status, res.body)
    return res.json.id
  end

  -- one server at a time, whatever a failed test left behind
  local function start(url)
    if srv then srv:stop() end
    srv = H.start { fixtures = S.FIXTURES, env = { PUSH_WEBHOOK_URL = url, NOTIFY_TICK_MS = 600000 } }
  end

  local function row(id)
    return srv:request("GET", "/t/notify/row/" .. id).json
  end

  setup(function()
    receiver = S.receiver()
    -- a port with nothing listening: the gateway that is down
    local probe = S.receiver()
    down_port = probe.port
    probe:close()
  end)

  teardown(function()
    if srv then srv:stop() end
    if receiver then receiver:close() end
  end)

  it("POSTs the stored notification as JSON without delaying the request", function()
    start(receiver.url)
    user = S.register(srv, "push")
    -- the create request is answered before the gateway is served at all
    local id = create("budget:2026-11:total:100")
    assert.is_number(id)
    local req = receiver:wait_for(id, 15)
    assert.truthy(req, "the webhook received the notification")
    assert.truthy(req.line:match("^POST /push HTTP/1%.[01]$"), req.line)
    assert.truthy(req.headers["content-type"]:find("application/json", 1, true))
    assert.are.equal("notification-" .. id, req.headers["idempotency-key"])
    local body = req.json
    assert.are.equal(id, body.id)
    assert.are.equal(user.id, body.userId)
    assert.are.equal("budget", body.type)
    assert.are.equal("예산 초과", body.title)
    assert.are.equal("이번 달 전체 예산을 모두 사용했어요.", body.body)
    assert.are.equal("2026-11", body.data.month)
    assert.are.equal(json.null, body.data.category)
    assert.is_string(body.createdAt)
    S.eventually(function() return row(id).pushed end, 10, "pushed_at")
    assert.are.equal(1, row(id).push_attempts)
  end)

  it("loses nothing while the gateway is down and delivers on the retry sweep", function()
    local url = "http://127.0.0.1:" .. down_port .. "/push"
    start(url)
    user = S.register(srv, "pushdown")
    local id = create("budget:2026-11:total:80")
    assert.is_number(id)
    -- the quick retries all fail; each is counted and pushed_at stays NULL
    S.eventually(function() return row(id).push_attempts == 3 end, 15, "three push attempts")
    assert.is_false(row(id).pushed)
    -- the notification is there for the app all the same
    local items = S.inbox(srv, user)
    assert.are.equal(1, #items)
    assert.are.equal(id, items[1].id)

    -- the gateway comes back on the same port; the sweep delivers
    local back = S.receiver(down_port)
    local res = srv:request("POST", "/t/notify/sweep")
    assert.are.equal(202, res.status)
    local req = back:wait_for(id, 15)
    back:close()
    assert.truthy(req, "the sweep pushed the notification")
    assert.are.equal(user.id, req.json.userId)
    S.eventually(function() return row(id).pushed end, 10, "pushed_at after the sweep")
    assert.are.equal(4, row(id).push_attempts)
  end)
end)
