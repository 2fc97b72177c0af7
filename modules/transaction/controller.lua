-- transaction/controller.lua — the ledger's routes (API.md "Ledger"):
--   GET    /api/v1/transactions?month=&type=&category=&limit=&cursor=
--   POST   /api/v1/transactions            (Idempotency-Key honoured)
--   PUT    /api/v1/transactions/:id
--   DELETE /api/v1/transactions/:id
--   GET    /api/v1/transactions/export?month=   (CSV, UTF-8 with BOM)
--   GET    /api/v1/budgets?month=
--   POST   /api/v1/budgets
--   GET    /api/v1/categories                   (public: a fixed list)
-- ?month= defaults to the current month in Asia/Seoul.
local problem = require "shared.problem"
local service = require "transaction.service"
local types   = require "transaction.types"

return function(routes)
  routes:get("/api/v1/transactions", { auth = true }, function(req)
    return 200, service.list(req.user.id, types.list_query(req.query))
  end)

  routes:post("/api/v1/transactions", { auth = true }, function(req)
    local input = types.transaction_input(req:json())
    local key = types.idempotency_key(req.headers["idempotency-key"])
    local status, body, replayed = service.create(req.user.id, input, key)
    if type(body) == "string" then
      -- The stored response of the first request with this key, as sent.
      local headers = { ["Content-Type"] = "application/json" }
      if replayed then headers["Idempotent-Replayed"] = "true" end
      return status, body, headers
    end
    return status, body
  end)

  routes:put("/api/v1/transactions/:id", { auth = true }, function(req)
    local id = types.path_id(req.params.id)
    local input = types.transaction_input(req:json())
    local t = id and service.update(req.user.id, id, input)
    if not t then problem.not_found("no such transaction") end
    return 200, t
  end)

  routes:delete("/api/v1/transactions/:id", { auth = true }, function(req)
    local id = types.path_id(req.params.id)
    if not (id and service.delete(req.user.id, id)) then problem.not_found("no such transaction") end
    return 204
  end)

  routes:get("/api/v1/transactions/export", { auth = true }, function(req)
    local month = types.month_query(req.query) or service.current_month()
    return 200, service.export_csv(req.user.id, month), {
      ["Content-Type"] = "text/csv; charset=utf-8",
      ["Content-Disposition"] = string.format('attachment; filename="lifeplan-%s.csv"', month),
      ["Cache-Control"] = "no-store",
    }
  end)

  routes:get("/api/v1/budgets", { auth = true }, function(req)
    local month = types.month_query(req.query) or service.current_month()
    return 200, service.budget_view(req.user.id, month)
  end)

  routes:post("/api/v1/budgets", { auth = true }, function(req)
    return 200, service.set_budget(req.user.id, types.budget_input(req:json()))
  end)

  routes:get("/api/v1/categories", {}, function()
    return 200, types.categories(), { ["Cache-Control"] = "public, max-age=3600" }
  end)
end
