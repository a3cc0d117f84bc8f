-- The export job: user profiles (NDJSON) or Segment identify/group events ->
-- Salesforce records, backfill then real time, with as few API calls as the
-- API allows.
--
-- A run reads the input (a file, then optionally stdin followed as a stream;
-- line format in sf.profiles), keeps the users that pass the recipe's filters
-- (consent objectives, audiences, the trigger store) and flushes them in
-- micro-batches:
--   * match field is an external ID (and creating is allowed): one sObject
--     Collections upsert per 200 records (PATCH /composite/sobjects/<Obj>/<Field>,
--     allOrNone=false, safe to retry);
--   * any other match field(s): ONE escaped SOQL `IN (...)` query per up to 200
--     users finds the existing records, then Collections update
--     (PATCH /composite/sobjects) for matches and create (POST /composite/sobjects)
--     for the rest, 200 records per call. A create whose response was lost is
--     never re-sent blindly: the batch's match values are looked up again and
--     only the records still missing are created.
-- Per-record failures go to <output>/export-rejects.ndjson; only UNABLE_TO_LOCK_ROW /
-- SERVER_UNAVAILABLE records are retried. After Salesforce confirmed a user's
-- writes, its trigger hash goes to the store (SQLite, <state_dir>/<name>.store.sqlite):
-- a user is sent again only when its trigger fields or exported audiences
-- changed. After each flushed batch the input offset is checkpointed, so a
-- rerun resumes after the last confirmed batch.
--
-- ## Recipe keys (validated before any call; errors name file:line and key)
--
--   job = "export", name = "...", auth = {...}    as for import (sf.jobs)
--   api_version, state_dir, output ("out": export-rejects.ndjson), max_daily_api_calls,
--   org_share, shared_budget, memory_mb, keep_updated    as for import
--   input = { file = "profiles.ndjson",   read first (the backfill), resumable
--             stdin = true,               then stdin (default when no file)
--             follow = false,             keep reading stdin (also --follow); with
--                                         stdin = false, follow the file as it grows
--             format = "profiles",        or "segment" (identify/group events)
--             max_line_bytes = 1048576 }  longer lines are skipped and reported
--   audiences = { "power", ... }     export users in any of these; leaving all
--                                    of them updates the record (never creates);
--                                    absent: every user
--   consent = { "marketing", ... }   objectives: a user needs one of them
--                                    (users without consent are skipped)
--   object = "Lead"                  any object, custom ones too
--   match_field = "Email"            or a list (AND); it must be mapped. An
--                                    external-ID field -> upsert, else lookups
--   create = true                    false: update only
--   multiple_matches = "most_recent" the latest LastModifiedDate (ties: the
--                                    highest Id), or "update_all"
--   duplicates = "report"            DUPLICATES_DETECTED: "report" (rejected with
--                                    the matched ids), "allow_save" (sent with
--                                    Sforce-Duplicate-Rule-Header: allowSave=true),
--                                    "update_match" (the matched record is updated)
--   default_fields = true            Lead/Contact: Email, FirstName, LastName,
--                                    (Company,) Phone, Title from email, first_name,
--                                    last_name, (company,) phone, title;
--                                    Account: Name, Website, Phone from name,
--                                    domain, phone
--   field_overrides = { Phone = "mobile" }      which user field feeds a field
--   required_fields = { LastName = <value> }    the fields Salesforce requires;
--   extra_fields = { Title = <value> }          any other field
--       <value>: "user_field" (dots reach into objects: "address.city"),
--                { value = "static text" }, { id = true } (the profile id),
--                { audiences = true } (all the user's audiences) or
--                { audiences = { "a", "b" } } (those of the list), or a Lua
--                function(user) -> value (sandboxed; user is read-only)
--   audiences_field = "Lytics_Audiences__c"       exported audiences, ", "-joined,
--                                    whole names cut to the field length; cleared
--                                    when the user left them all
--   affinities_field = "..."         the top three content affinities
--   scores_field = "..."             "name=value, ..." sorted by name
--   unknown_company_ok = false       true: a missing Company is created as "Unknown";
--   unknown_last_name_ok = false     false: such a user is not created (skipped:
--                                    missing_company / missing_last_name); an
--                                    existing record is updated without it
--   triggers = { "email", ... }      at most 75 user fields ("scores" and
--                                    "affinities" name those maps): a user sent
--                                    before is sent again only when one of them
--                                    or its exported audiences changed. Without
--                                    triggers, any change of the sent values.
--   accounts = { object = "Account", match_field = "...", ... }   the same
--                                    target keys for "kind":"account" lines and
--                                    Segment group events (consent does not apply)
--   segment = { integration = "Salesforce", require_explicit = true,
--               lookup_fields = { email = "Email" }, address = "billing"
--               | "shipping" | "both", custom_traits = true }   (format = "segment")
--   batch_size = 200                 records per Collections call (1..200)
--   flush_after_s = 2                following stdin: flush a micro-batch after this
--   request_timeout_s = 120          per API request
--   describe_cache_s = 3600          reuse a describe from the state dir this long
--                                    (0: always ask; a recipe that fails against a
--                                    cached describe is checked again with a fresh one)
--
-- API calls: an upsert recipe costs ceil(users / 200) calls; a lookup recipe
-- one query per 200 users plus ceil(updates / 200) + ceil(creates / 200) per
-- round of 1,000 users (10 per 1,000 when all are new or all exist, 11 at
-- worst); plus one describe per object every describe_cache_s. Users skipped
-- after a lookup (nothing to update, not creatable) are remembered in the
-- store like sent ones, so an unchanged input costs no call at all.
--
-- Exit codes (sf.jobs): 0 done (also a followed stdin stopped by SIGTERM),
-- 1 failed, 2 recipe error (including fields Salesforce requires that are not
-- mapped, before any write), 3 paused by the API budget (rerun to resume).
local recipe = require "sf.recipe"
local S = recipe.schema
local fs = require "sf.fs"
local clock = require "sf.clock"
local signal = require "sf.signal"
local input = require "sf.input"
local store_mod = require "sf.store"
local cjson = require "cjson.safe"
local client_mod = require "sf.client"
local jobs = require "sf.jobs"
local typerules = require "sf.typerules"
local profiles = require "sf.profiles"
local segment = require "sf.segment"

local M = {}

local null = cjson.null

M.REJECTS = "export-rejects.ndjson" -- per-record failures, next to an import's rejects.ndjson
M.MAX_BATCH = 200           -- records per sObject Collections call
M.MAX_LOOKUP = 200          -- values per SOQL IN (...) lookup
M.MAX_URI = 16000           -- request target bytes (Salesforce refuses > 16,384)
M.ROUND_BATCHES = 5         -- a file backfill flushes 5 batches' worth of users at once
M.RECORD_RETRIES = 3        -- extra attempts for UNABLE_TO_LOCK_ROW / SERVER_UNAVAILABLE records
M.LOST_CREATE_CHECKS = 5    -- lookups after a create whose response was lost
M.IDLE_POLL_MS = 1000       -- follow mode: wake up this often to look at signals
local RETRYABLE = { UNABLE_TO_LOCK_ROW = true, SERVER_UNAVAILABLE = true }

-- ---------------------------------------------------------------------------
-- JSON with exact numbers (cjson prints at most 14 significant digits) and
-- sorted keys (stable hashes and dry-run output).

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = cjson.encode(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    else out[#out + 1] = typerules.number_text(v) end
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == null then
    out[#out + 1] = "null"
  elseif t == "table" then
    local n = #v
    if n > 0 or next(v) == nil and getmetatable(v) == cjson.empty_array_mt then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k)
        out[#out + 1] = ":"
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
  return out
end

local function json(v) return table.concat(encode(v, {})) end
M.json = json

-- A 128-bit hash of s as 32 hex digits: two multiply-xorshift lanes over
-- 32-byte blocks and a murmur3 finaliser. For change detection, not security.
local function fmix(h)
  h = h ~ (h >> 33)
  h = h * -49064778989728563    -- 0xff51afd7ed558ccd
  h = h ~ (h >> 33)
  h = h * -4265267296055464877  -- 0xc4ceb9fe1a85ec53
  return h ~ (h >> 33)
end

local function hash(s)
  local n = #s
  local pad = (32 - n % 32) % 32
  if pad > 0 then s = s .. string.rep("\0", pad) end
  local h1, h2 = -3750763034362895579, 7046029254386353131
  local unpack = string.unpack
  for i = 1, #s, 32 do
    local a, b, c, d = unpack("<i8i8i8i8", s, i)
    h1 = (h1 ~ a) * 1099511628211; h1 = h1 ~ (h1 >> 29)
    h2 = (h2 ~ b) * -7046029254386353131; h2 = h2 ~ (h2 >> 31)
    h1 = (h1 ~ c) * -4658895280553007687; h1 = h1 ~ (h1 >> 27)
    h2 = (h2 ~ d) * 1609587929392839161; h2 = h2 ~ (h2 >> 30)
  end
  h1, h2 = fmix(h1 ~ n), fmix(h2 ~ (n << 1))
  h1, h2 = h1 ~ h2, h2 ~ h1 * 3
  return string.format("%016x%016x", h1, h2)
end
M.hash = hash

-- ---------------------------------------------------------------------------
-- The recipe

local FIELD = "^%a[%w_]*$"

-- Where a Salesforce field's value comes from.
local source_schema = S.one_of {
  S.string { doc = "a user field name (dots reach into objects: address.city)" },
  S.func {},
  S.record({
    value = S.any {},
    audiences = S.one_of { S.boolean {}, S.list(S.string {}, { min = 1 }) },
    id = S.boolean {},
  }, {
    check = function(r)
      local n = (r.value ~= nil and 1 or 0) + (r.audiences ~= nil and 1 or 0) + (r.id ~= nil and 1 or 0)
      if n ~= 1 then return false, "give exactly one of value = ..., audiences = true | {...}, id = true" end
      if r.id == false or r.audiences == false then return false, "use true (or leave the row out)" end
      local t = type(r.value)
      if r.value ~= nil and t ~= "string" and t ~= "number" and t ~= "boolean" then
        return false, "value must be a string, a number or a boolean"
      end
      return true
    end,
  }),
}

local fields_map = S.map(S.string { pattern = FIELD, doc = "a Salesforce field API name" }, source_schema)

-- Keys describing one target (the user target at the top level, and `accounts`).
local function target_fields(top)
  local f = {
    object = S.string { pattern = FIELD, doc = "a Salesforce object API name (Lead, Contact, My_Object__c)" },
    match_field = S.one_of { S.string { pattern = FIELD }, S.list(S.string { pattern = FIELD }, { min = 1, max = 5 }) },
    create = S.boolean { default = true },
    multiple_matches = S.string { enum = { "most_recent", "update_all" }, default = "most_recent" },
    duplicates = S.string { enum = { "report", "allow_save", "update_match" }, default = "report" },
    default_fields = S.boolean { default = true },
    field_overrides = S.map(S.string { pattern = FIELD }, S.string {}),
    required_fields = fields_map,
    extra_fields = fields_map,
    audiences_field = S.string { pattern = FIELD },
    affinities_field = S.string { pattern = FIELD },
    scores_field = S.string { pattern = FIELD },
    unknown_company_ok = S.boolean { default = false },
    unknown_last_name_ok = S.boolean { default = false },
    triggers = S.list(S.string {}, { max = 75 }),
  }
  if top then
    f.job = S.string { required = true, enum = { "export" } }
    f.name = S.string { required = true, pattern = "^[%w_%-%.]+$", doc = "names the job's state, store and history files" }
    f.auth = jobs.auth_schema
    f.api_version = S.string { default = client_mod.DEFAULT_API_VERSION, pattern = "^%d+%.%d$" }
    f.output = S.string { default = "out" }
    f.state_dir = S.string {}
    f.max_daily_api_calls = S.integer { min = 1 }
    f.org_share = S.number { min = 0.01, max = 1, default = 0.8 }
    f.shared_budget = S.string {}
    f.memory_mb = S.integer { min = 16 }
    f.keep_updated = jobs.schedule_schema
    f.input = S.record {
      file = S.string {},
      stdin = S.boolean {},
      follow = S.boolean { default = false },
      format = S.string { enum = { "profiles", "segment" }, default = "profiles" },
      max_line_bytes = S.integer { min = 1024, max = 64 * 1024 * 1024, default = 1024 * 1024 },
    }
    f.audiences = S.list(S.string {}, { min = 1 })
    f.consent = S.list(S.string {}, { min = 1 })
    f.segment = S.record {
      integration = S.string { default = "Salesforce" },
      require_explicit = S.boolean { default = true },
      lookup_fields = S.map(S.string {}, S.string { pattern = FIELD }),
      address = S.string { enum = { "billing", "shipping", "both" }, default = "billing" },
      custom_traits = S.boolean { default = true },
    }
    f.accounts = S.record(target_fields(false))
    f.batch_size = S.integer { min = 1, max = M.MAX_BATCH, default = M.MAX_BATCH }
    f.flush_after_s = S.number { min = 0.05, max = 300, default = 2 }
    f.request_timeout_s = S.number { min = 1, max = 600, default = 120 }
    f.describe_cache_s = S.integer { min = 0, default = 3600 }
  end
  return f
end

M.schema = S.record(target_fields(true), {
  check = function(r)
    local seg = r.input and r.input.format == "segment"
    if not seg then
      if not r.object then return false, "object: required key is missing (the Salesforce object to export to)" end
      if not r.match_field then return false, "match_field: required key is missing (it must be mapped too)" end
    end
    if r.accounts and not seg then
      if not r.accounts.object then return false, "accounts.object: required key is missing" end
      if not r.accounts.match_field then return false, "accounts.match_field: required key is missing" end
    end
    return true
  end,
})

-- Default mappings per object (Salesforce field -> user field); field_overrides
-- replaces their sources, default_fields = false drops them.
M.DEFAULTS = {
  Lead = { Email = "email", FirstName = "first_name", LastName = "last_name", Company = "company",
           Phone = "phone", Title = "title" },
  Contact = { Email = "email", FirstName = "first_name", LastName = "last_name", Phone = "phone",
              Title = "title" },
  Account = { Name = "name", Website = "domain", Phone = "phone" },
}

-- Fields the Segment mapping fills (they count as mapped for the required-field check).
local SEGMENT_LEAD = { "Email", "FirstName", "LastName", "Company", "Title", "Phone", "Rating", "Website",
  "Description", "Industry", "LeadSource", "NumberOfEmployees", "Street", "City", "State", "PostalCode", "Country" }
local SEGMENT_ACCOUNT = { "Name", "AccountNumber", "NumberOfEmployees", "Phone", "Website", "Description",
  "Industry" }

local UNKNOWN_FIELDS = { Company = "unknown_company_ok", LastName = "unknown_last_name_ok" }

-- ---------------------------------------------------------------------------
-- Aborting a run from deep inside: paused by the budget, stopped, failed.

local abort_mt = {}
local function abort(status, message, resume_at)
  error(setmetatable({ status = status, message = message, resume_at = resume_at }, abort_mt), 0)
end

local function iso_now(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t or clock.now())) end

-- ---------------------------------------------------------------------------
-- Describe: fetched once per object and run, cached in the state directory
-- for describe_cache_s seconds (a run then costs no describe call).

local function describe(job, object, fresh)
  local d, second, code, resume = jobs.describe(job, object, job.recipe.describe_cache_s, fresh)
  if d then return d, second end   -- second: whether it came from the cache
  local err = second
  if code == "BUDGET" then abort("paused", err, resume) end
  if code == "STOPPED" then abort("stopped", err) end
  if code == "NOT_FOUND" then return nil, "Salesforce has no object " .. object end
  abort("failed", object .. ": describe failed: " .. tostring(err))
end

-- ---------------------------------------------------------------------------
-- Targets: one per record kind (users, accounts), compiled against describe.

local function target_error(ctx, keys, message)
  error(recipe.error_at(ctx, keys, message), 0)
end

-- The plan of one target before describe: object, match fields, mapping rows.
local function plan_target(r, t, prefix, kind, ctx)
  local seg = r.input.format == "segment"
  local p = {
    kind = kind, prefix = prefix, object = t.object, create = t.create,
    multiple = t.multiple_matches, duplicates = t.duplicates,
    audiences_field = t.audiences_field, affinities_field = t.affinities_field, scores_field = t.scores_field,
    unknown_ok = { Company = t.unknown_company_ok, LastName = t.unknown_last_name_ok },
    triggers = t.triggers and #t.triggers > 0 and t.triggers or nil,
    rows = {},       -- { field = "Email", source = <spec>, key = "extra_fields.Email" }
    implicit = nil,  -- "segment_lead" | "segment_account"
  }
  local function key(...) return (prefix ~= "" and prefix .. "." or "") .. table.concat({ ... }, ".") end
  local seen = {}
  local function add(field, source, k)
    local lf = field:lower()
    if seen[lf] and seen[lf] ~= "default" then
      target_error(ctx, k, field .. " is mapped twice (also at " .. seen[lf] .. ")")
    end
    for i = #p.rows, 1, -1 do
      if p.rows[i].field:lower() == lf then table.remove(p.rows, i) end
    end
    seen[lf] = k
    p.rows[#p.rows + 1] = { field = field, source = source, key = k }
  end
  if seg then
    if kind == "user" then
      p.object = p.object or "Lead"
      p.implicit = "segment_lead"
      local lookup = r.segment and r.segment.lookup_fields
      if not lookup or next(lookup) == nil then lookup = { email = "Email" } end
      p.lookup = lookup
      local mf = {}
      for _, f in pairs(lookup) do mf[#mf + 1] = f end
      table.sort(mf)
      p.match = t.match_field and (type(t.match_field) == "string" and { t.match_field } or t.match_field) or mf
    else
      p.object = p.object or "Account"
      p.implicit = "segment_account"
      p.match = t.match_field and (type(t.match_field) == "string" and { t.match_field } or t.match_field)
        or { "AccountNumber" }
    end
  else
    p.match = type(t.match_field) == "string" and { t.match_field } or t.match_field
    if t.default_fields and M.DEFAULTS[p.object] then
      local names = {}
      for f in pairs(M.DEFAULTS[p.object]) do names[#names + 1] = f end
      table.sort(names)
      for _, f in ipairs(names) do
        seen[f:lower()] = "default"
        p.rows[#p.rows + 1] = { field = f, source = M.DEFAULTS[p.object][f], key = key("default_fields"), default = true }
      end
    end
  end
  for f, src in pairs(t.field_overrides or {}) do
    for i = #p.rows, 1, -1 do
      if p.rows[i].field:lower() == f:lower() then table.remove(p.rows, i) end
    end
    seen[f:lower()] = key("field_overrides", f)
    p.rows[#p.rows + 1] = { field = f, source = src, key = key("field_overrides", f) }
  end
  for _, section in ipairs { "required_fields", "extra_fields" } do
    local names = {}
    for f in pairs(t[section] or {}) do names[#names + 1] = f end
    table.sort(names)
    for _, f in ipairs(names) do add(f, t[section][f], key(section, f)) end
  end
  for _, special in ipairs { "audiences_field", "affinities_field", "scores_field" } do
    local f = t[special]
    if f then
      for _, row in ipairs(p.rows) do
        if row.field:lower() == f:lower() then
          target_error(ctx, key(special), f .. " is also mapped at " .. row.key)
        end
      end
    end
  end
  return p
end

local TEXT_TYPES = { string = true, textarea = true, multipicklist = true, picklist = true, combobox = true }

-- Checks a planned target against the object's describe; fills in the field
-- descriptions. Raises a recipe error (exit 2) naming the recipe line.
local function compile_target(job, p, d)
  local ctx = job.ctx
  local fields = {}
  for _, fd in ipairs(d.fields or {}) do fields[fd.name:lower()] = fd end
  p.describe = d
  p.fields = fields
  local function fd_of(name, k, purpose)
    local fd = fields[name:lower()]
    if not fd then target_error(ctx, k, p.object .. " has no field " .. name .. (purpose or "")) end
    return fd
  end
  local function writable(fd, k)
    local ok, why = typerules.supported(fd)
    if not ok then target_error(ctx, k, p.object .. "." .. fd.name .. ": " .. why) end
    if not fd.createable and not fd.updateable then
      target_error(ctx, k, p.object .. "." .. fd.name .. " is read-only (neither createable nor updateable)")
    end
  end
  for _, row in ipairs(p.rows) do
    local fd = fields[row.field:lower()]
    if not fd then
      if row.default then row.skip = true
      else target_error(ctx, row.key, p.object .. " has no field " .. row.field) end
    else
      writable(fd, row.key)
      row.field, row.fd = fd.name, fd
    end
  end
  local kept = {}
  for _, row in ipairs(p.rows) do if not row.skip then kept[#kept + 1] = row end end
  p.rows = kept
  local pk = p.prefix ~= "" and (p.prefix .. ".") or ""
  for _, special in ipairs { "audiences_field", "affinities_field", "scores_field" } do
    local name = p[special]
    if name then
      local fd = fd_of(name, pk .. special)
      writable(fd, pk .. special)
      if not TEXT_TYPES[fd.type] then
        target_error(ctx, pk .. special, p.object .. "." .. fd.name .. " is a " .. fd.type .. " field; it must hold text")
      end
      p[special] = fd.name
      p[special .. "_fd"] = fd
    end
  end
  -- fields that the mapping fills (for the match and required checks)
  local mapped = {}
  for _, row in ipairs(p.rows) do mapped[row.field] = true end
  if p.implicit then
    for _, f in ipairs(p.implicit == "segment_lead" and SEGMENT_LEAD or SEGMENT_ACCOUNT) do
      local fd = fields[f:lower()]
      if fd then mapped[fd.name] = true end
    end
    if p.lookup then
      for trait, f in pairs(p.lookup) do
        local fd = fd_of(f, "segment.lookup_fields." .. trait)
        writable(fd, "segment.lookup_fields." .. trait)
        mapped[fd.name] = true
        p.lookup[trait] = fd.name
      end
    end
  end
  for _, special in ipairs { "audiences_field", "affinities_field", "scores_field" } do
    if p[special] then mapped[p[special]] = true end
  end
  -- match fields: present, mapped, filterable
  local match = {}
  for i, name in ipairs(p.match) do
    local k = p.implicit and p.lookup and "segment.lookup_fields" or (pk .. "match_field")
    local fd = fd_of(name, k)
    if not mapped[fd.name] then
      target_error(ctx, k, "the match field " .. fd.name .. " must be mapped (in required_fields, extra_fields or the defaults)")
    end
    if fd.filterable == false then
      target_error(ctx, k, p.object .. "." .. fd.name .. " cannot be used in a query filter; pick another match field")
    end
    match[i] = fd
  end
  p.match_fds = match
  p.match_names = {}
  for i, fd in ipairs(match) do p.match_names[i] = fd.name end
  -- the write path
  p.upsert = #match == 1 and match[1].externalId == true and p.create
  -- required to create: createable, not nillable, not defaulted, not a boolean
  p.required = {}
  if p.create then
    local missing = {}
    for _, fd in ipairs(d.fields or {}) do
      if fd.createable and fd.nillable == false and not fd.defaultedOnCreate and fd.type ~= "boolean" then
        p.required[#p.required + 1] = fd.name
        if not mapped[fd.name] then missing[#missing + 1] = fd.name end
      end
    end
    if #missing > 0 then
      target_error(ctx, pk .. "required_fields", string.format(
        "%s requires %s to create a record: map %s in required_fields (or set create = false)",
        p.object, table.concat(missing, ", "), #missing == 1 and "it" or "them"))
    end
  end
  return p
end

-- ---------------------------------------------------------------------------
-- Building a user's record

-- A read-only view of a user for recipe functions.
local function readonly(t)
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if type(v) == "table" and v ~= null then return readonly(v) end
      return v
    end,
    __newindex = function(_, k) error("the user is read-only (cannot set " .. tostring(k) .. ")", 2) end,
    __pairs = function()
      local k
      return function()
        local v
        k, v = next(t, k)
        if type(v) == "table" and v ~= null then v = readonly(v) end
        return k, v
      end
    end,
    __len = function() return #t end,
    __metatable = "locked",
  })
end

-- Items joined with sep while they fit max units (whole items only).
local function join_fitting(items, sep, max)
  local out, units = {}, 0
  for _, s in ipairs(items) do
    local add = #s + (#out > 0 and #sep or 0)
    if max then
      local room = max - units - (#out > 0 and #sep or 0)
      if room <= 0 or typerules.cut(s, room) ~= s then break end
    end
    out[#out + 1] = s
    units = units + add
  end
  return table.concat(out, sep)
end

local function list_value(items, fd)
  if fd.type == "multipicklist" then
    return join_fitting(items, ";", fd.length and fd.length > 0 and fd.length or nil)
  end
  return join_fitting(items, ", ", fd.length and fd.length > 0 and fd.length or nil)
end

-- The value of one mapping row for a user: value | nil, reject reason.
local function source_value(job, src, user, fd, view)
  local t = type(src)
  if t == "string" then return profiles.get(user.fields, src) end
  if t == "function" then
    local ok, v = job.call(src, view)
    if not ok then return nil, "the recipe function failed: " .. tostring(v) end
    return v
  end
  if src.value ~= nil then return src.value end
  if src.id then return user.id end
  if src.audiences then
    -- true: every audience the user is in; a list: those of it the user is in
    local list = user.audiences
    if type(src.audiences) == "table" then
      list = {}
      for _, a in ipairs(src.audiences) do
        if user.in_audience[a] then list[#list + 1] = a end
      end
      table.sort(list)
    end
    if #list == 0 then return null end
    return list_value(list, fd)
  end
  return nil
end

local function scores_text(scores)
  local names = {}
  for k in pairs(scores) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = k .. "=" .. typerules.number_text(scores[k]) end
  return parts
end

-- rec = { fields = {Field = value (null clears)}, match = {values}, key = "..",
--         rejects = {{field, reason}}, hash = "..." } | nil, skip reason
local function build_record(job, target, user, exported)
  local values, rejects = {}, {}
  if target.implicit then
    local sf, custom
    if target.implicit == "segment_lead" then
      sf, custom = segment.lead_fields(user.fields)
    else
      sf, custom = segment.account_fields(user.fields, user.id, { address = job.recipe.segment and job.recipe.segment.address })
    end
    local keep_custom = not (job.recipe.segment and job.recipe.segment.custom_traits == false)
    for f, v in pairs(sf) do
      local fd = target.fields[f:lower()]
      if custom[f] and not keep_custom then
        -- custom traits switched off
      elseif not fd then
        rejects[#rejects + 1] = { field = f, reason = "no field " .. f .. " on " .. target.object .. " (trait " .. (custom[f] or f) .. ")", code = "NO_SUCH_FIELD" }
      elseif not typerules.supported(fd) or not (fd.createable or fd.updateable) then
        rejects[#rejects + 1] = { field = fd.name, reason = target.object .. "." .. fd.name .. " cannot be written", code = "NOT_WRITABLE" }
      else
        values[fd.name] = { v = v, fd = fd }
      end
    end
    if target.lookup then
      local lv, missing = segment.lookup_values(user.fields, target.lookup)
      if not lv then return nil, "missing_match_value", "no " .. missing .. " trait to look the record up by" end
      for f, v in pairs(lv) do values[f] = { v = v, fd = target.fields[f:lower()] } end
    end
  end
  local view
  for _, row in ipairs(target.rows) do
    if type(row.source) == "function" and not view then view = readonly(user) end
    local v, err = source_value(job, row.source, user, row.fd, view)
    if err then
      rejects[#rejects + 1] = { field = row.field, reason = err, code = "FUNCTION_ERROR" }
    elseif v ~= nil then
      values[row.field] = { v = v, fd = row.fd }
    else
      values[row.field] = nil
    end
  end
  if target.audiences_field then
    local fd = target.audiences_field_fd
    values[fd.name] = { v = #exported > 0 and list_value(exported, fd) or null, fd = fd }
  end
  if target.affinities_field and user.affinities then
    local top = profiles.top(user.affinities, 3)
    if #top > 0 then
      local fd = target.affinities_field_fd
      values[fd.name] = { v = list_value(top, fd), fd = fd }
    end
  end
  if target.scores_field and user.scores and next(user.scores) then
    local fd = target.scores_field_fd
    values[fd.name] = { v = list_value(scores_text(user.scores), fd), fd = fd }
  end
  -- type rules
  local fields = {}
  for name, x in pairs(values) do
    if x.v == null or typerules.is_missing(x.v) then
      if x.v == null then fields[name] = null end
    else
      local v, why = typerules.coerce(x.v, x.fd)
      if v == nil then
        rejects[#rejects + 1] = { field = name, reason = why, code = "TYPE_MISMATCH" }
      else
        fields[name] = v
      end
    end
  end
  -- match values
  local match, parts = {}, {}
  for i, fd in ipairs(target.match_fds) do
    local v = fields[fd.name]
    if v == nil or v == null then
      return nil, "missing_match_value", "no value for the match field " .. fd.name
    end
    match[i] = v
    parts[i] = type(v) == "string" and v:lower() or json(v)
  end
  -- the trigger hash: trigger fields (or the whole record) + exported audiences
  local basis
  if target.triggers then
    local tv = {}
    for i, f in ipairs(target.triggers) do
      local v
      if f == "scores" then v = user.scores
      elseif f == "affinities" then v = user.affinities
      else v = profiles.get(user.fields, f) end
      tv[i] = v == nil and null or v
    end
    basis = { t = tv, a = exported, o = target.object }
  else
    basis = { f = fields, a = exported, o = target.object }
  end
  return {
    user = user, target = target, fields = fields, match = match, match_key = table.concat(parts, "\0"),
    rejects = rejects, hash = hash(json(basis)),
  }
end

-- ---------------------------------------------------------------------------
-- Output: rejects file, dry-run lines, counters

local function reject(job, entry)
  entry.time = iso_now()
  if job.dry then
    io.stdout:write(json { dry_run = "reject", reject = entry }, "\n")
    return
  end
  job.rejects:write(json(entry) .. "\n")
end

local function skip(job, reason)
  job.stats.skipped[reason] = (job.stats.skipped[reason] or 0) + 1
end

local function match_doc(target, rec)
  local m = {}
  for i, name in ipairs(target.match_names) do m[name] = rec.match[i] end
  return m
end

-- ---------------------------------------------------------------------------
-- Salesforce calls

local function call(job, req)
  local resp, err, code, resume = job.client:request(req)
  if not resp and code == "BUDGET" then abort("paused", err, resume) end
  if not resp and code == "STOPPED" then abort("stopped", err) end
  return resp, err, code
end

-- Waits before trying records again; a SIGTERM/SIGINT ends the run there.
local function pause(job, seconds)
  local c = job.client
  local ok
  if c.wait then ok = c:wait(seconds) else ok = c.sleep(seconds) end
  if not ok then abort("stopped", "stopped by SIG" .. tostring(signal.pending())) end
end

local function soql_literal(v, fd)
  local t = fd.type
  if t == "int" or t == "double" or t == "currency" or t == "percent" then return typerules.number_text(v) end
  if t == "boolean" then return v and "true" or "false" end
  if t == "date" or t == "datetime" then return v end
  v = tostring(v)
  return "'" .. v:gsub("[\\'\"\n\r\t\b\f]", {
    ["\\"] = "\\\\", ["'"] = "\\'", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
    ["\b"] = "\\b", ["\f"] = "\\f",
  }) .. "'"
end
M.soql_literal = soql_literal

local function key_of(values)
  local parts = {}
  for i, v in ipairs(values) do
    if v == nil or v == null then return nil end
    parts[i] = type(v) == "string" and v:lower() or json(v)
  end
  return table.concat(parts, "\0")
end

-- The lookup query for recs (all of one target): SOQL text.
local function lookup_soql(target, recs)
  local conds = {}
  for i, fd in ipairs(target.match_fds) do
    local seen, lits = {}, {}
    for _, rec in ipairs(recs) do
      local lit = soql_literal(rec.match[i], fd)
      if not seen[lit] then
        seen[lit] = true
        lits[#lits + 1] = lit
      end
    end
    table.sort(lits)
    conds[i] = fd.name .. " IN (" .. table.concat(lits, ", ") .. ")"
  end
  local select = { "Id" }
  local has_lmd = target.fields.lastmodifieddate ~= nil
  if has_lmd then select[#select + 1] = "LastModifiedDate" end
  for _, name in ipairs(target.match_names) do
    if name ~= "Id" then select[#select + 1] = name end
  end
  return "SELECT " .. table.concat(select, ", ") .. " FROM " .. target.object .. " WHERE " .. table.concat(conds, " AND ")
end

-- Looks recs up (one query per up to 200 values, split further to keep the
-- URI short). Returns { match_key -> { {Id, LastModifiedDate}, ... } }.
local function lookup(job, target, recs, found)
  found = found or {}
  if #recs == 0 then return found end
  if #recs > M.MAX_LOOKUP then
    for i = 1, #recs, M.MAX_LOOKUP do
      lookup(job, target, { table.unpack(recs, i, math.min(#recs, i + M.MAX_LOOKUP - 1)) }, found)
    end
    return found
  end
  local soql = lookup_soql(target, recs)
  local path = job.client:query_path(soql)
  local target_len = #("/services/data/v" .. job.recipe.api_version) + #path
  if target_len > M.MAX_URI and #recs > 1 then
    local half = #recs // 2
    lookup(job, target, { table.unpack(recs, 1, half) }, found)
    lookup(job, target, { table.unpack(recs, half + 1) }, found)
    return found
  end
  while path do
    local resp, err, code = call(job, { method = "GET", path = path })
    if not resp then abort("failed", target.object .. ": lookup failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
    if resp.status ~= 200 or type(resp.data) ~= "table" then
      local ecode, emsg = client_mod.error_code(resp)
      abort("failed", string.format("%s: lookup failed: HTTP %d %s: %s", target.object, resp.status,
        tostring(ecode), tostring(emsg or resp.body:sub(1, 300))))
    end
    for _, row in ipairs(resp.data.records or {}) do
      local vals = {}
      for i, name in ipairs(target.match_names) do vals[i] = row[name] end
      local k = key_of(vals)
      if k then
        local list = found[k] or {}
        found[k] = list
        list[#list + 1] = { id = row.Id, modified = row.LastModifiedDate }
      end
    end
    path = (resp.data.done == false) and resp.data.nextRecordsUrl or nil
  end
  return found
end

-- The records to update among matches, by the multiple_matches rule.
local function pick(target, matches)
  if #matches <= 1 or target.multiple == "update_all" then return matches end
  local best = matches[1]
  for i = 2, #matches do
    local m = matches[i]
    local a, b = m.modified or "", best.modified or ""
    if a > b or (a == b and m.id > best.id) then best = m end
  end
  return { best }
end

-- ---------------------------------------------------------------------------
-- Writes. A "write" is one record sent for one rec (a user may need several
-- with update_all). rec.pending counts its unconfirmed writes; rec.failed
-- marks a rejected one; when pending reaches 0 the rec is settled.

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
  job.confirmed[#job.confirmed + 1] = rec
end

-- The trigger store learns about the settled recs (after Salesforce confirmed).
local function commit_confirmed(job)
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

-- Salesforce really spells the key "duplicateResut" (sic) in DUPLICATES_DETECTED
-- errors; the correct spelling is accepted too, should it ever be fixed.
local function dup_ids(err)
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

local function reject_write(job, w, op, e, extra)
  local target, rec = w.rec.target, w.rec
  local entry = {
    user = rec.user.key, object = target.object, operation = op, id = w.id,
    statusCode = e.statusCode or e.errorCode or "UNKNOWN", message = e.message,
    fields = type(e.fields) == "table" and e.fields or {}, match = match_doc(target, rec),
  }
  for k, v in pairs(extra or {}) do entry[k] = v end
  reject(job, entry)
  job.stats.failed = job.stats.failed + 1
  rec.failed = true
  rec.pending = rec.pending - 1
  settle(job, rec)
end

local function succeed(job, w, op)
  local rec = w.rec
  if op == "created" then job.stats.created = job.stats.created + 1 else job.stats.updated = job.stats.updated + 1 end
  rec.wrote_any = true
  rec.pending = rec.pending - 1
  settle(job, rec)
end

local function dry_print(job, op, w, body)
  local doc = { dry_run = op, object = w.rec.target.object, user = w.rec.user.key, record = body }
  if w.id then doc.id = w.id end
  io.stdout:write(json(doc), "\n")
end

local function headers(target)
  if target.duplicates == "allow_save" then return { ["Sforce-Duplicate-Rule-Header"] = "allowSave=true" } end
  return nil
end

local function collection_request(job, method, path, target, bodies, retry)
  local text = '{"allOrNone":false,"records":[' .. table.concat(bodies, ",") .. "]}"
  local h = headers(target) or {}
  h["Content-Type"] = "application/json"
  return call(job, { method = method, path = path, body = text, headers = h, retry = retry })
end

-- Results of a collection call, one per record, or nil, error (whole-request
-- failure). INVALID_FIELD for the whole request means the org's fields changed
-- under a cached describe: drop the cache and stop; the rerun redoes the batch.
local function results_of(job, target, resp, n)
  if resp.status == 200 and type(resp.data) == "table" and #resp.data == n then return resp.data end
  local ecode, emsg = client_mod.error_code(resp)
  if ecode == "INVALID_FIELD" then
    fs.remove(jobs.describe_path(job, target.object))
    abort("failed", target.object .. ": Salesforce refused a field (" .. tostring(emsg)
      .. "); the describe cache was dropped, run the job again to check the recipe against the org")
  end
  return nil, { errorCode = ecode or ("HTTP_" .. resp.status), message = emsg or (resp.body or ""):sub(1, 300) }
end

local update_writes -- forward

-- Updates writes { rec, id } by Id: PATCH /composite/sobjects, 200 per call.
update_writes = function(job, target, writes, attempt)
  attempt = attempt or 0
  local bs = job.recipe.batch_size
  for i = 1, #writes, bs do
    local chunk = { table.unpack(writes, i, math.min(#writes, i + bs - 1)) }
    local bodies, docs = {}, {}
    for j, w in ipairs(chunk) do
      docs[j] = record_body(target, w.rec, "update", w.id)
      bodies[j] = json(docs[j])
    end
    if job.dry then
      for j, w in ipairs(chunk) do
        local d = docs[j]
        d.attributes, d.id = nil, nil
        dry_print(job, "update", w, d)
        succeed(job, w, "updated")
      end
    else
      local resp, err, code = collection_request(job, "PATCH", "/composite/sobjects", target, bodies, true)
      if not resp then abort("failed", target.object .. ": update failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
      local results, top = results_of(job, target, resp, #chunk)
      local again = {}
      for j, w in ipairs(chunk) do
        local r = results and results[j]
        if not results then
          reject_write(job, w, "update", top)
        elseif r.success then
          succeed(job, w, "updated")
        else
          local e = type(r.errors) == "table" and r.errors[1] or {}
          if RETRYABLE[e.statusCode] and attempt < M.RECORD_RETRIES then
            again[#again + 1] = w
          elseif e.statusCode == "DUPLICATES_DETECTED" then
            reject_write(job, w, "update", e, { duplicate_ids = dup_ids(e) })
          else
            reject_write(job, w, "update", e)
          end
        end
      end
      commit_confirmed(job)
      if #again > 0 then
        pause(job, job.client:backoff(attempt + 1))
        update_writes(job, target, again, attempt + 1)
      end
    end
  end
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

-- Handles DUPLICATES_DETECTED on creates/upserts by the target's rule.
-- Returns the writes to update instead (update_match).
local function duplicate_fallback(job, target, w, e, op, to_update)
  local ids = dup_ids(e)
  if target.duplicates == "update_match" and #ids > 0 then
    local matches = {}
    for _, id in ipairs(ids) do matches[#matches + 1] = { id = id } end
    if target.multiple == "most_recent" and #matches > 1 then
      -- dates of the matched records decide
      local lits = {}
      for i, id in ipairs(ids) do lits[i] = soql_literal(id, { type = "id" }) end
      -- Through call(): a budget pause or a stop here ends the batch cleanly.
      local resp = call(job, { method = "GET", path = job.client:query_path("SELECT Id, LastModifiedDate FROM "
        .. target.object .. " WHERE Id IN (" .. table.concat(lits, ", ") .. ")") })
      local data = resp and resp.status == 200 and resp.data
      if type(data) == "table" and data.records then
        matches = {}
        for _, row in ipairs(data.records) do matches[#matches + 1] = { id = row.Id, modified = row.LastModifiedDate } end
      end
      if #matches == 0 then matches = { { id = ids[1] } } end
    end
    local chosen = pick(target, matches)
    w.rec.pending = w.rec.pending - 1 + #chosen
    for _, m in ipairs(chosen) do to_update[#to_update + 1] = { rec = w.rec, id = m.id } end
    return
  end
  reject_write(job, w, op, e, { duplicate_ids = ids })
end

-- Creates writes { rec }: POST /composite/sobjects, never blindly repeated.
local function create_writes(job, target, writes, attempt, checks)
  attempt, checks = attempt or 0, checks or 0
  local bs = job.recipe.batch_size
  for i = 1, #writes, bs do
    local chunk = { table.unpack(writes, i, math.min(#writes, i + bs - 1)) }
    local bodies, docs = {}, {}
    for j, w in ipairs(chunk) do
      docs[j] = record_body(target, w.rec, "create")
      bodies[j] = json(docs[j])
    end
    if job.dry then
      for j, w in ipairs(chunk) do
        docs[j].attributes = nil
        dry_print(job, "create", w, docs[j])
        succeed(job, w, "created")
      end
    else
      local resp, err, code = collection_request(job, "POST", "/composite/sobjects", target, bodies, false)
      local lost = not resp or resp.status >= 500
      if lost then
        -- The response is lost (transport error or 5xx): Salesforce may or may
        -- not have created the records. Look them up again; create only the
        -- ones still missing.
        local n = checks + 1
        if n > M.LOST_CREATE_CHECKS then
          abort("failed", target.object .. ": create failed " .. checks .. " times without an answer: "
            .. tostring(err or ("HTTP " .. resp.status)))
        end
        job.log.warn("%s: create of %d records got no answer (%s); looking them up before trying again", target.object,
          #chunk, tostring(err or ("HTTP " .. resp.status)) .. (code and (" " .. code) or ""))
        job.stats.lost_creates = job.stats.lost_creates + 1
        pause(job, math.max(job.lost_wait_s, job.client:backoff(n)))
        local recs = {}
        for j, w in ipairs(chunk) do recs[j] = w.rec end
        local found = lookup(job, target, recs)
        local missing = {}
        for _, w in ipairs(chunk) do
          local m = found[w.rec.match_key]
          if m and #m > 0 then
            succeed(job, w, "created")
          else
            missing[#missing + 1] = w
          end
        end
        commit_confirmed(job)
        if #missing > 0 then create_writes(job, target, missing, attempt, n) end
      else
        local results, top = results_of(job, target, resp, #chunk)
        local again, to_update = {}, {}
        for j, w in ipairs(chunk) do
          local r = results and results[j]
          if not results then
            reject_write(job, w, "create", top)
          elseif r.success then
            succeed(job, w, "created")
          else
            local e = type(r.errors) == "table" and r.errors[1] or {}
            if RETRYABLE[e.statusCode] and attempt < M.RECORD_RETRIES then
              again[#again + 1] = w   -- that record was not created: safe to send again
            elseif e.statusCode == "DUPLICATES_DETECTED" then
              duplicate_fallback(job, target, w, e, "create", to_update)
            else
              reject_write(job, w, "create", e)
            end
          end
        end
        commit_confirmed(job)
        if #to_update > 0 then update_writes(job, target, to_update) end
        if #again > 0 then
          pause(job, job.client:backoff(attempt + 1))
          create_writes(job, target, again, attempt + 1)
        end
      end
    end
  end
end

local lookup_path -- forward

-- Upserts recs by the external ID: PATCH /composite/sobjects/<Obj>/<Field>.
local function upsert_recs(job, target, recs, attempt)
  attempt = attempt or 0
  local bs = job.recipe.batch_size
  local ext = target.match_names[1]
  for i = 1, #recs, bs do
    local chunk = { table.unpack(recs, i, math.min(#recs, i + bs - 1)) }
    if job.dry then
      -- dry run: find out what would be created or updated (reads only)
      lookup_path(job, target, chunk)
    else
      local bodies = {}
      local writes = {}
      for j, rec in ipairs(chunk) do
        rec.pending = 1
        writes[j] = { rec = rec }
        bodies[j] = json(record_body(target, rec, "upsert"))
      end
      local resp, err, code = collection_request(job, "PATCH", "/composite/sobjects/" .. target.object .. "/" .. ext,
        target, bodies, true)
      if not resp then abort("failed", target.object .. ": upsert failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
      local results, top = results_of(job, target, resp, #chunk)
      local again, to_update, by_lookup = {}, {}, {}
      for j, w in ipairs(writes) do
        local r = results and results[j]
        if not results then
          reject_write(job, w, "upsert", top)
        elseif r.success then
          succeed(job, w, r.created and "created" or "updated")
        else
          local e = type(r.errors) == "table" and r.errors[1] or {}
          if RETRYABLE[e.statusCode] and attempt < M.RECORD_RETRIES then
            again[#again + 1] = w.rec
          elseif e.statusCode == "DUPLICATE_EXTERNAL_ID" or e.statusCode == "MULTIPLE_CHOICES" then
            -- several records carry this external ID: the multiple_matches rule decides
            w.rec.pending = 0
            by_lookup[#by_lookup + 1] = w.rec
          elseif e.statusCode == "DUPLICATES_DETECTED" then
            duplicate_fallback(job, target, w, e, "upsert", to_update)
          else
            reject_write(job, w, "upsert", e)
          end
        end
      end
      commit_confirmed(job)
      if #to_update > 0 then update_writes(job, target, to_update) end
      if #by_lookup > 0 then lookup_path(job, target, by_lookup) end
      if #again > 0 then
        pause(job, job.client:backoff(attempt + 1))
        upsert_recs(job, target, again, attempt + 1)
      end
    end
  end
end

-- Lookup, then update the matches and create the rest.
lookup_path = function(job, target, recs)
  local found = lookup(job, target, recs)
  local updates, creates = {}, {}
  for _, rec in ipairs(recs) do
    local matches = found[rec.match_key]
    if matches and #matches > 0 then
      local chosen = pick(target, matches)
      rec.pending = #chosen
      for _, m in ipairs(chosen) do updates[#updates + 1] = { rec = rec, id = m.id } end
    elseif not target.create or rec.update_only then
      skip(job, rec.update_only and rec.user.event == "exit" and "exit_without_record" or "no_match_update_only")
      job.confirmed[#job.confirmed + 1] = rec   -- nothing to do: settled until it changes
    else
      local ok, reason = complete_for_create(target, rec)
      if ok then
        rec.pending = 1
        creates[#creates + 1] = { rec = rec }
      else
        skip(job, reason)
        job.confirmed[#job.confirmed + 1] = rec
      end
    end
  end
  if #updates > 0 then update_writes(job, target, updates) end
  if #creates > 0 then create_writes(job, target, creates) end
end

-- Sends one round of recs of one target. Recs sharing a match key go in
-- separate passes, so the first creates and the next ones update it.
local function send_target(job, target, recs)
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

-- ---------------------------------------------------------------------------
-- Reading and flushing

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
      reject(job, { user = rec.user.key, object = rec.target.object, operation = "field", field = fr.field,
        statusCode = fr.code, message = fr.reason })
    end
  end
  for _, t in ipairs(job.targets_list) do
    if by_target[t] then send_target(job, t, by_target[t]) end
  end
  commit_confirmed(job)
  job.stats.batches = job.stats.batches + 1
end

local function checkpoint(job)
  if job.dry then
    job.state:set("budget", job.budget:dump())
    job.state:checkpoint()
    return
  end
  job.rejects:sync()
  job.state:set_output_size(M.REJECTS, job.rejects:size())
  if job.reader_is_file and job.reader then
    local info = job.reader:info() or {}
    job.state:set("input", { path = job.input_path, offset = job.reader:offset(), dev = info.dev, ino = info.ino })
  end
  job.state:set("budget", job.budget:dump())
  job.state:checkpoint()
end

local function handle_line(job, line)
  job.stats.lines = job.stats.lines + 1
  local r = job.recipe
  local user, reason, message = profiles.parse(line, {
    format = r.input.format, integration = r.segment and r.segment.integration or "Salesforce",
    require_explicit = not (r.segment and r.segment.require_explicit == false),
  })
  if not user then
    if reason == "blank" then return end
    skip(job, reason)
    if reason == "bad_json" or reason == "bad_line" then
      job.log.debug("line %d: %s", job.stats.lines, message)
      reject(job, { line = job.stats.lines, operation = "read", statusCode = reason:upper(), message = message })
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
    skip(job, "superseded")
  end
  local target = job.targets[user.kind]
  if not target then return skip(job, "no_" .. user.kind .. "_target") end
  if r.consent and user.kind == "user" and not profiles.has_consent(user, r.consent) then
    return skip(job, "no_consent")
  end
  local exported = profiles.exported_audiences(user, r.audiences)
  local stored = job.store:get(user.key)
  -- Not (or no longer) in an exported audience: only a user sent before, or
  -- one leaving an audience, is sent, as an update (its audiences field
  -- shrinks); such a user is never created.
  if r.audiences and #exported == 0 and stored == nil and user.event ~= "exit" then
    return skip(job, "not_in_audience")
  end
  local update_only = #exported == 0 and (r.audiences ~= nil or user.event == "exit")
  local rec, sreason, smessage = build_record(job, target, user, exported)
  if not rec then
    job.log.debug("%s: %s", user.key, smessage)
    return skip(job, sreason)
  end
  if stored == rec.hash then return skip(job, "unchanged") end
  rec.update_only = update_only
  job.pending[#job.pending + 1] = rec
  job.pending_by_key[user.key] = rec
  job.pending_since = job.pending_since or clock.monotonic()
end

-- Reads one input to its end (or, following, until a signal). Returns
-- "done" or "stopped".
local function read_input(job, reader, streaming, follow)
  local r = job.recipe
  -- following: micro-batches of batch_size; a backfill: rounds of 5 batches
  -- (fewer partly filled update/create calls)
  local limit = follow and r.batch_size or r.batch_size * M.ROUND_BATCHES
  local lines_since_progress = 0
  while true do
    if signal.pending() then
      flush(job)
      checkpoint(job)
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
      if #job.pending >= limit then
        flush(job)
        checkpoint(job)
      end
      lines_since_progress = lines_since_progress + 1
      if lines_since_progress >= 1000 and job.log.is_tty() then
        lines_since_progress = 0
        job.log.progress("export", string.format("export: %d lines, %d created, %d updated, %d API calls",
          job.stats.lines, job.stats.created, job.stats.updated, job.budget.run_calls))
      end
    elseif err == "TIMEOUT" then
      if job.pending_since and clock.monotonic() - job.pending_since >= r.flush_after_s then
        flush(job)
        checkpoint(job)
      end
    elseif err == "EOF" then
      flush(job)
      checkpoint(job)
      return "done"
    elseif code == "TOO_LONG" then
      job.stats.lines = job.stats.lines + 1
      skip(job, "line_too_long")
      reject(job, { line = job.stats.lines, operation = "read", statusCode = "LINE_TOO_LONG", message = err })
    else
      abort("failed", "reading the input: " .. tostring(err))
    end
  end
end

-- ---------------------------------------------------------------------------
-- The run

local function summary_lines(job, st)
  local lines = {}
  lines[#lines + 1] = string.format("lines read %d, users %d", st.lines, st.users)
  lines[#lines + 1] = string.format("created %d, updated %d, failed %d, unique profiles exported %d",
    st.created, st.updated, st.failed, st.unique_exported)
  local reasons = {}
  for k in pairs(st.skipped) do reasons[#reasons + 1] = k end
  table.sort(reasons)
  if #reasons > 0 then
    local parts = {}
    for _, k in ipairs(reasons) do parts[#parts + 1] = k .. " " .. st.skipped[k] end
    lines[#lines + 1] = "skipped: " .. table.concat(parts, ", ")
  end
  if st.field_skips > 0 then
    lines[#lines + 1] = string.format("field values skipped (type rules, unknown fields): %d (see rejects)", st.field_skips)
  end
  if st.profiles_in_store then
    lines[#lines + 1] = string.format("profiles in the trigger store: %d", st.profiles_in_store)
  end
  if job.dry then lines[#lines + 1] = "dry run: nothing was written to Salesforce" end
  return lines
end

local function open_inputs(job)
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

function M.run_once(job)
  local started_wall, started = clock.now(), clock.monotonic()
  job.stats = {
    lines = 0, users = 0, created = 0, updated = 0, failed = 0, failed_users = 0, unique_exported = 0,
    skipped = {}, field_skips = 0, superseded = 0, batches = 0, lost_creates = 0,
  }
  job.exported, job.confirmed, job.pending, job.pending_by_key, job.pending_since = {}, {}, {}, {}, nil
  if not job.dry then job.rejects = jobs.open_output(job, M.REJECTS) end
  local ok, status, message, resume_at = pcall(function()
    -- describe every target's object (cached) and check the recipe against it
    for _, t in ipairs(job.targets_list) do
      if not t.fields then
        local d, cached = describe(job, t.object)
        if not d then target_error(job.ctx, (t.prefix ~= "" and t.prefix .. "." or "") .. "object", cached) end
        local cok, cerr = pcall(compile_target, job, t, d)
        if not cok and cached then
          -- the cached describe may be stale (a field added since): ask again
          d = describe(job, t.object, true)
          cok, cerr = pcall(compile_target, job, t, d)
        end
        if not cok then error(cerr, 0) end
      end
    end
    local result = "done"
    for _, src in ipairs(open_inputs(job)) do
      local opts = { max_line = job.recipe.input.max_line_bytes, follow = src.follow }
      job.reader_is_file, job.input_path = src.file, src.path
      local saved = src.file and job.state:get("input")
      if saved and saved.path == src.path and saved.offset and saved.offset > 0 then
        local probe = input.open(src.path)
        local info = probe and probe:info()
        if probe then probe:close() end
        if info and info.dev == saved.dev and info.ino == saved.ino and info.size >= saved.offset then
          opts.offset = saved.offset
          job.log.info("resuming %s at byte %d (after the last confirmed batch)", src.path, saved.offset)
        end
      end
      local reader, err = input.open(src.path, opts)
      if not reader then abort("failed", "input " .. src.path .. ": " .. tostring(err)) end
      job.reader = reader
      local res = read_input(job, reader, src.stdin or src.follow, src.follow)
      if res == "done" and src.file and not job.dry then
        -- the whole file is confirmed: the next run reads it from the start
        -- (the trigger store skips users that did not change)
        job.state:set("input", nil)
        job.state:checkpoint()
      end
      reader:close()
      job.reader = nil
      if res == "stopped" then
        result = src.follow and "done" or "stopped"
        return result, "stopped by SIG" .. tostring(signal.pending())
      end
    end
    return result
  end)
  if not ok then
    local e = status
    if getmetatable(e) ~= abort_mt then
      if job.reader then job.reader:close() end
      error(e, 0)
    end
    status, message, resume_at = e.status, e.message, e.resume_at
    job.pending = {}
    if job.reader then job.reader:close(); job.reader = nil end
  end
  if not job.dry then
    job.rejects:sync()
    job.rejects:close()
  end
  job.state:set("budget", job.budget:dump())
  job.state:set("runs", (job.state:get("runs") or 0) + 1)
  job.state:checkpoint()
  local st = job.stats
  st.profiles_in_store = job.store:count()
  local summary = {
    job = job.recipe.name, kind = "export", started = iso_now(started_wall),
    duration_s = math.floor((clock.monotonic() - started) * 1000 + 0.5) / 1000,
    status = status, message = message, api_calls = job.budget.run_calls,
    logins = job.client.logins, retries = job.client.retries, dry_run = job.dry or nil,
    lines_read = st.lines, users_read = st.users, skipped = st.skipped, created = st.created, updated = st.updated,
    failed = st.failed, failed_users = st.failed_users, unique_profiles_exported = st.unique_exported,
    field_values_skipped = st.field_skips, profiles_in_store = st.profiles_in_store, batches = st.batches,
    lost_create_responses = st.lost_creates,
  }
  if next(summary.skipped) == nil then summary.skipped = nil end
  summary.lines = summary_lines(job, st)
  if not job.dry then job.state:append_history(summary) end
  local printed = {}
  for k, v in pairs(summary) do printed[k] = v end
  jobs.print_summary(job, printed)
  return status, message, resume_at
end

function M.run(r, ctx)
  local job = jobs.setup(r, ctx, M.schema)
  local rec = job.recipe
  job.dry = ctx.opts.dry_run and true or false
  job.client.timeout_ms = math.floor(rec.request_timeout_s * 1000)
  job.lost_wait_s = math.min(5, rec.request_timeout_s)
  if not job.out_dir then
    job.out_dir = jobs.resolve(ctx.dir, rec.output)
    fs.mkdir_p(job.out_dir)
  end
  -- plan the targets (recipe errors before any call)
  job.targets, job.targets_list = {}, {}
  job.targets.user = plan_target(rec, rec, "", "user", ctx)
  job.targets_list[1] = job.targets.user
  if rec.accounts or rec.input.format == "segment" then
    job.targets.account = plan_target(rec, rec.accounts or { create = true, multiple_matches = "most_recent",
      duplicates = "report", default_fields = true, unknown_company_ok = false, unknown_last_name_ok = false },
      "accounts", "account", ctx)
    job.targets_list[2] = job.targets.account
  end
  local store_path = job.state_dir .. "/" .. rec.name .. ".store.sqlite"
  local st, serr = store_mod.open(store_path)
  if not st then error("trigger store " .. store_path .. ": " .. tostring(serr), 0) end
  job.store = st
  local ok, res = pcall(jobs.loop, job, M.run_once)
  st:close()
  if not ok then error(res, 0) end
  return res
end

return M
