-- The C coercion twins in engine/mapper.c agree with the Lua rules of mappings/types.lua.
--
-- A corpus of values (edge cases plus generated ones, ~300) goes through both. The C
-- mapper gets each value's JSON text in a synthetic query page (built as text, parsed by
-- sf.page) mapped by a one-row mapping per type. The Lua rule gets the value as a Lua
-- override rule would get it in production: p:record(i) (cjson semantics, integer
-- literals as integers), and, as a second pass, as cjson.decode gives it. The C output
-- line of each record is compared after cjson.decode: the same value, or both reject,
-- or both omit. Numbers are compared as doubles, numeric text by its value ("1e+20" and
-- "100000000000000000000" are the same value), as the spec says, except integral values
-- in int64 range, whose text must be identical ("5", never "5.0"); a third check decodes
-- the C output with sf.page (integers kept exact) and compares int results exactly.
local t = require "tests.tap"
local cjson = require "cjson"
local rules = require "mappings.types"

local ok_mapper, mapper = pcall(require, "sf.mapper")
local ok_page, page = pcall(require, "sf.page")
if not (ok_mapper and type(mapper.compile) == "function" and ok_page and type(page.parse) == "function") then
  t.ok(false, "sf.mapper.compile and sf.page.parse exist", "engine/mapper.c or engine/page.c is still a placeholder")
  t.done()
end

local TYPES = { "string", "number", "int", "bool", "date", "[]string" }

-- Corpus: JSON texts ---------------------------------------------------------------------

local corpus, seen = {}, {}
local function add(json)
  if not seen[json] then seen[json] = true; corpus[#corpus + 1] = json end
end
local function str(s) add(cjson.encode(s)) end
local function num(n)
  if math.type(n) == "integer" then add(string.format("%d", n)) else add(string.format("%.17g", n)) end
end

-- Edge cases, by rule.
for _, j in ipairs({
  "null", "0", "-0", "5", "5.0", "-5", "12.5", "0.1", "1e3", "1E3", "1e+3", "1e-3", "-1.5e-7", "1e20", "1e21", "1e308",
  "2.5e-308", "4.9e-324", "9007199254740992", "9007199254740993", "9223372036854775807", "9223372036854775808",
  "-9223372036854775808", "-9223372036854775809", "12345678901234567890", "0.30000000000000004", "1e400", "-1e400",
  "3.141592653589793", "100.0", "1.0e2", "123456789.125",
  "true", "false",
  "[]", "[null]", "[null,null]", "[\"a\",\"b\"]", "[\"a\",null,\"b\"]", "[1,2.5,true]", "[\"x\"]", "[[\"nested\"]]",
  "[{\"a\":1}]", "{}", "{\"a\":1}", "[\"\"]", "[5.0]",
}) do add(j) end
for _, s in ipairs({
  "", " ", "abc", "hello world", "héllo ✓", "tab\tnew\nline", "quote\"back\\slash", "\0nul",
  "5", " 5 ", "\t42\n", "1e400", "\v5", "5\f", "-12", "12.5", "5.0", "1e3", "-1e3", "1E+2", "0", "-0", "01", "+1", "1.", ".5", "1e", "0x10",
  "inf", "-inf", "nan", "NaN", "Infinity", "1,5", "1 2", "9223372036854775807", "9223372036854775808",
  "true", "false", "TRUE", "False", "tRuE", "yes", "no", "1", " true", "true ", "t",
  "2024-01-15T10:30:00.000+0000", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000Z", "2024-01-15T10:30:00.123+0000",
  "2024-01-15T10:30:00.120Z", "2024-01-15T12:30:00+02:00", "2024-01-15T05:00:00-05:30", "2024-01-15T01:30:00+0200",
  "2024-01-01T00:15:00+00:30", "2024-12-31T23:30:00-0100", "2024-03-01T01:00:00+0200", "2023-03-01T01:00:00+0200",
  "2024-02-28T22:00:00-05:00", "2023-02-28T22:00:00-05:00", "2100-02-28T23:00:00-0200", "2000-02-28T23:00:00-0200",
  "2024-01-15T23:59:60Z", "2024-01-15T00:00:00+2359", "2024-01-15", "2024-02-29", "2000-02-29", "2023-02-29",
  "1900-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-01-00", "2024-01-32T00:00:00Z",
  "2024-01-15T24:00:00Z", "2024-01-15T10:60:00Z", "2024-01-15T10:30:61Z", "2024-01-15T10:30:00",
  "2024-01-15 10:30:00Z", "2024-01-15T10:30:00.12Z", "2024-01-15T10:30:00.1234Z", "2024-01-15T10:30:00+2500",
  "2024-01-15T10:30:00+0160", "2024-01-15T10:30:00+02", "2024-01-15T10:30Z", "2024-1-15", "24-01-15",
  " 2024-01-15", "2024-01-15 ", "yesterday", "0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
  "0000-01-01", "9999-12-31T23:59:59.999Z",
  string.rep("x", 300), string.rep("7", 250),
}) do str(s) end

-- Generated: a fixed seed, so a failure is reproducible.
math.randomseed(20240115)
local R = math.random
for _ = 1, 40 do num(R(-1000000, 1000000)) end
for _ = 1, 30 do num((R() - 0.5) * 10 ^ R(-12, 22)) end
for _ = 1, 10 do str(tostring(R(-99999, 99999))) end
for _ = 1, 10 do str(string.format("%.6f", (R() - 0.5) * 1000)) end
local function days_in(y, m)
  if m == 2 then return ((y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end
for _ = 1, 45 do
  local y, mo = R(1970, 2099), R(1, 12)
  local d = R(1, days_in(y, mo))
  if R() < 0.3 then d = R(1, 2) == 1 and days_in(y, mo) or 1 end   -- month edges, for roll-over
  local ms = ({ ".000", "", string.format(".%03d", R(0, 999)) })[R(1, 3)]
  local sign = R(1, 2) == 1 and "+" or "-"
  local oh, om = R(0, 14), ({ 0, 30, 45 })[R(1, 3)]
  local zone = ({ "Z", string.format("%s%02d%02d", sign, oh, om), string.format("%s%02d:%02d", sign, oh, om) })[R(1, 3)]
  str(string.format("%04d-%02d-%02dT%02d:%02d:%02d%s%s", y, mo, d, R(0, 23), R(0, 59), R(0, 59), ms, zone))
end
for _ = 1, 10 do str(string.format("%04d-%02d-%02d", R(1600, 2400), R(0, 13), R(0, 32))) end
for _ = 1, 10 do
  local n, parts = R(1, 4), {}
  for k = 1, n do
    parts[k] = ({ cjson.encode("s" .. R(1, 99)), "null", tostring(R(1, 99)), "true", cjson.encode("") })[R(1, 5)]
  end
  add("[" .. table.concat(parts, ",") .. "]")
end

t.ok(#corpus >= 280, "the corpus has about 300 values (" .. #corpus .. ")")

-- One page with one record per corpus value ------------------------------------------

local function id_of(i) return string.format("00Q%015d", i) end

local records = {}
for i, json in ipairs(corpus) do
  records[i] = string.format(
    '{"attributes":{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/%s"},"Id":"%s","IsDeleted":false,'
      .. '"LastModifiedDate":"2024-01-15T10:30:00.000+0000","V":%s}', id_of(i), id_of(i), json)
end
local body = string.format('{"totalSize":%d,"done":true,"records":[%s]}', #corpus, table.concat(records, ","))
local decoded = cjson.decode(body).records
local p = assert(page.parse(body))
local exact = {}
for i = 1, #p do exact[i] = p:record(i).V end
t.eq(#p, #corpus, "sf.page reads one record per corpus value")

-- Outcome of a Lua rule: { value = v } | { reject = reason } | { omit = true }.
local function lua_outcome(ty, v)
  if v == nil or v == cjson.null then return { omit = true } end
  local got, why = rules[ty](v)
  if got ~= nil then return { value = got } end
  if why ~= nil then return { reject = why } end
  return { omit = true }
end

-- Outcomes of the C mapper for every record (output line i is record i), plus the
-- output lines re-read with sf.page for exact integers.
local function c_outcomes(ty)
  local mp = mapper.compile({ { sf = "V", to = "v", type = ty } },
    { object = "Lead", stream = "parity", timestamp_field = "LastModifiedDate", now = "2024-01-15T10:30:00Z" })
  local lines, rejects, stats = mp:map_page(p)
  mp:close()
  local out, list = {}, {}
  for line in lines:gmatch("[^\n]+") do list[#list + 1] = line end
  local rejected = {}
  for line in rejects:gmatch("[^\n]+") do
    local rej = cjson.decode(line)
    if rej.field == "v" and rej.id then rejected[rej.id] = rej.reason end
  end
  local reread = assert(page.parse('{"totalSize":' .. #list .. ',"done":true,"records":[' .. table.concat(list, ",") .. "]}"))
  for i = 1, #list do
    local rec = cjson.decode(list[i])
    local o
    if rec.v ~= nil then o = { value = rec.v, exact = reread:record(i).v }
    elseif rejected[id_of(i)] then o = { reject = rejected[id_of(i)] }
    else o = { omit = true } end
    out[i] = o
  end
  return out, stats, #list
end

local function numeric(s) return type(s) == "string" and tonumber(s) end

local function same_value(a, b)
  if type(a) == "table" and type(b) == "table" then
    if #a ~= #b then return false end
    for i = 1, #a do if not same_value(a[i], b[i]) then return false end end
    return true
  end
  if type(a) == "number" and type(b) == "number" then return a + 0.0 == b + 0.0 end
  if a == b then return true end
  local na, nb = numeric(a), numeric(b)
  if na == nil or nb == nil or na + 0.0 ~= nb + 0.0 then return false end
  -- Integral values in int64 range have one text: "5", never "5.0" or "5e0".
  return math.tointeger(na + 0.0) == nil
end

local function show(o)
  if o == nil then return "no output" end
  if o.reject then return "reject(" .. tostring(o.reject) .. ")" end
  if o.omit then return "omitted" end
  local ok, s = pcall(cjson.encode, o.value)
  return ok and s or tostring(o.value)
end

local function agree(want, got)
  return got ~= nil and ((want.reject ~= nil and got.reject ~= nil) or (want.omit and got.omit)
    or (want.value ~= nil and got.value ~= nil and same_value(want.value, got.value)))
end

-- cjson reads every number as a double: integer literals beyond 2^53 lose digits before
-- a Lua rule sees them (int rejects 9223372036854775807 read as 2^63), so with cjson's
-- values only those may differ.
local lossy = {}
for i = 1, #corpus do
  local e = exact[i]
  lossy[i] = math.type(e) == "integer" and e + 0.0 ~= e
end

local totals = { values = 0, rejects = 0, omits = 0 }
local reason_diffs = {}
for _, ty in ipairs(TYPES) do
  local c, stats, nlines = c_outcomes(ty)
  t.ok(nlines == #corpus and stats.records == #corpus,
       ty .. ": the C mapper writes one line per record", nlines .. " lines, " .. tostring(stats.records) .. " records")
  for pass = 1, 2 do
    local bad, n = {}, 0
    for i, json in ipairs(corpus) do
      local want = lua_outcome(ty, pass == 1 and exact[i] or decoded[i].V)
      if agree(want, c[i]) or (pass == 2 and lossy[i]) then
        n = n + 1
        if pass == 1 then
          totals.values = totals.values + (want.value ~= nil and 1 or 0)
          totals.rejects = totals.rejects + (want.reject ~= nil and 1 or 0)
          totals.omits = totals.omits + (want.omit and 1 or 0)
          if want.reject and want.reject ~= c[i].reject and #reason_diffs < 12 then
            reason_diffs[#reason_diffs + 1] = string.format("%s %s: Lua %q, C %q", ty, json:sub(1, 40), want.reject, c[i].reject)
          end
        end
      elseif #bad < 12 then
        bad[#bad + 1] = string.format("%s: Lua %s, C %s", json:sub(1, 60), show(want), show(c[i]))
      end
    end
    local what = pass == 1 and "values as sf.page decodes them" or "values as cjson.decode gives them"
    t.ok(n == #corpus, string.format("%s: C and Lua agree on all %d corpus values (%s)", ty, #corpus, what),
         (#corpus - n) .. " differ: " .. table.concat(bad, " | "))
  end
  if ty == "int" then
    local bad = {}
    for i, json in ipairs(corpus) do
      local want = lua_outcome(ty, exact[i])
      local got = c[i]
      if want.value ~= nil and not (got and math.type(got.exact) == "integer" and got.exact == want.value) then
        bad[#bad + 1] = json .. ": Lua " .. tostring(want.value) .. ", C " .. tostring(got and got.exact)
      end
    end
    t.ok(#bad == 0, "int: C writes exactly the integer the Lua rule gives (beyond 2^53 too)", table.concat(bad, " | "))
  end
end
t.ok(#reason_diffs == 0, "rejection reasons read the same from C and Lua", table.concat(reason_diffs, " | "))
t.ok(totals.values > 0 and totals.rejects > 0 and totals.omits > 0,
     string.format("the corpus exercises values (%d), rejects (%d) and omissions (%d)", totals.values, totals.rejects, totals.omits))

-- A tenant's override of a rule goes through Lua, with the same outcome for the same rule.
do
  local mp = mapper.compile({ { sf = "V", to = "v", type = "date" } },
    { object = "Lead", stream = "parity", timestamp_field = "LastModifiedDate", now = "2024-01-15T10:30:00Z",
      types = { date = rules.date } })
  local lines = mp:map_page(p)
  mp:close()
  local c, i, bad = {}, 0, 0
  for line in lines:gmatch("[^\n]+") do i = i + 1; c[i] = cjson.decode(line).v end
  for k = 1, #corpus do
    local want = lua_outcome("date", exact[k])
    if (want.value or cjson.null) ~= (c[k] or cjson.null) then bad = bad + 1 end
  end
  t.eq(bad, 0, "the Lua date rule given as a types override yields what the C twin yields")
end

t.done()
