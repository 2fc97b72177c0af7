-- spec/transaction/support.lua — helpers shared by the ledger specs: users
-- through the real auth API, JSON requests with a token, requests sent
-- concurrently on separate connections, SQL for inspection (psql).
local H      = require "spec.helpers.server"
local json   = require "cjson.safe"

local S = {}

S.FIXTURES = { "spec/transaction/fixtures" }
S.TX = "/api/v1/transactions"
S.BUDGETS = "/api/v1/budgets"

-- A random suffix so runs never collide in the shared test database.
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
S.run_id = string.format("%d%04d", os.time() % 100000, math.random(0, 9999))

local n = 0
-- Registers a user through POST /auth/register → {id, token, email}.
function S.register(srv, name)
  n = n + 1
  local email = string.format("ledger-%s-%s-%d@example.com", name or "u", S.run_id, n)
  local res = srv:request("POST", "/api/v1/auth/register",
                          { json = { email = email, password = "correct horse 1", name = name } })
  assert(res.status == 201, "register: " .. tostring(res.status) .. " " .. res.body)
  return { id = res.json.user.id, token = res.json.accessToken, email = email }
end

function S.auth(user, extra)
  local h = { Authorization = "Bearer " .. user.token }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- srv:request with the user's token; body (a table) sent as JSON.
function S.call(srv, user, method, path, body, headers)
  return srv:request(method, path, { headers = S.auth(user, headers), json = body })
end

-- POST /transactions that must succeed → the transaction.
function S.add(srv, user, t)
  local res = S.call(srv, user, "POST", S.TX, t)
  assert(res.status == 201, "create: " .. res.status .. " " .. res.body)
  return res.json
end

function S.expense(srv, user, amount, category, on, memo)
  return S.add(srv, user, { type = "expense", amount = amount, category = category or "food",
                            occurredOn = on or "2026-10-15", memo = memo })
end

function S.income(srv, user, amount, category, on)
  return S.add(srv, user, { type = "income", amount = amount, category = category or "salary",
                            occurredOn = on or "2026-10-25" })
end

function S.budget(srv, user, month, category, amount)
  local res = S.call(srv, user, "POST", S.BUDGETS,
                     { month = month, category = category or json.null, amount = amount })
  assert(res.status == 200, "budget: " .. res.status .. " " .. res.body)
  return res.json
end

-- Every item of a month through the API, following cursors.
function S.all_items(srv, user, month, limit)
  local items, cursor, pages = {}, nil, 0
  repeat
    local path = S.TX .. "?month=" .. month .. "&limit=" .. (limit or 1000) ..
                 (cursor and ("&cursor=" .. cursor) or "")
    local res = S.call(srv, user, "GET", path)
    assert(res.status == 200, res.body)
    for _, it in ipairs(res.json.items) do items[#items + 1] = it end
    cursor = res.json.nextCursor
    pages = pages + 1
  until cursor == nil or cursor == json.null
  return items, pages
end

-- Sends every request first, each on its own connection, then reads the
-- answers: the server has them all in flight at once.
-- reqs: { {method, path, body (string), headers} ... } → responses in order.
function S.concurrently(srv, reqs)
  local socks = {}
  for i, r in ipairs(reqs) do
    local sock = srv:connect(15)
    local headers = { "Host: 127.0.0.1", "Connection: close",
                      "Content-Length: " .. #(r.body or "") }
    for k, v in pairs(r.headers or {}) do headers[#headers + 1] = k .. ": " .. v end
    sock:send(r[1] .. " " .. r[2] .. " HTTP/1.1\r\n" .. table.concat(headers, "\r\n") ..
              "\r\n\r\n" .. (r.body or ""))
    socks[i] = sock
  end
  local out = {}
  for i, sock in ipairs(socks) do
    out[i] = assert(H.read_response(sock, reqs[i][1]))
    sock:close()
  end
  return out
end

S.sql, S.sql_value = H.sql, H.sql_value

-- The user's budget notifications, oldest first: {dedupe_key, title, body, data}.
function S.budget_notifications(user)
  local out = {}
  for _, r in ipairs(S.sql(string.format(
      "SELECT dedupe_key, title, body, data::text FROM notifications " ..
      "WHERE user_id = %d AND type = 'budget' ORDER BY id", user.id))) do
    out[#out + 1] = { key = r[1], title = r[2], body = r[3], data = json.decode(r[4]) }
  end
  return out
end

function S.count_rows(user)
  return tonumber(S.sql_value(string.format(
    "SELECT count(*) FROM transactions WHERE user_id = %d", user.id)))
end

S.json = json
return S
