-- sfengine --estimate job.lua: what an import will cost before it runs.
--
-- One SELECT COUNT() per object (one API call each, with the same filter the
-- run will use: since, and the saved (timestamp, Id) cursor), then the
-- engine's real cost model for a clean run:
--   per object  1 describe (0 while the import's describe cache in the state
--               directory is fresh) + max(1, ceil(records / batch_size)) query pages
-- (the run queries with queryAll when deletions are imported, so the count
-- does too). Retries of failed calls are not counted by Salesforce and 401s
-- are not either, so a run without other traffic costs exactly this.
-- Then the days it takes under the budgets: the job's max_daily_api_calls (or,
-- without one, the org's share from Sforce-Limit-Info), taking the calls
-- already spent in the current 24-hour window into account. The product
-- documents' rule of thumb (records / daily calls) assumes one call per
-- record; paging makes a run about batch_size times cheaper.
local plan = require "sf.import.plan"
local jobs = require "sf.jobs"
local mapping = require "sf.mapping"

local M = {}

-- Calls a clean run makes for n records in pages of batch (plus its describe).
function M.calls_for(n, batch, describe)
  return (describe == false and 0 or 1) + math.max(1, math.ceil(n / batch))
end

-- A Bulk API 2.0 query job instead (sf.import.bulk): one create, polls (about two;
-- they depend on Salesforce's load) and one call per results page. Used in
-- mode "bulk", or in "auto" after the first REST page when more than
-- bulk_threshold records are still due; never for queries with child
-- subqueries (the Account and Opportunity default mappings have them).
M.BULK_POLLS = 2
local function bulk_calls(job, item, n)
  local r = job.recipe
  if item.mode == "rest" then return nil end
  if item.standard and (mapping.default(item.default_stream).children or {})[1] then return nil end
  if item.mode == "bulk" then return 1 + M.BULK_POLLS + math.max(1, math.ceil(n / r.bulk_max_records)) end
  if n - r.batch_size > r.bulk_threshold then
    return 1 + 1 + M.BULK_POLLS + math.ceil((n - r.batch_size) / r.bulk_max_records)
  end
end

-- Will the run find this object's describe in its cache, or call for it?
local function needs_describe(job, object)
  return jobs.cached_describe(job, object, plan.DESCRIBE_TTL) == nil
end

-- Days to spend `calls` with `per_day` calls per rolling 24 h when `used`
-- are spent already in the current window (they free up within a day).
function M.days_for(calls, per_day, used)
  if per_day <= 0 then return math.huge end
  local first = math.max(0, per_day - (used or 0))
  if calls <= first then return 1 end
  return 1 + math.ceil((calls - first) / per_day)
end

local function count_query(item, cursor)
  local q = plan.build_query({ "COUNT()" }, item.object, item.timestamp_field, item.since, cursor)
  return (q:gsub(" ORDER BY .*$", ""))
end
M.count_query = count_query

function M.run(job)
  local r = job.recipe
  local rows, total_records, total_calls = {}, 0, 0
  for _, item in ipairs(job.plan) do
    local soql = count_query(item, job.state:cursor(item.object))
    local data, err, code = job.client:get_json(job.client:query_path(soql, r.deletions))
    if not data then
      job.state:set("budget", job.budget:dump())
      job.state:checkpoint()
      if code == "BUDGET" then job.log.warn("%s", err); return 3 end
      if code == "STOPPED" then job.log.warn("%s", err); return 4 end
      job.log.error("%s: count failed: %s", item.object, err)
      return 1
    end
    local n = math.tointeger(tonumber(data.totalSize)) or 0
    local describe = needs_describe(job, item.object)
    local calls, how = M.calls_for(n, r.batch_size, describe), "REST pages"
    local bulk = bulk_calls(job, item, n)
    if bulk and bulk + (describe and 1 or 0) < calls then
      calls, how = bulk + (describe and 1 or 0), "Bulk API 2.0 job"
    end
    rows[#rows + 1] = { object = item.object, records = n, calls = calls, how = how }
    total_records, total_calls = total_records + n, total_calls + calls
  end
  local lines = {}
  lines[#lines + 1] = string.format("estimate for %s (pages of %d records%s%s):", r.name, r.batch_size,
    r.deletions and ", deleted records included" or "",
    (job.state:get("runs") or 0) > 0 and ", from the saved cursors" or "")
  for _, row in ipairs(rows) do
    lines[#lines + 1] = string.format("  %-24s %10d records %8d API calls (%s)", row.object, row.records, row.calls, row.how)
  end
  lines[#lines + 1] = string.format("  %-24s %10d records %8d API calls", "total", total_records, total_calls)
  local b = job.budget
  if r.max_daily_api_calls then
    local per_day = r.max_daily_api_calls
    local used = b:used()
    local days = M.days_for(total_calls, per_day, used)
    lines[#lines + 1] = string.format("  job budget: %d API calls per 24 h, %d used in the current window: %d day%s",
      per_day, used, days, days == 1 and "" or "s")
    lines[#lines + 1] = string.format("  (one call per record, the product documents' rule of thumb, would take %d day%s)",
      math.ceil(total_records / per_day), math.ceil(total_records / per_day) == 1 and "" or "s")
  end
  if b.org_max then
    local share = math.floor(r.org_share * b.org_max)
    local days = M.days_for(total_calls, share, b.org_used)
    lines[#lines + 1] = string.format("  org: %d of %d API calls used (Sforce-Limit-Info); the job's share of %d%% is %d per 24 h: %d day%s",
      b.org_used or 0, b.org_max, math.floor(r.org_share * 100 + 0.5), share, days, days == 1 and "" or "s")
  end
  lines[#lines + 1] = string.format("  this estimate used %d API calls", b.run_calls)
  io.stdout:write(table.concat(lines, "\n"), "\n")
  io.stdout:flush()
  job.state:set("budget", b:dump())
  job.state:checkpoint()
  return 0
end

return M
