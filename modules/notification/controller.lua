-- notification/controller.lua — the app's inbox:
--   GET /api/v1/notifications?unreadOnly=&limit=&cursor=  → {items, nextCursor, unreadCount}
--   PUT /api/v1/notifications/:id/read                    → the notification (idempotent)
-- Loading it also starts this generation's notification jobs (jobs.lua).
local problem = require "shared.problem"
local jobs    = require "notification.jobs"
local service = require "notification.service"
local types   = require "notification.types"

return function(routes)
  jobs.install()

  routes:get("/api/v1/notifications", { auth = true }, function(req)
    return 200, service.list(req.user.id, types.list_query(req.query))
  end)

  routes:put("/api/v1/notifications/:id/read", { auth = true }, function(req)
    local id = types.path_id(req.params.id)
    local n = id and service.mark_read(req.user.id, id)
    if not n then problem.not_found("no such notification") end
    return 200, n
  end)
end
