-- What import and export jobs share: the recipe parts common to both (auth,
-- schedule), setting up client, budget and state, the
-- one-shot / keep-updated loop and the run summary.
--
-- Exit codes (M.EXIT): 0 done; 1 failed; 2 usage or recipe error; 3 paused by
-- an API budget (one-shot: the state is checkpointed, run again after the
-- time the "paused: ..., resumes at ..." line gives; an earlier start exits 3
-- again without a call); 4 stopped by SIGTERM/SIGINT in a one-shot run (state
-- checkpointed, the next start resumes). With --keep-updated a budget pause
-- sleeps until the window frees and SIGTERM/SIGINT end the process with 0.
--
-- Developer settings (tests only, not in --help):
--   SFENGINE_MAX_RUNS=N       --keep-updated returns after N runs (exit code of the last)
--   SFENGINE_CLOCK_OFFSET=S   the job's clock (budget windows, pauses, schedule) runs
--                             S seconds ahead of the system clock, to follow an
--                             emulator whose clock was advanced
local recipe = require "sf.recipe"
local S = recipe.schema
local fs = require "sf.fs"
local clock = require "sf.clock"
local signal = require "sf.signal"
local sandbox = require "sf.sandbox"
local client_mod = require "sf.client"
local budget_mod = require "sf.budget"
local flight = require "sf.flight"
local state_mod = require "sf.state"
local schedule = require "sf.schedule"
local runs = require "sf.runs"
local credentials = require "sf.credentials"
local cjson = require "cjson.safe"

local M = {}

-- invalid: the run went on with the other objects, but one failed on its
-- recipe (a field it names that the org no longer has): exit 2.
M.EXIT = { done = 0, failed = 1, usage = 2, invalid = 2, paused = 3, stopped = 4 }

-- The recipe's `auth` table (sf.credentials: flows, environment conventions).
M.auth_schema = credentials.schema

-- API calls in flight at once (sf.flight): export Collections batches,
-- import key ranges, the next Bulk results page. 1 is strictly sequential.
M.concurrency_schema = S.integer { min = 1, max = flight.MAX, default = flight.DEFAULT,
  doc = "API calls in flight at once (Salesforce refuses more than 25 long-running ones per org)" }
-- Request bodies (Collections writes, Bulk job specs) go gzip-compressed.
M.compress_schema = S.boolean { default = true, doc = "send request bodies gzip-compressed (Content-Encoding: gzip)" }

M.schedule_schema = S.record {
  every = S.string { required = true, enum = { "1h", "24h", "7d" } },
  time_of_day = S.string { pattern = "^%d%d:%d%d$", doc = "a time HH:MM such as 03:00" },
  time_zone = S.string { pattern = "^[%w_%-+/]+$", default = "UTC", doc = "an IANA time zone such as Europe/Amsterdam or UTC" },
  weekday = S.string { enum = { "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday" } },
}

-- The job's clock: the system clock, plus SFENGINE_CLOCK_OFFSET in tests.
local offset = tonumber(os.getenv("SFENGINE_CLOCK_OFFSET") or "") or 0
function M.now() return clock.now() + offset end

local function resolve(dir, path)
  if path:sub(1, 1) == "/" then return path end
  return dir .. "/" .. path
end
M.resolve = resolve

-- Where a job keeps its state, history and run logs: --state-dir, else the
-- recipe's state_dir (relative to the recipe), else .sfengine/ next to it.
function M.state_dir(opts, state_dir, dir)
  return opts.state_dir or (state_dir and resolve(dir, state_dir)) or (dir .. "/.sfengine")
end

-- The API version, as the Salesforce CLI takes it: --api-version, else
-- SF_ORG_API_VERSION, else the recipe's api_version (default 62.0). A
-- malformed one is a usage error naming where it came from.
function M.api_version(opts, from_recipe)
  local v, where = opts.api_version, "--api-version"
  if not v then v, where = os.getenv("SF_ORG_API_VERSION"), "SF_ORG_API_VERSION" end
  if not v or v == "" then return from_recipe end
  local n = v:match("^v?(%d+%.%d)$") or v:match("^v?(%d+)$") and (v:match("%d+") .. ".0")
  if not n then
    error(recipe.error(where .. ": not an API version: " .. v .. " (e.g. 62.0)"), 0)
  end
  return n
end

-- Validates the recipe and builds the job: client, budget, state, outputs
-- (setup.outputs = false: no output directory, for commands that only read).
function M.setup(r, ctx, schema, setup)
  local rec = recipe.validate(r, schema, ctx)
  local opts = ctx.opts or {}
  rec.api_version = M.api_version(opts, rec.api_version)
  local job = { recipe = rec, ctx = ctx, opts = opts, log = ctx.log }
  local ku = rec.keep_updated
  if ku and ku.time_zone then
    local ok, err = schedule.check_zone(ku.time_zone)
    if not ok then error(recipe.error_at(ctx, "keep_updated.time_zone", err), 0) end
  end
  if ku and ku.time_of_day then
    local hh, mm = ku.time_of_day:match("^(%d%d):(%d%d)$")
    if tonumber(hh) > 23 or tonumber(mm) > 59 then
      error(recipe.error_at(ctx, "keep_updated.time_of_day", "must be a time HH:MM from 00:00 to 23:59 (got " .. ku.time_of_day .. ")"), 0)
    end
  end
  if ku and ku.weekday and ku.every ~= "7d" then
    error(recipe.error_at(ctx, "keep_updated.weekday", 'only applies to weekly runs (every = "7d")'), 0)
  end
  if offset ~= 0 then
    job.log.warn("SFENGINE_CLOCK_OFFSET is set: the job's clock runs %g s ahead of the system clock (for tests only)", offset)
  end
  job.reveal = sandbox.reveal
  job.call = function(fn, ...) return sandbox.call_callback(fn, ...) end
  job.reveal_custom = function(c) return c end

  -- No auth table: the credentials come from the environment, as the
  -- Salesforce CLI takes them. Every missing item is reported at once.
  local from_env = false
  if rec.auth == nil then
    rec.auth = recipe.validate(credentials.from_env(nil, sandbox.secret), credentials.schema,
      { path = ctx.path, source = ctx.source, keys = { "auth" } })
    from_env = "implicit"
  end
  credentials.prepare(rec.auth, ctx, from_env)
  -- Secrets from files: read under the recipe's directory, as secrets.
  local a = rec.auth
  if a.private_key_file and not a.private_key then
    local pem, err = sandbox.read_secret_file(ctx.dir, a.private_key_file)
    if not pem then error(recipe.error_at(ctx, "auth.private_key_file", err), 0) end
    a.private_key = pem
  end

  job.state_dir = M.state_dir(opts, rec.state_dir, ctx.dir)
  local state, serr = state_mod.open(job.state_dir, rec.name)
  if not state then error(serr, 0) end
  job.state = state
  if rec.output and not (setup and setup.outputs == false) then
    job.out_dir = resolve(ctx.dir, rec.output)
    local ok, err = fs.mkdir_p(job.out_dir)
    if not ok then
      -- sf.fs names the path that failed: say it once, then what to do
      err = tostring(err)
      if err:sub(1, #job.out_dir + 2) == job.out_dir .. ": " then err = err:sub(#job.out_dir + 3) end
      error(string.format("cannot create the output directory %s: %s (set `output` in %s to a directory this user can write)",
        job.out_dir, err, ctx.path or "the recipe"), 0)
    end
  end
  job.budget = budget_mod.new {
    max_daily = rec.max_daily_api_calls,
    org_share = rec.org_share,
    saved = state:get("budget"),
    file = job.state_dir .. "/" .. rec.name .. ".budget",
    shared_file = rec.shared_budget and resolve(ctx.dir, rec.shared_budget),
    org_pause = state:get("org_pause"),
    now = M.now,
    warn = function(msg) job.log.warn("%s", msg) end,
  }
  if job.budget.warning then job.log.warn("%s", job.budget.warning) end
  job.client = client_mod.new {
    auth = a, reveal = job.reveal, budget = job.budget, log = job.log,
    api_version = rec.api_version, gzip = rec.compress_requests,
  }
  signal.trap()
  return job
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- Saves what the next start needs of the budget: the org pause and the
-- private counter's copy (the budget file is the reference).
local function save_budget(job)
  job.state:set("org_pause", job.budget:pause_state())
  job.state:set("budget", job.budget:dump())
  job.state:checkpoint()
end

-- Sleeps until the job clock reaches t; false when SIGTERM/SIGINT came first.
-- Bounded: one sleep of at most 60 s per iteration until t.
function M.wait_until(t)
  while M.now() < t do
    if signal.pending() then return false end
    if not clock.sleep(math.min(60, math.max(0.01, t - M.now()))) then return false end
  end
  return not signal.pending()
end

local function max_runs(job)
  if job.opts.max_runs then return job.opts.max_runs end
  local n = math.tointeger(tonumber(os.getenv("SFENGINE_MAX_RUNS") or ""))
  if n and n > 0 then return n end
end

-- Runs the job once (exit code from its status) or, with --keep-updated, on
-- its schedule until SIGTERM/SIGINT. A budget pause ends a one-shot run with
-- exit code 3; in keep-updated mode it sleeps until the budget frees. A run
-- that fails in keep-updated mode is logged and tried again at the next
-- scheduled time, except the process's first run (a configuration error
-- should not loop).
-- One run between runs.start and runs.finish (history line, run log,
-- events, notification), also when run_once raises: then the error comes
-- back as ok = false, err after the failed run was recorded.
local function one_run(job, run_once)
  runs.start(job)
  local ok, status, message, resume_at = pcall(run_once, job)
  if not ok then
    runs.finish(job, runs.failed(job, status))
    return false, status
  end
  runs.finish(job, job.summary or runs.failed(job, "the run ended without a summary"), resume_at)
  job.summary = nil
  return true, status, message, resume_at
end

function M.loop(job, run_once)
  local keep = job.opts.keep_updated
  if not keep then
    local ok, status, message = one_run(job, run_once)
    if not ok then error(status, 0) end
    save_budget(job)
    if status ~= "done" and message then job.log.warn("%s", message) end
    return M.EXIT[status] or 1
  end
  local cfg = job.recipe.keep_updated or { every = "24h", time_zone = "UTC" }
  local limit = max_runs(job)
  local next_run = job.state:get("next_run")
  local count = 0
  while true do
    if next_run and next_run > M.now() then
      job.log.info("next run at %s", iso(next_run))
      if not M.wait_until(next_run) then
        job.log.info("stopped by SIG%s while waiting; the next start resumes", tostring(signal.pending()))
        return 0
      end
    end
    if signal.pending() then
      job.log.info("stopped by SIG%s; the next start resumes", tostring(signal.pending()))
      return 0
    end
    -- Per-run counters (each run's history line counts its own calls), and no
    -- describe kept in memory from the previous run.
    job.budget.run_calls, job.client.logins, job.client.retries = 0, 0, 0
    job.client.describes = nil
    count = count + 1
    local ok, status, message, resume_at = one_run(job, run_once)
    if not ok then
      if count == 1 or type(status) ~= "string" then error(status, 0) end
      job.log.error("run failed: %s", status)
      status, message = "failed", status
    end
    if status == "invalid" and count == 1 then
      save_budget(job)   -- a recipe error in the process's first run: a configuration error should not loop
      job.log.error("%s", message)
      return M.EXIT.invalid
    end
    if status == "stopped" then
      save_budget(job)
      job.log.info("%s; state checkpointed, the next start resumes", message or "stopped")
      return 0
    end
    local now = M.now()
    if status == "paused" then
      job.log.warn("%s", message)
      next_run = math.max(tonumber(resume_at) or (now + 3600), now + 1)
    else
      next_run = schedule.next_run(cfg, now)
    end
    job.state:set("next_run", next_run)
    save_budget(job)
    if limit and count >= limit then return M.EXIT[status] or 1 end
  end
end

-- Opens an output file and cuts it back to its checkpointed length.
function M.open_output(job, name)
  local path = job.out_dir .. "/" .. name
  local f, err = fs.open_append(path)
  if not f then error("output " .. path .. ": " .. tostring(err), 0) end
  local want = job.state:output_size(name)
  local have = f:size()
  if want == nil then
    -- A file this job never checkpointed: refuse to touch someone else's
    -- data; otherwise claim it (length 0) before the first write.
    if have > 0 then
      f:close()
      error(string.format("output %s already holds %d bytes this job did not write (another job's output, or its state was removed): move it away or choose another output directory", path, have), 0)
    end
    job.state:set_output_size(name, 0)
    job.state:checkpoint()
    return f
  end
  if have > want then
    job.log.warn("%s: discarding %d bytes written after the last checkpoint", path, have - want)
    assert(f:truncate(want))
  elseif have < want then
    error(string.format("output %s is shorter (%d bytes) than the checkpoint says (%d): it was changed outside the job; move the state away to start over", path, have, want), 0)
  end
  job.state:set_output_size(name, want)
  return f
end

-- An object's describe, kept next to the job state for `ttl` seconds: an
-- object's fields change rarely, and re-reading them on every run would
-- cost one API call per object per run. Keyed by API version.
local function describe_path(job, object)
  return job.state_dir .. "/" .. job.recipe.name .. ".describe." .. object .. ".json"
end
M.describe_path = describe_path

-- The cached describe when it is younger than ttl, else nil (no call).
function M.cached_describe(job, object, ttl)
  if ttl <= 0 then return nil end
  local doc = cjson.decode(fs.read(describe_path(job, object)) or "null")
  if type(doc) == "table" and doc.api_version == job.recipe.api_version and type(doc.describe) == "table"
      and type(doc.fetched_at) == "number" and clock.now() - doc.fetched_at < ttl then
    return doc.describe
  end
end

-- describe, from_cache | nil, err, code, resume_at (client:describe's failure).
-- fresh = true skips the cache (and the client's in-run memo).
function M.describe(job, object, ttl, fresh)
  if not fresh then
    local d = M.cached_describe(job, object, ttl)
    if d then return d, true end
  elseif job.client.describes then
    job.client.describes[object] = nil
  end
  local d, err, code, resume = job.client:describe(object)
  if not d then return nil, err, code, resume end
  if ttl > 0 then
    local text = cjson.encode { api_version = job.recipe.api_version, fetched_at = clock.now(), describe = d }
    if text then fs.write_atomic(describe_path(job, object), text) end
  end
  return d, false
end

return M
