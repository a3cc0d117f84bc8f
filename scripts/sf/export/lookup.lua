-- sf.export.lookup: finding the records a batch of users matches, with as
-- few calls as SOQL allows: ONE escaped `IN (...)` query per up to 200 match
-- values (split further to keep the request under Salesforce's URI limit),
-- followed through nextRecordsUrl; and the multiple_matches rule.
--
--   local found = lookup.find(job, target, recs)   -- { match_key = { {id, modified}, ... } }
--   lookup.pick(target, matches)                   -- the matches to update
--   lookup.literal(value, fd)                      -- a SOQL literal for a describe field
local numbers = require "mappings.numbers"
local client_mod = require "sf.client"
local record = require "sf.export.record"
local abort = require "sf.export.abort"

local M = {}

M.MAX_LOOKUP = 200          -- values per SOQL IN (...) lookup
M.MAX_URI = 16000           -- request target bytes (Salesforce refuses > 16,384)

local function soql_literal(v, fd)
  local t = fd.type
  if t == "int" or t == "double" or t == "currency" or t == "percent" then return numbers.text(v) end
  if t == "boolean" then return v and "true" or "false" end
  if t == "date" or t == "datetime" then return v end
  v = tostring(v)
  return "'" .. v:gsub("[\\'\"\n\r\t\b\f]", {
    ["\\"] = "\\\\", ["'"] = "\\'", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
    ["\b"] = "\\b", ["\f"] = "\\f",
  }) .. "'"
end
M.literal = soql_literal

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
    local resp, err, code = abort.call(job, { method = "GET", path = path })
    if not resp then abort.raise("failed", target.object .. ": lookup failed: " .. tostring(err) .. " (" .. tostring(code) .. ")") end
    if resp.status ~= 200 or type(resp.data) ~= "table" then
      local ecode, emsg = client_mod.error_code(resp)
      abort.raise("failed", string.format("%s: lookup failed: HTTP %d %s: %s", target.object, resp.status,
        tostring(ecode), tostring(emsg or resp.body:sub(1, 300))))
    end
    for _, row in ipairs(resp.data.records or {}) do
      local vals = {}
      for i, name in ipairs(target.match_names) do vals[i] = row[name] end
      local k = record.match_key(vals)
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

M.find = lookup
M.pick = pick

return M
