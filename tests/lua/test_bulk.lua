-- sf.import.bulk: the Bulk API 2.0 query mode of the import job, against a scripted
-- org (a fake client): job creation, polling backoff, results paging,
-- checkpoints, pause/stop/kill and resume at the saved locator, expired jobs,
-- Failed jobs, oversized pages; plus eligible/columns/count helpers.
local t = require "tests.tap"
local bulk = require "sf.import.bulk"
local sink_mod = require "sf.import.sink"
local mapper = require "sf.mapper"
local state_mod = require "sf.state"
local clock = require "sf.clock"
local cjson = require "cjson"

local TMP = t.tmpdir()

-- Records: ids 00Q...1..N, timestamps rising every 7 records (runs share one).
local function make_rows(n)
  local rows = {}
  for i = 1, n do
    local sec = (i - 1) // 7
    rows[i] = string.format('"00Q%015d","%s","2024-01-%02dT%02d:%02d:%02d.000Z","Name %d"', i,
      i % 50 == 0 and "true" or "false", 1 + sec // 86400, sec // 3600 % 24, sec // 60 % 60, sec % 60, i)
  end
  return rows
end
local HEADER = '"Id","IsDeleted","LastModifiedDate","LastName"'
local SELECT = { "Id", "IsDeleted", "LastModifiedDate", "LastName" }
local COLUMNS = { Id = "id", IsDeleted = "boolean", LastModifiedDate = "datetime", LastName = "string" }

-- A scripted Salesforce org answering the Bulk 2.0 query endpoints.
local function new_org(opts)
  opts = opts or {}
  local org = { jobs = {}, calls = {}, njobs = 0, rows = make_rows(opts.n or 2500),
                in_progress = opts.in_progress or 1 }
  function org.handle(req)
    org.calls[#org.calls + 1] = req.method .. " " .. req.path
    local refused = org.refuse and org.refuse(req, #org.calls)
    if refused then return nil, refused[1], refused[2], refused[3] end
    local function json(status, data)
      return { status = status, headers = { ["content-type"] = "application/json" }, body = cjson.encode(data), data = data }
    end
    if req.method == "POST" and req.path == "/jobs/query" then
      local spec = cjson.decode(req.body or cjson.encode(req.json))
      org.last_spec = spec
      if org.create_error then return json(400, { { errorCode = "API_ERROR", message = org.create_error } }) end
      org.njobs = org.njobs + 1
      local id = string.format("7505g%013d", org.njobs)
      org.jobs[id] = { id = id, state = "UploadComplete", polls = 0, query = spec.query, operation = spec.operation }
      return json(200, { id = id, state = "UploadComplete", operation = spec.operation, object = "Lead" })
    end
    local id, rest = req.path:match("^/jobs/query/([%w]+)(.*)$")
    local job = id and org.jobs[id]
    if not job then return json(404, { { errorCode = "NOT_FOUND", message = "The requested resource does not exist" } }) end
    if req.method == "GET" and rest == "" then
      if job.state ~= "JobComplete" and job.state ~= "Failed" then
        job.polls = job.polls + 1
        if job.polls > org.in_progress then
          if org.fail_message then job.state, job.errorMessage = "Failed", org.fail_message
          else job.state = "JobComplete" end
        else
          job.state = "InProgress"
        end
      end
      return json(200, { id = id, state = job.state, errorMessage = job.errorMessage,
                         numberRecordsProcessed = job.state == "JobComplete" and #org.rows or 0 })
    end
    local q = rest:match("^/results%?(.*)$")
    if req.method == "GET" and q then
      org.accepts = req.headers and req.headers.Accept
      local mr = tonumber(q:match("maxRecords=(%d+)"))
      local loc = q:match("locator=([^&]+)")
      if org.max_ok and mr > org.max_ok then return nil, "response larger than the limit", "TOO_LARGE" end
      local start = loc and tonumber(loc) or 0
      if org.bad_locators then
        return json(400, { { errorCode = "INVALID_LOCATOR", message = "Invalid locator" } })
      end
      local stop = math.min(#org.rows, start + mr)
      local lines = { HEADER }
      for i = start + 1, stop do lines[#lines + 1] = org.rows[i] end
      return { status = 200, body = table.concat(lines, "\n") .. "\n",
               headers = { ["content-type"] = "text/csv", ["sforce-locator"] = stop < #org.rows and tostring(stop) or "null",
                           ["sforce-numberofrecords"] = tostring(stop - start) } }
    end
    return json(400, { { errorCode = "BAD", message = "unexpected " .. req.method .. " " .. req.path } })
  end
  return org
end

local NOLOG = { debug = function() end, info = function() end, warn = function() end }

-- A job around an org: state on disk (so resume goes through a real file).
local njob = 0
local function new_job(org, name, sleeps, sleep)
  njob = njob + 1
  local st = assert(state_mod.open(TMP, name or ("job" .. njob)))
  local client = {
    max_attempts = 3,
    wait = function() return true end,
    backoff = function() return 0 end,
    sleep = sleep or function(s) sleeps[#sleeps + 1] = s; return true end,
    request = function(_, req) return org.handle(req) end,
    query_path = function(_, soql, all) return (all and "/queryAll?q=" or "/query?q=") .. soql end,
  }
  return { client = client, state = st, log = NOLOG, recipe = { deletions = true },
           budget = { dump = function() return nil end },
           rejects = { write = function() end, sync = function() end, size = function() return 0 end,
                       truncate = function() return true end } }
end

-- Output file stand-in: lines written, syncs.
local function new_out(lines)
  lines = lines or {}
  return { lines = lines, syncs = 0,
           write = function(self, s) for l in s:gmatch("[^\n]+") do self.lines[#self.lines + 1] = l end end,
           sync = function(self) self.syncs = self.syncs + 1 end,
           size = function(self) return #self.lines end,
           truncate = function(self, n) for i = #self.lines, n + 1, -1 do self.lines[i] = nil end return true end }
end

local ROWS = { { sf = "Id", to = "id", type = "string" }, { sf = "LastName", to = "name", type = "string" } }
local ITEM = { object = "Lead", stream = "salesforce_leads" }
-- The run's context with the import's real sink over the output stand-in;
-- ctx.checkpoints counts the pages it committed.
local function new_ctx(job, out, extra)
  local ctx = {
    select = SELECT, soql = "SELECT Id, IsDeleted, LastModifiedDate, LastName FROM Lead ORDER BY LastModifiedDate ASC, Id ASC",
    columns = COLUMNS, mp = mapper.compile(ROWS, { object = "Lead", stream = "salesforce_leads", now = "2026-01-01T00:00:00Z" }),
    st = { records = 0, deleted = 0, rejected = 0, pages = 0 }, max_records = 1000, checkpoints = 0,
  }
  local sink = sink_mod.open(job, ITEM, ctx.st, out)
  local checkpoint = sink.checkpoint
  function sink.checkpoint(self, ...)
    ctx.checkpoints = ctx.checkpoints + 1
    if ctx.events then ctx.events[#ctx.events + 1] = "checkpoint" end
    return checkpoint(self, ...)
  end
  ctx.sink = sink
  for k, v in pairs(extra or {}) do ctx[k] = v end
  return ctx
end

local function ids(lines)
  local r = {}
  for i, l in ipairs(lines) do r[i] = l:match('"_id":"([^"]+)"') or l:match('"id":"([^"]+)"') end
  return r
end

---------------------------------------------------------------------------------------
-- one clean run

local clean_lines
do
  local org = new_org { n = 2500 }
  local sleeps = {}
  local job = new_job(org, "clean", sleeps)
  local out = new_out()
  local ctx = new_ctx(job, out)
  local status, msg = bulk.run_object(job, ITEM, ctx)
  t.eq(status, "done", "a Bulk run completes", msg)
  t.eq(org.last_spec.operation, "queryAll", "the job is a queryAll (deletions included)")
  t.eq(org.last_spec.query, ctx.soql, "the job runs the caller's query")
  t.eq(table.concat(org.calls, ";"), "POST /jobs/query;GET /jobs/query/7505g0000000000001;GET /jobs/query/7505g0000000000001;"
    .. "GET /jobs/query/7505g0000000000001/results?maxRecords=1000;"
    .. "GET /jobs/query/7505g0000000000001/results?maxRecords=1000&locator=1000;"
    .. "GET /jobs/query/7505g0000000000001/results?maxRecords=1000&locator=2000",
    "create, two polls, three results pages following Sforce-Locator")
  t.eq(org.accepts, "text/csv", "results are asked for as text/csv")
  t.eq(table.concat(sleeps, ","), "1,2", "polls back off 1 s, 2 s")
  t.eq(#out.lines, 2500, "every record is written")
  t.eq(ctx.st.records, 2450, "stats count live records")
  t.eq(ctx.st.deleted, 50, "stats count deleted records")
  t.eq(ctx.st.pages, 3, "stats count pages")
  t.eq(ctx.st.total, 2500, "stats total is the job's numberRecordsProcessed")
  t.eq(ctx.checkpoints, 3, "one checkpoint per page")
  t.eq(out.syncs, 3, "output synced before every checkpoint")
  t.eq(bulk.pending(job, "Lead"), nil, "a finished job leaves no saved Bulk job")
  local reread = assert(state_mod.open(TMP, "clean"))
  t.same(reread:cursor("Lead"), { ts = "2024-01-01T00:05:57.000+0000", id = "00Q000000000002500" },
    "the cursor is the last record's (timestamp, Id), timestamp in REST form")
  clean_lines = out.lines
end

---------------------------------------------------------------------------------------
-- polling backoff, Failed jobs

do
  local org = new_org { n = 10, in_progress = 8 }
  local sleeps = {}
  local job = new_job(org, nil, sleeps)
  local status = bulk.run_object(job, ITEM, new_ctx(job, new_out()))
  t.eq(status, "done", "a slow job completes")
  t.eq(table.concat(sleeps, ","), "1,2,4,8,16,30,30,30,30", "polls back off exponentially from 1 s, capped at 30 s")
end

do
  local org = new_org { n = 10 }
  org.fail_message = "Query timed out: apply filter criteria"
  local job = new_job(org, nil, {})
  local out = new_out()
  local status, msg = bulk.run_object(job, ITEM, new_ctx(job, out))
  t.eq(status, "failed", "a Failed job returns failed")
  t.ok(msg:find("Lead: Bulk query job 7505g0000000000001 failed: Query timed out: apply filter criteria", 1, true) ~= nil,
    "... with the object, job id and Salesforce's errorMessage", msg)
  t.eq(#out.lines, 0, "nothing is written for a Failed job")
  t.eq(bulk.pending(job, "Lead"), nil, "a Failed job is not kept for resuming")
  t.ok(bulk.recently_failed(job, "Lead"), "a Failed job is remembered (auto mode stays with REST)")
  t.ok(not bulk.recently_failed(job, "Contact"), "... for that object only")
end

do
  local org = new_org { n = 10 }
  org.create_error = "Nested queries are not supported"
  local job = new_job(org, nil, {})
  t.raises(function() bulk.run_object(job, ITEM, new_ctx(job, new_out())) end,
    "Lead: creating a Bulk query job: HTTP 400 API_ERROR: Nested queries are not supported",
    "a refused job creation raises with Salesforce's error")
end

do
  local job = new_job(new_org(), nil, {})
  t.raises(function() bulk.run_object(job, ITEM, new_ctx(job, new_out(), { select = { "Id", "(SELECT Id FROM Contacts)" } })) end,
    "selects a child relationship", "a select list with a subquery is refused")
end

---------------------------------------------------------------------------------------
-- pause at the budget, then resume the same job at the saved locator

do
  local org = new_org { n = 2500 }
  local job = new_job(org, "paused", {})
  local out = new_out()
  local results = 0
  org.refuse = function(req)
    if req.path:find("/results", 1, true) then
      results = results + 1
      if results == 2 then return { "paused: the job's daily budget is spent", "BUDGET", 1234567890 } end
    end
  end
  local status, msg, resume = bulk.run_object(job, ITEM, new_ctx(job, out))
  t.ok(status == "paused" and msg:find("budget", 1, true) and resume == 1234567890,
    "a budget refusal pauses with the message and resume time", tostring(status) .. " " .. tostring(msg))
  t.eq(#out.lines, 1000, "the page before the pause is written")
  local saved = assert(state_mod.open(TMP, "paused"))
  local entry = saved:get("bulk").Lead
  t.ok(entry and entry.job == "7505g0000000000001" and entry.locator == "1000" and entry.read == 1000,
    "the state saves the Bulk job, the next locator and the records read so far", cjson.encode(entry))
  t.eq(saved:cursor("Lead").id, "00Q000000000001000", "... together with the cursor of the last page")

  -- next run (a new process): no new job, results from the saved locator
  org.refuse = nil
  org.calls = {}
  local job2 = new_job(org, "paused", {})
  local ctx2 = new_ctx(job2, out)
  status = bulk.run_object(job2, ITEM, ctx2)
  t.eq(status, "done", "the next run finishes the saved job")
  t.eq(table.concat(org.calls, ";"), "GET /jobs/query/7505g0000000000001;"
    .. "GET /jobs/query/7505g0000000000001/results?maxRecords=1000&locator=1000;"
    .. "GET /jobs/query/7505g0000000000001/results?maxRecords=1000&locator=2000",
    "resuming: one job check, then results from the saved locator (no new job, no polls)")
  t.same(out.lines, clean_lines, "paused + resumed output equals one clean run")
  t.eq(bulk.pending(job2, "Lead"), nil, "the finished job is dropped from the state")
end

---------------------------------------------------------------------------------------
-- stop while polling, then resume polling the same job

do
  local org = new_org { n = 1500, in_progress = 3 }
  local polls = 0
  local job = new_job(org, "stopped", nil, function() polls = polls + 1; return polls < 2 end)
  local out = new_out()
  local status = bulk.run_object(job, ITEM, new_ctx(job, out))
  t.eq(status, "stopped", "a signal during the poll wait stops the run")
  local entry = assert(state_mod.open(TMP, "stopped")):get("bulk").Lead
  t.ok(entry and entry.job == "7505g0000000000001" and entry.locator == nil, "the created job is saved before polling")
  org.calls = {}
  local job2 = new_job(org, "stopped", {})
  status = bulk.run_object(job2, ITEM, new_ctx(job2, out))
  t.eq(status, "done", "the next run completes the same job")
  t.eq(org.calls[1], "GET /jobs/query/7505g0000000000001", "... checking the saved job first")
  t.eq(org.njobs, 1, "... without creating another")
  t.eq(#out.lines, 1500, "... and writes every record once")
end

---------------------------------------------------------------------------------------
-- a saved job that is gone, or no longer matches, is replaced

do
  local org = new_org { n = 2500 }
  local job = new_job(org, "gone", {})
  local out = new_out()
  org.refuse = function(req)
    if req.path:find("locator=1000", 1, true) then return { "paused", "BUDGET", 1 } end
  end
  t.eq(bulk.run_object(job, ITEM, new_ctx(job, out)), "paused", "paused after one page")
  org.refuse = nil
  org.jobs = {}  -- Salesforce deleted the job (results are kept 7 days)
  org.calls = {}
  local job2 = new_job(org, "gone", {})
  local ctx2 = new_ctx(job2, out, { soql = "SELECT ... FROM Lead WHERE <after cursor>" })
  t.eq(bulk.run_object(job2, ITEM, ctx2), "done", "a run whose saved job is gone completes")
  t.eq(org.calls[1], "GET /jobs/query/7505g0000000000001", "the saved job is checked")
  t.eq(org.calls[2], "POST /jobs/query", "... and replaced by a new job")
  t.eq(org.last_spec.query, ctx2.soql, "the new job runs the query from the saved cursor")
end

do
  local org = new_org { n = 2500 }
  local job = new_job(org, "expired", {})
  local out = new_out()
  org.refuse = function(req)
    if req.path:find("locator=1000", 1, true) then return { "paused", "BUDGET", 1 } end
  end
  bulk.run_object(job, ITEM, new_ctx(job, out))
  org.refuse = nil
  org.bad_locators = true
  org.calls = {}
  local job2 = new_job(org, "expired", {})
  local ok, err = pcall(bulk.run_object, job2, ITEM, new_ctx(job2, out))
  t.ok(org.calls[3] == "POST /jobs/query", "results that are gone (INVALID_LOCATOR) start a new job", table.concat(org.calls, ";"))
  t.ok(not ok and tostring(err):find("INVALID_LOCATOR", 1, true), "... and a new job failing the same way raises instead of looping", tostring(err))
end

do
  local org = new_org { n = 2500 }
  local job = new_job(org, "moved", {})
  local out = new_out()
  org.refuse = function(req)
    if req.path:find("locator=1000", 1, true) then return { "paused", "BUDGET", 1 } end
  end
  bulk.run_object(job, ITEM, new_ctx(job, out))
  org.refuse = nil
  org.calls = {}
  local job2 = new_job(org, "moved", {})
  job2.state:set_cursor("Lead", { ts = "2024-01-01T00:02:00.000+0000", id = "00Q000000000001500" })  -- REST moved it
  bulk.run_object(job2, ITEM, new_ctx(job2, new_out()))
  t.eq(org.calls[1], "POST /jobs/query", "a saved job is not resumed once the cursor moved elsewhere")
  local job3 = new_job(org, "moved2", {})
  job3.state:set("bulk", { Lead = { job = "7505g0000000000001", locator = "1000", select = "Id, Email",
                                    operation = "queryAll", cursor = "" } })
  org.calls = {}
  bulk.run_object(job3, ITEM, new_ctx(job3, new_out()))
  t.eq(org.calls[1], "POST /jobs/query", "a saved job is not resumed once the select list changed")
end

---------------------------------------------------------------------------------------
-- pages streamed in pieces, query vs queryAll, max wait

-- The org's results as a stream handing out pieces of `size` bytes; broken:
-- the transfer breaks off after the first piece of the page asked for.
local function streamed(org, size, broken)
  local handle = org.handle
  org.handle = function(req)
    local resp, err, code, resume = handle(req)
    if resp and resp.status == 200 and req.path:find("/results", 1, true) then
      local body, pos = resp.body, 1
      local breaks = broken and broken(req)
      resp.body = nil
      resp.stream = {
        read = function()
          if breaks and pos > 1 then return nil, "Connection reset by peer", "RECV" end
          if pos > #body then return nil end
          local piece = body:sub(pos, pos + size - 1)
          pos = pos + size
          return piece
        end,
        close = function() end,
      }
    end
    return resp, err, code, resume
  end
end

do
  local org = new_org { n = 2500 }
  streamed(org, 7)
  local job = new_job(org, nil, {})
  local out = new_out()
  t.eq(bulk.run_object(job, ITEM, new_ctx(job, out, { all = false })), "done", "pages streamed in 7-byte pieces complete")
  t.eq(org.last_spec.operation, "query", "all = false makes a query job (no deleted rows)")
  t.same(out.lines, clean_lines, "... with the output of pages read whole (pieces split cells, quotes and lines)")
end

do
  local org = new_org { n = 2500 }
  local asked = 0
  streamed(org, 4096, function(req)
    if req.path:find("locator=1000", 1, true) then asked = asked + 1; return asked == 1 end
  end)
  local job = new_job(org, nil, {})
  local out = new_out()
  local ctx = new_ctx(job, out)
  t.eq(bulk.run_object(job, ITEM, ctx), "done", "a page whose transfer breaks off is asked for again")
  t.eq(asked, 2, "... once more")
  t.same(out.lines, clean_lines, "... and the broken piece leaves nothing behind")
  t.eq(ctx.checkpoints, 3, "... one checkpoint per page still")
end

do -- overlap: the next page is asked for before this one is checkpointed
  local org = new_org { n = 2500 }
  local events = {}
  local handle = org.handle
  org.handle = function(req)
    if req.path:find("/results", 1, true) then events[#events + 1] = req.path:match("locator=(%d+)") or "first" end
    return handle(req)
  end
  local job = new_job(org, nil, {})
  local out = new_out()
  local ctx = new_ctx(job, out, { concurrency = 4, events = events })
  t.eq(bulk.run_object(job, ITEM, ctx), "done", "a run asking for the next page ahead completes")
  t.eq(table.concat(events, ","), "first,1000,checkpoint,2000,checkpoint,checkpoint",
    "... each next page asked for before the page before it is checkpointed")
  t.same(out.lines, clean_lines, "... with the same output")
  events = {}
  local job2 = new_job(org, nil, {})
  bulk.run_object(job2, ITEM, new_ctx(job2, new_out(), { concurrency = 1, events = events }))
  t.eq(table.concat(events, ","), "first,checkpoint,1000,checkpoint,2000,checkpoint", "concurrency 1 reads page after page")
end

---------------------------------------------------------------------------------------
-- a page that does not hold what Salesforce said it holds

-- Runs a job whose page at `locator` (nil: the first) is damaged by damage(resp);
-- returns the error, the output and the saved state.
local function damaged(name, locator, damage, n)
  local org = new_org { n = n or 2500 }
  local handle = org.handle
  org.handle = function(req)
    local resp = handle(req)
    if resp and resp.status == 200 and req.path:find("/results", 1, true) and
        (req.path:match("locator=(%d+)") == locator) then
      damage(resp)
    end
    return resp
  end
  local job = new_job(org, name, {})
  local out = new_out()
  local ok, err = pcall(bulk.run_object, job, ITEM, new_ctx(job, out))
  return (not ok) and tostring(err) or nil, out, assert(state_mod.open(TMP, name))
end

do
  local err, out, st = damaged("lie", "1000", function(resp) resp.headers["sforce-numberofrecords"] = "1001" end)
  t.ok(err and err:find("Sforce-NumberOfRecords says 1001 records, the page holds 1000", 1, true),
    "a page holding fewer records than Sforce-NumberOfRecords says fails the run", err)
  t.ok(err and err:find("the checkpoint stays before this page", 1, true), "... saying the checkpoint stays", err)
  t.eq(#out.lines, 1000, "... the page is cut off again (only the page before it stays)")
  t.eq(st:get("bulk").Lead.locator, "1000", "... and the saved locator still points at it")
  t.eq(st:cursor("Lead").id, "00Q000000000001000", "... as does the cursor")
end

do
  local err, out, st = damaged("empty", "1000", function(resp)
    resp.body = ""
    resp.headers["sforce-numberofrecords"] = "0"
  end)
  t.ok(err and err:find("the page holds no records, yet Sforce-Locator says more pages follow", 1, true),
    "an empty page that is not the last fails the run (even when its count says 0)", err)
  t.eq(#out.lines, 1000, "... keeping the pages before it")
  t.eq(st:get("bulk").Lead.locator, "1000", "... and the checkpoint before it")
end

do
  local err, out = damaged("headeronly", "1000", function(resp)
    resp.body = HEADER .. "\n"
  end)
  t.ok(err and err:find("Sforce-NumberOfRecords says 1000 records, the page holds 0", 1, true),
    "a header-only page whose count says it holds records fails the run", err)
  t.eq(#out.lines, 1000, "... keeping the pages before it")
end

do
  local err, out, st = damaged("short", "2000", function(resp)
    resp.body = HEADER .. "\n"
    resp.headers["sforce-numberofrecords"] = "0"
  end)
  t.ok(err and err:find("the job processed 2500 records (numberRecordsProcessed), its pages held 2000", 1, true),
    "a last page that leaves the job short of numberRecordsProcessed fails the run", err)
  t.eq(#out.lines, 2000, "... keeping the pages before it")
  t.eq(st:get("bulk").Lead.locator, "2000", "... and the checkpoint before the last page")
end

do
  local err, out = damaged("badcsv", nil, function(resp)
    resp.body = resp.body:gsub("\n", "\n\"", 5)
  end)
  t.ok(err and err:find("malformed CSV at line", 1, true), "a malformed page fails the run", err)
  t.eq(#out.lines, 0, "... writing nothing of it")
end

do
  local org = new_org { n = 10, in_progress = 1000000 }
  local job = new_job(org, "slow", nil, clock.sleep)
  local t0 = clock.monotonic()
  t.raises(function() bulk.run_object(job, ITEM, new_ctx(job, new_out(), { max_wait = 0.3, poll_start = 0.05 })) end,
    "is not complete after 0 s (bulk_max_wait); the next run keeps waiting for it", "waiting longer than max_wait raises")
  t.ok(clock.monotonic() - t0 < 2, "... after about max_wait")
  t.ok(bulk.pending(job, "Lead") ~= nil, "... keeping the job for the next run")
end

---------------------------------------------------------------------------------------
-- helpers

do
  local d = { fields = { { name = "Id", type = "id" }, { name = "Address", type = "address" }, { name = "Email", type = "email" },
                         { name = "OwnerId", type = "reference", relationshipName = "Owner", referenceTo = { "User" } },
                         { name = "Employees", type = "int" } } }
  t.ok(bulk.eligible({ "Id", "Email", "Owner.Name" }, d), "eligible: plain and parent fields")
  local ok, why = bulk.eligible({ "Id", "(SELECT Id FROM Contacts)" }, d)
  t.ok(not ok and why:find("child relationship", 1, true), "eligible: a subquery is not", why)
  ok, why = bulk.eligible({ "Id", "Address" }, d)
  t.ok(not ok and why:find("compound field Address", 1, true), "eligible: a compound field is not", why)
  ok = bulk.eligible({ "FIELDS(STANDARD)" }, d)
  t.ok(not ok, "eligible: FIELDS() is not")
  local cols = bulk.columns({ "Id", "Employees", "Owner.Name", "Owner.Id", "Owner.IsActive", "Nope" }, d)
  t.same(cols, { Id = "id", Employees = "int", ["Owner.Name"] = "string", ["Owner.Id"] = "id",
                 ["Owner.IsActive"] = "string", Nope = "string" }, "columns: describe types; parent fields as strings")
  cols = bulk.columns({ "Owner.IsActive" }, d, function(obj)
    if obj == "User" then return { fields = { { name = "IsActive", type = "boolean" } } } end
  end)
  t.eq(cols["Owner.IsActive"], "boolean", "columns: parent fields typed through a parent describe")
  t.eq(bulk.count_soql("SELECT Id, Name FROM Lead WHERE (LastModifiedDate > 2024-01-01T00:00:00Z OR (LastModifiedDate = 2024-01-01T00:00:00Z AND Id > 'x ORDER BY y')) ORDER BY LastModifiedDate ASC, Id ASC"),
    "SELECT COUNT() FROM Lead WHERE (LastModifiedDate > 2024-01-01T00:00:00Z OR (LastModifiedDate = 2024-01-01T00:00:00Z AND Id > 'x ORDER BY y'))",
    "count_soql: COUNT() of the same WHERE, without ORDER BY")
  local org = new_org()
  local job = new_job(org, nil, {})
  job.client.request = function(_, req)
    org.path = req.path
    return { status = 200, headers = {}, body = "", data = { totalSize = 123456.0, done = true, records = {} } }
  end
  t.eq(bulk.count(job, "SELECT Id FROM Lead ORDER BY Id ASC", true), 123456, "count: totalSize of a COUNT() query")
  t.eq(org.path, "/queryAll?q=SELECT COUNT() FROM Lead", "count: one queryAll call")
end

t.done()
