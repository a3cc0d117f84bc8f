-- sf.page: a query response page parsed once in C; records decoded on demand.
local t = require "tests.tap"
local page = require "sf.page"
local cjson = require "cjson"

local RICH = [=[{"attributes":{"type":"Lead","url":"/services/data/v62.0/sobjects/Lead/00Q1"},]=]
  .. [=["Id":"00Q1","Name":"Ann \u00e9 \"Q\" \\ \/ \ud83d\ude00\n","Big":12345678901234567890,]=]
  .. [=["Revenue":1000000.0,"Employees":42,"Neg":-0.5,"Exp":1e3,"Flag":true,"Off":false,"Nothing":null,]=]
  .. [=["RecordType":{"attributes":{"type":"RecordType"},"Name":"Partner"},"Owner":null,]=]
  .. [=["Contacts":{"totalSize":2,"done":true,"records":[{"Id":"c1"},{"Id":"c2","Tags":["a",null,[]]}]},]=]
  .. [=["Empty":{},"EmptyList":[],"Esc\u0061ped":"k"}]=]
local BODY = '{"totalSize":1234,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gD0000002HU6KIAW-2000",'
  .. '"records":[' .. RICH .. ',{"Id":"00Q2"} ,\n {"Id":"00Q3","Name":null}]}'

local p, err, code = page.parse(BODY)
t.ok(p ~= nil, "parses a query page", err)
t.eq(p.total_size, 1234, "total_size is totalSize")
t.eq(math.type(p.total_size), "integer", "total_size is an integer")
t.eq(p.done, false, "done is false when more pages follow")
t.eq(p.next_url, "/services/data/v62.0/query/01gD0000002HU6KIAW-2000", "next_url is nextRecordsUrl")
t.eq(#p, 3, "#p counts the records")
t.eq(tostring(p), "sf.page (3 records)", "tostring names the page")

-- decoded records equal cjson.decode of the same text
local want = cjson.decode(BODY).records
for i = 1, #p do
  t.same(p:record(i), want[i], "record " .. i .. " decodes like cjson.decode")
end
local r1 = p:record(1)
t.eq(r1.Nothing, cjson.null, "JSON null decodes to cjson.null")
t.eq(r1.Owner, cjson.null, "a null parent relationship decodes to cjson.null")
t.eq(r1.Name, "Ann \u{e9} \"Q\" \\ / \u{1F600}\n", "escapes and surrogate pairs decode to UTF-8")
t.eq(r1.RecordType.Name, "Partner", "parent relationships decode as nested tables")
t.eq(r1.Contacts.records[2].Id, "c2", "child subqueries decode as nested tables")
t.eq(r1.Escaped, "k", "escaped keys are unescaped")
t.eq(math.type(r1.Employees), "integer", "integer literals decode to Lua integers")
t.eq(math.type(r1.Revenue), "float", "numbers with a fraction decode to floats")
t.eq(r1.Exp, 1000.0, "exponent numbers decode to their value")
t.eq(math.type(r1.Big), "float", "integers beyond int64 decode to floats")
t.ok(r1.Big == 12345678901234567890.0, "big integers keep their float value")
t.ok(p:record(1) ~= p:record(1), "each call decodes a fresh table")

-- raw text
t.eq(p:raw(1), RICH, "raw(i) is the record's exact JSON text")
t.eq(p:raw(2), '{"Id":"00Q2"}', "raw(i) excludes surrounding white space and commas")
t.same(cjson.decode(p:raw(3)), p:record(3), "raw text decodes to the same record")

-- iterator
local seen = {}
for i, rec in p:records() do seen[#seen + 1] = i .. "=" .. rec.Id end
t.eq(table.concat(seen, ","), "1=00Q1,2=00Q2,3=00Q3", "records() iterates i, record in order")

-- index checks
t.raises(function() return p:record(0) end, "out of range", "record(0) raises")
t.raises(function() return p:record(4) end, "out of range", "record(#p + 1) raises")
t.raises(function() return p:raw(-1) end, "out of range", "raw(-1) raises")
t.raises(function() return p:record("x") end, "number expected", "a non-integer index raises")
t.eq(p.nonexistent, nil, "unknown fields are nil")

-- last page, empty page
local last = assert(page.parse('{"totalSize":3,"done":true,"records":[{"Id":"x"}]}'))
t.eq(last.done, true, "done is true on the last page")
t.eq(last.next_url, nil, "next_url is nil on the last page")
local empty = assert(page.parse('{"totalSize":0,"done":true,"records":[]}'))
t.eq(#empty, 0, "an empty page has no records")
t.eq(empty.total_size, 0, "an empty page's total_size is 0")
local n = 0
for _ in empty:records() do n = n + 1 end
t.eq(n, 0, "records() on an empty page yields nothing")
t.raises(function() return empty:record(1) end, "out of range", "record(1) on an empty page raises")
local nulls = assert(page.parse('{"totalSize":1,"done":true,"nextRecordsUrl":null,"records":[]}'))
t.eq(nulls.next_url, nil, "a null nextRecordsUrl is nil")
local nodone = assert(page.parse('{"records":[],"nextRecordsUrl":"/q/2"}'))
t.eq(nodone.done, false, "without done, a page with nextRecordsUrl is not done")
t.eq(nodone.total_size, nil, "without totalSize, total_size is nil")

-- malformed and non-page bodies
local function fails(body, want_code, want_msg, name)
  local v, msg, c = page.parse(body)
  t.ok(v == nil and c == want_code and type(msg) == "string" and msg:find(want_msg, 1, true) ~= nil,
       name, "got " .. tostring(v) .. ", " .. tostring(msg) .. ", " .. tostring(c))
end
fails('{"totalSize":1,"done":true,"records":[{"Id":"x"},]}', "JSON", "malformed JSON at byte 49: unexpected character",
      "a trailing comma is malformed JSON, with its byte offset")
fails('{"totalSize":1,', "JSON", "malformed JSON at byte 15: unexpected end of input", "a truncated body")
fails('', "JSON", "malformed JSON at byte 0", "an empty body")
fails('{"records":["\\ud800"]}', "JSON", "malformed JSON at byte 13: unpaired high surrogate",
      "a lone surrogate escape")
fails('{"records":["\xff"]}', "JSON", "invalid UTF-8", "invalid UTF-8")
fails('[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]', "PAGE",
      "not a query response: expected a JSON object", "a Salesforce error array is not a page")
fails('{"totalSize":0,"done":true}', "PAGE", "records must be an array", "a body without records")
fails('{"records":{}}', "PAGE", "records must be an array", "records as an object")
fails('{"records":[],"done":"yes"}', "PAGE", "done must be a boolean", "a non-boolean done")
fails('{"records":[],"totalSize":"3"}', "PAGE", "totalSize must be a number", "a string totalSize")
fails('{"records":[],"nextRecordsUrl":5}', "PAGE", "nextRecordsUrl must be a string", "a numeric nextRecordsUrl")
-- A page that says there is more is not the end (issue 13): done:false needs a path to the rest.
for _, c in ipairs {
  { '{"totalSize":3030,"done":false,"records":[{"Id":"1"}]}', "missing" },
  { '{"totalSize":3030,"done":false,"nextRecordsUrl":null,"records":[]}', "null" },
  { '{"totalSize":3030,"done":false,"nextRecordsUrl":"","records":[]}', "empty" },
  { '{"totalSize":3030,"done":false,"nextRecordsUrl":"query/01g-2000","records":[]}', "not a path" },
} do
  fails(c[1], "PAGE", "done is false but nextRecordsUrl is missing, empty or not a path",
        "done:false with a " .. c[2] .. " nextRecordsUrl is refused, not taken as the last page")
end
t.raises(function() page.parse(nil) end, "string expected", "parse(nil) raises")

-- the page keeps its body alive
do
  local q = assert(page.parse(table.concat({ '{"done":true,"records":[{"Id":"', string.rep("z", 50), '"}]}' })))
  collectgarbage(); collectgarbage()
  t.eq(q:record(1).Id, string.rep("z", 50), "the page keeps a reference to its body string")
end

-- close
do
  local q = assert(page.parse(BODY))
  q:close()
  q:close()
  t.ok(true, "close is idempotent")
  t.eq(tostring(q), "sf.page (closed)", "tostring of a closed page")
  t.raises(function() return q:record(1) end, "the page is closed", "record after close raises")
  t.raises(function() return #q end, "the page is closed", "# after close raises")
  t.raises(function() return q.done end, "the page is closed", "fields after close raise")
  do
    local c <close> = assert(page.parse(BODY))
    t.eq(#c, 3, "a page works as a to-be-closed variable")
  end
end

-- a full-size page
do
  local recs = {}
  for i = 1, 2000 do recs[i] = string.format('{"Id":"%018d","N":%d,"S":"r\\u00e9%d"}', i, i, i) end
  local big = assert(page.parse('{"totalSize":2000,"done":true,"records":[' .. table.concat(recs, ",") .. "]}"))
  local ok = #big == 2000
  for i = 1, 2000, 97 do
    local r = big:record(i)
    ok = ok and r.N == i and r.S == "r\u{e9}" .. i
  end
  t.ok(ok, "a 2000-record page decodes every record")
end

t.done()
