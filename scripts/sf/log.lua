-- Logging: plain lines on stderr, optionally JSON lines in a file, one
-- rewritten progress line when stderr is a terminal, and secret scrubbing.
--
--   log.configure{ quiet = bool, debug = bool, json_file = path }  -> true | nil, err
--   log.debug/info/warn/error(fmt, ...)   string.format-style; never raises
--   log.add_secret(s)       s is replaced by "(redacted)" in every line from now on
--   log.progress(key, text) one status line per key, rewritten in place on a TTY
--                           (nothing otherwise); text = nil drops the key
--   log.is_tty()            stderr is a terminal
--   log.finish()            clears the progress line, closes the JSON file
--   log.clear_progress()    takes the progress line off the terminal (before a summary)
--   log.reset_progress()    forgets every progress key (the end of a run)
--   log.write_json(t)       one structured event as a JSON line (sf.events), scrubbed
--   log.set_sink(fn)        fn(level, line) also gets every line at info level and
--                           above (debug too with --debug), whatever --quiet says:
--                           the run's own log file (sf.runlog); nil removes it
--
-- When stderr is not a terminal, the progress line is logged as an info line
-- ("progress: ...") at most every progress_every seconds (default 60), so a
-- long run under cron is not silent. json_file "-" sends the JSON lines to
-- stderr instead of the plain lines.
--
-- quiet hides info and debug on stderr (warnings and errors stay); debug
-- shows debug lines. The JSON file gets every line shown plus info when quiet:
--   {"ts":"2024-05-01T12:00:00.123Z","level":"info","msg":"..."}
local core = require "sf.sandbox.core"
local clock = require "sf.clock"
local cjson = require "cjson"

local M = {}

local cfg = { quiet = false, debug = false }
local json_out = nil
local secrets = {}      -- longest first
local known = {}
local tty = nil
local progress_keys, progress_text = {}, {}
local progress_shown = false
local sink = nil            -- the run's log file (set_sink)
local plain = true          -- plain lines on stderr (false with --log-json -)
local progress_every = 60   -- seconds between logged progress lines off a terminal
local progress_logged = nil -- monotonic time of the last one

local RANK = { debug = 1, info = 2, warn = 3, error = 4 }
local LABEL = { debug = "debug: ", info = "", warn = "warning: ", error = "error: " }
local MIN_SECRET = 4 -- shorter strings would redact ordinary words

function M.is_tty()
  if tty == nil then tty = core.isatty(2) end
  return tty
end

function M.configure(opts)
  opts = opts or {}
  if opts.quiet ~= nil then cfg.quiet = opts.quiet and true or false end
  if opts.debug ~= nil then cfg.debug = opts.debug and true or false end
  if opts.progress_every then progress_every = opts.progress_every end
  if opts.json_file == "-" then
    json_out, plain = io.stderr, false
  elseif opts.json_file then
    local f, err = io.open(opts.json_file, "a")
    -- io.open's message already names the path
    if not f then return nil, "cannot open the JSON log " .. tostring(err) end
    f:setvbuf("line")
    if json_out and json_out ~= io.stderr then json_out:close() end
    json_out = f
  end
  return true
end

function M.add_secret(s)
  if type(s) ~= "string" or #s < MIN_SECRET or known[s] then return end
  known[s] = true
  secrets[#secrets + 1] = s
  table.sort(secrets, function(a, b) return #a > #b end)
end

-- Replaces every registered secret in s (plain text, not patterns).
local function scrub(s)
  for i = 1, #secrets do
    local secret = secrets[i]
    if s:find(secret, 1, true) then
      local parts, pos = {}, 1
      while true do
        local a, b = s:find(secret, pos, true)
        if not a then break end
        parts[#parts + 1] = s:sub(pos, a - 1)
        parts[#parts + 1] = "(redacted)"
        pos = b + 1
      end
      parts[#parts + 1] = s:sub(pos)
      s = table.concat(parts)
    end
  end
  return s
end
M.scrub = scrub

local function format(fmt, ...)
  if select("#", ...) == 0 then return tostring(fmt) end
  local ok, msg = pcall(string.format, fmt, ...)
  if ok then return msg end
  local parts = { tostring(fmt) }
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  return table.concat(parts, " ") .. " (log format error: " .. tostring(msg) .. ")"
end

local function width()
  local c = tonumber(os.getenv("COLUMNS") or "")
  return (c and c > 20) and c or 100
end

local function progress_line()
  local parts = {}
  for _, k in ipairs(progress_keys) do parts[#parts + 1] = progress_text[k] end
  local line = scrub(table.concat(parts, " | "))
  local w = width() - 1
  if #line > w then line = line:sub(1, w) end
  return line
end

local function clear_progress()
  if progress_shown and plain then
    io.stderr:write("\r\27[K")
    progress_shown = false
  end
end

local function draw_progress()
  if #progress_keys == 0 or not plain then return end
  io.stderr:write("\r\27[K", progress_line())
  io.stderr:flush()
  progress_shown = true
end

local function iso_now()
  local now = core.now()
  local secs = math.floor(now)
  return os.date("!%Y-%m-%dT%H:%M:%S", secs) .. string.format(".%03dZ", math.floor((now - secs) * 1000))
end

local function emit(level, fmt, ...)
  local msg = scrub(format(fmt, ...))
  local rank = RANK[level]
  local show = rank >= RANK.warn or (level == "info" and not cfg.quiet) or (level == "debug" and cfg.debug)
  if json_out and (show or level == "info") then
    json_out:write('{"ts":"', iso_now(), '","level":"', level, '","msg":', cjson.encode(msg), "}\n")
  end
  if sink and (rank >= RANK.info or cfg.debug) then sink(level, os.date("%Y-%m-%d %H:%M:%S ") .. LABEL[level] .. msg) end
  if show and plain then
    local redraw = progress_shown
    clear_progress()
    io.stderr:write(os.date("%H:%M:%S "), LABEL[level], msg, "\n")
    if redraw then draw_progress() end
    io.stderr:flush()
  end
end

function M.debug(fmt, ...) emit("debug", fmt, ...) end
function M.info(fmt, ...) emit("info", fmt, ...) end
function M.warn(fmt, ...) emit("warn", fmt, ...) end
function M.error(fmt, ...) emit("error", fmt, ...) end

-- Off a terminal: the progress line as an info line, at most every
-- progress_every seconds.
local function log_progress()
  local now = clock.monotonic()
  if not progress_logged then progress_logged = now return end  -- the first after progress_every
  if now - progress_logged < progress_every then return end
  if #progress_keys == 0 then return end
  progress_logged = now
  emit("info", "progress: %s", progress_line())
end

-- Sets (text) or drops (nil) one key of the progress line; false when
-- dropping a key that was not there.
local function set_progress(key, text)
  if text == nil then
    if progress_text[key] == nil then return false end
    progress_text[key] = nil
    for i, k in ipairs(progress_keys) do
      if k == key then table.remove(progress_keys, i) break end
    end
    return true
  end
  if progress_text[key] == nil then progress_keys[#progress_keys + 1] = key end
  progress_text[key] = tostring(text)
  return true
end

function M.progress(key, text)
  if cfg.quiet then return end
  if not set_progress(key, text) then return end
  if not M.is_tty() or not plain then
    if text ~= nil then log_progress() end
  elseif text == nil then
    clear_progress()
    draw_progress()
  else
    draw_progress()
  end
end

function M.clear_progress()
  clear_progress()
  io.stderr:flush()
end

function M.reset_progress()
  clear_progress()
  progress_keys, progress_text = {}, {}
  progress_logged = nil
end

function M.write_json(t)
  if not json_out then return end
  local text = cjson.encode(t)
  if text then json_out:write(scrub(text), "\n") end
end

function M.set_sink(fn) sink = fn end

function M.finish()
  M.reset_progress()
  sink = nil
  if json_out then
    if json_out ~= io.stderr then json_out:close() end
    json_out, plain = nil, true
  end
end

return M
