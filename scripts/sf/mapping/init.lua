-- sf.mapping: default stream mappings, a recipe's customisation of them, and their
-- compilation into what the import job needs: sf.mapper rows, the SOQL select list,
-- the fields this org does not have, and the stream's schema.
--
--   local mapping = require "sf.mapping"
--   local m = mapping.default("salesforce_leads")            -- a private deep copy
--   m = mapping.with_additional(m, { "Rating" }, describe)   -- "Additional Fields": lead_rating
--   -- or, for "Import Custom Object": mapping.for_object("Invoice__c", fields, stream, describe)
--   m = mapping.customize(m, recipe.mapping)                  -- add/rename/drop/transform/types
--   local c = mapping.compile(m, { describe = d, now = "2024-01-15T10:30:00Z" })
--   -- c.rows (sf.mapper format), c.select, c.unavailable, c.schema, c.opts
--   local cm = require("sf.mapper").compile(c.rows, c.opts)
--
-- A mapping (mappings/<stream>.lua) is
--   { stream =, object =, timestamp_field =, children = { "<child relationship>", ... },
--     sources = { <raw field> = "<Salesforce field path>" | { paths... } | false },
--     rows = { { source = raw | {raw, ...} | sf = path | {paths} | const = "now",
--                to =, type =, identity =, derive =, description =, combine =, transform = } } }
-- A Salesforce field path is a field ("FirstName"), a parent relationship path
-- ("RecordType.Name") or a child relationship path ("Contacts.Id", read through the
-- subquery "(SELECT Id FROM Contacts)"). A raw field mapped to `false` is declared but
-- fed by nothing by default (a recipe may feed it through `sources`).
--
-- Misuse of this API raises "sf.mapping.<fn>: ..."; a bad mapping or customisation
-- raises "mapping <stream>: <where>: <what>" (no position: it is the recipe's error).
--
-- The rooms: sf.mapping.schema (a mapping and its rows, declared once, and the
-- validators: mapping.validate, mapping.TYPES, mapping.recipe_custom),
-- sf.mapping.compile (against a describe: mapping.compile, mapping.select_list),
-- and this file (defaults, customisation, custom objects, additional fields).

local schema = require "sf.mapping.schema"
local compile = require "sf.mapping.compile"

local M = {}

M.TYPES = schema.TYPES
M.validate = schema.validate
M.compile = compile.compile
M.select_list = compile.select_list
M.recipe_custom = schema.recipe_custom   -- the recipe schema of `mapping = {...}`

local quote, is_path, string_list, failer = schema.quote, schema.is_path, schema.string_list, schema.failer
local index_describe, infer_type = compile.index_describe, compile.infer_type

local IS_TYPE = {}
for _, t in ipairs(M.TYPES) do IS_TYPE[t] = true end
local CUSTOM_KEYS, CUSTOM_NAMES = {}, {}
for _, spec in ipairs(schema.CUSTOM) do
  CUSTOM_KEYS[spec.key] = true
  CUSTOM_NAMES[#CUSTOM_NAMES + 1] = spec.key
end

local function deepcopy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[deepcopy(k, seen)] = deepcopy(x, seen) end
  return setmetatable(out, getmetatable(v))
end
M.deepcopy = deepcopy

-- default -----------------------------------------------------------------------------

-- Modules of mappings/ that are not a stream's mapping.
local NOT_STREAMS = { types = true, numbers = true }

-- A private deep copy of the default mapping of a stream (mappings/<stream>.lua).
function M.default(stream)
  if type(stream) ~= "string" or not stream:match("^[%a][%w_]*$") or NOT_STREAMS[stream] then
    error("sf.mapping.default: no default mapping for stream " .. quote(stream), 2)
  end
  local ok, m = pcall(require, "mappings." .. stream)
  if not ok then
    if tostring(m):find("module 'mappings." .. stream .. "' not found", 1, true) then
      error("sf.mapping.default: no default mapping for stream " .. quote(stream), 2)
    end
    error(m, 0)
  end
  if type(m) ~= "table" or m.stream ~= stream then
    error("sf.mapping.default: mappings/" .. stream .. ".lua is not the mapping of stream " .. quote(stream), 2)
  end
  return deepcopy(m)
end

-- The coercion rules a mapping uses: mappings/types.lua with its `types` overrides.
function M.rules(m)
  local rules = {}
  for t, fn in pairs(require "mappings.types") do rules[t] = fn end
  if type(m) == "table" and type(m.types) == "table" then
    for t, fn in pairs(m.types) do rules[t] = fn end
  end
  return rules
end

-- customize ---------------------------------------------------------------------------

local function rows_to(m, field)
  local found = {}
  for i, row in ipairs(m.rows) do if row.to == field then found[#found + 1] = i end end
  return found
end

-- The user fields a customisation refers to must exist: "no row maps to user field 'x'".
local function need_field(fail, m, what, field)
  if type(field) ~= "string" then fail("%s: user field names must be strings, got %s", what, quote(field)) end
  if #rows_to(m, field) == 0 then fail("%s: no row maps to user field '%s'", what, field) end
end

-- Returns a new mapping: m (left untouched) with a recipe's customisation applied, in
-- this order: sources, children, rename, drop, add, transform, types. rename and drop
-- therefore act on the default rows; add can re-add a dropped user field; transform
-- names user fields as they are after rename and add.
--   custom.sources   = { <raw field> = "<Salesforce field path>" | { paths } | false }
--   custom.children  = { "<child relationship>", ... }    (for "Rel.Field" child paths)
--   custom.rename    = { [old user field] = new user field }
--   custom.drop      = { user field, ... }
--   custom.add       = { row, ... }  a row names `source` (a raw field of sources),
--                                    `sf` (a Salesforce field path) or `const`
--   custom.transform = { [user field] = function(value, record) ... end }
--   custom.types     = { [type] = function(value) return coerced | nil, reason end }
function M.customize(m, custom)
  if type(m) ~= "table" then error("sf.mapping.customize: mapping must be a table", 2) end
  local out = deepcopy(m)
  if custom == nil then return out end
  local fail = failer(out)
  if type(custom) ~= "table" then fail("customisation must be a table") end
  for k in pairs(custom) do
    if not CUSTOM_KEYS[k] then fail("unknown key %s (expected %s)", quote(k), table.concat(CUSTOM_NAMES, ", ")) end
  end
  for k, v in pairs(custom) do
    if type(v) ~= "table" then fail("%s must be a table", k) end
  end
  out.sources = out.sources or {}

  for raw, v in pairs(custom.sources or {}) do
    if type(raw) ~= "string" then fail("sources: keys must be raw field names") end
    schema.check_source_value(fail, "sources." .. raw, v)
    out.sources[raw] = deepcopy(v)
  end

  if custom.children then
    local list = string_list(custom.children)
    if not list then fail("children must be a list of child relationship names") end
    out.children = out.children or {}
    for _, c in ipairs(list) do out.children[#out.children + 1] = c end
  end

  if custom.rename then
    -- All renames at once, against the current names (so a swap works).
    local renames = {}
    for old, new in pairs(custom.rename) do
      need_field(fail, out, "rename", old)
      if type(new) ~= "string" or new == "" then fail("rename: the new name of '%s' must be a non-empty string", old) end
      local problem = schema.to_problem(new)
      if problem then fail("rename: '%s': %s", old, problem) end
      renames[old] = new
    end
    local before, after = {}, {}
    for _, row in ipairs(out.rows) do
      before[row.to] = true
      row.to = renames[row.to] or row.to
    end
    for old, new in pairs(renames) do
      if before[new] and not renames[new] then fail("rename: user field '%s' is already mapped (rename '%s' elsewhere or drop it)", new, old) end
      if after[new] then fail("rename: two user fields renamed to '%s'", new) end
      after[new] = true
    end
  end

  if custom.drop then
    local list = custom.drop
    if #list == 0 and next(list) ~= nil then fail("drop must be a list of user fields") end
    for _, field in ipairs(list) do need_field(fail, out, "drop", field) end
    local dropped = {}
    for _, field in ipairs(list) do dropped[field] = true end
    local kept = {}
    for _, row in ipairs(out.rows) do if not dropped[row.to] then kept[#kept + 1] = row end end
    out.rows = kept
  end

  if custom.add then
    local list = custom.add
    if #list == 0 and next(list) ~= nil then fail("add must be a list of rows") end
    for i, row in ipairs(list) do
      schema.check_row(fail, out, row, "add[" .. i .. "]")
      if #rows_to(out, row.to) > 0 then
        fail("add[%d]: user field '%s' is already mapped (drop it first to replace it)", i, row.to)
      end
      out.rows[#out.rows + 1] = deepcopy(row)
    end
  end

  for field, fn in pairs(custom.transform or {}) do
    need_field(fail, out, "transform", field)
    if type(fn) ~= "function" then fail("transform.%s must be a function(value, record)", field) end
    for _, i in ipairs(rows_to(out, field)) do out.rows[i].transform = fn end
  end

  for t, fn in pairs(custom.types or {}) do
    if not IS_TYPE[t] then fail("types: unknown type %s (expected one of %s)", quote(t), table.concat(M.TYPES, ", ")) end
    if type(fn) ~= "function" then fail("types.%s must be a function(value)", t) end
    out.types = out.types or {}
    out.types[t] = fn
  end
  return out
end

-- for_object --------------------------------------------------------------------------

-- A mapping for a custom object job: raw event data, one row per selected Salesforce
-- field, the user field named as the Salesforce field. Types come from `describe` when
-- given (else "string", re-inferred by compile from its describe); Id is the identity.
function M.for_object(object, fields, stream, describe)
  if type(object) ~= "string" or not object:match("^[%a][%w_]*$") then
    error("sf.mapping.for_object: object must be a Salesforce object name", 2)
  end
  if type(fields) ~= "table" or #fields == 0 then
    error("sf.mapping.for_object: fields must be a non-empty list of Salesforce field names", 2)
  end
  if type(stream) ~= "string" or stream == "" then
    error("sf.mapping.for_object: stream must be a non-empty string", 2)
  end
  local ix = index_describe(describe)
  local rows, seen = {}, {}
  for i, f in ipairs(fields) do
    if not is_path(f) then
      error("sf.mapping.for_object: fields[" .. i .. "] " .. quote(f) .. " is not a Salesforce field path", 2)
    end
    if not seen[f:lower()] then
      seen[f:lower()] = true
      local d = ix and ix.fields[f:lower()]
      rows[#rows + 1] = {
        sf = f, to = f,
        type = d and infer_type(d) or "string",
        infer = (not d) or nil,
        identity = f:lower() == "id" or nil,
        description = "Salesforce: " .. object .. " " .. (d and type(d.label) == "string" and d.label or f),
      }
    end
  end
  return { stream = stream, object = object, timestamp_field = "LastModifiedDate", custom_object = true,
           sources = {}, rows = rows }
end

-- with_additional -----------------------------------------------------------------------

-- "lead_" + snake_case: "FirstName" -> "first_name", "LastCURequestDate" ->
-- "last_cu_request_date", "Score__c" -> "score__c", "Owner.Name" -> "owner_name".
function M.raw_name(object, field)
  local s = field:gsub("%.", "_"):gsub("(%u)(%u%l)", "%1_%2"):gsub("([%l%d])(%u)", "%1_%2")
  return object:lower() .. "_" .. s:lower()
end

-- Returns a new mapping with the document's "Additional Fields" of a standard object:
-- each Salesforce field not already read by the mapping lands in the stream under its
-- raw name (object prefix + snake_case: Rating -> lead_rating), typed from `describe`
-- when given (else text, re-inferred by compile). The raw name is also declared in
-- `sources`, so a recipe's customisation can rename, drop or transform it.
function M.with_additional(m, fields, describe)
  if type(m) ~= "table" then error("sf.mapping.with_additional: mapping must be a table", 2) end
  if type(fields) ~= "table" then error("sf.mapping.with_additional: fields must be a list of Salesforce field names", 2) end
  local out = deepcopy(m)
  out.sources = out.sources or {}
  local ix = index_describe(describe)
  local read, mapped = {}, {}
  for _, v in pairs(out.sources) do
    for _, p in ipairs(v and string_list(v) or {}) do read[p:lower()] = true end
  end
  for _, row in ipairs(out.rows) do
    mapped[row.to] = true
    for _, p in ipairs(row.sf ~= nil and string_list(row.sf) or {}) do read[p:lower()] = true end
  end
  for i, f in ipairs(fields) do
    if not is_path(f) then
      error("sf.mapping.with_additional: fields[" .. i .. "] " .. quote(f) .. " is not a Salesforce field path", 2)
    end
    local raw = M.raw_name(out.object, f)
    if not read[f:lower()] and not mapped[raw] and out.sources[raw] == nil then
      read[f:lower()] = true
      mapped[raw] = true
      out.sources[raw] = f
      local d = ix and ix.fields[f:lower()]
      out.rows[#out.rows + 1] = {
        source = raw, to = raw,
        type = d and infer_type(d) or "string",
        infer = (not d) or nil,
        description = "Salesforce: " .. out.object .. " " .. (d and type(d.label) == "string" and d.label or f),
      }
    end
  end
  return out
end

return M
