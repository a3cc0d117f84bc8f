-- The import job: Salesforce objects -> named streams of NDJSON, incremental
-- and exactly once.
--
-- Per object: one describe (to drop default-mapping fields the org does not
-- have), then one query ordered by (timestamp field, Id) from the saved
-- cursor, followed through nextRecordsUrl. Each page is mapped in C
-- (sf.page + sf.mapper), appended to the stream and the rejects file, both
-- fsynced, then the state (cursor + output lengths) is replaced atomically.
-- A kill at any moment loses at most the page in flight: the next run cuts the
-- files back to the checkpointed lengths and asks again from the cursor.
local recipe = require "sf.recipe"
local S = recipe.schema
local page = require "sf.page"
local mapper = require "sf.mapper"
local fs = require "sf.fs"
local clock = require "sf.clock"
local signal = require "sf.signal"
local cjson = require "cjson.safe"
local mapping = require "sf.mapping"
local client_mod = require "sf.client"
local jobs = require "sf.jobs"
local bulk = require "sf.bulk"

local M = {}
local check_requested, check_timestamp_field

-- Standard objects and their default streams, in the product document's order.
M.STANDARD = {
  { object = "Lead", stream = "salesforce_leads" },
  { object = "Contact", stream = "salesforce_contacts" },
  { object = "Account", stream = "salesforce_accounts" },
  { object = "Opportunity", stream = "salesforce_opportunities" },
}

local since_pattern = "^%d%d%d%d%-%d%d%-%d%d[T%d:%.Z+%-]*$"

local object_schema = S.record {
  since = S.string { pattern = since_pattern, doc = "oldest record to import (date or datetime, UTC unless an offset is given)" },
  timestamp_field = S.string { default = "LastModifiedDate", pattern = "^[%a][%w_]*$" },
  additional_fields = S.list(S.string { pattern = "^[%a][%w_%.]*$" }),
  mapping = jobs.mapping_schema,
  mode = S.string { enum = { "rest", "bulk", "auto" }, doc = "rest: REST query pages; bulk: a Bulk API 2.0 query job; auto: Bulk when more than bulk_threshold records are due (default: the recipe's mode)" },
}

local custom_object_schema = S.record {
  object = S.string { required = true, pattern = "^[%a][%w_]*$" },
  fields = S.list(S.string { pattern = "^[%a][%w_%.]*$" }, { required = true, min = 1 }),
  stream = S.string { required = true, pattern = "^[%w_%-]+$" },
  timestamp_field = S.string { default = "LastModifiedDate", pattern = "^[%a][%w_]*$" },
  since = S.string { pattern = since_pattern },
  mapping = jobs.mapping_schema,
  mode = S.string { enum = { "rest", "bulk", "auto" } },
}

M.schema = S.record {
  job = S.string { required = true, enum = { "import" } },
  name = S.string { required = true, pattern = "^[%w_%-%.]+$", doc = "names the job's state and history files" },
  auth = jobs.auth_schema,
  api_version = S.string { default = client_mod.DEFAULT_API_VERSION, pattern = "^%d+%.%d$" },
  output = S.string { default = "out" },
  state_dir = S.string {},
  max_daily_api_calls = S.integer { min = 1 },
  org_share = S.number { min = 0.01, max = 1, default = 0.8 },
  shared_budget = S.string {},
  batch_size = S.integer { min = 200, max = 2000, default = 2000 },
  mode = S.string { enum = { "rest", "bulk", "auto" }, default = "auto", doc = "default mode of every object" },
  bulk_threshold = S.integer { min = 1, default = 50000, doc = "auto mode: switch to Bulk when more records than this are due after the first REST page" },
  bulk_max_records = S.integer { min = 1000, default = 50000, doc = "records per Bulk results page (one API call each)" },
  bulk_max_wait = S.integer { min = 60, default = 21600, doc = "seconds to wait for a Bulk query job to complete" },
  deletions = S.boolean { default = true },
  objects = S.map(S.string { enum = { "Lead", "Contact", "Account", "Opportunity" } },
                  S.one_of { S.boolean {}, object_schema }),
  custom_objects = S.list(custom_object_schema),
  keep_updated = jobs.schedule_schema,
  memory_mb = S.integer { min = 16 },
}

-- "2024-01-15" / "2024-01-15T10:30:00Z" / "...+0200" -> a SOQL datetime literal.
local function soql_datetime(s)
  local date, rest = s:match("^(%d%d%d%d%-%d%d%-%d%d)(.*)$")
  if not date then return nil end
  if rest == "" then return date .. "T00:00:00Z" end
  local time, frac, zone = rest:match("^T(%d%d:%d%d:%d%d)(%.?%d*)(.*)$")
  if not time then return nil end
  if frac:match("^%.0*$") then frac = "" end
  if zone == "" or zone == "Z" or zone == "+0000" or zone == "+00:00" then zone = "Z"
  else
    local sign, hh, mm = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    zone = sign .. hh .. ":" .. mm
  end
  return date .. "T" .. time .. frac .. zone
end
M.soql_datetime = soql_datetime

local function soql_string(s)
  return "'" .. s:gsub("[\\']", "\\%0") .. "'"
end

-- The query for one object from its cursor: records after (ts, Id) in
-- (ts, Id) order, so a run of records sharing one timestamp is neither
-- skipped nor read twice, also across page and run boundaries.
function M.build_query(select, object, ts_field, since, cursor)
  local where = {}
  if since then where[#where + 1] = ts_field .. " >= " .. soql_datetime(since) end
  if cursor then
    local t = soql_datetime(cursor.ts)
    where[#where + 1] = string.format("(%s > %s OR (%s = %s AND Id > %s))",
      ts_field, t, ts_field, t, soql_string(cursor.id))
  end
  local q = "SELECT " .. table.concat(select, ", ") .. " FROM " .. object
  if #where > 0 then q = q .. " WHERE " .. table.concat(where, " AND ") end
  return q .. " ORDER BY " .. ts_field .. " ASC, Id ASC"
end

local function iso_now(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- The list of {object, stream, since, timestamp_field, mapping} to run.
local function plan(r)
  local list = {}
  for _, std in ipairs(M.STANDARD) do
    local o = r.objects and r.objects[std.object]
    if o then
      if o == true then o = { timestamp_field = "LastModifiedDate" } end
      list[#list + 1] = {
        object = std.object, stream = std.stream, since = o.since,
        timestamp_field = o.timestamp_field or "LastModifiedDate",
        additional = o.additional_fields or {}, custom = o.mapping, standard = true,
        mode = o.mode or r.mode,
        path = "objects." .. std.object,
      }
    end
  end
  for i, c in ipairs(r.custom_objects or {}) do
    list[#list + 1] = {
      object = c.object, stream = c.stream, since = c.since, timestamp_field = c.timestamp_field,
      fields = c.fields, custom = c.mapping, standard = false, mode = c.mode or r.mode,
      path = "custom_objects[" .. i .. "]",
    }
  end
  return list
end

-- Compiles the mapping of one planned object against the org's describe.
local function compile(job, item, describe, now_iso)
  local m
  if item.standard then
    m = mapping.default(item.stream)
    if #item.additional > 0 then m = mapping.with_additional(m, item.additional, describe) end
  else
    m = mapping.for_object(item.object, item.fields, item.stream, describe)
  end
  if item.custom then m = mapping.customize(m, job.reveal_custom(item.custom)) end
  local compiled = mapping.compile(m, {
    describe = describe, now = now_iso, object = item.object, stream = item.stream,
    timestamp_field = item.timestamp_field,
  })
  local mp = mapper.compile(compiled.rows, {
    object = item.object, stream = item.stream, timestamp_field = item.timestamp_field,
    now = now_iso, types = compiled.types, call = job.call,
  })
  return compiled, mp
end

local function write_schema(job, item, compiled)
  local doc = { stream = item.stream, object = item.object, fields = compiled.schema }
  local ok, err = fs.write_atomic(job.out_dir .. "/" .. item.stream .. ".schema.json", cjson.encode(doc) .. "\n")
  if not ok then error("schema for " .. item.stream .. ": " .. tostring(err), 0) end
end

local function progress(job, item, st)
  if not job.log.is_tty() then return end
  local elapsed = clock.monotonic() - st.started
  local rate = elapsed > 0 and st.records / elapsed or 0
  local eta = ""
  if st.total and st.total > 0 and rate > 0 then
    eta = string.format(", ETA %ds", math.max(0, math.floor((st.total - st.records - st.deleted) / rate)))
  end
  job.log.progress(item.object, string.format("%s: %d%s records, %d pages, %d API calls, %.0f rec/s%s",
    item.object, st.records + st.deleted, st.total and ("/" .. st.total) or "", st.pages, job.budget.run_calls, rate, eta))
end

-- Describes are cached a day next to the state (jobs.describe): an hourly
-- run with nothing new then costs one query per object.
M.DESCRIBE_TTL = 24 * 3600

-- Fields the recipe asks for by name must exist: a typo is a recipe error
-- (the default mapping's fields may legitimately be missing, e.g. the ISO
-- code fields without State and Country Picklists: those are only reported).
function check_requested(job, item, describe, compiled)
  local key = item.standard and ".additional_fields" or ".fields"
  local requested = {}
  for _, f in ipairs(item.additional or item.fields or {}) do requested[f] = true end
  for _, f in ipairs(compiled.unavailable or {}) do
    if requested[f] then
      local names = {}
      for _, d in ipairs(describe.fields or {}) do names[#names + 1] = d.name end
      local best = recipe.closest(f, names)
      local hint = best and (" (did you mean " .. best .. "?)") or ""
      error(recipe.error_at(job.ctx, item.path .. key, item.object .. " has no field " .. f .. hint), 0)
    end
  end
end

-- One object through a Bulk API 2.0 query job (sf.bulk) from the saved
-- cursor, checkpointing as the REST loop does. Returns status, message,
-- resume_at; nil when Salesforce failed the job in auto mode (nothing was
-- written: the caller goes on with REST from the cursor).
local function run_bulk(job, item, compiled, describe, mp, out, st)
  local soql = M.build_query(compiled.select, item.object, item.timestamp_field, item.since, job.state:cursor(item.object))
  local status, message, resume_at = bulk.run_object(job, item, {
    select = compiled.select, soql = soql, columns = bulk.columns(compiled.select, describe),
    mp = mp, out = out, st = st, all = job.recipe.deletions,
    max_records = job.recipe.bulk_max_records, max_wait = job.recipe.bulk_max_wait,
    progress = function() progress(job, item, st) end,
    checkpoint = function(ps)
      if ps.last_id then job.state:set_cursor(item.object, { ts = ps.last_ts, id = ps.last_id }) end
      job.state:set_output_size(item.stream .. ".ndjson", out:size())
      job.state:set_output_size("rejects.ndjson", job.rejects:size())
      job.state:set("budget", job.budget:dump())
      job.state:checkpoint()
    end,
  })
  if status == "failed" then
    if item.mode == "bulk" then out:close(); error(message, 0) end
    job.log.warn("%s; going on with REST", message)
    return nil
  end
  out:close()
  return status, message, resume_at
end

-- The cursor field must be a datetime the org has: the query compares it
-- with datetime literals. (Rows whose timestamp is null cannot be ordered
-- after the cursor: with the standard LastModifiedDate/SystemModstamp
-- there are none.)
function check_timestamp_field(job, item, describe)
  for _, f in ipairs(describe.fields or {}) do
    if f.name == item.timestamp_field then
      if f.type ~= "datetime" then
        error(recipe.error_at(job.ctx, item.path .. ".timestamp_field", item.timestamp_field
          .. " is a " .. tostring(f.type) .. " field; the timestamp field must be a datetime"), 0)
      end
      return
    end
  end
  error(recipe.error_at(job.ctx, item.path .. ".timestamp_field", item.object .. " has no field " .. item.timestamp_field), 0)
end

-- Imports one object. Returns "done", or "paused"/"stopped" with a message.
local function run_object(job, item)
  local describe, derr, dcode, resume = jobs.describe(job, item.object, M.DESCRIBE_TTL)
  if not describe then
    if dcode == "BUDGET" then return "paused", derr, resume end
    if dcode == "STOPPED" then return "stopped", derr end
    if dcode == "NOT_FOUND" and not item.standard then
      error(recipe.error_at(job.ctx, item.path .. ".object", "this org has no object " .. item.object), 0)
    end
    error(item.object .. ": describe failed: " .. tostring(derr), 0)
  end
  check_timestamp_field(job, item, describe)
  local compiled, mp = compile(job, item, describe, job.now_iso)
  check_requested(job, item, describe, compiled)
  for _, f in ipairs(compiled.unavailable or {}) do
    job.log.info("%s: field %s is not in this org; its mapping rows are skipped", item.object, f)
  end
  write_schema(job, item, compiled)
  local out = jobs.open_output(job, item.stream .. ".ndjson")
  local st = job.stats[item.stream] or { records = 0, deleted = 0, rejected = 0, pages = 0 }
  job.stats[item.stream] = st
  st.started = clock.monotonic()
  local cursor = job.state:cursor(item.object)
  -- Bulk: always in mode "bulk", and to resume a saved Bulk job; "auto"
  -- switches after the first REST page when its totalSize says enough is due.
  local bulk_ok, why = bulk.eligible(compiled.select, describe)
  if item.mode == "bulk" and not bulk_ok then
    job.log.warn("%s: Bulk API 2.0 cannot run this query (%s); using REST", item.object, why)
  end
  local auto = item.mode == "auto" and bulk_ok and not bulk.recently_failed(job, item.object)
  if bulk_ok and item.mode ~= "rest" and (item.mode == "bulk" or bulk.pending(job, item.object)) then
    local s, m, r = run_bulk(job, item, compiled, describe, mp, out, st)
    if s then return s, m, r end
    auto = false
    cursor = job.state:cursor(item.object)
  end
  bulk.forget(job, item.object)   -- REST moves the cursor: a saved Bulk locator no longer applies
  local soql = M.build_query(compiled.select, item.object, item.timestamp_field, item.since, cursor)
  local path = job.client:query_path(soql, job.recipe.deletions)
  local headers = { ["Sforce-Query-Options"] = "batchSize=" .. job.recipe.batch_size }
  local status, message, resume_at = "done", nil, nil
  local restarts = 0 -- consecutive query restarts without a page in between
  while path do
    if signal.pending() then status, message = "stopped", "stopped by SIG" .. signal.pending(); break end
    local resp, err, code, resume2 = job.client:request { method = "GET", path = path, headers = headers }
    if not resp then
      if code == "BUDGET" then status, message, resume_at = "paused", err, resume2; break end
      if code == "STOPPED" then status, message = "stopped", err; break end
      error(item.object .. ": query failed: " .. tostring(err) .. " (" .. tostring(code) .. ")", 0)
    end
    if resp.status == 400 and client_mod.error_code(resp) == "INVALID_QUERY_LOCATOR" and restarts < 3 then
      -- The query cursor expired or was evicted: ask again from the
      -- checkpointed (timestamp, Id) cursor; nothing is lost or read twice.
      restarts = restarts + 1
      job.log.info("%s: query cursor expired; restarting the query from the checkpoint", item.object)
      soql = M.build_query(compiled.select, item.object, item.timestamp_field, item.since, job.state:cursor(item.object))
      path = job.client:query_path(soql, job.recipe.deletions)
      goto continue
    end
    restarts = 0
    if resp.status ~= 200 then
      local ecode, emsg = client_mod.error_code(resp)
      error(string.format("%s: query failed: HTTP %d %s: %s", item.object, resp.status, tostring(ecode), tostring(emsg or resp.body:sub(1, 300))), 0)
    end
    local p, perr = page.parse(resp.body)
    if not p then error(item.object .. ": bad query response: " .. tostring(perr), 0) end
    st.total = st.total or p.total_size
    local lines, rejects, ps = mp:map_page(p)
    if #lines > 0 then out:write(lines) end
    if #rejects > 0 then job.rejects:write(rejects) end
    -- Durability order: data first, then the state that points past it.
    out:sync()
    job.rejects:sync()
    if ps.last_id then job.state:set_cursor(item.object, { ts = ps.last_ts, id = ps.last_id }) end
    job.state:set_output_size(item.stream .. ".ndjson", out:size())
    job.state:set_output_size("rejects.ndjson", job.rejects:size())
    job.state:set("budget", job.budget:dump())
    job.state:checkpoint()
    st.records, st.deleted, st.rejected, st.pages =
      st.records + ps.records, st.deleted + ps.deleted, st.rejected + ps.rejected, st.pages + 1
    progress(job, item, st)
    path = (not p.done) and p.next_url or nil
    if auto and path and (p.total_size or 0) - #p > job.recipe.bulk_threshold then
      job.log.info("%s: %d more records are due: switching to a Bulk API 2.0 query job", item.object, p.total_size - #p)
      local s, m, r = run_bulk(job, item, compiled, describe, mp, out, st)
      if s then return s, m, r end
      soql = M.build_query(compiled.select, item.object, item.timestamp_field, item.since, job.state:cursor(item.object))
      path = job.client:query_path(soql, job.recipe.deletions)
    end
    auto = false
    p:close()   -- free the page's tokens now, not at some later GC cycle
    ::continue::
  end
  out:close()
  return status, message, resume_at
end

-- One pass over every planned object. Returns status ("done", "paused",
-- "stopped"), message, resume_at.
function M.run_once(job)
  local started_wall, started = clock.now(), clock.monotonic()
  job.now_iso = iso_now(started_wall)
  job.stats = {}
  job.rejects = jobs.open_output(job, "rejects.ndjson")
  local status, message, resume_at = "done", nil, nil
  for _, item in ipairs(job.plan) do
    status, message, resume_at = run_object(job, item)
    if status ~= "done" then break end
  end
  job.rejects:close()
  job.state:set("budget", job.budget:dump())
  job.state:set("runs", (job.state:get("runs") or 0) + 1)
  job.state:checkpoint()
  local summary = {
    job = job.recipe.name, kind = "import", started = iso_now(started_wall),
    duration_s = math.floor((clock.monotonic() - started) * 1000 + 0.5) / 1000,
    status = status, message = message, api_calls = job.budget.run_calls,
    logins = job.client.logins, retries = job.client.retries, streams = {},
  }
  for _, item in ipairs(job.plan) do
    local st = job.stats[item.stream]
    if st then
      summary.streams[item.stream] = { records = st.records, deletions = st.deleted, rejects = st.rejected, pages = st.pages }
    end
  end
  job.state:append_history(summary)
  jobs.print_summary(job, summary)
  return status, message, resume_at
end

function M.run(r, ctx)
  local job = jobs.setup(r, ctx, M.schema)
  job.plan = plan(job.recipe)
  for _, item in ipairs(job.plan) do
    if item.since and not soql_datetime(item.since) then
      error(recipe.error_at(ctx, item.path .. ".since",
        "not a date or datetime: " .. item.since .. " (e.g. 2024-01-15 or 2024-01-15T10:30:00Z)"), 0)
    end
  end
  if #job.plan == 0 then
    error(recipe.error_at(ctx, "objects", "nothing to import: name at least one object or custom object"), 0)
  end
  if ctx.opts.estimate then return require("sf.estimate").run(job) end
  return jobs.loop(job, M.run_once)
end

return M
