-- OAuth2 flows against a Salesforce login host: username-password (+ security
-- token), refresh token and JWT bearer; and a given access token (no login,
-- no renewal). Returns a session; never lets a secret into a message.
--
--   local session, err, code = auth.login(cfg, reveal, { refused = bool })
--   session = { access_token, instance_url, id, issued_at (epoch s), flow }
--
-- cfg is the validated recipe `auth` table (sf.credentials.prepare); secret
-- fields hold sandbox secret values, and `reveal` turns them into strings at
-- the last moment. refused = true: Salesforce refused the current session
-- (401), so an access token that cannot be renewed is reported as such.
-- A refusal's message ends with what to change (auth.advice), naming the
-- variables that hold the credentials (cfg.vars).
local http = require "sf.http"
local jwt = require "sf.jwt"
local clock = require "sf.clock"
local cjson = require "cjson.safe"

local auth = {}
local TRANSPORT_HINT

auth.PRODUCTION = "https://login.salesforce.com"
auth.SANDBOX = "https://test.salesforce.com"

-- The login host: an explicit URL (My Domain, or the emulator) wins over the
-- sandbox flag.
function auth.login_url(cfg)
  local url = cfg.login_url or (cfg.sandbox and auth.SANDBOX or auth.PRODUCTION)
  return (url:gsub("/+$", ""))
end

-- The JWT bearer audience (`aud`): Salesforce accepts only its documented
-- audiences, login.salesforce.com for production and test.salesforce.com for
-- sandboxes, whatever host the token request goes to (a My Domain login_url
-- is not one), or an Experience Cloud site URL for its users: the recipe's
-- auth.audience.
function auth.audience(cfg)
  local aud = cfg.audience or (cfg.sandbox and auth.SANDBOX or auth.PRODUCTION)
  return (aud:gsub("/+$", ""))
end

local function form(fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = http.urlencode(kv[1]) .. "=" .. http.urlencode(kv[2])
  end
  return table.concat(parts, "&")
end

local function grant_fields(cfg, reveal)
  local flow = cfg.flow
  if flow == "password" then
    local password = reveal(cfg.password) .. (cfg.security_token and reveal(cfg.security_token) or "")
    local f = {
      { "grant_type", "password" },
      { "client_id", reveal(cfg.client_id) },
      { "username", cfg.username },
      { "password", password },
    }
    if cfg.client_secret then f[#f + 1] = { "client_secret", reveal(cfg.client_secret) } end
    return f
  elseif flow == "refresh_token" then
    local f = {
      { "grant_type", "refresh_token" },
      { "refresh_token", reveal(cfg.refresh_token) },
      { "client_id", reveal(cfg.client_id) },
    }
    if cfg.client_secret then f[#f + 1] = { "client_secret", reveal(cfg.client_secret) } end
    return f
  elseif flow == "jwt" then
    local assertion, err, code = auth.assertion(cfg, reveal)
    if not assertion then return nil, err, code end
    return {
      { "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer" },
      { "assertion", assertion },
    }
  end
  error("auth: unknown flow " .. tostring(flow))
end

-- The JWT bearer assertion: iss = consumer key, sub = username, aud =
-- auth.audience(cfg), exp at most 3 minutes ahead (Salesforce's limit), RS256.
function auth.assertion(cfg, reveal)
  local key = cfg.private_key_handle
  if not key then
    local err, code
    key, err, code = jwt.load_key(reveal(cfg.private_key), cfg.passphrase and reveal(cfg.passphrase) or nil)
    if not key then return nil, "auth: " .. err, code end
    cfg.private_key_handle = key -- parse once per job; the handle is opaque
  end
  return key:sign {
    iss = reveal(cfg.client_id),
    sub = cfg.username,
    aud = auth.audience(cfg),
    exp = math.floor(clock.now()) + 170,
  }
end

local function var(cfg, key, fallback)
  local v = cfg.vars and cfg.vars[key]
  return v and (fallback and (fallback .. " (" .. v .. ")") or v) or fallback or key
end

-- What to change after the token endpoint said error / description.
function auth.advice(cfg, err, description)
  local d = tostring(description or ""):lower()
  if err == "invalid_client_id" then
    return "the connected app's consumer key is wrong: check " .. var(cfg, "client_id", "client_id")
  elseif err == "invalid_client" then
    return "the connected app's consumer secret is wrong: check " .. var(cfg, "client_secret", "client_secret")
  elseif err ~= "invalid_grant" then
    return nil
  end
  if cfg.flow == "password" then
    if d:find("authentication failure", 1, true) then
      local token = cfg.security_token
        and ("; the security token in " .. var(cfg, "security_token") .. " may be outdated (changing the password sends a new one)")
        or ("; unless the org trusts this machine's IP range, Salesforce also wants the user's security token: set "
            .. var(cfg, "security_token") .. " (Salesforce mails it from Settings > Reset My Security Token)")
      return "check the username and password (" .. var(cfg, "username") .. ", " .. var(cfg, "password") .. ")" .. token
    end
  elseif cfg.flow == "refresh_token" then
    if cfg.from_sfdx_url then
      return "the refresh token in the SFDX auth URL (" .. var(cfg, "refresh_token") ..
        ") is no longer accepted (expired, or its access was withdrawn): log in again (sf org login web) and take the new URL from `sf org display --verbose`"
    end
    return "the refresh token (" .. var(cfg, "refresh_token") .. ") is no longer accepted (expired, its access withdrawn, or issued to another connected app): authorise again and set the new one"
  elseif cfg.flow == "jwt" then
    if d:find("approved", 1, true) then
      return "the user " .. tostring(cfg.username) .. " is not pre-authorised for the connected app: set its policy to " ..
        [["Admin approved users are pre-authorized" and add the user's profile or permission set]]
    elseif d:find("audience", 1, true) then
      return "set auth.audience (https://login.salesforce.com for production, https://test.salesforce.com for a sandbox)"
    else
      return "check that the connected app's certificate matches the private key (" .. var(cfg, "private_key_file", "private_key_file") ..
        "), that " .. var(cfg, "username") .. " is the user's login, and this machine's clock"
    end
  end
end

-- What to check when the login host could not be reached.
TRANSPORT_HINT = {
  DNS = function(cfg) return "the host name does not resolve: check " .. var(cfg, "login_url", "login_url") end,
  CONNECT = function(cfg) return "nothing answers there: check " .. var(cfg, "login_url", "login_url") .. " and the network" end,
  TLS = function() return "its TLS certificate is not trusted here (sfengine always verifies TLS): check the host name and the system's CA certificates" end,
  INSECURE = function() return "use https:// (plain http:// is allowed to loopback only)" end,
}

-- The session of a given access token (flow access_token): no request. After
-- Salesforce refused it, there is no way to renew it: say what to do.
local function access_token_session(cfg, reveal, opts)
  if opts.refused then
    return nil, "Salesforce refused the access token in " .. var(cfg, "access_token") ..
      " (expired or revoked; sessions last 2 hours by default): get a new one (`sf org display --verbose` prints it)" ..
      ", or use a flow that renews itself (an SFDX auth URL in SFDX_AUTH_URL, refresh_token or jwt)", "AUTH"
  end
  return {
    access_token = reveal(cfg.access_token),
    instance_url = cfg.instance_url:gsub("/+$", ""),
    issued_at = clock.now(),
    flow = cfg.flow,
  }
end

-- Performs one token request. Operational failures: nil, message, code where
-- code is "AUTH" for a refusal by Salesforce, "AUTH_UNAVAILABLE" for a 5xx
-- from the token endpoint, or the transport's code.
function auth.login(cfg, reveal, opts)
  opts = opts or {}
  if cfg.flow == "access_token" then return access_token_session(cfg, reveal, opts) end
  local url = auth.login_url(cfg)
  local fields, ferr, fcode = grant_fields(cfg, reveal)
  if not fields then return nil, ferr, fcode end
  local resp, err, code = http.request {
    method = "POST",
    url = url .. "/services/oauth2/token",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "application/json" },
    body = form(fields),
    timeout_ms = opts.timeout_ms or 30000,
  }
  if not resp then
    local hint = TRANSPORT_HINT[code]
    return nil, "login to " .. url .. " failed: " .. err .. (hint and (": " .. hint(cfg)) or ""), code
  end
  local body = cjson.decode(resp.body)
  if resp.status ~= 200 or type(body) ~= "table" or type(body.access_token) ~= "string" then
    -- Salesforce's own words: {"error":"invalid_grant","error_description":"authentication failure"}
    local what = "HTTP " .. resp.status
    if type(body) == "table" and body.error then
      what = tostring(body.error) .. (body.error_description and (": " .. tostring(body.error_description)) or "")
    end
    -- A 5xx is the login service failing, not a refusal: worth retrying.
    if resp.status >= 500 then return nil, "login to " .. url .. " failed: " .. what, "AUTH_UNAVAILABLE" end
    local advice = type(body) == "table" and auth.advice(cfg, body.error, body.error_description)
    return nil, "login to " .. url .. " refused: " .. what .. (advice and (": " .. advice) or ""), "AUTH"
  end
  if type(body.instance_url) ~= "string" or not body.instance_url:match("^https?://") then
    return nil, "login to " .. url .. ": response has no instance_url", "AUTH"
  end
  local issued = tonumber(body.issued_at)
  return {
    access_token = body.access_token,
    instance_url = body.instance_url:gsub("/+$", ""),
    id = body.id,
    issued_at = issued and issued / 1000 or clock.now(),
    flow = cfg.flow,
  }
end

return auth
