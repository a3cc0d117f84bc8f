-- The job state: one JSON file per job, replaced atomically (temp file, fsync,
-- rename, fsync of the directory) at every checkpoint.
--
-- It holds what a restart needs to lose nothing and repeat nothing: the
-- per-object cursors, the byte length of every output file at the last
-- checkpoint (a restart truncates anything written after it), the API-call
-- counter of the job's rolling 24-hour window, and the schedule. Never a
-- secret: tokens live only in memory.
local fs = require "sf.fs"
local cjson = require "cjson.safe"

local State = {}
State.__index = State

local M = {}
M.VERSION = 1

-- Loads the state of a job, or a fresh one. A corrupt file is an error, not
-- a silent restart from zero (that would duplicate every record).
function M.open(dir, job_name)
  local ok, err = fs.mkdir_p(dir)
  -- err names the path (sf.fs): not twice
  if not ok then return nil, "cannot create the state directory (" .. tostring(err) .. "): use --state-dir or state_dir in the recipe" end
  local path = dir .. "/" .. job_name .. ".state.json"
  local self = setmetatable({ path = path, dir = dir, job = job_name }, State)
  local text, rerr, code = fs.read(path)
  if not text then
    if code ~= "ENOENT" then return nil, "state " .. path .. ": " .. tostring(rerr) end
    self.data = { version = M.VERSION, job = job_name, cursors = {}, outputs = {}, runs = 0 }
    return self
  end
  local data = cjson.decode(text)
  if type(data) ~= "table" or data.version ~= M.VERSION then
    return nil, "state " .. path .. " is unreadable; move it away to start the job from scratch"
  end
  data.cursors = data.cursors or {}
  data.outputs = data.outputs or {}
  self.data = data
  return self
end

function State:get(key) return self.data[key] end
function State:set(key, value) self.data[key] = value end

function State:cursor(object) return self.data.cursors[object] end
function State:set_cursor(object, cursor) self.data.cursors[object] = cursor end

-- Bytes of an output file covered by the last checkpoint (nil: never written).
function State:output_size(name) return self.data.outputs[name] end
function State:set_output_size(name, size) self.data.outputs[name] = size end

function State:checkpoint()
  local text = assert(cjson.encode(self.data))
  local ok, err = fs.write_atomic(self.path, text)
  if not ok then error("checkpoint " .. self.path .. ": " .. tostring(err), 0) end
end

return M
