-- sf.store: put/get/delete, binary values, transactions (commit, rollback), 100k keys
-- in one transaction, persistence across reopen, WAL mode, close semantics, errors.
local t = require "tests.tap"
local store = require "sf.store"
local fs = require "sf.fs"

local dir = t.tmpdir()
local path = dir .. "/export-state.db"

local s = assert(store.open(path))
t.eq(tostring(s), "sf.store", "open returns a store")
t.eq(s:get("missing"), nil, "get of a missing key is nil")
t.ok(s:put("user:1", "a"), "put returns true")
t.eq(s:get("user:1"), "a", "get returns what put stored")
s:put("user:1", "b")
t.eq(s:get("user:1"), "b", "put replaces an existing value")
s:put("bin", "\0\1\2\255")
t.eq(s:get("bin"), "\0\1\2\255", "values are binary safe")
s:put("empty", "")
t.eq(s:get("empty"), "", "an empty value is not nil")
t.eq(s:count(), 3, "count counts the keys")
t.ok(s:delete("user:1"), "delete returns true")
t.eq(s:get("user:1"), nil, "a deleted key is gone")
t.ok(s:delete("never-there"), "deleting a missing key is fine")
t.ok(fs.exists(path .. "-wal"), "the database runs in WAL mode")

-- transactions --------------------------------------------------------------------------
s:begin()
s:put("tx", "1")
s:rollback()
t.eq(s:get("tx"), nil, "rollback discards the batch")
local n = 100000
local start = os.clock()
t.ok(s:begin(), "begin starts a batch")
for i = 1, n do s:put("key:" .. i, "value " .. i) end
t.ok(s:commit(), "commit ends the batch")
local secs = os.clock() - start
print(("# %d puts in one transaction: %.2f s CPU"):format(n, secs))
t.eq(s:count(), n + 2, "100k keys written in one transaction are all there")
t.eq(s:get("key:54321"), "value 54321", "a key from the batch reads back")
t.ok(secs < 20, "100k puts take seconds, not minutes")
-- lengths: past 16 MiB a key or value is refused before SQLite sees its length
do
  local big = string.rep("k", (16 << 20) + 1)
  local function refused(ok, err, code) return ok == nil and code == "STORE" and tostring(err):find("too large", 1, true) end
  t.ok(refused(s:get(big)), "get with a key over 16 MiB: nil, \"... too large ...\", STORE")
  t.ok(refused(s:put(big, "v")), "put with a key over 16 MiB: too large")
  t.ok(refused(s:put("k", big)), "put with a value over 16 MiB: too large")
  t.ok(refused(s:delete(big)), "delete with a key over 16 MiB: too large")
  t.ok(s:put("limit", big:sub(2)) and #s:get("limit") == 16 << 20, "a value of exactly 16 MiB is stored and read back")
  t.ok(s:delete("limit") and s:get("limit") == nil and s:put("after", "1") and s:get("after") == "1",
       "after a refused length the statements work as before")
  s:delete("after")
end
local _, err, code = s:commit()
t.ok(code == "STORE" and err:find("sf.store: commit:", 1, true), "commit without begin gives nil, msg, STORE", tostring(err))
s:close()
s:close()
t.eq(tostring(s), "sf.store (closed)", "close is idempotent")
t.raises(function() s:get("x") end, "closed store", "using a closed store raises")

-- persistence ---------------------------------------------------------------------------
local s2 = assert(store.open(path))
t.eq(s2:get("key:100000"), "value 100000", "data persists across reopen")
t.eq(s2:get("bin"), "\0\1\2\255", "binary values persist")
t.eq(s2:count(), n + 2, "the count persists")
s2:close()
local escaped
do
  local s3 <close> = assert(store.open(path))
  escaped = s3
  s3:put("scoped", "1")
end
t.eq(tostring(escaped), "sf.store (closed)", "a <close> store is closed at the end of its scope")
collectgarbage()
local s4 = assert(store.open(path))
t.eq(s4:get("scoped"), "1", "writes before a scope close persist")

-- errors and misuse ------------------------------------------------------------------------
local bad, berr, bcode = store.open(dir .. "/no/such/dir/x.db")
t.ok(bad == nil and bcode == "STORE", "opening in a missing directory gives nil, msg, STORE", tostring(berr))
fs.write_atomic(dir .. "/junk.db", ("not a database "):rep(100))
bad, berr, bcode = store.open(dir .. "/junk.db")
t.ok(bad == nil and bcode == "STORE", "opening a non-database file gives STORE", tostring(berr))
t.raises(function() s4:put("k") end, "sf.store:put: value must be a string", "put without a value raises")
t.raises(function() s4:put("k", 5) end, "sf.store:put: value must be a string", "put of a number raises")
t.raises(function() s4:get() end, "string expected", "get without a key raises")
t.raises(function() store.open() end, "string expected", "open without a path raises")
s4:close()

t.done()
