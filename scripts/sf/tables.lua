-- sf.tables: table helpers the runtime shares, written once.
--
--   local tables = require "sf.tables"
--   tables.sorted_keys { b = 1, a = 2 }   --> { "a", "b" }
local M = {}

-- The keys of t in sorted order: the order the engine writes, reports and
-- checks in, never pairs() order (keys must be comparable: all strings or
-- all numbers).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

return M
