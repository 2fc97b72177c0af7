-- auth/controller.lua — /api/v1/auth routes (API.md "Auth").
local service = require "auth.service"
local types   = require "auth.types"

return function(routes)
  routes:post("/api/v1/auth/register", function(req)
    return 201, service.register(types.register(req:json()), req:client_ip())
  end)

  routes:post("/api/v1/auth/login", function(req)
    return 200, service.login(types.login(req:json()), req:client_ip())
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
