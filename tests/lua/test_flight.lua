-- sf.flight: calls in flight together as coroutines over sf.http's multi interface,
-- against tests/httpd.py on loopback: tasks interleave only where they wait, join
-- returns a task's results or raises its error, join_all finishes every task before
-- raising, cancel closes the transfer, the main line keeps blocking requests.
local t = require "tests.tap"
local flight = require "sf.flight"

local p = assert(io.popen("exec python3 tests/httpd.py --port 0 --max-seconds 120", "r"))
local base = (p:read("l") or ""):match("^listening on (%S+)$")
assert(base, "httpd.py did not start")
local function get(path) return flight.transport { url = base .. path } end

do
  get("/inflight")
  local order = {}
  local tasks = {}
  for i = 1, 4 do
    tasks[i] = flight.spawn(function(n)
      order[#order + 1] = "start " .. n
      local r = get("/slow?ms=300")
      order[#order + 1] = "end " .. n
      return n, r.body
    end, i)
  end
  t.eq(table.concat(order, ","), "start 1,start 2,start 3,start 4", "spawn runs a task until it waits, then the next one starts")
  t.ok(not tasks[1]:done(), "a waiting task is not done")
  local n, body = tasks[3]:join()
  t.ok(n == 3 and body == "slow", "join returns the task's results")
  flight.join_all(tasks)
  t.ok(tasks[1]:done() and tasks[4]:done(), "join_all finishes every task")
  t.eq(get("/inflight").body, "4", "the four calls were in flight together")
  t.eq(#order, 8, "every task ran to its end")
end

do
  local r = get("/bytes?n=5")
  t.ok(r and r.status == 200 and r.body == "xxxxx", "outside a task, transport is a blocking request")
  t.ok(not flight.in_task(), "the main line is not a task")
  local inside
  flight.spawn(function() inside = flight.in_task() end):join()
  t.eq(inside, true, "a task knows it is one")
end

do
  local ran = {}
  local a = flight.spawn(function() get("/slow?ms=200"); error("boom", 0) end)
  local b = flight.spawn(function() get("/slow?ms=400"); ran.b = true end)
  local ok, err = pcall(flight.join_all, { a, b })
  t.ok(not ok and err == "boom", "join_all raises the first task's error", tostring(err))
  t.ok(ran.b, "... only after the other task finished")
  local obj = { status = "paused" }
  local c = flight.spawn(function() error(obj) end)
  local ok2, e2 = pcall(c.join, c)
  t.ok(not ok2 and e2 == obj, "an error object passes through join unchanged")
end

do
  local after = false
  local task = flight.spawn(function() get("/slow?ms=2000"); after = true end)
  task:cancel()
  t.ok(task:done(), "a cancelled task is done")
  t.raises(function() task:join() end, "cancelled", "joining a cancelled task raises")
  flight.drive(10)
  t.eq(after, false, "a cancelled task never runs again")
end

do
  t.raises(function() flight.spawn(function() flight.spawn(function() end) end):join() end,
    "a task cannot start tasks", "tasks cannot start tasks")
  t.eq(flight.bound(nil), flight.DEFAULT, "bound: the default")
  t.eq(flight.bound(100), flight.MAX, "bound: at most MAX")
  t.eq(flight.bound(0), 1, "bound: at least 1")
end

p:close()
t.done()
