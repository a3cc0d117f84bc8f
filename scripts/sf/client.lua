-- The Salesforce REST client every job talks through.
--
--   local c = client.new{ auth = cfg, reveal = fn, budget = b, api_version = "62.0", log = log }
--   local resp, err, code = c:request{ method = "GET", path = "/query?q=...",
--                                      headers = {...}, body = "...", json = tbl,
--                                      retry = true|false }
--   resp = { status, headers, body, data (decoded JSON or nil) }
--
-- Per call: the budget admits it (or the call is refused with code "BUDGET"),
-- the session is attached, 401 INVALID_SESSION_ID triggers one re-login and
-- one repeat, transient failures (timeouts, dropped connections, 500/502/503,
-- UNABLE_TO_LOCK_ROW) are retried with exponential backoff and full jitter
-- when the call is safe to repeat, and 403 REQUEST_LIMIT_EXCEEDED pauses the
-- job. Any other status is returned as data.
local http = require "sf.http"
local clock = require "sf.clock"
local cjson = require "cjson.safe"
local auth = require "sf.auth"

local Client = {}
Client.__index = Client

local M = {}
M.DEFAULT_API_VERSION = "62.0"

local TRANSIENT_TRANSPORT = { TIMEOUT = true, CONNECT = true, RECV = true, SEND = true, HTTP = true, PROTOCOL = true }
local TRANSIENT_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }

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
    -- Refresh a little before Salesforce's usual 2-hour session timeout.
    session_ttl = opts.session_ttl or 7000,
    session = nil,
    logins = 0,
    retries = 0,
    sleep = opts.sleep or clock.sleep,
    random = opts.random or math.random,
  }, Client)
end

function Client:login()
  local session, err, code = auth.login(self.auth, self.reveal)
  if not session then return nil, err, code end
  self.logins = self.logins + 1
  if self.log then self.log.add_secret(session.access_token) end
  self.session = session
  return session
end

function Client:ensure_session()
  local s = self.session
  if s and clock.now() - s.issued_at < self.session_ttl then return s end
  return self:login()
end

function Client:url(path)
  if path:match("^https?://") then error("sf.client: absolute URLs are not accepted: " .. path) end
  if path:sub(1, 10) == "/services/" then return self.session.instance_url .. path end
  return self.session.instance_url .. "/services/data/v" .. self.api_version .. path
end

local function error_code(resp)
  local data = resp.data
  if type(data) == "table" and type(data[1]) == "table" then
    return data[1].errorCode, data[1].message
  end
end

-- Full jitter: a random wait in [0, min(cap, base * 2^attempt)].
function Client:backoff(attempt)
  local ceiling = math.min(self.backoff_cap_ms, self.backoff_ms * (2 ^ (attempt - 1)))
  return self.random() * ceiling / 1000
end

function Client:request(req)
  local session, err, code = self:ensure_session()
  if not session then return nil, err, code end
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
  while true do
    attempt = attempt + 1
    local ok, berr, bcode, resume_at, which = self.budget:admit(1)
    if not ok then return nil, berr, bcode, resume_at, which end
    headers["Authorization"] = "Bearer " .. self.session.access_token
    local resp, terr, tcode = http.request {
      method = method, url = self:url(req.path), headers = headers, body = body,
      timeout_ms = req.timeout_ms or self.timeout_ms, max_bytes = req.max_bytes,
    }
    local retry_reason
    if not resp then
      if not TRANSIENT_TRANSPORT[tcode] then return nil, terr, tcode end
      retry_reason = tcode
    else
      self.budget:observe(resp.headers)
      local ctype = resp.headers["content-type"] or ""
      if ctype:find("json", 1, true) and resp.body ~= "" then resp.data = cjson.decode(resp.body) end
      local ecode, emsg = error_code(resp)
      if resp.status == 401 and not reauthed then
        -- Session expired or revoked: log in again once and repeat this call.
        reauthed = true
        local s, lerr, lcode = self:login()
        if not s then return nil, lerr, lcode end
        attempt = attempt - 1
        retry_reason = "reauth"
      elseif resp.status == 403 and ecode == "REQUEST_LIMIT_EXCEEDED" then
        local resume = self.budget:org_exhausted()
        return nil, "paused: Salesforce's API limit for the org was reached (" .. tostring(emsg)
          .. "), resumes at " .. os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(resume)), "BUDGET", resume, "org"
      elseif TRANSIENT_STATUS[resp.status] or ecode == "UNABLE_TO_LOCK_ROW" then
        if not repeatable then return resp end
        retry_reason = "HTTP " .. resp.status .. (ecode and (" " .. ecode) or "")
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
      if self.log then
        self.log.debug("retrying %s %s after %s (attempt %d, waiting %.2fs)", method, req.path:sub(1, 80), retry_reason, attempt, wait)
      end
      if not self.sleep(wait) then return nil, "interrupted while waiting to retry", "INTERRUPTED" end
    end
  end
end

-- Decoded JSON of a successful GET, or nil, message, code.
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
  local err, code
  d, err, code = self:get_json("/sobjects/" .. object .. "/describe")
  if not d then return nil, err, code end
  self.describes[object] = d
  return d
end

-- The first page of a query: queryAll includes deleted rows.
function Client:query_path(soql, all)
  return (all and "/queryAll?q=" or "/query?q=") .. http.urlencode(soql)
end

M.error_code = error_code
return M
