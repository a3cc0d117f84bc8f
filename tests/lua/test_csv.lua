-- sf.csv: a Bulk API 2.0 results page (CSV) read piece by piece as it arrives,
-- its records handed out as sf.page pages (tokens over the CSV text, no JSON in
-- between) and mapped by sf.mapper exactly like the REST page of the same records.
local t = require "tests.tap"
local csv = require "sf.csv"
local page = require "sf.page"
local mapper = require "sf.mapper"
local mapping = require "sf.mapping"
local bulk = require "sf.import.bulk"
local cjson = require "cjson"

local NULL = cjson.null

-- Feeds text to a reader in pieces of `step` bytes (nil: whole); returns
-- { records = decoded records } and the count, or nil, message, code.
local function conv(text, columns, object, step)
  local rd = csv.reader(columns or {}, object or "Lead")
  local doc = { records = {} }
  local function take(p, err, code)
    if not p then return nil, err, code end
    assert(p.done and p.total_size == nil and p.next_url == nil, "a reader's page is done, without totalSize")
    for _, r in p:records() do doc.records[#doc.records + 1] = r end
    p:close()
    return true
  end
  step = step or #text
  for i = 1, #text, math.max(step, 1) do
    local ok, err, code = take(rd:feed(text:sub(i, i + step - 1)))
    if not ok then return nil, err, code end
  end
  local ok, err, code = take(rd:finish())
  if not ok then return nil, err, code end
  assert(rd.records == #doc.records, "rd.records counts the records handed out")
  return doc, rd.records
end

---------------------------------------------------------------------------------------
-- shape, quoting, line breaks, unicode, nulls

do
  local doc, n = conv('"Id","Name"\n"00Q1","Ann"\n"00Q2",\n')
  t.eq(n, 2, "the reader counts the records")
  t.same(doc.records[1], { attributes = { type = "Lead" }, Id = "00Q1", Name = "Ann" }, "a record has attributes.type and its cells")
  t.eq(doc.records[2].Name, NULL, "an empty cell is null")
end

do
  local rd = csv.reader({}, "Lead")
  local p = assert(rd:feed('"Id","Na'))
  t.ok(#p == 0 and not rd.header, "a piece without a whole header row gives an empty page")
  p = assert(rd:feed('me"\n"1","a'))
  t.ok(#p == 0 and rd.header, "the header row is read once its line break is in")
  p = assert(rd:feed('b"\n"2'))
  t.ok(#p == 1 and p:record(1).Name == "ab", "a record is handed out once its line break is in")
  local p2, err, code = rd:finish()
  t.ok(p2 == nil and code == "CSV" and err == "malformed CSV at line 3: unterminated quoted value",
    "... and an unfinished quote is an error only at the end", tostring(err))
end

do
  local rd = csv.reader({}, "Lead")
  assert(rd:feed('"Id"\n"1"'))
  local p = assert(rd:finish())
  t.ok(#p == 1 and p:record(1).Id == "1" and rd.records == 1, "finish hands out the last record without a line break")
  t.raises(function() rd:feed("x") end, "the reader is finished", "feeding after finish raises")
  rd:close()
  t.raises(function() rd:feed("x") end, "the reader is closed", "feeding a closed reader raises")
end

do
  local doc = conv('"A","B","C"\n"",,"x"\n')
  t.ok(doc.records[1].A == NULL and doc.records[1].B == NULL, "an empty cell is null, quoted or not")
end

do
  local text = '"Id","Text"\n'
    .. '"1","He said ""hi"", then left"\n'
    .. '"2","line one\nline two\r\nline three"\n'
    .. '"3","a,b,c"\n'
    .. '"4","tab\tand \\ backslash and / slash"\n'
    .. '"5","Zoë 山田 🚀 Ünïcode Ελληνικά عربى"\n'
    .. '"6","\1\31 control"\n'
  local doc, n = conv(text)
  t.eq(n, 6, "six records with quotes, commas and line breaks inside values")
  t.eq(doc.records[1].Text, 'He said "hi", then left', "doubled quotes become one quote")
  t.eq(doc.records[2].Text, "line one\nline two\r\nline three", "line breaks inside quotes are kept (LF and CRLF)")
  t.eq(doc.records[3].Text, "a,b,c", "commas inside quotes are text")
  t.eq(doc.records[4].Text, "tab\tand \\ backslash and / slash", "tabs and backslashes survive the JSON escaping")
  t.eq(doc.records[5].Text, "Zoë 山田 🚀 Ünïcode Ελληνικά عربى", "UTF-8 text is kept byte for byte")
  t.eq(doc.records[6].Text, "\1\31 control", "control characters survive the JSON escaping")
end

do
  local doc, n = conv('"Id"\r\n"1"\r\n"2"')
  t.ok(n == 2 and doc.records[2].Id == "2", "CRLF line endings and a missing final line ending")
  doc, n = conv("\239\187\191" .. '"Id"\n"1"\n')
  t.ok(n == 1 and doc.records[1].Id == "1", "a UTF-8 byte order mark is skipped")
  doc, n = conv("")
  t.ok(n == 0 and #doc.records == 0, "an empty text is a page without records")
  doc, n = conv('"Id","Name"\n')
  t.ok(n == 0 and #doc.records == 0, "a header alone is a page without records")
end

---------------------------------------------------------------------------------------
-- types

do
  local cols = { Flag = "boolean", Off = "boolean", Odd = "boolean", Emp = "int", Big = "long", Rev = "currency",
                 Pct = "percent", Dbl = "double", Bad = "double", Exp = "double", D = "date", T = "datetime",
                 T2 = "datetime", S = "string", Ref = "reference", P = "picklist" }
  local text = '"Flag","Off","Odd","Emp","Big","Rev","Pct","Dbl","Bad","Exp","D","T","T2","S","Ref","P"\n'
    .. '"true","FALSE","yes","42","9007199254740993","1250000.5","20","-0.25","1,5","1.5E7","2024-01-15",'
    .. '"2024-01-15T10:30:00.000Z","2024-01-15T10:30:00Z","42","001000000000001AAA","Web"\n'
  local doc = conv(text, cols)
  local r = doc.records[1]
  t.eq(r.Flag, true, "boolean true")
  t.eq(r.Off, false, "boolean FALSE (any case)")
  t.eq(r.Odd, "yes", "a boolean column's other text stays a string")
  t.eq(math.type(r.Emp), "integer", "int becomes an integer")
  t.eq(r.Emp, 42, "int value")
  t.eq(r.Big, 9007199254740993, "long becomes an exact integer")
  t.eq(r.Rev, 1250000.5, "currency becomes a number")
  t.eq(r.Pct, 20, "percent becomes a number")
  t.eq(r.Dbl, -0.25, "double becomes a number")
  t.eq(r.Bad, "1,5", "a malformed number stays a string (the mapper rejects it)")
  t.eq(r.Exp, 1.5e7, "exponent numbers are numbers")
  t.eq(r.D, "2024-01-15", "a date stays as given")
  t.eq(r.T, "2024-01-15T10:30:00.000+0000", "Bulk's datetime becomes the REST form")
  t.eq(r.T2, "2024-01-15T10:30:00.000+0000", "a datetime without a fraction gets .000")
  t.eq(r.S, "42", "a string column keeps digits as a string")
  t.eq(r.Ref, "001000000000001AAA", "reference is a string")
  t.eq(r.P, "Web", "picklist is a string")
end

do
  local doc = conv('"FLAG","lastmodifieddate","Other"\n"true","2024-01-15T10:30:00.000Z","1"\n',
    { Flag = "boolean", LastModifiedDate = "datetime" })
  t.eq(doc.records[1].FLAG, true, "a header matches its column ignoring ASCII case")
  t.eq(doc.records[1].lastmodifieddate, "2024-01-15T10:30:00.000+0000", "case-insensitive match for datetimes")
  t.eq(doc.records[1].Other, "1", "a header missing from columns is a string")
  doc = conv('"Flag"\n"true"\n', { Flag = "boolean", FLAG = "string" })
  t.eq(doc.records[1].Flag, true, "the exact name wins over a case-insensitive one")
end

---------------------------------------------------------------------------------------
-- nested parents

do
  local text = '"Id","RecordType.Name","Email","RecordType.DeveloperName","Account.Owner.Name","Account.Name"\n'
    .. '"1","Partner","a@x","Partner_Lead","Bo","Acme"\n'
    .. '"2",,"b@x",,,\n'
    .. '"3",,,"Dev",,"Acme"\n'
  local doc = conv(text)
  local r1, r2, r3 = doc.records[1], doc.records[2], doc.records[3]
  t.same(r1.RecordType, { Name = "Partner", DeveloperName = "Partner_Lead" }, "dotted headers become a nested object")
  t.same(r1.Account, { Owner = { Name = "Bo" }, Name = "Acme" }, "two levels of parents nest")
  t.eq(r2.RecordType, NULL, "a parent whose cells are all empty is null")
  t.eq(r2.Account, NULL, "a grandparent whose cells are all empty is null")
  t.ok(r3.RecordType.Name == NULL and r3.RecordType.DeveloperName == "Dev", "a parent with some values keeps nulls inside")
  t.eq(r3.Account.Owner, NULL, "a null grandparent inside a present parent")
end

---------------------------------------------------------------------------------------
-- object, malformed CSV, misuse

do
  local doc = conv('"Id"\n"1"\n', {}, "Contact")
  t.eq(doc.records[1].attributes.type, "Contact", "object sets attributes.type")
  doc = conv('"Id"\n"1"\n', {}, 'Odd"Name')
  t.eq(doc.records[1].attributes.type, 'Odd"Name', "the object name is kept as it is")
end

local function fails(text, want, name)
  for _, step in ipairs { #text, 1, 3 } do
    local doc, msg, code = conv(text, {}, "Lead", step)
    if not (doc == nil and code == "CSV" and msg == want) then
      t.ok(false, name, "pieces of " .. step .. ": got " .. tostring(doc) .. ", " .. tostring(msg) .. ", " .. tostring(code))
      return
    end
  end
  t.ok(true, name .. " (whole and in pieces)")
end
fails('"Id","Name"\n"1","unterminated\n', "malformed CSV at line 2: unterminated quoted value", "an unterminated quote fails with its line")
fails('"Id","Name"\n"1","two\nlines"\n"2","x\n', "malformed CSV at line 4: unterminated quoted value", "line numbers count line breaks inside values")
fails('"Id","Name"\n"1"\n', "malformed CSV at line 2: expected 2 values, found 1", "a short row fails")
fails('"Id","Name"\n"1","a","b"\n', "malformed CSV at line 2: expected 2 values, found 3", "a long row fails")
fails('"Id"\n"a"b\n', "malformed CSV at line 2: text after a closing quote", "text after a closing quote fails")
fails('"Id"\nab"c\n', "malformed CSV at line 2: quote inside an unquoted value", "a quote inside an unquoted value fails")
fails('"Id"\n"\255"\n', "malformed CSV at line 2: invalid UTF-8", "invalid UTF-8 fails")
fails('"Id","Id"\n', 'malformed CSV at line 1: duplicate column "Id"', "a duplicate column fails")
fails('"A","A.B"\n', 'malformed CSV at line 1: field and relationship share the column "A"', "a column that is also a relationship fails")

do
  local rd = csv.reader({}, "Lead")
  local p, msg, code = rd:feed('"Id","Name"\n"1"\n')
  t.ok(p == nil and code == "CSV", "a malformed record fails the feed", tostring(msg))
  local p2, msg2, code2 = rd:feed('"2","x"\n')
  t.ok(p2 == nil and msg2 == msg and code2 == code, "... and every later call repeats the failure")
end

t.raises(function() csv.reader({}, "Lead"):feed(nil) end, "string expected", "text must be a string")
t.raises(function() csv.reader(nil, "Lead") end, "table expected", "columns must be a table")
t.raises(function() csv.reader({}, nil) end, "string expected", "object must be a string")
t.raises(function() csv.reader({}, "") end, "object must not be empty", "object must not be empty")
t.raises(function() csv.reader({}, "Le\255ad") end, "object must be UTF-8", "object must be UTF-8")
t.raises(function() csv.reader({ Flag = true }, "Lead"):feed('"Flag"\n"true"\n') end, 'columns["Flag"] must be a describe type string',
  "a column type must be a string")

---------------------------------------------------------------------------------------
-- the pages are sf.page pages

do
  local rd = csv.reader({ N = "int" }, "Lead")
  local p = assert(rd:feed('"Id","RecordType.Name","N"\n"1","RT","5"\n"2",,\n'))
  t.eq(#p, 2, "the page holds every record")
  t.eq(p.done, true, "the page is done")
  t.eq(p.next_url, nil, "the page has no next page")
  t.eq(p:record(1).RecordType.Name, "RT", "nested parents decode")
  t.eq(math.type(p:record(1).N), "integer", "ints decode as integers")
  local n = 0
  for _, r in p:records() do n = n + 1; assert(r.Id == tostring(n)) end
  t.eq(n, 2, "records() walks every record")
end

---------------------------------------------------------------------------------------
-- Mapping parity: the same records as a REST page (what /query returns) and as
-- a Bulk CSV page (what /jobs/query/<id>/results returns) map to identical
-- lines, rejects and stats, through the default Lead mapping and rows that
-- exercise every coercion type.

local FIELDS = {  -- name, describe type (Lead, as Salesforce describes it)
  { "Id", "id" }, { "IsDeleted", "boolean" }, { "LastModifiedDate", "datetime" }, { "Email", "email" },
  { "Company", "string" }, { "ConvertedDate", "date" }, { "CreatedDate", "datetime" },
  { "EmailBouncedDate", "datetime" }, { "EmailBouncedReason", "string" }, { "FirstName", "string" },
  { "HasOptedOutOfEmail", "boolean" }, { "Industry", "picklist" }, { "IsConverted", "boolean" },
  { "LastName", "string" }, { "MobilePhone", "phone" }, { "Name", "string" }, { "NumberOfEmployees", "int" },
  { "Phone", "phone" }, { "PostalCode", "string" }, { "Salutation", "picklist" }, { "LeadSource", "picklist" },
  { "Status", "picklist" }, { "Title", "string" }, { "Website", "url" }, { "AnnualRevenue", "currency" },
  { "Score__c", "percent" }, { "Ratio__c", "double" },
}
local DESCRIBE = { name = "Lead", fields = {} }
for _, f in ipairs(FIELDS) do DESCRIBE.fields[#DESCRIBE.fields + 1] = { name = f[1], type = f[2] } end
DESCRIBE.fields[#DESCRIBE.fields + 1] = { name = "RecordTypeId", type = "reference", relationshipName = "RecordType",
                                          referenceTo = { "RecordType" } }
DESCRIBE.fields[#DESCRIBE.fields + 1] = { name = "Address", type = "address" }

local NOW = "2026-11-23T12:00:00Z"
local compiled = mapping.compile(mapping.default("salesforce_leads"), {
  describe = DESCRIBE, now = NOW, object = "Lead", stream = "salesforce_leads", timestamp_field = "LastModifiedDate" })
local EXTRA_ROWS = {
  { sf = "AnnualRevenue", to = "rev", type = "number" },
  { sf = "AnnualRevenue", to = "rev_s", type = "string" },
  { sf = "AnnualRevenue", to = "rev_i", type = "int" },
  { sf = "NumberOfEmployees", to = "emp_s", type = "string" },
  { sf = "Score__c", to = "score", type = "number" },
  { sf = "Ratio__c", to = "ratio_s", type = "string" },
  { sf = "IsConverted", to = "conv_s", type = "string" },
  { sf = "CreatedDate", to = "created", type = "date" },
  { sf = "ConvertedDate", to = "converted", type = "date" },
  { sf = { "Email", "Phone", "MobilePhone" }, combine = "all", to = "contact_points", type = "[]string" },
  { sf = "RecordType.Name", to = "rt_list", type = "[]string" },
  { sf = "Title", to = "title_n", type = "number" },
  { sf = "Email", to = "domain", type = "string", derive = "emaildomain" },
}
local rows = {}
for _, r in ipairs(compiled.rows) do rows[#rows + 1] = r end
for _, r in ipairs(EXTRA_ROWS) do rows[#rows + 1] = r end
local select_items = {}
for _, s in ipairs(compiled.select) do select_items[#select_items + 1] = s end
for _, s in ipairs { "AnnualRevenue", "Score__c", "Ratio__c" } do select_items[#select_items + 1] = s end
local MOPTS = { object = "Lead", stream = "salesforce_leads", timestamp_field = "LastModifiedDate", now = NOW,
                types = compiled.types }
local COLUMNS = bulk.columns(select_items, DESCRIBE)
t.eq(COLUMNS["RecordType.Name"], "string", "bulk.columns types a parent field as a string without its describe")
t.eq(COLUMNS.NumberOfEmployees, "int", "bulk.columns takes a field's describe type")

-- deterministic generator
local seed = 20261123
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end
local PIECES = { "a", "Zoë", "山田", "🚀", " ", ",", '"', '""', "\n", "\r\n", "\t", "\\", "/", "x", "Ünï", "\1", "'", "0", "1.5" }
local function rstring()
  local parts = {}
  for _ = 1, rnd(6) do parts[#parts + 1] = PIECES[rnd(#PIECES)] end
  return table.concat(parts)
end
local NUMBERS = { "0", "5", "5.0", "-0.25", "1250000.5", "1e+16", "1.5E7", "42", "9007199254740993", "0.1", "-3" }
local function rdatetime()
  return string.format("2024-%02d-%02dT%02d:%02d:%02d.000+0000", rnd(12), rnd(28), rnd(24) - 1, rnd(60) - 1, rnd(60) - 1)
end
local function rvalue(ty)
  if rnd(5) == 1 then return nil end
  if ty == "boolean" then return rnd(2) == 1 end
  if ty == "int" then return { num = tostring(rnd(100000) - 50) } end
  if ty == "currency" or ty == "double" or ty == "percent" then return { num = NUMBERS[rnd(#NUMBERS)] } end
  if ty == "datetime" then return rdatetime() end
  if ty == "date" then return string.format("2024-%02d-%02d", rnd(12), rnd(28)) end
  if ty == "email" then
    local e = { "ann@example.com", "Bo@Mail.Example.NET", "no-at-sign", "x@", "ü@例え.jp" }
    return e[rnd(#e)]
  end
  return rstring()
end

local records = {}
for i = 1, 400 do
  local r = { Id = string.format("00Q%015d", i) }
  for _, f in ipairs(FIELDS) do
    if f[1] ~= "Id" then r[f[1]] = rvalue(f[2]) end
  end
  r.LastModifiedDate = rdatetime()
  r.IsDeleted = rnd(15) == 1
  local k = rnd(4)
  if k == 1 then r.RecordType = { Name = rstring() } elseif k == 2 then r.RecordType = { Name = nil } end
  records[i] = r
end

-- the REST page, as /query returns it
local function json_value(v)
  if v == nil then return "null" end
  if type(v) == "table" and v.num then return v.num end
  return cjson.encode(v)
end
local rest_recs = {}
for _, r in ipairs(records) do
  local parts = { '"attributes":{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/' .. r.Id .. '"}' }
  for _, item in ipairs(select_items) do
    if item == "RecordType.Name" then
      local rt = r.RecordType
      parts[#parts + 1] = '"RecordType":' .. (rt and ('{"attributes":{"type":"RecordType","url":"/x"},"Name":' .. json_value(rt.Name) .. "}") or "null")
    else
      parts[#parts + 1] = cjson.encode(item) .. ":" .. json_value(r[item])
    end
  end
  rest_recs[#rest_recs + 1] = "{" .. table.concat(parts, ",") .. "}"
end
local rest_body = '{"totalSize":' .. #records .. ',"done":true,"records":[' .. table.concat(rest_recs, ",") .. "]}"

-- the Bulk page, as /jobs/query/<id>/results returns it
local function csv_cell(v)
  if v == nil then return "" end
  if type(v) == "table" and v.num then v = v.num end
  if type(v) == "boolean" then v = tostring(v) end
  v = v:gsub("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d)%+0000$", "%1Z")
  return '"' .. v:gsub('"', '""') .. '"'
end
local lines = { table.concat((function()
  local h = {}
  for i, item in ipairs(select_items) do h[i] = '"' .. item .. '"' end
  return h
end)(), ",") }
for _, r in ipairs(records) do
  local cells = {}
  for i, item in ipairs(select_items) do
    if item == "RecordType.Name" then cells[i] = csv_cell(r.RecordType and r.RecordType.Name)
    else cells[i] = csv_cell(r[item]) end
  end
  lines[#lines + 1] = table.concat(cells, ",")
end
local csv_text = table.concat(lines, "\n") .. "\n"

-- The Bulk page read in pieces of `step` bytes and mapped page by page: the
-- outputs joined and the stats summed, as sf.import.bulk writes them.
local function map_csv(m, step)
  local rd = csv.reader(COLUMNS, "Lead")
  local out, rej, st = {}, {}, { records = 0, deleted = 0, rejected = 0 }
  local function take(p)
    local o, r, ps = m:map_page(assert(p))
    out[#out + 1], rej[#rej + 1] = o, r
    st.records, st.deleted, st.rejected = st.records + ps.records, st.deleted + ps.deleted, st.rejected + ps.rejected
    if ps.last_id then st.last_ts, st.last_id = ps.last_ts, ps.last_id end
  end
  for i = 1, #csv_text, step do take(rd:feed(csv_text:sub(i, i + step - 1))) end
  take(rd:finish())
  return table.concat(out), table.concat(rej), st, rd.records
end

do
  local rest_page = assert(page.parse(rest_body))
  local m1 = mapper.compile(rows, MOPTS)
  local out1, rej1, st1 = m1:map_page(rest_page)
  t.ok(#out1 > 10000, "the REST page maps to plenty of output", tostring(#out1))
  t.ok(#rej1 > 100, "the records produce rejects too (bad numbers, emails)", tostring(#rej1))
  for _, step in ipairs { #csv_text, 4096, 997, 61 } do
    local out2, rej2, st2, n = map_csv(mapper.compile(rows, MOPTS), step)
    t.eq(n, #records, "the generated Bulk page holds every record (pieces of " .. step .. " bytes)")
    t.eq(out2, out1, "Bulk and REST pages of the same 400 records map to identical lines (pieces of " .. step .. " bytes)")
    t.eq(rej2, rej1, "... and identical rejects")
    t.same(st2, st1, "... and identical stats (records, deleted, rejected, last_ts, last_id)")
    t.ok(st2.last_ts:match("%+0000$") ~= nil, "the cursor timestamp has REST's +0000 form")
  end
  -- the same through mappings/types.lua (the Lua coercion rules)
  local lopts = {}
  for k, v in pairs(MOPTS) do lopts[k] = v end
  lopts.types = require "mappings.types"
  local o3, r3 = mapper.compile(rows, lopts):map_page(assert(page.parse(rest_body)))
  local o4, r4 = map_csv(mapper.compile(rows, lopts), 1000)
  t.ok(o3 == o4 and r3 == r4, "identical through the Lua coercion rules too")
end

-- a malformed number in a Bulk page is rejected by the mapper with a reason
do
  local rd = csv.reader({ IsDeleted = "boolean", LastModifiedDate = "datetime", AnnualRevenue = "currency" }, "Lead")
  local p = assert(rd:feed('"Id","IsDeleted","LastModifiedDate","AnnualRevenue"\n"00Q1","false","2024-01-15T10:30:00.000Z","1,5"\n'))
  local m = mapper.compile({ { sf = "Id", to = "id", type = "string" }, { sf = "AnnualRevenue", to = "rev", type = "number" } }, MOPTS)
  local out, rej = m:map_page(p)
  local r = cjson.decode(rej)
  t.ok(out == '{"_id":"00Q1","id":"00Q1"}\n' and r.reason == "not a number: 1,5" and r.value == "1,5",
    "a malformed number reaches the mapper as a string and is rejected with a reason", out .. rej)
end

-- a parent object rejected by a string row: its value in the reject line is
-- JSON written from the tokens (a Bulk record has no JSON text of its own)
do
  local rd = csv.reader({}, "Lead")
  local p = assert(rd:feed('"Id","RecordType.Name","RecordType.Id"\n"00Q1","Partner \\ ""x""","012"\n'))
  local m = mapper.compile({ { sf = "Id", to = "id", type = "string" }, { sf = "RecordType", to = "rt", type = "string" } }, MOPTS)
  local out, rej = m:map_page(p)
  local r = cjson.decode(rej)
  t.same(r.value, { Name = 'Partner \\ "x"', Id = "012" }, "a rejected parent object is written as JSON", rej)
  t.ok(rej:find('"value":{"Name":"Partner \\\\ \\"x\\"","Id":"012"}', 1, true) ~= nil, "... keys in header order", rej)
end

t.done()
