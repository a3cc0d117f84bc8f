-- Keep-updated schedules: when the next run starts.
--
--   every = "1h" | "24h" | "7d"; optional time_of_day "HH:MM" and IANA
--   time_zone for daily and weekly runs (weekday for weekly ones).
-- Without a time of day the next run starts one period after the previous
-- one finished, as the product documents describe; with one, at the next
-- such wall-clock time in the zone (daylight-saving changes included).
local clock = require "sf.clock"
local fs = require "sf.fs"

local M = {}

M.PERIOD = { ["1h"] = 3600, ["24h"] = 86400, ["7d"] = 7 * 86400 }
local WEEKDAY = { sunday = 1, monday = 2, tuesday = 3, wednesday = 4, thursday = 5, friday = 6, saturday = 7 }

function M.check_zone(zone)
  if zone == "UTC" then return true end
  if zone:find("..", 1, true) or zone:sub(1, 1) == "/" then return nil, "not an IANA time zone: " .. zone end
  if not fs.exists("/usr/share/zoneinfo/" .. zone) then
    return nil, "unknown time zone '" .. zone .. "' (an IANA name such as Europe/Amsterdam)"
  end
  return true
end

-- The first start strictly after `after` (epoch seconds).
function M.next_run(cfg, after)
  local period = assert(M.PERIOD[cfg.every], "schedule: unknown period")
  if not cfg.time_of_day then return after + period end
  local hh, mm = cfg.time_of_day:match("^(%d%d):(%d%d)$")
  hh, mm = tonumber(hh), tonumber(mm)
  local zone = cfg.time_zone or "UTC"
  local lt = clock.to_local(after, zone)
  if cfg.every == "1h" then
    -- Hourly: the minute past each hour.
    local t = clock.from_local(zone, { year = lt.year, month = lt.month, day = lt.day, hour = lt.hour, min = mm })
    while t <= after do t = t + 3600 end
    return t
  end
  local days_ahead = 0
  if cfg.every == "7d" then
    local target = WEEKDAY[cfg.weekday or "monday"]
    days_ahead = (target - lt.wday) % 7
  end
  local step = cfg.every == "7d" and 7 or 1
  for _ = 1, 3 do
    local t = clock.from_local(zone, { year = lt.year, month = lt.month, day = lt.day + days_ahead, hour = hh, min = mm })
    if t > after then return t end
    days_ahead = days_ahead + step
  end
  error("schedule: no next run found")
end

return M
