-- spec/policy/ontong_server.lua — a stand-in for the 온통청년 getPlcy API on
-- 127.0.0.1, for the collector specs (run with luajit, luasocket):
--
--   luajit spec/policy/ontong_server.lua PORT DIR
--
-- Every request re-reads DIR, so a spec changes the "upstream" between runs:
--   DIR/records.json   the whole list of records (a JSON array), served in
--                      pages by pageNum/pageSize like the real API
--   DIR/key            the valid apiKeyNm; any other key gets the real API's
--                      error shape with HTTP 200: resultCode 401
--   DIR/fail           N: answer the next N requests 503 (then decremented)
--   DIR/requests.log   one line per request: its query string
-- It stops when DIR/stop exists.
local socket = require "socket"
local cjson  = require "cjson"

local port, dir = tonumber(arg[1]), arg[2]

local function read(name)
  local f = io.open(dir .. "/" .. name)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write(name, s, mode)
  local f = assert(io.open(dir .. "/" .. name, mode or "w"))
  f:write(s)
  f:close()
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function respond(c, status, body)
  c:send(string.format("HTTP/1.1 %d X\r\nContent-Type: application/json; charset=utf-8\r\n"
    .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s", status, #body, body))
end

local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0.2)
write("ready", "1")
while not read("stop") do
  local c = server:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l") or ""
    repeat local h = c:receive("*l") until not h or h == ""
    local query = line:match("^GET [^?]*%?(%S*)") or ""
    write("requests.log", query .. "\n", "a")
    local q = {}
    for k, v in query:gmatch("([^&=]+)=([^&]*)") do q[unescape(k)] = unescape(v) end
    local fail = tonumber(read("fail") or "0") or 0
    if fail > 0 then
      write("fail", tostring(fail - 1))
      respond(c, 503, '{"error":"busy"}')
    elseif q.apiKeyNm ~= (read("key") or ""):gsub("%s+$", "") then
      respond(c, 200, cjson.encode { resultCode = 401, resultMessage = "인증키가 유효하지 않습니다.",
                                     result = cjson.null })
    else
      local records = cjson.decode(read("records.json") or "[]")
      local num, size = tonumber(q.pageNum) or 1, tonumber(q.pageSize) or 10
      local page = {}
      for i = (num - 1) * size + 1, math.min(num * size, #records) do page[#page + 1] = records[i] end
      local body = cjson.encode { resultCode = 200, resultMessage = "성공적으로 데이터를 가지고 왔습니다.",
        result = { pagging = { totCount = #records, pageNum = num, pageSize = size },
                   youthPolicyList = page } }
      if #page == 0 then body = body:gsub('"youthPolicyList":{}', '"youthPolicyList":[]') end
      respond(c, 200, body)
    end
    c:close()
  end
end
server:close()
