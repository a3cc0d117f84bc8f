-- Recipes: loading one in the sandbox and validating it against a declarative
-- schema (the Kong plugin-schema model). Errors name the file, the line and
-- the dotted key:  examples/import.lua:14: objects.Lead.sincee: unknown key (known: ...)
--
--   local recipe = require "sf.recipe"
--   local r, dir, source, box = recipe.load(path)    -- recipe errors exit 2
--   local S = recipe.schema
--   local schema = S.record {
--     job  = S.string { required = true, enum = { "import" } },
--     name = S.string { required = true, pattern = "^[%w_%-]+$", doc = "..." },
--     size = S.integer { min = 1, max = 2000, default = 2000 },
--     auth = S.record({ user = S.string {}, password = S.secret {} }, { required = true, check = fn }),
--     objects = S.map(S.string {}, S.one_of { S.boolean {}, S.record { since = S.string {} } }),
--     fields = S.list(S.string {}, { min = 1, max = 100 }),
--     transform = S.func {},
--   }
--   local clean = recipe.validate(r, schema, ctx)   -- ctx = { path =, source = }
--   error(recipe.error_at(ctx, "auth.private_key_file", "cannot read the key"), 0)
--
-- Schema constructors, each taking an options table (all optional):
--   S.string{required, default, enum = {...}, pattern = "lua pattern", check, doc}
--   S.integer{min, max, ...}  S.number{min, max, ...}  S.boolean{}  S.func{}  S.any{}
--   S.secret{plain = true}    a secret (sf.secret_env / sf.secret_file) or, unless
--                             plain = false, a literal string (made a secret)
--   S.list(item, {min, max, ...})   S.map(key_schema, value_schema, {...})
--   S.record(fields, {required, default, check})  fields: { name = schema, ... }
--                             or ordered: { { "name", schema }, ... }
--   S.one_of{ schema, schema, ... }  the first alternative that accepts the value
-- check = function(normalised_value) return ok, message end runs last.
--
-- validate() reads recipe tables with raw access only (no metamethods run)
-- and returns a fresh plain copy with defaults filled in. Errors are tables
-- { recipe_error = true, message = ..., exit_code = 2 } (tostring gives the
-- message); main.c prints the message and exits with exit_code.
local sandbox = require "sf.sandbox"

local M = {}

-- ---- errors ----

local error_mt = { __tostring = function(e) return e.message end }

function M.error(message, exit_code)
  return setmetatable({ recipe_error = true, message = message, exit_code = exit_code or 2 }, error_mt)
end

function M.is_error(e)
  return getmetatable(e) == error_mt
end

-- ---- locating a key in the recipe source ----

local function line_of(source, pos)
  local n = 1
  for _ in source:sub(1, pos - 1):gmatch("\n") do n = n + 1 end
  return n
end

-- Position just after the table constructor that starts at or after pos
-- (pos at '{'), skipping strings and comments; nil when unbalanced.
local function table_end(source, pos)
  local depth, i, n = 0, pos, #source
  while i <= n do
    local c = source:sub(i, i)
    if c == "{" then
      depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return i end
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = source:sub(j, j)
        if d == "\\" then j = j + 1 elseif d == c or d == "\n" then break end
        j = j + 1
      end
      i = j
    elseif c == "[" and source:match("^%[=*%[", i) then
      local eq = source:match("^%[(=*)%[", i)
      local _, e = source:find("]" .. eq .. "]", i, true)
      if not e then return nil end
      i = e
    elseif c == "-" and source:sub(i, i + 1) == "--" then
      local eq = source:match("^%-%-%[(=*)%[", i)
      if eq then
        local _, e = source:find("]" .. eq .. "]", i, true)
        if not e then return nil end
        i = e
      else
        local e = source:find("\n", i, true)
        if not e then return nil end
        i = e
      end
    end
    i = i + 1
  end
  return nil
end

local function escape(s)
  return (s:gsub("%W", "%%%0"))
end

-- Finds `key =` or `["key"] =` in source[from, to]; skip earlier matches first.
-- Returns the start and end positions.
local function find_key(source, key, from, to, skip)
  local k = escape(key)
  local pats = { "%f[%w_]" .. k .. "%s*=%f[^=]", "%[%s*[\"']" .. k .. "[\"']%s*%]%s*=%f[^=]" }
  local pos = from
  local a, b
  for _ = 0, skip do
    a, b = nil, nil
    for _, p in ipairs(pats) do
      local x, y = source:find(p, pos)
      if x and x <= to and (not a or x < a) then a, b = x, y end
    end
    if not a then return nil end
    pos = b + 1
  end
  return a, b
end

-- The position of the top-level `return`: the last one at the start of a
-- line, preferring column 0 (returns inside functions are indented).
local function return_pos(source)
  local function last(pat, first_pat)
    local best, pos = nil, 1
    while true do
      local a, b = source:find(pat, pos)
      if not a then break end
      best, pos = a + 1, b + 1
    end
    if not best and source:find(first_pat) then best = 1 end
    return best
  end
  return last("\nreturn%f[^%w_]", "^return%f[^%w_]") or last("\n[ \t]*return%f[^%w_]", "^[ \t]*return%f[^%w_]")
end

local function split_path(path)
  if type(path) == "table" then return path end
  local keys = {}
  for part in tostring(path):gmatch("[^.]+") do
    local name, idx = part:match("^(.-)%[(%d+)%]$")
    if name then
      if name ~= "" then keys[#keys + 1] = name end
      keys[#keys + 1] = tonumber(idx)
    else
      keys[#keys + 1] = part
    end
  end
  return keys
end

-- Best-effort line of the key path in source; nil when unknown.
function M.locate(source, path)
  if type(source) ~= "string" then return nil end
  local keys = split_path(path)
  local start = return_pos(source)
  if not start then return nil end
  local line = line_of(source, start)
  local from, to = start, #source
  local skip, first = 0, true
  for _, key in ipairs(keys) do
    if type(key) == "number" then
      skip = key - 1
    else
      local a, b = find_key(source, tostring(key), from, to, skip)
      if not a and first then -- the table may be built before the return
        a, b = find_key(source, tostring(key), 1, #source, skip)
      end
      first, skip = false, 0
      if not a then break end
      line = line_of(source, a)
      local open = source:match("^%s*(){", b + 1)
      if not open then -- `key = name`: the table a local of that name holds
        local name = source:match("^%s*([%a_][%w_]*)%s*[,;}%s]", b + 1)
        if name then
          open = source:match("%f[%w_]" .. escape(name) .. "%s*=%s*(){")
        end
      end
      if open then
        from, to = open, table_end(source, open) or #source
      else
        from, to = b + 1, b + 1 -- a scalar or an expression: deeper keys are elsewhere
      end
    end
  end
  return line
end

local function path_string(keys)
  local out = {}
  for i, k in ipairs(keys) do
    if type(k) == "number" then
      out[#out + 1] = "[" .. k .. "]"
    elseif type(k) == "string" and k:match("^[%a_][%w_]*$") then
      out[#out + 1] = (i > 1 and "." or "") .. k
    else
      out[#out + 1] = string.format("[%q]", tostring(k))
    end
  end
  return table.concat(out)
end
M.path_string = path_string

-- The error object for a problem at a key path of the recipe in ctx
-- (ctx.path, ctx.source). path: "a.b.c" or a list of keys; nil/"" for the
-- recipe as a whole. Returns it; the caller raises it with error(e, 0).
function M.error_at(ctx, path, message, exit_code)
  ctx = ctx or {}
  local keys = split_path(path or {})
  local where = ctx.path or "recipe"
  local line = M.locate(ctx.source, keys)
  if line then where = where .. ":" .. line end
  local p = path_string(keys)
  return M.error(where .. ": " .. (p ~= "" and (p .. ": ") or "") .. message, exit_code)
end

-- ---- schemas ----

local schema_mt = { __name = "sf.recipe.schema" }

local function is_schema(v)
  return getmetatable(v) == schema_mt
end
M.is_schema = is_schema

local function node(kind, opts, extra)
  opts = opts or {}
  if type(opts) ~= "table" or is_schema(opts) then
    error("sf.recipe.schema." .. kind .. ": options must be a table", 3)
  end
  local n = setmetatable({ kind = kind }, schema_mt)
  for k, v in pairs(opts) do n[k] = v end
  for k, v in pairs(extra or {}) do n[k] = v end
  return n
end

local S = {}
M.schema = S

function S.string(opts)
  -- A user reads the doc when a value does not match, never the Lua pattern.
  if type(opts) == "table" and opts.pattern and not opts.doc then
    error("sf.recipe.schema.string: a pattern needs a doc (what a user reads when the value does not match)", 2)
  end
  return node("string", opts)
end
function S.integer(opts) return node("integer", opts) end
function S.number(opts) return node("number", opts) end
function S.boolean(opts) return node("boolean", opts) end
function S.func(opts) return node("function", opts) end
function S.any(opts) return node("any", opts) end
function S.secret(opts)
  local n = node("secret", opts)
  if n.plain == nil then n.plain = true end
  return n
end

function S.list(item, opts)
  if not is_schema(item) then error("sf.recipe.schema.list: item must be a schema", 2) end
  return node("list", opts, { item = item })
end

function S.map(key, value, opts)
  if not is_schema(key) or not is_schema(value) then
    error("sf.recipe.schema.map: key and value must be schemas", 2)
  end
  return node("map", opts, { key = key, value = value })
end

function S.record(fields, opts)
  if type(fields) ~= "table" or is_schema(fields) then
    error("sf.recipe.schema.record: fields must be a table of schemas", 2)
  end
  local names, by_name = {}, {}
  if #fields > 0 then -- ordered form: { { "name", schema }, ... }
    for i, f in ipairs(fields) do
      if type(f) ~= "table" or type(f[1]) ~= "string" or not is_schema(f[2]) then
        error("sf.recipe.schema.record: field " .. i .. " must be { name, schema }", 2)
      end
      names[#names + 1] = f[1]
      by_name[f[1]] = f[2]
    end
  else
    for k, v in pairs(fields) do
      if type(k) ~= "string" or not is_schema(v) then
        error("sf.recipe.schema.record: field " .. tostring(k) .. " must be a schema", 2)
      end
      names[#names + 1] = k
      by_name[k] = v
    end
    table.sort(names)
  end
  return node("record", opts, { fields = by_name, names = names })
end

function S.one_of(alternatives, opts)
  if type(alternatives) ~= "table" or #alternatives == 0 then
    error("sf.recipe.schema.one_of: expected a list of schemas", 2)
  end
  for i, a in ipairs(alternatives) do
    if not is_schema(a) then error("sf.recipe.schema.one_of: alternative " .. i .. " is not a schema", 2) end
  end
  return node("one_of", opts, { alternatives = alternatives })
end

-- ---- validation ----

local EXPECT = {
  string = "a string", integer = "an integer", number = "a number", boolean = "a boolean",
  ["function"] = "a function", secret = "a secret or a string", list = "a list",
  map = "a table", record = "a table",
}

local function vtype(v)
  if sandbox.is_secret(v) then return "secret" end
  return type(v)
end

local function show(v)
  local t = vtype(v)
  if t == "string" then
    if #v > 60 then v = v:sub(1, 57) .. "..." end
    return string.format("%q", v)
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  end
  return t
end

local function deep_copy(v)
  if type(v) ~= "table" or sandbox.is_secret(v) then return v end
  local c = {}
  for k, x in next, v do c[k] = deep_copy(x) end
  return c
end

-- Edit distance, for "did you mean".
local function distance(a, b)
  if math.abs(#a - #b) > 3 then return 99 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The candidate closest to word (edit distance < 3, case-insensitive), or nil.
function M.closest(word, candidates)
  local best, bestd = nil, 3
  local w = word:lower()
  for _, name in ipairs(candidates) do
    local d = distance(w, name:lower())
    if d < bestd then best, bestd = name, d end
  end
  return best
end

local validate

-- Raises a recipe error at keys (a list; copied).
local function fail(st, keys, message)
  error(M.error_at(st.ctx, { table.unpack(keys) }, message), 0)
end

local function push(keys, k)
  local c = { table.unpack(keys) }
  c[#c + 1] = k
  return c
end

local function check_common(st, schema, v, keys)
  if schema.enum then
    local found = false
    for _, e in ipairs(schema.enum) do
      if e == v then found = true break end
    end
    if not found then
      local names = {}
      for _, e in ipairs(schema.enum) do names[#names + 1] = show(e) end
      fail(st, keys, "must be one of " .. table.concat(names, ", ") .. " (got " .. show(v) .. ")")
    end
  end
  if schema.min and type(v) == "number" and v < schema.min then
    fail(st, keys, "must be at least " .. schema.min .. " (got " .. show(v) .. ")")
  end
  if schema.max and type(v) == "number" and v > schema.max then
    fail(st, keys, "must be at most " .. schema.max .. " (got " .. show(v) .. ")")
  end
end

local function run_check(st, schema, v, keys)
  if schema.check then
    local ok, msg = schema.check(v)
    if not ok then fail(st, keys, msg or "invalid value") end
  end
end

local function expect(st, schema, v, keys)
  fail(st, keys, "expected " .. (EXPECT[schema.kind] or schema.kind) .. ", got " .. show(v))
end

local function is_list(v)
  local n = rawlen(v)
  local count = 0
  for k in next, v do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false, k end
    count = count + 1
  end
  return count == n
end

-- Which alternative of a one_of should explain a failure: the first whose
-- kind takes values of v's type.
local ACCEPTS = {
  string = { string = true }, integer = { number = true }, number = { number = true },
  boolean = { boolean = true }, ["function"] = { ["function"] = true },
  secret = { secret = true, string = true }, list = { table = true }, map = { table = true },
  record = { table = true }, any = {},
}

validate = function(st, schema, v, keys)
  local kind = schema.kind
  if kind == "any" then
    run_check(st, schema, v, keys)
    return v
  elseif kind == "string" then
    if type(v) ~= "string" then expect(st, schema, v, keys) end
    if schema.pattern and not v:find(schema.pattern) then
      fail(st, keys, "invalid value " .. show(v) .. " (" .. schema.doc .. ")")
    end
  elseif kind == "integer" then
    local i = math.type(v) and math.tointeger(v)
    if not i then expect(st, schema, v, keys) end
    v = i
  elseif kind == "number" then
    if type(v) ~= "number" then expect(st, schema, v, keys) end
  elseif kind == "boolean" then
    if type(v) ~= "boolean" then expect(st, schema, v, keys) end
  elseif kind == "function" then
    if type(v) ~= "function" then expect(st, schema, v, keys) end
  elseif kind == "secret" then
    if not sandbox.is_secret(v) then
      if type(v) == "string" and schema.plain then
        v = sandbox.secret(v)
      else
        fail(st, keys, "expected a secret (sf.secret_env or sf.secret_file)" ..
          (schema.plain and " or a string" or "") .. ", got " .. show(v))
      end
    end
  elseif kind == "list" then
    if type(v) ~= "table" or sandbox.is_secret(v) then expect(st, schema, v, keys) end
    local ok, bad = is_list(v)
    if not ok then
      fail(st, keys, "expected a list (keys 1..n), found key " .. (bad ~= nil and show(bad) or "out of sequence"))
    end
    local n = rawlen(v)
    if schema.min and n < schema.min then
      fail(st, keys, "needs at least " .. schema.min .. " item" .. (schema.min == 1 and "" or "s") .. " (got " .. n .. ")")
    end
    if schema.max and n > schema.max then
      fail(st, keys, "takes at most " .. schema.max .. " item" .. (schema.max == 1 and "" or "s") .. " (got " .. n .. ")")
    end
    local out = {}
    for i = 1, n do out[i] = validate(st, schema.item, rawget(v, i), push(keys, i)) end
    run_check(st, schema, out, keys)
    return out
  elseif kind == "map" then
    if type(v) ~= "table" or sandbox.is_secret(v) then expect(st, schema, v, keys) end
    local out = {}
    for k, x in next, v do
      local ck = validate(st, schema.key, k, push(keys, k))
      out[ck] = validate(st, schema.value, x, push(keys, k))
    end
    run_check(st, schema, out, keys)
    return out
  elseif kind == "record" then
    if type(v) ~= "table" or sandbox.is_secret(v) then expect(st, schema, v, keys) end
    for k in next, v do
      if type(k) ~= "string" then
        fail(st, keys, "unexpected " .. vtype(k) .. " key " .. show(k) .. " (a record has named keys only)")
      end
      if not schema.fields[k] then
        local best = M.closest(k, schema.names)
        fail(st, push(keys, k), "unknown key" .. (best and (", did you mean " .. best .. "?") or "") ..
          " (known: " .. table.concat(schema.names, ", ") .. ")")
      end
    end
    local out = {}
    for _, name in ipairs(schema.names) do
      local fs = schema.fields[name]
      local x = rawget(v, name)
      if x == nil then
        if fs.default ~= nil then
          out[name] = deep_copy(fs.default)
        elseif fs.required then
          fail(st, push(keys, name), "required key is missing")
        end
      else
        out[name] = validate(st, fs, x, push(keys, name))
      end
    end
    run_check(st, schema, out, keys)
    return out
  elseif kind == "one_of" then
    local first_err, typed_err
    local vt = vtype(v)
    for _, alt in ipairs(schema.alternatives) do
      local ok, res = pcall(validate, st, alt, v, keys)
      if ok then
        run_check(st, schema, res, keys)
        return res
      end
      if not M.is_error(res) then error(res, 0) end
      first_err = first_err or res
      if not typed_err and ACCEPTS[alt.kind] and ACCEPTS[alt.kind][vt] then typed_err = res end
    end
    if typed_err then error(typed_err, 0) end
    local names = {}
    for _, alt in ipairs(schema.alternatives) do names[#names + 1] = EXPECT[alt.kind] or alt.kind end
    fail(st, keys, "expected " .. table.concat(names, " or ") .. ", got " .. show(v))
  else
    error("sf.recipe.validate: unknown schema kind " .. tostring(kind))
  end
  check_common(st, schema, v, keys)
  run_check(st, schema, v, keys)
  return v
end

-- Validates value against schema; returns the normalised copy or raises a
-- recipe error. ctx: { path = recipe file, source = its text, keys = prefix }.
function M.validate(value, schema, ctx)
  if not is_schema(schema) then error("sf.recipe.validate: schema must be built with recipe.schema", 2) end
  local st = { ctx = ctx or {} }
  local keys = (ctx and ctx.keys) and { table.unpack(ctx.keys) } or {}
  if value == nil then
    if schema.default ~= nil then return deep_copy(schema.default) end
    if schema.required then fail(st, keys, "required value is missing") end
    return nil
  end
  return validate(st, schema, value, keys)
end

-- ---- loading ----

-- Loads the recipe at path in a fresh sandbox. Returns the recipe table (as
-- the recipe returned it: validate it before use), its directory, its source
-- and the sandbox. A missing file, a syntax error or a non-table result is a
-- recipe error (exit 2); an error raised by the recipe's code is a plain
-- error (exit 1); both name the file and line.
function M.load(path)
  local f, oerr = io.open(path, "rb")
  if not f then error(M.error("cannot read the recipe: " .. tostring(oerr)), 0) end
  local source, rerr = f:read("a")
  f:close()
  if not source then error(M.error("cannot read the recipe " .. path .. ": " .. tostring(rerr)), 0) end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local ctx = { path = path, source = source }
  local box = sandbox.new { dir = dir, name = path }
  local chunk, lerr = box:load(source, "@" .. path)
  if not chunk then error(M.error(lerr), 0) end
  local ok, value = box:run(chunk)
  if not ok then
    if not value:find("^" .. escape(path) .. ":") then value = path .. ": " .. value end
    error(value, 0)
  end
  if type(value) ~= "table" or sandbox.is_secret(value) then
    error(M.error_at(ctx, nil, "a recipe must return a table (got " .. show(value) .. ")"), 0)
  end
  return value, dir, source, box
end

return M
