-- Sandbox escape attempts, one test each: every one is refused with a clear
-- message and the engine keeps working afterwards. Run: sfengine --test FILE
local t = require "tests.tap"
local sandbox = require "sf.sandbox"
local core = require "sf.sandbox.core"
local recipe = require "sf.recipe"

-- a scratch recipe directory
local tmp = t.tmpdir("sub")
local function write(name, data) return t.write(tmp .. "/" .. name, data) end
write("data.txt", "hello from the recipe dir\n")
write("sub/inner.txt", "inner\n")
write("lookup.lua", "local M = {} M.answer = 42 return M\n")
write("sub/util.lua", "return { twice = function(x) return 2 * x end }\n")
write("escape.lua", "local io = require 'io' return io\n")
assert(os.execute("ln -s /etc/passwd '" .. tmp .. "/passwd_link'"))
assert(os.execute("ln -s /etc '" .. tmp .. "/etc_link'"))

-- Runs recipe source in a fresh sandbox under budget_ms: ok, result | false, err.
local function run(src, budget_ms, ...)
  local box = sandbox.new { dir = tmp, name = tmp .. "/r.lua" }
  local fn, err = box:load(src, "=recipe")
  if not fn then return false, err end
  return box:run(fn, budget_ms or 2000, ...)
end

-- Expects src to fail with a message containing needle.
local function refused(src, needle, name, budget_ms)
  local ok, err = run(src, budget_ms)
  if ok then return t.ok(false, name, "was not refused") end
  return t.ok(tostring(err):find(needle, 1, true) ~= nil, name, "message: " .. tostring(err))
end

local function engine_alive(name)
  local ok, v = run("return ('abc'):upper() .. string.format('%d', 7)")
  t.ok(ok and v == "ABC7", "engine still works after: " .. name, tostring(v))
end

-- globals and metatables
refused("setmetatable(_G, {__index = function() return 1 end})", "cannot change a protected metatable",
  "setmetatable(_G, ...) is refused")
refused("setmetatable(_G, nil)", "cannot change a protected metatable", "setmetatable(_G, nil) is refused")
refused("getmetatable('').__index = { upper = function() return 'pwned' end }", "string metatable is read-only",
  "the string metatable cannot be altered")
refused("getmetatable('').__index.upper = nil", "attempt to index", "the string methods table is not reachable")
t.eq(("abc"):upper(), "ABC", "string methods unchanged for the engine after the attempt")
refused("string.upper = function() return 'pwned' end", "string is read-only", "the string library copy is read-only")
refused("x = 1", "cannot set global x", "creating a global is refused")
refused("pairs = function() end", "cannot set global pairs", "replacing a global function is refused")
refused("rawset(_G, 'x', 1)", "attempt to call a nil value (global 'rawset')", "rawset is not available")
refused("setmetatable({}, {__gc = function() while true do end end})", "__gc metamethods are not allowed",
  "a __gc finalizer (runs outside the deadline) is refused")
do
  local ok, mt = run("return getmetatable(sf), getmetatable(_G), getmetatable(string)")
  t.ok(ok and mt == "locked", "getmetatable of engine tables gives only 'locked'", tostring(mt))
end

-- the engine API table
refused("sf.x = 1", "sf is read-only (cannot set x)", "writing into sf is refused")
refused("sf.log = print", "sf is read-only (cannot set log)", "replacing an sf function is refused")
refused("sf.json.encode = nil", "sf.json is read-only", "writing into sf.json is refused")
do
  local ok, v = run("local n = 0 for k in pairs(sf) do n = n + 1 end return n")
  t.ok(ok and v >= 7, "pairs over sf lists the API", tostring(v))
  local ok2, v2 = run("local f, s = pairs(sf) return s")
  t.ok(ok2 and v2 == nil, "pairs(sf) does not hand out the backing table", tostring(v2))
  local ok3, same = run("return sf")
  local ok4, other = run("return sf")
  t.ok(ok3 and ok4 and same ~= other, "each recipe gets a fresh sf table")
end

-- missing capabilities
refused("os.execute('touch /tmp/sfengine-pwned')", "attempt to call a nil value (field 'execute')",
  "os.execute is not available")
refused("return os.getenv('HOME')", "attempt to call a nil value (field 'getenv')", "os.getenv is not available (sf.env is)")
refused("io.open('/etc/passwd')", "attempt to index a nil value (global 'io')", "io.open is not available")
refused("return io.popen('id')", "global 'io'", "io.popen is not available")
refused("return debug.getregistry()", "global 'debug'", "debug is not available")
refused("return package.loadlib('libc.so.6', 'system')", "global 'package'", "package.loadlib is not available")
refused("return dofile('/etc/passwd')", "global 'dofile'", "dofile is not available")
refused("return loadfile('/etc/passwd')", "global 'loadfile'", "loadfile is not available")
refused("collectgarbage('stop')", "global 'collectgarbage'", "collectgarbage is not available")
do
  local ok, v = run("return string.dump == nil and ('').dump == nil")
  t.ok(ok and v == true, "string.dump is absent, also as a string method", tostring(v))
end

-- require
refused("require 'os'", 'require "os": not allowed in a recipe', "require 'os' is refused")
refused("require 'io'", 'require "io": not allowed in a recipe', "require 'io' is refused")
refused("require 'debug'", 'require "debug": not allowed in a recipe', "require 'debug' is refused")
refused("require 'sf.http'", 'require "sf.http": not allowed in a recipe', "require of an engine module is refused")
refused("require 'cjson'", 'require "cjson": not allowed in a recipe', "require 'cjson' is refused")
refused("require '../x'", "not allowed in a recipe", "require with a path is refused")
refused("require 'sub..util'", "not allowed in a recipe", "require with '..' is refused")
refused("require 'nothere'", "not allowed in a recipe (no module nothere.lua", "require of a missing module names it")
refused("require 'escape'", 'require "io": not allowed in a recipe', "a tenant module is sandboxed too")
do
  local ok, v = run("return require('lookup').answer + require('sub.util').twice(1)")
  t.ok(ok and v == 44, "require of modules in the recipe's own directory works", tostring(v))
  local ok2, v2 = run("return require('lookup') == require('lookup')")
  t.ok(ok2 and v2 == true, "tenant modules are loaded once per recipe", tostring(v2))
  if core.embedded("mappings.salesforce_leads") then
    local ok3, v3 = run("return type(require('mappings.salesforce_leads'))")
    t.ok(ok3 and v3 == "table", "require of a default mapping works", tostring(v3))
  end
  local ok4, v4 = run("return require('mappings.numbers').text(1e16) .. ' ' .. require('mappings.types').string(1e16)")
  t.eq(ok4 and v4, "10000000000000000 10000000000000000",
       "a recipe formats numbers as the engine does: mappings.numbers and mappings.types work in the sandbox")
  refused("require 'mappings.nope'", "no such default mapping", "require of an unknown default mapping is refused")
end

-- bytecode
do
  local bytecode = string.dump(function() return 1 end)
  local box = sandbox.new { dir = tmp }
  local fn = box:load("local code = ... return assert(load(code))", "=recipe")
  local ok, err = box:run(fn, 1000, bytecode)
  t.ok(not ok and err:find("binary chunks are not allowed", 1, true) ~= nil, "load of a bytecode chunk is refused",
    tostring(err))
  local fn2 = box:load("local code = ... local parts = {code} return assert(load(function() return table.remove(parts) end))", "=recipe")
  local ok2, err2 = box:run(fn2, 1000, bytecode)
  t.ok(not ok2 and err2:find("attempt to load a binary chunk", 1, true) ~= nil,
    "load of bytecode through a reader function is refused", tostring(err2))
  t.ok(box:load(bytecode, "=x") == nil, "the engine loads recipe chunks as text only")
  refused("return assert(load('\\27Lua\\84\\0'))", "binary chunks are not allowed", "a \\27Lua string is refused")
  local ok3, v3 = run("return load('return sf')() == sf")
  t.ok(ok3 and v3 == true, "load of text runs in the recipe environment", tostring(v3))
  refused("load('y = 2')()", "cannot set global y", "chunks from load cannot write globals either")
end

-- CPU deadline
do
  local started = os.clock()
  refused("while true do end", "CPU time limit exceeded (100 ms)", "while true do end hits the deadline", 100)
  t.ok(os.clock() - started < 2, "the deadline stops the loop promptly")
  engine_alive("the deadline")
  refused("while true do pcall(function() while true do end end) end", "CPU time limit exceeded",
    "pcall cannot swallow the deadline", 100)
  refused("while true do xpcall(function() while true do end end, function() while true do end end) end",
    "CPU time limit exceeded", "xpcall with a looping handler cannot swallow the deadline", 100)
  refused("local function f() return pcall(f) end while true do f() end", "CPU time limit exceeded",
    "nested pcalls cannot swallow the deadline", 100)
  refused("while true do local ok = pcall(error, 'x') end", "CPU time limit exceeded", "a pcall loop hits the deadline", 100)
  refused("local t = {} for i = 1, 200 do t[i] = i end while true do table.sort(t, function(a, b) return a > b end) end",
    "CPU time limit exceeded", "callbacks from C (table.sort) hit the deadline", 100)
  refused("for i = 1, math.huge do local s = ('x'):rep(10) end", "recipe:1: CPU time limit exceeded",
    "the deadline error names the recipe line", 100)
  engine_alive("pcall loops")

  -- nested calls keep the outer deadline
  local t0 = os.clock()
  local ok, inner_ok, inner_err = core.call(100, function()
    return core.call(60000, function() while true do end end)
  end)
  t.ok(not ok or not inner_ok, "a nested call cannot extend the outer deadline", tostring(inner_err))
  t.ok(os.clock() - t0 < 2, "the nested call stopped at the outer deadline")

  -- no hook left behind: a long engine loop after a timed-out call runs to the end
  local n = 0
  for _ = 1, 3e6 do n = n + 1 end
  t.eq(n, 3000000, "no deadline hook lingers after the call")

  local cb = sandbox.callback(function(x) return x * 2 end, 100)
  local okc, v = cb(21)
  t.ok(okc and v == 42, "sandbox.callback returns true and the results", tostring(v))
  local slow = sandbox.callback(function() while true do end end, 50)
  local okd, e = slow()
  t.ok(not okd and e:find("CPU time limit exceeded (50 ms)", 1, true), "a callback gets its own deadline", tostring(e))
  local oke, e2 = sandbox.call_callback(function() error({ code = 1 }) end)
  t.ok(not oke and e2 == "(error object is a table value)", "table errors leave the sandbox as strings", tostring(e2))
end

-- the watchdog: a recipe stuck inside a C function (the hook cannot run)
do
  write("stuck_test.lua", [[
local core = require "sf.sandbox.core"
core.call(100, function() return ("a"):rep(5000):find(("a-"):rep(15) .. "b") end)
print("not stopped")
]])
  local bin = os.getenv("SFENGINE") or "./sfengine"
  local started = os.time()
  local p = io.popen("'" .. bin .. "' --test '" .. tmp .. "/stuck_test.lua' 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  t.ok(out:find("ran past its CPU deadline inside a C function", 1, true) and out:find("rc=1", 1, true)
    and not out:find("not stopped", 1, true), "a recipe stuck in a C function is stopped by the watchdog", out)
  t.ok(os.time() - started < 30, "the watchdog fires a few seconds after the deadline")
end

-- memory
do
  local limit = core.memory_limit()
  collectgarbage()
  core.set_memory_limit(core.memory_used() + 64 * 1024 * 1024)
  refused("return #string.rep('x', 200 * 1024 * 1024)", "memory limit exceeded (", "string.rep bomb hits the memory limit")
  local ok, v = run("return #string.rep('y', 8 * 1024 * 1024)")
  t.ok(ok and v == 8 * 1024 * 1024, "the engine can allocate again after a string bomb", tostring(v))
  refused("local t = {} for i = 1, 1e9 do t[i] = i end", "memory limit exceeded (", "table growth hits the memory limit", 20000)
  refused("local t = {} for i = 1, 1e9 do t[i] = {i} end", "memory limit exceeded (", "table-of-tables growth hits the memory limit", 20000)
  refused("local s = 'x' while true do s = s .. s end", "memory limit exceeded (", "string doubling hits the memory limit", 20000)
  local okp, vp = run("local ok, e = pcall(string.rep, 'x', 200 * 1024 * 1024) return ok, e")
  t.ok(okp and vp == false, "a recipe can catch its own memory error with pcall", tostring(vp))
  local big = string.rep("z", 16 * 1024 * 1024)
  t.eq(#big, 16 * 1024 * 1024, "the engine allocates again after the bombs")
  big = nil
  core.set_memory_limit(limit)
  engine_alive("memory bombs")
  t.ok(core.memory_used() > 0 and core.memory_limit() == limit, "memory_used and memory_limit report the heap")
end

-- files under the recipe directory
refused("return sf.read_file('../../etc/passwd')", "'..' is not allowed", "sf.read_file refuses '..'")
refused("return sf.read_file('sub/../../x')", "'..' is not allowed", "sf.read_file refuses '..' inside a path")
refused("return sf.read_file('/etc/passwd')", "absolute paths are not allowed", "sf.read_file refuses absolute paths")
refused("return sf.read_file('passwd_link')", "resolves outside the recipe directory", "sf.read_file refuses a symlink out")
refused("return sf.read_file('etc_link/passwd')", "resolves outside the recipe directory",
  "sf.read_file refuses a directory symlink out")
refused("return sf.secret_file('/etc/shadow')", "absolute paths are not allowed", "sf.secret_file refuses absolute paths")
refused("return sf.read_file(42)", "sf.read_file: expected a string, got number", "sf.read_file checks its argument")
do
  local ok, v = run("return sf.read_file('data.txt')")
  t.eq(ok and v, "hello from the recipe dir\n", "sf.read_file reads a file in the recipe directory")
  local ok2, v2 = run("return sf.read_file('sub/inner.txt')")
  t.eq(ok2 and v2, "inner\n", "sf.read_file reads a file in a subdirectory")
  local ok3, v3, e3 = run("return sf.read_file('missing.txt')")
  t.ok(ok3 and v3 == nil and tostring(e3):find("no such file", 1, true), "a missing file is nil, message", tostring(e3))
end

-- secrets
do
  local name = "SFENGINE_TEST_SECRET"
  local value = "s3cr3t-value"
  local real_getenv = os.getenv -- the sandbox reads the environment through os.getenv
  os.getenv = function(n) if n == name then return value end return real_getenv(n) end
  local ok, s = run("return tostring(sf.secret_env('" .. name .. "'))")
  t.eq(ok and s, "(redacted)", "tostring of a secret from the environment is (redacted)")
  local ok2, s2 = run("local s = sf.secret_env('" .. name .. "') return string.format('%s', s)")
  t.eq(ok2 and s2, "(redacted)", "string.format of a secret is (redacted)")
  refused("return 'x' .. sf.secret_env('" .. name .. "')", "cannot be concatenated", "concatenating a secret is refused")
  refused("return sf.secret_env('" .. name .. "').value", "a secret value is opaque", "indexing a secret is refused")
  refused("return #sf.secret_env('" .. name .. "')", "a secret value is opaque", "the length of a secret is refused")
  local ok3, sec = run("return sf.secret_env('" .. name .. "')")
  t.eq(ok3 and sandbox.reveal(sec), value, "only the engine can reveal a secret")
  t.eq(require("sf.log").scrub("token=" .. value), "token=(redacted)", "secret values are scrubbed from logs")
  local ok4, none = run("return sf.secret_env('SFENGINE_NO_SUCH_VAR')")
  t.ok(ok4 and none == nil, "sf.secret_env of an unset variable is nil")
  os.getenv = real_getenv
  local ok, s = run("return tostring(sf.secret_file('data.txt'))")
  t.eq(ok and s, "(redacted)", "sf.secret_file returns a redacted secret")
  local ok2, sec = run("return sf.secret_file('data.txt')")
  t.eq(ok2 and sandbox.reveal(sec), "hello from the recipe dir", "a secret file drops its trailing newline")
  t.ok(not pcall(sandbox.reveal, {}), "reveal refuses a table that is not a secret")
  t.eq(sandbox.reveal("plain"), "plain", "reveal passes a plain string through")
  local fake = run("return setmetatable({}, {__tostring = function() return 'x' end})")
  t.ok(fake, "a recipe may build tables with metatables")
  local ok3, j = run("return sf.json.encode({ s = sf.secret_file('data.txt') })")
  t.ok(ok3 and not j:find("hello", 1, true), "json encoding a secret does not reveal it", tostring(j))
end

-- the rest of the API
do
  local ok, v = run("return sf.json.decode('{\"a\":[1,2]}').a[2]")
  t.eq(ok and v, 2, "sf.json.decode works")
  local ok2, v2 = run("return sf.json.decode('{bad')")
  t.ok(ok2 and v2 == nil, "sf.json.decode returns nil on bad input")
  local ok3, v3 = run("return sf.now()")
  t.ok(ok3 and math.abs(v3 - os.time()) < 5, "sf.now returns epoch seconds")
  local ok4, v4 = run("return os.date('!%Y', 0) .. os.time{year=2020, month=1, day=1, hour=0}")
  t.ok(ok4 and v4:sub(1, 4) == "1970", "os.date and os.time are available", tostring(v4))
  local ok5, v5 = run("return sf.env('PATH') ~= nil and sf.env('SFENGINE_NO_SUCH_VAR') == nil")
  t.ok(ok5 and v5 == true, "sf.env reads environment variables")
  local ok6, v6 = run("return coroutine == nil and print == nil and require ~= nil")
  t.ok(ok6 and v6 == true, "only allow-listed globals exist")
  local ok7 = run("sf.log('recipe says %s', 'hi')")
  t.ok(ok7, "sf.log works")
end

-- the one read-only proxy (sandbox.readonly): what the engine hands recipe code
do
  local user = { id = "u1", audiences = { "a", "b" }, fields = { address = { city = "Rome" } } }
  local view = sandbox.readonly(user, "the user", { deep = true })
  local box = sandbox.new { dir = tmp }
  local fn = box:load([[
    local u = ...
    local n = 0
    for k, v in pairs(u.fields.address) do n = n + #k + #v end
    return n, #u.audiences, u.audiences[2], getmetatable(u.fields)
  ]], "=recipe")
  local ok, n, len, second, mt = box:run(fn, 2000, view)
  t.ok(ok and n == 8 and len == 2 and second == "b" and mt == "locked",
    "a deep view reads, iterates and counts like the table; nested tables are locked views too",
    tostring(n) .. " " .. tostring(len) .. " " .. tostring(second) .. " " .. tostring(mt))
  local write = box:load("local u = ... u.fields.address.city = 'Oslo'", "=recipe")
  local ok2, err2 = box:run(write, 2000, view)
  t.ok(not ok2 and tostring(err2):find("the user is read-only (cannot set city)", 1, true) ~= nil,
    "writing into a nested table of a deep view is refused", tostring(err2))
  t.eq(user.fields.address.city, "Rome", "the table behind the view is unchanged")
  local raw = box:load("local u = ... local k, v = next(u) return k, v", "=recipe")
  local ok3, k3 = box:run(raw, 2000, view)
  t.ok(ok3 and k3 == nil, "next() on a view sees an empty proxy, never the table behind it", tostring(k3))
  local shallow = sandbox.readonly(user, "the user")
  t.ok(shallow.fields == user.fields, "a shallow view hands nested tables out as they are (engine-owned copies only)")
end

-- a whole recipe through recipe.load: escape attempt at load time
do
  write("evil.lua", "os.execute('touch /tmp/sfengine-pwned')\nreturn {}\n")
  local ok, err = pcall(recipe.load, tmp .. "/evil.lua")
  t.ok(not ok and tostring(err):find("evil.lua:1:", 1, true) and tostring(err):find("execute", 1, true),
    "recipe.load runs the recipe in the sandbox", tostring(err))
  write("slow.lua", "while true do end\n")
  sandbox.configure { cpu_ms = 100 }
  local ok2, err2 = pcall(recipe.load, tmp .. "/slow.lua")
  sandbox.configure { cpu_ms = sandbox.DEFAULT_CPU_MS }
  t.ok(not ok2 and tostring(err2):find("CPU time limit exceeded (100 ms)", 1, true), "recipe.load has a deadline",
    tostring(err2))
end

t.done()
