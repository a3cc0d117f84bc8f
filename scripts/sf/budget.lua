-- The API budget: every call is admitted here before it is sent.
--
--   local b = budget.new{ max_daily = n|nil, org_share = 0.8, file = path|nil, shared_file = path|nil,
--                         saved = dump|nil, org_pause = {until_t, which}|nil, now = fn, warn = fn }
--   local ticket, msg, "BUDGET", resume_at, which = b:admit(1)   -- reserve before sending
--   b:refund(ticket)            -- the call turned out not to be counted by Salesforce
--   b:observe(resp.headers)     -- Sforce-Limit-Info: the org's usage
--   b:org_exhausted()           -- 403 REQUEST_LIMIT_EXCEEDED: pause for Salesforce's 24 h window
--
-- Two budgets, checked before each call:
--   job  the recipe's max_daily_api_calls over a rolling 24 hours (minute
--        resolution: a call leaves the window 24 h after the start of its
--        minute), counted by this engine in an sf.limits counter. The counter
--        lives in a small file next to the job state (<state_dir>/<job>.budget)
--        or, with `shared_budget = "path"`, in a file several jobs (separate
--        processes) draw on. Every admit and refund is one read-modify-write of
--        that file under fs.lock, replaced with fs.write_atomic: the
--        reservation is on disk before the call is sent, so neither a crash nor
--        a concurrent process can make the sum exceed the maximum.
--   org  Salesforce's own allocation, as the last Sforce-Limit-Info reported it:
--        the job stops at org_share (default 80%) of the org's maximum so the
--        customer's other integrations keep working. A 403
--        REQUEST_LIMIT_EXCEEDED pauses for 24 hours (Salesforce's window).
--
-- A refusal is `nil, "paused: <which budget> ..., resumes at <time>", "BUDGET",
-- resume_at, which` (which = "job", "org_share" or "org") and nothing is sent.
--
-- THE COUNTING RULE (what Salesforce, and the emulator, count as an API call).
-- A call is reserved when admitted and refunded when it was not counted:
--   not counted (refunded)
--     * no response at all: the connection could not be made (CONNECT, DNS,
--       TLS, INSECURE), the request could not be sent (SEND), or the server
--       closed the connection without a reply (RECV "Empty reply from
--       server": the emulator's `drop`);
--     * 401 (INVALID_SESSION_ID), 403 (REQUEST_LIMIT_EXCEEDED,
--       API_DISABLED_FOR_ORG), 414 (URI too long: rejected before routing),
--       and every 5xx (500/502/503: the emulator's injected failures).
--   counted (kept)
--     * every other response (2xx, 3xx including 304, 4xx such as
--       MALFORMED_QUERY, NOT_FOUND, INVALID_QUERY_LOCATOR);
--     * a TIMEOUT, a reply cut off part way (RECV "... bytes remaining"),
--       TOO_LARGE and PROTOCOL: the server may well have served, and counted,
--       the call. Erring this way can only under-use the budget, never exceed it.
-- The token endpoint is not an API call (Salesforce counts logins apart).
-- tests/integration/test_faults.py checks that the calls counted here equal
-- the emulator's `api_calls` under injected 503s, drops, session expiry and
-- both budgets.
local limits = require "sf.limits"
local fs = require "sf.fs"
local clock = require "sf.clock"

local Budget = {}
Budget.__index = Budget

local M = {}
M.DAY = 24 * 3600
-- After the org's share was reached, look at its usage again this much later
-- (its window is rolling: other integrations' calls free up continuously).
M.ORG_RECHECK = 3600
M.LOCK_TIMEOUT_MS = 30000

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end
M.iso = iso

-- Was a call with this outcome counted by Salesforce? (resp, or nil, err, code)
function M.counted(resp, err, code)
  if resp then
    local s = resp.status
    return not (s == 401 or s == 403 or s == 414 or s >= 500)
  end
  if code == "TIMEOUT" or code == "TOO_LARGE" or code == "PROTOCOL" then return true end
  if code == "RECV" then
    -- A reply that started and was cut off was served; no reply at all was not.
    return type(err) == "string" and (err:find("bytes remaining", 1, true) or err:find("bytes missing", 1, true)) ~= nil
  end
  return false
end

-- Removes n calls from the minute of epoch second t (a refund). sf.limits
-- counters only add, so the dump ("c1:<last minute>:<age>=<n>...") is edited.
local function subtract(counter, t, n)
  local dump = counter:dump()
  local last = math.tointeger(tonumber(dump:match("^c1:(%-?%d+)")))
  if not last then return counter end
  local age = last - t // 60
  local parts = { "c1:" .. last }
  for a, v in dump:gmatch(":(%d+)=(%d+)") do
    a, v = tonumber(a), tonumber(v)
    if a == age then v = math.max(0, v - n) end
    if v > 0 then parts[#parts + 1] = ":" .. a .. "=" .. v end
  end
  return assert(limits.counter(table.concat(parts)))
end
M.subtract = subtract

-- A counter that counts the whole allocation as spent right now: what a
-- damaged budget file becomes (never a silent reset to zero).
local function spent(now, max_daily)
  local c = limits.counter()
  c:add(math.floor(now), max_daily or 0)
  return c
end

function M.new(opts)
  local self = setmetatable({
    max_daily = opts.max_daily,
    org_share = opts.org_share or 0.8,
    shared_file = opts.shared_file,
    file = opts.shared_file or opts.file,
    now = opts.now or clock.now,
    run_calls = 0,
    org_used = nil, org_max = nil,
    org_pause = nil,
    warn = opts.warn,
  }, Budget)
  if type(opts.org_pause) == "table" and tonumber(opts.org_pause.until_t) then
    self.org_pause = { until_t = tonumber(opts.org_pause.until_t), which = tostring(opts.org_pause.which or "org") }
  end
  local counter, err
  if opts.saved and not opts.shared_file then
    counter, err = limits.counter(opts.saved)
  else
    counter = limits.counter()
  end
  if not counter then
    counter = spent(self.now(), opts.max_daily)
    self.warning = "job budget in the state is unreadable (" .. tostring(err) .. "): assuming the day's budget is spent"
  end
  -- The job state's copy seeds a private budget file that does not exist yet.
  self.counter = counter
  return self
end

-- Reads the counter file (caller holds the lock). A missing file starts from
-- the state's copy (private) or zero (shared); a damaged one counts as spent.
function Budget:load_file()
  local text, err, code = fs.read(self.file)
  if not text then
    if code ~= "ENOENT" then error("budget file " .. self.file .. ": " .. tostring(err), 0) end
    if self.shared_file then return limits.counter() end
    return self.counter
  end
  if text == "" then return limits.counter() end
  local c, cerr = limits.counter(text)
  if c then return c end
  self.warning = "budget file " .. self.file .. " is unreadable (" .. tostring(cerr) .. "): assuming the day's budget is spent"
  if self.warn then self.warn(self.warning) end
  return spent(self.now(), self.max_daily)
end

-- Runs fn(counter) -> new_counter|nil, ... with the budget file locked and
-- loaded; a returned counter is written back before the lock is released.
-- Without a file, fn runs on the in-memory counter.
function Budget:with_counter(fn)
  if not self.file then
    local r = table.pack(fn(self.counter))
    if r[1] then self.counter = r[1] end
    return table.unpack(r, 2, r.n)
  end
  local lock, lerr = fs.lock(self.file .. ".lock", M.LOCK_TIMEOUT_MS)
  if not lock then error("budget file " .. self.file .. ": " .. tostring(lerr), 0) end
  local ok, r = pcall(function()
    local counter = self:load_file()
    local out = table.pack(fn(counter))
    if out[1] then
      local wok, werr = fs.write_atomic(self.file, out[1]:dump())
      if not wok then error("budget file " .. self.file .. ": " .. tostring(werr), 0) end
      counter = out[1]
    end
    self.counter = counter
    return out
  end)
  lock:close()
  if not ok then error(r, 0) end
  return table.unpack(r, 2, r.n)
end

local PAUSE_TEXT = {
  org = "Salesforce's API limit for the org was reached (403 REQUEST_LIMIT_EXCEEDED)",
  org_share = "the job's share of the org's API limit was reached",
}

function Budget:pause_message(which, until_t, detail)
  return string.format("paused: %s%s, resumes at %s", PAUSE_TEXT[which] or which,
    detail and (" (" .. detail .. ")") or "", iso(until_t))
end

-- Reserves n calls, or refuses with the budget that stopped them. The
-- returned ticket goes back to refund() when the call was not counted.
function Budget:admit(n)
  n = n or 1
  local now = self.now()
  local t = math.floor(now)
  local op = self.org_pause
  if op then
    if now < op.until_t then
      return nil, self:pause_message(op.which, op.until_t), "BUDGET", op.until_t, op.which
    end
    -- The window has moved on: forget the old observation and look again.
    self.org_pause, self.org_used = nil, nil
  end
  if self.org_used and self.org_max and self.org_max > 0
     and self.org_used + n > self.org_share * self.org_max then
    local resume = now + M.ORG_RECHECK
    self.org_pause = { until_t = resume, which = "org_share" }
    return nil, self:pause_message("org_share", resume, string.format("%d of %d calls used, share %d%%",
      self.org_used, self.org_max, math.floor(self.org_share * 100 + 0.5))), "BUDGET", resume, "org_share"
  end
  local ok, resume = self:with_counter(function(counter)
    if self.max_daily and counter:used(t) + n > self.max_daily then
      local at = counter:next_free(t, n, self.max_daily)
      return nil, false, at or (t + M.DAY)
    end
    counter:add(t, n)
    return counter, true
  end)
  if not ok then
    return nil, string.format("paused: job budget reached (max_daily_api_calls = %d per 24 h), resumes at %s",
      self.max_daily, iso(resume)), "BUDGET", resume, "job"
  end
  self.run_calls = self.run_calls + n
  if self.org_used then self.org_used = self.org_used + n end
  return { t = t, n = n }
end

-- Gives back a reservation whose call Salesforce did not count.
function Budget:refund(ticket)
  if not ticket or ticket.refunded then return end
  ticket.refunded = true
  self:with_counter(function(counter) return subtract(counter, ticket.t, ticket.n) end)
  self.run_calls = self.run_calls - ticket.n
  if self.org_used then self.org_used = math.max(0, self.org_used - ticket.n) end
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
  local until_t = self.now() + M.DAY
  self.org_pause = { until_t = until_t, which = "org" }
  return until_t
end

-- What the job state keeps of an org pause (nil when none).
function Budget:pause_state()
  local op = self.org_pause
  if not op or op.until_t <= self.now() then return nil end
  return { until_t = op.until_t, which = op.which }
end

-- Calls counted in the job's (or the shared) window right now.
function Budget:used()
  return self:with_counter(function(counter) return nil, counter:used(math.floor(self.now())) end)
end

-- The job state's copy of the private counter (nil with a shared budget).
function Budget:dump()
  if self.shared_file then return nil end
  return self.counter:dump()
end

return M
