-- The allow-listed environment recipes, tenant modules and their callbacks run
-- in (redis-style: what is not listed here does not exist for a recipe), plus
-- the resource limits of sf.sandbox.core (engine/sandbox.c), re-exported.
--
--   local sandbox = require "sf.sandbox"
--   local box = sandbox.new{ dir = "examples", name = "examples/import.lua" }
--   local fn, err = box:load(source, "@examples/import.lua")  -- text only, box env
--   local ok, r = box:run(fn)                  -- under the CPU deadline (cpu_ms)
--   local m = box:require("mappings.salesforce_leads")       -- as the recipe would
--   local cb = sandbox.callback(recipe_fn, 200) -- cb(...) -> true, ... | false, err
--   sandbox.secret(s), sandbox.is_secret(v), sandbox.reveal(v)
--   sandbox.read_file(dir, relpath), sandbox.read_secret_file(dir, relpath)
--   sandbox.configure{ cpu_ms = N, memory_mb = N, debug = bool }
--
-- What a recipe sees: assert error ipairs next pairs pcall xpcall select
-- tonumber tostring type rawequal rawlen setmetatable getmetatable load
-- require _G _VERSION, copies of string (no dump), table, math, utf8,
-- os = {time, clock, date, difftime}, and the sf API:
--   sf.env(name) -> string | nil          sf.secret_env(name) -> secret | nil
--   sf.secret_file(relpath) -> secret     sf.read_file(relpath) -> string
--   sf.log(fmt, ...)   sf.now() -> epoch seconds   sf.json.encode/decode
--   sf.auth_from_env(flow?) -> the auth table from SF_* environment variables
-- Every table the engine hands a recipe (the globals included) is a read-only
-- proxy with a locked metatable (sandbox.readonly, the one proxy the engine
-- has); each recipe gets fresh ones.
local core = require "sf.sandbox.core"
local log = require "sf.log"
local cjson_safe = require "cjson.safe"

local M = {}
for k, v in pairs(core) do M[k] = v end

M.DEFAULT_CPU_MS = 5000
M.cpu_ms = M.DEFAULT_CPU_MS

-- Options from the command line: cpu_ms (budget of a recipe load and of each
-- callback), memory_mb (cap on the whole Lua heap), debug (tracebacks).
function M.configure(opts)
  if opts.cpu_ms ~= nil then
    assert(math.type(opts.cpu_ms) == "integer" and opts.cpu_ms > 0, "sf.sandbox.configure: cpu_ms must be a positive integer")
    M.cpu_ms = opts.cpu_ms
  end
  if opts.memory_mb ~= nil then
    assert(math.type(opts.memory_mb) == "integer" and opts.memory_mb > 0, "sf.sandbox.configure: memory_mb must be a positive integer")
    core.set_memory_limit(opts.memory_mb * 1024 * 1024)
  end
  if opts.debug ~= nil then core.set_traceback(opts.debug) end
end

-- ---- read-only proxies ----

local function locked(what)
  return function(_, k)
    error(string.format("%s is read-only (cannot set %s)", what, type(k) == "string" and k or "[" .. type(k) .. "]"), 2)
  end
end

-- The one read-only proxy: a view of t whose reads, pairs and # go to t;
-- writes raise "<what> is read-only (cannot set k)" (or call on_write); the
-- metatable is locked, so t itself is never reachable through the view.
-- opts.deep: tables read through the view are views too (a user handed to
-- recipe functions); opts.on_write(view, k, v) replaces the write error.
local function readonly(t, what, opts)
  local deep = opts and opts.deep
  local function view(v)
    if deep and type(v) == "table" then return readonly(v, what, opts) end
    return v
  end
  return setmetatable({}, {
    __index = deep and function(_, k) return view(t[k]) end or t,
    __newindex = opts and opts.on_write or locked(what),
    __pairs = function()
      local k
      return function()
        local v
        k, v = next(t, k)
        return k, view(v)
      end
    end,
    __len = function() return #t end,
    __metatable = "locked",
  })
end
M.readonly = readonly

local function copy(t, skip)
  local c = {}
  for k, v in pairs(t) do
    if not (skip and skip[k]) then c[k] = v end
  end
  return c
end

-- ---- secrets ----

-- secret proxy -> the string; weak so dropped secrets go away. Private to
-- this module: only the engine can reveal a secret.
local secret_values = setmetatable({}, { __mode = "k" })

local function opaque(_, _) error("a secret value is opaque: pass it where the engine expects a secret", 2) end

local secret_mt = {
  __tostring = function() return "(redacted)" end,
  __concat = function() error("a secret value cannot be concatenated", 2) end,
  __index = opaque,
  __newindex = opaque,
  __len = opaque,
  __name = "sf.secret",
  __metatable = "sf.secret",
}

function M.secret(s)
  if type(s) ~= "string" then error("sf.sandbox.secret: value must be a string", 2) end
  local v = setmetatable({}, secret_mt)
  secret_values[v] = s
  log.add_secret(s)
  return v
end

function M.is_secret(v)
  return secret_values[v] ~= nil
end

-- The string inside a secret; plain strings and nil pass through.
function M.reveal(v)
  local s = secret_values[v]
  if s ~= nil then return s end
  if v == nil or type(v) == "string" then return v end
  error("sf.sandbox.reveal: expected a secret or a string, got " .. type(v), 2)
end

-- ---- files under a directory ----

-- Resolves relpath under dir: no absolute paths, no '..', and the real path
-- (symlinks resolved) must stay under the real dir. Returns the real path,
-- or nil, message, code ("REFUSED" for an escape attempt).
function M.confine(dir, relpath)
  if type(relpath) ~= "string" or relpath == "" then
    return nil, "path must be a non-empty string", "REFUSED"
  end
  if relpath:find("\0", 1, true) then return nil, "path contains a NUL byte", "REFUSED" end
  if relpath:sub(1, 1) == "/" then
    return nil, "absolute paths are not allowed (paths are relative to the recipe directory)", "REFUSED"
  end
  for part in relpath:gmatch("[^/]+") do
    if part == ".." then
      return nil, "'..' is not allowed (paths stay inside the recipe directory)", "REFUSED"
    end
  end
  local root, err, code = core.realpath(dir)
  if not root then return nil, err, code end
  local full, _, code2 = core.realpath(root .. "/" .. relpath)
  if not full then
    return nil, code2 == "ENOENT" and "no such file in the recipe directory" or "cannot resolve the path", code2
  end
  local prefix = root == "/" and "/" or root .. "/"
  if full:sub(1, #prefix) ~= prefix then
    return nil, "resolves outside the recipe directory (a symlink?)", "REFUSED"
  end
  return full
end

-- Reads dir/relpath (see confine). Returns the bytes or nil, message, code;
-- messages name the path as given.
function M.read_file(dir, relpath)
  local full, err, code = M.confine(dir, relpath)
  if not full then return nil, string.format("%q: %s", tostring(relpath), err), code end
  local f, oerr = io.open(full, "rb")
  if not f then return nil, string.format("%q: %s", relpath, oerr), "EIO" end
  local data, rerr = f:read("a")
  f:close()
  if not data then return nil, string.format("%q: %s", relpath, tostring(rerr)), "EIO" end
  return data
end

-- A file's content as a secret; one trailing newline is dropped.
function M.read_secret_file(dir, relpath)
  local data, err, code = M.read_file(dir, relpath)
  if not data then return nil, err, code end
  return M.secret((data:gsub("\r?\n$", "")))
end

-- ---- running recipe code ----

-- Errors leaving the sandbox are strings: a table error object could carry
-- metamethods (recipe code) the engine would run outside the deadline.
local function clean_error(err)
  if type(err) == "string" then return err end
  return "(error object is a " .. type(err) .. " value)"
end

local function finish(ok, ...)
  if ok then return true, ... end
  return false, clean_error((...))
end

-- fn(...) under a budget (ms, default cpu_ms): true, ... | false, message
function M.run(fn, budget_ms, ...)
  return finish(core.call(budget_ms or M.cpu_ms, fn, ...))
end

-- Wraps a recipe callback for the engine: cb(...) -> true, ... | false, err.
function M.callback(fn, budget_ms)
  if type(fn) ~= "function" then error("sf.sandbox.callback: fn must be a function", 2) end
  return function(...)
    return finish(core.call(budget_ms or M.cpu_ms, fn, ...))
  end
end

-- Calls a recipe callback once with the default budget.
function M.call_callback(fn, ...)
  return finish(core.call(M.cpu_ms, fn, ...))
end

-- ---- the environment ----

local BASE = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
  "tonumber", "tostring", "type", "rawequal", "rawlen", "getmetatable", "_VERSION",
}

-- Library names a recipe may not require, whatever files sit next to it.
local RESERVED = {
  string = true, table = true, math = true, utf8 = true, os = true, io = true,
  debug = true, coroutine = true, package = true, _G = true, _ENV = true,
  cjson = true, sf = true, mappings = true,
}

-- A handler called for an error the deadline hook raised runs with hooks off
-- (inside the hook), so it could loop forever: once the deadline has passed,
-- the recipe's handler is skipped.
local expired = core.expired
local function safe_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
  end
  return xpcall(f, function(e)
    if expired() then return e end
    return handler(e)
  end, ...)
end

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in a recipe", 2)
  end
  return setmetatable(t, mt)
end

local Box = {}
Box.__index = Box

local function describe_name(name)
  return string.format("require %q", tostring(name))
end

-- require as a recipe sees it: "mappings.<name>" (compiled-in default
-- mappings) and modules in the recipe's own directory, both loaded in the
-- recipe's environment; anything else is refused.
local function make_require(box)
  local loaded, loading = {}, {}
  return function(name)
    if type(name) ~= "string" then
      error("require: module name must be a string", 2)
    end
    local v = loaded[name]
    if v ~= nil then return v end
    if loading[name] then error(describe_name(name) .. ": circular require", 2) end
    local source, chunkname
    local top = name:match("^([^.]*)")
    if name:match("^mappings%.[%w_]+$") then
      source, chunkname = core.embedded(name)
      if not source then error(describe_name(name) .. ": no such default mapping", 2) end
    elseif RESERVED[top] or not name:match("^[%w_]+$") and not name:match("^[%w_]+[%w_.]*[%w_]$")
        or name:find("..", 1, true) then
      error(describe_name(name) .. ": not allowed in a recipe", 2)
    else
      local rel = name:gsub("%.", "/") .. ".lua"
      local err, code
      source, err, code = M.read_file(box.dir, rel)
      if not source then
        if code == "ENOENT" then
          error(string.format("%s: not allowed in a recipe (no module %s in the recipe directory)", describe_name(name), rel), 2)
        end
        error(describe_name(name) .. ": " .. err, 2)
      end
      chunkname = "@" .. (box.dir == "." and rel or box.dir .. "/" .. rel)
    end
    local fn, lerr = load(source, chunkname, "t", box.env)
    if not fn then error(lerr, 0) end
    loading[name] = true
    local ok, res = pcall(fn, name)
    loading[name] = nil
    if not ok then error(res, 0) end
    if res == nil then res = true end
    loaded[name] = res
    return res
  end
end

-- Environment variable names whose values sf.env refuses to hand out in clear.
local SECRET_WORDS = { "PASSWORD", "SECRET", "TOKEN", "PASSPHRASE", "PRIVATE_KEY", "CREDENTIAL" }

local function make_sf(box)
  local dir = box.dir
  local function need_string(api, v)
    if type(v) ~= "string" then
      error(string.format("%s: expected a string, got %s", api, M.is_secret(v) and "a secret" or type(v)), 3)
    end
  end
  local function confined_read(api, relpath)
    need_string(api, relpath)
    local data, err, code = M.read_file(dir, relpath)
    if not data and code == "REFUSED" then error(api .. ": " .. err, 3) end
    return data, err and (api .. ": " .. err), code
  end
  local api = {
    env = function(name)
      need_string("sf.env", name)
      -- A value that is a secret by its name only comes as a secret value,
      -- so it can never be logged or written out by mistake.
      local upper = name:upper()
      for _, word in ipairs(SECRET_WORDS) do
        if upper:find(word, 1, true) then
          error(string.format("sf.env: %s looks like a secret; read it with sf.secret_env", name), 2)
        end
      end
      return os.getenv(name)
    end,
    secret_env = function(name)
      need_string("sf.secret_env", name)
      local v = os.getenv(name)
      if v == nil then return nil end
      return M.secret(v)
    end,
    read_file = function(relpath)
      return confined_read("sf.read_file", relpath)
    end,
    secret_file = function(relpath)
      local data, err, code = confined_read("sf.secret_file", relpath)
      if not data then return nil, err, code end
      return M.secret((data:gsub("\r?\n$", "")))
    end,
    log = function(fmt, ...)
      local msg
      if select("#", ...) == 0 then msg = tostring(fmt) else msg = string.format(fmt, ...) end
      log.info("%s", msg)
    end,
    now = core.now,
    -- The auth table from the conventional environment variables, so a
    -- recipe names no secret and no host (sf.credentials.from_env: SF_*,
    -- SFDX_AUTH_URL; flow nil picks the flow the variables give).
    auth_from_env = function(flow)
      if flow ~= nil and type(flow) ~= "string" then error("sf.auth_from_env: flow must be a string", 2) end
      return require("sf.credentials").from_env(flow, M.secret)
    end,
    json = readonly({ encode = cjson_safe.encode, decode = cjson_safe.decode }, "sf.json"),
  }
  return readonly(api, "sf")
end

-- A fresh environment for one recipe. opts.dir: the recipe's directory
-- (sf.read_file, require of tenant modules); opts.name: the recipe path.
function M.new(opts)
  local box = setmetatable({ dir = opts.dir or ".", name = opts.name or "recipe" }, Box)
  local g = {}
  for _, k in ipairs(BASE) do g[k] = _G[k] end
  g.setmetatable = safe_setmetatable
  g.xpcall = safe_xpcall
  g.string = readonly(copy(string, { dump = true }), "string")
  g.table = readonly(copy(table), "table")
  g.math = readonly(copy(math), "math")
  g.utf8 = readonly(copy(utf8), "utf8")
  g.os = readonly({ time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }, "os")
  g.load = function(chunk, chunkname, _, _)
    if type(chunk) == "string" and chunk:byte(1) == 27 then
      return nil, "load: binary chunks are not allowed in a recipe"
    end
    if type(chunk) ~= "string" and type(chunk) ~= "function" then
      error("load: chunk must be a string or a function", 2)
    end
    return load(chunk, chunkname, "t", box.env)
  end
  g.require = make_require(box)
  g.sf = make_sf(box)
  local env = readonly(g, "the recipe environment", {
    on_write = function(_, k)
      error(string.format("cannot set global %s: the recipe environment is read-only (use local)", tostring(k)), 2)
    end,
  })
  g._G = env
  box.env = env
  box.require_fn = g.require
  return box
end

-- Compiles text in the box's environment (binary chunks refused).
function Box:load(source, chunkname)
  return load(source, chunkname, "t", self.env)
end

-- fn(...) under the deadline: true, ... | false, message
function Box:run(fn, budget_ms, ...)
  return M.run(fn, budget_ms, ...)
end

-- require as the recipe would (e.g. a default mapping loaded in the sandbox),
-- under the deadline: the module, or nil, message.
function Box:require(name)
  local ok, res = M.run(self.require_fn, nil, name)
  if not ok then return nil, res end
  return res
end

return M
