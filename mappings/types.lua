-- Import coercion rules: one rule per target type of a mapping row.
--
--   rule(value) --> coerced value            (written to the stream)
--               --> nil, reason              (value rejected; the field is left out)
--               --> nil                      (nothing to write, no reason: an empty []string)
--
-- Values arrive as decoded by cjson: string, number (a float for every JSON number),
-- boolean, table (array or object). JSON null never reaches a rule: a null or missing
-- source leaves the field out before any rule runs.
--
-- engine/mapper.c implements a twin of each rule in C for speed and follows the same
-- text; tests/lua/test_coerce_parity.lua proves the two agree. A tenant may override a
-- rule in a recipe (`mapping = { types = { date = function(v) ... end } }`); that type
-- then goes through Lua for the tenant's job. Keep this file in step with the C twin.

local number_text = require("mappings.numbers").text   -- the one number formatter

local MAX_SHOWN = 200   -- bytes of a string value quoted in a reason

local null
do
  local ok, cjson = pcall(require, "cjson")
  null = ok and cjson.null or nil
end

-- A value as a reason quotes it: a string's first 200 bytes, a number as tostring
-- ("12.5", "1.0"), "true"/"false", and "table" for arrays and objects (no address).
local function shown(v)
  if type(v) == "string" then
    return #v > MAX_SHOWN and v:sub(1, MAX_SHOWN) or v
  end
  if type(v) == "table" then return "table" end
  return tostring(v)
end

-- A string holding exactly one JSON number, surrounded by optional JSON whitespace
-- (space, tab, CR, LF). Returns the Lua number or nil. JSON numbers only: no hex,
-- no "inf"/"nan", no leading "+", no leading zeros, no "5." or ".5".
local function json_number(s)
  local body = s:match("^[ \t\r\n]*(.-)[ \t\r\n]*$")
  local int, frac, exp = body:match("^(%-?%d+)(%.?%d*)([eE]?[+-]?%d*)$")
  if not int then return nil end
  local digits = int:sub(1, 1) == "-" and int:sub(2) or int
  if #digits > 1 and digits:sub(1, 1) == "0" then return nil end
  if frac == "." then return nil end
  if exp ~= "" and not exp:match("^[eE][+-]?%d+$") then return nil end
  return tonumber(body)
end

local rules = {}

-- string: scalars become text; arrays and objects are rejected.
function rules.string(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return number_text(v) end
  if t == "boolean" then return v and "true" or "false" end
  return nil, "expected a scalar for string"
end

-- A number as a number, a string holding one JSON number as that number, else nil.
local function numeric(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return json_number(v) end
  return nil
end

-- number: JSON numbers as they are; numeric strings read as numbers. Values beyond the
-- double range ("1e400" reads as inf) are rejected: JSON has no infinity.
local function finite(n) return n == n and n ~= math.huge and n ~= -math.huge end

function rules.number(v)
  local n = numeric(v)
  if n ~= nil and finite(n) then return n end
  if n ~= nil then return nil, "not a number: " .. shown(n) end
  return nil, "not a number: " .. shown(v)
end

-- int: integral values in int64 range (5.0 and 1e3 are fine); 12.5 is not an integer.
function rules.int(v)
  local n = numeric(v)
  if n == nil then return nil, "not an integer: " .. shown(v) end
  local i = math.tointeger(n)   -- nil when fractional, NaN, infinite or beyond int64
  if i then return i end
  return nil, "not an integer: " .. shown(v)
end

-- bool: booleans; the strings "true"/"false" in any case.
function rules.bool(v)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local l = v:lower()
    if l == "true" then return true end
    if l == "false" then return false end
  end
  return nil, "not a boolean: " .. shown(v)
end

-- date ------------------------------------------------------------------------------
-- Salesforce datetimes "2024-01-15T10:30:00.000+0000" (offset Z, ±hhmm or ±hh:mm) and
-- dates "2024-01-15" become RFC 3339 UTC: "2024-01-15T10:30:00Z". Milliseconds are kept
-- only when non-zero ("…:00.120Z"). An offset moves hours and minutes (rolling the day,
-- month and year over, leap years included); seconds are never touched, so a leap
-- second ":60" survives. Results outside years 0000-9999 are rejected.

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end

local function days_in(y, m)
  if m == 2 then return leap(y) and 29 or 28 end
  if m == 4 or m == 6 or m == 9 or m == 11 then return 30 end
  return 31
end

local function valid_day(y, m, d)
  return m >= 1 and m <= 12 and d >= 1 and d <= days_in(y, m)
end

function rules.date(v)
  if type(v) ~= "string" then return nil, "not a date: " .. shown(v) end
  local bad = "not a date: " .. shown(v)

  local y, mo, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if y then
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    if not valid_day(y, mo, d) then return nil, bad end
    return string.format("%04d-%02d-%02dT00:00:00Z", y, mo, d)
  end

  local h, mi, s, rest
  y, mo, d, h, mi, s, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil, bad end
  local ms = rest:match("^%.(%d%d%d)")
  if ms then rest = rest:sub(5) end
  local off                                   -- offset east of UTC, in minutes
  if rest == "Z" then
    off = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, bad end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil, bad end
    off = (oh * 60 + om) * (sign == "-" and -1 or 1)
  end

  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  if not valid_day(y, mo, d) or h > 23 or mi > 59 or s > 60 then return nil, bad end

  -- Shift to UTC on the minute of the day, then roll the day over (at most one day).
  local t = h * 60 + mi - off
  if t < 0 then
    t = t + 1440
    d = d - 1
    if d < 1 then
      mo = mo - 1
      if mo < 1 then mo = 12; y = y - 1 end
      d = days_in(y, mo)
    end
  elseif t >= 1440 then
    t = t - 1440
    d = d + 1
    if d > days_in(y, mo) then
      d = 1
      mo = mo + 1
      if mo > 12 then mo = 1; y = y + 1 end
    end
  end
  if y < 0 or y > 9999 then return nil, bad end

  local frac = (ms and ms ~= "000") and ("." .. ms) or ""
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, mo, d, t // 60, t % 60, s, frac)
end

-- []string --------------------------------------------------------------------------
-- An array: each element through the string rule, JSON nulls skipped; a scalar (or an
-- object) is one element. Nothing left: nil without a reason (the field is omitted).

-- Length of a table that is an array (only positive integer keys), or nil.
local function array_len(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return nil end
    if k > n then n = k end
  end
  return n
end

rules["[]string"] = function(v)
  local n = type(v) == "table" and array_len(v)
  if not n then
    local s, why = rules.string(v)
    if s == nil then return nil, why end
    return { s }
  end
  local out = {}
  for i = 1, n do
    local e = v[i]
    if e ~= nil and e ~= null then
      local s, why = rules.string(e)
      if s == nil then return nil, why end
      out[#out + 1] = s
    end
  end
  if #out == 0 then return nil end
  return out
end

return rules
