-- sf.budget: the counting rule, reserve/refund, the job's rolling 24 h
-- window, the org's share and 403 pause, the budget file (private and
-- shared), damaged files. Time is a fake clock throughout.
local t = require "tests.tap"
local budget = require "sf.budget"
local limits = require "sf.limits"
local fs = require "sf.fs"

local T0 = 1700000000 - 1700000000 % 60 -- a minute boundary
local now = T0
local function clk() return now end

-- The counting rule, one row per outcome: {what, resp, err, code, counted}.
local rows = {
  { "200", { status = 200 }, nil, nil, true },
  { "201 created", { status = 201 }, nil, nil, true },
  { "304 not modified", { status = 304 }, nil, nil, true },
  { "400 MALFORMED_QUERY", { status = 400 }, nil, nil, true },
  { "400 INVALID_QUERY_LOCATOR", { status = 400 }, nil, nil, true },
  { "404 NOT_FOUND", { status = 404 }, nil, nil, true },
  { "401 INVALID_SESSION_ID", { status = 401 }, nil, nil, false },
  { "403 REQUEST_LIMIT_EXCEEDED", { status = 403 }, nil, nil, false },
  { "414 URI too long", { status = 414 }, nil, nil, false },
  { "500", { status = 500 }, nil, nil, false },
  { "502", { status = 502 }, nil, nil, false },
  { "503", { status = 503 }, nil, nil, false },
  { "dropped connection", nil, "Empty reply from server", "RECV", false },
  { "connection reset", nil, "Recv failure: Connection reset by peer", "RECV", false },
  { "reply cut off", nil, "transfer closed with 120 bytes remaining to read", "RECV", true },
  { "connect refused", nil, "Failed to connect", "CONNECT", false },
  { "send failed", nil, "Send failure", "SEND", false },
  { "timeout", nil, "Operation timed out", "TIMEOUT", true },
  { "too large", nil, "too large", "TOO_LARGE", true },
}
for _, r in ipairs(rows) do
  t.eq(budget.counted(r[2], r[3], r[4]), r[5], "counting rule: " .. r[1] .. (r[5] and " is counted" or " is not counted"))
end

-- subtract: a refund edits the right minute and keeps the dump canonical.
do
  local c = limits.counter()
  c:add(T0, 3)
  c:add(T0 + 120, 2)
  local c2 = budget.subtract(c, T0, 1)
  t.eq(c2:used(T0 + 120), 4, "subtract removes one call")
  t.eq(c2:dump(), ("c1:%d:0=2:2=2"):format(T0 // 60 + 2), "subtract edits the minute of the reservation")
  local c3 = budget.subtract(budget.subtract(c2, T0, 2), T0 + 120, 2)
  t.eq(c3:used(T0 + 120), 0, "subtracting everything leaves zero")
  t.ok(limits.counter(c3:dump()) ~= nil, "the edited dump is valid")
  t.eq(budget.subtract(c, T0 - 2 * 86400, 1):used(T0 + 120), 5, "a reservation older than the window changes nothing")
end

-- Job budget in memory: reserve, refuse, refund.
do
  now = T0 + 30
  local b = budget.new { max_daily = 3, now = clk }
  local t1 = b:admit(1)
  local t2 = b:admit(1)
  local t3 = b:admit(1)
  t.ok(t1 and t2 and t3, "three calls fit a budget of three")
  local x, msg, code, resume, which = b:admit(1)
  t.ok(x == nil and code == "BUDGET" and which == "job", "the fourth is refused by the job budget", tostring(msg))
  t.eq(resume, T0 + 86400, "it resumes when the oldest minute leaves the 24 h window")
  t.ok(msg:match("^paused: job budget reached %(max_daily_api_calls = 3 per 24 h%), resumes at 2023%-11%-15T22:13:00Z$") ~= nil,
    "the message says which budget and when it resumes", msg)
  t.eq(b.run_calls, 3, "run_calls counts the reservations")
  b:refund(t2)
  b:refund(t2)
  t.eq(b.run_calls, 2, "a refund gives one call back, once")
  t.ok(b:admit(1) ~= nil, "a refunded call can be spent again")
  now = T0 + 86400
  t.ok(b:admit(1) ~= nil, "after 24 h the window has room again")
  t.eq(b:used(), 1, "used() counts the current window")
end

-- Org share from Sforce-Limit-Info, then a probe after the recheck time.
do
  now = T0
  local b = budget.new { org_share = 0.8, now = clk }
  t.ok(b:admit(1) ~= nil, "with no usage seen yet, the first call goes")
  b:observe { ["sforce-limit-info"] = "api-usage=79/100" }
  t.ok(b:admit(1) ~= nil, "79 of 100 used: one more fits the 80% share")
  b:observe { ["sforce-limit-info"] = "api-usage=80/100" }
  local x, msg, code, resume, which = b:admit(1)
  t.ok(x == nil and code == "BUDGET" and which == "org_share", "80 of 100 used: the 80% share refuses", tostring(msg))
  t.eq(resume, T0 + budget.ORG_RECHECK, "the share is checked again an hour later")
  t.ok(msg:find("paused: the job's share of the org's API limit was reached (80 of 100 calls used, share 80%)", 1, true) ~= nil, "the share message", msg)
  now = T0 + 1800
  t.eq(select(5, b:admit(1)), "org_share", "still refused before the recheck time")
  t.eq(b:pause_state().which, "org_share", "the pause is kept for the job state")
  now = T0 + budget.ORG_RECHECK
  t.ok(b:admit(1) ~= nil, "at the recheck time one call looks at the usage again")
  b:observe { ["sforce-limit-info"] = "junk" }
  t.eq(b.org_used, nil, "a junk header changes nothing")
  b:observe { ["sforce-limit-info"] = "api-usage=40/100" }
  t.ok(b:admit(1) ~= nil and b.org_used == 41, "the probe's answer is the new usage, plus the call in flight")
end

-- 403 REQUEST_LIMIT_EXCEEDED: 24 h, carried across processes in the state.
do
  now = T0
  local b = budget.new { now = clk }
  local until_t = b:org_exhausted()
  t.eq(until_t, T0 + 86400, "REQUEST_LIMIT_EXCEEDED pauses for Salesforce's 24 h window")
  local x, msg, _, resume, which = b:admit(1)
  t.ok(x == nil and which == "org" and resume == until_t, "calls are refused during the org pause", tostring(msg))
  t.ok(msg:find("paused: Salesforce's API limit for the org was reached", 1, true) == 1, "the org message", msg)
  local saved = b:pause_state()
  local b2 = budget.new { now = clk, org_pause = saved }
  t.eq(select(5, b2:admit(1)), "org", "a new process keeps the pause from the state")
  now = T0 + 86400
  t.ok(b2:admit(1) ~= nil, "after 24 h calls go again")
  t.eq(b2:pause_state(), nil, "and no pause is left to save")
end

-- Budget files: the reservation is on disk before the call is sent.
local dir = t.tmpdir()
do
  now = T0 + 30
  local file = dir .. "/job.budget"
  local b = budget.new { max_daily = 5, now = clk, file = file }
  local tk = b:admit(1)
  t.eq(limits.counter(fs.read(file)):used(now), 1, "a private budget file holds the reservation after admit")
  b:refund(tk)
  t.eq(limits.counter(fs.read(file)):used(now), 0, "and loses it after a refund")
  b:admit(2)
  local b2 = budget.new { max_daily = 5, now = clk, file = file, saved = "c1:0" }
  t.eq(b2:used(), 2, "a new process reads the file, not the state's older copy")
  t.eq(b2:dump(), fs.read(file), "dump() is the state's copy of the counter")
  -- Seeding from the state when the file does not exist yet.
  local seeded = limits.counter()
  seeded:add(now, 4)
  local b3 = budget.new { max_daily = 5, now = clk, file = dir .. "/other.budget", saved = seeded:dump() }
  t.ok(b3:admit(1) ~= nil and b3:admit(1) == nil, "without a file, the state's counter seeds it")
  -- Two budgets on one shared file never admit more than the maximum together.
  local shared = dir .. "/shared.budget"
  local a = budget.new { max_daily = 7, now = clk, shared_file = shared, file = dir .. "/a.budget" }
  local c = budget.new { max_daily = 7, now = clk, shared_file = shared, file = dir .. "/c.budget" }
  local got = 0
  for i = 1, 10 do
    if (i % 2 == 0 and a or c):admit(1) then got = got + 1 end
  end
  t.eq(got, 7, "two jobs on one shared budget file admit 7 of 10 together")
  t.eq(a.run_calls + c.run_calls, 7, "their run counts add up to the file's count")
  t.eq(a:dump(), nil, "a shared budget is not copied into the job state")
  t.ok(not fs.exists(dir .. "/a.budget"), "with a shared budget no private file is written")
  -- A damaged file counts as spent for a day, never as zero.
  local damaged = dir .. "/damaged.budget"
  assert(fs.write_atomic(damaged, "c1:junk"))
  local warned
  local d = budget.new { max_daily = 5, now = clk, file = damaged, warn = function(m) warned = m end }
  local x, _, _, resume = d:admit(1)
  t.ok(x == nil and resume == now - now % 60 + 86400, "a damaged budget file counts the whole day as spent")
  t.ok(warned and warned:find("unreadable", 1, true) ~= nil, "and says so", tostring(warned))
  local bad = budget.new { max_daily = 5, now = clk, saved = "c1:junk" }
  t.ok(bad:admit(1) == nil and bad.warning ~= nil, "a damaged counter in the state counts as spent too")
end
t.done()
