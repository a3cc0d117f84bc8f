-- sf.export.writer: sends one round of records of one target to Salesforce
-- with sObject Collections calls (200 records each, allOrNone=false):
--   * external-ID match field (and creating allowed): PATCH
--     /composite/sobjects/<Obj>/<Field> upserts, safe to retry;
--   * any other match field(s): a lookup (sf.export.lookup), then PATCH
--     /composite/sobjects updates for the matches and POST creates for the
--     rest. A create whose response was lost is never re-sent blindly: the
--     records are looked up again and only the ones still missing are created.
-- Salesforce's answer for each record is read by sf.export.results.dispatch.
-- A dry run looks up (reads only) and prints what it would send.
--
--   writer.send(job, target, recs)
local fs = require "sf.fs"
local cjson = require "cjson.safe"
local client_mod = require "sf.client"
local jobs = require "sf.jobs"
local json = require "sf.json"
local abort = require "sf.export.abort"
local lookup = require "sf.export.lookup"
local results = require "sf.export.results"

local M = {}

M.LOST_CREATE_CHECKS = 5    -- lookups after a create whose response was lost

local null = cjson.null

local UNKNOWN_FIELDS = { Company = "unknown_company_ok", LastName = "unknown_last_name_ok" }

-- The items of list in slices of n.
local function chunks(list, n)
  local i = 1
  return function()
    if i > #list then return nil end
    local chunk = { table.unpack(list, i, math.min(#list, i + n - 1)) }
    i = i + n
    return chunk
  end
end

-- The JSON body of one record for op ("create", "update", "upsert"): the
-- fields the operation may set (createable / updateable), id for updates.
local function record_body(target, rec, op, id)
  local body = { attributes = { type = target.object } }
  for name, v in pairs(rec.fields) do
    local fd = target.fields[name:lower()]
    local ok = (op == "create" and fd.createable) or (op == "update" and fd.updateable)
      or (op == "upsert" and fd.createable and fd.updateable)
    if ok and not (op == "create" and v == null) then body[name] = v end
  end
  if op == "create" then
    for name, v in pairs(rec.fill or {}) do body[name] = v end
  end
  if id then body.id = id end
  return body
end

-- The JSON bodies of writes for op, and their documents (for a dry run).
local function bodies_of(target, writes, op)
  local bodies, docs = {}, {}
  for j, w in ipairs(writes) do
    docs[j] = record_body(target, w.rec, op, w.id)
    bodies[j] = json.encode(docs[j])
  end
  return bodies, docs
end

-- A dry run's writes: printed as they would be sent, counted as done.
local function dry_run(job, op, writes, docs)
  for j, w in ipairs(writes) do
    local d = docs[j]
    d.attributes, d.id = nil, nil
    local doc = { dry_run = op, object = w.rec.target.object, user = w.rec.user.key, record = d }
    if w.id then doc.id = w.id end
    io.stdout:write(json.encode(doc), "\n")
    results.succeed(job, w, op == "create" and "created" or "updated")
  end
end

local function collection_request(job, method, path, target, bodies, retry)
  local text = '{"allOrNone":false,"records":[' .. table.concat(bodies, ",") .. "]}"
  local h = { ["Content-Type"] = "application/json" }
  if target.duplicates == "allow_save" then h["Sforce-Duplicate-Rule-Header"] = "allowSave=true" end
  return abort.call(job, { method = method, path = path, body = text, headers = h, retry = retry })
end

-- Sends writes as Collections calls of op (batch_size records each; a dry
-- run prints them instead); answer(chunk, resp, err, code) reads each call.
local function send_writes(job, target, op, writes, method, retry, answer)
  for chunk in chunks(writes, job.recipe.batch_size) do
    local bodies, docs = bodies_of(target, chunk, op)
    if job.dry then
      dry_run(job, op, chunk, docs)
    else
      answer(chunk, collection_request(job, method, "/composite/sobjects", target, bodies, retry))
    end
  end
end

-- The per-record answers of a collection call, or nil, error (whole-request
-- failure). INVALID_FIELD for the whole request means the org's fields changed
-- under a cached describe: drop the cache and stop; the rerun redoes the batch.
local function answers_of(job, target, resp, n)
  if resp.status == 200 and type(resp.data) == "table" and #resp.data == n then return resp.data end
  local ecode, emsg = client_mod.error_code(resp)
  if ecode == "INVALID_FIELD" then
    fs.remove(jobs.describe_path(job, target.object))
    abort.raise("failed", target.object .. ": Salesforce refused a field (" .. tostring(emsg)
      .. "); the describe cache was dropped, run the job again to check the recipe against the org")
  end
  return nil, { errorCode = ecode or ("HTTP_" .. resp.status), message = emsg or (resp.body or ""):sub(1, 300) }
end

local update_writes, lookup_path -- forward

-- What follows a dispatched call: updates instead of duplicates, lookups for
-- ambiguous external IDs, then (after a backoff) the retryable records again.
local function follow_up(job, target, attempt, to_update, by_lookup, again, resend)
  if #to_update > 0 then update_writes(job, target, to_update) end
  if #by_lookup > 0 then lookup_path(job, target, by_lookup) end
  if #again > 0 then
    abort.pause(job, job.client:backoff(attempt + 1))
    resend(again, attempt + 1)
  end
end

-- DUPLICATES_DETECTED on a create or an upsert, by the target's duplicates
-- rule: "update_match" updates the matched record(s) instead (adding the
-- writes to to_update), anything else rejects with the matched ids.
local function on_duplicate(job, target, op, to_update)
  return function(w, e)
    local ids = results.duplicate_ids(e)
    if target.duplicates ~= "update_match" or #ids == 0 then
      results.reject_write(job, w, op, e, { duplicate_ids = ids })
      return
    end
    local matches = {}
    for _, id in ipairs(ids) do matches[#matches + 1] = { id = id } end
    if target.multiple == "most_recent" and #matches > 1 then
      -- dates of the matched records decide
      local lits = {}
      for i, id in ipairs(ids) do lits[i] = lookup.literal(id, { type = "id" }) end
      -- Through abort.call: a budget pause or a stop here ends the batch cleanly.
      local resp = abort.call(job, { method = "GET", path = job.client:query_path("SELECT Id, LastModifiedDate FROM "
        .. target.object .. " WHERE Id IN (" .. table.concat(lits, ", ") .. ")") })
      local data = resp and resp.status == 200 and resp.data
      if type(data) == "table" and data.records then
        matches = {}
        for _, row in ipairs(data.records) do matches[#matches + 1] = { id = row.Id, modified = row.LastModifiedDate } end
      end
      if #matches == 0 then matches = { { id = ids[1] } } end
    end
    local chosen = lookup.pick(target, matches)
    w.rec.pending = w.rec.pending - 1 + #chosen
    for _, m in ipairs(chosen) do to_update[#to_update + 1] = { rec = w.rec, id = m.id } end
  end
end

-- Updates writes { rec, id } by Id: PATCH /composite/sobjects, 200 per call.
update_writes = function(job, target, writes, attempt)
  attempt = attempt or 0
  send_writes(job, target, "update", writes, "PATCH", true, function(chunk, resp, err, code)
    if not resp then abort.raise("failed", target.object .. ": update failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
    local answers, top = answers_of(job, target, resp, #chunk)
    local again = results.dispatch(job, "update", chunk, answers, top, attempt)
    follow_up(job, target, attempt, {}, {}, again, function(w, a) update_writes(job, target, w, a) end)
  end)
end

-- Required values for a create: fills "Unknown" where allowed. Returns true,
-- or false, skip reason.
local function complete_for_create(target, rec)
  rec.fill = nil
  for _, name in ipairs(target.required) do
    local v = rec.fields[name]
    if v == nil or v == null then
      local flag = UNKNOWN_FIELDS[name]
      if flag and target.unknown_ok[name] then
        rec.fill = rec.fill or {}
        rec.fill[name] = "Unknown"
      else
        -- missing_company, missing_last_name, missing_name, missing_my_field__c
        return false, "missing_" .. name:gsub("(%l)(%u)", "%1_%2"):lower()
      end
    end
  end
  return true
end

local create_writes -- forward

-- The response to a create is lost (transport error or 5xx): Salesforce may
-- or may not have created the records. Look them up again; create only the
-- ones still missing (at most LOST_CREATE_CHECKS times).
local function recover_lost_create(job, target, chunk, attempt, checks, why, code)
  local n = checks + 1
  if n > M.LOST_CREATE_CHECKS then
    abort.raise("failed", target.object .. ": create failed " .. checks .. " times without an answer: " .. why)
  end
  job.log.warn("%s: create of %d records got no answer (%s); looking them up before trying again", target.object,
    #chunk, why .. (code and (" " .. code) or ""))
  job.stats.lost_creates = job.stats.lost_creates + 1
  abort.pause(job, math.max(job.lost_wait_s, job.client:backoff(n)))
  local recs = {}
  for j, w in ipairs(chunk) do recs[j] = w.rec end
  local found = lookup.find(job, target, recs)
  local missing = {}
  for _, w in ipairs(chunk) do
    local m = found[w.rec.match_key]
    if m and #m > 0 then
      results.succeed(job, w, "created")
    else
      missing[#missing + 1] = w
    end
  end
  results.commit(job)
  if #missing > 0 then create_writes(job, target, missing, attempt, n) end
end

-- Creates writes { rec }: POST /composite/sobjects, never blindly repeated.
create_writes = function(job, target, writes, attempt, checks)
  attempt, checks = attempt or 0, checks or 0
  send_writes(job, target, "create", writes, "POST", false, function(chunk, resp, err, code)
    if not resp or resp.status >= 500 then
      recover_lost_create(job, target, chunk, attempt, checks, tostring(err or ("HTTP " .. resp.status)), code)
      return
    end
    local answers, top = answers_of(job, target, resp, #chunk)
    local to_update = {}
    local again = results.dispatch(job, "create", chunk, answers, top, attempt,
      on_duplicate(job, target, "create", to_update))
    follow_up(job, target, attempt, to_update, {}, again, function(w, a) create_writes(job, target, w, a) end)
  end)
end

-- Upserts recs by the external ID: PATCH /composite/sobjects/<Obj>/<Field>.
local function upsert_recs(job, target, recs, attempt)
  attempt = attempt or 0
  local path = "/composite/sobjects/" .. target.object .. "/" .. target.match_names[1]
  for chunk in chunks(recs, job.recipe.batch_size) do
    if job.dry then
      -- dry run: find out what would be created or updated (reads only)
      lookup_path(job, target, chunk)
    else
      local writes = {}
      for j, rec in ipairs(chunk) do
        rec.pending = 1
        writes[j] = { rec = rec }
      end
      local bodies = bodies_of(target, writes, "upsert")
      local resp, err, code = collection_request(job, "PATCH", path, target, bodies, true)
      if not resp then abort.raise("failed", target.object .. ": upsert failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
      local answers, top = answers_of(job, target, resp, #chunk)
      local to_update = {}
      local again, by_lookup = results.dispatch(job, "upsert", writes, answers, top, attempt,
        on_duplicate(job, target, "upsert", to_update))
      follow_up(job, target, attempt, to_update, by_lookup, again, function(ws, a)
        local again_recs = {}
        for i, w in ipairs(ws) do again_recs[i] = w.rec end
        upsert_recs(job, target, again_recs, a)
      end)
    end
  end
end

-- Lookup, then update the matches and create the rest.
lookup_path = function(job, target, recs)
  local found = lookup.find(job, target, recs)
  local updates, creates = {}, {}
  for _, rec in ipairs(recs) do
    local matches = found[rec.match_key]
    if matches and #matches > 0 then
      local chosen = lookup.pick(target, matches)
      rec.pending = #chosen
      for _, m in ipairs(chosen) do updates[#updates + 1] = { rec = rec, id = m.id } end
    elseif not target.create or rec.update_only then
      results.skip(job, rec.update_only and rec.user.event == "exit" and "exit_without_record" or "no_match_update_only")
      results.settled(job, rec)   -- nothing to do: settled until it changes
    else
      local ok, reason = complete_for_create(target, rec)
      if ok then
        rec.pending = 1
        creates[#creates + 1] = { rec = rec }
      else
        results.skip(job, reason)
        results.settled(job, rec)
      end
    end
  end
  if #updates > 0 then update_writes(job, target, updates) end
  if #creates > 0 then create_writes(job, target, creates) end
end

-- Sends one round of recs of one target. Recs sharing a match key go in
-- separate passes, so the first creates and the next ones update it.
function M.send(job, target, recs)
  while #recs > 0 do
    local this, later, taken = {}, {}, {}
    for _, rec in ipairs(recs) do
      if taken[rec.match_key] then later[#later + 1] = rec
      else
        taken[rec.match_key] = true
        this[#this + 1] = rec
      end
    end
    local up, look = {}, {}
    for _, rec in ipairs(this) do
      rec.pending, rec.failed, rec.wrote_any = 0, nil, nil
      -- An upsert may create: only records complete enough to be created as
      -- they are take it. Records that would need "Unknown" are looked up
      -- first, so an existing record never gets "Unknown" over its value.
      if target.upsert and not rec.update_only and complete_for_create(target, rec) and not rec.fill then
        up[#up + 1] = rec
      else
        look[#look + 1] = rec
      end
    end
    if #up > 0 then upsert_recs(job, target, up) end
    if #look > 0 then lookup_path(job, target, look) end
    recs = later
  end
end

return M
