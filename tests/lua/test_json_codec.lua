-- sf.json (engine/json_codec.c) and sf.hash (engine/hash.c): the export's hot path in C.
-- The encoder writes, byte for byte, what the export has always hashed and sent (the
-- texts and hashes below were made by the Lua encoder and hash it replaced), so a
-- trigger store written by an earlier release still says "unchanged"; the decoder keeps
-- integers exact (issue: numbers stay exact).
local t = require "tests.tap"
local json = require "sf.json"
local hash = require("sf.hash").hash128
local cjson = require "cjson"

local CASES = {
  { "a record",
    "{\"AnnualRevenue\":1250000.5,\"Description\":null,\"Email\":\"ada@x.example\",\"Ext_Id__c\":\"u1\",\"HasOptedOutOfEmail\":false,\"LastName\":\"Lovelace\",\"NumberOfEmployees\":12,\"attributes\":{\"type\":\"Lead\"}}",
    "27742f3634fee4ce8d217e647657a1ec" },
  { "trigger basis",
    "{\"a\":[\"bench\",\"power\"],\"f\":{\"Email\":\"a@b\",\"Title\":\"Dr\\/Prof \\\"X\\\"\"},\"o\":\"Lead\"}",
    "4eb3f76cc0db001fe61762784471910f" },
  { "numbers",
    "[0.1,1e+20,1e+300,9007199254740992,9.223372036854776e+18,0,5,123456789012345678,0.3333333333333333,-1.25e-07]",
    "faeba0c208f84180b0f9a9c6085015c0" },
  { "escapes",
    "\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u007fé中🚀\"",
    "3befb17ad75614976f4da36bfe4311b5" },
  { "empty tables and nulls",
    "{\"e\":[],\"n\":null,\"z\":[[]]}",
    "ad564392f728584ff9fc02c65f7a720f" },
  { "odd keys",
    "{\"1.5\":1,\"10\":3,\"9\":4,\"B\":5,\"a\":6,\"true\":null}",
    "a30011574e74e12e2950b9d3e751ab7c" },
}
local VALUES = {
  ["a record"] = { attributes = { type = "Lead" }, Email = "ada@x.example", LastName = "Lovelace", NumberOfEmployees = 12,
                   AnnualRevenue = 1250000.5, Ext_Id__c = "u1", HasOptedOutOfEmail = false, Description = cjson.null },
  ["trigger basis"] = { f = { Email = "a@b", Title = "Dr/Prof \"X\"" }, a = { "bench", "power" }, o = "Lead" },
  ["numbers"] = { 0.1, 1e20, 1e300, 2^53, 2^63, -0.0, 5.0, 123456789012345678, 1/3, -1.25e-7 },
  ["escapes"] = "q\"b\\s/\b\f\n\r\t\0\31\127é中🚀",
  ["empty tables and nulls"] = { e = {}, n = cjson.null, z = { {} } },
  ["odd keys"] = { [1.5] = 1, [true] = 2, ["10"] = 3, ["9"] = 4, ["B"] = 5, ["a"] = 6 },
}
for _, c in ipairs(CASES) do
  local text = json.encode(VALUES[c[1]])
  t.eq(text, c[2], "encode: " .. c[1] .. " as the earlier encoder wrote it")
  t.eq(hash(text), c[3], "hash128: " .. c[1] .. " as the earlier hash")
end

local HASHES = {
  { "", "3cc4cb97017089b81c648ad59422dbec" },
  { "x", "d1e032fdc120237bdbc91a6c90086a69" },
  { "abcabcabcabcabcabcabcabcabcabcabc", "3eafa3150eb349472be789bfaca769d5" },
  { "0123456789abcdef0123456789abcdef", "1ee04ee0d5c1f8d6b662e7c27f8bdac2" },
  { "0123456789abcdef0123456789abcdef!", "58123ba956020cbc1a42af3c42531994" },
}
for _, h in ipairs(HASHES) do t.eq(hash(h[1]), h[2], "hash128 of " .. #h[1] .. " bytes (padding to 32-byte blocks)") end
t.ok(hash("a") ~= hash("a\0"), "trailing NUL bytes change the hash (the length is mixed in)")

-- encode: more shapes
t.eq(json.encode(0/0), "null", "NaN is null")
t.eq(json.encode(1/0), "null", "infinity is null")
t.eq(json.encode(nil), "null", "nil is null")
t.eq(json.encode(print), "null", "a function is null")
t.eq(json.encode(9007199254740993), "9007199254740993", "integers beyond 2^53 are exact")
t.eq(json.encode(math.mininteger), "-9223372036854775808", "the smallest integer")
t.eq(json.encode({ 1, 2, nil, 4 }), json.encode({ 1, 2, nil, 4 }), "an array with a hole encodes as #t says")
local cyc = {}
cyc.self = cyc
t.raises(function() json.encode(cyc) end, "nested deeper than 100", "a table that contains itself raises")
t.eq(json.encode(setmetatable({}, { __index = function() return 1 end })), "[]", "an empty table is []")

-- decode
local v = json.decode('{"n":9007199254740993,"x":1.5,"i":5,"f":5.0,"e":1e2,"z":null,"a":[1,"b",true,false],"o":{}}')
t.eq(v.n, 9007199254740993, "integer literals stay exact")
t.eq(math.type(v.n), "integer", "... as Lua integers")
t.eq(math.type(v.i), "integer", "small integers are integers")
t.eq(math.type(v.f), "float", "5.0 is a float")
t.eq(v.e, 100.0, "exponents are floats")
t.eq(v.z, json.null, "null is json.null")
t.eq(json.null, cjson.null, "json.null is cjson.null")
t.same(v.a, { 1, "b", true, false }, "arrays are tables")
t.eq(next(v.o), nil, "an empty object is an empty table")
t.eq(json.decode('"\\u00e9\\ud83d\\ude80"'), "é🚀", "escapes and surrogate pairs decode")
t.eq(json.decode('99999999999999999999'), 1e20, "an integer beyond int64 is a float")
local bad, err, code = json.decode('{"a":1,}')
t.ok(bad == nil and code == "JSON" and err:find("^malformed JSON at byte 7"), "malformed JSON: nil, message with the byte, JSON", err)
bad, err, code = json.decode('"\255"')
t.ok(bad == nil and code == "JSON", "invalid UTF-8 is malformed", err)
t.raises(function() json.decode(nil) end, "string expected", "decode needs a string")
-- round trip
local doc = '{"a":[0.1,true],"b":1,"c":"x\\/y"}'
t.eq(json.encode(json.decode(doc)), doc, "decode then encode gives the text back (sorted keys)")

t.done()
