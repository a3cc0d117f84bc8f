-- Recipe loading and schema validation: every error names file:line and the
-- dotted key path. Run: sfengine --test FILE
local t = require "tests.tap"
local recipe = require "sf.recipe"
local sandbox = require "sf.sandbox"
local S = recipe.schema

local tmp = t.tmpdir()
local function write(name, data) return t.write(tmp .. "/" .. name, data) end

local object = S.record({
  { "since", S.string { pattern = "^%d%d%d%d%-%d%d%-%d%d", doc = "a date such as 2024-01-15" } },
  { "timestamp_field", S.string { default = "LastModifiedDate" } },
  { "additional_fields", S.list(S.string {}, { max = 3 }) },
})

local schema = S.record {
  job = S.string { required = true, enum = { "import" } },
  name = S.string { required = true, pattern = "^[%w_%-]+$", doc = "letters, digits, _ and -" },
  batch_size = S.integer { min = 200, max = 2000, default = 2000 },
  share = S.number { min = 0, max = 1 },
  deletions = S.boolean { default = true },
  objects = S.map(S.string { enum = { "Lead", "Contact" } }, S.one_of { S.boolean {}, object }),
  custom = S.list(S.record { object = S.string { required = true }, stream = S.string { required = true } }),
  auth = S.record({ user = S.string {}, password = S.secret {}, token = S.secret { plain = false } }, {
    check = function(a)
      if a.user and not a.password then return false, "user needs password" end
      return true
    end,
  }),
  transform = S.func {},
  extra = S.any {},
}

-- Loads source as a recipe file and validates it: ok, value | false, error.
local function check(source, sch)
  local path = write("r.lua", source)
  local ok, r, _, src = pcall(recipe.load, path)
  if not ok then return false, r end
  local ctx = { path = path, source = src }
  return pcall(recipe.validate, r, sch or schema, ctx)
end

-- Expects a recipe error whose message is "<path>:<line>: <rest>".
local function fails(source, line, rest, name)
  local ok, err = check(source)
  if ok then return t.ok(false, name, "no error") end
  local want = tmp .. "/r.lua:" .. line .. ": " .. rest
  t.ok(recipe.is_error(err), name .. " (a recipe error)", tostring(err))
  return t.eq(tostring(err), want, name)
end

fails([[
return {
  job = "import",
  name = "demo",
  objects = {
    Lead = {
      since = "2024-01-01",
      sincee = "2024-01-01",
    },
  },
}
]], 7, "objects.Lead.sincee: unknown key, did you mean since? (known: since, timestamp_field, additional_fields)",
  "an unknown nested key names file:line and the dotted path")

fails([[
return {
  job = "import",
  name = "demo",
  colour = "blue",
}
]], 4, "colour: unknown key (known: auth, batch_size, custom, deletions, extra, job, name, objects, share, transform)",
  "an unknown top-level key lists the known keys")

fails([[
return {
  job = "import",
  name = "demo",
  batch_size = "big",
}
]], 4, 'batch_size: expected an integer, got "big"', "a wrong type names the key and line")

fails([[
return {
  job = "import",
  name = "demo",
  batch_size = 20.5,
}
]], 4, "batch_size: expected an integer, got 20.5", "a fractional number is not an integer")

fails([[
return {
  job = "import",
  batch_size = 200,
}
]], 1, "name: required key is missing", "a missing required key names the table's line")

fails([[
local x = 1

return {
  job = "import",
  name = "demo",
  objects = {
    Lead = {
      timestamp_field = "SystemModstamp",
    },
    Contact = {
      since = 5,
    },
  },
}
]], 11, "objects.Contact.since: expected a string, got 5", "nested paths are located under their parent")

fails([[
return {
  job = "import", name = "demo",
  batch_size = 5000,
}
]], 3, "batch_size: must be at most 2000 (got 5000)", "a number above max is refused")

fails([[
return {
  job = "export", name = "demo",
}
]], 2, 'job: must be one of "import" (got "export")', "a value outside the enum is refused")

fails([[
return {
  job = "import", name = "has space",
}
]], 2, 'name: invalid value "has space" (letters, digits, _ and -)', "a pattern mismatch is refused, saying what is expected (never the Lua pattern)")

fails([[
return {
  job = "import", name = "demo",
  objects = { Account = true },
}
]], 3, 'objects.Account: must be one of "Lead", "Contact" (got "Account")', "a bad map key is refused")

fails([[
return {
  job = "import", name = "demo",
  objects = { Lead = "yes" },
}
]], 3, 'objects.Lead: expected a boolean or a table, got "yes"', "one_of names its alternatives")

fails([[
return {
  job = "import", name = "demo",
  objects = {
    Lead = { additional_fields = { "A", "B", "C", "D" } },
  },
}
]], 4, "objects.Lead.additional_fields: takes at most 3 items (got 4)", "a list above max is refused")

fails([[
return {
  job = "import", name = "demo",
  objects = {
    Lead = { additional_fields = { "A", 7 } },
  },
}
]], 4, "objects.Lead.additional_fields[2]: expected a string, got 7", "list items are named by index")

fails([[
return {
  job = "import", name = "demo",
  custom = {
    { object = "A__c", stream = "a" },
    { object = "B__c", stream = 3 },
  },
}
]], 5, "custom[2].stream: expected a string, got 3", "a key inside the n-th list item is located")

fails([[
return {
  job = "import", name = "demo",
  custom = {
    { object = "A__c", stream = "a" },
    { object = "B__c" },
  },
}
]], 3, "custom[2].stream: required key is missing", "a missing key in a list item")

fails([[
return {
  job = "import", name = "demo",
  custom = { a = 1 },
}
]], 3, 'custom: expected a list (keys 1..n), found key "a"', "a table with named keys is not a list")

fails([[
return {
  job = "import", name = "demo",
  auth = { user = "me" },
}
]], 3, "auth: user needs password", "a record check function reports at the record")

fails([[
return {
  job = "import", name = "demo",
  auth = { token = "literal" },
}
]], 3, 'auth.token: expected a secret (sf.secret_env or sf.secret_file), got "literal"',
  "a secret-only field refuses a literal string")

fails([[
return {
  job = "import", name = "demo",
  ["transform"] = "not a function",
}
]], 3, 'transform: expected a function, got "not a function"', 'keys written as ["key"] are located')

fails([[
local objects = {
  Lead = {
    since = "yesterday",
  },
}
return { job = "import", name = "demo", objects = objects }
]], 3, 'objects.Lead.since: invalid value "yesterday" (a date such as 2024-01-15)',
  "keys of a table built before the return are found")

fails([[
return {
  job = "import", name = "demo",
  [1] = "x",
}
]], 1, 'unexpected number key 1 (a record has named keys only)', "a positional entry in a record is refused")

-- normalisation
do
  local ok, v = check([[
return {
  job = "import", name = "demo",
  objects = { Lead = true, Contact = { since = "2024-02-03" } },
  auth = { user = "me", password = "hunter22" },
  transform = function(x) return x end,
  extra = { anything = { 1, 2 } },
}
]])
  t.ok(ok, "a valid recipe validates", tostring(v))
  if ok then
    t.eq(v.batch_size, 2000, "defaults are filled in")
    t.eq(v.deletions, true, "boolean defaults are filled in")
    t.eq(v.objects.Lead, true, "one_of keeps a boolean")
    t.eq(v.objects.Contact.timestamp_field, "LastModifiedDate", "nested defaults are filled in")
    t.ok(sandbox.is_secret(v.auth.password), "a literal string in a secret field becomes a secret")
    t.eq(sandbox.reveal(v.auth.password), "hunter22", "the engine can reveal it")
    t.eq(tostring(v.auth.password), "(redacted)", "and it prints redacted")
    t.eq(type(v.transform), "function", "functions pass through")
  end
end

do
  local path = write("meta.lua", [[
return setmetatable({ job = "import", name = "demo" }, {
  __index = function() while true do end end,
  __pairs = function() error("pairs ran recipe code") end,
})
]])
  local r, _, src = recipe.load(path)
  local ok, v = pcall(recipe.validate, r, schema, { path = path, source = src })
  t.ok(ok and getmetatable(v) == nil and v.batch_size == 2000,
    "validation reads recipe tables raw and returns plain tables", tostring(v))
end

do
  local ok, v = pcall(recipe.validate, 5, S.integer { min = 1 }, { path = "x.lua" })
  t.ok(ok and v == 5, "validate works on a scalar value")
  local ok2, v2 = pcall(recipe.validate, 3.0, S.integer {}, {})
  t.ok(ok2 and math.type(v2) == "integer", "an integral float becomes an integer")
end

-- error_at for job modules
do
  local source = "return {\n  job = 'import',\n  auth = {\n    private_key_file = 'k.pem',\n  },\n}\n"
  local e = recipe.error_at({ path = "x.lua", source = source }, "auth.private_key_file", "cannot read it")
  t.eq(tostring(e), "x.lua:4: auth.private_key_file: cannot read it", "error_at locates a dotted path")
  t.eq(e.exit_code, 2, "recipe errors carry exit code 2")
  local e2 = recipe.error_at({ path = "x.lua", source = source }, nil, "bad recipe")
  t.eq(tostring(e2), "x.lua:1: bad recipe", "error_at without a path names the return line")
end

-- recipe.load
do
  local ok, err = pcall(recipe.load, write("syntax.lua", "return {\n  job = 'import'\n  name = 1,\n}\n"))
  t.ok(not ok and recipe.is_error(err) and tostring(err):find("syntax.lua:3:", 1, true),
    "a syntax error is a recipe error naming file:line", tostring(err))
  local ok2, err2 = pcall(recipe.load, write("notable.lua", "local x = 1\nreturn 42\n"))
  t.eq(not ok2 and tostring(err2), tmp .. "/notable.lua:2: a recipe must return a table (got 42)",
    "a recipe that returns no table is refused at its return line")
  t.ok(recipe.is_error(err2), "and that is a recipe error (exit 2)")
  local ok3, err3 = pcall(recipe.load, write("boom.lua", "local t\nlocal x = t.y\nreturn {}\n"))
  t.ok(not ok3 and type(err3) == "string" and err3:find("boom.lua:2: attempt to index a nil value", 1, true),
    "a runtime error in the recipe is a plain error naming file:line (exit 1)", tostring(err3))
  local ok4, err4 = pcall(recipe.load, tmp .. "/missing.lua")
  t.ok(not ok4 and recipe.is_error(err4) and tostring(err4):find("cannot read the recipe", 1, true),
    "a missing recipe file is a recipe error", tostring(err4))
  local r, dir, src, box = recipe.load(write("ok.lua", "return { job = 'import' }\n"))
  t.ok(r.job == "import" and dir == tmp and src:find("job", 1, true) and box and box.env,
    "recipe.load returns the table, its directory, its source and its sandbox")
end

-- schema construction mistakes are programming errors
t.raises(function() S.record { x = "string" } end, "must be a schema", "S.record refuses non-schema fields")
t.raises(function() S.list("x") end, "item must be a schema", "S.list refuses a non-schema item")
t.raises(function() S.string { pattern = "^%d+$" } end, "a pattern needs a doc", "S.string refuses a pattern without the doc a user reads")
t.raises(function() recipe.validate({}, {}, {}) end, "schema must be built", "validate refuses a plain table schema")

t.done()
