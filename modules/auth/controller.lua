-- auth/controller.lua — /api/v1/auth routes (API.md "Auth").
local service = require "auth.service"
local types   = require "auth.types"

-- The client address the login rate limit counts against. X-Forwarded-For
-- and X-Real-IP are set by whoever sends the request, so they are believed
-- only when the connection comes from a trusted proxy: TRUSTED_PROXIES, a
-- comma-separated list of addresses (default "127.0.0.1,::1", a proxy on the
-- same host; set it empty to trust none). X-Forwarded-For is read from the
-- right, skipping trusted proxies, so a client cannot choose its own bucket
-- by prepending addresses.
local trusted = {}
do
  local list = os.getenv("TRUSTED_PROXIES") or "127.0.0.1,::1"
  for a in list:gmatch("[^,%s]+") do trusted[a] = true end
end

local function plain(addr)
  return addr and (addr:gsub("^::ffff:(%d+%.%d+%.%d+%.%d+)$", "%1")) or nil
end

local function client_address(req)
  local addr = plain(req.peer)
  if not addr or not trusted[addr] then return addr end
  local fwd = req.headers["x-forwarded-for"]
  if fwd then
    local hops = {}
    for a in fwd:gmatch("[^,%s]+") do hops[#hops + 1] = plain(a) end
    for i = #hops, 1, -1 do
      addr = hops[i]
      if not trusted[addr] then break end
    end
    return addr
  end
  return plain(req.headers["x-real-ip"]) or addr
end

return function(routes)
  routes:post("/api/v1/auth/register", function(req)
    return 201, service.register(types.register(req:json()))
  end)

  routes:post("/api/v1/auth/login", function(req)
    return 200, service.login(types.login(req:json()), client_address(req))
  end)

  routes:post("/api/v1/auth/refresh", function(req)
    return 200, service.refresh(types.refresh(req:json()).refreshToken)
  end)

  routes:post("/api/v1/auth/logout", function(req)
    service.logout(types.refresh(req:json()).refreshToken)
    return 204
  end)

  routes:delete("/api/v1/auth/account", { auth = true }, function(req)
    service.delete_account(req.user.id, types.delete_account(req:json()).password)
    return 204
  end)
end
