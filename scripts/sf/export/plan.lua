-- sf.export.plan: the export's targets (one per record kind: users and
-- accounts), planned from the recipe before any call, then checked against
-- the object's describe: fields exist and can be written, match fields are
-- mapped and filterable, fields Salesforce requires to create are mapped.
-- Every problem is a recipe error naming the recipe line (exit 2).
--
--   local plan = require "sf.export.plan"
--   plan.targets(job)   -- job.targets = { user =, account = }, job.targets_list
--   plan.check(job)     -- describes (cached) and compiles every target
--
-- A target: { kind, prefix, object, create, multiple, duplicates, rows =
-- { {field, source, key, fd} }, match_fds, match_names, upsert (an external
-- ID match field: Collections upsert), required (fields a create needs),
-- fields (describe by lower-case name), implicit ("segment_lead" |
-- "segment_account": the Segment mapping), lookup, unknown_ok, triggers,
-- audiences_field, affinities_field, scores_field (and their _fd) }.
local recipe = require "sf.recipe"
local jobs = require "sf.jobs"
local tables = require "sf.tables"
local typerules = require "sf.export.typerules"
local schema = require "sf.export.schema"
local abort = require "sf.export.abort"

local M = {}

-- Fields the Segment mapping fills (they count as mapped for the required-field check).
local SEGMENT_LEAD = { "Email", "FirstName", "LastName", "Company", "Title", "Phone", "Rating", "Website",
  "Description", "Industry", "LeadSource", "NumberOfEmployees", "Street", "City", "State", "PostalCode", "Country" }
local SEGMENT_ACCOUNT = { "Name", "AccountNumber", "NumberOfEmployees", "Phone", "Website", "Description",
  "Industry" }

-- The accounts target of a Segment recipe without an `accounts` key.
local SEGMENT_ACCOUNTS = { create = true, multiple_matches = "most_recent", duplicates = "report",
  default_fields = true, unknown_company_ok = false, unknown_last_name_ok = false }

-- Describe: fetched once per object and run, cached in the state directory
-- for describe_cache_s seconds (a run then costs no describe call).
local function describe(job, object, fresh)
  local d, second, code, resume = jobs.describe(job, object, job.recipe.describe_cache_s, fresh)
  if d then return d, second end   -- second: whether it came from the cache
  local err = second
  if code == "BUDGET" then abort.raise("paused", err, resume) end
  if code == "STOPPED" then abort.raise("stopped", err) end
  if code == "NOT_FOUND" then return nil, "Salesforce has no object " .. object end
  -- a refused login says everything itself (and is not about this object)
  abort.raise("failed", code == "AUTH" and tostring(err) or (object .. ": describe failed: " .. tostring(err)))
end

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
    if t.default_fields and schema.DEFAULTS[p.object] then
      for _, f in ipairs(tables.sorted_keys(schema.DEFAULTS[p.object])) do
        seen[f:lower()] = "default"
        p.rows[#p.rows + 1] = { field = f, source = schema.DEFAULTS[p.object][f], key = key("default_fields"), default = true }
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
    for _, f in ipairs(tables.sorted_keys(t[section] or {})) do add(f, t[section][f], key(section, f)) end
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

local LIST_FIELDS = { "audiences_field", "affinities_field", "scores_field" }

-- Field lookups in a target's describe that raise recipe errors (exit 2)
-- naming the recipe key k.
local function field_checks(job, p)
  local c = {}
  -- The describe entry of field `name`.
  function c.field(name, k)
    local fd = p.fields[name:lower()]
    if not fd then target_error(job.ctx, k, p.object .. " has no field " .. name) end
    return fd
  end
  -- A field the export can write: its type has a rule, it is createable or updateable.
  function c.writable(fd, k)
    local ok, why = typerules.supported(fd)
    if not ok then target_error(job.ctx, k, p.object .. "." .. fd.name .. ": " .. why) end
    if not fd.createable and not fd.updateable then
      target_error(job.ctx, k, p.object .. "." .. fd.name .. " is read-only (neither createable nor updateable)")
    end
  end
  return c
end

-- Each mapping row's field: present (a default row the org lacks is dropped)
-- and writable; row.field takes the describe's spelling.
local function check_rows(job, p, c)
  local kept = {}
  for _, row in ipairs(p.rows) do
    local fd = p.fields[row.field:lower()]
    if fd then
      c.writable(fd, row.key)
      row.field, row.fd = fd.name, fd
      kept[#kept + 1] = row
    elseif not row.default then
      target_error(job.ctx, row.key, p.object .. " has no field " .. row.field)
    end
  end
  p.rows = kept
end

-- The audiences/affinities/scores fields: present, writable, text.
local function check_list_fields(job, p, c, pk)
  for _, special in ipairs(LIST_FIELDS) do
    local name = p[special]
    if name then
      local fd = c.field(name, pk .. special)
      c.writable(fd, pk .. special)
      if not TEXT_TYPES[fd.type] then
        target_error(job.ctx, pk .. special, p.object .. "." .. fd.name .. " is a " .. fd.type .. " field; it must hold text")
      end
      p[special] = fd.name
      p[special .. "_fd"] = fd
    end
  end
end

-- The fields the mapping fills (for the match and required checks): the
-- rows, the Segment mapping's fields and lookup fields, the list fields.
local function mapped_fields(p, c)
  local mapped = {}
  for _, row in ipairs(p.rows) do mapped[row.field] = true end
  if p.implicit then
    for _, f in ipairs(p.implicit == "segment_lead" and SEGMENT_LEAD or SEGMENT_ACCOUNT) do
      local fd = p.fields[f:lower()]
      if fd then mapped[fd.name] = true end
    end
    for _, trait in ipairs(p.lookup and tables.sorted_keys(p.lookup) or {}) do
      local fd = c.field(p.lookup[trait], "segment.lookup_fields." .. trait)
      c.writable(fd, "segment.lookup_fields." .. trait)
      mapped[fd.name] = true
      p.lookup[trait] = fd.name
    end
  end
  for _, special in ipairs(LIST_FIELDS) do
    if p[special] then mapped[p[special]] = true end
  end
  return mapped
end

-- The match fields: present, mapped, filterable. Sets match_fds, match_names
-- and the write path (upsert: one external ID field, creating allowed).
local function check_match(job, p, c, mapped, pk)
  p.match_fds, p.match_names = {}, {}
  local k = p.implicit and p.lookup and "segment.lookup_fields" or (pk .. "match_field")
  for i, name in ipairs(p.match) do
    local fd = c.field(name, k)
    if not mapped[fd.name] then
      target_error(job.ctx, k, "the match field " .. fd.name .. " must be mapped (in required_fields, extra_fields or the defaults)")
    end
    if fd.filterable == false then
      target_error(job.ctx, k, p.object .. "." .. fd.name .. " cannot be used in a query filter; pick another match field")
    end
    p.match_fds[i], p.match_names[i] = fd, fd.name
  end
  p.upsert = #p.match_fds == 1 and p.match_fds[1].externalId == true and p.create
end

-- The fields a create needs (createable, not nillable, not defaulted, not a
-- boolean) must be mapped when the target may create.
local function check_required(job, p, mapped, pk)
  p.required = {}
  if not p.create then return end
  local missing = {}
  for _, fd in ipairs(p.describe.fields or {}) do
    if fd.createable and fd.nillable == false and not fd.defaultedOnCreate and fd.type ~= "boolean" then
      p.required[#p.required + 1] = fd.name
      if not mapped[fd.name] then missing[#missing + 1] = fd.name end
    end
  end
  if #missing > 0 then
    target_error(job.ctx, pk .. "required_fields", string.format(
      "%s requires %s to create a record: map %s in required_fields (or set create = false)",
      p.object, table.concat(missing, ", "), #missing == 1 and "it" or "them"))
  end
end

-- Checks a planned target against the object's describe; fills in the field
-- descriptions. Raises a recipe error (exit 2) naming the recipe line.
local function compile_target(job, p, d)
  p.describe, p.fields = d, {}
  for _, fd in ipairs(d.fields or {}) do p.fields[fd.name:lower()] = fd end
  local c = field_checks(job, p)
  local pk = p.prefix ~= "" and (p.prefix .. ".") or ""
  check_rows(job, p, c)
  check_list_fields(job, p, c, pk)
  local mapped = mapped_fields(p, c)
  check_match(job, p, c, mapped, pk)
  check_required(job, p, mapped, pk)
  return p
end

-- Plans the targets of a validated recipe (recipe errors before any call).
function M.targets(job)
  local rec, ctx = job.recipe, job.ctx
  job.targets, job.targets_list = {}, {}
  job.targets.user = plan_target(rec, rec, "", "user", ctx)
  job.targets_list[1] = job.targets.user
  if rec.accounts or rec.input.format == "segment" then
    job.targets.account = plan_target(rec, rec.accounts or SEGMENT_ACCOUNTS, "accounts", "account", ctx)
    job.targets_list[2] = job.targets.account
  end
end

-- Describes every target's object (cached) and checks the recipe against it,
-- once per process. A recipe that fails against a cached describe is checked
-- again with a fresh one (a field may have been added since).
function M.check(job)
  for _, t in ipairs(job.targets_list) do
    if not t.fields then
      local d, cached = describe(job, t.object)
      if not d then target_error(job.ctx, (t.prefix ~= "" and t.prefix .. "." or "") .. "object", cached) end
      local cok, cerr = pcall(compile_target, job, t, d)
      if not cok and cached then
        d = describe(job, t.object, true)
        cok, cerr = pcall(compile_target, job, t, d)
      end
      if not cok then error(cerr, 0) end
    end
  end
end

return M
