-- Bulk API 2.0 query mode of the import job: one query job per object
-- instead of one REST call per 2,000 records.
--
--   local bulk = require "sf.import.bulk"
--   local status, message, resume_at = bulk.run_object(job, item, ctx)
--
-- job: the import job (client, state, log, recipe); item: the planned object
-- ({object, stream, ...}); ctx:
--   select       the compiled SOQL select items (no "(SELECT" subquery item)
--   soql         the query from the saved cursor, ordered by (timestamp, Id)
--   columns      { [field path] = describe type } (bulk.columns builds it)
--   mp           the compiled sf.mapper
--   sink         the object's sf.import.sink: every results page ends with
--                sink:checkpoint (its st counts records, deleted, rejected, pages;
--                st.total is set from the job's numberRecordsProcessed)
--   all          queryAll (deleted rows too); default job.recipe.deletions ~= false
--   max_records  results page size (default 50,000)
--   max_wait     seconds to wait for the job to complete (default 6 h)
--   concurrency  calls in flight at once (sf.flight.bound); above 1 the next
--                results page is asked for while this one is mapped
--   progress     optional function() called after each page
--
-- Flow: POST /jobs/query -> poll GET /jobs/query/<id> (1 s, doubling, at most
-- 30 s apart) until JobComplete -> GET .../results?maxRecords=N[&locator=L]
-- (text/csv) until Sforce-Locator is "null". Each page is streamed: the bytes
-- of the transfer go through sf.csv (the records as sf.page pages, no JSON in
-- between) and the mapper into the sink CHUNK_BYTES at a time, so memory
-- does not depend on the page size. A page whole and checked is
-- checkpointed: records parsed must equal its Sforce-NumberOfRecords, a page
-- without records must be the last, and the last page brings the job's count
-- to its numberRecordsProcessed; otherwise the page is cut off again and the
-- run fails with the checkpoint before it. The checkpoint saves, in the same
-- atomic write as the cursor and the output sizes, { job, locator, read } of
-- the Bulk job. A
-- killed or paused run resumes the same job at the next locator while
-- Salesforce keeps its results (7 days); a job that is gone, or no longer
-- matches the select list, operation or cursor, is replaced by a new one
-- from the saved cursor. Every call goes through job.client:request, so the
-- budget admits each one. Failed/Aborted jobs return "failed" with
-- Salesforce's errorMessage (and are remembered, so "auto" mode can stay with
-- REST for a while).
local csv = require "sf.csv"
local clock = require "sf.clock"
local signal = require "sf.signal"
local http = require "sf.http"
local client_mod = require "sf.client"
local flight = require "sf.flight"

local M = {}

M.DEFAULT_MAX_RECORDS = 50000
M.DEFAULT_MAX_WAIT = 6 * 3600
M.DEFAULT_THRESHOLD = 50000
M.POLL_START = 1
M.POLL_CAP = 30
M.MAX_PAGE_BYTES = 1 << 40     -- one results page: streamed, so its size costs no memory
M.CHUNK_BYTES = 256 << 10      -- bytes of a page mapped at a time
M.WINDOW_BYTES = 1 << 20       -- bytes a page's transfer buffers before it pauses
M.STATE_KEY = "bulk"           -- job state: { [object] = { job, locator, read, select, operation, cursor, created } }
M.FAILED_KEY = "bulk_failed"   -- job state: { [object] = { at, job, message } }

local COMPOUND = { address = true, location = true }

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- The cursor as one comparable string ("" for none).
local function cursor_key(c)
  if type(c) ~= "table" or c.id == nil then return "" end
  return tostring(c.ts) .. "|" .. tostring(c.id)
end

local function field_index(describe)
  local ix, rels = {}, {}
  for _, f in ipairs((describe and describe.fields) or {}) do
    ix[f.name:lower()] = f
    if type(f.relationshipName) == "string" then rels[f.relationshipName:lower()] = f end
  end
  return ix, rels
end

-- Whether a compiled select list can run as a Bulk 2.0 query: no subqueries
-- (child relationships), no FIELDS(), no compound address/location fields.
-- Returns true, or false and the reason.
function M.eligible(select, describe)
  local ix = field_index(describe)
  for _, item in ipairs(select) do
    if item:find("^%s*%(") then return false, "selects a child relationship (" .. item:sub(1, 60) .. ")" end
    if item:upper():find("^%s*FIELDS%(") then return false, "uses FIELDS()" end
    local f = not item:find(".", 1, true) and ix[item:lower()]
    if f and COMPOUND[f.type] then return false, "selects the compound field " .. f.name end
  end
  return true
end

-- { [select item] = describe type } for sf.csv. A parent path ("RecordType.Name")
-- is typed through parent_describe(object) -> describe|nil when given (e.g.
-- a cached describe); otherwise "id" for ".Id" and "string" for the rest
-- (the mapper's number/int/bool/date rules accept such strings, so only a
-- numeric parent field mapped as a string could read differently from REST).
function M.columns(select, describe, parent_describe)
  local ix, rels = field_index(describe)
  local cols = {}
  for _, item in ipairs(select) do
    if not item:find("^%s*%(") then
      if not item:find(".", 1, true) then
        local f = ix[item:lower()]
        cols[item] = f and f.type or "string"
      else
        local t
        local segs = {}
        for s in item:gmatch("[^.]+") do segs[#segs + 1] = s end
        local d_ix, d_rels = ix, rels
        for i = 1, #segs - 1 do
          local ref = d_rels and d_rels[segs[i]:lower()]
          local target = ref and type(ref.referenceTo) == "table" and #ref.referenceTo == 1 and ref.referenceTo[1]
          local pd = target and parent_describe and parent_describe(target)
          if pd then d_ix, d_rels = field_index(pd) else d_ix, d_rels = nil, nil; break end
        end
        local f = d_ix and d_ix[segs[#segs]:lower()]
        if f then t = f.type elseif segs[#segs]:lower() == "id" then t = "id" else t = "string" end
        cols[item] = t
      end
    end
  end
  return cols
end

-- "SELECT ... FROM X [WHERE ...] ORDER BY ..." -> "SELECT COUNT() FROM X [WHERE ...]".
function M.count_soql(soql)
  local rest = soql:match("^SELECT .- FROM (.*)$")
  if not rest then error("sf.bulk.count_soql: not a SELECT: " .. soql:sub(1, 80), 2) end
  rest = rest:gsub(" ORDER BY [^']*$", "")
  return "SELECT COUNT() FROM " .. rest
end

-- The number of records a query would return (one REST call): n, or nil,
-- message, code, resume_at ("BUDGET": pause).
function M.count(job, soql, all)
  local resp, err, code, resume = job.client:request { method = "GET", path = job.client:query_path(M.count_soql(soql), all) }
  if not resp then return nil, err, code, resume end
  local n = type(resp.data) == "table" and math.tointeger(resp.data.totalSize)
  if resp.status ~= 200 or not n then
    local ecode, emsg = client_mod.error_code(resp)
    return nil, string.format("count query failed: HTTP %d %s: %s", resp.status, tostring(ecode),
      tostring(emsg or resp.body:sub(1, 300))), ecode or ("HTTP_" .. resp.status)
  end
  return n
end

-- The saved Bulk job of an object (a table), or nil.
function M.pending(job, object)
  local all = job.state:get(M.STATE_KEY)
  return type(all) == "table" and all[object] or nil
end

local function save_entry(job, object, entry)
  local all = job.state:get(M.STATE_KEY)
  if type(all) ~= "table" then all = {} end
  all[object] = entry
  if next(all) == nil then all = nil end
  job.state:set(M.STATE_KEY, all)
end

-- Drops the saved Bulk job of an object (the caller checkpoints). A REST run
-- that moves the cursor must call this: a saved locator is only valid for the
-- cursor it was saved with (run_object checks that too).
function M.forget(job, object) save_entry(job, object, nil) end

-- Whether a Bulk job of the object failed within ttl seconds (auto mode then
-- stays with REST).
function M.recently_failed(job, object, ttl)
  local all = job.state:get(M.FAILED_KEY)
  local f = type(all) == "table" and all[object]
  return type(f) == "table" and type(f.at) == "number" and clock.now() - f.at < (ttl or 86400)
end

local function remember_failure(job, object, id, message)
  local all = job.state:get(M.FAILED_KEY)
  if type(all) ~= "table" then all = {} end
  all[object] = { at = clock.now(), job = id, message = message:sub(1, 500) }
  job.state:set(M.FAILED_KEY, all)
  M.forget(job, object)
  job.state:checkpoint()
end

local function http_error(object, what, resp)
  local ecode, emsg = client_mod.error_code(resp)
  return string.format("%s: %s: HTTP %d %s: %s", object, what, resp.status, tostring(ecode),
    tostring(emsg or resp.body:sub(1, 300)))
end

local function stopped()
  return "stopped", "stopped by SIG" .. tostring(signal.pending())
end

-- A failed request: a status triple to return, or raises.
local function request_failed(object, what, err, code, resume)
  if code == "BUDGET" then return "paused", err, resume end
  if code == "INTERRUPTED" or code == "STOPPED" then return stopped() end
  error(string.format("%s: %s: %s (%s)", object, what, tostring(err), tostring(code)), 0)
end

-- Polls a job until JobComplete: "done", nil, nil, info | status, message, resume_at
-- ("failed", message when Salesforce says Failed or Aborted).
local function wait_job(job, object, id, ctx, sleep)
  local max_wait = ctx.max_wait or M.DEFAULT_MAX_WAIT
  local delay = ctx.poll_start or M.POLL_START
  local cap = ctx.poll_cap or M.POLL_CAP
  local started = clock.monotonic()
  local polls = 0
  while true do
    if signal.pending() then return stopped() end
    local waited = clock.monotonic() - started
    if waited >= max_wait then
      error(string.format("%s: Bulk query job %s is not complete after %d s (bulk_max_wait); the next run keeps waiting for it",
        object, id, math.floor(waited)), 0)
    end
    if not sleep(math.min(delay, max_wait - waited)) then return stopped() end
    local resp, err, code, resume = job.client:request { method = "GET", path = "/jobs/query/" .. id }
    if not resp then return request_failed(object, "polling Bulk query job " .. id, err, code, resume) end
    polls = polls + 1
    if resp.status ~= 200 or type(resp.data) ~= "table" then
      if resp.status == 404 then M.forget(job, object); job.state:checkpoint() end
      error(http_error(object, "polling Bulk query job " .. id, resp), 0)
    end
    local state = resp.data.state
    job.log.debug("%s: Bulk query job %s is %s (poll %d, %.0f s)", object, id, tostring(state), polls,
      clock.monotonic() - started)
    if state == "JobComplete" then return "done", nil, nil, resp.data end
    if state == "Failed" or state == "Aborted" then
      local msg = string.format("%s: Bulk query job %s %s: %s", object, id, state:lower(),
        tostring(resp.data.errorMessage or "(Salesforce gave no errorMessage)"))
      remember_failure(job, object, id, msg)
      return "failed", msg
    end
    delay = math.min(delay * 2, cap)
  end
end

-- Creates the query job and saves it: entry, info | nil, status, message, resume_at.
local function create_job(job, item, ctx, op, select_text)
  local resp, err, code, resume = job.client:request {
    method = "POST", path = "/jobs/query", retry = true,
    json = { operation = op, query = ctx.soql, contentType = "CSV", columnDelimiter = "COMMA", lineEnding = "LF" },
  }
  if not resp then return nil, request_failed(item.object, "creating a Bulk query job", err, code, resume) end
  if resp.status ~= 200 or type(resp.data) ~= "table" or type(resp.data.id) ~= "string" then
    error(http_error(item.object, "creating a Bulk query job", resp), 0)
  end
  local entry = { job = resp.data.id, select = select_text, operation = op,
                  cursor = cursor_key(job.state:cursor(item.object)), created = iso(clock.now()) }
  save_entry(job, item.object, entry)
  job.state:checkpoint()
  job.log.info("%s: Bulk query job %s created (%s)", item.object, entry.job, op)
  return entry, resp.data
end

-- The saved job of the object, when it can be resumed: the same query from
-- the same cursor, and still known to Salesforce. Returns entry, info (the
-- job's state), or nil when a new job is needed, or nil, nil, status,
-- message, resume_at to end the run.
local function saved_job(job, object, q)
  local entry = M.pending(job, object)
  if not entry then return nil end
  if entry.select ~= q.select_text or entry.operation ~= q.op
      or entry.cursor ~= cursor_key(job.state:cursor(object)) then
    job.log.info("%s: the saved Bulk query job %s no longer matches the query or cursor; starting a new one", object, tostring(entry.job))
    M.forget(job, object)
    return nil
  end
  local resp, err, code, resume = job.client:request { method = "GET", path = "/jobs/query/" .. entry.job }
  if not resp then return nil, nil, request_failed(object, "reading Bulk query job " .. entry.job, err, code, resume) end
  if resp.status == 404 then
    job.log.info("%s: Bulk query job %s is gone; starting a new one from the saved cursor", object, entry.job)
    M.forget(job, object)
    return nil
  end
  if resp.status ~= 200 or type(resp.data) ~= "table" then
    error(http_error(object, "reading Bulk query job " .. entry.job, resp), 0)
  end
  local info = resp.data
  if info.state == "Failed" or info.state == "Aborted" then
    local msg = string.format("%s: Bulk query job %s %s: %s", object, entry.job, info.state:lower(),
      tostring(info.errorMessage or "(Salesforce gave no errorMessage)"))
    remember_failure(job, object, entry.job, msg)
    return nil, nil, "failed", msg
  end
  job.log.info("%s: resuming Bulk query job %s (%s)%s", object, entry.job, tostring(info.state),
    entry.locator and " at its next results page" or "")
  return entry, info
end

-- The request of one results page, streamed: its body is read as it arrives.
local function results_request(job, entry, q, locator)
  local path = "/jobs/query/" .. entry.job .. "/results?maxRecords=" .. q.max_records
  if locator then path = path .. "&locator=" .. http.urlencode(locator) end
  return job.client:request {
    method = "GET", path = path, headers = { Accept = "text/csv" },
    stream = true, max_bytes = M.MAX_PAGE_BYTES, window_bytes = M.WINDOW_BYTES,
  }
end

local function locator_of(resp)
  local loc = resp.headers["sforce-locator"]
  if loc == "" or loc == "null" then return nil end
  return loc
end

-- The body of a results page piece by piece: a stream, or a body read whole
-- (a client that buffers, as tests' scripted orgs do). Returns chunk | nil
-- (the end) | nil, message, code.
local function body_reader(resp)
  if resp.stream then
    return function() return resp.stream:read(M.CHUNK_BYTES) end
  end
  local body = resp.body or ""
  return function()
    local chunk = body
    body = nil
    if chunk == "" then chunk = nil end
    return chunk
  end
end

-- One results page, streamed through sf.csv and the mapper into the sink,
-- then checked and checkpointed with the saved job's next locator (or the
-- job forgotten after its last page). Returns "done" and the next locator,
-- or "retry" (the transfer broke off: the page was cut off again and can be
-- asked for anew); raises on a page that is malformed or does not hold the
-- records Salesforce said it holds, after cutting it off (the checkpoint
-- stays before it).
local function stream_page(job, item, ctx, q, entry, resp, locator)
  local object, sink = item.object, ctx.sink
  local next_loc = locator_of(resp)
  local said = math.tointeger(tonumber(resp.headers["sforce-numberofrecords"]))
  local where = string.format("%s: Bulk results of job %s%s", object, entry.job,
    locator and (" at locator " .. locator) or " (first page)")
  local rd <close> = csv.reader(ctx.columns, object)
  local read = body_reader(resp)
  local function refuse(msg)
    if resp.stream then resp.stream:close() end
    sink:rollback()
    error(where .. ": " .. msg .. "; the checkpoint stays before this page", 0)
  end
  local function map(p, err, code)
    if not p then refuse(tostring(err) .. " (" .. tostring(code) .. ")") end
    local lines, rejects, ps = ctx.mp:map_page(p)
    p:close()
    sink:write(lines, rejects, ps)
  end
  while true do
    local chunk, err, code = read()
    if not chunk then
      if err then
        sink:rollback()
        if client_mod.TRANSIENT_TRANSPORT[code] then
          job.log.info("%s: the transfer broke off (%s %s); asking for the page again", where, tostring(code), tostring(err))
          return "retry"
        end
        error(where .. ": " .. tostring(err) .. " (" .. tostring(code) .. ")", 0)
      end
      break
    end
    map(rd:feed(chunk))
    if signal.pending() then
      if resp.stream then resp.stream:close() end
      sink:rollback()
      return "stopped"
    end
  end
  map(rd:finish())
  local n = rd.records
  -- A page that says there is more is not the end (issue: silent short pages).
  if said and said ~= n then
    refuse(string.format("Sforce-NumberOfRecords says %d records, the page holds %d", said, n))
  end
  if n == 0 and next_loc then refuse("the page holds no records, yet Sforce-Locator says more pages follow") end
  local total = entry.read and entry.read + n
  if not next_loc and total and q.processed and total ~= q.processed then
    refuse(string.format("the job processed %d records (numberRecordsProcessed), its pages held %d", q.processed, total))
  end
  sink:checkpoint(function(p)
    if next_loc then
      entry.locator, entry.read = next_loc, total
      if p.last_id then entry.cursor = cursor_key { ts = p.last_ts, id = p.last_id } end
      save_entry(job, object, entry)
    else
      M.forget(job, object)
    end
  end)
  if ctx.progress then ctx.progress() end
  return "done", next_loc
end

-- Reads a complete job's results pages from its saved locator, each page
-- streamed into the sink; with q.overlap the next page is asked for (an
-- sf.flight task) as soon as this page's Sforce-Locator is known, so its
-- wait overlaps this page's mapping. Returns status, message, resume_at; or
-- "restart" when the job's results are gone before a first page
-- (may_restart): a new job from the saved cursor is exactly where this one's
-- next page would have started.
local function read_results(job, item, ctx, q, entry, may_restart)
  local object = item.object
  local locator = entry.locator
  local ahead, ahead_loc   -- the task asking for the page at ahead_loc
  local retries = 0
  local function drop_ahead()
    if ahead then ahead:cancel() end
    ahead, ahead_loc = nil, nil
  end
  while true do
    if signal.pending() then drop_ahead(); return stopped() end
    local resp, err, code, resume
    if ahead and ahead_loc == locator then
      resp, err, code, resume = ahead:join()
      ahead, ahead_loc = nil, nil
    else
      drop_ahead()
      resp, err, code, resume = results_request(job, entry, q, locator)
    end
    if not resp then drop_ahead(); return request_failed(object, "reading Bulk query results", err, code, resume) end
    if resp.status ~= 200 then
      drop_ahead()
      local ecode = client_mod.error_code(resp)
      if may_restart and (resp.status == 404 or ecode == "INVALID_LOCATOR" or ecode == "INVALIDJOBSTATE") then
        job.log.info("%s: results of Bulk query job %s are gone (HTTP %d %s); starting a new job", object, entry.job,
          resp.status, tostring(ecode))
        M.forget(job, object)
        return "restart"
      end
      -- The saved job and locator stay consistent with the checkpoint: the
      -- next run resumes there (or replaces the job if its results are gone).
      error(http_error(object, "reading Bulk query results of job " .. entry.job, resp), 0)
    end
    local next_loc = locator_of(resp)
    if q.overlap and next_loc and not ahead then
      ahead, ahead_loc = flight.spawn(results_request, job, entry, q, next_loc), next_loc
    end
    local ok, status, loc = pcall(stream_page, job, item, ctx, q, entry, resp, locator)
    if resp.stream then resp.stream:close() end
    if not ok then drop_ahead(); error(status, 0) end
    if status == "stopped" then drop_ahead(); return stopped() end
    if status == "retry" then
      retries = retries + 1
      if retries >= job.client.max_attempts then
        drop_ahead()
        error(string.format("%s: Bulk results of job %s broke off %d times", object, entry.job, retries), 0)
      end
      if not job.client:wait(job.client:backoff(retries)) then drop_ahead(); return stopped() end
    else
      retries = 0
      locator = loc
      if not locator then drop_ahead(); return "done" end
      may_restart = false
    end
  end
end

-- Imports one object through a Bulk 2.0 query job. Returns "done", or
-- "paused"/"stopped" with a message (and resume_at for a budget pause), or
-- "failed" with "<Object>: Bulk query job <id> failed: <errorMessage>" when
-- Salesforce failed or aborted the job: nothing of that job was written, the
-- saved job is dropped and the failure remembered (bulk.recently_failed), so
-- the caller may raise the message or go on with REST from the cursor.
-- Anything else unexpected raises.
function M.run_object(job, item, ctx)
  local object = item.object
  local ok, why = M.eligible(ctx.select, nil)
  if not ok then error("sf.import.bulk.run_object: " .. object .. " " .. why .. ": Bulk API 2.0 cannot run it", 2) end
  local all = ctx.all
  if all == nil then all = not (job.recipe and job.recipe.deletions == false) end
  local q = { op = all and "queryAll" or "query", select_text = table.concat(ctx.select, ", "),
              max_records = ctx.max_records or M.DEFAULT_MAX_RECORDS, overlap = (ctx.concurrency or 1) > 1 }
  local sleep = ctx.sleep or job.client.sleep or clock.sleep

  local entry, info, status, message, resume_at = saved_job(job, object, q)
  if status then return status, message, resume_at end
  local may_restart = true
  while true do
    if not entry then
      if signal.pending() then return stopped() end
      local created, created_info, failed_message, failed_resume = create_job(job, item, ctx, q.op, q.select_text)
      if not created then return created_info, failed_message, failed_resume end
      entry, info = created, created_info
    end
    if info.state ~= "JobComplete" then
      status, message, resume_at, info = wait_job(job, object, entry.job, ctx, sleep)
      if status ~= "done" then return status, message, resume_at end
    end
    q.processed = math.tointeger(info.numberRecordsProcessed)
    if ctx.sink.st.total == nil then ctx.sink.st.total = q.processed end
    if entry.locator == nil then entry.read = 0 end   -- a saved job from before counts began: unchecked
    status, message, resume_at = read_results(job, item, ctx, q, entry, may_restart)
    if status ~= "restart" then return status, message, resume_at end
    entry, info, may_restart = nil, nil, false
  end
end

return M
