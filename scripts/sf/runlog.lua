-- sf.runlog: each run's own log file, <state_dir>/<name>.logs/<run>.log:
-- every line the run logged at info level and above (debug too with
-- --debug), whatever --quiet said, then its summary. Bounded twice: a file
-- stops at MAX_BYTES (with a closing note), and only the last KEEP runs'
-- files are kept (older ones are removed when a run starts).
--
--   local f = runlog.open(state_dir, name, run)   -- nil, err when it cannot be created
--   f:line(text)   f:close()
--   runlog.runs(state_dir, name)   -> the run numbers that have a log, ascending
--   runlog.path(state_dir, name, run)
local fs = require "sf.fs"

local M = {}

M.KEEP = 50
M.MAX_BYTES = 8 * 1024 * 1024

function M.dir(state_dir, name) return state_dir .. "/" .. name .. ".logs" end
function M.path(state_dir, name, run) return M.dir(state_dir, name) .. "/" .. run .. ".log" end

function M.runs(state_dir, name)
  local names = fs.list(M.dir(state_dir, name))
  local out = {}
  for _, n in ipairs(names or {}) do
    local run = math.tointeger(tonumber(n:match("^(%d+)%.log$")))
    if run then out[#out + 1] = run end
  end
  table.sort(out)
  return out
end

local Log = {}
Log.__index = Log

function Log:line(text)
  if not self.f or self.full then return end
  local data = text .. "\n"
  if self.bytes + #data > M.MAX_BYTES then
    self.f:write(string.format("(this log stops at %d bytes; the run's later lines went to stderr only)\n", M.MAX_BYTES))
    self.full = true
    return
  end
  self.f:write(data)
  self.bytes = self.bytes + #data
end

function Log:close()
  if self.f then
    self.f:close()
    self.f = nil
  end
end

-- Removes all but the newest KEEP - 1 logs, then opens the new run's file.
function M.open(state_dir, name, run)
  local dir = M.dir(state_dir, name)
  local ok, err = fs.mkdir_p(dir)
  if not ok then return nil, err end
  local runs = M.runs(state_dir, name)
  for i = 1, #runs - (M.KEEP - 1) do fs.remove(M.path(state_dir, name, runs[i])) end
  local f, ferr = fs.open_append(M.path(state_dir, name, run))
  if not f then return nil, ferr end
  return setmetatable({ f = f, bytes = f:size(), run = run }, Log)
end

return M
