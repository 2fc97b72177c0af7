-- Hot reload: generations, broken scripts, SIGHUP, no dropped requests.
local H      = require "spec.helpers.server"
local socket = require "socket"
local json   = require "cjson.safe"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

local function wait_for(fn, timeout)
  local deadline = socket.gettime() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(0.03)
  until socket.gettime() > deadline
  return nil
end

describe("hot reload", function()
  local srv, controller, original

  before_each(function()
    srv = H.start { modules = false, fixtures = { "spec/host/fixtures" }, args = { "--dev" } }
    controller = srv.modules .. "/hosttest/controller.lua"
    original = read(controller)
  end)

  after_each(function()
    srv:stop()
  end)

  it("loads a new generation when a module file changes", function()
    write(controller, (original:gsub('VERSION = "v1"', 'VERSION = "v2"')))
    local gen = wait_for(function()
      local h = srv:request("GET", "/healthz").json
      return h.generation >= 2 and h.generation
    end)
    assert.truthy(gen)
    assert.are.equal("v2", srv:request("GET", "/t/version").json.version)
  end)

  it("keeps the old generation serving when a script fails to load", function()
    write(controller, original .. "\nlocal x = = 1\n")
    local err = wait_for(function()
      local h = srv:request("GET", "/healthz").json
      return h.lastReloadError ~= json.null and h.lastReloadError
    end)
    assert.truthy(err)
    assert.truthy(err:find("hosttest/controller.lua:%d+"))
    local h = srv:request("GET", "/healthz").json
    assert.are.equal(1, h.generation)
    assert.are.equal("v1", srv:request("GET", "/t/version").json.version)
    -- fixing the file clears the error
    write(controller, (original:gsub('VERSION = "v1"', 'VERSION = "v3"')))
    assert.truthy(wait_for(function()
      return srv:request("GET", "/t/version").json.version == "v3"
    end))
    assert.are.equal(json.null, srv:request("GET", "/healthz").json.lastReloadError)
  end)

  it("finishes an in-flight request in the generation it started in", function()
    local sock = srv:connect()
    sock:send("GET /t/sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
    socket.sleep(0.05)
    write(controller, (original:gsub('VERSION = "v1"', 'VERSION = "v4"')))
    assert.truthy(wait_for(function()
      return srv:request("GET", "/t/version").json.version == "v4"
    end))
    local res = H.read_response(sock, "GET")
    sock:close()
    assert.are.equal(200, res.status)
    assert.are.equal(300, json.decode(res.body).slept)
  end)

  it("drops no request while reloading repeatedly", function()
    local failures, total = 0, 0
    for i = 1, 8 do
      write(controller, (original:gsub('VERSION = "v1"', 'VERSION = "r' .. i .. '"')))
      local until_t = socket.gettime() + 0.25
      while socket.gettime() < until_t do
        local ok, res = pcall(srv.request, srv, "GET", "/t/items/" .. total)
        total = total + 1
        if not ok or res.status ~= 200 then failures = failures + 1 end
      end
    end
    assert.is_true(total > 50)
    assert.are.equal(0, failures)
    assert.is_true(srv:request("GET", "/healthz").json.generation >= 2)
  end)
end)

describe("reload on SIGHUP", function()
  it("reloads scripts in production mode on SIGHUP only", function()
    local srv = H.start { modules = false, fixtures = { "spec/host/fixtures" } }
    local controller = srv.modules .. "/hosttest/controller.lua"
    write(controller, (read(controller):gsub('VERSION = "v1"', 'VERSION = "hup"')))
    socket.sleep(0.4)
    assert.are.equal("v1", srv:request("GET", "/t/version").json.version)
    srv:signal("HUP")
    assert.truthy(wait_for(function()
      return srv:request("GET", "/t/version").json.version == "hup"
    end))
    assert.are.equal(2, srv:request("GET", "/healthz").json.generation)
    srv:stop()
  end)
end)
