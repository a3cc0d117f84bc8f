-- sf.import.plan: what an import recipe asks for, checked before and against
-- the org: the recipe schema, the list of objects to import, the query from a
-- cursor, and each object's mapping compiled against its describe.
--
--   local plan = require "sf.import.plan"
--   local items = plan.items(job)               -- recipe errors (exit 2) before any call
--   local o, status, message, resume_at = plan.object(job, item)
--     o = { describe =, compiled = (sf.mapping.compile), mp = (sf.mapper) }
--     nil, "paused" | "stopped", message, resume_at  when the describe call could not run
--   plan.build_query(select, object, ts_field, since, cursor) -> SOQL
local recipe = require "sf.recipe"
local S = recipe.schema
local mapper = require "sf.mapper"
local fs = require "sf.fs"
local cjson = require "cjson.safe"
local mapping = require "sf.mapping"
local client_mod = require "sf.client"
local jobs = require "sf.jobs"

local M = {}

-- Standard objects and their default streams, in the product document's order.
M.STANDARD = {
  { object = "Lead", stream = "salesforce_leads" },
  { object = "Contact", stream = "salesforce_contacts" },
  { object = "Account", stream = "salesforce_accounts" },
  { object = "Opportunity", stream = "salesforce_opportunities" },
}

-- Describes are cached a day next to the state (jobs.describe): an hourly
-- run with nothing new then costs one query per object.
M.DESCRIBE_TTL = 24 * 3600

-- ---------------------------------------------------------------------------
-- The recipe

-- A recipe's `since`: a real date or datetime (the import's date rule,
-- mappings/types.lua: calendar, time of day and offset checked), else a recipe
-- error naming file:line.
local date_rule = require("mappings.types").date
local function check_since(v)
  if date_rule(v) then return true end
  return false, "not a date or datetime: " .. v .. " (e.g. 2024-01-15, 2024-01-15T10:30:00Z or 2024-01-15T10:30:00+02:00)"
end

local object_schema = S.record {
  since = S.string { check = check_since, doc = "oldest record to import (date or datetime, UTC unless an offset is given)" },
  timestamp_field = S.string { default = "LastModifiedDate", pattern = "^[%a][%w_]*$", doc = "a datetime field's API name such as LastModifiedDate or SystemModstamp" },
  additional_fields = S.list(S.string { pattern = "^[%a][%w_%.]*$", doc = "a field API name such as Rating, or a parent's field such as Owner.Email" }),
  mapping = mapping.recipe_custom,
  mode = S.string { enum = { "rest", "bulk", "auto" }, doc = "rest: REST query pages; bulk: a Bulk API 2.0 query job; auto: Bulk when more than bulk_threshold records are due (default: the recipe's mode)" },
  stream = S.string { pattern = "^[%w_%-]+$", doc = "a stream name of letters, digits, _ and -, such as crm_leads (the default mapping stays)" },
}

local custom_object_schema = S.record {
  object = S.string { required = true, pattern = "^[%a][%w_]*$", doc = "an object API name such as Invoice__c" },
  fields = S.list(S.string { pattern = "^[%a][%w_%.]*$", doc = "a field API name such as Rating, or a parent's field such as Owner.Email" }, { required = true, min = 1 }),
  stream = S.string { required = true, pattern = "^[%w_%-]+$", doc = "a stream name of letters, digits, _ and -, such as crm_invoices" },
  timestamp_field = S.string { default = "LastModifiedDate", pattern = "^[%a][%w_]*$", doc = "a datetime field's API name such as LastModifiedDate or SystemModstamp" },
  since = S.string { check = check_since, doc = "a date or datetime such as 2024-01-15 or 2024-01-15T10:30:00Z" },
  mapping = mapping.recipe_custom,
  mode = S.string { enum = { "rest", "bulk", "auto" } },
}

M.schema = S.record {
  job = S.string { required = true, enum = { "import" } },
  name = S.string { required = true, pattern = "^[%w_%-%.]+$", doc = "names the job's state and history files" },
  auth = jobs.auth_schema,
  api_version = S.string { default = client_mod.DEFAULT_API_VERSION, pattern = "^%d+%.%d$", doc = "an API version such as 62.0" },
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
  concurrency = jobs.concurrency_schema,
  compress_requests = jobs.compress_schema,
  deletions = S.boolean { default = true },
  objects = S.map(S.string { enum = { "Lead", "Contact", "Account", "Opportunity" } },
                  S.one_of { S.boolean {}, object_schema }),
  custom_objects = S.list(custom_object_schema),
  keep_updated = jobs.schedule_schema,
  notify = require("sf.notify").schema,
  memory_mb = S.integer { min = 16 },
}

-- ---------------------------------------------------------------------------
-- The query

-- "2024-01-15" / "2024-01-15T10:30:00Z" / "...+0200" / Salesforce's
-- "2024-01-15T10:30:00.000+0000" -> a SOQL datetime literal (UTC, "...Z"), or
-- nil when it is no date.
local function soql_datetime(s)
  return (date_rule(s))
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

-- The query of a planned object from the saved cursor.
function M.query(job, item, o)
  return M.build_query(o.compiled.select, item.object, item.timestamp_field, item.since, job.state:cursor(item.object))
end

-- ---------------------------------------------------------------------------
-- The objects to import

-- The list of {object, stream, since, timestamp_field, mapping, mode, path}
-- to run, in order: the standard objects, then the custom ones.
local function list(r)
  local out = {}
  for _, std in ipairs(M.STANDARD) do
    local o = r.objects and r.objects[std.object]
    if o then
      if o == true then o = { timestamp_field = "LastModifiedDate" } end
      out[#out + 1] = {
        object = std.object, stream = o.stream or std.stream, default_stream = std.stream, since = o.since,
        timestamp_field = o.timestamp_field or "LastModifiedDate",
        additional = o.additional_fields or {}, custom = o.mapping, standard = true,
        mode = o.mode or r.mode,
        path = "objects." .. std.object,
      }
    end
  end
  for i, c in ipairs(r.custom_objects or {}) do
    out[#out + 1] = {
      object = c.object, stream = c.stream, since = c.since, timestamp_field = c.timestamp_field,
      fields = c.fields, custom = c.mapping, standard = false, mode = c.mode or r.mode,
      path = "custom_objects[" .. i .. "]",
    }
  end
  return out
end

-- The planned objects of a validated recipe; raises a recipe error (exit 2)
-- for a recipe that names no object.
function M.items(job)
  local items = list(job.recipe)
  if #items == 0 then
    error(recipe.error_at(job.ctx, "objects", "nothing to import: name at least one object or custom object"), 0)
  end
  -- one stream file per object: two objects in one stream would share its checkpointed length
  local seen = {}
  for _, item in ipairs(items) do
    local other = seen[item.stream]
    if other then
      error(recipe.error_at(job.ctx, item.path .. ".stream", string.format("stream %q is already %s's: give each object its own",
        item.stream, other.object)), 0)
    end
    seen[item.stream] = item
  end
  return items
end

-- ---------------------------------------------------------------------------
-- One object against the org

-- The cursor field must be a datetime the org has: the query compares it
-- with datetime literals. (Rows whose timestamp is null cannot be ordered
-- after the cursor: with the standard LastModifiedDate/SystemModstamp
-- there are none.)
local function check_timestamp_field(job, item, describe)
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

-- Compiles the mapping of one planned object against the org's describe.
local function compile(job, item, describe)
  local m
  if item.standard then
    m = mapping.default(item.default_stream)   -- a renamed stream keeps its default mapping
    m.stream = item.stream
    if #item.additional > 0 then m = mapping.with_additional(m, item.additional, describe) end
  else
    m = mapping.for_object(item.object, item.fields, item.stream, describe)
  end
  if item.custom then m = mapping.customize(m, job.reveal_custom(item.custom)) end
  local compiled = mapping.compile(m, {
    describe = describe, now = job.now_iso, object = item.object, stream = item.stream,
    timestamp_field = item.timestamp_field,
  })
  local mp = mapper.compile(compiled.rows, {
    object = item.object, stream = item.stream, timestamp_field = item.timestamp_field,
    now = job.now_iso, types = compiled.types, call = job.call,
  })
  return compiled, mp
end

-- Fields the recipe asks for by name must exist: a typo is a recipe error
-- (the default mapping's fields may legitimately be missing, e.g. the ISO
-- code fields without State and Country Picklists: those are only reported).
local function check_requested(job, item, describe, compiled)
  local key = item.standard and ".additional_fields" or ".fields"
  local requested = {}
  for _, f in ipairs(item.additional or item.fields or {}) do requested[f] = true end
  for _, f in ipairs(compiled.unavailable or {}) do
    if requested[f] then
      local names = {}
      for _, d in ipairs(describe.fields or {}) do names[#names + 1] = d.name end
      -- Described again next run, so the job heals as soon as the field is back.
      M.forget_describe(job, item.object)
      local best = recipe.closest(f, names)
      local hint = best and (" (did you mean " .. best .. "?)") or ""
      error(recipe.error_at(job.ctx, item.path .. key, item.object .. " has no field " .. f .. hint), 0)
    end
  end
  for _, f in ipairs(compiled.unavailable or {}) do
    job.log.info("%s: field %s is not in this org; its mapping rows are skipped", item.object, f)
  end
end

-- The key every line of every stream carries (sf.mapper writes it first): the
-- record's Salesforce Id, as in the deletion events.
M.ID_FIELD = { field = "_id", type = "string", identity = false,
               description = "Salesforce: record Id (the key of updates and of deletion events)" }

local function write_schema(job, item, compiled)
  local fields = { M.ID_FIELD }
  for _, f in ipairs(compiled.schema) do fields[#fields + 1] = f end
  local doc = { stream = item.stream, object = item.object, fields = fields }
  local ok, err = fs.write_atomic(job.out_dir .. "/" .. item.stream .. ".schema.json", cjson.encode(doc) .. "\n")
  if not ok then error("schema for " .. item.stream .. ": " .. tostring(err), 0) end
end

-- Drops the cached describe of an object (its next plan describes it again).
function M.forget_describe(job, object)
  fs.remove(jobs.describe_path(job, object))
end

-- One object planned against the org: its describe (cached a day), the
-- recipe's fields checked against it, the mapping compiled, the stream's
-- schema written. Returns { describe, compiled, mp }, or nil, status,
-- message, resume_at when the describe call was paused by the budget or
-- stopped by a signal.
function M.object(job, item)
  local describe, derr, dcode, resume = jobs.describe(job, item.object, M.DESCRIBE_TTL)
  if not describe then
    if dcode == "BUDGET" then return nil, "paused", derr, resume end
    if dcode == "STOPPED" then return nil, "stopped", derr end
    if dcode == "NOT_FOUND" and not item.standard then
      error(recipe.error_at(job.ctx, item.path .. ".object", "this org has no object " .. item.object), 0)
    end
    if dcode == "AUTH" then error(derr, 0) end   -- a refused login says everything itself
    error(item.object .. ": describe failed: " .. tostring(derr), 0)
  end
  check_timestamp_field(job, item, describe)
  local compiled, mp = compile(job, item, describe)
  check_requested(job, item, describe, compiled)
  write_schema(job, item, compiled)
  return { describe = describe, compiled = compiled, mp = mp }
end

return M
