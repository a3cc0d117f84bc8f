-- The import job: Salesforce objects -> named streams of NDJSON, incremental
-- and exactly once.
--
-- Per object (sf.import.plan): one describe (to drop default-mapping fields
-- the org does not have) and the mapping compiled against it; then either
-- REST query pages (sf.import.rest) ordered by (timestamp field, Id) from the
-- saved cursor, or a Bulk API 2.0 query job (sf.import.bulk). Each page is
-- mapped in C (sf.page + sf.mapper) and committed by sf.import.sink: stream
-- and rejects file appended and fsynced, then the state (cursor + output
-- lengths) replaced atomically. A kill at any moment loses at most the page in
-- flight: the next run cuts the files back to the checkpointed lengths and
-- asks again from the cursor. --estimate runs sf.import.estimate instead.
local clock = require "sf.clock"
local jobs = require "sf.jobs"
local plan = require "sf.import.plan"
local sink_mod = require "sf.import.sink"
local rest = require "sf.import.rest"
local bulk = require "sf.import.bulk"
local events = require "sf.events"
local failure = require "sf.import.failure"

local M = {}

M.schema = plan.schema

local function iso_now(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

local function progress(job, item, st)
  local elapsed = clock.monotonic() - st.started
  local rate = elapsed > 0 and st.records / elapsed or 0
  local eta = ""
  if st.total and st.total > 0 and rate > 0 then
    eta = string.format(", ETA %ds", math.max(0, math.floor((st.total - st.records - st.deleted) / rate)))
  end
  job.log.progress(item.object, string.format("%s: %d%s records, %d pages, %d API calls, %.0f rec/s%s",
    item.object, st.records + st.deleted, st.total and ("/" .. st.total) or "", st.pages, job.budget.run_calls, rate, eta))
end

-- One object through a Bulk API 2.0 query job from the saved cursor. Returns
-- status, message, resume_at; nil when Salesforce failed the job in auto mode
-- (nothing was written: the caller goes on with REST from the cursor).
local function run_bulk(job, item, o, sink)
  local status, message, resume_at = bulk.run_object(job, item, {
    select = o.compiled.select, soql = plan.query(job, item, o), columns = bulk.columns(o.compiled.select, o.describe),
    mp = o.mp, sink = sink, all = job.recipe.deletions,
    max_records = job.recipe.bulk_max_records, max_wait = job.recipe.bulk_max_wait,
    concurrency = job.recipe.concurrency,
    progress = function() progress(job, item, sink.st) end,
  })
  if status == "failed" then
    if item.mode == "bulk" then sink:close(); error(message, 0) end
    job.log.warn("%s; going on with REST", message)
    return nil
  end
  return status, message, resume_at
end

-- Pages of one planned object into its sink: Bulk always in mode "bulk" and
-- to resume a saved Bulk job; otherwise REST, which in mode "auto" switches
-- to Bulk after the first page when its totalSize says enough is due.
local function fetch(job, item, o, sink)
  local bulk_ok, why = bulk.eligible(o.compiled.select, o.describe)
  if item.mode == "bulk" and not bulk_ok then
    job.log.warn("%s: Bulk API 2.0 cannot run this query (%s); using REST", item.object, why)
  end
  local auto = item.mode == "auto" and bulk_ok and not bulk.recently_failed(job, item.object)
  if bulk_ok and item.mode ~= "rest" and (item.mode == "bulk" or bulk.pending(job, item.object)) then
    local status, message, resume_at = run_bulk(job, item, o, sink)
    if status then return status, message, resume_at end
    auto = false
  end
  bulk.forget(job, item.object)   -- REST moves the cursor: a saved Bulk locator no longer applies
  return rest.run(job, item, o, sink, {
    progress = function() progress(job, item, sink.st) end,
    bulk = auto and function() return run_bulk(job, item, o, sink) end or nil,
  })
end

-- Imports one object. Returns "done", or "paused"/"stopped" with a message.
local function run_object(job, item)
  local o, status, message, resume_at = plan.object(job, item)
  if not o then return status, message, resume_at end
  local st = job.stats[item.stream] or { records = 0, deleted = 0, rejected = 0, pages = 0 }
  job.stats[item.stream] = st
  st.started = clock.monotonic()
  local calls = job.budget.run_calls
  events.emit("object_start", { object = item.object, stream = item.stream })
  local sink = sink_mod.open(job, item, st)
  local ok
  ok, status, message, resume_at = pcall(fetch, job, item, o, sink)
  sink:close()
  job.log.progress(item.object, nil)
  if not ok then error(status, 0) end
  events.emit("object_end", { object = item.object, stream = item.stream, status = status, records = st.records,
    deletions = st.deleted, rejects = st.rejected, pages = st.pages, api_calls = job.budget.run_calls - calls })
  return status, message, resume_at
end

-- The run's summary (the history line): also of a run that failed part
-- way, with what was committed until then. sf.runs adds run, started,
-- duration_s and budget.
local function summarize(job, status, message)
  local summary = {
    job = job.recipe.name, kind = "import", status = status, message = message, api_calls = job.budget.run_calls,
    logins = job.client.logins, retries = job.client.retries, streams = {},
  }
  for _, item in ipairs(job.plan) do
    local st = (job.stats or {})[item.stream]
    if st then
      summary.streams[item.stream] = { records = st.records, deletions = st.deleted, rejects = st.rejected, pages = st.pages }
    end
  end
  return failure.summarize(job, summary)
end

-- One pass over every planned object (an object's own failure does not end
-- it: sf.import.failure). Returns status ("done", "failed", "invalid",
-- "paused", "stopped"), message, resume_at.
function M.run_once(job)
  job.now_iso = iso_now(clock.now())
  job.stats = {}
  job.rejects = jobs.open_output(job, "rejects.ndjson")
  job.failures = {}
  local status, message, resume_at = "done", nil, nil
  for _, item in ipairs(job.plan) do
    status, message, resume_at = failure.run(job, item, run_object)
    if status ~= "done" and status ~= "failed" then break end   -- a budget pause or a stop ends the run
  end
  job.rejects:close()
  job.state:set("budget", job.budget:dump())
  job.state:set("runs", (job.state:get("runs") or 0) + 1)
  job.state:checkpoint()
  status, message = failure.status(job, status, message)
  job.summary = summarize(job, status == "invalid" and "failed" or status, message)
  return status, message, resume_at
end

function M.run(r, ctx)
  local job = jobs.setup(r, ctx, plan.schema)
  job.plan = plan.items(job)
  job.summarize = summarize
  if ctx.opts.estimate then return require("sf.import.estimate").run(job) end
  return jobs.loop(job, M.run_once)
end

return M
