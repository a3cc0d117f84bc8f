-- sf.export.json: JSON text with exact numbers (cjson prints at most 14
-- significant digits) and sorted keys, so a record's text, its trigger hash
-- and the dry-run output are the same on every run.
--
--   local json = require "sf.export.json"
--   json.encode { b = 1, a = { 0.1, true } }  --> {"a":[0.1,true],"b":1}
--
-- Numbers print as mappings.numbers.text does (integral values exactly,
-- others with the fewest digits that read back as the same double); NaN and infinities,
-- JSON null (cjson.null), nil and values JSON has no form for print as null.
-- An empty table is {} unless it carries cjson.empty_array_mt.
local cjson = require "cjson.safe"
local number_text = require("mappings.numbers").text

local M = {}

local null = cjson.null

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = cjson.encode(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    else out[#out + 1] = number_text(v) end
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == null then
    out[#out + 1] = "null"
  elseif t == "table" then
    local n = #v
    if n > 0 or next(v) == nil and getmetatable(v) == cjson.empty_array_mt then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
  return out
end

function M.encode(v) return table.concat(encode(v, {})) end

return M
