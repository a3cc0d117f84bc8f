-- sfengine --estimate job.lua: what an import will cost before it runs.
--
-- One SELECT COUNT() per object (each one API call), then the engine's real
-- cost model: one describe plus one call per page of batch_size records per
-- object. The product documents' rule of thumb (records / daily calls)
-- assumes about one call per record; paging makes it ~batch_size times less.
local client_mod = require "sf.client"
local import = require "sf.import"

local M = {}

function M.run(job)
  local r = job.recipe
  local rows, total_records, total_calls = {}, 0, 0
  for _, item in ipairs(job.plan) do
    local where = ""
    if item.since then where = " WHERE " .. item.timestamp_field .. " >= " .. import.soql_datetime(item.since) end
    local cursor = job.state:cursor(item.object)
    if cursor then
      where = (where == "" and " WHERE " or where .. " AND ") .. string.format("%s > %s",
        item.timestamp_field, import.soql_datetime(cursor.ts))
    end
    local data, err, code = job.client:get_json(job.client:query_path("SELECT COUNT() FROM " .. item.object .. where, r.deletions))
    if not data then
      job.log.error("%s: count failed: %s", item.object, err)
      return code == "BUDGET" and 3 or 1
    end
    local n = tonumber(data.totalSize) or 0
    local calls = 1 + math.max(1, math.ceil(n / r.batch_size))
    rows[#rows + 1] = { object = item.object, records = n, calls = calls }
    total_records, total_calls = total_records + n, total_calls + calls
  end
  local per_day = r.max_daily_api_calls
  local lines = {}
  lines[#lines + 1] = string.format("estimate for %s (pages of %d records%s):", r.name, r.batch_size,
    job.state:get("runs") and ", from the saved cursors" or "")
  for _, row in ipairs(rows) do
    lines[#lines + 1] = string.format("  %-16s %10d records %8d API calls", row.object, row.records, row.calls)
  end
  lines[#lines + 1] = string.format("  %-16s %10d records %8d API calls", "total", total_records, total_calls)
  if per_day then
    local days = math.ceil(total_calls / per_day)
    lines[#lines + 1] = string.format("  with max_daily_api_calls = %d: %d day%s (one call per record would take %d)",
      per_day, days, days == 1 and "" or "s", math.ceil(total_records / per_day))
  end
  lines[#lines + 1] = string.format("  this estimate used %d API calls", job.budget.run_calls)
  io.stdout:write(table.concat(lines, "\n"), "\n")
  job.state:set("budget", job.budget:dump())
  job.state:checkpoint()
  return 0
end

return M
