-- sf.credentials: where a job's credentials come from, on the recipe side:
-- the schema of a recipe's `auth` table, the environment variables the
-- Salesforce CLI and jsforce users already know, SFDX auth URLs, and the
-- check that reports every missing item at once with the variable to set.
-- (sf.auth does the OAuth2 requests.)
--
--   credentials.schema                      the recipe's `auth` (jobs.auth_schema)
--   credentials.ENV                         key -> conventional variable (SF_CLIENT_ID, ...)
--   credentials.from_env(flow?, secret)     the auth table from the environment; flow nil:
--                                           access token, SFDX auth URL, JWT, refresh token or
--                                           password, whichever the variables give
--   credentials.parse_sfdx_url(url)         -> { client_id, client_secret, refresh_token, instance_url }
--                                              | nil, message (never quoting the URL)
--   credentials.prepare(auth, ctx, from_env) checks a validated auth table (all missing items
--                                           in one recipe error naming the variables), turns
--                                           an SFDX auth URL into a refresh_token flow, and
--                                           records in auth.vars which variable holds what
--                                           (sf.auth's error advice names them)
--
-- Flows: password (+ security token), refresh_token, jwt (sf.auth), access_token
-- (an access token and its instance URL: no login, cannot renew itself) and
-- sfdx_url (force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>, as
-- `sf org display --verbose` prints it: the refresh_token flow against that instance).
local recipe = require "sf.recipe"
local S = recipe.schema
local sandbox = require "sf.sandbox"

local M = {}

M.FLOWS = { "password", "refresh_token", "jwt", "access_token", "sfdx_url" }

-- The variables sf.auth_from_env reads, by auth key.
M.ENV = {
  login_url = "SF_LOGIN_URL", client_id = "SF_CLIENT_ID", client_secret = "SF_CLIENT_SECRET",
  username = "SF_USERNAME", password = "SF_PASSWORD", security_token = "SF_SECURITY_TOKEN",
  refresh_token = "SF_REFRESH_TOKEN", private_key = "SF_PRIVATE_KEY", private_key_file = "SF_PRIVATE_KEY_FILE",
  passphrase = "SF_KEY_PASSPHRASE", access_token = "SF_ACCESS_TOKEN", instance_url = "SF_INSTANCE_URL",
  auth_url = "SFDX_AUTH_URL",
}

-- What each flow needs; a list inside means "one of".
M.NEEDS = {
  password = { "client_id", "username", "password" },
  refresh_token = { "client_id", "refresh_token" },
  jwt = { "client_id", "username", { "private_key", "private_key_file" } },
  access_token = { "access_token", "instance_url" },
  sfdx_url = { "auth_url" },
}

-- The Salesforce CLI's own connected app: the client id of an SFDX auth URL
-- that names none (force://<refreshToken>@<instanceUrl>).
M.SFDX_DEFAULT_CLIENT_ID = "PlatformCLI"

-- A login or instance URL: scheme and host (and port) only. The message says
-- what to change, never a pattern.
local function check_host_url(what, example)
  return function(v)
    if not v:match("^https?://") then
      return false, string.format("must start with https:// (got %q; e.g. %s)", v, example)
    end
    local host, rest = v:match("^https?://([^/?#]*)(.*)$")
    if host == "" or not host:match("^[%w%.%-]+$") and not host:match("^[%w%.%-]+:%d+$") and not host:match("^%[[%x:]+%]:?%d*$") then
      return false, string.format("%s is not a host name (got %q; e.g. %s)", what, v, example)
    end
    if rest ~= "" and rest ~= "/" then
      return false, string.format("must be the %s alone, without a path or query: drop %q (e.g. %s)", what, rest, example)
    end
    return true
  end
end

local secret = S.secret {}

M.schema = S.record({
  flow = S.string { required = true, enum = M.FLOWS },
  login_url = S.string { check = check_host_url("login host", "https://login.salesforce.com or https://MyDomain.my.salesforce.com") },
  sandbox = S.boolean { default = false },
  -- JWT aud; default https://login.salesforce.com, or https://test.salesforce.com with sandbox = true
  audience = S.string { pattern = "^https://[%w%-]+%.[%w%-%.]+[%w%-%._~:/]*$",
    doc = "an https URL: https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud site URL" },
  client_id = S.secret {},
  client_secret = secret,
  username = S.string {},
  password = secret,
  security_token = secret,
  refresh_token = secret,
  private_key = secret,
  private_key_file = S.string {},
  passphrase = secret,
  access_token = secret,
  instance_url = S.string { check = check_host_url("instance host", "https://MyDomain.my.salesforce.com") },
  auth_url = secret,
})

-- The auth table from the environment (the sandbox's sf.auth_from_env).
-- secret(v) makes a sandbox secret value. flow nil: the first of access
-- token, SFDX auth URL, JWT key, refresh token, else password.
function M.from_env(flow, secret_value, getenv)
  getenv = getenv or os.getenv
  local function get(key) local v = getenv(M.ENV[key]); if v ~= "" then return v end end
  local function sec(key) local v = get(key); return v and secret_value(v) or nil end
  if flow == nil then
    if get("access_token") then flow = "access_token"
    elseif get("auth_url") then flow = "sfdx_url"
    elseif get("private_key") or get("private_key_file") then flow = "jwt"
    elseif get("refresh_token") then flow = "refresh_token"
    else flow = "password" end
  end
  if not M.NEEDS[flow] then
    error('sf.auth_from_env: flow must be one of "' .. table.concat(M.FLOWS, '", "') .. '"', 3)
  end
  if flow == "access_token" then
    return { flow = flow, access_token = sec("access_token"), instance_url = get("instance_url") }
  elseif flow == "sfdx_url" then
    return { flow = flow, auth_url = sec("auth_url") }
  end
  local a = {
    flow = flow, login_url = get("login_url"), sandbox = getenv("SF_SANDBOX") == "1" or nil,
    client_id = sec("client_id"), client_secret = sec("client_secret"), username = get("username"),
  }
  if flow == "password" then
    a.password, a.security_token = sec("password"), sec("security_token")
  elseif flow == "refresh_token" then
    a.refresh_token = sec("refresh_token")
  else
    a.private_key = sec("private_key")
    a.private_key_file = not a.private_key and (get("private_key_file") or "sf_private_key.pem") or nil
    a.passphrase = sec("passphrase")
    a.client_secret = nil
  end
  return a
end

-- force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl> (the secret
-- may be empty) or force://<refreshToken>@<instanceUrl>. The instance URL
-- has no scheme (https:// is meant); an explicit http(s):// is kept (the
-- emulator on loopback).
function M.parse_sfdx_url(url)
  local FORMAT = "expected force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>, as `sf org display --verbose` prints it"
  local body = url:match("^%s*force://(.-)%s*$")
  if not body then return nil, "not an SFDX auth URL: it must start with force:// (" .. FORMAT .. ")" end
  local creds, host = body:match("^(.*)@([^@]+)$")
  if not creds or creds == "" or host == "" then return nil, "not an SFDX auth URL: no @<instanceUrl> (" .. FORMAT .. ")" end
  local parts = {}
  for p in (creds .. ":"):gmatch("(.-):") do parts[#parts + 1] = p end
  local out
  if #parts == 1 then
    out = { client_id = M.SFDX_DEFAULT_CLIENT_ID, refresh_token = parts[1] }
  elseif #parts == 3 then
    out = { client_id = parts[1], client_secret = parts[2] ~= "" and parts[2] or nil, refresh_token = parts[3] }
  else
    return nil, "not an SFDX auth URL: " .. #parts .. " parts before the @ (" .. FORMAT .. ")"
  end
  if out.client_id == "" or out.refresh_token == "" then
    return nil, "not an SFDX auth URL: the client id or the refresh token is empty (" .. FORMAT .. ")"
  end
  if not host:match("^https?://") then host = "https://" .. host end
  out.instance_url = host:gsub("/+$", "")
  local ok, why = check_host_url("instance host", "force://...@MyDomain.my.salesforce.com")(out.instance_url)
  if not ok then return nil, "the SFDX auth URL's instance URL " .. why end
  return out
end

-- The variable that holds an auth key: the one the recipe's line for it
-- names (`password = sf.secret_env "ACME_PW"`), else, when the table came
-- from sf.auth_from_env (or the environment), the conventional one.
local function variable_for(ctx, key, from_env)
  if from_env then return M.ENV[key] end
  local source = ctx and ctx.source
  if type(source) ~= "string" then return nil end
  local line = recipe.locate(source, { "auth", key })
  if not line or line == recipe.locate(source, { "auth" }) and not source:find("%f[%w_]" .. key .. "%s*=") then
    return M.ENV[key]
  end
  local n = 0
  for text in (source .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if n == line then
      local name = text:match("%f[%w_]" .. key .. "%s*=%s*sf%.[%w_]*env%s*%(?%s*[\"']([%w_]+)[\"']")
      return name
    end
  end
end

local function english_list(items)
  if #items <= 1 then return items[1] or "" end
  return table.concat(items, ", ", 1, #items - 1) .. " and " .. items[#items]
end

-- Checks a validated auth table (every missing item in one error), turns
-- an SFDX auth URL into the refresh_token flow, records auth.vars.
function M.prepare(a, ctx, from_env)
  local missing, sets = {}, {}
  local vars = {}
  for key in pairs(M.ENV) do vars[key] = variable_for(ctx, key, from_env) end
  for _, need in ipairs(M.NEEDS[a.flow]) do
    local alternatives = type(need) == "table" and need or { need }
    local found = false
    for _, k in ipairs(alternatives) do
      if a[k] ~= nil then found = true end
    end
    if not found then
      local k = alternatives[1]
      missing[#missing + 1] = table.concat(alternatives, " or ")
      if vars[k] then sets[#sets + 1] = vars[k] end
    end
  end
  if #missing > 0 then
    local msg = string.format("the %s flow needs %s, which %s not set", a.flow, english_list(missing), #missing == 1 and "is" or "are")
    if #sets > 0 then
      msg = msg .. ": set " .. english_list(sets) .. " in the environment"
    end
    if from_env == "implicit" then
      msg = msg .. " (the recipe has no auth table: credentials come from SF_ACCESS_TOKEN + SF_INSTANCE_URL, "
        .. "SFDX_AUTH_URL, SF_PRIVATE_KEY_FILE (jwt), SF_REFRESH_TOKEN, or SF_CLIENT_ID + SF_USERNAME + SF_PASSWORD)"
    end
    error(recipe.error_at(ctx, "auth", msg), 0)
  end
  if a.flow == "sfdx_url" then
    local parsed, err = M.parse_sfdx_url(sandbox.reveal(a.auth_url))
    if not parsed then error(recipe.error_at(ctx, "auth.auth_url", err), 0) end
    a.flow, a.auth_url = "refresh_token", nil
    a.client_id = sandbox.secret(parsed.client_id)
    a.client_secret = parsed.client_secret and sandbox.secret(parsed.client_secret) or nil
    a.refresh_token = sandbox.secret(parsed.refresh_token)
    a.login_url = parsed.instance_url
    vars.refresh_token, vars.client_id, vars.client_secret, vars.login_url = vars.auth_url, vars.auth_url, vars.auth_url, vars.auth_url
    a.from_sfdx_url = true
  end
  a.vars = vars
  return a
end

return M
