-- The default mappings are the product document's tables, row for row.
--
-- Reads the four tables "The following fields are included in the default mapping of
-- the salesforce_<x> stream" from the product document at run time and proves that
-- mappings/salesforce_<x>.lua has exactly those rows, in that order, each with the
-- document's source field(s), user field, type, "unique id" mark and description.
-- Removing a row, reordering rows or changing a type makes this test fail (proved at
-- the end by running the same comparison on damaged copies).
local t = require "tests.tap"
local mapping = require "sf.mapping"

local SEED = "000_bc503be2252a66cc.txt"
local STREAMS = { "salesforce_accounts", "salesforce_contacts", "salesforce_leads", "salesforce_opportunities" }
local TYPES = { string = true, number = true, int = true, bool = true, date = true, ["[]string"] = true }

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The product document: shared/seeds next to the repository, else the copy in
-- tests/fixtures (so CI works even if shared/ moves).
local root = os.getenv("SFENGINE_ROOT") or "."
local doc_path = root .. "/../shared/seeds/" .. SEED
local doc = read(doc_path)
if not doc then
  doc_path = root .. "/tests/fixtures/seeds/" .. SEED
  doc = read(doc_path)
end
if not t.ok(doc ~= nil, "the product document is readable", "neither shared/seeds nor tests/fixtures/seeds has " .. SEED) then
  t.done()
end
local fixture = read(root .. "/tests/fixtures/seeds/" .. SEED)
t.ok(fixture == doc, "tests/fixtures/seeds holds an identical copy of the product document",
     "the fixture differs from " .. doc_path .. ": copy it again")

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- One document row as the mapping must read it. The document's cells are
-- Source Field | Lytics User Field | Description | Type. Two kinds of row have their
-- cells shifted one column left (the Type cell is empty and a type name sits in the
-- Description cell):
--   | lead_email | email unique id | string | |
--       the description is missing: type string, empty description;
--   | salesforce_last_user_imported | Salesforce: Last User Imported | date | |
--       the user field is missing: it is the source name itself, the User Field cell
--       holds the description.
-- "unique id" after the user field marks an identity field.
local function doc_row(line)
  local cells = {}
  for cell in line:gmatch("|([^|]*)") do cells[#cells + 1] = trim(cell) end
  if cells[#cells] == "" and #cells == 5 then cells[5] = nil end   -- after the closing "|"
  local source, user, description, typ = cells[1], cells[2], cells[3], cells[4]
  local shifted
  if typ == "" and TYPES[description] then
    typ = description
    if user:match("^[%w_]+ unique id$") or user:match("^[%w_]+$") then
      description, shifted = "", "description"
    else
      description, user, shifted = user, source, "user field"
    end
  end
  local identity = false
  if user:match(" unique id$") then
    identity = true
    user = user:gsub(" unique id$", "")
  end
  local sources = {}
  for s in source:gmatch("[^,%s]+") do sources[#sources + 1] = s end
  return { sources = sources, to = user, type = typ, identity = identity, description = description,
           shifted = shifted, text = line }
end

-- The four tables, by stream.
local tables = {}
do
  local current
  for line in (doc .. "\n"):gmatch("(.-)\r?\n") do
    local stream = line:match("^The following fields are included in the default mapping of the (salesforce_[%w_]+) stream")
    if stream then
      current = { rows = {} }
      tables[stream] = current
    elseif current and line:match("^|") then
      if not line:match("^|%s*Source Field") and not line:match("^|[-|%s:]+|%s*$") then
        current.rows[#current.rows + 1] = doc_row(line)
      end
    elseif current and #current.rows > 0 then
      current = nil
    end
  end
end

local function source_list(row)
  if type(row.source) == "table" then return row.source end
  return { row.source }
end

-- Differences between a document table and a mapping, as messages (empty: identical).
local function compare(stream, want, m)
  local diffs = {}
  local function diff(fmt, ...) diffs[#diffs + 1] = string.format(fmt, ...) end
  if #m.rows ~= #want.rows then
    diff("%s has %d rows, the document %d", stream, #m.rows, #want.rows)
  end
  for i, w in ipairs(want.rows) do
    local r = m.rows[i]
    if not r then
      diff("row %d (%s): missing", i, w.to)
    else
      local got_src = table.concat(source_list(r), ", ")
      local want_src = table.concat(w.sources, ", ")
      if got_src ~= want_src then diff("row %d: source %s, document %s", i, got_src, want_src) end
      if r.to ~= w.to then diff("row %d: user field %s, document %s", i, tostring(r.to), w.to) end
      if r.type ~= w.type then diff("row %d (%s): type %s, document %s", i, w.to, tostring(r.type), w.type) end
      if (r.identity == true) ~= w.identity then
        diff("row %d (%s): identity %s, document %s", i, w.to, tostring(r.identity == true), tostring(w.identity))
      end
      if (r.description or "") ~= w.description then
        diff("row %d (%s): description %q, document %q", i, w.to, tostring(r.description), w.description)
      end
    end
  end
  return diffs
end

for _, stream in ipairs(STREAMS) do
  local want = tables[stream]
  if t.ok(want and #want.rows > 0, stream .. ": the document has its default-mapping table") then
    local m = mapping.default(stream)
    local valid, why = pcall(mapping.validate, m)
    t.ok(valid, stream .. ": the mapping is well formed (every source is declared)", tostring(why))
    t.eq(#m.rows, #want.rows, stream .. ": as many mapping rows as document rows")
    for i, w in ipairs(want.rows) do
      local r = m.rows[i] or {}
      local ok = table.concat(source_list(r), ", ") == table.concat(w.sources, ", ")
        and r.to == w.to and r.type == w.type and (r.identity == true) == w.identity
        and (r.description or "") == w.description
      t.ok(ok, string.format("%s row %d: %s <- %s, %s%s, as the document's row", stream, i, w.to,
             table.concat(w.sources, ", "), w.type, w.identity and ", unique id" or ""),
           string.format("document %q; mapping {source=%s, to=%s, type=%s, identity=%s, description=%q}",
             w.text, table.concat(source_list(r), ","), tostring(r.to), tostring(r.type),
             tostring(r.identity), tostring(r.description)))
    end
    local diffs = compare(stream, want, m)
    t.ok(#diffs == 0, stream .. ": mapping and document tables are identical", table.concat(diffs, "; "))
  end
end

-- The shifted rows are read the documented way.
do
  local leads = tables.salesforce_leads and tables.salesforce_leads.rows or {}
  local email, imported
  for _, w in ipairs(leads) do
    if w.to == "email" then email = w end
    if w.to == "salesforce_last_user_imported" then imported = w end
  end
  t.ok(email and email.shifted == "description" and email.type == "string" and email.identity
       and email.description == "", "the email row's shifted cells read as: identity, type string, no description")
  t.ok(imported and imported.shifted == "user field" and imported.type == "date"
       and imported.description == "Salesforce: Last User Imported",
       "the salesforce_last_user_imported row's shifted cells read as: user field = source, type date")
  local m = mapping.default("salesforce_leads")
  local row
  for _, r in ipairs(m.rows) do if r.to == "salesforce_last_user_imported" then row = r end end
  t.ok(row and row.const == "now", "salesforce_last_user_imported is the time of the import (const now)")
end

-- Identity fields are exactly those the document marks "unique id".
do
  local ids = {}
  for _, stream in ipairs(STREAMS) do
    for _, r in ipairs(mapping.default(stream).rows) do
      if r.identity then ids[r.to] = true end
    end
  end
  local list = {}
  for k in pairs(ids) do list[#list + 1] = k end
  table.sort(list)
  t.eq(table.concat(list, ","), "email,salesforce_contact_ids,salesforce_lead_ids",
       "identity fields: email, salesforce_contact_ids, salesforce_lead_ids")
end

-- The comparison catches damage: a removed row, a changed type, a lost identity mark,
-- swapped rows.
do
  local want = tables.salesforce_leads
  local m = mapping.default("salesforce_leads")
  table.remove(m.rows, 10)
  t.ok(#compare("salesforce_leads", want, m) > 0, "a removed row is detected")
  m = mapping.default("salesforce_leads")
  m.rows[18].type = "number"
  t.ok(#compare("salesforce_leads", want, m) > 0, "a changed type is detected")
  m = mapping.default("salesforce_leads")
  m.rows[1].identity = nil
  t.ok(#compare("salesforce_leads", want, m) > 0, "a lost identity mark is detected")
  m = mapping.default("salesforce_leads")
  m.rows[5], m.rows[6] = m.rows[6], m.rows[5]
  t.ok(#compare("salesforce_leads", want, m) > 0, "swapped rows are detected")
  m = mapping.default("salesforce_leads")
  m.rows[#m.rows + 1] = { source = "lead_rating", to = "x", type = "string" }
  t.ok(#compare("salesforce_leads", want, m) > 0, "an extra row is detected")
end

t.done()
