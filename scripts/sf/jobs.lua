-- What import and export jobs share: the recipe parts common to both (auth,
-- custom mappings, schedule), setting up client, budget and state, the
-- one-shot / keep-updated loop and the run summary.
local recipe = require "sf.recipe"
local S = recipe.schema
local fs = require "sf.fs"
local clock = require "sf.clock"
local signal = require "sf.signal"
local sandbox = require "sf.sandbox"
local client_mod = require "sf.client"
local budget_mod = require "sf.budget"
local state_mod = require "sf.state"
local schedule = require "sf.schedule"

local M = {}

M.EXIT = { done = 0, failed = 1, usage = 2, paused = 3, stopped = 4 }

local secret = S.secret {}

M.auth_schema = S.record({
  flow = S.string { required = true, enum = { "password", "refresh_token", "jwt" } },
  login_url = S.string { pattern = "^https?://[%w%.%-:%[%]]+/?$" },
  sandbox = S.boolean { default = false },
  audience = S.string {},
  client_id = S.secret { required = true },
  client_secret = secret,
  username = S.string {},
  password = secret,
  security_token = secret,
  refresh_token = secret,
  private_key = secret,
  private_key_file = S.string {},
  passphrase = secret,
}, {
  required = true,
  check = function(a)
    local need = ({
      password = { "username", "password" },
      refresh_token = { "refresh_token" },
      jwt = { "username" },
    })[a.flow] or {}
    for _, k in ipairs(need) do
      if a[k] == nil then return false, "flow '" .. a.flow .. "' needs " .. k end
    end
    if a.flow == "jwt" and not a.private_key and not a.private_key_file then
      return false, "flow 'jwt' needs private_key (a secret) or private_key_file"
    end
    return true
  end,
})

M.mapping_schema = S.record {
  add = S.list(S.record {
    source = S.one_of { S.string {}, S.list(S.string {}) },
    sf = S.one_of { S.string {}, S.list(S.string {}) },
    combine = S.string { enum = { "first", "all" } },
    to = S.string { required = true },
    type = S.string { required = true, enum = { "string", "number", "int", "bool", "date", "[]string" } },
    description = S.string {},
    identity = S.boolean {},
    derive = S.string { enum = { "emaildomain" } },
    const = S.string { enum = { "now" } },
    transform = S.func {},
  }),
  sources = S.map(S.string {}, S.string {}),
  rename = S.map(S.string {}, S.string {}),
  drop = S.list(S.string {}),
  transform = S.map(S.string {}, S.func {}),
  types = S.map(S.string { enum = { "string", "number", "int", "bool", "date", "[]string" } }, S.func {}),
}

M.schedule_schema = S.record {
  every = S.string { required = true, enum = { "1h", "24h", "7d" } },
  time_of_day = S.string { pattern = "^%d%d:%d%d$" },
  time_zone = S.string { pattern = "^[%w_%-+/]+$", default = "UTC" },
  weekday = S.string { enum = { "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday" } },
}

local function resolve(dir, path)
  if path:sub(1, 1) == "/" then return path end
  return dir .. "/" .. path
end
M.resolve = resolve

-- Validates the recipe and builds the job: client, budget, state, outputs.
function M.setup(r, ctx, schema)
  local rec = recipe.validate(r, schema, ctx)
  local opts = ctx.opts or {}
  local job = { recipe = rec, ctx = ctx, opts = opts, log = ctx.log }
  if rec.keep_updated and rec.keep_updated.time_zone then
    local ok, err = schedule.check_zone(rec.keep_updated.time_zone)
    if not ok then error(recipe.error_at(ctx, "keep_updated.time_zone", err), 0) end
  end
  job.reveal = sandbox.reveal
  job.call = function(fn, ...) return sandbox.call_callback(fn, ...) end
  job.reveal_custom = function(c) return c end

  -- Secrets from files: read under the recipe's directory, as secrets.
  local a = rec.auth
  if a.private_key_file and not a.private_key then
    local pem, err = sandbox.read_secret_file(ctx.dir, a.private_key_file)
    if not pem then error(recipe.error_at(ctx, "auth.private_key_file", err), 0) end
    a.private_key = pem
  end

  job.state_dir = opts.state_dir or (rec.state_dir and resolve(ctx.dir, rec.state_dir)) or (ctx.dir .. "/.sfengine")
  local state, serr = state_mod.open(job.state_dir, rec.name)
  if not state then error(serr, 0) end
  job.state = state
  if rec.output then
    job.out_dir = resolve(ctx.dir, rec.output)
    local ok, err = fs.mkdir_p(job.out_dir)
    if not ok then error("output directory " .. job.out_dir .. ": " .. tostring(err), 0) end
  end
  job.budget = budget_mod.new {
    max_daily = rec.max_daily_api_calls,
    org_share = rec.org_share,
    saved = state:get("budget"),
    shared_file = rec.shared_budget and resolve(ctx.dir, rec.shared_budget),
    org_blocked_until = state:get("org_blocked_until"),
  }
  if job.budget.warning then job.log.warn("%s", job.budget.warning) end
  job.client = client_mod.new {
    auth = a, reveal = job.reveal, budget = job.budget, log = job.log,
    api_version = rec.api_version,
  }
  signal.trap()
  return job
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

function M.print_summary(job, s)
  if job.opts.quiet then return end
  local lines = { string.format("%s %s: %s in %.1f s, %d API calls%s", s.kind, s.job, s.status,
    s.duration_s, s.api_calls, s.message and (" (" .. s.message .. ")") or "") }
  local names = {}
  for name in pairs(s.streams or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local st = s.streams[name]
    lines[#lines + 1] = string.format("  %-28s %9d records %7d deletions %7d rejects", name, st.records, st.deletions, st.rejects)
  end
  for _, extra in ipairs(s.lines or {}) do lines[#lines + 1] = "  " .. extra end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  io.stdout:flush()
end

-- Runs the job once (exit code from its status) or, with --keep-updated, on
-- its schedule until SIGTERM/SIGINT. A budget pause ends a one-shot run with
-- exit code 3; in keep-updated mode it sleeps until the budget frees.
function M.loop(job, run_once)
  local keep = job.opts.keep_updated
  if not keep then
    local status, message = run_once(job)
    if status ~= "done" and message then job.log.warn("%s", message) end
    return M.EXIT[status] or 1
  end
  local cfg = job.recipe.keep_updated or { every = "24h", time_zone = "UTC" }
  local next_run = job.state:get("next_run")
  while true do
    if next_run and next_run > clock.now() then
      job.log.info("next run at %s", iso(next_run))
      while clock.now() < next_run do
        if not clock.sleep(math.min(60, next_run - clock.now())) then break end
      end
      if signal.pending() then
        job.log.info("stopped by SIG%s while waiting; the next start resumes", signal.pending())
        return 0
      end
    end
    local status, message, resume_at = run_once(job)
    if status == "stopped" then
      job.log.info("%s; state checkpointed, the next start resumes", message or "stopped")
      return 0
    end
    if status == "paused" then
      job.log.warn("%s", message)
      next_run = resume_at
    else
      next_run = schedule.next_run(cfg, clock.now())
    end
    job.state:set("next_run", next_run)
    job.state:set("org_blocked_until", job.budget.org_blocked_until)
    job.state:checkpoint()
    if job.opts.max_runs then
      job.opts.max_runs = job.opts.max_runs - 1
      if job.opts.max_runs <= 0 then return M.EXIT[status] or 0 end
    end
  end
end

return M
