-- scripts/sf/export/typerules.lua: every export type rule and its edges, table-driven.
-- Each case: { describe field, input, expected } where expected is the value
-- sent, or REJECT(reason prefix) for a value skipped with a reason.
local t = require "tests.tap"
local cjson = require "cjson"
local rules = require "sf.export.typerules"

local function REJECT(reason) return { reject = reason } end
local null = cjson.null

local function F(type_, extra)
  local f = { name = "F", type = type_ }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

local STR10 = F("string", { length = 10 })
local DBL = F("double", { precision = 18, scale = 15 })   -- a latitude: 3 integer digits
local BIG = F("double", { precision = 18, scale = 4 })
local CUR = F("currency", { precision = 18, scale = 2 })
local PCT = F("percent", { precision = 5, scale = 2 })
local CUR0 = F("currency", { precision = 18, scale = 0 })

local cases = {
  -- boolean: true/false only
  { F "boolean", true, true },
  { F "boolean", false, false },
  { F "boolean", "true", REJECT "expected true or false" },
  { F "boolean", 1, REJECT "expected true or false" },
  { F "boolean", 0.0, REJECT "expected true or false" },
  { F "boolean", "yes", REJECT "expected true or false" },
  { F "boolean", { true }, REJECT "expected true or false" },
  -- numbers: truncated toward zero to 2 decimals
  { DBL, 12.34, 12.34 },
  { DBL, 12.349, 12.34 },
  { DBL, 12.3499999, 12.34 },
  { DBL, -12.349, -12.34 },
  { DBL, -0.001, 0.0 },
  { DBL, 0.29, 0.29 },               -- the double is 0.28999..., its text is 0.29
  { DBL, 1.005, 1.0 },
  { DBL, 1e-7, 0.0 },
  { DBL, 5.0, 5.0 },
  { DBL, 5, 5 },
  { BIG, 123456789.987654, 123456789.98 },
  { DBL, 1234.5, REJECT "1234.5 has more than 3 integer digits" },
  { BIG, 1.5e20, REJECT "1.5e+20 has more than 14 integer digits" },
  { CUR, 19.999, 19.99 },
  { CUR, -19.999, -19.99 },
  { CUR0, 12.75, 12.0 },              -- scale 0: no decimals, still cut toward zero
  { CUR0, -12.75, -12.0 },
  { PCT, 99.999, 99.99 },
  { PCT, 1000.5, REJECT "1000.5 has more than 3 integer digits" },
  { DBL, "12.5", REJECT "expected a number" },
  { DBL, true, REJECT "expected a number" },
  { DBL, 0 / 0, REJECT "expected a number" },
  { DBL, math.huge, REJECT "expected a number" },
  -- int
  { F "int", 476.0, 476 },
  { F "int", 476, 476 },
  { F "int", -3.0, -3 },
  { F "int", 5.5, REJECT "expected an integer, got 5.5" },
  { F "int", "476", REJECT "expected an integer" },
  { F "int", 3e9, REJECT "out of range" },
  -- text: cut to the describe length in UTF-16 units, at character boundaries
  { STR10, "Drives a Mazda", "Drives a M" },
  { STR10, "short", "short" },
  { STR10, "", "" },
  { STR10, "Zoë Ünïcødé", "Zoë Ünïcød" },
  { STR10, "山田太郎山田太郎山田太郎", "山田太郎山田太郎山田" },
  { STR10, "123456789🚀", "123456789" },   -- the emoji needs 2 units, 1 is left
  { STR10, "12345678🚀x", "12345678🚀" },
  { STR10, "ab\xff", REJECT "not valid UTF-8" },
  { STR10, "\xc3", REJECT "not valid UTF-8" },
  { STR10, "\xed\xa0\x80", REJECT "not valid UTF-8" },   -- a UTF-16 surrogate
  { STR10, 42, REJECT "expected text, got 42" },
  { STR10, true, REJECT "expected text" },
  { STR10, { "a" }, REJECT "expected text" },
  { F("textarea", { length = 32768 }), string.rep("x", 40000), string.rep("x", 32768) },
  { F("email", { length = 80 }), "a@b.example", "a@b.example" },
  { F("phone", { length = 5 }), "570-690-4150", "570-6" },
  { F("url", { length = 255 }), "https://x.example", "https://x.example" },
  { F("picklist", { length = 255 }), "Hot", "Hot" },
  { F("multipicklist", { length = 4099 }), { "a", "b", "c" }, "a;b;c" },
  { F("multipicklist", { length = 3 }), { "a", "b", "c" }, "a;b" },
  { F("multipicklist", { length = 4099 }), { "a", 1 }, REJECT "expected a list of texts" },
  -- date / datetime
  { F "date", "2024-01-15", "2024-01-15" },
  { F "date", "2024-01-15T23:30:00Z", "2024-01-15" },
  { F "date", "2024-01-15T23:30:00-05:00", "2024-01-16" },   -- its UTC date
  { F "date", "2024-02-29", "2024-02-29" },
  { F "date", "2023-02-29", REJECT "not a valid date" },
  { F "date", "2024-13-01", REJECT "not a valid date" },
  { F "date", "15/01/2024", REJECT "not a date" },
  { F "date", "2024-01-15Tnoon", REJECT "not a date" },
  { F "date", 1705314600, "2024-01-15" },                      -- epoch seconds
  { F "date", 1705314600000, "2024-01-15" },                   -- epoch milliseconds
  { F "date", true, REJECT "not a date" },
  { F "datetime", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z" },
  { F "datetime", "2024-01-15T10:30:00.250Z", "2024-01-15T10:30:00.250Z" },
  { F "datetime", "2024-01-15T10:30:00.000+0000", "2024-01-15T10:30:00Z" },
  { F "datetime", "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00Z" },
  { F "datetime", "2024-01-15T10:30:00", "2024-01-15T10:30:00Z" },
  { F "datetime", "2024-01-15 10:30", "2024-01-15T10:30:00Z" },
  { F "datetime", "2024-01-15", "2024-01-15T00:00:00Z" },
  { F "datetime", "1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z" },
  { F "datetime", 1705314600, "2024-01-15T10:30:00Z" },
  { F "datetime", 1705314600123, "2024-01-15T10:30:00.123Z" },
  { F "datetime", "2024-01-15T25:00:00Z", REJECT "not a valid time" },
  { F "datetime", 12, "1970-01-01T00:00:12Z" },
  -- unsupported and null
  { F "time", "10:00:00", REJECT "fields of type time are not supported" },
  { F "address", "x", REJECT "fields of type address are not supported" },
  { F "base64", "x", REJECT "not supported" },
  { STR10, null, REJECT "null" },
}

local function show(v)
  if type(v) == "table" then return cjson.encode(v) end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v) .. (math.type(v) == "float" and " (float)" or "")
end

for i, c in ipairs(cases) do
  local field, input, want = c[1], c[2], c[3]
  local got, reason = rules.coerce(input, field)
  local name = string.format("case %d: %s %s", i, field.type, show(input))
  if type(want) == "table" and want.reject then
    t.ok(got == nil and type(reason) == "string" and reason:find(want.reject, 1, true) ~= nil, name .. " is rejected: " .. want.reject,
      "got " .. show(got) .. " / " .. tostring(reason))
  else
    local same = got == want and (type(want) ~= "number" or math.type(got) == math.type(want) or want == 0)
    t.ok(same, name .. " -> " .. show(want), "got " .. show(got) .. " / " .. tostring(reason))
  end
end

-- sent numbers never carry more than 2 decimals, whatever the float noise
for _, v in ipairs { 0.1 + 0.2, 2.675, 1 / 3, -2 / 3, 100.125, 99999.999 } do
  local got = rules.coerce(v, BIG)
  local text = rules.number_text(got)
  t.ok(not text:find("%.%d%d%d"), "truncate(" .. rules.number_text(v) .. ") has at most 2 decimals: " .. text)
  t.ok(math.abs(got) <= math.abs(v), "truncate(" .. rules.number_text(v) .. ") goes toward zero")
end

t.eq(rules.number_text(5.0), "5", "number_text prints integral floats without .0")
t.eq(rules.number_text(0.1), "0.1", "number_text prints the shortest round-tripping text")
t.eq(rules.number_text(1e16), "10000000000000000", "number_text is exact for integral values in int64 range (1e16)")
t.eq(rules.number_text(-2 ^ 63), "-9223372036854775808", "number_text is exact down to the int64 minimum")
t.eq(rules.number_text(1e19), "1e+19", "number_text of an integral value beyond int64 is the shortest %g")
do
  local numbers = require "mappings.numbers"
  local types = require "mappings.types"
  t.ok(rules.number_text == numbers.text, "the export's number text is the one formatter, mappings.numbers.text")
  for _, v in ipairs { 1e16, 2 ^ 53 + 2, 0.1, 5.0, -0.25, 1e-7, 1e20, 12345678901234567890 } do
    local text = types.string(v)
    t.ok(require("sf.json").encode(v) == text and require("sf.export.lookup").literal(v, { type = "double" }) == text,
      "import (mappings.types) and export (JSON bodies, SOQL literals) write " .. text .. " alike")
  end
end
t.eq(rules.cut("abc", 0), "abc", "cut with no limit keeps the text")
t.ok(rules.is_missing(nil) and rules.is_missing(null) and rules.is_missing(""), "nil, null and \"\" are missing")
t.ok(not rules.is_missing(false) and not rules.is_missing(0), "false and 0 are values")
t.ok(rules.supported({ type = "string" }), "string fields are supported")
t.ok(not rules.supported({ type = "location" }), "location fields are not supported")

-- the rules are editable: replacing one changes coerce
local saved = rules.rules.boolean
rules.rules.boolean = function(v) if v == "yes" then return true end return saved(v) end
t.eq(rules.coerce("yes", F "boolean"), true, "an edited rule takes effect")
rules.rules.boolean = saved

t.done()
