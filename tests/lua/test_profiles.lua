-- The export's input side: sf.export.profiles (profile lines, Segment events, the
-- integrations switch), sf.export.segment (traits -> Lead/Account fields) and
-- sf.input (line reader: offsets, long lines, CRLF, follow, timeouts).
local t = require "tests.tap"
local cjson = require "cjson"
local profiles = require "sf.export.profiles"
local segment = require "sf.export.segment"
local input = require "sf.input"

-- ---- profile lines ----

local u = assert(profiles.parse([[{"id":"u1","fields":{"email":"a@b.c","address":{"city":"Rome"}},
  "audiences":["power","active","power"],"scores":{"engagement":80},"affinities":{"shoes":0.8},
  "consent":["marketing"]}]]))
t.eq(u.id, "u1", "profile: id")
t.eq(u.key, "u1", "profile: the store key of a user is its id")
t.eq(u.kind, "user", "profile: kind defaults to user")
t.eq(u.event, "update", "profile: event defaults to update")
t.same(u.audiences, { "active", "power" }, "profile: audiences are unique and sorted")
t.eq(profiles.get(u.fields, "email"), "a@b.c", "get: a plain field")
t.eq(profiles.get(u.fields, "address.city"), "Rome", "get: a dotted path into an object")
t.eq(profiles.get(u.fields, "address.zip"), nil, "get: a missing nested field is nil")
t.eq(profiles.get(u.fields, "email.x"), nil, "get: a path through a scalar is nil")
t.eq(u.scores.engagement, 80, "profile: scores")
t.ok(profiles.has_consent(u, { "sales", "marketing" }), "consent: one matching objective is enough")
t.ok(not profiles.has_consent(u, { "sales" }), "consent: no matching objective")

local n = assert(profiles.parse('{"id": 42}'))
t.eq(n.id, "42", "profile: an integer id becomes text")
t.eq(n.consent, nil, "profile: no consent key -> nil (no objectives)")
t.ok(not profiles.has_consent(n, { "marketing" }), "consent: a profile without consent has none")

local seg = assert(profiles.parse('{"id":"u2","segments":["vip"],"objectives":["analytics"]}'))
t.same(seg.audiences, { "vip" }, "profile: segments is a synonym of audiences")
t.same(seg.consent, { "analytics" }, "profile: objectives is a synonym of consent")

local enter = assert(profiles.parse('{"id":"u3","event":"enter","audience":"power","audiences":["active"]}'))
t.same(enter.audiences, { "active", "power" }, "enter: the audience entered is added")
local exit = assert(profiles.parse('{"id":"u3","event":"exit","audience":"power","audiences":["active","power"]}'))
t.same(exit.audiences, { "active" }, "exit: the audience left is removed")
local acct = assert(profiles.parse('{"id":"a1","kind":"account","fields":{"name":"Initech"}}'))
t.eq(acct.key, "account:a1", "account: its store key is apart from users'")

t.same(profiles.exported_audiences(u, { "power", "other" }), { "power" }, "exported audiences: the recipe's among the user's")
t.same(profiles.exported_audiences(u, nil), { "active", "power" }, "exported audiences: all without a filter")
t.same(profiles.top({ a = 1, b = 3, c = 2, d = 3 }, 3), { "b", "d", "c" }, "top three by value, ties by name")

local bad = {
  { "not json", "bad_json" },
  { "[1,2]", "bad_line" },
  { '"text"', "bad_line" },
  { '{"fields":{}}', "bad_line" },
  { '{"id":""}', "bad_line" },
  { '{"id":1.5}', "bad_line" },
  { '{"id":"u","event":"leave"}', "bad_line" },
  { '{"id":"u","kind":"company"}', "bad_line" },
  { '{"id":"u","audiences":[1]}', "bad_line" },
  { '{"id":"u","audiences":{"a":1}}', "bad_line" },
  { '{"id":"u","fields":[1]}', "bad_line" },
  { '{"id":"u","scores":{"a":"x"}}', "bad_line" },
  { '{"id":"u","consent":"x"}', nil },  -- a single string is a list of one
  { "   ", "blank" },
}
for _, c in ipairs(bad) do
  local v, reason = profiles.parse(c[1])
  if c[2] then
    t.ok(v == nil and reason == c[2], "bad line " .. c[1] .. " -> " .. c[2], "got " .. tostring(reason))
  else
    t.ok(v ~= nil, "line " .. c[1] .. " is accepted")
  end
end

-- ---- Segment events and the integrations switch ----

local S = { format = "segment" }
local id1 = assert(profiles.parse([[{"type":"identify","userId":"u1","traits":{"email":"p@i.co"},
  "context":{"traits":{"email":"old@i.co","title":"VP"}},"integrations":{"Salesforce":true}}]], S))
t.eq(id1.kind, "user", "identify -> a user")
t.eq(id1.key, "identify:u1", "identify: store key")
t.eq(id1.fields.email, "p@i.co", "identify: traits override context.traits")
t.eq(id1.fields.title, "VP", "identify: context.traits are kept")
local g = assert(profiles.parse('{"type":"group","groupId":813,"traits":{"name":"Teemo"},"integrations":{"Salesforce":true}}', S))
t.eq(g.kind, "account", "group -> an account")
t.eq(g.id, "813", "group: groupId")
t.eq(g.key, "group:813", "group: store key")

local switch = {
  { '{"Salesforce":true}', true, "explicitly enabled" },
  { '{"Salesforce":{"lookup":"x"}}', true, "enabled with an options object" },
  { '{"All":false,"Salesforce":true}', true, "All false, Salesforce true: enabled" },
  { '{"All":true,"Salesforce":false}', false, "Salesforce false: disabled" },
  { '{"All":true}', false, "All true but no explicit Salesforce: not sent (explicit opt-in)" },
  { '{}', false, "no integrations: not sent" },
  { 'null', false, "null integrations: not sent" },
}
for _, c in ipairs(switch) do
  local line = '{"type":"identify","userId":"u","traits":{},"integrations":' .. c[1] .. '}'
  local v, reason = profiles.parse(line, S)
  t.ok((v ~= nil) == c[2] and (c[2] or reason == "integration_disabled"), "integrations " .. c[1] .. ": " .. c[3])
end
t.ok(profiles.segment_enabled({ All = true }, "Salesforce", false), "without the explicit rule, All true sends")
t.ok(not profiles.segment_enabled({ All = false }, "Salesforce", false), "without the explicit rule, All false does not")
t.ok(profiles.segment_enabled({}, "Salesforce", false), "without the explicit rule, All defaults to true")
local _, r1 = profiles.parse('{"type":"track","userId":"u","event":"x","integrations":{"Salesforce":true}}', S)
t.eq(r1, "unsupported_event", "track is not exported")
local _, r2 = profiles.parse('{"type":"identify","traits":{},"integrations":{"Salesforce":true}}', S)
t.eq(r2, "bad_line", "identify without userId/anonymousId is a bad line")
local anon = assert(profiles.parse('{"type":"identify","anonymousId":"a9","integrations":{"Salesforce":true}}', S))
t.eq(anon.id, "a9", "identify falls back to anonymousId")

-- ---- Segment traits -> Salesforce fields ----

local lead, custom = segment.lead_fields {
  name = "Peter Gibbons", title = "VP of Derp", email = "peter.gibbons@initech.com",
  company = { id = 666, name = "Initech" }, phone = "570-690-4150", rating = "Hot",
  address = { city = "east greenwich", postalCode = 94115, country = "USA", street = "19123 forest lane", state = "RI" },
  state = "California", testProp = "x", planTier = 3, createdAt = "2020-01-01", age = 30, ["bad name"] = 1,
  ["double__under"] = 1, nested = { a = 1 },
}
t.same(lead, {
  FirstName = "Peter", LastName = "Gibbons", Title = "VP of Derp", Email = "peter.gibbons@initech.com",
  Company = "Initech", Phone = "570-690-4150", Rating = "Hot", City = "east greenwich", PostalCode = "94115",
  Country = "USA", Street = "19123 forest lane", State = "RI", testProp__c = "x", planTier__c = 3,
}, "identify traits -> Lead fields (name split, company object, address object wins, custom traits)")
t.same(custom, { testProp__c = "testProp", planTier__c = "planTier" }, "custom traits are listed")
local l2 = segment.lead_fields { name = "Cher", company = "Solo", firstName = nil, lastName = nil, city = "Rome" }
t.eq(l2.LastName, "Cher", "a one-word name is the last name")
t.eq(l2.FirstName, nil, "a one-word name has no first name")
t.eq(l2.City, "Rome", "top-level address traits")
local l3 = segment.lead_fields { name = "Ignored Name", firstName = "Ada", lastName = "Lovelace" }
t.eq(l3.FirstName .. " " .. l3.LastName, "Ada Lovelace", "firstName/lastName win over name")
t.eq(segment.custom_field("testProp"), "testProp__c", "custom field of a camelCase trait")
t.eq(segment.custom_field("Score__c"), "Score__c", "a trait already ending in __c is kept")
t.eq(segment.custom_field("bad-name"), nil, "no API name for bad-name")

local traits = { name = "Teemo Industries", address = { city = "East Greenwich", state = "RI", country = "US",
  postalCode = "02818", street = "9000 Forest Lane" }, phone = "222-333-4444",
  description = "Makes great husky products", employees = 4, website = "https://teemothewolf.com", plan = "pro" }
local acc = segment.account_fields(traits, "813")
t.same(acc, { Name = "Teemo Industries", AccountNumber = "813", BillingCity = "East Greenwich", BillingCountry = "US",
  BillingPostalCode = "02818", BillingState = "RI", BillingStreet = "9000 Forest Lane", NumberOfEmployees = 4,
  Phone = "222-333-4444", Website = "https://teemothewolf.com", Description = "Makes great husky products" },
  "group traits -> Account fields, address to billing (Segment's documented example)")
local ship = segment.account_fields(traits, "813", { address = "shipping" })
t.ok(ship.ShippingCity == "East Greenwich" and ship.BillingCity == nil, "address = shipping")
local both = segment.account_fields(traits, "813", { address = "both" })
t.ok(both.ShippingCity == "East Greenwich" and both.BillingCity == "East Greenwich", "address = both")
t.same(segment.lookup_values({ email = "a@b.c", ext = 7 }, { email = "Email", ext = "Ext__c" }),
  { Email = "a@b.c", Ext__c = "7" }, "lookup values of several traits")
local lv, missing = segment.lookup_values({ email = "a@b.c" }, { email = "Email", ext = "Ext__c" })
t.ok(lv == nil and missing == "ext", "a missing lookup trait is named")

-- ---- sf.input ----

local dir = t.tmpdir()
local path = dir .. "/input.ndjson"
local function write(p, s, mode)
  if mode == nil then return t.write(p, s) end
  local f = assert(io.open(p, mode))
  f:write(s)
  f:close()
end
write(path, "one\r\ntwo\n\nthree")
local r = assert(input.open(path))
t.eq(r:read_line(), "one", "input: CRLF lines lose the CR")
t.eq(r:offset(), 5, "input: offset counts the consumed bytes")
t.eq(r:read_line(), "two", "input: second line")
t.eq(r:read_line(), "", "input: an empty line")
t.eq(r:read_line(), "three", "input: a last line without newline is returned at EOF")
local v, e = r:read_line()
t.ok(v == nil and e == "EOF", "input: then EOF")
t.eq(r:offset(), 15, "input: offset at the end")
t.eq(r:line_number(), 4, "input: line numbers")
local info = r:info()
t.ok(info.regular and info.size == 15 and info.ino > 0, "input: info of a regular file")
r:close()
r:close()
t.raises(function() r:read_line() end, "closed", "input: reading a closed reader raises")

local r2 = assert(input.open(path, { offset = 5 }))
t.eq(r2:read_line(), "two", "input: resuming at an offset")
t.eq(r2:offset(), 9, "input: the offset includes the resume point")
r2:close()

write(path, "short\n" .. string.rep("x", 3000) .. "\nafter\n" .. string.rep("y", 2000))
local r3 = assert(input.open(path, { max_line = 1024 }))
t.eq(r3:read_line(), "short", "input: a line under the cap")
local v3, m3, c3 = r3:read_line()
t.ok(v3 == nil and c3 == "TOO_LONG" and m3:find("line 2 is longer than 1024 bytes", 1, true), "input: a too-long line is reported", tostring(m3))
t.eq(r3:read_line(), "after", "input: the next line after a too-long one")
local _, _, c4 = r3:read_line()
t.eq(c4, "TOO_LONG", "input: a too-long last line without newline")
local _, e5 = r3:read_line()
t.eq(e5, "EOF", "input: EOF after it")
r3:close()

-- follow a growing regular file
write(path, "a\n")
local r4 = assert(input.open(path, { follow = true }))
t.eq(r4:read_line(100), "a", "follow: existing line")
local t0 = os.clock()
local v4, e4 = r4:read_line(150)
t.ok(v4 == nil and e4 == "TIMEOUT", "follow: at the end of the file, TIMEOUT instead of EOF")
write(path, "b\npartial", "ab")
t.eq(r4:read_line(1000), "b", "follow: a line appended later")
local _, e6 = r4:read_line(100)
t.eq(e6, "TIMEOUT", "follow: a partial last line is not returned while following")
write(path, "-done\n", "ab")
t.eq(r4:read_line(1000), "partial-done", "follow: the partial line once complete")
r4:close()
t.ok(os.clock() - t0 < 5, "follow: bounded in time")

local nf, nerr, ncode = input.open(dir .. "/no-such-file-sfengine.ndjson")
t.ok(nf == nil and ncode == "ENOENT" and nerr:find("No such file", 1, true), "input: a missing file is nil, message, ENOENT")
local dd, _, dcode = input.open(dir)
t.ok(dd == nil and dcode == "EISDIR", "input: a directory is refused")
t.raises(function() input.open(path, { max_line = 0 }) end, "opts.max_line", "input: misuse raises naming the option")
t.raises(function() input.open(path, { offset = -1 }) end, "opts.offset", "input: a negative offset raises")
os.remove(path)

t.done()
