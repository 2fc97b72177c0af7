-- policy/controller.lua — the policy routes (API.md "Policies"):
--   GET    /api/v1/policies                   ?q=&category=&region=&status=&limit=&cursor=
--   GET    /api/v1/policies/recommend         (auth) ?limit=&includePossible=
--   GET    /api/v1/policies/favorites         (auth) ?limit=&cursor=
--   GET    /api/v1/policies/:id               (a valid token adds isFavorite, eligibility)
--   POST   /api/v1/policies/:id/favorite      (auth) 204, idempotent
--   DELETE /api/v1/policies/:id/favorite      (auth) 204, idempotent
-- Loading it also subscribes this generation to the collector's NOTIFY and
-- schedules the first build of the matching index (policy/index.lua); both
-- do their I/O in tasks, never while the module loads.
local db      = require "lp.db"
local timer   = require "lp.timer"
local log     = require "lp.log"
local problem = require "shared.problem"
local index   = require "policy.index"
local service = require "policy.service"
local types   = require "policy.types"
local collector_channel = "policies_changed"

local function install()
  db.listen(collector_channel, index.on_notify)
  timer.after(0, function()
    if index.version() then return index.check() end
    local ok, err = pcall(index.build)
    if not ok then log.warn { msg = "policy index build failed", error = tostring(err) } end
  end)
end

local function policy_id(req)
  local id = types.path_id(req.params.id)
  if not id then problem.not_found("no such policy") end
  return id
end

-- The user of a request that may carry a token: nil without one; a token
-- that is present but not valid is a 401, so the app knows to refresh it.
local function optional_user(req)
  if not req.headers["authorization"] then return nil end
  require("shared.auth").authenticate(req)
  return req.user and req.user.id
end

return function(routes)
  install()

  routes:get("/api/v1/policies", function(req)
    local f = types.list_query(req.query)
    return 200, service.search(nil, f)
  end)

  routes:get("/api/v1/policies/recommend", { auth = true }, function(req)
    local r, hit = service.recommend(req.user.id, types.recommend_query(req.query))
    return 200, r, { ["X-Cache"] = hit and "hit" or "miss" }
  end)

  routes:get("/api/v1/policies/favorites", { auth = true }, function(req)
    return 200, service.favorites(req.user.id, types.favorites_query(req.query))
  end)

  routes:get("/api/v1/policies/:id", function(req)
    local id = policy_id(req)
    local d = service.detail(id, optional_user(req))
    if not d then problem.not_found("no such policy") end
    return 200, d
  end)

  routes:post("/api/v1/policies/:id/favorite", { auth = true }, function(req)
    if not service.add_favorite(req.user.id, policy_id(req)) then problem.not_found("no such policy") end
    return 204
  end)

  routes:delete("/api/v1/policies/:id/favorite", { auth = true }, function(req)
    if not service.remove_favorite(req.user.id, policy_id(req)) then problem.not_found("no such policy") end
    return 204
  end)
end
