-- spec/helpers/server.lua — start the real lifeplan binary and talk HTTP to it.
--
--   local H = require "spec.helpers.server"
--   local srv = H.start { fixtures = { "spec/host/fixtures" }, env = { MAX_BODY_BYTES = 2048 } }
--   local res = srv:request("GET", "/healthz")      -- {status, headers, body, json}
--   local raw = srv:raw("GET / HTTP/1.1\r\n\r\n")  -- bytes exactly as the server sent them
--   srv:stop()
--
-- Options: fixtures (folders of test modules copied next to modules/shared),
-- modules = false to leave out the real domain modules (default: included),
-- env (extra environment), args (extra serve arguments), workers.
-- DATABASE_URL / REDIS_URL come from the environment scripts/test sets up.
local socket = require "socket"
local json   = require "cjson.safe"

local H = {}

H.root = os.getenv("LIFEPLAN_ROOT") or (io.popen("pwd"):read("*l"))
H.bin  = os.getenv("LIFEPLAN_BIN") or (H.root .. "/build/lifeplan")

-- Runs a shell command; returns its output and exit status. (LuaJIT's
-- popen:close() does not report the status, so the shell prints it last.)
function H.sh(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"__status=$?\"")
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("__status=(%d+)%s*$"))
  return (out:gsub("__status=%d+%s*$", "")), code
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = shell_quote

-- Runs SQL with psql against DATABASE_URL (test setup and inspection only);
-- returns rows as arrays of column strings.
function H.sql(query)
  local f = os.tmpname()
  local fh = assert(io.open(f, "w"))
  fh:write(query)
  fh:close()
  local out, code = H.sh("psql -X -q -At -F '\t' -v ON_ERROR_STOP=1 " ..
                         shell_quote(os.getenv("DATABASE_URL")) .. " -f " .. f)
  os.remove(f)
  assert(code == 0, "psql failed: " .. out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local cols = {}
    for c in (line .. "\t"):gmatch("([^\t]*)\t") do cols[#cols + 1] = c end
    rows[#rows + 1] = cols
  end
  return rows
end

-- The first column of the first row, or nil.
function H.sql_value(query)
  local rows = H.sql(query)
  return rows[1] and rows[1][1]
end

function H.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

function H.tmpdir()
  -- Under the test run's own folder when scripts/test provides one, so its
  -- cleanup removes exactly what this run made.
  local base = os.getenv("LP_SPEC_TMP") or "/tmp"
  return (H.sh("mktemp -d " .. base .. "/lifeplan-spec.XXXXXX"):gsub("%s+$", ""))
end


-- Builds a modules folder: modules/shared (+ the real modules) + fixtures.
function H.modules_dir(opts)
  local dir = H.tmpdir()
  if opts.modules == false then
    H.sh("cp -r " .. H.root .. "/modules/shared " .. dir .. "/")
  else
    H.sh("cp -r " .. H.root .. "/modules/. " .. dir .. "/")
  end
  for _, f in ipairs(opts.fixtures or {}) do
    local path = f:sub(1, 1) == "/" and f or (H.root .. "/" .. f)
    H.sh("cp -r " .. path .. "/. " .. dir .. "/")
  end
  return dir
end

local Server = {}
Server.__index = Server

function H.start(opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local mods = opts.modules_dir or H.modules_dir(opts)
  local run = H.tmpdir() -- pid, log and exit status live outside the modules dir
  local logf = run .. "/server.log"
  local env = {
    PORT = port, HOST = "127.0.0.1", MODULES_DIR = mods,
    OPENAPI_PATH = H.root .. "/spec/openapi.json",
    MIGRATIONS_DIR = H.root .. "/migrations",
    -- the specs register many users from 127.0.0.1; the limit has its own spec
    REGISTER_MAX_PER_IP = "1000000",
  }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  local args = table.concat(opts.args or {}, " ")
  if opts.workers then args = args .. " --workers " .. opts.workers end
  -- The server runs in a subshell that records its exit status; its own pid
  -- is exec'd into place so signals reach it directly.
  local exitf = run .. "/exit_status"
  local cmd = string.format("(sh -c 'echo $$ > %s/pid; exec env %s %s serve %s' > %s 2>&1; echo $? > %s) >/dev/null 2>&1 &",
    run, table.concat(parts, " "):gsub("'", "'\\''"), opts.bin or H.bin, args, shell_quote(logf), exitf)
  os.execute(cmd)
  local srv = setmetatable({ port = port, modules = mods, log = logf, exit_file = exitf,
                             url = "http://127.0.0.1:" .. port }, Server)
  local deadline = socket.gettime() + 15
  while socket.gettime() < deadline do
    if not srv.pid then
      local f = io.open(run .. "/pid")
      if f then srv.pid = tonumber(f:read("*l")); f:close() end
    end
    local ok, res = pcall(srv.request, srv, "GET", "/healthz")
    if ok and res and res.status == 200 and srv.pid then return srv end
    socket.sleep(0.05)
  end
  srv:stop()
  error("server did not start; log:\n" .. srv:read_log())
end

function Server:read_log()
  local f = io.open(self.log)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

function Server:alive()
  local _, code = H.sh("kill -0 " .. self.pid)
  return code == 0
end

function Server:signal(sig)
  H.sh("kill -" .. sig .. " " .. self.pid)
end

-- Waits (up to `timeout` seconds) for the process to exit; returns its exit
-- status, or nil if it is still running.
function Server:wait(timeout)
  local deadline = socket.gettime() + (timeout or 15)
  repeat
    local f = io.open(self.exit_file)
    if f then
      local code = tonumber(f:read("*l"))
      f:close()
      if code then return code end
    end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

-- Stops the server (SIGTERM, then SIGKILL after a while); returns its exit status.
function Server:stop()
  if not self.pid then return self.exit_code end
  self:signal("TERM")
  local code = self:wait(15)
  if code == nil then
    self:signal("KILL")
    code = self:wait(5)
  end
  self.pid = nil
  self.exit_code = code
  return code
end

-- Reads one HTTP response from a connected socket.
local function read_response(sock, method)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local h = assert(sock:receive("*l"))
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    if k then
      k = k:lower()
      headers[k] = headers[k] and (headers[k] .. ", " .. v) or v
    end
  end
  if status == 100 then return read_response(sock, method) end
  local body = ""
  if method == "HEAD" or status == 204 or status == 304 then
    body = ""
  elseif headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size_line = assert(sock:receive("*l"))
      local size = tonumber(size_line:match("^%x+"), 16)
      if size == 0 then
        sock:receive("*l")
        break
      end
      parts[#parts + 1] = assert(sock:receive(size))
      sock:receive("*l")
    end
    body = table.concat(parts)
  elseif headers["content-length"] then
    local n = tonumber(headers["content-length"])
    body = n > 0 and assert(sock:receive(n)) or ""
  else
    body = sock:receive("*a") or ""
  end
  local res = { status = status, headers = headers, body = body }
  local ct = headers["content-type"] or ""
  if ct:find("json") then res.json = json.decode(body) end
  return res
end
H.read_response = read_response

-- opts: headers (table), body (string), json (table → encoded), timeout (s)
function Server:request(method, path, opts)
  opts = opts or {}
  local sock = assert(socket.tcp())
  sock:settimeout(opts.timeout or 10)
  assert(sock:connect("127.0.0.1", self.port))
  local headers = { Host = "127.0.0.1", Connection = "close" }
  local body = opts.body
  if opts.json ~= nil then
    body = json.encode(opts.json)
    headers["Content-Type"] = "application/json"
  end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if body then headers["Content-Length"] = #body end
  local req = { method .. " " .. path .. " HTTP/1.1" }
  for k, v in pairs(headers) do req[#req + 1] = k .. ": " .. v end
  sock:send(table.concat(req, "\r\n") .. "\r\n\r\n" .. (body or ""))
  local res, err = read_response(sock, method)
  sock:close()
  if not res then error("no response: " .. tostring(err)) end
  return res
end

-- Sends raw bytes and returns everything received until the server closes
-- (or the timeout, in seconds, passes). Returns data, "closed"|"timeout".
function Server:raw(bytes, timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or 5)
  assert(sock:connect("127.0.0.1", self.port))
  if bytes and #bytes > 0 then sock:send(bytes) end
  local data, err, partial = sock:receive("*a")
  sock:close()
  return data or partial, data and "closed" or err
end

-- An open connection for keep-alive and pipelining tests.
function Server:connect(timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or 5)
  assert(sock:connect("127.0.0.1", self.port))
  return sock
end

return H
