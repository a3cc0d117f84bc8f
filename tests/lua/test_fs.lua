-- sf.fs: append files (write/size/truncate/sync/close), atomic write, read with a
-- cap, exists/mkdir_p/remove/rename/realpath/list, locks that exclude with a
-- timeout, errno codes, misuse raising.
local t = require "tests.tap"
local fs = require "sf.fs"

local dir = t.tmpdir()
local function p(name) return dir .. "/" .. name end

-- append files ------------------------------------------------------------------------
do
  local f = assert(fs.open_append(p("out.ndjson")))
  t.ok(f:write("line 1\n") and f:write("line 2\n"), "write returns true")
  t.eq(f:size(), 14, "size counts the bytes written")
  t.ok(f:sync(), "sync (fdatasync) succeeds")
  t.ok(f:truncate(7), "truncate succeeds")
  t.eq(f:size(), 7, "truncate shrinks the file")
  f:write("line 2b\n")
  t.eq(fs.read(p("out.ndjson")), "line 1\nline 2b\n", "writes after truncate append at the new end")
  f:close()
  f:close()
  t.eq(tostring(f), "sf.fs.file (closed)", "close is idempotent")
  t.raises(function() f:write("x") end, "closed", "writing a closed file raises")
  local g = assert(fs.open_append(p("out.ndjson")))
  g:write("line 3\n")
  g:close()
  t.eq(fs.read(p("out.ndjson")), "line 1\nline 2b\nline 3\n", "reopening appends, never truncates")
  local big = ("0123456789abcdef"):rep(65536) -- 1 MB in one write
  local h = assert(fs.open_append(p("big")))
  h:write(big)
  h:close()
  t.eq(fs.read(p("big")), big, "a 1 MB write lands whole")
  local escaped
  do
    local c <close> = assert(fs.open_append(p("scoped")))
    escaped = c
    c:write("x")
  end
  t.eq(tostring(escaped), "sf.fs.file (closed)", "a <close> file is closed at the end of its scope")
  local nf, err, code = fs.open_append(p("no/such/dir/file"))
  t.ok(nf == nil and code == "ENOENT" and err:find(p("no/such/dir/file"), 1, true),
       "open_append in a missing directory gives nil, 'path: ...', ENOENT", tostring(err))
end

-- atomic write and read -------------------------------------------------------------
do
  t.ok(fs.write_atomic(p("state.json"), '{"v":1}'), "write_atomic creates a file")
  t.ok(fs.write_atomic(p("state.json"), '{"v":2}\0'), "write_atomic replaces a file")
  t.eq(fs.read(p("state.json")), '{"v":2}\0', "read returns the new content, binary safe")
  local names = fs.list(dir)
  local leftovers = 0
  for _, n in ipairs(names) do if n:find("%.tmp%.") then leftovers = leftovers + 1 end end
  t.eq(leftovers, 0, "write_atomic leaves no temporary file")
  local v, err, code = fs.read(p("state.json"), 3)
  t.ok(v == nil and code == "TOO_LARGE", "read past max_bytes gives TOO_LARGE", tostring(err))
  t.eq(fs.read(p("state.json"), 8), '{"v":2}\0', "read of exactly max_bytes succeeds")
  v, err, code = fs.read(p("missing"))
  t.ok(v == nil and code == "ENOENT" and err == p("missing") .. ": No such file or directory",
       "read of a missing file gives nil, 'path: strerror', ENOENT", tostring(err))
  v, err, code = fs.read(dir)
  t.eq(code, "EISDIR", "read of a directory gives EISDIR")
  v, err, code = fs.write_atomic(p("missing/x"), "x")
  t.eq(code, "ENOENT", "write_atomic into a missing directory gives ENOENT")
  fs.write_atomic(p("plain"), "abc")
  t.eq(fs.read(p("plain"), nil), "abc", "read with a nil max_bytes reads the whole file")
end

-- paths --------------------------------------------------------------------------------
do
  t.ok(fs.mkdir_p(p("a/b/c")), "mkdir_p creates nested directories")
  t.ok(fs.exists(p("a/b/c")) and fs.mkdir_p(p("a/b/c")), "mkdir_p on an existing path succeeds")
  t.ok(fs.mkdir_p(p("m"), tonumber("700", 8)), "mkdir_p takes a mode")
  local _, _, code = fs.mkdir_p(p("state.json/sub"))
  t.eq(code, "ENOTDIR", "mkdir_p through a file gives ENOTDIR")
  t.ok(fs.exists(p("state.json")) and not fs.exists(p("nope")), "exists tells files from missing paths")
  t.ok(fs.rename(p("state.json"), p("state2.json")) and fs.exists(p("state2.json"))
       and not fs.exists(p("state.json")), "rename moves a file")
  t.ok(fs.remove(p("state2.json")) and not fs.exists(p("state2.json")), "remove deletes a file")
  t.ok(fs.remove(p("a/b/c")) and not fs.exists(p("a/b/c")), "remove deletes an empty directory")
  local _, err, code2 = fs.remove(p("a"))
  t.eq(code2, "ENOTEMPTY", "remove of a non-empty directory gives ENOTEMPTY")
  _, err, code2 = fs.remove(p("nope"))
  t.eq(code2, "ENOENT", "remove of a missing path gives ENOENT")
  t.eq(fs.realpath(p("a/b/../b")), fs.realpath(p("a")) .. "/b", "realpath resolves ..")
  t.eq(select(3, fs.realpath(p("nope/x"))), "ENOENT", "realpath of a missing path gives ENOENT")
  local d = p("listme")
  fs.mkdir_p(d)
  for _, n in ipairs{ "c", "a", "b.txt" } do fs.write_atomic(d .. "/" .. n, n) end
  t.same(fs.list(d), { "a", "b.txt", "c" }, "list returns the names, sorted, without . and ..")
  t.same(fs.list(p("a/b")), {}, "list of an empty directory is empty")
  t.eq(select(3, fs.list(p("nope"))), "ENOENT", "list of a missing directory gives ENOENT")
  t.eq(type(fs.isatty(1)), "boolean", "isatty returns a boolean")
  t.eq(fs.isatty(999), false, "isatty of a closed descriptor is false")
end

-- locks -----------------------------------------------------------------------------------
do
  local lockfile = p("job.lock")
  local l1 = assert(fs.lock(lockfile))
  t.eq(tostring(l1), "sf.fs.lock (held)", "lock returns a held lock")
  local start = os.time()
  local l2, err, code = fs.lock(lockfile, 200)
  t.ok(l2 == nil and code == "TIMEOUT", "a second lock on the same file times out with TIMEOUT", tostring(err))
  t.ok(os.time() - start <= 2, "the lock timeout is honoured")
  l2, err, code = fs.lock(lockfile, 0)
  t.eq(code, "TIMEOUT", "timeout 0 tries once")
  l1:close()
  l1:close()
  t.eq(tostring(l1), "sf.fs.lock (released)", "closing releases the lock (idempotent)")
  l2 = fs.lock(lockfile, 200)
  t.ok(l2, "the lock can be taken once released")
  -- another process cannot take it either (flock(1) from util-linux when available)
  if os.execute("command -v flock >/dev/null 2>&1") then
    local other = os.execute("flock -n '" .. lockfile .. "' true")
    t.ok(not other, "another process cannot take a held lock")
    l2:close()
    other = os.execute("flock -n '" .. lockfile .. "' true")
    t.ok(other, "another process can take the lock once released")
  else
    l2:close()
  end
  do
    local l3 <close> = assert(fs.lock(lockfile, 100))
  end
  t.ok(fs.lock(lockfile, 0), "a <close> lock is released at the end of its scope")
  collectgarbage()
end

-- misuse -----------------------------------------------------------------------------------
t.raises(function() fs.open_append() end, "string expected", "open_append without a path raises")
t.raises(function() fs.read(p("x"), "10") end, "sf.fs.read: max_bytes must be an integer", "a string max_bytes raises")
t.raises(function() fs.lock(p("x"), -5) end, "timeout_ms must be a non-negative integer", "a negative timeout raises")
t.raises(function() fs.write_atomic(p("x")) end, "string expected", "write_atomic without data raises")
do
  local f = assert(fs.open_append(p("trunc")))
  t.raises(function() f:truncate(-1) end, "non-negative", "truncate to a negative size raises")
  f:close()
end

t.done()
