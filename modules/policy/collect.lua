-- policy/collect.lua — `lifeplan collect --source URL|FILE [--dry-run]
-- [--page-size N]`: one collector run (policy/collector.lua), run by main.c
-- as a task with the command's arguments as `...`.
--
-- The API key of a URL source comes from ONTONG_API_KEY. On a terminal it
-- shows progress on stderr; it always ends with a one-line summary on stdout
-- and exits non-zero when the run failed (skipped records are not a failure:
-- they are listed in the summary and in collect_logs.skipped_details).
local collector = require "policy.collector"

local args = { ... }

local function usage(msg)
  error((msg and (msg .. "\n") or "") ..
    "usage: lifeplan collect --source URL|FILE [--dry-run] [--page-size N]", 0)
end

local opts = { page_size = 100 }
local i = 1
while i <= #args do
  local a = args[i]
  if a == "--source" then
    opts.source = args[i + 1]; i = i + 1
  elseif a:match("^%-%-source=") then
    opts.source = a:sub(10)
  elseif a == "--dry-run" then
    opts.dry_run = true
  elseif a == "--page-size" then
    opts.page_size = tonumber(args[i + 1]); i = i + 1
    if not opts.page_size or opts.page_size < 1 or opts.page_size > 1000 then usage("bad --page-size") end
  else
    usage("unknown argument " .. a)
  end
  i = i + 1
end
if not opts.source or opts.source == "" then usage("--source is required") end
if opts.source:match("^https?://") then
  opts.api_key = os.getenv("ONTONG_API_KEY")
  if not opts.api_key or opts.api_key == "" then usage("ONTONG_API_KEY is not set") end
end

local tty = false
do
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, "int isatty(int fd);")
    local ok2, r = pcall(function() return ffi.C.isatty(2) end)
    tty = ok2 and r == 1
  end
end

if tty then
  opts.progress = function(info)
    local c = info.ctx
    io.stderr:write(string.format("\r\27[Kcollect: page %d%s · %d/%s records · +%d ~%d =%d !%d",
      info.page, info.pages and ("/" .. info.pages) or "", c.fetched, tostring(info.total or "?"),
      c.inserted, c.updated, c.unchanged, c.skipped))
    io.stderr:flush()
  end
end

local started = os.time()
local r = collector.run(opts)
if tty then io.stderr:write("\n") end
for _, s in ipairs(r.skippedDetails) do
  io.stderr:write(string.format("skipped %s: %s\n", s.externalId, s.reason))
end
io.stdout:write(string.format(
  "collect%s: %d fetched, %d inserted, %d updated, %d unchanged, %d skipped; policy set version %s (log %s, %ds)%s\n",
  r.dryRun and " (dry run)" or "", r.fetched, r.inserted, r.updated, r.unchanged, r.skipped,
  tostring(r.version), tostring(r.collectLogId), os.time() - started,
  r.error and (": FAILED: " .. r.error) or ""))
io.stdout:flush()
if r.error then error("collect failed: " .. r.error, 0) end
