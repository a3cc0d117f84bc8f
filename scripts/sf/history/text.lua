-- sf.history.text: the run history as a table for a terminal: one row per
-- stream of each run (an export run has one row, its writes), the run's
-- message on a line of its own.
--
--   RUN  STARTED (UTC)        DURATION  STATUS   API CALLS  PROFILES  STREAM                 RECORDS  DELETIONS  REJECTS
--     1  2024-05-01 03:00:02     12.3 s  done            8         -  salesforce_leads          292          8        0
local tables = require "sf.tables"

local M = {}

local function num(v) return v == nil and "-" or tostring(math.tointeger(v) or v) end

-- The rows of one run: { stream, records, deletions, rejects }, sorted by stream.
local function stream_rows(run)
  local rows = {}
  if run.kind == "export" then
    rows[1] = { (run.dry_run and "export (dry run)" or "export: created+updated"),
      (run.created or 0) + (run.updated or 0), nil, run.failed }
    return rows
  end
  for _, name in ipairs(tables.sorted_keys(run.streams or {})) do
    local st = run.streams[name]
    rows[#rows + 1] = { name, st.records, st.deletions, st.rejects }
  end
  if #rows == 0 then rows[1] = { "-", nil, nil, nil } end
  return rows
end

function M.render(runs)
  local head = string.format("%4s  %-19s  %9s  %-7s  %9s  %8s  %-28s  %9s  %9s  %7s",
    "RUN", "STARTED (UTC)", "DURATION", "STATUS", "API CALLS", "PROFILES", "STREAM", "RECORDS", "DELETIONS", "REJECTS")
  local out = { head }
  for _, run in ipairs(runs) do
    local started = tostring(run.started or "-"):gsub("T", " "):gsub("Z$", "")
    for i, row in ipairs(stream_rows(run)) do
      local left
      if i == 1 then
        left = string.format("%4s  %-19s  %9s  %-7s  %9s  %8s", num(run.run), started,
          run.duration_s and string.format("%.1f s", run.duration_s) or "-", tostring(run.status or "-"),
          num(run.api_calls), num(run.unique_profiles_exported))
      else
        left = string.rep(" ", 4 + 2 + 19 + 2 + 9 + 2 + 7 + 2 + 9 + 2 + 8)
      end
      out[#out + 1] = string.format("%s  %-28s  %9s  %9s  %7s", left, row[1], num(row[2]), num(row[3]), num(row[4]))
    end
    if run.message then out[#out + 1] = "      " .. tostring(run.message) end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
