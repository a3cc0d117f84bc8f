-- sf.runs: the life of one run, the same for import and export (called by
-- jobs.loop around the job's run_once):
--
--   runs.start(job)
--     the run's number (one more than any in the history or the run logs),
--     its own log file (sf.runlog), the run_start event, the budget on the
--     progress line. A dry run gets no number and no log file.
--   runs.finish(job, summary, resume_at)
--     completes the summary (run, started, duration_s, budget, log), takes
--     the progress line off the terminal, prints the summary (stdout; stderr
--     for a dry run, whose stdout is the plan), copies it into the run's log,
--     emits budget_pause / error and summary events, appends the history
--     line (not for a dry run) and notifies (sf.notify).
--   runs.failed(job, err) -> summary of a run that raised: the job's own
--     summary of what it committed (job.summarize) with status "failed".
local clock = require "sf.clock"
local log = require "sf.log"
local recipe = require "sf.recipe"
local events = require "sf.events"
local history = require "sf.history"
local runlog = require "sf.runlog"
local notify = require "sf.notify"
local tables = require "sf.tables"

local M = {}

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

function M.start(job)
  local name, dir = job.recipe.name, job.state_dir
  local run = { started_wall = clock.now(), started = clock.monotonic() }
  job.run = run
  if not job.dry then
    local logs = runlog.runs(dir, name)
    run.number = math.max(history.last_run(dir, name), logs[#logs] or 0) + 1
    local f, err = runlog.open(dir, name, run.number)
    if f then
      run.log = f
      log.set_sink(function(_, line) f:line(line) end)
    else
      job.log.warn("run log: %s (this run logs to stderr only)", tostring(err))
    end
  end
  events.set_run(run.number)
  events.emit("run_start", { job = name, kind = job.recipe.job, dry_run = job.dry or nil })
  events.budget(job.budget)
end

-- The summary's lines as printed: one headline, one line per stream, the
-- job's own extra lines.
function M.summary_lines(s)
  local lines = { string.format("%s %s: %s in %.1f s, %d API calls%s", s.kind, s.job, s.status,
    s.duration_s or 0, s.api_calls or 0, s.message and (" (" .. s.message .. ")") or "") }
  for _, name in ipairs(tables.sorted_keys(s.streams or {})) do
    local st = s.streams[name]
    lines[#lines + 1] = string.format("  %-28s %9d records %7d deletions %7d rejects", name, st.records or 0,
      st.deletions or 0, st.rejects or 0)
  end
  for _, extra in ipairs(s.lines or {}) do lines[#lines + 1] = "  " .. extra end
  if s.budget then lines[#lines + 1] = "  budget: " .. s.budget.text end
  return lines
end

local function budget_snapshot(b)
  return {
    job_used = (b.counter and b.now) and b.counter:used(math.floor(b.now())) or nil, job_max = b.max_daily,
    org_used = b.org_used, org_max = b.org_max, text = events.budget_text(b),
  }
end

function M.finish(job, summary, resume_at)
  local run = job.run or { started_wall = clock.now(), started = clock.monotonic() }
  summary.run = run.number
  summary.started = iso(run.started_wall)
  summary.duration_s = math.floor((clock.monotonic() - run.started) * 1000 + 0.5) / 1000
  summary.budget = budget_snapshot(job.budget)
  if run.log then summary.log = runlog.path(job.state_dir, job.recipe.name, run.number) end

  log.reset_progress()
  local text = table.concat(M.summary_lines(summary), "\n") .. "\n"
  local out = summary.dry_run and io.stderr or io.stdout
  out:write(log.scrub(text))
  out:flush()
  if run.log then
    for line in text:gmatch("[^\n]+") do run.log:line(log.scrub(line)) end
  end

  if summary.status == "paused" then
    events.emit("budget_pause", { message = summary.message, resume_at = resume_at and iso(resume_at) or nil })
  elseif summary.status == "failed" then
    events.emit("error", { message = summary.message })
  end
  events.emit("summary", summary)
  if not summary.dry_run then
    local ok, err = history.append(job.state_dir, job.recipe.name, summary)
    if not ok then job.log.warn("run history %s: %s", history.path(job.state_dir, job.recipe.name), tostring(err)) end
  end
  notify.send(job.recipe.notify, summary, job.ctx and job.ctx.dir)

  log.set_sink(nil)
  if run.log then run.log:close() end
  events.set_run(nil)
  job.run = nil
end

function M.failed(job, err)
  local msg = recipe.is_error(err) and err.message or tostring(err)
  local s
  if job.summarize then
    local ok, res = pcall(job.summarize, job, "failed", msg)
    if ok and type(res) == "table" then s = res end
  end
  s = s or { job = job.recipe.name, kind = job.recipe.job }
  s.status, s.message = "failed", msg
  s.api_calls = s.api_calls or job.budget.run_calls
  s.logins = s.logins or (job.client and job.client.logins)
  s.retries = s.retries or (job.client and job.client.retries)
  return s
end

return M
