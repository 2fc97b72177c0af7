-- shared/openapi.lua — assembles GET /api/v1/openapi.json.
--
-- The base document (modules/shared/openapi.json: info, common schemas, the
-- operations routes) is merged with every module's fragment
-- (modules/<name>/openapi.json: {"paths": {...}, "components": {...}}), so
-- each module documents its own routes next to its controller. The host calls
-- build(modules_dir, names) once per generation load; files are read then,
-- never per request.
local json = require "lp.json"

local M = {}

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local doc, err = json.decode(text)
  if doc == nil then error(path .. ": invalid JSON: " .. tostring(err), 0) end
  return doc
end

local function merge_into(dst, src, path)
  for k, v in pairs(src) do
    if dst[k] ~= nil then error("OpenAPI fragment " .. path .. " redefines " .. k, 0) end
    dst[k] = v
  end
end

function M.build(dir, names)
  local doc = read_json(dir .. "/shared/openapi.json") or
      { openapi = "3.1.0", info = { title = "lifeplan", version = "1" }, paths = {} }
  doc.paths = doc.paths or {}
  doc.components = doc.components or {}
  doc.components.schemas = doc.components.schemas or {}
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name .. "/openapi.json"
    local frag = read_json(path)
    if frag then
      merge_into(doc.paths, frag.paths or {}, path)
      for kind, defs in pairs(frag.components or {}) do
        doc.components[kind] = doc.components[kind] or {}
        merge_into(doc.components[kind], defs, path)
      end
    end
  end
  return json.encode(doc)
end

return M
