-- sf.import.sink: where an object's mapped pages go, and the one checkpoint
-- that carries the import's exactly-once guarantee. The REST page loop
-- (sf.import.rest) and the Bulk results loop (sf.import.bulk) both end every
-- page with sink:commit.
--
--   local sink = require("sf.import.sink").open(job, item, st)
--   sink:commit(lines, rejects, ps, save)   -- lines, rejects, ps: sf.mapper's map_page
--   sink:close()
--
-- st counts what was committed: { records, deleted, rejected, pages }.
local jobs = require "sf.jobs"
local events = require "sf.events"

local M = {}

local Sink = {}
Sink.__index = Sink

-- The stream file of item, cut back to its checkpointed length (or out, an
-- open file, in tests), next to the job's rejects file.
function M.open(job, item, st, out)
  return setmetatable({
    job = job, item = item, st = st,
    out = out or jobs.open_output(job, item.stream .. ".ndjson"),
  }, Sink)
end

-- Appends one mapped page and checkpoints it. Durability order: the data
-- first (stream and rejects appended and fsynced), then the state that
-- points past it: the cursor after the page's last record, the length of
-- every output file and the budget, in one atomic replace of the state file.
-- save(), when given, adds its own state to that same write (the Bulk job's
-- locator). A kill anywhere before the replace loses only this page: the next
-- run cuts the files back to the previous checkpoint and asks again from the
-- previous cursor, so every record lands exactly once.
function Sink:commit(lines, rejects, ps, save)
  local job, state, item, out = self.job, self.job.state, self.item, self.out
  if #lines > 0 then out:write(lines) end
  if #rejects > 0 then job.rejects:write(rejects) end
  out:sync()
  job.rejects:sync()
  if save then save() end
  if ps.last_id then state:set_cursor(item.object, { ts = ps.last_ts, id = ps.last_id }) end
  state:set_output_size(item.stream .. ".ndjson", out:size())
  state:set_output_size("rejects.ndjson", job.rejects:size())
  state:set("budget", job.budget:dump())
  state:checkpoint()
  local st = self.st
  st.records, st.deleted, st.rejected, st.pages =
    st.records + ps.records, st.deleted + ps.deleted, st.rejected + ps.rejected, st.pages + 1
  local b = job.budget
  events.emit("page", { object = item.object, stream = item.stream, records = ps.records, deletions = ps.deleted,
    rejects = ps.rejected, total_records = st.records, api_calls = b.run_calls, org_used = b.org_used, org_max = b.org_max })
  events.budget(b)
end

function Sink:close()
  self.out:close()
end

return M
