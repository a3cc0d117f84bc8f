-- sf.import.rest: the REST query page loop of one object. One queryAll (or
-- query) ordered by (timestamp field, Id) from the saved cursor, followed
-- through nextRecordsUrl; each page is tokenized (sf.page), mapped in C
-- (sf.mapper) and committed by the sink (sf.import.sink) before the next
-- page is asked for.
--
--   local status, message, resume_at = rest.run(job, item, o, sink, opts)
--     o      the planned object (sf.import.plan.object): compiled, mp
--     opts   progress = function() after each page;
--            bulk = function() -> status, message, resume_at | nil: in auto
--            mode, called once after the first page when more than
--            bulk_threshold records are still due (nil: Bulk did not run,
--            go on with REST from the cursor)
--   status "done", or "paused" (budget; resume_at) / "stopped" (signal).
local page = require "sf.page"
local signal = require "sf.signal"
local client_mod = require "sf.client"
local plan = require "sf.import.plan"
local failure = require "sf.import.failure"

local M = {}

M.MAX_RESTARTS = 3   -- consecutive query restarts (expired cursor) without a page in between

function M.run(job, item, o, sink, opts)
  local r = job.recipe
  local function query_path() return job.client:query_path(plan.query(job, item, o), r.deletions) end
  local path = query_path()
  local headers = { ["Sforce-Query-Options"] = "batchSize=" .. r.batch_size }
  local auto = opts.bulk ~= nil
  local restarts = 0
  while path do
    if signal.pending() then return "stopped", "stopped by SIG" .. signal.pending() end
    local resp, err, code, resume = job.client:request { method = "GET", path = path, headers = headers }
    if not resp then
      if code == "BUDGET" then return "paused", err, resume end
      if code == "STOPPED" then return "stopped", err end
      error(item.object .. ": query failed: " .. tostring(err) .. " (" .. tostring(code) .. ")", 0)
    end
    if resp.status == 400 and client_mod.error_code(resp) == "INVALID_QUERY_LOCATOR" and restarts < M.MAX_RESTARTS then
      -- The query cursor expired or was evicted: ask again from the
      -- checkpointed (timestamp, Id) cursor; nothing is lost or read twice.
      restarts = restarts + 1
      job.log.info("%s: query cursor expired; restarting the query from the checkpoint", item.object)
      path = query_path()
    else
      restarts = 0
      if resp.status ~= 200 then
        local ecode, emsg = client_mod.error_code(resp)
        -- A field the cached describe still lists is gone (an admin removed
        -- it): the next run plans the object against the org as it is now.
        if ecode == "INVALID_FIELD" then plan.forget_describe(job, item.object) end
        local msg = string.format("%s: query failed: HTTP %d %s: %s", item.object, resp.status, tostring(ecode),
          tostring(emsg or resp.body:sub(1, 300)))
        -- A query Salesforce refuses (400 INVALID_FIELD, MALFORMED_QUERY, 404)
        -- is this object's; 401/403/5xx would refuse every object alike.
        if resp.status >= 400 and resp.status < 500 and resp.status ~= 401 and resp.status ~= 403 then
          error(failure.object(msg), 0)
        end
        error(msg, 0)
      end
      local p, perr = page.parse(resp.body)
      if not p then error(failure.object(item.object .. ": bad query response: " .. tostring(perr)), 0) end
      sink.st.total = sink.st.total or p.total_size
      local lines, rejects, ps = o.mp:map_page(p)
      sink:commit(lines, rejects, ps)
      if opts.progress then opts.progress() end
      path = (not p.done) and p.next_url or nil
      if auto and path and (p.total_size or 0) - #p > r.bulk_threshold then
        job.log.info("%s: %d more records are due: switching to a Bulk API 2.0 query job", item.object, p.total_size - #p)
        local status, message, resume_at = opts.bulk()
        if status then return status, message, resume_at end
        path = query_path()
      end
      auto = false
      p:close()   -- free the page's tokens now, not at some later GC cycle
    end
  end
  return "done"
end

return M
