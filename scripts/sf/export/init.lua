-- The export job: user profiles (NDJSON) or Segment identify/group events ->
-- Salesforce records, backfill then real time, with as few API calls as the
-- API allows.
--
-- A run reads the input (a file, then optionally stdin followed as a stream;
-- line format in sf.export.profiles), keeps the users that pass the recipe's filters
-- (consent objectives, audiences, the trigger store) and flushes them in
-- micro-batches:
--   * match field is an external ID (and creating is allowed): one sObject
--     Collections upsert per 200 records (PATCH /composite/sobjects/<Obj>/<Field>,
--     allOrNone=false, safe to retry);
--   * any other match field(s): ONE escaped SOQL `IN (...)` query per up to 200
--     users finds the existing records, then Collections update
--     (PATCH /composite/sobjects) for matches and create (POST /composite/sobjects)
--     for the rest, 200 records per call. A create whose response was lost is
--     never re-sent blindly: the batch's match values are looked up again and
--     only the records still missing are created.
-- Per-record failures go to <output>/export-rejects.ndjson; only UNABLE_TO_LOCK_ROW /
-- SERVER_UNAVAILABLE records are retried. After Salesforce confirmed a user's
-- writes, its trigger hash goes to the store (SQLite, <state_dir>/<name>.store.sqlite):
-- a user is sent again only when its trigger fields or exported audiences
-- changed. After each flushed batch the input offset is checkpointed, so a
-- rerun resumes after the last confirmed batch.
--
-- The rooms of the job, in the order a record passes them:
--   schema.lua   the recipe (keys, defaults)       plan.lua     targets vs describe
--   input.lua    lines, micro-batches, checkpoint  profiles.lua / segment.lua  line -> user
--   record.lua   user -> record (type rules: typerules.lua, trigger hash: hash.lua)
--   writer.lua   upserts, updates, creates (lookups: lookup.lua)
--   results.lua  per-record answers, rejects file, trigger store
--
-- API calls: an upsert recipe costs ceil(users / 200) calls; a lookup recipe
-- one query per 200 users plus ceil(updates / 200) + ceil(creates / 200) per
-- round of 1,000 users (10 per 1,000 when all are new or all exist, 11 at
-- worst); plus one describe per object every describe_cache_s. Users skipped
-- after a lookup (nothing to update, not creatable) are remembered in the
-- store like sent ones, so an unchanged input costs no call at all.
--
-- Exit codes (sf.jobs): 0 done (also a followed stdin stopped by SIGTERM),
-- 1 failed, 2 recipe error (including fields Salesforce requires that are not
-- mapped, before any write), 3 paused by the API budget (rerun to resume).
local fs = require "sf.fs"
local signal = require "sf.signal"
local store_mod = require "sf.store"
local jobs = require "sf.jobs"
local tables = require "sf.tables"
local schema = require "sf.export.schema"
local plan = require "sf.export.plan"
local input = require "sf.export.input"
local results = require "sf.export.results"
local abort = require "sf.export.abort"

local M = {}

M.schema = schema.schema

local function summary_lines(job, st)
  local lines = {}
  lines[#lines + 1] = string.format("lines read %d, users %d", st.lines, st.users)
  if job.dry then
    lines[#lines + 1] = string.format("would create %d, would update %d, would fail %d, unique profiles %d",
      st.created, st.updated, st.failed, st.unique_exported)
  else
    lines[#lines + 1] = string.format("created %d, updated %d, failed %d, unique profiles exported %d",
      st.created, st.updated, st.failed, st.unique_exported)
  end
  local reasons = tables.sorted_keys(st.skipped)
  if #reasons > 0 then
    local parts = {}
    for _, k in ipairs(reasons) do parts[#parts + 1] = k .. " " .. st.skipped[k] end
    lines[#lines + 1] = "skipped: " .. table.concat(parts, ", ")
  end
  if st.field_skips > 0 then
    lines[#lines + 1] = string.format("field values skipped (type rules, unknown fields): %d (see rejects)", st.field_skips)
  end
  if st.profiles_in_store then
    lines[#lines + 1] = string.format("profiles in the trigger store: %d", st.profiles_in_store)
  end
  if job.dry then lines[#lines + 1] = "dry run: nothing was written to Salesforce (the plan is on stdout, one JSON line per write)" end
  return lines
end

-- Describes and checks the targets, then reads every input. Returns status,
-- message, resume_at; an abort (sf.export.abort) deep inside ends it too.
local function run_inputs(job)
  plan.check(job)
  for _, src in ipairs(input.sources(job)) do
    if input.read(job, src) == "stopped" then
      return src.follow and "done" or "stopped", "stopped by SIG" .. tostring(signal.pending())
    end
  end
  return "done"
end

-- The run's summary (the history line): also of a run that failed part
-- way, with what was confirmed until then. sf.runs adds run, started,
-- duration_s and budget.
local function summarize(job, status, message)
  local st = job.stats
  if st.profiles_in_store == nil then st.profiles_in_store = job.store:count() end
  local summary = {
    job = job.recipe.name, kind = "export", status = status, message = message, api_calls = job.budget.run_calls,
    logins = job.client.logins, retries = job.client.retries, dry_run = job.dry or nil,
    lines_read = st.lines, users_read = st.users, skipped = st.skipped, created = st.created, updated = st.updated,
    failed = st.failed, failed_users = st.failed_users, unique_profiles_exported = st.unique_exported,
    field_values_skipped = st.field_skips, profiles_in_store = st.profiles_in_store, batches = st.batches,
    lost_create_responses = st.lost_creates,
  }
  if next(summary.skipped) == nil then summary.skipped = nil end
  summary.lines = summary_lines(job, st)
  return summary
end

function M.run_once(job)
  job.stats = {
    lines = 0, users = 0, created = 0, updated = 0, failed = 0, failed_users = 0, unique_exported = 0,
    skipped = {}, field_skips = 0, superseded = 0, batches = 0, lost_creates = 0,
  }
  job.exported, job.confirmed, job.pending, job.pending_by_key, job.pending_since = {}, {}, {}, {}, nil
  if not job.dry then job.rejects = jobs.open_output(job, results.FILE) end
  local ok, status, message, resume_at = pcall(run_inputs, job)
  if not ok then
    local e = status
    if not abort.caught(e) then
      if job.reader then job.reader:close() end
      error(e, 0)
    end
    status, message, resume_at = e.status, e.message, e.resume_at
    job.pending = {}
    if job.reader then job.reader:close(); job.reader = nil end
  end
  if not job.dry then
    job.rejects:sync()
    job.rejects:close()
  end
  job.state:set("budget", job.budget:dump())
  job.state:set("runs", (job.state:get("runs") or 0) + 1)
  job.state:checkpoint()
  job.stats.profiles_in_store = job.store:count()
  job.summary = summarize(job, status, message)
  return status, message, resume_at
end

function M.run(r, ctx)
  local job = jobs.setup(r, ctx, schema.schema)
  job.summarize = summarize
  local rec = job.recipe
  job.dry = ctx.opts.dry_run and true or false
  job.client.timeout_ms = math.floor(rec.request_timeout_s * 1000)
  job.lost_wait_s = math.min(5, rec.request_timeout_s)
  if not job.out_dir then
    job.out_dir = jobs.resolve(ctx.dir, rec.output)
    fs.mkdir_p(job.out_dir)
  end
  plan.targets(job)   -- recipe errors before any call
  local store_path = job.state_dir .. "/" .. rec.name .. ".store.sqlite"
  local st, serr = store_mod.open(store_path)
  if not st then error("trigger store " .. store_path .. ": " .. tostring(serr), 0) end
  job.store = st
  local ok, res = pcall(jobs.loop, job, M.run_once)
  st:close()
  if not ok then error(res, 0) end
  return res
end

return M
