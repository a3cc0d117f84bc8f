-- TAP-style checks for Lua tests run by `sfengine --test FILE`, and the few
-- helpers the test files share.
--   local t = require "tests.tap"   -- (also reachable as dofile)
--   t.ok(cond, "what it proves"); t.eq(got, want, "what"); t.done()
--   local dir = t.tmpdir("sub")      -- a fresh directory (and dir/sub), removed by t.done()
--   t.write(dir .. "/f.txt", "data") -- a file with exactly these bytes; returns its path
local M = { failed = 0, passed = 0 }

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function M.ok(cond, name, detail)
  if cond then
    M.passed = M.passed + 1
    print("ok - " .. name)
  else
    M.failed = M.failed + 1
    print("not ok - " .. name .. (detail and (": " .. detail) or ""))
  end
  return cond
end

function M.eq(got, want, name)
  return M.ok(got == want, name, "got " .. show(got) .. ", want " .. show(want))
end

-- Deep equality for tables decoded from JSON.
local function deq(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.deep_equal = deq

function M.same(got, want, name)
  local cjson = require "cjson"
  local ok = deq(got, want)
  return M.ok(ok, name, ok or ("got " .. cjson.encode(got) .. ", want " .. cjson.encode(want)))
end

-- Raises-with-message check: fn must raise and the message must contain `needle`.
function M.raises(fn, needle, name)
  local ok, err = pcall(fn)
  if ok then return M.ok(false, name, "did not raise") end
  return M.ok(tostring(err):find(needle, 1, true) ~= nil, name, "message: " .. tostring(err))
end

local tmpdirs = {}

function M.tmpdir(...)
  local pipe = assert(io.popen("mktemp -d"))
  local dir = assert(pipe:read("l"), "mktemp -d gave no directory")
  pipe:close()
  for _, sub in ipairs { ... } do assert(os.execute("mkdir -p '" .. dir .. "/" .. sub .. "'")) end
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

function M.done()
  for _, dir in ipairs(tmpdirs) do os.execute("rm -rf '" .. dir .. "'") end
  os.exit(M.failed == 0 and 0 or 1)
end

return M
