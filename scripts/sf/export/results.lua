-- sf.export.results: what became of each user of a run. A record is settled
-- when Salesforce answered every write it needed: confirmed records teach
-- the trigger store (their hash: unchanged users cost nothing next time),
-- rejected ones go to <output>/export-rejects.ndjson with Salesforce's
-- statusCode, message and fields; users left out are counted by reason.
--
--   results.dispatch(job, op, writes, answers, top, attempt, on_duplicate)
--     -> again, by_lookup      the one reading of a Collections call's answers
--   results.reject(job, entry)   results.skip(job, reason)   results.commit(job)
--
-- A "write" is one record sent for one rec ({ rec, id }; a user may need
-- several with update_all): rec.pending counts its unconfirmed writes,
-- rec.failed marks a rejected one; when pending reaches 0 the rec is settled.
local clock = require "sf.clock"
local json = require "sf.json"

local M = {}

M.FILE = "export-rejects.ndjson" -- per-record failures, next to an import's rejects.ndjson
M.RECORD_RETRIES = 3             -- extra attempts for UNABLE_TO_LOCK_ROW / SERVER_UNAVAILABLE records
local RETRYABLE = { UNABLE_TO_LOCK_ROW = true, SERVER_UNAVAILABLE = true }

local function iso_now() return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(clock.now())) end

-- One line of the rejects file (a dry run prints it instead).
function M.reject(job, entry)
  entry.time = iso_now()
  if job.dry then
    io.stdout:write(json.encode { dry_run = "reject", reject = entry }, "\n")
    return
  end
  job.rejects:write(json.encode(entry) .. "\n")
end

function M.skip(job, reason)
  job.stats.skipped[reason] = (job.stats.skipped[reason] or 0) + 1
end

-- A record that needs no write (nothing to update, not creatable) is
-- settled as it is: remembered until it changes.
function M.settled(job, rec)
  job.confirmed[#job.confirmed + 1] = rec
end

local function settle(job, rec)
  if rec.pending > 0 then return end
  if rec.failed then
    job.stats.failed_users = job.stats.failed_users + 1
    return
  end
  if rec.wrote_any then
    local k = rec.user.key
    if not job.exported[k] then
      job.exported[k] = true
      job.stats.unique_exported = job.stats.unique_exported + 1
    end
  end
  M.settled(job, rec)
end

-- The trigger store learns about the settled recs (after Salesforce confirmed).
function M.commit(job)
  if #job.confirmed == 0 or job.dry then
    job.confirmed = {}
    return
  end
  local st = job.store
  assert(st:begin())
  for _, rec in ipairs(job.confirmed) do assert(st:put(rec.user.key, rec.hash)) end
  assert(st:commit())
  job.confirmed = {}
end

-- The ids of the records a DUPLICATES_DETECTED error matched. Salesforce
-- really spells the key "duplicateResut" (sic); the correct spelling is
-- accepted too, should it ever be fixed.
function M.duplicate_ids(err)
  local ids = {}
  local dr = type(err) == "table" and (err.duplicateResut or err.duplicateResult)
  if type(dr) == "table" then
    for _, mr in ipairs(dr.matchResults or {}) do
      for _, m in ipairs(type(mr) == "table" and mr.matchRecords or {}) do
        local r = type(m) == "table" and m.record
        if type(r) == "table" and type(r.Id) == "string" then ids[#ids + 1] = r.Id end
      end
    end
  end
  return ids
end

local function match_doc(target, rec)
  local m = {}
  for i, name in ipairs(target.match_names) do m[name] = rec.match[i] end
  return m
end

-- A write Salesforce refused: one rejects line, the rec fails.
function M.reject_write(job, w, op, e, extra)
  local target, rec = w.rec.target, w.rec
  local entry = {
    user = rec.user.key, object = target.object, operation = op, id = w.id,
    statusCode = e.statusCode or e.errorCode or "UNKNOWN", message = e.message,
    fields = type(e.fields) == "table" and e.fields or {}, match = match_doc(target, rec),
  }
  for k, v in pairs(extra or {}) do entry[k] = v end
  M.reject(job, entry)
  job.stats.failed = job.stats.failed + 1
  rec.failed = true
  rec.pending = rec.pending - 1
  settle(job, rec)
end

-- A write Salesforce confirmed ("created" or "updated").
function M.succeed(job, w, op)
  local rec = w.rec
  if op == "created" then job.stats.created = job.stats.created + 1 else job.stats.updated = job.stats.updated + 1 end
  rec.wrote_any = true
  rec.pending = rec.pending - 1
  settle(job, rec)
end

-- Reads the answers of one Collections call of operation op ("create",
-- "update", "upsert"): answers[j] is Salesforce's result for writes[j], or
-- answers is nil and top the error of the whole request. Each write is
-- confirmed, rejected, kept to be sent again (UNABLE_TO_LOCK_ROW /
-- SERVER_UNAVAILABLE, up to RECORD_RETRIES attempts: returned in `again`),
-- or, for an upsert whose external ID several records carry, handed back to
-- be looked up (`by_lookup`, recs: the multiple_matches rule decides). A
-- DUPLICATES_DETECTED on an update is rejected with the matched ids; on a
-- create or upsert on_duplicate(w, e) decides (the target's duplicates rule).
-- Then the trigger store learns about the settled records.
function M.dispatch(job, op, writes, answers, top, attempt, on_duplicate)
  local again, by_lookup = {}, {}
  for j, w in ipairs(writes) do
    local r = answers and answers[j]
    if not answers then
      M.reject_write(job, w, op, top)
    elseif r.success then
      M.succeed(job, w, (op == "create" or (op == "upsert" and r.created)) and "created" or "updated")
    else
      local e = type(r.errors) == "table" and r.errors[1] or {}
      local code = e.statusCode
      if RETRYABLE[code] and attempt < M.RECORD_RETRIES then
        again[#again + 1] = w   -- that record was not written: safe to send again
      elseif op == "upsert" and (code == "DUPLICATE_EXTERNAL_ID" or code == "MULTIPLE_CHOICES") then
        w.rec.pending = 0
        by_lookup[#by_lookup + 1] = w.rec
      elseif code == "DUPLICATES_DETECTED" and on_duplicate then
        on_duplicate(w, e)
      elseif code == "DUPLICATES_DETECTED" then
        M.reject_write(job, w, op, e, { duplicate_ids = M.duplicate_ids(e) })
      else
        M.reject_write(job, w, op, e)
      end
    end
  end
  M.commit(job)
  return again, by_lookup
end

return M
