-- The API budget: every call is admitted here before it is sent.
--
-- Two budgets, checked before each call:
--   job  the recipe's max_daily_api_calls over a rolling 24 hours, counted by
--        this engine (sf.limits counter) and persisted in the job state, or in
--        a shared budget file when several jobs draw on one allocation;
--   org  Salesforce's own allocation as the last Sforce-Limit-Info reported it:
--        stop at org_share of the org's maximum (default 80%) so the
--        customer's other integrations keep working.
-- A refusal is `nil, message, "BUDGET", resume_at` and nothing is sent.
local limits = require "sf.limits"
local fs = require "sf.fs"
local clock = require "sf.clock"

local Budget = {}
Budget.__index = Budget

local DAY = 24 * 3600
-- How long to wait before looking at the org's usage again after its share was
-- reached: its window is rolling, so calls free up continuously.
local ORG_RECHECK = 3600

local M = {}

-- opts: { max_daily = n|nil, org_share = 0..1, saved = dump|nil, shared_file = path|nil, now = fn }
function M.new(opts)
  local self = setmetatable({
    max_daily = opts.max_daily,
    org_share = opts.org_share or 0.8,
    shared_file = opts.shared_file,
    now = opts.now or clock.now,
    run_calls = 0,
    org_used = nil, org_max = nil,
    org_blocked_until = opts.org_blocked_until,
  }, Budget)
  local counter, err = limits.counter(opts.saved)
  if not counter then
    -- A damaged counter must not reset the budget to zero silently: count the
    -- whole allocation as spent for one window.
    counter = limits.counter()
    counter:add(math.floor(self.now()), opts.max_daily or 0)
    self.warning = "budget state unreadable (" .. tostring(err) .. "): assuming the day's budget is spent"
  end
  self.counter = counter
  return self
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end
M.iso = iso

-- Runs fn(counter) with the shared budget file locked and its counter loaded,
-- then saves it. Without a shared file, fn runs on the job's own counter.
function Budget:with_counter(fn)
  if not self.shared_file then return fn(self.counter) end
  local lock, lerr = fs.lock(self.shared_file .. ".lock", 30000)
  if not lock then error("shared budget " .. self.shared_file .. ": " .. tostring(lerr)) end
  local saved = fs.read(self.shared_file)
  local counter = limits.counter(saved ~= "" and saved or nil) or limits.counter()
  local ok, a, b, c, d = pcall(fn, counter)
  if ok then
    local wok, werr = fs.write_atomic(self.shared_file, counter:dump())
    if not wok then ok, a = false, "shared budget " .. self.shared_file .. ": " .. tostring(werr) end
  end
  lock:close()
  self.counter = counter
  if not ok then error(a, 0) end
  return a, b, c, d
end

-- Admits n calls (counting them now: a call that was sent counts whatever
-- its outcome) or refuses with the budget that stopped it.
function Budget:admit(n)
  n = n or 1
  local now = self.now()
  local t = math.floor(now)
  if self.org_blocked_until and now < self.org_blocked_until then
    return nil, "paused: Salesforce's API limit for the org was reached, resumes at "
      .. iso(self.org_blocked_until), "BUDGET", self.org_blocked_until, "org"
  end
  if self.org_used and self.org_max and self.org_max > 0
     and self.org_used + n > self.org_share * self.org_max then
    local resume = now + ORG_RECHECK
    return nil, string.format("paused: org API usage %d/%d reached the job's share of %d%%, resumes at %s",
      self.org_used, self.org_max, math.floor(self.org_share * 100 + 0.5), iso(resume)), "BUDGET", resume, "org_share"
  end
  return self:with_counter(function(counter)
    if self.max_daily and counter:used(t) + n > self.max_daily then
      local resume = counter:next_free(t, n, self.max_daily)
      return nil, string.format("paused: job budget of %d API calls per 24 h reached, resumes at %s",
        self.max_daily, iso(resume)), "BUDGET", resume, "job"
    end
    counter:add(t, n)
    self.run_calls = self.run_calls + n
    return true
  end)
end

-- Reads Sforce-Limit-Info from a response.
function Budget:observe(headers)
  local info = headers and headers["sforce-limit-info"]
  if not info then return end
  local used, max = limits.parse_usage(info)
  if used then self.org_used, self.org_max = used, max end
end

-- Salesforce said REQUEST_LIMIT_EXCEEDED: its rolling window frees up over
-- the next 24 hours; wait for all of it, as the product documents describe.
function Budget:org_exhausted()
  self.org_blocked_until = self.now() + DAY
  return self.org_blocked_until
end

function Budget:used()
  return self:with_counter(function(counter) return counter:used(math.floor(self.now())) end)
end

function Budget:dump()
  if self.shared_file then return nil end
  return self.counter:dump()
end

return M
