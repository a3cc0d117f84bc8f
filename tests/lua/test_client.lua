-- sf.client against a scripted transport (no network): retries with bounded
-- backoff and jitter, what is refunded to the budget, 401 re-login, 403
-- REQUEST_LIMIT_EXCEEDED, writes that are not safe to repeat, login retries,
-- the session lifetime.
local t = require "tests.tap"
local client = require "sf.client"
local budget = require "sf.budget"
local clock = require "sf.clock"
local cjson = require "cjson"

local function json_resp(status, body, extra)
  local h = { ["content-type"] = "application/json", ["sforce-limit-info"] = "api-usage=10/1000" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return { status = status, headers = h, body = cjson.encode(body) }
end
local OK = function() return json_resp(200, { ok = true }) end
local function err_resp(status, code, extra)
  return function() return json_resp(status, { { errorCode = code, message = tostring(code) .. " message" } }, extra) end
end
local function transport(code, msg) return function() return nil, msg or code, code end end

-- A client whose transport answers from `script` in order; records requests,
-- sleeps and logins.
local function make(script, opts)
  opts = opts or {}
  local rec = { requests = {}, sleeps = {}, logins = 0 }
  local b = opts.budget or budget.new { max_daily = opts.max_daily, now = function() return 1700000000 end }
  local c = client.new {
    auth = {}, reveal = tostring, budget = b,
    random = function() return opts.random or 0.5 end,
    sleep = function(s) rec.sleeps[#rec.sleeps + 1] = s; return true end,
    login_fn = function()
      rec.logins = rec.logins + 1
      local f = opts.logins and opts.logins[rec.logins]
      if f then return f() end
      return { access_token = "tok" .. rec.logins, instance_url = "http://127.0.0.1:1", issued_at = 0 }
    end,
    http_request = function(req)
      rec.requests[#rec.requests + 1] = req
      local f = script[#rec.requests]
      if not f then error("unexpected request " .. #rec.requests) end
      return f(req)
    end,
  }
  return c, b, rec
end

-- Transient failures of a GET: retried, and only the answered call counts.
do
  local c, b, rec = make { err_resp(503, "SERVER_UNAVAILABLE"), transport("RECV", "Empty reply from server"), err_resp(502), OK }
  local resp = c:request { path = "/limits" }
  t.ok(resp and resp.status == 200, "a GET is retried through 503, a dropped connection and 502")
  t.eq(#rec.requests, 4, "four attempts were sent")
  t.eq(b.run_calls, 1, "only the answered call is counted (503, drop and 502 are refunded)")
  t.eq(c.retries, 3, "retries are counted")
  t.eq(#rec.sleeps, 3, "each retry waited")
  t.ok(rec.sleeps[1] == 0.25 and rec.sleeps[2] == 0.5 and rec.sleeps[3] == 1.0,
    "the waits double (full jitter: random * base * 2^(n-1))", table.concat(rec.sleeps, ","))
end

do
  local c, b = make { transport("TIMEOUT"), OK }
  c:request { path = "/limits" }
  t.eq(b.run_calls, 2, "a timed-out call stays counted (Salesforce may have served it)")
end

do
  local c, b, rec = make { err_resp(400, "UNABLE_TO_LOCK_ROW"), OK }
  local resp = c:request { path = "/query?q=x" }
  t.ok(resp.status == 200 and #rec.requests == 2 and b.run_calls == 2, "UNABLE_TO_LOCK_ROW is retried (and counted: a 400 is an API call)")
end

-- Bounded: at most max_attempts, and the jitter never exceeds the cap.
do
  local script = {}
  for i = 1, 20 do script[i] = err_resp(503, "SERVER_UNAVAILABLE") end
  local c, b, rec = make(script, { random = 1 })
  c.backoff_cap_ms = 2000
  local resp = c:request { path = "/limits" }
  t.ok(resp.status == 503 and #rec.requests == c.max_attempts, "a GET failing every time is tried max_attempts times, then the 503 is returned")
  t.eq(b.run_calls, 0, "none of those was counted")
  local capped = true
  for _, s in ipairs(rec.sleeps) do if s > 2.0 then capped = false end end
  t.ok(capped and rec.sleeps[#rec.sleeps] == 2.0, "waits are capped at backoff_cap_ms", table.concat(rec.sleeps, ","))
  local ok = true
  for n = 1, 12 do
    local w = c:backoff(n)
    if w < 0 or w > math.min(c.backoff_cap_ms, c.backoff_ms * 2 ^ (n - 1)) / 1000 then ok = false end
  end
  t.ok(ok, "backoff(n) stays in [0, min(cap, base * 2^(n-1))]")
end

do
  local c, _, rec = make { err_resp(503, "SERVER_UNAVAILABLE", { ["retry-after"] = "7" }), OK }
  c:request { path = "/limits" }
  t.eq(rec.sleeps[1], 7, "Retry-After is honoured when longer than the backoff")
end

-- Writes: only with retry = true; otherwise the failure comes back at once.
do
  local c, b, rec = make { transport("RECV", "Empty reply from server") }
  local resp, err, code = c:request { method = "POST", path = "/sobjects/Lead", json = { LastName = "x" } }
  t.ok(resp == nil and code == "RECV" and err == "Empty reply from server" and #rec.requests == 1,
    "a create (POST) is not repeated: the transport error comes back for a check-before-repeat")
  t.eq(b.run_calls, 0, "and the dropped create is refunded")
  t.eq(rec.requests[1].headers["Content-Type"], "application/json", "json bodies are encoded with their content type")
end
do
  local c, _, rec = make { err_resp(503, "SERVER_UNAVAILABLE") }
  local resp = c:request { method = "POST", path = "/composite/sobjects", body = "{}", retry = false }
  t.ok(resp and resp.status == 503 and #rec.requests == 1, "retry = false returns a 503 after one attempt")
end
do
  local c, _, rec = make { err_resp(503, "SERVER_UNAVAILABLE"), OK }
  local resp = c:request { method = "PATCH", path = "/sobjects/Lead/Ext__c/1", body = "{}", retry = true }
  t.ok(resp.status == 200 and #rec.requests == 2, "retry = true repeats a write (an external-ID upsert)")
end
do
  local c, _, rec = make { err_resp(500, "UNKNOWN_EXCEPTION"), OK }
  local resp = c:request { method = "GET", path = "/limits", retry = false }
  t.ok(resp.status == 500 and #rec.requests == 1, "retry = false also stops a GET from repeating")
end

-- 401: log in again once and repeat; a second 401 is returned.
do
  local c, b, rec = make { OK, err_resp(401, "INVALID_SESSION_ID"), OK }
  c:request { path = "/a" }
  local resp = c:request { path = "/b" }
  t.ok(resp.status == 200 and rec.logins == 2 and c.logins == 2, "401 INVALID_SESSION_ID: one new login and the call repeated")
  t.eq(rec.requests[3].headers.Authorization, "Bearer tok2", "the repeat carries the new session")
  t.eq(b.run_calls, 2, "the 401 was not counted")
  t.eq(#rec.sleeps, 0, "a re-login does not wait")
end
do
  local c, _, rec = make { err_resp(401, "INVALID_SESSION_ID"), err_resp(401, "INVALID_SESSION_ID") }
  local resp = c:request { path = "/a" }
  t.ok(resp.status == 401 and #rec.requests == 2 and rec.logins == 2, "a second 401 is returned: one re-login per call")
end

-- 403 REQUEST_LIMIT_EXCEEDED pauses the job; later calls are not sent.
do
  local c, b, rec = make { err_resp(403, "REQUEST_LIMIT_EXCEEDED") }
  local resp, msg, code, resume, which = c:request { path = "/a" }
  t.ok(resp == nil and code == "BUDGET" and which == "org" and resume == 1700000000 + 86400,
    "403 REQUEST_LIMIT_EXCEEDED pauses for 24 h", tostring(msg))
  t.ok(msg:find("^paused: Salesforce's API limit for the org was reached") ~= nil, "with a paused: line", msg)
  t.eq(b.run_calls, 0, "the 403 was not counted")
  local r2, _, code2 = c:request { path = "/b" }
  t.ok(r2 == nil and code2 == "BUDGET" and #rec.requests == 1, "the next call is refused without being sent")
end
do
  local c, b = make { err_resp(403, "API_DISABLED_FOR_ORG") }
  local resp = c:request { path = "/a" }
  t.ok(resp.status == 403 and b.run_calls == 0, "another 403 is data, and not counted")
end

-- The budget refuses: nothing is sent, no login either.
do
  local c, _, rec = make({}, { max_daily = 0 })
  local resp, _, code, _, which = c:request { path = "/a" }
  t.ok(resp == nil and code == "BUDGET" and which == "job" and #rec.requests == 0 and rec.logins == 0,
    "a refused call sends nothing and does not log in")
end

-- Logins: transient failures are retried; a refusal is not.
do
  local c, b, rec = make({ OK }, { logins = {
    function() return nil, "login to x refused: HTTP 503", "AUTH_UNAVAILABLE" end,
    function() return nil, "login to x failed: Empty reply from server", "RECV" end,
  } })
  local resp = c:request { path = "/a" }
  t.ok(resp and resp.status == 200 and rec.logins == 3 and c.logins == 1, "a login answered 503 or dropped is retried")
  t.eq(b.run_calls, 1, "token requests are not API calls")
end
do
  local c, b, rec = make({}, { logins = {
    function() return nil, "login to x refused: invalid_grant: authentication failure", "AUTH" end,
  } })
  local resp, err, code = c:request { path = "/a" }
  t.ok(resp == nil and code == "AUTH" and rec.logins == 1 and err:find("invalid_grant", 1, true),
    "a refused login is not retried and its message comes back")
  t.eq(b.run_calls, 0, "the call that could not be sent is refunded")
end

-- Session lifetime: renewed before it expires, and learnt from an early 401.
do
  local c, _, rec = make { OK, OK }
  c:request { path = "/a" }
  c.session.obtained = clock.monotonic() - c.session_ttl - 1
  c:request { path = "/b" }
  t.eq(rec.logins, 2, "a session older than session_ttl is renewed before the call")
end
do
  local c, _, rec = make { OK, err_resp(401, "INVALID_SESSION_ID"), OK }
  c:request { path = "/a" }
  c.session.obtained = clock.monotonic() - 1000
  c:request { path = "/b" }
  t.ok(c.session_ttl > 850 and c.session_ttl < 901 and rec.logins == 2,
    "a session that expired after 1000 s: later sessions are renewed after 900 s", tostring(c.session_ttl))
  c.session.obtained = clock.monotonic() - 10
  c.session_ttl = 7000
  local c2, _, rec2 = make { OK, err_resp(401, "INVALID_SESSION_ID"), OK }
  c2:request { path = "/a" }
  c2:request { path = "/b" }
  t.ok(c2.session_ttl == 7000 and rec2.logins == 2, "an early 401 (revoked, per-call limit) does not shrink the lifetime")
end

-- URLs.
do
  local c = make { OK }
  c.session = { instance_url = "https://x.my.salesforce.com" }
  t.eq(c:url("/query?q=1"), "https://x.my.salesforce.com/services/data/v62.0/query?q=1", "relative paths get the API version")
  t.eq(c:url("/services/data/v62.0/query/01g-200"), "https://x.my.salesforce.com/services/data/v62.0/query/01g-200",
    "nextRecordsUrl paths are used as given")
  t.raises(function() c:url("https://evil.example/") end, "absolute URLs are not accepted", "absolute URLs are refused")
end

-- Request bodies go gzip-compressed unless the recipe says no; a streamed answer
-- that is an error is read whole (its errorCode decides), a 2xx stays a stream.
do
  local c, _, rec = make { OK, OK }
  c:request { method = "POST", path = "/composite/sobjects", json = { records = {} } }
  c:request { path = "/limits" }
  t.eq(rec.requests[1].gzip, true, "a request with a body asks for gzip")
  t.eq(rec.requests[2].gzip, false, "a request without a body does not")
  local c2, _, rec2 = make { OK }
  c2.gzip = false
  c2:request { method = "POST", path = "/x", body = "{}" }
  t.eq(rec2.requests[1].gzip, false, "compress_requests = false sends bodies as they are")
end

do
  local finished = 0
  local function streamed(status, body)
    return function()
      return { status = status, headers = { ["content-type"] = "application/json" },
               stream = { finish = function() finished = finished + 1; return { status = status, body = body } end,
                          read = function() return nil end, close = function() end } }
    end
  end
  local c, b, rec = make { streamed(503, '[{"errorCode":"SERVER_UNAVAILABLE","message":"x"}]'), streamed(200, "") }
  local resp = c:request { path = "/jobs/query/1/results", stream = true }
  t.eq(rec.requests[1].stream, true, "stream = true reaches the transport")
  t.ok(resp.status == 200 and resp.stream ~= nil and resp.body == nil, "a 2xx streamed answer comes back as a stream")
  t.eq(finished, 1, "the 503 was read whole before the retry")
  t.eq(#rec.requests, 2, "... and the call was retried")
  t.eq(b.run_calls, 1, "... the 503 refunded")
  local c3 = make { streamed(400, '[{"errorCode":"INVALID_LOCATOR","message":"bad"}]') }
  local r3 = c3:request { path = "/jobs/query/1/results", stream = true }
  t.ok(r3.status == 400 and r3.stream == nil and client.error_code(r3) == "INVALID_LOCATOR",
    "an error answer to a stream request has its body and error code", tostring(r3.body))
end

t.done()
