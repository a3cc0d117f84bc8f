-- sf.export.record: one user's record for one target, built from the
-- target's mapping rows: each row's value (a user field, a static value, the
-- profile id, audiences, or a recipe function called with a read-only view
-- of the user), the audiences/affinities/scores fields, the Salesforce type
-- rules (sf.export.typerules), the match values and the trigger hash.
--
--   local record = require "sf.export.record"
--   local rec, reason, message = record.build(job, target, user, exported)
--     rec = { user, target, fields = { Field = value (cjson.null clears) },
--             match = { values }, match_key = record.match_key(match),
--             rejects = { {field, reason, code} },
--             hash = "<32 hex digits>" }
--     nil, skip reason, message    (no value for a match field)
local cjson = require "cjson.safe"
local sandbox = require "sf.sandbox"
local tables = require "sf.tables"
local typerules = require "sf.export.typerules"
local numbers = require "mappings.numbers"
local profiles = require "sf.export.profiles"
local segment = require "sf.export.segment"
local json = require "sf.json"
local hash = require("sf.hash").hash128

local M = {}

local null = cjson.null

-- The key of a list of match values, as a lookup finds them again: text
-- compares case-insensitively (as SOQL does), other values by their JSON.
-- nil when a value is missing.
function M.match_key(values)
  local parts = {}
  for i, v in ipairs(values) do
    if v == nil or v == null then return nil end
    parts[i] = type(v) == "string" and v:lower() or json.encode(v)
  end
  return table.concat(parts, "\0")
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
  local parts = {}
  for i, k in ipairs(tables.sorted_keys(scores)) do parts[i] = k .. "=" .. numbers.text(scores[k]) end
  return parts
end

-- The Segment mapping's values (target.implicit): traits -> fields the org
-- has and can write; traits it lacks or cannot write become rejects. Returns
-- true, or nil, skip reason, message when a lookup trait is missing.
local function segment_values(job, target, user, values, rejects)
  local seg = job.recipe.segment
  local sf, custom
  if target.implicit == "segment_lead" then
    sf, custom = segment.lead_fields(user.fields)
  else
    sf, custom = segment.account_fields(user.fields, user.id, { address = seg and seg.address })
  end
  local keep_custom = not (seg and seg.custom_traits == false)
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
  return true
end

-- The values of the target's mapping rows; a recipe function that fails is a reject.
local function row_values(job, target, user, values, rejects)
  local view
  for _, row in ipairs(target.rows) do
    if type(row.source) == "function" and not view then
      view = sandbox.readonly(user, "the user", { deep = true })   -- what recipe functions see
    end
    local v, err = source_value(job, row.source, user, row.fd, view)
    if err then
      rejects[#rejects + 1] = { field = row.field, reason = err, code = "FUNCTION_ERROR" }
    elseif v ~= nil then
      values[row.field] = { v = v, fd = row.fd }
    else
      values[row.field] = nil
    end
  end
end

-- The audiences, affinities (top three) and scores fields: lists as text.
local function list_fields(target, user, exported, values)
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
end

-- The values through Salesforce's type rules: { Field = value } (null
-- clears a field, missing values are left out); refused values are rejects.
local function typed_fields(values, rejects)
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
  return fields
end

-- The values of the match fields, or nil and the first one without a value.
local function match_values(target, fields)
  local match = {}
  for i, fd in ipairs(target.match_fds) do
    local v = fields[fd.name]
    if v == nil or v == null then return nil, fd.name end
    match[i] = v
  end
  return match
end

-- The trigger hash: the trigger fields (or, without triggers, the whole
-- record) and the exported audiences.
local function trigger_hash(target, user, exported, fields)
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
  return hash(json.encode(basis))
end

-- rec = { fields = {Field = value (null clears)}, match = {values}, key = "..",
--         rejects = {{field, reason}}, hash = "..." } | nil, skip reason
local function build_record(job, target, user, exported)
  local values, rejects = {}, {}
  if target.implicit then
    local ok, reason, message = segment_values(job, target, user, values, rejects)
    if not ok then return nil, reason, message end
  end
  row_values(job, target, user, values, rejects)
  list_fields(target, user, exported, values)
  local fields = typed_fields(values, rejects)
  local match, missing = match_values(target, fields)
  if not match then return nil, "missing_match_value", "no value for the match field " .. missing end
  return {
    user = user, target = target, fields = fields, match = match, match_key = M.match_key(match),
    rejects = rejects, hash = trigger_hash(target, user, exported, fields),
  }
end

M.build = build_record

return M
