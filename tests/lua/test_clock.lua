-- sf.clock time zones: conversions read the IANA files themselves (never the
-- process's TZ); an unknown zone or a time out of range raises instead of
-- being read silently as UTC or wrapped.
local t = require "tests.tap"
local clock = require "sf.clock"
local tz_at_start = os.getenv("TZ")

local function iso(e) return os.date("!%Y-%m-%dT%H:%M:%SZ", e) end
local function fmt(l) return string.format("%04d-%02d-%02d %02d:%02d:%02d w%d", l.year, l.month, l.day, l.hour, l.min, l.sec, l.wday) end

-- to_local
t.eq(fmt(clock.to_local(0, "UTC")), "1970-01-01 00:00:00 w5", "the epoch in UTC, a Thursday (wday 5)")
t.eq(fmt(clock.to_local(1705310000, "Europe/Amsterdam")), "2024-01-15 10:13:20 w2", "Amsterdam in winter: UTC+1, a Monday")
t.eq(fmt(clock.to_local(1721030000, "Europe/Amsterdam")), "2024-07-15 09:53:20 w2", "Amsterdam in summer: UTC+2")
t.eq(fmt(clock.to_local(1705310000, "Asia/Kolkata")), "2024-01-15 14:43:20 w2", "Kolkata: UTC+5:30")
t.eq(fmt(clock.to_local(1705310000, "America/St_Johns")), "2024-01-15 05:43:20 w2", "St. John's: UTC-3:30")
t.eq(fmt(clock.to_local(-1, "UTC")), "1969-12-31 23:59:59 w4", "before the epoch")
t.eq(fmt(clock.to_local(-0.5, "UTC")), "1969-12-31 23:59:59 w4", "a fraction before the epoch is the second before")
t.eq(fmt(clock.to_local(4102444800, "Europe/Amsterdam")), "2100-01-01 01:00:00 w6", "2100: past the zone file's table, its rule")

-- from_local
local function from(zone, y, mo, d, h, mi, s)
  return clock.from_local(zone, { year = y, month = mo, day = d, hour = h, min = mi, sec = s })
end
t.eq(iso(from("Europe/Amsterdam", 2024, 7, 15, 9, 0, 0)), "2024-07-15T07:00:00Z", "from_local: 09:00 Amsterdam in summer")
t.eq(iso(from("Australia/Sydney", 2024, 1, 15, 9, 0, 0)), "2024-01-14T22:00:00Z", "from_local: Sydney's summer is in January")
t.eq(iso(from("UTC", 2024, 1, 32, 0, 0, 0)), "2024-02-01T00:00:00Z", "from_local: day 32 rolls into the next month")
t.eq(iso(from("UTC", 2024, 13, 1, 0, 0, 0)), "2025-01-01T00:00:00Z", "from_local: month 13 rolls into the next year")
t.eq(iso(from("UTC", 2024, 0, 1, 0, 0, 0)), "2023-12-01T00:00:00Z", "from_local: month 0 is December of the year before")
t.eq(iso(from("UTC", 2024, 3, 1, 0, -1, 0)), "2024-02-29T23:59:00Z", "from_local: minute -1 rolls back into a leap day")
t.eq(from("UTC", 1969, 12, 31, 23, 59, 59), -1, "from_local: 1969-12-31 23:59:59 UTC is -1, a time like any other")
t.eq(iso(from("Europe/Amsterdam", 2024, 3, 31, 2, 30, 0)), "2024-03-31T01:30:00Z",
     "from_local: 02:30 skipped in spring is read as 03:30 summer time")
t.eq(iso(from("Europe/Amsterdam", 2024, 10, 27, 2, 30, 0)), "2024-10-27T01:30:00Z",
     "from_local: 02:30 that happens twice in autumn is the second (standard time), as before")
do
  local ok = true
  for _, zone in ipairs { "Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Australia/Sydney" } do
    for e = 1700000000, 1760000000, 86400 * 7 + 3599 do
      local l = clock.to_local(e, zone)
      local back = from(zone, l.year, l.month, l.day, l.hour, l.min, l.sec)
      local again = clock.to_local(back, zone)
      if fmt(again) ~= fmt(l) then ok = false end
    end
  end
  t.ok(ok, "to_local then from_local gives the same wall time, in four zones over two years")
end

-- misuse raises
t.raises(function() clock.to_local(0, "Nowhere/Atlantis") end, "unknown time zone 'Nowhere/Atlantis'",
         "to_local: an unknown zone raises (it is not read as UTC)")
t.raises(function() clock.from_local("Nowhere/Atlantis", { year = 2024 }) end, "unknown time zone",
         "from_local: an unknown zone raises")
t.raises(function() clock.to_local(0, "../../etc/passwd") end, "IANA name", "a path is not a zone")
t.raises(function() clock.to_local(0, ":Europe/Amsterdam") end, "IANA name", "a POSIX TZ string is not a zone")
t.raises(function() clock.to_local(1e300, "UTC") end, "epoch out of range", "to_local: an epoch past any calendar raises")
t.raises(function() clock.to_local(0 / 0, "UTC") end, "epoch out of range", "to_local: NaN raises")
t.raises(function() clock.from_local("UTC", { year = 1 << 40 }) end, "out of range",
         "from_local: a year past any calendar raises (not wrapped)")
t.raises(function() clock.from_local("UTC", { year = 2024, day = 1e12 // 1 }) end, "out of range",
         "from_local: a day count past any calendar raises")
t.raises(function() clock.from_local("UTC", { year = "x" }) end, "must be an integer", "from_local: a non-integer field raises")
t.eq(os.getenv("TZ"), tz_at_start, "the process's TZ is as it was")

t.done()
