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

local M = {}

-- Target types of a row, in the order messages list them (mappings/types.lua rules).
M.TYPES = { "string", "number", "int", "bool", "date", "[]string" }
local IS_TYPE = {}
for _, t in ipairs(M.TYPES) do IS_TYPE[t] = true end

local DERIVES = { emaildomain = true }
local CONSTS = { now = true }
local COMBINES = { first = true, all = true }
local ROW_KEYS = { source = true, sf = true, const = true, to = true, type = true, identity = true,
                   derive = true, description = true, combine = true, transform = true, infer = true }
local CUSTOM_KEYS = { add = true, sources = true, rename = true, drop = true, transform = true,
                      types = true, children = true }

-- Salesforce describe type -> row type (anything not listed is text).
local SF_TYPES = { boolean = "bool", int = "int", long = "int", double = "number", currency = "number",
                   percent = "number", date = "date", datetime = "date" }

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

local function quote(v)
  return type(v) == "string" and ("'" .. v .. "'") or tostring(v)
end

local function is_path(p)
  if type(p) ~= "string" then return false end
  for seg in (p .. "."):gmatch("(.-)%.") do
    if not seg:match("^[%a][%w_]*$") then return false end
  end
  return true
end

-- A list of strings (a string counts as a one-element list) or nil.
local function string_list(v)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v == 0 then return nil end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return nil end
  for _, x in ipairs(v) do if type(x) ~= "string" then return nil end end
  return v
end

local function failer(m)
  local name = "mapping " .. tostring(type(m) == "table" and m.stream or "?")
  return function(fmt, ...) error(name .. ": " .. string.format(fmt, ...), 0) end
end

-- validate ----------------------------------------------------------------------------

local function check_source_value(fail, where, v)
  if v == false then return end
  local list = string_list(v)
  if not list then fail("%s: must be a Salesforce field path, a list of them, or false", where) end
  for _, p in ipairs(list) do
    if not is_path(p) then fail("%s: %s is not a Salesforce field path", where, quote(p)) end
  end
end

-- Checks one row; `where` names it in messages ("rows[3]", "add[1]").
local function check_row(fail, m, row, where)
  if type(row) ~= "table" then fail("%s: a row must be a table", where) end
  for k in pairs(row) do
    if not ROW_KEYS[k] then fail("%s: unknown key %s", where, quote(k)) end
  end
  if type(row.to) ~= "string" or row.to == "" then fail("%s: 'to' must be a non-empty string", where) end
  where = where .. " (" .. row.to .. ")"
  if not IS_TYPE[row.type] then
    fail("%s: type %s is not one of %s", where, quote(row.type), table.concat(M.TYPES, ", "))
  end
  local feeds = (row.sf ~= nil and 1 or 0) + (row.const ~= nil and 1 or 0)
  if feeds > 1 or (feeds == 0 and row.source == nil) then
    fail("%s: needs exactly one of source, sf or const", where)
  end
  if row.const ~= nil then
    if not CONSTS[row.const] then fail("%s: const %s is not \"now\"", where, quote(row.const)) end
  elseif row.sf ~= nil then
    if row.source ~= nil then fail("%s: needs exactly one of source, sf or const", where) end
    local list = string_list(row.sf)
    if not list then fail("%s: sf must be a Salesforce field path or a list of them", where) end
    for _, p in ipairs(list) do
      if not is_path(p) then fail("%s: sf %s is not a Salesforce field path", where, quote(p)) end
    end
  else
    local list = string_list(row.source)
    if not list then fail("%s: source must be a raw field name or a list of them", where) end
    for _, raw in ipairs(list) do
      if m.sources[raw] == nil then
        fail("%s: source %s is fed by no Salesforce field (add it to sources)", where, quote(raw))
      end
    end
  end
  if row.identity ~= nil and type(row.identity) ~= "boolean" then fail("%s: identity must be a boolean", where) end
  if row.derive ~= nil and not DERIVES[row.derive] then fail("%s: derive %s is not \"emaildomain\"", where, quote(row.derive)) end
  if row.combine ~= nil and not COMBINES[row.combine] then fail("%s: combine must be \"first\" or \"all\"", where) end
  if row.description ~= nil and type(row.description) ~= "string" then fail("%s: description must be a string", where) end
  if row.transform ~= nil and type(row.transform) ~= "function" then fail("%s: transform must be a function", where) end
end

-- Raises "mapping <stream>: ..." unless m is a well-formed mapping; returns m.
function M.validate(m)
  if type(m) ~= "table" then error("sf.mapping.validate: mapping must be a table", 2) end
  local fail = failer(m)
  if type(m.stream) ~= "string" or m.stream == "" then fail("stream must be a non-empty string") end
  if type(m.object) ~= "string" or not m.object:match("^[%a][%w_]*$") then fail("object must be a Salesforce object name") end
  if m.timestamp_field ~= nil and not is_path(m.timestamp_field) then fail("timestamp_field must be a Salesforce field name") end
  if type(m.sources) ~= "table" then fail("sources must be a table") end
  for raw, v in pairs(m.sources) do
    if type(raw) ~= "string" then fail("sources: keys must be raw field names") end
    check_source_value(fail, "sources." .. raw, v)
  end
  if m.children ~= nil and not (type(m.children) == "table" and next(m.children) == nil) then
    local list = string_list(m.children)
    if not list then fail("children must be a list of child relationship names") end
    for _, c in ipairs(list) do if not is_path(c) or c:find(".", 1, true) then fail("children: %s is not a relationship name", quote(c)) end end
  end
  if type(m.rows) ~= "table" then fail("rows must be a list") end
  for i, row in ipairs(m.rows) do check_row(fail, m, row, "rows[" .. i .. "]") end
  if m.types ~= nil then
    if type(m.types) ~= "table" then fail("types must be a table") end
    for t, fn in pairs(m.types) do
      if not IS_TYPE[t] then fail("types: unknown type %s", quote(t)) end
      if type(fn) ~= "function" then fail("types.%s must be a function", t) end
    end
  end
  return m
end

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
    if not CUSTOM_KEYS[k] then fail("unknown key %s (expected add, sources, rename, drop, transform, types, children)", quote(k)) end
  end
  for k, v in pairs(custom) do
    if type(v) ~= "table" then fail("%s must be a table", k) end
  end
  out.sources = out.sources or {}

  for raw, v in pairs(custom.sources or {}) do
    if type(raw) ~= "string" then fail("sources: keys must be raw field names") end
    check_source_value(fail, "sources." .. raw, v)
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
      check_row(fail, out, row, "add[" .. i .. "]")
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

-- describe ----------------------------------------------------------------------------

-- Case-insensitive index of a decoded describe: fields by name, parent relationships
-- (relationshipName of reference fields), child relationships (nil when the describe
-- does not list them: then they cannot be checked and are assumed present).
local function index_describe(d)
  if type(d) ~= "table" then return nil end
  local fields = d.fields or d
  if type(fields) ~= "table" then return nil end
  local ix = { fields = {}, parents = {}, children = nil }
  for _, f in ipairs(fields) do
    if type(f) == "table" and type(f.name) == "string" then
      ix.fields[f.name:lower()] = f
      if type(f.relationshipName) == "string" then ix.parents[f.relationshipName:lower()] = f end
    end
  end
  if type(d.childRelationships) == "table" then
    ix.children = {}
    for _, c in ipairs(d.childRelationships) do
      if type(c) == "table" and type(c.relationshipName) == "string" then
        ix.children[c.relationshipName:lower()] = c
      end
    end
  end
  return ix
end

local function infer_type(f)
  return f and SF_TYPES[f.type] or "string"
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

-- compile -----------------------------------------------------------------------------

-- The Salesforce field paths feeding a row, and how several are combined: a list of raw
-- sources takes the first present; one raw fed by several fields takes them all.
local function row_paths(m, row)
  if row.sf ~= nil then
    return string_list(row.sf), row.combine or "first"
  end
  local raws = string_list(row.source)
  local paths, multi = {}, false
  for _, raw in ipairs(raws) do
    local v = m.sources[raw]
    if v then
      local list = string_list(v)
      if #list > 1 then multi = true end
      for _, p in ipairs(list) do paths[#paths + 1] = p end
    end
  end
  return paths, row.combine or ((#raws == 1 and multi) and "all" or "first")
end

-- opts = { describe =, now =, object =, stream =, timestamp_field = } (all optional).
-- Returns { rows, select, unavailable, dropped, schema, types, opts, object, stream,
-- timestamp_field }: see the top of this file. Raises on a malformed mapping.
function M.compile(m, opts)
  if type(m) ~= "table" then error("sf.mapping.compile: mapping must be a table", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("sf.mapping.compile: opts must be a table", 2) end
  opts = opts or {}
  M.validate(m)
  local stream = opts.stream or m.stream
  local object = opts.object or m.object
  local ts = opts.timestamp_field or m.timestamp_field or "LastModifiedDate"
  local ix = index_describe(opts.describe)
  local declared_children = {}
  for _, c in ipairs(m.children or {}) do declared_children[c:lower()] = true end

  -- Where a path lives and whether this org has it.
  --   kind "field" | "parent" | "child"; rel and rest split "Rel.Rest".
  local function classify(path)
    local rel, rest = path:match("^([^.]+)%.(.+)$")
    if not rel then
      return "field", nil, nil, (not ix) or ix.fields[path:lower()] ~= nil
    end
    local r = rel:lower()
    if not ix then
      return declared_children[r] and "child" or "parent", rel, rest, true
    end
    if ix.children and ix.children[r] then return "child", rel, rest, true end
    if ix.parents[r] then return "parent", rel, rest, true end
    if not ix.children and declared_children[r] then return "child", rel, rest, true end
    return declared_children[r] and "child" or "parent", rel, rest, false
  end

  local select, seen = {}, {}
  local function add_select(item)
    if not seen[item:lower()] then seen[item:lower()] = true; select[#select + 1] = item end
  end
  add_select("Id"); add_select("IsDeleted"); add_select(ts)
  local subqueries, sub_order = {}, {}   -- relationship (as first written) -> { fields, seen }
  local unavailable, unseen = {}, {}
  local rows, schema, schema_seen, dropped = {}, {}, {}, {}

  for _, row in ipairs(m.rows) do
    local c = { to = row.to, type = row.type, identity = row.identity == true,
                derive = row.derive, transform = row.transform }
    local keep = true
    if row.const ~= nil then
      c.const = row.const
    else
      local paths, combine = row_paths(m, row)
      local kept = {}
      for _, p in ipairs(paths) do
        local kind, rel, rest, ok = classify(p)
        if ok then
          kept[#kept + 1] = p
          if kind == "child" then
            local key = rel:lower()
            local sq = subqueries[key]
            if not sq then
              sq = { rel = rel, fields = {}, seen = {} }
              subqueries[key] = sq
              sub_order[#sub_order + 1] = key
            end
            if not sq.seen[rest:lower()] then
              sq.seen[rest:lower()] = true
              sq.fields[#sq.fields + 1] = rest
            end
          else
            add_select(p)
          end
        elseif not unseen[p:lower()] then
          unseen[p:lower()] = true
          unavailable[#unavailable + 1] = p
        end
      end
      if #kept == 0 then
        keep = false
      elseif #kept == 1 then
        c.sf = kept[1]
      else
        c.sf, c.combine = kept, combine
      end
      if keep and row.infer and ix and type(c.sf) == "string" then
        c.type = infer_type(ix.fields[c.sf:lower()])
      end
    end
    if keep then
      rows[#rows + 1] = c
      if not schema_seen[c.to] then
        schema_seen[c.to] = true
        schema[#schema + 1] = { field = c.to, type = c.type, description = row.description or "",
                                identity = c.identity }
      end
    else
      dropped[#dropped + 1] = row.to
    end
  end
  for _, key in ipairs(sub_order) do
    local sq = subqueries[key]
    add_select("(SELECT " .. table.concat(sq.fields, ", ") .. " FROM " .. sq.rel .. ")")
  end

  local types
  if m.types and next(m.types) then types = {}; for t, fn in pairs(m.types) do types[t] = fn end end
  local mopts = { object = object, stream = stream, timestamp_field = ts, now = opts.now, types = types }
  return { rows = rows, select = select, unavailable = unavailable, dropped = dropped, schema = schema,
           types = types, opts = mopts, object = object, stream = stream, timestamp_field = ts }
end

-- The SOQL select list as text: "Id, IsDeleted, LastModifiedDate, FirstName, ...".
function M.select_list(compiled)
  return table.concat(compiled.select, ", ")
end

return M
