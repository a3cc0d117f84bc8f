-- sf.mapping.compile: a mapping compiled against the org's describe into what
-- the import needs: the rows sf.mapper runs (every Salesforce field path this
-- org has; rows no field of the org feeds are dropped), the SOQL select list
-- (child relationship paths merged into one subquery per relationship), the
-- fields the org lacks, and the stream's schema.
--
--   local compile = require "sf.mapping.compile"
--   local c = compile.compile(m, { describe =, now =, object =, stream =, timestamp_field = })
--   compile.index_describe(d), compile.infer_type(field)   (also for sf.mapping)
local schema = require "sf.mapping.schema"

local M = {}

local string_list = schema.string_list

-- Salesforce describe type -> row type (anything not listed is text).
local SF_TYPES = { boolean = "bool", int = "int", long = "int", double = "number", currency = "number",
                   percent = "number", date = "date", datetime = "date" }

function M.infer_type(f)
  return f and SF_TYPES[f.type] or "string"
end

-- Case-insensitive index of a decoded describe: fields by name, parent relationships
-- (relationshipName of reference fields), child relationships (nil when the describe
-- does not list them: then they cannot be checked and are assumed present).
function M.index_describe(d)
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

-- Where a path lives and whether this org has it: classify(path) -> kind
-- ("field" | "parent" | "child"), rel and rest of "Rel.Rest", present.
-- Without a describe every path is taken as present; child relationships
-- the describe does not list are taken from the mapping's `children`.
local function classifier(m, ix)
  local declared = {}
  for _, c in ipairs(m.children or {}) do declared[c:lower()] = true end
  return function(path)
    local rel, rest = path:match("^([^.]+)%.(.+)$")
    if not rel then
      return "field", nil, nil, (not ix) or ix.fields[path:lower()] ~= nil
    end
    local r = rel:lower()
    if not ix then
      return declared[r] and "child" or "parent", rel, rest, true
    end
    if ix.children and ix.children[r] then return "child", rel, rest, true end
    if ix.parents[r] then return "parent", rel, rest, true end
    if not ix.children and declared[r] then return "child", rel, rest, true end
    return declared[r] and "child" or "parent", rel, rest, false
  end
end

-- The SOQL select list being built: plain and parent paths once each (case-
-- insensitive), child paths gathered per relationship into one subquery.
local function select_builder(ts)
  local q = { items = {}, seen = {}, subqueries = {}, order = {} }
  function q.add(item)
    if not q.seen[item:lower()] then q.seen[item:lower()] = true; q.items[#q.items + 1] = item end
  end
  function q.add_child(rel, rest)
    local key = rel:lower()
    local sq = q.subqueries[key]
    if not sq then
      sq = { rel = rel, fields = {}, seen = {} }
      q.subqueries[key] = sq
      q.order[#q.order + 1] = key
    end
    if not sq.seen[rest:lower()] then
      sq.seen[rest:lower()] = true
      sq.fields[#sq.fields + 1] = rest
    end
  end
  -- the list: Id, IsDeleted, the timestamp, the paths, then the subqueries
  function q.finish()
    for _, key in ipairs(q.order) do
      local sq = q.subqueries[key]
      q.add("(SELECT " .. table.concat(sq.fields, ", ") .. " FROM " .. sq.rel .. ")")
    end
    return q.items
  end
  q.add("Id"); q.add("IsDeleted"); q.add(ts)
  return q
end

-- One row for sf.mapper, or nil when no path of this org feeds it. Paths the
-- org lacks go to out.unavailable (once each); the ones it has to the select.
local function compile_row(m, row, classify, ix, q, out)
  local c = { to = row.to, type = row.type, identity = row.identity == true,
              derive = row.derive, transform = row.transform }
  if row.const ~= nil then
    c.const = row.const
    return c
  end
  local paths, combine = row_paths(m, row)
  local kept = {}
  for _, p in ipairs(paths) do
    local kind, rel, rest, present = classify(p)
    if present then
      kept[#kept + 1] = p
      if kind == "child" then q.add_child(rel, rest) else q.add(p) end
    elseif not out.unseen[p:lower()] then
      out.unseen[p:lower()] = true
      out.unavailable[#out.unavailable + 1] = p
    end
  end
  if #kept == 0 then return nil end
  if #kept == 1 then c.sf = kept[1] else c.sf, c.combine = kept, combine end
  if row.infer and ix and type(c.sf) == "string" then
    c.type = M.infer_type(ix.fields[c.sf:lower()])
  end
  return c
end

-- opts = { describe =, now =, object =, stream =, timestamp_field = } (all optional).
-- Returns { rows, select, unavailable, dropped, schema, types, opts, object, stream,
-- timestamp_field }: see sf.mapping. Raises on a malformed mapping.
function M.compile(m, opts)
  if type(m) ~= "table" then error("sf.mapping.compile: mapping must be a table", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("sf.mapping.compile: opts must be a table", 2) end
  opts = opts or {}
  schema.validate(m)
  local stream = opts.stream or m.stream
  local object = opts.object or m.object
  local ts = opts.timestamp_field or m.timestamp_field or "LastModifiedDate"
  local ix = M.index_describe(opts.describe)
  local classify = classifier(m, ix)
  local q = select_builder(ts)
  local out = { rows = {}, schema = {}, unavailable = {}, unseen = {}, dropped = {}, in_schema = {} }
  for _, row in ipairs(m.rows) do
    local c = compile_row(m, row, classify, ix, q, out)
    if not c then
      out.dropped[#out.dropped + 1] = row.to
    else
      out.rows[#out.rows + 1] = c
      if not out.in_schema[c.to] then
        out.in_schema[c.to] = true
        out.schema[#out.schema + 1] = { field = c.to, type = c.type, description = row.description or "",
                                        identity = c.identity }
      end
    end
  end
  local types
  if m.types and next(m.types) then types = {}; for t, fn in pairs(m.types) do types[t] = fn end end
  local mopts = { object = object, stream = stream, timestamp_field = ts, now = opts.now, types = types }
  return { rows = out.rows, select = q.finish(), unavailable = out.unavailable, dropped = out.dropped,
           schema = out.schema, types = types, opts = mopts, object = object, stream = stream, timestamp_field = ts }
end

-- The SOQL select list as text: "Id, IsDeleted, LastModifiedDate, FirstName, ...".
function M.select_list(compiled)
  return table.concat(compiled.select, ", ")
end

return M
