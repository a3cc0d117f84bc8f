-- sf.export.input: reading the export's input in micro-batches. A file first
-- (the backfill, resumable at the byte after the last confirmed batch), then
-- optionally stdin followed as a stream. Each line becomes a user
-- (sf.export.profiles), passes the recipe's filters (consent, audiences, the
-- trigger store) and becomes a pending record (sf.export.record); a batch is
-- flushed to Salesforce (sf.export.writer) and checkpointed when it is full,
-- after flush_after_s while following stdin, at the end of the input and on
-- SIGTERM/SIGINT.
--
--   for _, src in ipairs(input.sources(job)) do
--     local result = input.read(job, src)   -- "done" | "stopped"
--   end
local fs_input = require "sf.input"
local clock = require "sf.clock"
local signal = require "sf.signal"
local jobs = require "sf.jobs"
local profiles = require "sf.export.profiles"
local record = require "sf.export.record"
local writer = require "sf.export.writer"
local results = require "sf.export.results"
local abort = require "sf.export.abort"
local events = require "sf.events"

local M = {}

M.ROUND_BATCHES = 5         -- a file backfill flushes 5 batches' worth of users at once
M.IDLE_POLL_MS = 1000       -- follow mode: wake up this often to look at signals

-- Sends the pending records, target by target, and lets the trigger store
-- learn what Salesforce confirmed.
local function flush(job)
  if #job.pending == 0 then return end
  local by_target = {}
  local pending = job.pending
  for _, rec in ipairs(pending) do
    local t = rec.target
    by_target[t] = by_target[t] or {}
    table.insert(by_target[t], rec)
  end
  job.pending, job.pending_by_key, job.pending_since = {}, {}, nil
  -- values skipped by the type rules: reported for the records actually sent
  -- (not for lines a later line of the same user replaced)
  for _, rec in ipairs(pending) do
    for _, fr in ipairs(rec.rejects) do
      job.stats.field_skips = job.stats.field_skips + 1
      results.reject(job, { user = rec.user.key, object = rec.target.object, operation = "field", field = fr.field,
        statusCode = fr.code, message = fr.reason })
    end
  end
  for _, t in ipairs(job.targets_list) do
    if by_target[t] then writer.send(job, t, by_target[t]) end
  end
  results.commit(job)
  local st = job.stats
  st.batches = st.batches + 1
  events.emit("batch", { users = #pending, created = st.created, updated = st.updated, failed = st.failed,
    api_calls = job.budget.run_calls, dry_run = job.dry or nil })
  job.log.progress("export", string.format("export: %d users read, %d created, %d updated, %d failed",
    st.users, st.created, st.updated, st.failed))
  events.budget(job.budget)
end

-- The checkpoint after a flushed batch: the rejects file fsynced, then the
-- state (the input offset after the batch, the rejects file's length, the
-- budget) replaced atomically. A rerun resumes after the last confirmed batch.
local function checkpoint(job)
  if job.dry then
    job.state:set("budget", job.budget:dump())
    job.state:checkpoint()
    return
  end
  job.rejects:sync()
  job.state:set_output_size(results.FILE, job.rejects:size())
  if job.reader_is_file and job.reader then
    local info = job.reader:info() or {}
    job.state:set("input", { path = job.input_path, offset = job.reader:offset(), dev = info.dev, ino = info.ino })
  end
  job.state:set("budget", job.budget:dump())
  job.state:checkpoint()
end

local function flush_and_checkpoint(job)
  flush(job)
  checkpoint(job)
end

-- One input line: a user through the recipe's filters to a pending record.
local function handle_line(job, line)
  job.stats.lines = job.stats.lines + 1
  local r = job.recipe
  local user, reason, message = profiles.parse(line, {
    format = r.input.format, integration = r.segment and r.segment.integration or "Salesforce",
    require_explicit = not (r.segment and r.segment.require_explicit == false),
  })
  if not user then
    if reason == "blank" then return end
    results.skip(job, reason)
    if reason == "bad_json" or reason == "bad_line" then
      job.log.debug("line %d: %s", job.stats.lines, message)
      results.reject(job, { line = job.stats.lines, operation = "read", statusCode = reason:upper(), message = message })
    end
    return
  end
  job.stats.users = job.stats.users + 1
  -- the latest line of a user wins: it replaces a pending one, whatever it says
  local prev = job.pending_by_key[user.key]
  if prev then
    for i, p in ipairs(job.pending) do
      if p == prev then table.remove(job.pending, i) break end
    end
    job.pending_by_key[user.key] = nil
    results.skip(job, "superseded")
  end
  local target = job.targets[user.kind]
  if not target then return results.skip(job, "no_" .. user.kind .. "_target") end
  if r.consent and user.kind == "user" and not profiles.has_consent(user, r.consent) then
    return results.skip(job, "no_consent")
  end
  local exported = profiles.exported_audiences(user, r.audiences)
  local stored = job.store:get(user.key)
  -- Not (or no longer) in an exported audience: only a user sent before, or
  -- one leaving an audience, is sent, as an update (its audiences field
  -- shrinks); such a user is never created.
  if r.audiences and #exported == 0 and stored == nil and user.event ~= "exit" then
    return results.skip(job, "not_in_audience")
  end
  local update_only = #exported == 0 and (r.audiences ~= nil or user.event == "exit")
  local rec, sreason, smessage = record.build(job, target, user, exported)
  if not rec then
    job.log.debug("%s: %s", user.key, smessage)
    return results.skip(job, sreason)
  end
  if stored == rec.hash then return results.skip(job, "unchanged") end
  rec.update_only = update_only
  job.pending[#job.pending + 1] = rec
  job.pending_by_key[user.key] = rec
  job.pending_since = job.pending_since or clock.monotonic()
end

-- Reads one input to its end (or, following, until a signal). Returns
-- "done" or "stopped".
local function read_lines(job, reader, streaming, follow)
  local r = job.recipe
  -- following: micro-batches of batch_size; a backfill: rounds of 5 batches
  -- (fewer partly filled update/create calls)
  local limit = follow and r.batch_size or r.batch_size * M.ROUND_BATCHES
  local lines_since_progress = 0
  while true do
    if signal.pending() then
      flush_and_checkpoint(job)
      return "stopped"
    end
    local timeout = nil
    if streaming then
      if job.pending_since then
        timeout = math.max(0, math.floor((job.pending_since + r.flush_after_s - clock.monotonic()) * 1000))
      else
        timeout = M.IDLE_POLL_MS
      end
    end
    local line, err, code = reader:read_line(timeout)
    if line then
      handle_line(job, line)
      if #job.pending >= limit then flush_and_checkpoint(job) end
      lines_since_progress = lines_since_progress + 1
      if lines_since_progress >= 1000 and job.log.is_tty() then
        lines_since_progress = 0
        job.log.progress("export", string.format("export: %d lines, %d created, %d updated, %d API calls",
          job.stats.lines, job.stats.created, job.stats.updated, job.budget.run_calls))
      end
    elseif err == "TIMEOUT" then
      if job.pending_since and clock.monotonic() - job.pending_since >= r.flush_after_s then
        flush_and_checkpoint(job)
      end
    elseif err == "EOF" then
      flush_and_checkpoint(job)
      return "done"
    elseif code == "TOO_LONG" then
      job.stats.lines = job.stats.lines + 1
      results.skip(job, "line_too_long")
      results.reject(job, { line = job.stats.lines, operation = "read", statusCode = "LINE_TOO_LONG", message = err })
    else
      abort.raise("failed", "reading the input: " .. tostring(err))
    end
  end
end

-- The inputs of a run, in order: { path, file = true | stdin = true, follow }.
function M.sources(job)
  local r = job.recipe
  local list = {}
  local want_stdin = r.input.stdin
  if want_stdin == nil then want_stdin = (r.input.file == nil) end
  local follow = r.input.follow or job.opts.follow
  if r.input.file and follow and r.input.stdin == false then
    -- no stdin: follow the file itself as it grows (tail -f)
    return { { path = jobs.resolve(job.ctx.dir, r.input.file), file = true, follow = true } }
  end
  if r.input.file then
    list[#list + 1] = { path = jobs.resolve(job.ctx.dir, r.input.file), file = true }
  end
  if want_stdin or follow then
    list[#list + 1] = { path = "-", stdin = true, follow = follow }
  end
  return list
end

-- Reads one input source: a file from its checkpointed offset (when it is
-- still the same file), stdin from where it stands. Returns "done" or
-- "stopped"; job.reader is the open reader meanwhile.
function M.read(job, src)
  local opts = { max_line = job.recipe.input.max_line_bytes, follow = src.follow }
  job.reader_is_file, job.input_path = src.file, src.path
  local saved = src.file and job.state:get("input")
  if saved and saved.path == src.path and saved.offset and saved.offset > 0 then
    local probe = fs_input.open(src.path)
    local info = probe and probe:info()
    if probe then probe:close() end
    if info and info.dev == saved.dev and info.ino == saved.ino and info.size >= saved.offset then
      opts.offset = saved.offset
      job.log.info("resuming %s at byte %d (after the last confirmed batch)", src.path, saved.offset)
    end
  end
  local reader, err = fs_input.open(src.path, opts)
  if not reader then abort.raise("failed", "input " .. src.path .. ": " .. tostring(err)) end
  job.reader = reader
  local res = read_lines(job, reader, src.stdin or src.follow, src.follow)
  if res == "done" and src.file and not job.dry then
    -- the whole file is confirmed: the next run reads it from the start
    -- (the trigger store skips users that did not change)
    job.state:set("input", nil)
    job.state:checkpoint()
  end
  reader:close()
  job.reader = nil
  return res
end

return M
