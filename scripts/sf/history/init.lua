-- sf.history: the job's run history, one JSON object per run in
-- <state_dir>/<name>.history.ndjson (appended and fsynced when a run ends;
-- the format is documented in README.md, "Run history and logs").
--
--   local history = require "sf.history"
--   history.append(state_dir, name, record)      -> true | nil, err
--   local runs, damaged = history.read(state_dir, name, limit?)   -- oldest first
--   history.last_run(state_dir, name)            -> the highest run number, or 0
--
-- A line that does not parse (a run killed while appending) is skipped and
-- counted in `damaged`, never fatal: the history is a report, not the state.
local fs = require "sf.fs"
local cjson = require "cjson.safe"

local M = {}

-- Bytes read from the end of the file to find the last run number.
M.TAIL_BYTES = 65536

function M.path(state_dir, name)
  return state_dir .. "/" .. name .. ".history.ndjson"
end

function M.append(state_dir, name, record)
  local text = cjson.encode(record)
  if not text then return nil, "the run's record cannot be encoded as JSON" end
  local f, err = fs.open_append(M.path(state_dir, name))
  if not f then return nil, err end
  local ok, werr = f:write(text .. "\n")
  if ok then ok, werr = f:sync() end
  f:close()
  if not ok then return nil, werr end
  return true
end

local function parse_lines(text, out)
  local damaged = 0
  for line in text:gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    if type(rec) == "table" then out[#out + 1] = rec else damaged = damaged + 1 end
  end
  return out, damaged
end

-- The runs, oldest first (the last `limit` only, when given).
function M.read(state_dir, name, limit)
  local text, err, code = fs.read(M.path(state_dir, name))
  if not text then
    if code == "ENOENT" then return {}, 0 end
    return nil, err
  end
  local runs, damaged = parse_lines(text, {})
  if limit and #runs > limit then runs = { table.unpack(runs, #runs - limit + 1) } end
  return runs, damaged
end

-- The highest run number in the history (0 when there is none), from the
-- file's last TAIL_BYTES: run numbers only grow.
function M.last_run(state_dir, name)
  local f = io.open(M.path(state_dir, name), "rb")
  if not f then return 0 end
  local size = f:seek("end")
  f:seek("set", math.max(0, size - M.TAIL_BYTES))
  local text = f:read("a") or ""
  f:close()
  local best = 0
  for _, rec in ipairs((parse_lines(text, {}))) do
    local n = math.tointeger(rec.run)
    if n and n > best then best = n end
  end
  return best
end

return M
