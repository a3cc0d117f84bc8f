-- sf.mapping.schema: the shape of a mapping and of its rows, declared ONCE.
-- Every validator reads these declarations: sf.mapping.validate and
-- customize (messages "mapping <stream>: rows[3] (email): ..."), the recipe
-- schema of a customisation (`mapping = { add = {...}, ... }` in an import
-- recipe: file:line errors before any call), and sf.mapper.compile, which only
-- checks misuse of the rows sf.mapping.compile hands it.
--
--   local schema = require "sf.mapping.schema"
--   schema.TYPES                   the row types (sf.mapper.TYPES: the C table's names)
--   schema.ROW                     a row's keys, in the order messages check them
--   schema.check_row(fail, m, row, where)    schema.validate(m)
--   schema.recipe_custom           the recipe schema of a customisation (sf.recipe)
local recipe = require "sf.recipe"
local S = recipe.schema

local M = {}

-- Target types of a row, in the order messages list them (one rule each in
-- mappings/types.lua, a C twin each in engine/): the one list is the C table's.
M.TYPES = require("sf.mapper").TYPES

-- One mapping row, as a row of the product document's table:
--   { sf = "Email", to = "email", type = "string", identity = true }
-- kind: name (a non-empty string), enum (one of values), paths (a Salesforce
-- field path or a list of them), raws (a raw field of the mapping's sources
-- or a list of them), boolean, string, function. feed: exactly one of the
-- feeds gives the value; a const row may still name the raw field it stands
-- for in `source` (const_names: then that source is not checked).
-- internal: set by sf.mapping itself, never by a recipe.
M.ROW = {
  { key = "to",          kind = "name",     required = true,    -- the user field it fills
    reserved = { _id = "every stream line carries the record's Salesforce Id as _id" } },
  { key = "type",        kind = "enum",     required = true, values = M.TYPES },
  { key = "source",      kind = "raws",     feed = true, const_names = true },  -- raw field(s) of `sources`
  { key = "sf",          kind = "paths",    feed = true },      -- Salesforce field path(s)
  { key = "const",       kind = "enum",     feed = true, values = { "now" } },
  { key = "combine",     kind = "enum",     values = { "first", "all" } },  -- several paths: first present, or all
  { key = "derive",      kind = "enum",     values = { "emaildomain" } },
  { key = "identity",    kind = "boolean" },
  { key = "description", kind = "string" },
  { key = "transform",   kind = "function" },                   -- function(value, record)
  { key = "infer",       kind = "boolean",  internal = true },  -- type re-inferred from describe
}
local ROW_KEY = {}
for _, spec in ipairs(M.ROW) do
  ROW_KEY[spec.key] = spec
  if spec.values then
    spec.set = {}
    for _, v in ipairs(spec.values) do spec.set[v] = true end
  end
end
local FEEDS = "source, sf or const"


-- ---- shared helpers ----

function M.quote(v)
  return type(v) == "string" and ("'" .. v .. "'") or tostring(v)
end
local quote = M.quote

-- A Salesforce field path: "FirstName", "RecordType.Name", "Contacts.Id".
function M.is_path(p)
  if type(p) ~= "string" then return false end
  for seg in (p .. "."):gmatch("(.-)%.") do
    if not seg:match("^[%a][%w_]*$") then return false end
  end
  return true
end
local is_path = M.is_path

-- A list of strings (a string counts as a one-element list) or nil.
function M.string_list(v)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v == 0 then return nil end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return nil end
  for _, x in ipairs(v) do if type(x) ~= "string" then return nil end end
  return v
end
local string_list = M.string_list

-- fail(fmt, ...) raising "mapping <stream>: ...".
function M.failer(m)
  local name = "mapping " .. tostring(type(m) == "table" and m.stream or "?")
  return function(fmt, ...) error(name .. ": " .. string.format(fmt, ...), 0) end
end

-- ---- rows ----

-- What is wrong with value v of a row key (nil: nothing). m, when given,
-- holds the sources a raw field must be declared in.
local function key_problem(spec, v, m)
  local k, kind = spec.key, spec.kind
  if kind == "name" then
    if type(v) ~= "string" or v == "" then return "'" .. k .. "' must be a non-empty string" end
    if spec.reserved and spec.reserved[v] then return string.format("%s %s is reserved: %s", k, quote(v), spec.reserved[v]) end
  elseif kind == "enum" then
    if not spec.set[v] then return string.format("%s %s is not one of %s", k, quote(v), table.concat(spec.values, ", ")) end
  elseif kind == "paths" then
    local list = string_list(v)
    if not list then return k .. " must be a Salesforce field path or a list of them" end
    for _, p in ipairs(list) do
      if not is_path(p) then return string.format("%s %s is not a Salesforce field path", k, quote(p)) end
    end
  elseif kind == "raws" then
    local list = string_list(v)
    if not list then return k .. " must be a raw field name or a list of them" end
    for _, raw in ipairs(m and list or {}) do
      if m.sources[raw] == nil then
        return string.format("%s %s is fed by no Salesforce field (add it to sources)", k, quote(raw))
      end
    end
  elseif type(v) ~= kind then
    return k .. " must be a " .. kind
  end
end

-- What is wrong with v as a row's `to` (nil: nothing): also for renames.
function M.to_problem(v) return key_problem(ROW_KEY.to, v) end

-- The rules across a row's keys (nil: none broken).
local function row_problem(row)
  local feeds = 0
  for _, spec in ipairs(M.ROW) do
    if spec.feed and row[spec.key] ~= nil and not (spec.const_names and row.const ~= nil) then feeds = feeds + 1 end
  end
  if feeds ~= 1 then return "needs exactly one of " .. FEEDS end
  if row.combine == "all" and row.type ~= "[]string" then return 'combine = "all" needs type "[]string"' end
  if row.derive ~= nil and row.const ~= nil then return "derive needs source or sf (not const)" end
end

-- Checks one row; `where` names it in messages ("rows[3]", "add[1]"); fail
-- raises (M.failer).
function M.check_row(fail, m, row, where)
  if type(row) ~= "table" then fail("%s: a row must be a table", where) end
  for k in pairs(row) do
    if not ROW_KEY[k] then fail("%s: unknown key %s", where, quote(k)) end
  end
  local problem = key_problem(ROW_KEY.to, row.to)
  if problem then fail("%s: %s", where, problem) end
  where = where .. " (" .. row.to .. ")"
  problem = key_problem(ROW_KEY.type, row.type) or row_problem(row)
  for _, spec in ipairs(M.ROW) do
    if problem then break end
    if row[spec.key] ~= nil and not (spec.const_names and row.const ~= nil) then
      problem = key_problem(spec, row[spec.key], m)
    end
  end
  if problem then fail("%s: %s", where, problem) end
end

-- A source of the mapping's `sources`: paths, or false (declared, fed by nothing).
function M.check_source_value(fail, where, v)
  if v == false then return end
  local list = string_list(v)
  if not list then fail("%s: must be a Salesforce field path, a list of them, or false", where) end
  for _, p in ipairs(list) do
    if not is_path(p) then fail("%s: %s is not a Salesforce field path", where, quote(p)) end
  end
end

-- ---- a whole mapping ----

-- Raises "mapping <stream>: ..." unless m is a well-formed mapping; returns m.
function M.validate(m)
  if type(m) ~= "table" then error("sf.mapping.validate: mapping must be a table", 2) end
  local fail = M.failer(m)
  if type(m.stream) ~= "string" or m.stream == "" then fail("stream must be a non-empty string") end
  if type(m.object) ~= "string" or not m.object:match("^[%a][%w_]*$") then fail("object must be a Salesforce object name") end
  if m.timestamp_field ~= nil and not is_path(m.timestamp_field) then fail("timestamp_field must be a Salesforce field name") end
  if type(m.sources) ~= "table" then fail("sources must be a table") end
  for raw, v in pairs(m.sources) do
    if type(raw) ~= "string" then fail("sources: keys must be raw field names") end
    M.check_source_value(fail, "sources." .. raw, v)
  end
  if m.children ~= nil and not (type(m.children) == "table" and next(m.children) == nil) then
    local list = string_list(m.children)
    if not list then fail("children must be a list of child relationship names") end
    for _, c in ipairs(list) do if not is_path(c) or c:find(".", 1, true) then fail("children: %s is not a relationship name", quote(c)) end end
  end
  if type(m.rows) ~= "table" then fail("rows must be a list") end
  for i, row in ipairs(m.rows) do M.check_row(fail, m, row, "rows[" .. i .. "]") end
  if m.types ~= nil then
    if type(m.types) ~= "table" then fail("types must be a table") end
    for t, fn in pairs(m.types) do
      if not ROW_KEY.type.set[t] then fail("types: unknown type %s", quote(t)) end
      if type(fn) ~= "function" then fail("types.%s must be a function", t) end
    end
  end
  return m
end

-- ---- the same declarations as a recipe schema (sf.recipe) ----

local function path_node()
  return S.string { check = function(p) return is_path(p), "not a Salesforce field path" end }
end

local RECIPE_NODE = {
  name = function(spec) return S.string { required = spec.required, check = function(v) return v ~= "", "must be a non-empty string" end } end,
  enum = function(spec) return S.string { required = spec.required, enum = spec.values } end,
  paths = function() return S.one_of { path_node(), S.list(path_node(), { min = 1 }) } end,
  raws = function() return S.one_of { S.string {}, S.list(S.string {}, { min = 1 }) } end,
  boolean = function() return S.boolean {} end,
  string = function() return S.string {} end,
  ["function"] = function() return S.func {} end,
}

-- An added row of a recipe's customisation: the row declaration without its
-- internal keys; the rules across keys as the record's check.
local recipe_row_fields = {}
for _, spec in ipairs(M.ROW) do
  if not spec.internal then recipe_row_fields[spec.key] = RECIPE_NODE[spec.kind](spec) end
end
M.recipe_row = S.record(recipe_row_fields, {
  check = function(row)
    local problem = row_problem(row)
    return problem == nil, problem
  end,
})

-- The keys of a customisation of a mapping (sf.mapping.customize), each with
-- its recipe schema; internal: for engine callers only, not offered in a recipe.
M.CUSTOM = {
  { key = "add",       recipe = S.list(M.recipe_row) },
  { key = "sources",   recipe = S.map(S.string {}, S.string {}) },
  { key = "rename",    recipe = S.map(S.string {}, S.string {}) },
  { key = "drop",      recipe = S.list(S.string {}) },
  { key = "transform", recipe = S.map(S.string {}, S.func {}) },
  { key = "types",     recipe = S.map(S.string { enum = M.TYPES }, S.func {}) },
  { key = "children",  internal = true },   -- child relationships for "Rel.Field" paths
}

local recipe_custom_fields = {}
for _, spec in ipairs(M.CUSTOM) do
  if not spec.internal then recipe_custom_fields[spec.key] = spec.recipe end
end
M.recipe_custom = S.record(recipe_custom_fields)

return M
