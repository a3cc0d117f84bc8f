-- mappings/types.lua: every import coercion rule, every edge, table-driven.
-- Each case: { type, input, expected } where expected is the coerced value, REJECT(reason
-- prefix) for a rejection with a reason, or OMIT for "nothing to write, no reason".
local t = require "tests.tap"
local cjson = require "cjson"
local rules = require "mappings.types"

local function REJECT(reason) return { reject = reason } end
local OMIT = { omit = true }
local null = cjson.null
local long = string.rep("x", 300)

local cases = {
  -- string ------------------------------------------------------------------------
  { "string", "abc", "abc" },
  { "string", "", "" },
  { "string", "  spaced  ", "  spaced  " },
  { "string", 5.0, "5" },
  { "string", 5, "5" },
  { "string", -3.0, "-3" },
  { "string", -0.0, "0" },
  { "string", 0.0, "0" },
  { "string", 12.5, "12.5" },
  { "string", 0.1, "0.1" },
  { "string", 0.1 + 0.2, "0.30000000000000004" },
  { "string", 1 / 3, "0.3333333333333333" },
  { "string", 1e20, "1e+20" },
  { "string", 1.5e-7, "1.5e-07" },
  { "string", 123456789012.0, "123456789012" },
  { "string", 2.0 ^ 53, "9007199254740992" },
  { "string", 2.0 ^ 63, "9.223372036854776e+18" },
  { "string", true, "true" },
  { "string", false, "false" },
  { "string", { "a" }, REJECT "expected a scalar for string" },
  { "string", { a = 1 }, REJECT "expected a scalar for string" },
  -- number ------------------------------------------------------------------------
  { "number", 5.0, 5.0 },
  { "number", -12.25, -12.25 },
  { "number", "5", 5 },
  { "number", " 12.5 ", 12.5 },
  { "number", "\t42\n", 42 },
  { "number", "-1e3", -1000.0 },
  { "number", "1E+2", 100.0 },
  { "number", "0", 0 },
  { "number", "-0.5", -0.5 },
  { "number", "abc", REJECT "not a number: abc" },
  { "number", "", REJECT "not a number: " },
  { "number", "0x10", REJECT "not a number: 0x10" },
  { "number", "1.", REJECT "not a number: 1." },
  { "number", ".5", REJECT "not a number: .5" },
  { "number", "01", REJECT "not a number: 01" },
  { "number", "+1", REJECT "not a number: +1" },
  { "number", "1e", REJECT "not a number: 1e" },
  { "number", "1 2", REJECT "not a number: 1 2" },
  { "number", "inf", REJECT "not a number: inf" },
  { "number", "nan", REJECT "not a number: nan" },
  { "number", "1,5", REJECT "not a number: 1,5" },
  { "number", true, REJECT "not a number: true" },
  { "number", 1e400, REJECT "not a number: inf" },
  { "number", -1e400, REJECT "not a number: -inf" },
  { "number", "1e400", REJECT "not a number: inf" },
  { "number", "\v5", REJECT "not a number: " },
  { "string", 1e400, "inf" },
  { "int", 1e400, REJECT "not an integer: " },
  { "number", { 1 }, REJECT "not a number: table" },
  -- int ---------------------------------------------------------------------------
  { "int", 5.0, 5 },
  { "int", 1e3, 1000 },
  { "int", -7.0, -7 },
  { "int", 0.0, 0 },
  { "int", -2.0 ^ 63, math.mininteger },
  { "int", 2.0 ^ 62, 1 << 62 },
  { "int", 2.0 ^ 63, REJECT "not an integer: " },
  { "int", 1e19, REJECT "not an integer: " },
  { "int", 12.5, REJECT "not an integer: 12.5" },
  { "int", "42", 42 },
  { "int", " 7 ", 7 },
  { "int", "5.0", 5 },
  { "int", "1e3", 1000 },
  { "int", "-12", -12 },
  { "int", "12.5", REJECT "not an integer: 12.5" },
  { "int", "abc", REJECT "not an integer: abc" },
  { "int", "0x10", REJECT "not an integer: 0x10" },
  { "int", "", REJECT "not an integer: " },
  { "int", true, REJECT "not an integer: true" },
  { "int", { 1 }, REJECT "not an integer: table" },
  -- bool --------------------------------------------------------------------------
  { "bool", true, true },
  { "bool", false, false },
  { "bool", "true", true },
  { "bool", "false", false },
  { "bool", "TRUE", true },
  { "bool", "False", false },
  { "bool", "tRuE", true },
  { "bool", "yes", REJECT "not a boolean: yes" },
  { "bool", " true", REJECT "not a boolean:  true" },
  { "bool", "1", REJECT "not a boolean: 1" },
  { "bool", "", REJECT "not a boolean: " },
  { "bool", 1.0, REJECT "not a boolean: 1" },
  { "bool", { true }, REJECT "not a boolean: table" },
  -- date --------------------------------------------------------------------------
  { "date", "2024-01-15T10:30:00.000+0000", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T10:30:00.000Z", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T10:30:00.123+0000", "2024-01-15T10:30:00.123Z" },
  { "date", "2024-01-15T10:30:00.120Z", "2024-01-15T10:30:00.120Z" },
  { "date", "2024-01-15T10:30:00.001-00:00", "2024-01-15T10:30:00.001Z" },
  { "date", "2024-01-15T12:30:00+0200", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T05:00:00-05:30", "2024-01-15T10:30:00Z" },
  { "date", "2024-01-15T01:30:00+02:00", "2024-01-14T23:30:00Z" },
  { "date", "2024-01-15T22:45:10.500-0300", "2024-01-16T01:45:10.500Z" },
  { "date", "2024-01-01T00:15:00+00:30", "2023-12-31T23:45:00Z" },
  { "date", "2024-12-31T23:30:00-0100", "2025-01-01T00:30:00Z" },
  { "date", "2024-03-01T01:00:00+0200", "2024-02-29T23:00:00Z" },
  { "date", "2023-03-01T01:00:00+0200", "2023-02-28T23:00:00Z" },
  { "date", "2024-02-28T22:00:00-05:00", "2024-02-29T03:00:00Z" },
  { "date", "2023-02-28T22:00:00-05:00", "2023-03-01T03:00:00Z" },
  { "date", "2100-02-28T23:00:00-0200", "2100-03-01T01:00:00Z" },
  { "date", "2000-02-28T23:00:00-0200", "2000-02-29T01:00:00Z" },
  { "date", "2024-04-30T23:00:00-0200", "2024-05-01T01:00:00Z" },
  { "date", "2024-05-01T00:59:00+0100", "2024-04-30T23:59:00Z" },
  { "date", "2024-01-15T23:59:60Z", "2024-01-15T23:59:60Z" },
  { "date", "2024-01-15T00:00:00+2359", "2024-01-14T00:01:00Z" },
  { "date", "2024-01-15", "2024-01-15T00:00:00Z" },
  { "date", "2024-02-29", "2024-02-29T00:00:00Z" },
  { "date", "2000-02-29", "2000-02-29T00:00:00Z" },
  { "date", "2023-02-29", REJECT "not a date: 2023-02-29" },
  { "date", "1900-02-29", REJECT "not a date: 1900-02-29" },
  { "date", "2024-13-01", REJECT "not a date: 2024-13-01" },
  { "date", "2024-00-10", REJECT "not a date: 2024-00-10" },
  { "date", "2024-04-31", REJECT "not a date: 2024-04-31" },
  { "date", "2024-01-00", REJECT "not a date: 2024-01-00" },
  { "date", "2024-01-32T00:00:00Z", REJECT "not a date: " },
  { "date", "2024-13-15T10:30:00Z", REJECT "not a date: " },
  { "date", "2024-01-15T24:00:00Z", REJECT "not a date: " },
  { "date", "2024-01-15T10:60:00Z", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:61Z", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00", REJECT "not a date: " },
  { "date", "2024-01-15 10:30:00Z", REJECT "not a date: " },
  { "date", "2024-01-15t10:30:00z", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00.12Z", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00.1234Z", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00+2500", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00+0160", REJECT "not a date: " },
  { "date", "2024-01-15T10:30:00+02", REJECT "not a date: " },
  { "date", "2024-01-15T10:30Z", REJECT "not a date: " },
  { "date", "2024-1-15", REJECT "not a date: 2024-1-15" },
  { "date", "24-01-15", REJECT "not a date: 24-01-15" },
  { "date", " 2024-01-15", REJECT "not a date:  2024-01-15" },
  { "date", "", REJECT "not a date: " },
  { "date", "yesterday", REJECT "not a date: yesterday" },
  { "date", 20240115.0, REJECT "not a date: 20240115" },
  { "date", true, REJECT "not a date: true" },
  { "date", "0000-01-01T00:30:00+01:00", REJECT "not a date: " },
  { "date", "9999-12-31T23:30:00-01:00", REJECT "not a date: " },
  -- []string ----------------------------------------------------------------------
  { "[]string", { "a", "b" }, { "a", "b" } },
  { "[]string", { null, "a", null, "b", null }, { "a", "b" } },
  { "[]string", { 1.0, true, 2.5 }, { "1", "true", "2.5" } },
  { "[]string", "x", { "x" } },
  { "[]string", "", { "" } },
  { "[]string", 5.0, { "5" } },
  { "[]string", false, { "false" } },
  { "[]string", {}, OMIT },
  { "[]string", { null }, OMIT },
  { "[]string", { null, null }, OMIT },
  { "[]string", { { "nested" } }, REJECT "expected a scalar for string" },
  { "[]string", { "a", { b = 1 } }, REJECT "expected a scalar for string" },
  { "[]string", { a = 1 }, REJECT "expected a scalar for string" },
}

local function show(v)
  if type(v) == "table" then
    if v.reject then return "reject(" .. v.reject .. ")" end
    if v.omit then return "omitted" end
    local ok, s = pcall(cjson.encode, v)
    return ok and s or tostring(v)
  end
  if type(v) == "string" then
    return '"' .. v:gsub("[%c\\\"]", function(ch) return string.format("\\x%02x", ch:byte()) end) .. '"'
  end
  if math.type(v) == "integer" then return tostring(v) .. " (integer)" end
  return tostring(v)
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "table" then
    if #a ~= #b then return false end
    for i = 1, #a do if a[i] ~= b[i] then return false end end
    return next(a) == nil or #a > 0
  end
  if type(a) == "number" then return a == b and math.type(a) == math.type(b) end
  return a == b
end

t.same((function()
  local keys = {}
  for k, v in pairs(rules) do if type(v) == "function" then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end)(), { "[]string", "bool", "date", "int", "number", "string" }, "types.lua has exactly one rule per target type")

for _, c in ipairs(cases) do
  local ty, input, want = c[1], c[2], c[3]
  local got, why = rules[ty](input)
  local name = string.format("%s(%s) -> %s", ty, show(input), show(want))
  if type(want) == "table" and want.reject then
    t.ok(got == nil and type(why) == "string" and why:sub(1, #want.reject) == want.reject, name,
         "got " .. show(got) .. ", reason " .. tostring(why))
  elseif type(want) == "table" and want.omit then
    t.ok(got == nil and why == nil, name, "got " .. show(got) .. ", reason " .. tostring(why))
  else
    -- number keeps what tonumber gives (integer or float): only its value matters
    local ok = (ty == "number") and got == want or same(got, want)
    t.ok(ok, name, "got " .. show(got) .. ", reason " .. tostring(why))
  end
end

-- int results are Lua integers, so cjson writes "5", never "5.0".
do
  local v = rules.int(5.0)
  t.eq(math.type(v), "integer", "int(5.0) is a Lua integer")
end

-- Reasons quote at most 200 bytes of a string value.
do
  local _, why = rules.number(long)
  t.eq(why, "not a number: " .. string.rep("x", 200), "a rejected long string is quoted to 200 bytes")
  local _, why2 = rules.date(long)
  t.eq(#why2, #"not a date: " + 200, "date reasons are truncated the same way")
end

-- Every rule survives arbitrary junk without raising.
do
  local junk = { "", " ", "\0", "-", "e", "1e999", "-1e999", "2024-02-30T00:00:00Z", "9999-99-99",
                 math.huge, -math.huge, 0 / 0, math.maxinteger, math.mininteger, {}, { {} }, null }
  local raised
  for _, ty in ipairs({ "string", "number", "int", "bool", "date", "[]string" }) do
    for _, v in ipairs(junk) do
      local ok, err = pcall(rules[ty], v)
      if not ok then raised = ty .. "(" .. show(v) .. "): " .. tostring(err) end
    end
  end
  t.ok(raised == nil, "no rule raises on junk input", raised)
end

t.done()
