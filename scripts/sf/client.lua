-- The Salesforce REST client every job talks through.
--
--   local c = client.new{ auth = cfg, reveal = fn, budget = b, api_version = "62.0", log = log }
--   local resp, err, code, resume_at, which = c:request{ method = "GET", path = "/query?q=...",
--                                      headers = {...}, body = "...", json = tbl,
--                                      retry = true|false, stream = false }
--   resp = { status, headers, body, data (decoded JSON or nil, decoded on first use) }
--   stream = true: a 2xx answer comes back once its headers are in, its body
--   to be read from resp.stream (sf.http transfer: read, close); any other
--   status is read whole into resp.body as usual
--
-- Inside an sf.flight task the call waits by yielding, so several tasks'
-- calls are in flight together (sf.flight.transport).
-- Per call:
--   * the budget reserves it (sf.budget) or refuses it: nil, "paused: ...",
--     "BUDGET", resume_at, which; nothing is sent;
--   * the session is attached; it is renewed before its expected expiry
--     (session_ttl, learnt down from an early 401) and, on 401
--     INVALID_SESSION_ID, renewed once and the call repeated;
--   * a call Salesforce did not count (budget.counted: no response, 401, 403,
--     414, 5xx) is refunded to the budget;
--   * transient failures (timeouts, dropped connections, 500/502/503/504,
--     UNABLE_TO_LOCK_ROW) are retried with exponential backoff and full
--     jitter, at most max_attempts times, when the call is safe to repeat:
--     GETs by default, writes only with `retry = true` (an external-ID upsert).
--     With `retry = false` the transport error or the 5xx response comes back
--     to the caller after one attempt, so it can check what happened before
--     sending again (a create);
--   * 403 REQUEST_LIMIT_EXCEEDED pauses the job (code "BUDGET", which = "org");
--   * a SIGTERM/SIGINT while waiting to retry ends the call with code "STOPPED".
-- Any other status is returned as data.
local http = require "sf.http"
local clock = require "sf.clock"
local signal = require "sf.signal"
local cjson = require "cjson.safe"
local auth = require "sf.auth"
local budget_mod = require "sf.budget"
local events = require "sf.events"
local flight = require "sf.flight"

local Client = {}
Client.__index = Client

local M = {}
M.DEFAULT_API_VERSION = "62.0"
-- Never shrink the session lifetime below this when learning it from a 401
-- (a revoked session or a per-call limit is not a short timeout).
M.MIN_SESSION_TTL = 300

local TRANSIENT_TRANSPORT = { TIMEOUT = true, CONNECT = true, RECV = true, SEND = true, HTTP = true, PROTOCOL = true }
local TRANSIENT_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }
M.TRANSIENT_TRANSPORT, M.TRANSIENT_STATUS = TRANSIENT_TRANSPORT, TRANSIENT_STATUS

function M.new(opts)
  return setmetatable({
    auth = opts.auth,
    reveal = opts.reveal,
    budget = opts.budget,
    log = opts.log,
    api_version = opts.api_version or M.DEFAULT_API_VERSION,
    timeout_ms = opts.timeout_ms or 120000,
    max_attempts = opts.max_attempts or 6,
    backoff_ms = opts.backoff_ms or 500,
    backoff_cap_ms = opts.backoff_cap_ms or 30000,
    -- Renew a little before Salesforce's usual 2-hour session timeout.
    session_ttl = opts.session_ttl or 7000,
    session = nil,
    logins = 0,
    retries = 0,
    sleep = opts.sleep or clock.sleep,
    random = opts.random or math.random,
    login_fn = opts.login_fn or auth.login,
    http_request = opts.http_request or flight.transport,
    gzip = opts.gzip ~= false,   -- request bodies go gzip-compressed
  }, Client)
end

local function stopped()
  return nil, "stopped by SIG" .. tostring(signal.pending()) .. " while waiting to retry", "STOPPED"
end

-- Waits before attempt `attempt + 1`; false when a signal asks the job to stop.
function Client:wait(seconds)
  if signal.pending() then return false end
  return self.sleep(seconds) and not signal.pending()
end

-- Is a failed token request worth repeating? (sf.auth reports a 5xx from
-- the token endpoint as AUTH_UNAVAILABLE.)
local function login_transient(_, code)
  return TRANSIENT_TRANSPORT[code] or code == "AUTH_UNAVAILABLE"
end

-- A new session (token requests are not API calls). Transient failures are
-- retried like API calls.
function Client:login(refused)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local session, err, code = self.login_fn(self.auth, self.reveal, { refused = refused })
    if session then
      self.logins = self.logins + 1
      if self.log then self.log.add_secret(session.access_token) end
      session.obtained = clock.monotonic()
      self.session = session
      return session
    end
    if not login_transient(err, code) or attempt >= self.max_attempts then return nil, err, code end
    self.retries = self.retries + 1
    local wait = self:backoff(attempt)
    if self.log then self.log.debug("retrying login after %s (attempt %d, waiting %.2fs)", tostring(code), attempt, wait) end
    events.emit("retry", { method = "POST", path = "/services/oauth2/token", reason = tostring(code), attempt = attempt, wait_s = wait })
    if not self:wait(wait) then return stopped() end
  end
end

function Client:ensure_session()
  local s = self.session
  if s and clock.monotonic() - s.obtained < self.session_ttl then return s end
  return self:login()
end

function Client:url(path)
  if path:match("^https?://") then error("sf.client: absolute URLs are not accepted: " .. path) end
  if path:sub(1, 10) == "/services/" then return self.session.instance_url .. path end
  return self.session.instance_url .. "/services/data/v" .. self.api_version .. path
end

-- resp.data: the body decoded as JSON on first use. Query pages are read by
-- sf.page/sf.mapper from resp.body: decoding them here as well cost more CPU
-- than the whole import path (bench/README.md).
local lazy_data = {
  __index = function(resp, k)
    if k ~= "data" or rawget(resp, "_decoded") then return nil end
    rawset(resp, "_decoded", true)
    local ctype = resp.headers and resp.headers["content-type"] or ""
    if not (ctype:find("json", 1, true) and type(resp.body) == "string" and resp.body ~= "") then return nil end
    local d = cjson.decode(resp.body)
    rawset(resp, "data", d)
    return d
  end,
}

local function error_code(resp)
  local data = resp.data
  if type(data) == "table" and type(data[1]) == "table" then
    return data[1].errorCode, data[1].message
  end
end

-- Full jitter: a random wait in [0, min(cap, base * 2^(attempt-1))] seconds.
function Client:backoff(attempt)
  local ceiling = math.min(self.backoff_cap_ms, self.backoff_ms * (2 ^ (attempt - 1)))
  return self.random() * ceiling / 1000
end

-- A session expired earlier than expected: renew that much sooner next time.
function Client:learn_session_expiry()
  local s = self.session
  if not s or not s.obtained then return end
  local age = clock.monotonic() - s.obtained
  if age >= M.MIN_SESSION_TTL and age < self.session_ttl then
    self.session_ttl = math.max(M.MIN_SESSION_TTL, age * 0.9)
  end
end

function Client:request(req)
  local body = req.body
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  if req.json ~= nil then
    body = assert(cjson.encode(req.json))
    headers["Content-Type"] = "application/json"
  end
  headers["Accept"] = headers["Accept"] or "application/json"
  headers["Accept-Encoding"] = nil
  local method = req.method or "GET"
  -- GETs are always safe to repeat; writes only when the caller says so
  -- (an external-ID upsert is; a create is not).
  local repeatable = req.retry
  if repeatable == nil then repeatable = (method == "GET") end
  local reauthed = false
  local attempt = 0
  -- Bounded: at most max_attempts transient failures plus one re-login.
  while true do
    attempt = attempt + 1
    local ticket, berr, bcode, resume_at, which = self.budget:admit(1)
    if not ticket then return nil, berr, bcode, resume_at, which end
    local session, lerr, lcode = self:ensure_session()
    if not session then
      self.budget:refund(ticket)
      return nil, lerr, lcode
    end
    headers["Authorization"] = "Bearer " .. session.access_token
    local resp, terr, tcode = self.http_request {
      method = method, url = self:url(req.path), headers = headers, body = body,
      timeout_ms = req.timeout_ms or self.timeout_ms, max_bytes = req.max_bytes,
      -- A write that is not safe to repeat goes out on a fresh connection, so
      -- libcurl never silently re-sends it on a reused one that died.
      once = not repeatable,
      gzip = self.gzip and body ~= nil, stream = req.stream, window_bytes = req.window_bytes,
    }
    if resp and resp.stream and resp.status >= 300 then
      -- an error answer is read whole, like any other
      local whole, werr, wcode = resp.stream:finish()
      resp.stream = nil
      if whole then resp.body = whole.body else resp, terr, tcode = nil, werr, wcode end
    end
    if not budget_mod.counted(resp, terr, tcode) then self.budget:refund(ticket) end
    local retry_reason, retry_after
    if not resp then
      if not TRANSIENT_TRANSPORT[tcode] then return nil, terr, tcode end
      retry_reason = tcode
    else
      self.budget:observe(resp.headers)
      if getmetatable(resp) == nil then setmetatable(resp, lazy_data) end
      local ecode, emsg
      if resp.status >= 300 then ecode, emsg = error_code(resp) end
      if resp.status == 401 and not reauthed then
        -- Session expired or revoked: log in again once and repeat this call.
        reauthed = true
        self:learn_session_expiry()
        self.session = nil
        local s, lerr2, lcode2 = self:login(true)
        if not s then return nil, lerr2, lcode2 end
        attempt = attempt - 1
        retry_reason = "reauth"
      elseif resp.status == 403 and ecode == "REQUEST_LIMIT_EXCEEDED" then
        local resume = self.budget:org_exhausted()
        return nil, self.budget:pause_message("org", resume), "BUDGET", resume, "org"
      elseif TRANSIENT_STATUS[resp.status] or ecode == "UNABLE_TO_LOCK_ROW" then
        if not repeatable then return resp end
        retry_reason = "HTTP " .. resp.status .. (ecode and (" " .. ecode) or "")
        retry_after = tonumber(resp.headers["retry-after"])
      else
        return resp
      end
    end
    if retry_reason ~= "reauth" then
      if not repeatable or attempt >= self.max_attempts then
        if resp then return resp end
        return nil, terr, tcode
      end
      self.retries = self.retries + 1
      local wait = self:backoff(attempt)
      if retry_after and retry_after > wait then wait = math.min(retry_after, self.backoff_cap_ms / 1000) end
      if self.log then
        self.log.debug("retrying %s %s after %s (attempt %d, waiting %.2fs)", method, req.path:sub(1, 80), retry_reason, attempt, wait)
      end
      events.emit("retry", { method = method, path = req.path:sub(1, 200), reason = retry_reason, attempt = attempt, wait_s = wait })
      if not self:wait(wait) then return stopped() end
    end
  end
end

-- Decoded JSON of a successful GET, or nil, message, code (, resume_at, which).
function Client:get_json(path)
  local resp, err, code, resume, which = self:request { method = "GET", path = path }
  if not resp then return nil, err, code, resume, which end
  if resp.status ~= 200 then
    local ecode, emsg = error_code(resp)
    return nil, string.format("GET %s: HTTP %d %s%s", path:sub(1, 120), resp.status, ecode or "",
      emsg and (": " .. emsg) or ""), ecode or ("HTTP_" .. resp.status)
  end
  if resp.data == nil then return nil, "GET " .. path .. ": response is not JSON", "JSON" end
  return resp.data
end

function Client:describe(object)
  self.describes = self.describes or {}
  local d = self.describes[object]
  if d then return d end
  local err, code, resume, which
  d, err, code, resume, which = self:get_json("/sobjects/" .. object .. "/describe")
  if not d then return nil, err, code, resume, which end
  self.describes[object] = d
  return d
end

-- The first page of a query: queryAll includes deleted rows.
function Client:query_path(soql, all)
  return (all and "/queryAll?q=" or "/query?q=") .. http.urlencode(soql)
end

M.error_code = error_code
return M
