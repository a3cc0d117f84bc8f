-- Export input: one NDJSON line -> one normalised user (or account).
--
--   local profiles = require "sf.export.profiles"
--   local u, reason, message = profiles.parse(line, { format = "profiles" | "segment",
--                                                     integration = "Salesforce",
--                                                     require_explicit = true })
--     u        the normalised user, below
--     nil, reason, message   the line is skipped; reason is a stable code for
--              the summary ("bad_json", "bad_line", "unsupported_event",
--              "integration_disabled"), message says why
--
-- ## Profile lines (format = "profiles")
--
--   {"id": "u1",                         required: a string or an integer
--    "kind": "user",                     "user" (default) or "account"
--    "event": "update",                  "update" (default: backfill or a change),
--                                        "enter" or "exit" (an audience change)
--    "audience": "power",                with enter/exit: the audience entered/left
--    "audiences": ["power", "active"],   every audience the user is in now ("segments"
--                                        is accepted as a synonym)
--    "fields": {"email": "a@b.c", "first_name": "Ada", "address": {"city": "Rome"}},
--    "scores": {"engagement": 80, "momentum": 45},        optional
--    "affinities": {"shoes": 0.8, "travel": 0.5},         optional content affinities
--    "consent": ["marketing"]}           optional consent objectives the user agreed to
--                                        ("objectives" is accepted as a synonym)
--
--   "audiences" is the membership after the event: an exit line lists the
--   audiences the user is still in. With "audience" given, an enter adds it and
--   an exit removes it, so a sender may also send the membership before the change.
--
-- ## Segment events (format = "segment")
--
--   {"type": "identify", "userId": "u1", "anonymousId": "a1",
--    "traits": {...}, "context": {"traits": {...}}, "integrations": {"Salesforce": true}}
--   {"type": "group", "groupId": "813", "userId": "u1", "traits": {...}, "integrations": {...}}
--
--   identify -> a user (kind "user", id userId or else anonymousId, fields =
--   context.traits overlaid with traits); group -> an account (kind "account",
--   id groupId, fields = traits). Other types (track, page, screen, alias) are
--   skipped as "unsupported_event". The `integrations` switch decides whether
--   the event goes to Salesforce at all (see segment_enabled).
--
-- ## The normalised user
--
--   { key = "u1" (store key; "identify:u1" / "group:813" for Segment),
--     id = "u1", kind = "user" | "account", event = "update" | "enter" | "exit",
--     audience = "power" | nil, audiences = { "power", ... } (sorted, unique),
--     in_audience = { power = true }, fields = {...}, scores = {...} | nil,
--     affinities = {...} | nil, consent = { ... } | nil, source = "profiles" | "segment",
--     segment_type = "identify" | "group" | nil }
local cjson = require "cjson.safe"
local json = require "sf.json"
local tables = require "sf.tables"

local M = {}

local null = cjson.null

local function is_object(v)
  return type(v) == "table" and v ~= null
end

local function id_text(v)
  if type(v) == "string" then
    if v == "" then return nil end
    return v
  end
  if type(v) == "number" then
    local i = math.tointeger(v)
    if i then return string.format("%d", i) end
  end
  return nil
end

-- A list of unique non-empty strings, sorted (nil/null -> {}); nil, message
-- when v is not a list of strings.
local function string_list(v, what)
  if v == nil or v == null then return {} end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then return nil, what .. " must be a list of strings" end
  local seen, out = {}, {}
  for i = 1, #v do
    local s = v[i]
    if type(s) ~= "string" then return nil, what .. " must be a list of strings" end
    if s ~= "" and not seen[s] then
      seen[s] = true
      out[#out + 1] = s
    end
  end
  if next(v) ~= nil and #v == 0 then return nil, what .. " must be a list of strings" end
  table.sort(out)
  return out
end

local function numbers_map(v, what)
  if v == nil or v == null then return nil end
  if not is_object(v) then return nil, what .. " must be an object of numbers" end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" or type(x) ~= "number" then
      return nil, what .. " must be an object of numbers"
    end
    out[k] = x
  end
  return out
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local EVENTS = { update = true, enter = true, exit = true }
local KINDS = { user = true, account = true }

local function parse_profile(obj)
  local id = id_text(obj.id)
  if not id then return nil, "bad_line", "\"id\" must be a non-empty string or an integer" end
  local kind = obj.kind
  if kind == nil or kind == null then kind = "user" end
  if not KINDS[kind] then return nil, "bad_line", "\"kind\" must be \"user\" or \"account\"" end
  local event = obj.event
  if event == nil or event == null then event = "update" end
  if not EVENTS[event] then return nil, "bad_line", "\"event\" must be \"update\", \"enter\" or \"exit\"" end
  local audience = obj.audience
  if audience == null then audience = nil end
  if audience ~= nil and (type(audience) ~= "string" or audience == "") then
    return nil, "bad_line", "\"audience\" must be a non-empty string"
  end
  local aud_src = obj.audiences
  if aud_src == nil or aud_src == null then aud_src = obj.segments end
  local audiences, aerr = string_list(aud_src, "\"audiences\"")
  if not audiences then return nil, "bad_line", aerr end
  local in_audience = set_of(audiences)
  if audience and event == "enter" then in_audience[audience] = true end
  if audience and event == "exit" then in_audience[audience] = nil end
  local fields = obj.fields
  if fields == nil or fields == null then fields = {} end
  if not is_object(fields) or (next(fields) ~= nil and #fields > 0) then
    return nil, "bad_line", "\"fields\" must be an object"
  end
  local scores, serr = numbers_map(obj.scores, "\"scores\"")
  if serr then return nil, "bad_line", serr end
  local affinities, ferr = numbers_map(obj.affinities, "\"affinities\"")
  if ferr then return nil, "bad_line", ferr end
  local consent_src = obj.consent
  if consent_src == nil or consent_src == null then consent_src = obj.objectives end
  local consent
  if consent_src ~= nil and consent_src ~= null then
    local cerr
    consent, cerr = string_list(consent_src, "\"consent\"")
    if not consent then return nil, "bad_line", cerr end
  end
  return {
    key = kind == "account" and ("account:" .. id) or id,
    id = id, kind = kind, event = event, audience = audience,
    audiences = tables.sorted_keys(in_audience), in_audience = in_audience,
    fields = fields, scores = scores, affinities = affinities, consent = consent,
    source = "profiles",
  }
end

-- Does a Segment event with this `integrations` object go to the destination
-- `name`? Segment's rules: a destination key set to false disables it, set to
-- true or to an options object enables it; otherwise `All` decides (default
-- true). Segment's Salesforce destination also requires the explicit opt-in
-- (require_explicit, the default here): without {"Salesforce": true} nothing
-- is sent, whatever `All` says.
function M.segment_enabled(integrations, name, require_explicit)
  name = name or "Salesforce"
  if require_explicit == nil then require_explicit = true end
  if not is_object(integrations) then integrations = {} end
  local v = integrations[name]
  if v == true or is_object(v) then return true end
  if v == false then return false end
  if require_explicit then return false end
  return integrations.All ~= false
end

local function parse_segment(obj, opts)
  local t = obj.type
  if t ~= "identify" and t ~= "group" then
    return nil, "unsupported_event", "Segment event type " .. tostring(t) .. " is not exported (identify and group are)"
  end
  if not M.segment_enabled(obj.integrations, opts.integration, opts.require_explicit) then
    return nil, "integration_disabled", "integrations." .. (opts.integration or "Salesforce") .. " is not enabled for this event"
  end
  local traits = {}
  local ctx = obj.context
  if is_object(ctx) and is_object(ctx.traits) then
    for k, v in pairs(ctx.traits) do traits[k] = v end
  end
  if obj.traits ~= nil and obj.traits ~= null then
    if not is_object(obj.traits) then return nil, "bad_line", "\"traits\" must be an object" end
    for k, v in pairs(obj.traits) do traits[k] = v end
  end
  if t == "identify" then
    local id = id_text(obj.userId) or id_text(obj.anonymousId)
    if not id then return nil, "bad_line", "identify needs a userId or an anonymousId" end
    return {
      key = "identify:" .. id, id = id, kind = "user", event = "update",
      audiences = {}, in_audience = {}, fields = traits, source = "segment", segment_type = "identify",
    }
  end
  local gid = id_text(obj.groupId)
  if not gid then return nil, "bad_line", "group needs a groupId" end
  return {
    key = "group:" .. gid, id = gid, kind = "account", event = "update",
    audiences = {}, in_audience = {}, fields = traits, source = "segment", segment_type = "group",
  }
end

function M.parse(line, opts)
  opts = opts or {}
  if line:find("^%s*$") then return nil, "blank", "blank line" end
  -- sf.json: integers stay exact (9007199254740993 is not rounded to a double)
  local obj, err = json.decode(line)
  if obj == nil then return nil, "bad_json", "not JSON: " .. tostring(err) end
  if not is_object(obj) or (next(obj) ~= nil and #obj > 0) then
    return nil, "bad_line", "a line must be a JSON object"
  end
  if opts.format == "segment" then return parse_segment(obj, opts) end
  return parse_profile(obj)
end

-- The value at a user field path: "email", or "address.city" into nested
-- objects (a key holding the literal dots wins). JSON null reads as nil.
function M.get(fields, path)
  local v = fields[path]
  if v == nil and path:find(".", 1, true) then
    v = fields
    for part in path:gmatch("[^.]+") do
      if not is_object(v) then return nil end
      v = v[part]
    end
  end
  if v == null then return nil end
  return v
end

-- Has the user agreed to at least one of the objectives?
function M.has_consent(user, objectives)
  if not user.consent then return false end
  for _, c in ipairs(user.consent) do
    for _, o in ipairs(objectives) do
      if c == o then return true end
    end
  end
  return false
end

-- The user's audiences among `wanted` (all of them when wanted is nil), sorted.
function M.exported_audiences(user, wanted)
  if not wanted then return user.audiences end
  local out = {}
  for _, a in ipairs(wanted) do
    if user.in_audience[a] then out[#out + 1] = a end
  end
  table.sort(out)
  return out
end

-- The n names with the highest values (ties: by name), as a list.
function M.top(map, n)
  if not map then return {} end
  local names = {}
  for k in pairs(map) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if map[a] ~= map[b] then return map[a] > map[b] end
    return a < b
  end)
  local out = {}
  for i = 1, math.min(n, #names) do out[i] = names[i] end
  return out
end

return M
