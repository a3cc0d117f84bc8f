-- The one text of a number, shared by everything that writes one: the import's
-- coercion rules (mappings/types.lua), the export's type rules, JSON bodies and
-- SOQL literals (sf.export.*), and recipes. It lives here, beside the default
-- mappings, because a recipe or tenant module can `require "mappings.numbers"`
-- inside the sandbox as the engine does outside it. engine/mapper.c writes the
-- same text in C (tests/lua/test_coerce_parity.lua holds the twins together).
--
--   local numbers = require "mappings.numbers"
--   numbers.text(5)      --> "5"          numbers.text(5.0)  --> "5"
--   numbers.text(1e16)   --> "10000000000000000"  (integral values in int64 range: exact)
--   numbers.text(0.1)    --> "0.1"        numbers.text(1e20) --> "1e+20"
--   numbers.text(0/0)    --> "nan"        numbers.text(1/0)  --> "inf" (JSON writers print null)
local M = {}

-- Integral values in int64 range print as integers ("5", not "5.0"); anything
-- else prints with the fewest significant digits (1..17, %g) that read back as
-- the same double ("0.1", "1e+20", 3.1415926535897931 -> "3.141592653589793").
function M.text(n)
  local i = math.tointeger(n)
  if i then return string.format("%d", i) end
  if n ~= n then return "nan" end
  if n == math.huge then return "inf" end
  if n == -math.huge then return "-inf" end
  for p = 1, 17 do
    local s = string.format("%." .. p .. "g", n)
    if tonumber(s) == n then return s end
  end
  return string.format("%.17g", n)
end

return M
