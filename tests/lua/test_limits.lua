-- sf.limits Lua binding: parse_usage, bucket, counter (the math itself is in tests/c/test_limits.c).
local t = require "tests.tap"
local limits = require "sf.limits"

local u, m = limits.parse_usage("api-usage=25/15000, per-app-api-usage=17/250(appName=x)")
t.ok(u == 25 and m == 15000 and math.type(u) == "integer", "parse_usage returns two integers")
t.eq(limits.parse_usage("junk"), nil, "parse_usage returns nil for junk")
t.eq(limits.parse_usage(nil), nil, "parse_usage returns nil for a missing header")
t.eq(select("#", limits.parse_usage("junk")), 1, "junk gives a single nil")
t.raises(function() limits.parse_usage({}) end, "string expected", "parse_usage of a table raises")

local b = limits.bucket(10, 5)
t.eq(tostring(b):sub(1, 16), "sf.limits.bucket", "bucket has a tostring")
for _ = 1, 5 do b:take(1, 0) end
t.eq(b:take(1, 0), 100, "bucket:take returns ms to wait")
t.eq(b:take(1, 100), 0, "bucket:take returns 0 once taken")
t.raises(function() b:take(6, 0) end, "between 0 and the burst", "taking more than the burst raises")
t.raises(function() b:take(1, "0") end, "now_ms must be an integer", "a string time raises")
t.raises(function() b:take(1, 1.5) end, "now_ms must be an integer", "a fractional time raises")
t.raises(function() limits.bucket(0, 1) end, "positive", "a zero rate raises")
t.raises(function() b:take(1, 1 << 60) end, "out of range", "an absurd time raises")

local c = limits.counter()
local t0 = 1700000000 - 1700000000 % 60
c:add(t0, 10)
c:add(t0 + 60)
t.eq(c:used(t0 + 60), 11, "counter:add defaults n to 1 and used sums the window")
t.eq(c:used(t0 + 86400 + 59), 1, "calls expire after 24 h")
t.eq(c:next_free(t0 + 60, 5, 11), t0 + 86400, "next_free waits for the oldest minute")
t.eq(c:next_free(t0 + 60, 0, 11), t0 + 60, "next_free is now when it fits")
local nf, msg, code = c:next_free(t0, 12, 11)
t.ok(nf == nil and code == "NEVER", "next_free of more than max gives NEVER", tostring(msg))
local saved = c:dump()
t.eq(saved, ("c1:%d:0=1:1=10"):format(t0 // 60 + 1), "dump is compact")
local c2 = assert(limits.counter(saved))
t.eq(c2:dump(), saved, "counter(dump) round-trips")
t.eq(c2:used(t0 + 60), 11, "a restored counter counts the same")
local bad, bmsg, bcode = limits.counter("c1:junk")
t.ok(bad == nil and bcode == "STATE", "a junk saved string gives nil, msg, STATE", tostring(bmsg))
t.raises(function() c:add(t0, -1) end, "must not be negative", "a negative add raises")
t.raises(function() c:used() end, "now_s must be an integer", "used without a time raises")
t.done()
