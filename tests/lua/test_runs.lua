-- The operator's view of runs: run logs rotate and stay bounded (sf.runlog),
-- run numbers continue from history and logs (sf.history), a notification's
-- payload is scrubbed of secrets (sf.notify), the budget text of the progress
-- line (sf.events), the history table (sf.history.text).
local t = require "tests.tap"
local fs = require "sf.fs"
local log = require "sf.log"
local runlog = require "sf.runlog"
local history = require "sf.history"
local notify = require "sf.notify"
local events = require "sf.events"
local limits = require "sf.limits"

local dir = t.tmpdir()

-- run logs: only the newest KEEP files stay ---------------------------------------------
do
  local keep = runlog.KEEP
  runlog.KEEP = 3
  for run = 1, 5 do
    local f = assert(runlog.open(dir, "job", run))
    f:line("run " .. run)
    f:close()
  end
  local runs = runlog.runs(dir, "job")
  t.eq(table.concat(runs, ","), "3,4,5", "opening a run's log removes all but the newest KEEP")
  t.eq(fs.read(runlog.path(dir, "job", 5)), "run 5\n", "a run's log holds its lines")
  runlog.KEEP = keep
end

-- run logs: a file stops at MAX_BYTES with a note -----------------------------------
do
  local max = runlog.MAX_BYTES
  runlog.MAX_BYTES = 100
  local f = assert(runlog.open(dir, "big", 1))
  for i = 1, 50 do f:line(string.format("line %02d of the run", i)) end
  f:close()
  local text = fs.read(runlog.path(dir, "big", 1))
  t.ok(#text < 100 + 120, "a run log is bounded by MAX_BYTES (plus the closing note)", tostring(#text))
  t.ok(text:find("this log stops at 100 bytes", 1, true) ~= nil, "a cut log says where it stopped")
  t.eq(select(2, text:gsub("this log stops", "")), 1, "the note is written once")
  runlog.MAX_BYTES = max
end

-- run numbers ------------------------------------------------------------------------
do
  t.eq(history.last_run(dir, "none"), 0, "no history: last run 0")
  assert(history.append(dir, "h", { run = 7, status = "done" }))
  assert(history.append(dir, "h", { run = 8, status = "failed", message = "x" }))
  local f = io.open(history.path(dir, "h"), "a")
  f:write('{"run": 9, "status": "do')   -- a run killed while appending
  f:close()
  t.eq(history.last_run(dir, "h"), 8, "the last run number skips a torn line")
  local runs, damaged = history.read(dir, "h")
  t.eq(#runs, 2, "read returns the whole lines")
  t.eq(damaged, 1, "and counts the damaged one")
  t.eq(#history.read(dir, "h", 1), 1, "limit keeps the newest")
  t.eq(history.read(dir, "h", 1)[1].run, 8, "the newest is last")
end

-- notification payload ----------------------------------------------------------------
do
  log.add_secret("s3cr3t-token-value")
  local p = notify.payload { status = "failed", message = "GET /x?token=s3cr3t-token-value failed" }
  t.ok(not p:find("s3cr3t-token-value", 1, true), "a secret in the summary never reaches the payload")
  t.ok(p:find("(redacted)", 1, true) ~= nil, "it is redacted")
  t.ok(notify.wanted({ on = "failure" }, { status = "failed" }), "on = failure: a failed run notifies")
  t.ok(not notify.wanted({ on = "failure" }, { status = "done" }), "on = failure: a good run does not")
  t.ok(not notify.wanted({ on = "failure" }, { status = "paused" }), "on = failure: a budget pause does not")
  t.ok(notify.wanted({ on = "always" }, { status = "done" }), "on = always: every run notifies")
  t.ok(not notify.wanted(nil, { status = "failed" }), "no notify: nothing")
end

-- budget text ----------------------------------------------------------------------------
do
  local c = limits.counter()
  c:add(1000000, 8)
  local b = { counter = c, now = function() return 1000000 end, max_daily = 5000, org_used = 1203, org_max = 15000 }
  t.eq(events.budget_text(b), "API 8/5,000 today, org 1,203/15,000", "the progress line's budget text")
  b.max_daily, b.org_used = nil, nil
  t.eq(events.budget_text(b), "API 8 today", "without a job budget or an org report")
  t.eq(events.grouped(1234567), "1,234,567", "thousands are grouped")
  t.eq(events.grouped(-1234), "-1,234", "negative numbers too")
  t.eq(events.grouped(999), "999", "small numbers as they are")
end

-- history table --------------------------------------------------------------------------
do
  local text = require("sf.history.text").render {
    { run = 1, started = "2024-05-01T03:00:02Z", duration_s = 12.34, status = "done", api_calls = 8, kind = "import",
      streams = { b = { records = 2, deletions = 0, rejects = 1 }, a = { records = 5, deletions = 1, rejects = 0 } } },
    { run = 2, started = "2024-05-02T03:00:02Z", duration_s = 1, status = "failed", api_calls = 1, kind = "export",
      created = 3, updated = 4, failed = 2, unique_profiles_exported = 6, message = "boom" },
  }
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  t.eq(#lines, 5, "header, two stream rows, the export row and its message")
  t.ok(lines[2]:find("^%s+1%s+2024%-05%-01 03:00:02%s+12%.3 s%s+done%s+8%s+%-%s+a%s+5%s+1%s+0$") ~= nil,
    "a run's first row: number, start, duration, status, calls, stream a (sorted) and its counters", lines[2])
  t.ok(lines[3]:find("^%s+b%s+2%s+0%s+1$") ~= nil, "the next stream on a row of its own", lines[3])
  t.ok(lines[4]:find("failed%s+1%s+6%s+export: created%+updated%s+7%s+%-%s+2$") ~= nil,
    "an export run: created+updated, failed as rejects, unique profiles", lines[4])
  t.eq(lines[5], "      boom", "the run's message under it")
end

t.done()
