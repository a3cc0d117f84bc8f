-- sf.flight: API calls in flight together, within a bound. A task is a
-- coroutine that runs ordinary engine code (sf.client:request and all it
-- does: the budget first, retries, re-login); where that code would wait for
-- a response, the task yields instead and the others go on. One driver on the
-- main line moves every transfer of the Lua state (sf.http over libcurl's
-- multi interface) and resumes the tasks whose response is in. Nothing runs
-- in parallel: tasks only interleave where they wait for the network, so
-- shared Lua state needs no locks; a task that sleeps (a retry's backoff)
-- blocks them all for that time, which only retries do.
--
--   local flight = require "sf.flight"
--   local t = flight.spawn(fn, ...)   -- runs fn(...) until it first waits
--   local a, b = t:join()             -- drives until fn returned: its results;
--                                     -- fn's error is raised here, as it was
--   t:done()                          -- finished (no waiting)
--   t:cancel()                        -- abandons it: its transfer is closed
--   flight.join_all(tasks)            -- joins every task, then raises the first
--                                     -- error (so no call is left half done)
--   flight.transport(opts)            -- sf.http.request for sf.client: inside a
--                                     -- task, http.start and a yield until done
--   flight.bound(n)                   -- the recipe's concurrency setting, clamped
--
-- A task never joins another (that would nest drivers): join from the main line.
local http = require "sf.http"

local M = {}

M.DEFAULT = 4          -- calls in flight at once unless the recipe says otherwise
M.MAX = 10             -- well under Salesforce's 25 concurrent long-running requests
M.SLICE_MS = 200       -- longest wait for network activity in one driving step

local current = nil    -- the task running now; nil on the main line
local live = {}        -- tasks started and not finished, in start order

local Task = {}
Task.__index = Task

-- Resumes t once; records what it waits on, or how it ended.
local function step(t, ...)
  current = t
  local r = table.pack(coroutine.resume(t.co, ...))
  current = nil
  if coroutine.status(t.co) == "dead" then
    t.finished = true
    t.x = nil
    if r[1] then t.results = table.pack(table.unpack(r, 2, r.n)) else t.err = r[2] end
    for i, u in ipairs(live) do
      if u == t then table.remove(live, i) break end
    end
  else
    t.x, t.what = r[2], r[3]
  end
end

-- Moves the network once and resumes every task whose response is in.
function M.drive(ms)
  local moved = false
  for _, t in ipairs({ table.unpack(live) }) do
    if not t.finished and t.x and t.x:ready(t.what) then
      step(t)
      moved = true
    end
  end
  if not moved then http.wait(ms or M.SLICE_MS) end
end

function M.spawn(fn, ...)
  if current then error("sf.flight.spawn: a task cannot start tasks", 2) end
  local t = setmetatable({ co = coroutine.create(fn) }, Task)
  live[#live + 1] = t
  step(t, ...)
  return t
end

function Task:done() return self.finished == true end

function Task:join()
  if current then error("sf.flight.join: a task cannot join a task", 2) end
  -- bounded: each transfer carries its own timeout, which finishes it
  while not self.finished do M.drive() end
  if self.err ~= nil then error(self.err, 0) end
  return table.unpack(self.results, 1, self.results.n)
end

function Task:cancel()
  if self.finished then return end
  if self.x then self.x:close() end
  self.finished, self.x, self.err = true, nil, "cancelled"
  for i, u in ipairs(live) do
    if u == self then table.remove(live, i) break end
  end
  coroutine.close(self.co)
end

function M.join_all(tasks)
  local first
  for _, t in ipairs(tasks) do
    local ok, err = pcall(t.join, t)
    if not ok and first == nil then first = err end
  end
  if first ~= nil then error(first, 0) end
end

function M.in_task() return current ~= nil end

function M.transport(opts)
  if not current then return http.request(opts) end
  local x, err, code = http.start(opts)
  if not x then return nil, err, code end
  local what = opts.stream and "head" or "done"
  while not x:ready(what) do coroutine.yield(x, what) end
  if opts.stream then return x:head() end
  return x:finish()
end

-- n calls at once: the recipe's setting within 1..MAX (nil: DEFAULT).
function M.bound(n)
  if n == nil then return M.DEFAULT end
  return math.max(1, math.min(M.MAX, math.floor(n)))
end

return M
