-- sf.import.failure: what fails one object and what fails the whole run.
--
-- An object's own failure (failure.object: Salesforce refuses its query with a
-- 4xx such as 400 INVALID_FIELD after an admin removed a field, its pages
-- cannot be read, its child sets cannot be completed; or a recipe error found
-- against the org, such as a field the recipe names that the org no longer
-- has) fails that object only: the others are imported, the summary and the
-- run history name it with its reason, the run exits 1 (2 for a recipe error),
-- and the next run retries it from its own checkpoint. Anything else (the
-- login refused, API_DISABLED_FOR_ORG, the network or Salesforce down after
-- the retries, a local file that cannot be written) would fail every object
-- alike, so it ends the run as before.
--
--   error(failure.object(item.object .. ": ..."), 0)     -- raise an object's own failure
--   local status, message, resume_at = failure.run(job, item, run_object)
--   failure.summarize(job, summary)                       -- streams[s].failed, failed_objects, lines
--   local status, message = failure.status(job, status, message)
local recipe = require "sf.recipe"
local events = require "sf.events"

local M = {}

local object_mt = { __name = "sf.import.failure", __tostring = function(e) return e.message end }

function M.object(message)
  return setmetatable({ message = message }, object_mt)
end

-- The message of an object's own failure, or nil when err is not one.
local function own(err)
  if getmetatable(err) == object_mt or recipe.is_error(err) then return err.message end
end

-- Runs run_object(job, item) (status, message, resume_at); an object's own
-- failure becomes "failed", reason. Nothing of the object past its last
-- checkpoint counts: its stream file is cut back on the next start, the
-- shared rejects file now (so the next object's checkpoint cannot adopt
-- those bytes).
function M.run(job, item, run_object)
  local calls = job.budget.run_calls
  local ok, status, message, resume_at = pcall(run_object, job, item)
  if ok then return status, message, resume_at end
  local reason = own(status)
  if not reason then error(status, 0) end
  local kept = job.state:output_size("rejects.ndjson") or 0
  if job.rejects:size() > kept then assert(job.rejects:truncate(kept)) end
  job.failures[#job.failures + 1] = { object = item.object, stream = item.stream, reason = reason,
                                      recipe_error = recipe.is_error(status) or nil }
  local st = job.stats[item.stream] or { records = 0, deleted = 0, rejected = 0, pages = 0 }
  job.stats[item.stream] = st
  st.failed = reason
  job.log.error("%s failed: %s (the other objects go on; it is retried from its checkpoint next run)", item.object, reason)
  events.emit("object_end", { object = item.object, stream = item.stream, status = "failed", message = reason,
    api_calls = job.budget.run_calls - calls })
  return "failed", reason
end

-- Adds the failed objects to a run summary: streams[s].failed = reason,
-- failed_objects = { {object, stream, reason} }, one printed line each.
function M.summarize(job, summary)
  for i, f in ipairs(job.failures or {}) do
    local st = summary.streams[f.stream]
    if st then st.failed = f.reason end
    summary.failed_objects = summary.failed_objects or {}
    summary.failed_objects[i] = { object = f.object, stream = f.stream, reason = f.reason }
    summary.lines = summary.lines or {}
    summary.lines[#summary.lines + 1] = string.format("%s FAILED: %s", f.stream, f.reason)
  end
  return summary
end

-- The run's status when objects failed: "failed" (exit 1) with a message
-- naming them, or "invalid" (exit 2) when one failed on its recipe; a pause
-- or a stop stays what it is.
function M.status(job, status, message)
  local failures = job.failures or {}
  if #failures == 0 or (status ~= "done" and status ~= "failed") then return status, message end
  local names, invalid = {}, false
  for i, f in ipairs(failures) do
    names[i] = f.object
    invalid = invalid or f.recipe_error == true
  end
  return invalid and "invalid" or "failed", string.format("%d of %d objects failed (%s): %s", #failures, #job.plan,
    table.concat(names, ", "), failures[1].reason)
end

return M
