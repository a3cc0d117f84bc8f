-- sfengine fields RECIPE OBJECT [--json] (or sfengine --describe OBJECT RECIPE):
-- the org's fields of OBJECT with their types, so additional_fields,
-- custom_objects and export field mappings can be written without guessing.
-- One describe call through the recipe's auth and API budget (it refreshes
-- the job's describe cache too).
local cli = require "sf.cli"
local jobs = require "sf.jobs"
local cjson = require "cjson.safe"

local FLAGS = {
  { "externalId", "external id" }, { "idLookup", "id lookup" }, { "createable", "create" },
  { "updateable", "update" }, { "nillable", "nillable" }, { "calculated", "formula" }, { "custom", "custom" },
}

local function size(f)
  if f.type == "double" or f.type == "currency" or f.type == "percent" then
    if f.precision and f.precision > 0 then return string.format("%d,%d", f.precision, f.scale or 0) end
    return ""
  end
  if f.length and f.length > 0 then return tostring(math.tointeger(f.length) or f.length) end
  return ""
end

return function(opts)
  local r, ctx = cli.load(opts)
  local module = cli.job(r, ctx)
  local job = jobs.setup(r, ctx, module.schema, { outputs = false })
  local d, err, code = jobs.describe(job, opts.object, 0, true)
  job.state:set("budget", job.budget:dump())
  job.state:checkpoint()
  if not d then
    if code == "NOT_FOUND" then
      error("the org has no object " .. opts.object .. " (object names are API names, case-sensitive: Lead, Account, My_Object__c)", 0)
    end
    if code == "AUTH" then error(err, 0) end
    error(opts.object .. ": describe failed: " .. tostring(err), 0)
  end
  local rows = {}
  for _, f in ipairs(d.fields or {}) do
    local flags = {}
    for _, fl in ipairs(FLAGS) do
      if f[fl[1]] == true then flags[#flags + 1] = fl[2] end
    end
    rows[#rows + 1] = {
      name = f.name, type = f.type, length = f.length, precision = f.precision, scale = f.scale, label = f.label,
      reference_to = (type(f.referenceTo) == "table" and #f.referenceTo > 0) and f.referenceTo or nil,
      flags = flags, size = size(f),
    }
  end
  if opts.json then
    for _, row in ipairs(rows) do
      row.size = nil
      setmetatable(row.flags, cjson.empty_array_mt)
    end
    setmetatable(rows, cjson.empty_array_mt)
    io.stdout:write(assert(cjson.encode(rows)), "\n")
    return 0
  end
  local out = { string.format("%-40s %-24s %-7s %s", "FIELD", "TYPE", "SIZE", "FLAGS") }
  for _, row in ipairs(rows) do
    local t = row.type .. (row.reference_to and (" -> " .. table.concat(row.reference_to, ",")) or "")
    out[#out + 1] = string.format("%-40s %-24s %-7s %s", row.name, t, row.size, table.concat(row.flags, ", "))
  end
  out[#out + 1] = string.format("%d fields of %s (%s)", #rows, opts.object, job.recipe.api_version and ("API v" .. job.recipe.api_version) or "")
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end
