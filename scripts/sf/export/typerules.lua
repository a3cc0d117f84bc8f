-- Salesforce type rules for export: which values a Salesforce field of a
-- given describe type accepts, and how they are shaped before sending.
-- (The product rules, "Exporting Leads" > Advanced Options; edit here.)
--
--   local typerules = require "sf.export.typerules"
--   local v, reason = typerules.coerce(value, field)   -- field: one describe field entry
--     v       the value to send (string, integer, float or boolean)
--     nil, reason   the value does not fit the field: leave the field out of
--                   the record and report the reason (the rest is sent)
--   typerules.supported(field) -> true | nil, reason   (a field the export can write)
--   typerules.is_missing(value) -> true for nil, JSON null and ""
--   typerules.cut(s, max_units) -> s cut to at most max_units (see "Lengths")
--   typerules.number_text(n)  -> mappings.numbers.text: exact for int64, else the
--                                shortest text that reads back as n
--
-- Values arrive as sf.json decodes the input (integer literals as exact Lua
-- integers, other numbers as floats), or as recipe functions return them. The rules, by describe type:
--
--   boolean                      true/false only (no "yes", no 0/1)
--   double, currency, percent    numbers only; more than 2 decimals (or more
--                                than the field's scale, when smaller) are cut
--                                off: "rounded down" means TRUNCATED TOWARD
--                                ZERO, so 1.239 -> 1.23 and -1.239 -> -1.23
--                                (not -1.24); a value with more integer digits
--                                than precision - scale is rejected
--   int                          numbers with no fractional part (5, 5.0);
--                                5.5 is rejected, never rounded
--   string, textarea, email, phone, url, picklist, combobox,
--   encryptedstring, reference   text only (numbers and booleans are rejected:
--                                map a text field); cut to the field's length
--   multipicklist                text, or a list of texts joined with ";"
--   date                         "YYYY-MM-DD", an ISO 8601 datetime (its UTC
--                                date is taken) or epoch time as a number
--                                (seconds, or milliseconds from 1e11 up)
--                                -> "YYYY-MM-DD"
--   datetime                     the same inputs -> "YYYY-MM-DDTHH:MM:SSZ" in
--                                UTC ("...SS.mmmZ" when milliseconds are given;
--                                a date alone is midnight UTC)
--   anything else (time, base64, address, location, ...): not supported; a
--   recipe that maps such a field is refused before the job starts.
--
-- Lengths: Salesforce counts a field's length in UTF-16 code units (an emoji
-- counts 2, as its Java does; the emulator follows it). Text is cut at a
-- character boundary so that it fits that count: never a broken UTF-8
-- sequence, never over the limit. Invalid UTF-8 is rejected.
local M = {}

M.DECIMALS = 2

local null
do
  local ok, cjson = pcall(require, "cjson")
  null = ok and cjson.null or nil
end

local MAX_SHOWN = 80

local function shown(v)
  if type(v) == "string" then
    if #v > MAX_SHOWN then v = v:sub(1, MAX_SHOWN) .. "..." end
    return string.format("%q", v)
  end
  if type(v) == "table" then return v == null and "null" or "a list or object" end
  return tostring(v)
end

function M.is_missing(v)
  return v == nil or v == null or v == ""
end

-- The one number formatter (mappings/numbers.lua), the same on import and export.
local number_text = require("mappings.numbers").text
M.number_text = number_text

-- n with at most `places` decimals, cut toward zero on its shortest decimal
-- text (so 0.29 stays 0.29 although the double is 0.28999...).
local function truncate(n, places)
  if math.type(n) == "integer" then return n end
  local s = number_text(n)
  local sign, mant, exp = s:match("^(%-?)([%d%.]+)e([+-]%d+)$")
  if not mant then
    sign, mant = s:match("^(%-?)([%d%.]+)$")
    exp = "0"
  end
  local ip, fp = mant:match("^(%d*)%.?(%d*)$")
  local digits, point = ip .. fp, #ip + tonumber(exp)
  if point < 1 then
    digits, point = string.rep("0", 1 - point) .. digits, 1
  elseif point > #digits then
    digits = digits .. string.rep("0", point - #digits)
  end
  fp = digits:sub(point + 1)
  if #fp <= places then return n end
  local cut = tonumber(digits:sub(1, point) .. "." .. fp:sub(1, places))
  if cut == 0 then return 0.0 end -- never -0.0
  return sign == "-" and -cut or cut
end
M.truncate = truncate

-- ---- text ----

-- Walks s as UTF-8; returns the byte length of the longest prefix whose
-- UTF-16 length is <= max_units, whether all of s fits, or nil when s is not
-- valid UTF-8.
local function utf8_fit(s, max_units)
  local i, n, units = 1, #s, 0
  -- fast path: pure ASCII
  if not s:find("[\128-\255]") then
    if n <= max_units then return n, true end
    return max_units, false
  end
  local fit = nil
  while i <= n do
    local c = s:byte(i)
    local len, u
    if c < 0x80 then len, u = 1, 1
    elseif c >= 0xC2 and c <= 0xDF then len, u = 2, 1
    elseif c >= 0xE0 and c <= 0xEF then len, u = 3, 1
    elseif c >= 0xF0 and c <= 0xF4 then len, u = 4, 2
    else return nil end
    if i + len - 1 > n then return nil end
    for k = i + 1, i + len - 1 do
      local b = s:byte(k)
      if b < 0x80 or b > 0xBF then return nil end
    end
    if len == 3 then
      local b = s:byte(i + 1)
      if (c == 0xE0 and b < 0xA0) or (c == 0xED and b > 0x9F) then return nil end
    elseif len == 4 then
      local b = s:byte(i + 1)
      if (c == 0xF0 and b < 0x90) or (c == 0xF4 and b > 0x8F) then return nil end
    end
    if not fit and units + u > max_units then fit = i - 1 end
    units = units + u
    i = i + len
  end
  if fit then return fit, false end
  return n, true
end

-- s cut to at most max_units UTF-16 code units at a character boundary;
-- nil, reason for invalid UTF-8.
function M.cut(s, max_units)
  if not max_units or max_units <= 0 then
    local _, ok = utf8_fit(s, math.maxinteger)
    if ok == nil then return nil, "not valid UTF-8 text" end
    return s
  end
  local bytes, whole = utf8_fit(s, max_units)
  if bytes == nil then return nil, "not valid UTF-8 text" end
  if whole then return s end
  return s:sub(1, bytes)
end

-- ---- dates ----

local function days_in_month(y, m)
  local d = ({ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[m]
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then d = 29 end
  return d
end

-- days since 1970-01-01 of a civil date (Howard Hinnant's algorithm)
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp + (mp < 10 and 3 or -9)
  return (m <= 2 and y + 1 or y), m, d
end

-- A date/datetime value -> epoch seconds (integer), milliseconds (0..999),
-- has_time; or nil, reason.
local function parse_instant(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "not a date: " .. shown(v) end
    local ms_total
    if math.abs(v) >= 1e11 then ms_total = math.floor(v) else ms_total = math.floor(v * 1000) end
    local secs = ms_total // 1000
    return secs, ms_total - secs * 1000, true
  end
  if type(v) ~= "string" then return nil, "not a date: " .. shown(v) end
  local y, mo, d, rest = v:match("^%s*(%d%d%d%d)%-(%d%d)%-(%d%d)(.-)%s*$")
  if not y then return nil, "not a date: " .. shown(v) end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) then
    return nil, "not a valid date: " .. shown(v)
  end
  local days = days_from_civil(y, mo, d)
  if rest == "" then return days * 86400, 0, false end
  local hh, mi, ss, frac, zone = rest:match("^[T ](%d%d):(%d%d):?(%d*)(%.?%d*)(.*)$")
  if not hh or (ss ~= "" and #ss ~= 2) or (frac ~= "" and (ss == "" or #frac < 2)) then
    return nil, "not a date: " .. shown(v)
  end
  hh, mi, ss = tonumber(hh), tonumber(mi), tonumber(ss ~= "" and ss or "0")
  if hh > 23 or mi > 59 or ss > 60 then return nil, "not a valid time: " .. shown(v) end
  if ss == 60 then ss = 59 end -- a leap second: the last representable one
  local ms = 0
  if frac ~= "" then ms = tonumber((frac:sub(2) .. "00"):sub(1, 3)) end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = zone:match("^([+-])(%d%d)$")
      om = "00"
    end
    if not sign then return nil, "not a date: " .. shown(v) end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  return days * 86400 + hh * 3600 + mi * 60 + ss - offset, ms, true
end

local function iso_date(secs)
  local y, m, d = civil_from_days(secs // 86400)
  return string.format("%04d-%02d-%02d", y, m, d)
end

local function iso_datetime(secs, ms)
  local days = secs // 86400
  local rem = secs - days * 86400
  local y, m, d = civil_from_days(days)
  local base = string.format("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, rem // 3600, rem % 3600 // 60, rem % 60)
  if ms and ms > 0 then return base .. string.format(".%03dZ", ms) end
  return base .. "Z"
end

-- ---- the rules ----

local rules = {}
M.rules = rules

function rules.boolean(v)
  if type(v) == "boolean" then return v end
  return nil, "expected true or false, got " .. shown(v)
end

function rules.number(v, field)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    return nil, "expected a number, got " .. shown(v)
  end
  local places = M.DECIMALS
  local scale = field and field.scale
  if type(scale) == "number" and scale >= 0 and scale < places then places = math.tointeger(scale) end
  local r = truncate(v, places)
  local precision = field and field.precision
  if type(precision) == "number" and precision > 0 then
    local int_digits = precision - (type(scale) == "number" and scale or 0)
    if int_digits >= 0 and int_digits < 19 and math.abs(r) >= 10.0 ^ int_digits then
      return nil, string.format("%s has more than %d integer digits", number_text(v), int_digits)
    end
  end
  return r
end
rules.double, rules.currency, rules.percent = rules.number, rules.number, rules.number

function rules.int(v)
  if type(v) ~= "number" then return nil, "expected an integer, got " .. shown(v) end
  local i = math.tointeger(v)
  if not i then return nil, "expected an integer, got " .. number_text(v) end
  if i > 2147483647 or i < -2147483648 then return nil, number_text(v) .. " is out of range for an int field" end
  return i
end

function rules.text(v, field)
  if type(v) ~= "string" then return nil, "expected text, got " .. shown(v) end
  return M.cut(v, field and field.length)
end
for _, t in ipairs { "string", "textarea", "email", "phone", "url", "picklist", "combobox",
                     "encryptedstring", "reference" } do
  rules[t] = rules.text
end

function rules.multipicklist(v, field)
  if type(v) == "table" and v ~= null then
    local parts = {}
    for i = 1, #v do
      if type(v[i]) ~= "string" then return nil, "expected a list of texts, got " .. shown(v[i]) .. " in it" end
      parts[i] = v[i]
    end
    v = table.concat(parts, ";")
  end
  return rules.text(v, field)
end

function rules.date(v)
  local secs, ms_or_err = parse_instant(v)
  if not secs then return nil, ms_or_err end
  return iso_date(secs)
end

function rules.datetime(v)
  local secs, ms = parse_instant(v)
  if not secs then return nil, ms end
  return iso_datetime(secs, ms)
end

-- Is a field one the export can write? (its type has a rule)
function M.supported(field)
  if rules[field.type] then return true end
  return nil, "fields of type " .. tostring(field.type) .. " are not supported"
end

-- The value to send for field, or nil, reason.
function M.coerce(v, field)
  local rule = rules[field.type]
  if not rule then return nil, "fields of type " .. tostring(field.type) .. " are not supported" end
  if v == null then return nil, "null" end
  return rule(v, field)
end

M.parse_instant = parse_instant
M.iso_date = iso_date
M.iso_datetime = iso_datetime
return M
