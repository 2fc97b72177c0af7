-- profile/controller.lua — /api/v1/profile, /api/v1/profile/options, /api/v1/regions.
local regions = require "profile.regions"
local service = require "profile.service"
local types   = require "profile.types"

return function(routes)
  routes:get("/api/v1/profile", { auth = true }, function(req)
    return 200, service.get(req.user.id)
  end)

  routes:put("/api/v1/profile", { auth = true }, function(req)
    return 200, service.update(req.user.id, types.update(req:json()))
  end)

  routes:get("/api/v1/profile/options", function()
    return 200, types.options(), { ["Cache-Control"] = "public, max-age=86400" }
  end)

  routes:get("/api/v1/regions", function()
    return 200, { items = regions.listing }, { ["Cache-Control"] = "public, max-age=86400" }
  end)
end
