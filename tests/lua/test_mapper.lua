-- sf.mapper: compiled mappings; a whole page mapped to NDJSON lines in C.
local t = require "tests.tap"
local page = require "sf.page"
local mapper = require "sf.mapper"
local cjson = require "cjson"

local OPTS = { object = "Lead", stream = "salesforce_leads", timestamp_field = "LastModifiedDate",
               now = "2026-11-23T12:00:00Z" }

local function opts(extra)
  local o = {}
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- A page holding the given record texts.
local function mkpage(recs)
  local body = '{"totalSize":' .. #recs .. ',"done":true,"records":[' .. table.concat(recs, ",") .. "]}"
  return assert(page.parse(body))
end

-- Maps records (JSON texts) with rows; returns out, rejects, stats.
local function run(rows, recs, o)
  local m = mapper.compile(rows, opts(o))
  return m:map_page(mkpage(recs))
end

-- One record through one row: the output line and the rejects text.
local function one(row, value_json, o)
  row.to = row.to or "f"
  local rec = '{"Id":"00Q1","V":' .. value_json .. "}"
  row.sf = row.sf or (not row.const and "V" or nil)
  local out, rej = run({ row }, { rec }, o)
  -- every line leads with the record's Id; the rest is the row's field
  local line = out:gsub("\n$", "")
  local rest = line:match('^{"_id":"00Q1",?(.*)$')
  return rest and ("{" .. rest) or line, rej
end

-- check(type, input JSON, expected field JSON | REJECT(reason) | OMIT)
local function REJECT(reason) return { reject = reason } end
local OMIT = {}
local function check(ty, input, want, name, row)
  row = row or {}
  row.type = ty
  local line, rej = one(row, input)
  name = name or string.format("%s(%s)", ty, input)
  if type(want) == "string" then
    t.eq(line, '{"f":' .. want .. "}", name .. " -> " .. want)
    if rej ~= "" then t.ok(false, name .. ": no reject", rej) end
  elseif want == OMIT then
    t.ok(line == "{}" and rej == "", name .. " -> omitted", "got " .. line .. " / " .. rej)
  else
    local r = rej ~= "" and cjson.decode(rej) or {}
    t.ok(line == "{}" and r.reason == want.reject, name .. " -> reject " .. want.reject,
         "got " .. line .. " / " .. rej)
  end
end

---------------------------------------------------------------------------------------
-- coercion rules (the C twin of mappings/types.lua)

-- string
check("string", '"abc"', '"abc"')
check("string", '""', '""')
check("string", '"\\u00e9\\/\\"\\\\\\n\\t\\u0001\\u001f\\u007f\\ud83d\\ude00"',
      '"\u{e9}/\\"\\\\\\n\\t\\u0001\\u001f\127\u{1F600}"', "string escapes re-emitted minimally")
check("string", '"caf\u{e9} \u{1F600}"', '"caf\u{e9} \u{1F600}"', "raw UTF-8 copied through")
check("string", "5", '"5"')
check("string", "5.0", '"5"')
check("string", "-3.0", '"-3"')
check("string", "-0", '"0"')
check("string", "-0.0", '"0"')
check("string", "12.5", '"12.5"')
check("string", "12.50", '"12.5"')
check("string", "1e3", '"1000"')
check("string", "1e20", '"1e+20"')
check("string", "1.5e-7", '"1.5e-07"')
check("string", "0.1", '"0.1"')
check("string", "0.30000000000000004", '"0.30000000000000004"')
check("string", "123456789012.0", '"123456789012"')
check("string", "9223372036854775807", '"9223372036854775807"')
check("string", "9223372036854775808", '"9.223372036854776e+18"')
check("string", "true", '"true"')
check("string", "false", '"false"')
check("string", "null", OMIT)
check("string", '["a"]', REJECT "expected a scalar for string")
check("string", '{"a":1}', REJECT "expected a scalar for string")

-- number
check("number", "5", "5")
check("number", "-12.25", "-12.25")
check("number", "5.0", "5")
check("number", "1000037.0", "1000037")
check("number", "1E+2", "100")
check("number", "0.1", "0.1")
check("number", '"5"', "5")
check("number", '" 12.5 "', "12.5")
check("number", '"\\t42\\n"', "42")
check("number", '"-1e3"', "-1000")
check("number", '"abc"', REJECT "not a number: abc")
check("number", '""', REJECT "not a number: ")
check("number", '"0x10"', REJECT "not a number: 0x10")
check("number", '"1."', REJECT "not a number: 1.")
check("number", '"01"', REJECT "not a number: 01")
check("number", '"+1"', REJECT "not a number: +1")
check("number", '"1,5"', REJECT "not a number: 1,5")
check("number", '"\\f1"', REJECT "not a number: \f1", "number trims JSON white space only")
check("number", "true", REJECT "not a number: true")
check("number", "[1]", REJECT "not a number: table")
check("number", "1e400", REJECT "not a number: inf")
check("number", "null", OMIT)

-- int
check("int", "5", "5")
check("int", "5.0", "5")
check("int", "1e3", "1000")
check("int", "-7.0", "-7")
check("int", "-0", "0")
check("int", "9223372036854775807", "9223372036854775807")
check("int", "-9223372036854775808", "-9223372036854775808")
check("int", "9223372036854775808", REJECT "not an integer: 9.2233720368548e+18")
check("int", "1e19", REJECT "not an integer: 1e+19")
check("int", "12.5", REJECT "not an integer: 12.5")
check("int", '"42"', "42")
check("int", '" 7 "', "7")
check("int", '"5.0"', "5")
check("int", '"1e3"', "1000")
check("int", '"12.5"', REJECT "not an integer: 12.5")
check("int", '"abc"', REJECT "not an integer: abc")
check("int", "true", REJECT "not an integer: true")
check("int", "{}", REJECT "not an integer: table")

-- bool
check("bool", "true", "true")
check("bool", "false", "false")
check("bool", '"true"', "true")
check("bool", '"FALSE"', "false")
check("bool", '"tRuE"', "true")
check("bool", '"yes"', REJECT "not a boolean: yes")
check("bool", '" true"', REJECT "not a boolean:  true")
check("bool", "1", REJECT "not a boolean: 1")
check("bool", "1.0", REJECT "not a boolean: 1.0")
check("bool", "[true]", REJECT "not a boolean: table")

-- date
check("date", '"2024-01-15T10:30:00.000+0000"', '"2024-01-15T10:30:00Z"')
check("date", '"2024-01-15T10:30:00Z"', '"2024-01-15T10:30:00Z"')
check("date", '"2024-01-15T10:30:00.123+0000"', '"2024-01-15T10:30:00.123Z"')
check("date", '"2024-01-15T10:30:00.120Z"', '"2024-01-15T10:30:00.120Z"')
check("date", '"2024-01-15T12:30:00+02:00"', '"2024-01-15T10:30:00Z"')
check("date", '"2024-01-15T05:00:00-05:30"', '"2024-01-15T10:30:00Z"')
check("date", '"2024-01-01T00:15:00+00:30"', '"2023-12-31T23:45:00Z"')
check("date", '"2024-12-31T23:30:00-0100"', '"2025-01-01T00:30:00Z"')
check("date", '"2024-03-01T01:00:00+0200"', '"2024-02-29T23:00:00Z"')
check("date", '"2023-03-01T01:00:00+0200"', '"2023-02-28T23:00:00Z"')
check("date", '"2100-02-28T23:00:00-0200"', '"2100-03-01T01:00:00Z"')
check("date", '"2024-01-15T23:59:60Z"', '"2024-01-15T23:59:60Z"')
check("date", '"2024-01-15"', '"2024-01-15T00:00:00Z"')
check("date", '"2000-02-29"', '"2000-02-29T00:00:00Z"')
check("date", '"2023-02-29"', REJECT "not a date: 2023-02-29")
check("date", '"2024-04-31"', REJECT "not a date: 2024-04-31")
check("date", '"2024-13-01"', REJECT "not a date: 2024-13-01")
check("date", '"2024-01-15T24:00:00Z"', REJECT "not a date: 2024-01-15T24:00:00Z")
check("date", '"2024-01-15T10:30:61Z"', REJECT "not a date: 2024-01-15T10:30:61Z")
check("date", '"2024-01-15T10:30:00"', REJECT "not a date: 2024-01-15T10:30:00")
check("date", '"2024-01-15T10:30:00.12Z"', REJECT "not a date: 2024-01-15T10:30:00.12Z")
check("date", '"2024-01-15T10:30:00+2500"', REJECT "not a date: 2024-01-15T10:30:00+2500")
check("date", '"0000-01-01T00:30:00+01:00"', REJECT "not a date: 0000-01-01T00:30:00+01:00")
check("date", '"9999-12-31T23:30:00-01:00"', REJECT "not a date: 9999-12-31T23:30:00-01:00")
check("date", '"yesterday"', REJECT "not a date: yesterday")
check("date", "20240115", REJECT "not a date: 20240115")
check("date", "true", REJECT "not a date: true")

-- []string
check("[]string", '["a","b"]', '["a","b"]')
check("[]string", '[null,"a",null,"b"]', '["a","b"]')
check("[]string", '["a","a"]', '["a","a"]', "a single source array keeps duplicates")
check("[]string", '[1.0,true,2.5]', '["1","true","2.5"]')
check("[]string", '"x"', '["x"]')
check("[]string", "5", '["5"]')
check("[]string", "[]", OMIT)
check("[]string", "[null]", OMIT)
check("[]string", "{}", OMIT, "an empty object is an empty list (as in Lua)")
check("[]string", '[["nested"]]', REJECT "expected a scalar for string")
check("[]string", '{"a":1}', REJECT "expected a scalar for string")

-- reasons quote at most 200 bytes of a string
do
  local long = string.rep("x", 300)
  local _, rej = one({ type = "number" }, '"' .. long .. '"')
  t.eq(cjson.decode(rej).reason, "not a number: " .. string.rep("x", 200), "a reason quotes 200 bytes of a string")
end

---------------------------------------------------------------------------------------
-- parity with the Lua rules: the same corpus through the C twin and through
-- opts.types = mappings/types.lua must give identical lines and rejects.
do
  local rules = require "mappings.types"
  local corpus = { '"abc"', '""', '"  spaced  "', '"caf\u{e9}"', '"a\\"b\\\\c\\n"', "5", "5.0", "-3.0", "-0",
    "12.5", "0.1", "1e3", "1E+2", "1e20", "1.5e-7", "123456789012.0", "9007199254740993",
    "9223372036854775807", "-9223372036854775808", "1e19", "0.30000000000000004", "true", "false",
    '"5"', '" 12.5 "', '"\\t42\\n"', '"-1e3"', '"abc"', '"0x10"', '"1."', '".5"', '"01"', '"+1"',
    '"1e"', '"1 2"', '"inf"', '"nan"', '"1,5"', '"42"', '" 7 "', '"5.0"', '"1e3"', '"12.5"', '"true"',
    '"FALSE"', '"yes"', '" true"', '"1"', '"2024-01-15T10:30:00.000+0000"', '"2024-01-15T12:30:00+02:00"',
    '"2024-01-01T00:15:00+00:30"', '"2024-12-31T23:30:00-0100"', '"2024-02-28T22:00:00-05:00"',
    '"2024-01-15T23:59:60Z"', '"2024-01-15"', '"2023-02-29"', '"2024-01-15T10:30:00"',
    '"2024-01-15T10:30:00.1234Z"', '"0000-01-01T00:30:00+01:00"', '"9999-12-31T23:30:00-01:00"',
    '"2024-01-15T10:30:00.001-00:00"', '"' .. string.rep("y", 250) .. '"',
    '["a","b"]', '[null,"a",null]', "[]", "[null]", '[1.0,true,2.5]', '[["x"]]', '{"a":1}',
    "null", '"2024-01-15T22:45:10.500-0300"', '"2024-05-01T00:59:00+0100"' }
  local recs = {}
  for i, v in ipairs(corpus) do recs[i] = string.format('{"Id":"r%d","V":%s}', i, v) end
  local p = mkpage(recs)
  for _, ty in ipairs({ "string", "number", "int", "bool", "date", "[]string" }) do
    local rows = { { sf = "V", to = "v", type = ty } }
    local c_out, c_rej = mapper.compile(rows, opts()):map_page(p)
    local l_out, l_rej = mapper.compile(rows, opts({ types = { [ty] = rules[ty] } })):map_page(p)
    local bad
    local cl, ll = {}, {}
    for line in c_out:gmatch("[^\n]+") do cl[#cl + 1] = line end
    for line in l_out:gmatch("[^\n]+") do ll[#ll + 1] = line end
    for i = 1, math.max(#cl, #ll) do
      if cl[i] ~= ll[i] and not bad then bad = corpus[i] .. ": C " .. tostring(cl[i]) .. " Lua " .. tostring(ll[i]) end
    end
    t.ok(bad == nil, "C " .. ty .. " rule equals mappings/types.lua on the corpus (output)", bad)
    -- Lua shows a table as "table: 0x55..."; the C twin says "table"
    l_rej = l_rej:gsub("table: 0x%x+", "table")
    local cr, lr = {}, {}
    for line in c_rej:gmatch("[^\n]+") do cr[#cr + 1] = line end
    for line in l_rej:gmatch("[^\n]+") do lr[#lr + 1] = line end
    bad = nil
    for i = 1, math.max(#cr, #lr) do
      if cr[i] ~= lr[i] and not bad then bad = "C " .. tostring(cr[i]) .. " Lua " .. tostring(lr[i]) end
    end
    t.ok(bad == nil, "C " .. ty .. " rule equals mappings/types.lua on the corpus (rejects)", bad)
  end
end

---------------------------------------------------------------------------------------
-- randomized (bounded, seeded): every output and reject line is valid JSON, and the C
-- rules agree with mappings/types.lua on random values
do
  local rules = require "mappings.types"
  local seed = 12345
  local function rnd(n)  -- deterministic LCG, 1..n
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n + 1
  end
  local pieces = { "a", "Z", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00", "\\u0001", "\u{e9}",
                   "\u{20AC}", "@", ".", "-", ":", "T", "Z", "+", "0", "1", "2", "9", "e", "true", "FALSE", "\\t" }
  local dates = { "2024-01-15T10:30:00.000+0000", "2024-02-29", "2023-02-29", "2024-12-31T23:59:59.999-0130",
                  "2024-01-15T10:30:00Z", "0001-01-01T00:00:00+00:01", " 2024-01-15", "2024-01-15T10:30:00.5Z" }
  local numbers = { "0", "-0", "5", "5.0", "-3.25", "1e3", "1E-2", "12.5", "1e20", "0.1", "123456789012345678",
                    "9223372036854775807", "9223372036854775808", "-9223372036854775809", "2.5e-300", "1e400",
                    "0.30000000000000004", "100.000", "7e0" }
  local gen
  local function gen_string()
    local k = rnd(4)
    if k == 1 then return '"' .. dates[rnd(#dates)] .. '"' end
    if k == 2 then return '"' .. (rnd(2) == 1 and " " or "") .. numbers[rnd(#numbers)] .. (rnd(2) == 1 and "\\t" or "") .. '"' end
    local parts = {}
    for i = 1, rnd(12) - 1 do parts[i] = pieces[rnd(#pieces)] end
    return '"' .. table.concat(parts) .. '"'
  end
  function gen(depth)
    local k = rnd(depth > 1 and 7 or 9)
    if k <= 3 then return gen_string() end
    if k == 4 then return numbers[rnd(#numbers)] end
    if k == 5 then return ({ "true", "false", "null" })[rnd(3)] end
    if k == 6 then return tostring(rnd(100000) - 50000) end
    if k == 7 then return gen_string() end
    if k == 8 then
      local a = {}
      for i = 1, rnd(4) - 1 do a[i] = gen(depth + 1) end
      return "[" .. table.concat(a, ",") .. "]"
    end
    local o = {}
    for i = 1, rnd(3) - 1 do o[i] = '"k' .. i .. '":' .. gen(depth + 1) end
    return "{" .. table.concat(o, ",") .. "}"
  end
  local recs = {}
  for i = 1, 400 do
    local f = { '"Id":"r' .. i .. '"' }
    for j = 1, 4 do f[#f + 1] = '"F' .. j .. '":' .. gen(1) end
    recs[i] = "{" .. table.concat(f, ",") .. "}"
  end
  local p = mkpage(recs)
  local all_valid, parity_bad = true, nil
  for _, ty in ipairs({ "string", "number", "int", "bool", "date", "[]string" }) do
    local rows = {}
    for j = 1, 4 do rows[j] = { sf = "F" .. j, to = "f" .. j, type = ty } end
    rows[5] = { sf = { "F1", "F2" }, to = "first", type = ty }
    local c_out, c_rej = mapper.compile(rows, opts()):map_page(p)
    local l_out, l_rej = mapper.compile(rows, opts({ types = { [ty] = rules[ty] } })):map_page(p)
    for line in (c_out .. c_rej):gmatch("[^\n]+") do
      if not pcall(cjson.decode, line) then all_valid = false end
    end
    l_rej = l_rej:gsub("table: 0x%x+", "table")
    if (c_out ~= l_out or c_rej ~= l_rej) and not parity_bad then
      local a, b = {}, {}
      for line in (c_out .. c_rej):gmatch("[^\n]+") do a[#a + 1] = line end
      for line in (l_out .. l_rej):gmatch("[^\n]+") do b[#b + 1] = line end
      for i = 1, math.max(#a, #b) do
        if a[i] ~= b[i] then parity_bad = ty .. ": C " .. tostring(a[i]) .. " | Lua " .. tostring(b[i]); break end
      end
    end
  end
  t.ok(all_valid, "randomized: every output and reject line is valid JSON")
  t.ok(parity_bad == nil, "randomized: the C rules equal mappings/types.lua on 400 random records", parity_bad)
end

---------------------------------------------------------------------------------------
-- row kinds

local REC = table.concat({
  '{"attributes":{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/00Q1"}',
  '"Id":"00Q1"', '"IsDeleted":false', '"FirstName":"Ann"', '"LastName":null', '"Email":"Ann.Lee@Sub.Example.COM"',
  '"LeadSource":null', '"Other__c":"Partner"', '"Tags__c":["x","y"]', '"Extra__c":["y","z",null]',
  '"RecordType":{"attributes":{"type":"RecordType"},"Name":"Partner Lead"}', '"Owner":null',
  '"Contacts":{"totalSize":2,"done":true,"records":[{"attributes":{},"Id":"003A","Account":{"Name":"Acme"}},{"attributes":{},"Id":"003B","Account":null}]}',
  '"Cases":null', '"NumberOfEmployees":12', '"LastModifiedDate":"2024-01-15T10:30:00.000+0000"}' }, ",")

local function map1(rows, o)
  local out, rej, st = run(rows, { REC }, o)
  return out:gsub("\n$", ""), rej, st
end

do
  local out = map1({ { sf = "RecordType.Name", to = "rt", type = "string" },
                     { sf = "Owner.Name", to = "owner", type = "string" },
                     { sf = "Missing.Name", to = "missing", type = "string" } })
  t.eq(out, '{"_id":"00Q1","rt":"Partner Lead"}', "parent path: object -> field; null or missing parent -> omitted")
end
do
  local out = map1({ { sf = "Contacts.Id", to = "cids", type = "[]string" },
                     { sf = "Cases.Id", to = "case_ids", type = "[]string" },
                     { sf = "Contacts.Account.Name", to = "accounts", type = "[]string" } })
  t.eq(out, '{"_id":"00Q1","cids":["003A","003B"],"accounts":["Acme"]}',
       "child subquery: values of each child record; null subquery omitted; parent paths inside children")
end
do
  local out, rej = map1({ { sf = "Contacts.Id", to = "cid", type = "string" } })
  t.eq(out, '{"_id":"00Q1"}', "a child subquery mapped to a scalar type is rejected")
  t.eq(cjson.decode(rej).reason, "expected a scalar for string", "... with the string rule's reason")
  t.eq(cjson.encode(cjson.decode(rej).value), '["003A","003B"]', "... and the values as an array")
end
do
  local out = map1({ { sf = { "LeadSource", "Other__c", "FirstName" }, to = "src", type = "string" } })
  t.eq(out, '{"_id":"00Q1","src":"Partner"}', "several sources: the first non-null value (combine first)")
  local out2 = map1({ { sf = { "LeadSource", "Nope" }, to = "src", type = "string" } })
  t.eq(out2, '{"_id":"00Q1"}', "several sources all null or missing: omitted")
  local out3 = map1({ { sf = { "Tags__c", "Extra__c", "FirstName", "Other__c", "Contacts.Id" }, to = "all",
                        type = "[]string", combine = "all" } })
  t.eq(out3, '{"_id":"00Q1","all":["x","y","z","Ann","Partner","003A","003B"]}',
       "combine all: every value of every source, de-duplicated, order kept")
end
do
  local out, rej = map1({ { sf = "Email", to = "domain", type = "string", derive = "emaildomain" },
                          { sf = "Email", to = "domains", type = "[]string", derive = "emaildomain" } })
  t.eq(out, '{"_id":"00Q1","domain":"sub.example.com","domains":["sub.example.com"]}', "derive emaildomain: lower-cased domain")
  t.eq(rej, "", "no rejects for a valid email")
  check("string", '"a@b@Example.org"', '"example.org"', "emaildomain takes the part after the last @",
        { derive = "emaildomain" })
  check("string", '"no-at-sign"', REJECT "not an email address: no-at-sign", "emaildomain without @",
        { derive = "emaildomain" })
  check("string", '"x@"', REJECT "not an email address: x@", "emaildomain with an empty domain",
        { derive = "emaildomain" })
  check("string", '5', REJECT "not an email address: 5", "emaildomain of a number", { derive = "emaildomain" })
end
do
  local out = map1({ { const = "now", to = "salesforce_last_user_imported", type = "date" },
                     { const = "now", to = "s", type = "string" } })
  t.eq(out, '{"_id":"00Q1","salesforce_last_user_imported":"2026-11-23T12:00:00Z","s":"2026-11-23T12:00:00Z"}',
       "const now: opts.now, coerced by the row type")
end

-- exact output line for a realistic row set
do
  local rows = {
    { sf = "Id", to = "salesforce_lead_ids", type = "[]string", identity = true },
    { sf = "Email", to = "email", type = "string", identity = true },
    { sf = "Email", to = "emaildomains", type = "[]string", derive = "emaildomain" },
    { const = "now", to = "salesforce_last_user_imported", type = "date" },
    { sf = "FirstName", to = "salesforce_lead_first_name", type = "string" },
    { sf = "LastName", to = "salesforce_lead_last_name", type = "string" },
    { sf = "NumberOfEmployees", to = "salesforce_lead_number_of_employees", type = "int" },
    { sf = "RecordType.Name", to = "salesforce_lead_record_type", type = "string" },
    { sf = "LastModifiedDate", to = "salesforce_lead_last_modified_date", type = "date" },
    { sf = "IsDeleted", to = "deleted", type = "bool" },
  }
  local out, rej, st = map1(rows)
  t.eq(out, '{"_id":"00Q1","salesforce_lead_ids":["00Q1"],"email":"Ann.Lee@Sub.Example.COM","emaildomains":["sub.example.com"],'
    .. '"salesforce_last_user_imported":"2026-11-23T12:00:00Z","salesforce_lead_first_name":"Ann",'
    .. '"salesforce_lead_number_of_employees":12,"salesforce_lead_record_type":"Partner Lead",'
    .. '"salesforce_lead_last_modified_date":"2024-01-15T10:30:00Z","deleted":false}',
    "a record maps to one exact NDJSON line, fields in row order, nulls omitted")
  t.eq(rej, "", "no rejects")
  t.same(st, { records = 1, deleted = 0, rejected = 0, last_ts = "2024-01-15T10:30:00.000+0000", last_id = "00Q1" },
         "stats of one record")
end

-- rows sharing a `to`
do
  local out = map1({ { sf = "LastName", to = "name", type = "string" },
                     { sf = "FirstName", to = "name", type = "string" },
                     { sf = "Other__c", to = "name", type = "string" } })
  t.eq(out, '{"_id":"00Q1","name":"Ann"}', "same `to`: the first row with a value wins")
  local out2 = map1({ { sf = "Tags__c", to = "tags", type = "[]string" },
                      { sf = "FirstName", to = "x", type = "string" },
                      { sf = "Extra__c", to = "tags", type = "[]string" },
                      { sf = "Other__c", to = "tags", type = "string" } })
  t.eq(out2, '{"_id":"00Q1","tags":["x","y","z"],"x":"Ann"}',
       "same `to` with []string rows: values merge de-duplicated at the first row's position")
end

-- de-duplication of long lists (hashed past 16 items) and roll-back on a reject
do
  local kids = {}
  for i = 1, 60 do kids[i] = string.format('{"Id":"c%02d"}', i % 25) end
  local rec = '{"Id":"1","Contacts":{"totalSize":60,"done":true,"records":[' .. table.concat(kids, ",") .. ']},'
    .. '"More":["c03","new",null,"c24"],"Bad":["x1","x2","x3","x4","x5","x6","x7","x8","x9","x10","x11","x12",'
    .. '"x13","x14","x15","x16","x17","x18",["nested"]]}'
  local want = {}
  for i = 1, 25 do want[i] = string.format('"c%02d"', i % 25) end
  local out, rej = run({ { sf = { "Contacts.Id", "More" }, to = "ids", type = "[]string", combine = "all" },
                         { sf = { "More", "Bad" }, to = "bad", type = "[]string", combine = "all" },
                         { sf = "More", to = "ids2", type = "[]string" },
                         { sf = "Bad", to = "ids2", type = "[]string" },
                         { sf = "Contacts.Id", to = "ids2", type = "[]string" } }, { rec })
  local rest = {}
  for _, id in ipairs(want) do if id ~= '"c03"' and id ~= '"c24"' then rest[#rest + 1] = id end end
  t.eq(out, '{"_id":"1","ids":[' .. table.concat(want, ",") .. ',"new"],"ids2":["c03","new","c24",' .. table.concat(rest, ",")
    .. ']}\n',
    "long lists de-duplicate in order; a rejected row adds nothing to a merged field")
  t.eq(select(2, rej:gsub("\n", "")), 2, "each rejected row makes one reject line")
end

-- fields in a different order in each record (the per-row position cache must not lie)
do
  local rows = { { sf = "A", to = "a", type = "string" }, { sf = "B", to = "b", type = "int" },
                 { sf = "C", to = "c", type = "string" } }
  local out = run(rows, { '{"Id":"1","A":"a1","B":1,"C":"c1"}', '{"Id":"2","C":"c2","B":2,"A":"a2"}',
                          '{"Id":"3","B":3}', '{"Id":"4","A":"a4","X":0,"C":"c4","B":4}', '{"Id":"5","\\u0041":"esc"}' })
  t.eq(out, '{"_id":"1","a":"a1","b":1,"c":"c1"}\n{"_id":"2","a":"a2","b":2,"c":"c2"}\n{"_id":"3","b":3}\n{"_id":"4","a":"a4","b":4,"c":"c4"}\n{"_id":"5","a":"esc"}\n',
       "field lookup is right whatever the field order, and for escaped keys")
end

---------------------------------------------------------------------------------------
-- rejects

do
  local long = string.rep("\u{e9}", 300)
  local rows = { { sf = "Id", to = "id", type = "string" },
                 { sf = "V", to = "n", type = "int" },
                 { sf = "W", to = "d", type = "date" },
                 { sf = { "Nope", "X" }, to = "x", type = "number" },
                 { sf = { "W", "X" }, to = "all", type = "[]string", combine = "all" },
                 { sf = "Y", to = "y", type = "string" } }
  local out, rej, st = run(rows, { '{"Id":"00Q9","V":12.5,"W":"' .. long .. '","X":"1,5","Y":{"a":[1]}}' })
  t.eq(out, '{"_id":"00Q9","id":"00Q9","all":["' .. long .. '","1,5"]}\n', "a rejected field is left out; the record is kept")
  local lines = {}
  for line in rej:gmatch("[^\n]+") do lines[#lines + 1] = line end
  t.eq(#lines, 4, "one reject line per rejected field")
  t.eq(lines[1], '{"stream":"salesforce_leads","object":"Lead","id":"00Q9","field":"n","source":"V","value":12.5,'
    .. '"reason":"not an integer: 12.5"}', "reject line: exact text")
  local r2 = cjson.decode(lines[2])
  t.eq(r2.value, string.rep("\u{e9}", 200), "reject value: a string cut to 200 characters")
  t.eq(r2.reason, "not a date: " .. string.rep("\u{e9}", 100), "reject reason: 200 bytes of the string")
  t.eq(lines[3], '{"stream":"salesforce_leads","object":"Lead","id":"00Q9","field":"x","source":"X","value":"1,5",'
    .. '"reason":"not a number: 1,5"}', "reject source: the path the value came from")
  t.eq(lines[4], '{"stream":"salesforce_leads","object":"Lead","id":"00Q9","field":"y","source":"Y","value":{"a":[1]},'
    .. '"reason":"expected a scalar for string"}', "reject value: objects as JSON")
  t.eq(st.rejected, 4, "stats.rejected counts field rejects")
  t.eq(st.records, 1, "a record with rejects still counts as a record")
end
do
  local _, rej = run({ { sf = { "A", "B" }, to = "all", type = "[]string", combine = "all" } },
                     { '{"Id":"1","A":["ok"],"B":[["nested"]]}' })
  t.eq(rej, '{"stream":"salesforce_leads","object":"Lead","id":"1","field":"all","source":"A,B",'
    .. '"value":[["ok"],[["nested"]]],"reason":"expected a scalar for string"}\n',
    "combine all reject: every source named, every value shown")
end
do
  local out, rej = run({ { sf = "Id", to = "id", type = "string" } }, { '{"Id":"1"}', '[1]', '"x"' })
  t.eq(out, '{"_id":"1","id":"1"}\n', "a record that is not an object yields no line")
  local out2 = run({ { sf = "Email", to = "email", type = "string" } }, { '{"Email":"a@b.c"}', '{"Id":7,"Email":"d@e.f"}' })
  t.eq(out2, '{"_id":null,"email":"a@b.c"}\n{"_id":null,"email":"d@e.f"}\n', "every line leads with _id; null when the record has no string Id")
  t.eq(rej, '{"stream":"salesforce_leads","object":"Lead","id":null,"field":null,"source":null,"value":[1],'
    .. '"reason":"record is not an object"}\n{"stream":"salesforce_leads","object":"Lead","id":null,"field":null,'
    .. '"source":null,"value":"x","reason":"record is not an object"}\n', "... but a reject line")
end

---------------------------------------------------------------------------------------
-- deletions (queryAll)

do
  local rows = {
    { sf = "Id", to = "salesforce_lead_ids", type = "[]string", identity = true },
    { sf = "Id", to = "lead_id", type = "string", identity = true },
    { sf = "Email", to = "email", type = "string", identity = true },
    { sf = "FirstName", to = "first", type = "string" },
    { sf = "Id", to = "not_identity", type = "string" },
  }
  local recs = {
    '{"Id":"00Q1","IsDeleted":true,"Email":"a@b.c","FirstName":"A","LastModifiedDate":"2024-01-15T22:45:10.500-0300"}',
    '{"Id":"00Q2","IsDeleted":false,"Email":"d@e.f","FirstName":"B","LastModifiedDate":"2024-01-16T00:00:00.000+0000"}',
    '{"Id":"00Q3","IsDeleted":true,"LastModifiedDate":null}',
  }
  local out, rej, st = run(rows, recs)
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  t.eq(lines[1], '{"_deleted":true,"_object":"Lead","_id":"00Q1","_deleted_at":"2024-01-16T01:45:10.500Z",'
    .. '"salesforce_lead_ids":["00Q1"],"lead_id":"00Q1"}', "a deleted record yields a deletion event with identity Id rows")
  t.eq(lines[2], '{"_id":"00Q2","salesforce_lead_ids":["00Q2"],"lead_id":"00Q2","email":"d@e.f","first":"B","not_identity":"00Q2"}',
       "IsDeleted false maps normally")
  t.eq(lines[3], '{"_deleted":true,"_object":"Lead","_id":"00Q3","_deleted_at":null,"salesforce_lead_ids":["00Q3"],'
    .. '"lead_id":"00Q3"}', "a deletion without a timestamp has _deleted_at null")
  t.eq(rej, "", "deletions make no rejects")
  t.same(st, { records = 1, deleted = 2, rejected = 0, last_ts = "2024-01-16T00:00:00.000+0000", last_id = "00Q2" },
         "stats: deleted counted apart; the cursor is (raw timestamp, Id) of the last record with a timestamp")
end
do
  local _, _, st = run({ { sf = "Id", to = "id", type = "string" } }, {},
                       { timestamp_field = "SystemModstamp" })
  t.same(st, { records = 0, deleted = 0, rejected = 0 }, "stats of an empty page: no cursor")
  local _, _, st2 = run({ { sf = "Id", to = "id", type = "string" } },
                        { '{"Id":"1","SystemModstamp":"2024-02-01T00:00:00.000+0000","LastModifiedDate":"x"}' },
                        { timestamp_field = "SystemModstamp" })
  t.eq(st2.last_ts, "2024-02-01T00:00:00.000+0000", "opts.timestamp_field picks the cursor field")
end

---------------------------------------------------------------------------------------
-- transforms and tenant types

do
  local seen_rec
  local rows = {
    { sf = "FirstName", to = "upper", type = "string", transform = function(v) return v:upper() end },
    { sf = "FirstName", to = "dropped", type = "string", transform = function() return nil end },
    { sf = "FirstName", to = "rejected", type = "string", transform = function() return nil, "no thanks" end },
    { sf = "FirstName", to = "raised", type = "string", transform = function() error("boom", 0) end },
    { sf = "FirstName", to = "raised_table", type = "string", transform = function() error({}) end },
    { sf = "FirstName", to = "full", type = "string",
      transform = function(v, rec) seen_rec = rec; return v .. " " .. rec.Email .. " " .. rec.RecordType.Name end },
    { sf = "FirstName", to = "count", type = "int", transform = function(...) return select("#", ...) end },
    { sf = "NumberOfEmployees", to = "n", type = "int", transform = function(v) return v / 5 end },
    { sf = "NumberOfEmployees", to = "n2", type = "int", transform = function(v) return v * 2 end },
    { sf = "Tags__c", to = "tags", type = "[]string", transform = function(v) v[#v + 1] = "w"; return v end },
    { sf = "Contacts.Id", to = "kids", type = "[]string", transform = function(v) return { #v, v[1] } end },
    { sf = "LastName", to = "never", type = "string", transform = function() return "called" end },
    { sf = "FirstName", to = "tbl", type = "string", transform = function() return { a = 1 } end },
    { sf = "FirstName", to = "null", type = "string", transform = function() return cjson.null end },
    { sf = "FirstName", to = "fn", type = "string", transform = function() return print end },
    { sf = "FirstName", to = "inf", type = "number", transform = function() return math.huge end },
  }
  local out, rej, st = map1(rows)
  t.eq(out, '{"_id":"00Q1","upper":"ANN","full":"Ann Ann.Lee@Sub.Example.COM Partner Lead","count":2,"n2":24,'
    .. '"tags":["x","y","w"],"kids":["2","003A"]}',
    "transform results are coerced; nil drops the field; record passed to functions taking it")
  t.eq(type(seen_rec), "table", "the record argument is the decoded record")
  local reasons = {}
  for line in rej:gmatch("[^\n]+") do
    local r = cjson.decode(line)
    reasons[#reasons + 1] = r.field .. "=" .. r.reason
    if r.field == "rejected" then t.eq(r.value, "Ann", "a transform reject shows the original value") end
  end
  t.eq(table.concat(reasons, "|"), "rejected=no thanks|raised=boom|raised_table=error object is a table value"
    .. "|n=not an integer: 2.4|tbl=expected a scalar for string|fn=cannot encode a function|inf=not a number: inf",
    "transform: nil+reason, errors and bad results become rejects with their reason")
  t.eq(st.rejected, 7, "transform rejects are counted")
end
do
  local calls = 0
  local function wrap(fn, ...)
    calls = calls + 1
    if calls == 2 then return false, "cpu limit exceeded" end
    return pcall(fn, ...)
  end
  local out, rej = map1({ { sf = "FirstName", to = "a", type = "string", transform = function(v) return v .. "!" end },
                          { sf = "FirstName", to = "b", type = "string", transform = function(v) return v .. "?" end },
                          { sf = "LastName", to = "c", type = "string", transform = function(v) return v end },
                          { sf = "FirstName", to = "d", type = "string" } },
                        { call = wrap })
  t.eq(out, '{"_id":"00Q1","a":"Ann!","d":"Ann"}', "opts.call wraps every transform call")
  t.eq(calls, 2, "opts.call is not called for null values or rows without transform")
  t.eq(cjson.decode(rej).reason, "cpu limit exceeded", "opts.call returning false rejects with its message")
end
do
  local types = {
    string = function(v) return "<" .. tostring(v) .. ">" end,
    int = function(v) if v > 10 then return nil, "too big: " .. v end return v end,
    date = function() error("bad date rule", 0) end,
    ["[]string"] = function(v) return { "L", type(v) == "table" and #v or v } end,
  }
  local out, rej = map1({ { sf = "FirstName", to = "s", type = "string" },
                          { sf = "NumberOfEmployees", to = "n", type = "int" },
                          { sf = "LastModifiedDate", to = "d", type = "date" },
                          { sf = "Tags__c", to = "l", type = "[]string" },
                          { sf = "LastName", to = "none", type = "string" },
                          { sf = "FirstName", to = "t", type = "string", transform = function(v) return v .. "+" end },
                          { sf = "IsDeleted", to = "b", type = "bool" } },
                        { types = types })
  t.eq(out, '{"_id":"00Q1","s":"<Ann>","l":["L",2],"t":"<Ann+>","b":false}',
       "opts.types replaces the C rule of that type (after transforms); other types stay in C")
  local reasons = {}
  for line in rej:gmatch("[^\n]+") do reasons[#reasons + 1] = cjson.decode(line).reason end
  t.eq(table.concat(reasons, "|"), "too big: 12|bad date rule", "a types rule's reason or error rejects the field")
end

-- re-entrancy and lifetime inside a transform
do
  local m, p
  local rows = {
    { sf = "FirstName", to = "a", type = "string", transform = function() return (m:map_page(p)) end },
    { sf = "FirstName", to = "b", type = "string", transform = function() p:close() end },
    { sf = "FirstName", to = "c", type = "string", transform = function() m:close() end },
    { sf = "FirstName", to = "d", type = "string" },
  }
  m = mapper.compile(rows, opts())
  p = mkpage({ REC })
  local out, rej = m:map_page(p)
  t.eq(out, '{"_id":"00Q1","d":"Ann"}\n', "a transform cannot re-enter map_page, close the page or close the mapper")
  local reasons = {}
  for line in rej:gmatch("[^\n]+") do reasons[#reasons + 1] = cjson.decode(line).reason end
  t.ok(reasons[1]:find("called from inside map_page", 1, true) and reasons[2]:find("being mapped", 1, true)
       and reasons[3]:find("mapping a page", 1, true), "... each attempt is a reject with a clear reason",
       table.concat(reasons, " | "))
  t.eq(#p, 1, "the page is still open after mapping")
  local out2 = m:map_page(p)
  t.eq(out2, out, "the mapper maps again (buffers reused)")
  m:close()
  m:close()
  t.raises(function() m:map_page(p) end, "the mapper is closed", "map_page after close raises")
  p:close()
  local m2 = mapper.compile({ { sf = "Id", to = "id", type = "string" } }, opts())
  t.raises(function() m2:map_page(p) end, "the page is closed", "mapping a closed page raises")
  t.raises(function() m2:map_page({}) end, "sf.page expected", "mapping a non-page raises")
  t.eq(tostring(m2), "sf.mapper (1 rows)", "tostring of a mapper")
end

---------------------------------------------------------------------------------------
-- compile: misuse raises, naming the row and the key

local good = { sf = "Id", to = "id", type = "string" }
local function bad_row(row, needle, name)
  t.raises(function() mapper.compile({ good, row }, opts()) end, needle, name)
end
bad_row({ sf = "A", type = "string" }, "rows[2].to must be a string", "missing to")
bad_row({ sf = "A", to = "a" }, "rows[2].type must be one of", "missing type")
bad_row({ sf = "A", to = "a", type = "text" }, "rows[2].type must be one of", "unknown type")
bad_row({ const = "today", to = "a", type = "string" }, "rows[2].const must be \"now\"", "unknown const")
bad_row({ sf = 5, to = "a", type = "string" }, "rows[2].sf must be a field path", "numeric sf")
bad_row({ sf = {}, to = "a", type = "string" }, "rows[2].sf must be a field path", "empty sf list")
bad_row({ sf = { "A", 5 }, to = "a", type = "string" }, "rows[2].sf must be a field path", "bad entry in sf list")
bad_row({ sf = "A..B", to = "a", type = "string" }, "rows[2].sf: bad field path", "empty path segment")
bad_row({ sf = "", to = "a", type = "string" }, "rows[2].sf: bad field path", "empty path")
bad_row({ sf = "A", to = "a", type = "string", combine = "any" }, "rows[2].combine must be", "unknown combine")
bad_row({ sf = "A", to = "a", type = "string", derive = "domain" }, "rows[2].derive must be \"emaildomain\"",
        "unknown derive")
bad_row({ sf = "A", to = "a", type = "string", transform = "upper" }, "rows[2].transform must be a function",
        "non-function transform")
bad_row({ sf = "A", to = "a", type = "string", identity = "yes" }, "rows[2].identity must be a boolean",
        "non-boolean identity")
bad_row("row", "rows[2] must be a table", "a row that is not a table")
t.raises(function() mapper.compile({}, opts()) end, "rows must be a non-empty array", "no rows")
t.raises(function() mapper.compile(nil, opts()) end, "table expected", "rows not a table")
t.raises(function() mapper.compile({ good }, { stream = "s" }) end, "opts.object must be a non-empty string", "no object")
t.raises(function() mapper.compile({ good }, { object = "Lead" }) end, "opts.stream must be a non-empty string", "no stream")
t.raises(function() mapper.compile({ good }, opts({ types = { text = print } })) end, "opts.types: unknown type text",
         "unknown type override")
t.raises(function() mapper.compile({ good }, opts({ types = { string = "x" } })) end,
         "opts.types[\"string\"] must be a function", "non-function type override")
t.raises(function() mapper.compile({ good }, opts({ call = 1 })) end, "opts.call must be a function", "bad opts.call")
t.raises(function() mapper.compile({ { const = "now", to = "a", type = "date" } }, { object = "L", stream = "s" }) end,
         "needs opts.now", "const now without opts.now")
t.eq(table.concat(mapper.TYPES, ","), "string,number,int,bool,date,[]string",
     "mapper.TYPES lists the row types in the order messages list them")
do
  local all = true
  for _, ty in ipairs(mapper.TYPES) do
    all = all and pcall(mapper.compile, { { sf = "Id", to = "id", type = ty } }, opts())
  end
  t.ok(all, "every name in mapper.TYPES compiles as a row type")
end
t.ok(pcall(mapper.compile, { { from = "Id", to = "id", type = "string", description = "ignored" } }, opts()),
     "`from` is an alias of sf; unknown keys are ignored")
do
  local rows = setmetatable({}, { __index = function() error("metamethod called") end, __len = function() return 1 end })
  t.raises(function() mapper.compile(rows, opts()) end, "rows must be a non-empty array",
           "rows are read raw, without metamethods")
end

t.done()
