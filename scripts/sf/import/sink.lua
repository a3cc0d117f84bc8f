-- sf.import.sink: where an object's mapped pages go, and the one checkpoint
-- that carries the import's exactly-once guarantee. The REST page loop
-- (sf.import.rest) ends every page with sink:commit; the Bulk results loop
-- (sf.import.bulk) writes a page piece by piece as it streams in, then
-- checkpoints it once whole (or cuts it off again).
--
--   local sink = require("sf.import.sink").open(job, item, st)
--   sink:commit(lines, rejects, ps, save)   -- lines, rejects, ps: sf.mapper's map_page
--   sink:write(lines, rejects, ps)          -- appended, not yet part of a checkpoint
--   sink:checkpoint(save)                   -- what was written becomes durable: one page
--   sink:rollback()                         -- what was written since the checkpoint is cut off
--   sink:close()
--
-- st counts what was checkpointed: { records, deleted, rejected, pages }.
local jobs = require "sf.jobs"
local events = require "sf.events"

local M = {}

local Sink = {}
Sink.__index = Sink

local function fresh() return { records = 0, deleted = 0, rejected = 0 } end

-- The stream file of item, cut back to its checkpointed length (or out, an
-- open file, in tests), next to the job's rejects file.
function M.open(job, item, st, out)
  local self = setmetatable({
    job = job, item = item, st = st,
    out = out or jobs.open_output(job, item.stream .. ".ndjson"),
    pending = fresh(),
  }, Sink)
  self.kept_out, self.kept_rejects = self.out:size(), job.rejects:size()
  return self
end

-- Appends mapped lines; they count once a checkpoint covers them.
function Sink:write(lines, rejects, ps)
  if #lines > 0 then self.out:write(lines) end
  if #rejects > 0 then self.job.rejects:write(rejects) end
  local p = self.pending
  p.records, p.deleted, p.rejected = p.records + ps.records, p.deleted + ps.deleted, p.rejected + ps.rejected
  if ps.last_id then p.last_ts, p.last_id = ps.last_ts, ps.last_id end
end

-- Makes everything written so far one checkpointed page. Durability order:
-- the data first (stream and rejects fsynced), then the state that points
-- past it: the cursor after the page's last record, the length of every
-- output file and the budget, in one atomic replace of the state file.
-- save(pending), when given, adds its own state to that same write (the Bulk
-- job's locator). A kill anywhere before the replace loses only this page:
-- the next run cuts the files back to the previous checkpoint and asks again
-- from the previous cursor, so every record lands exactly once.
function Sink:checkpoint(save)
  local job, state, item, out, p = self.job, self.job.state, self.item, self.out, self.pending
  out:sync()
  job.rejects:sync()
  if save then save(p) end
  if p.last_id then state:set_cursor(item.object, { ts = p.last_ts, id = p.last_id }) end
  self.kept_out, self.kept_rejects = out:size(), job.rejects:size()
  state:set_output_size(item.stream .. ".ndjson", self.kept_out)
  state:set_output_size("rejects.ndjson", self.kept_rejects)
  state:set("budget", job.budget:dump())
  state:checkpoint()
  local st = self.st
  st.records, st.deleted, st.rejected, st.pages =
    st.records + p.records, st.deleted + p.deleted, st.rejected + p.rejected, st.pages + 1
  local b = job.budget
  events.emit("page", { object = item.object, stream = item.stream, records = p.records, deletions = p.deleted,
    rejects = p.rejected, total_records = st.records, api_calls = b.run_calls, org_used = b.org_used, org_max = b.org_max })
  events.budget(b)
  self.pending = fresh()
end

-- One whole page: appended and checkpointed.
function Sink:commit(lines, rejects, ps, save)
  self:write(lines, rejects, ps)
  self:checkpoint(save)
end

-- Cuts the stream and rejects files back to the last checkpoint: a page that
-- turned out incomplete or wrong leaves nothing behind.
function Sink:rollback()
  self.out:truncate(self.kept_out)
  self.job.rejects:truncate(self.kept_rejects)
  self.pending = fresh()
end

function Sink:close()
  self.out:close()
end

return M
