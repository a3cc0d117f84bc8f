-- sf.schedule: when the next keep-updated run starts, with explicit times
-- (no clock is read): periods, time of day in IANA zones, daylight saving,
-- weekly runs, zone checks.
local t = require "tests.tap"
local schedule = require "sf.schedule"
local clock = require "sf.clock"

local function utc(y, mo, d, h, mi, s)
  return clock.from_local("UTC", { year = y, month = mo, day = d, hour = h, min = mi or 0, sec = s or 0 })
end
local function iso(e) return os.date("!%Y-%m-%dT%H:%M:%SZ", e) end

-- Without a time of day: one period after the previous run finished.
local finished = utc(2024, 1, 15, 10, 17, 42)
t.eq(schedule.next_run({ every = "1h" }, finished), finished + 3600, "every 1h: one hour after the previous run finished")
t.eq(schedule.next_run({ every = "24h" }, finished), finished + 86400, "every 24h: 24 hours after the previous run finished")
t.eq(schedule.next_run({ every = "7d" }, finished), finished + 7 * 86400, "every 7d: a week after the previous run finished")
t.raises(function() schedule.next_run({ every = "2h" }, finished) end, "unknown period", "an unknown period raises")

-- Daily at a time of day, UTC.
local daily = { every = "24h", time_of_day = "02:00", time_zone = "UTC" }
t.eq(iso(schedule.next_run(daily, utc(2024, 1, 15, 1, 0))), "2024-01-15T02:00:00Z", "daily 02:00: later the same day")
t.eq(iso(schedule.next_run(daily, utc(2024, 1, 15, 2, 0))), "2024-01-16T02:00:00Z", "daily: strictly after (02:00 itself goes to tomorrow)")
t.eq(iso(schedule.next_run(daily, utc(2024, 1, 15, 23, 59))), "2024-01-16T02:00:00Z", "daily: after the time, the next day")
t.eq(iso(schedule.next_run(daily, utc(2024, 12, 31, 3, 0))), "2025-01-01T02:00:00Z", "daily: across a year end")
t.eq(iso(schedule.next_run(daily, utc(2024, 2, 28, 3, 0))), "2024-02-29T02:00:00Z", "daily: leap day")

-- Daily in a zone with daylight saving: the wall-clock time holds.
local ams = { every = "24h", time_of_day = "09:00", time_zone = "Europe/Amsterdam" }
t.eq(iso(schedule.next_run(ams, utc(2024, 1, 15, 0, 0))), "2024-01-15T08:00:00Z", "Europe/Amsterdam 09:00 in winter is 08:00 UTC")
t.eq(iso(schedule.next_run(ams, utc(2024, 7, 15, 0, 0))), "2024-07-15T07:00:00Z", "Europe/Amsterdam 09:00 in summer is 07:00 UTC")
t.eq(iso(schedule.next_run(ams, utc(2024, 3, 30, 9, 0))), "2024-03-31T07:00:00Z", "the day clocks go forward: 09:00 local, 07:00 UTC")
t.eq(iso(schedule.next_run(ams, utc(2024, 10, 26, 9, 0))), "2024-10-27T08:00:00Z", "the day clocks go back: 09:00 local, 08:00 UTC")

-- One run per local day across both changes, also for a time that does not
-- exist (02:30 on the spring day) or exists twice (02:30 on the autumn day).
for _, hhmm in ipairs { "09:00", "02:30", "00:00", "23:59" } do
  local cfg = { every = "24h", time_of_day = hhmm, time_zone = "Europe/Amsterdam" }
  local at, ok, days, prev = utc(2024, 3, 20, 12, 0), true, {}, nil
  for _ = 1, 240 do -- 2024-03-20 .. 2024-11-15: both changes
    local nxt = schedule.next_run(cfg, at)
    if nxt <= at then ok = false end
    local l = clock.to_local(nxt, "Europe/Amsterdam")
    local day = string.format("%04d-%02d-%02d", l.year, l.month, l.day)
    if days[day] then ok = false end
    days[day] = true
    if prev and nxt - prev > 25 * 3600 then ok = false end
    if prev and nxt - prev < 23 * 3600 then ok = false end
    prev, at = nxt, nxt
  end
  t.ok(ok, "daily " .. hhmm .. " Europe/Amsterdam: one run each local day, none skipped or doubled, across DST changes")
end

-- Weekly: the weekday and time in the zone.
local weekly = { every = "7d", time_of_day = "18:30", time_zone = "Asia/Tokyo", weekday = "wednesday" }
local w = schedule.next_run(weekly, utc(2024, 1, 15, 0, 0)) -- a Monday
local l = clock.to_local(w, "Asia/Tokyo")
t.ok(l.wday == 4 and l.hour == 18 and l.min == 30 and l.day == 17, "weekly: Wednesday 18:30 Asia/Tokyo", iso(w))
t.eq(schedule.next_run(weekly, w), w + 7 * 86400, "weekly: the run after is a week later")
t.eq(iso(schedule.next_run({ every = "7d", time_of_day = "06:00", time_zone = "UTC" }, utc(2024, 1, 15, 7, 0))),
  "2024-01-22T06:00:00Z", "weekly without a weekday: Mondays; past this Monday's time, the next Monday")

-- Hourly with a time of day: that minute past every hour.
local hourly = { every = "1h", time_of_day = "00:15", time_zone = "UTC" }
t.eq(iso(schedule.next_run(hourly, utc(2024, 1, 15, 10, 20))), "2024-01-15T11:15:00Z", "hourly 00:15: a quarter past the next hour")
t.eq(iso(schedule.next_run(hourly, utc(2024, 1, 15, 10, 5))), "2024-01-15T10:15:00Z", "hourly 00:15: a quarter past this hour when still ahead")
t.eq(iso(schedule.next_run({ every = "1h", time_of_day = "00:30", time_zone = "Asia/Kolkata" }, utc(2024, 1, 15, 10, 5))),
  "2024-01-15T11:00:00Z", "hourly in a half-hour zone: the minute is local")
for _, start in ipairs { utc(2024, 3, 30, 12, 0), utc(2024, 10, 26, 12, 0) } do
  local cfg = { every = "1h", time_of_day = "00:15", time_zone = "Europe/Amsterdam" }
  local at, ok = schedule.next_run(cfg, start), true
  for _ = 1, 48 do
    local nxt = schedule.next_run(cfg, at)
    if nxt - at ~= 3600 or clock.to_local(nxt, "Europe/Amsterdam").min ~= 15 then ok = false end
    at = nxt
  end
  t.ok(ok, "hourly across a DST change (" .. iso(start):sub(1, 10) .. "): every 3600 s at a quarter past")
end

-- Time zones.
t.ok(schedule.check_zone("Europe/Amsterdam"), "an IANA zone is accepted")
t.ok(schedule.check_zone("UTC"), "UTC is accepted")
t.ok(not schedule.check_zone("Nowhere/Atlantis"), "an unknown zone is refused")
t.ok(not schedule.check_zone("../../etc/passwd"), "a path is refused")
t.ok(not schedule.check_zone("/etc/localtime"), "an absolute path is refused")

t.done()
