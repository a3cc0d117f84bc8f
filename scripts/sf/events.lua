-- sf.events: a run's structured events, one JSON object per line in the
-- --log-json stream (next to the log lines {"ts","level","msg"}), and the
-- budget part of the progress line. Every event has "ts" (UTC, ms),
-- "event" and, inside a run, "run" (its number in the history); the rest
-- depends on the event (README.md, "Structured events"):
--
--   run_start     job, kind, pid
--   object_start  object, stream
--   page          object, stream, records, deletions, rejects (this page), total_records
--                 (the stream's so far in this run), api_calls, job_used, org_used, org_max
--   object_end    object, stream, status, records, deletions, rejects, pages, api_calls
--   batch         (export) users, created, updated, failed (so far), api_calls
--   retry         method, path, reason, attempt, wait_s
--   budget_pause  message, resume_at
--   error         message
--   summary       the run's whole summary (the history line)
--   notify        channel ("command" | "webhook"), ok, detail
--
--   events.emit(name, fields)      fields: a table (copied; never holds a secret)
--   events.set_run(n)              the run number added to later events (nil: none)
--   events.budget(budget)          refreshes "API 8/5000 today, org 1,203/15,000" on the progress line
local log = require "sf.log"
local clock = require "sf.clock"

local M = {}

local run = nil

function M.set_run(n) run = n end

local function iso_ms(t)
  local secs = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", secs) .. string.format(".%03dZ", math.floor((t - secs) * 1000))
end

function M.emit(name, fields)
  local e = {}
  for k, v in pairs(fields or {}) do e[k] = v end
  e.ts, e.event, e.run = iso_ms(clock.now()), name, run
  log.write_json(e)
end

-- 1203 -> "1,203"
local function grouped(n)
  local s = tostring(math.floor(n))
  local sign, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end
M.grouped = grouped

-- The budget as the progress line shows it: the job's rolling 24 h against
-- max_daily_api_calls, and the org's usage as Salesforce last reported it.
function M.budget_text(budget)
  local used = (budget.counter and budget.now) and budget.counter:used(math.floor(budget.now())) or budget.run_calls or 0
  local parts = { "API " .. grouped(used) .. (budget.max_daily and ("/" .. grouped(budget.max_daily)) or "") .. " today" }
  if budget.org_used and budget.org_max then
    parts[#parts + 1] = "org " .. grouped(budget.org_used) .. "/" .. grouped(budget.org_max)
  end
  return table.concat(parts, ", ")
end

function M.budget(budget)
  log.progress("budget", M.budget_text(budget))
end

return M
