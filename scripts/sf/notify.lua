-- sf.notify: telling someone how a run went. A recipe's `notify` names a
-- command and/or an HTTP(S) webhook; when a run fails (or after every run
-- with on = "always") each gets the run's summary as one JSON object (the
-- history line): the command on its stdin, the webhook as the body of a POST
-- with Content-Type: application/json.
--
--   notify = {
--     command = { "./alert.sh", "--channel", "ops" },   -- argv; relative to the recipe
--     webhook = sf.secret_env "ALERT_WEBHOOK",          -- a secret: such URLs carry tokens
--     on = "failure",                                   -- or "always"
--     timeout_s = 10,
--   }
--
-- The payload never holds a secret: it is the summary (counters, status,
-- message) with every registered secret scrubbed out. A notifier that fails
-- (non-zero exit, timeout, non-2xx, no connection) is logged as a warning
-- and never changes the run's exit code. The webhook's URL is never logged
-- (only its host).
local recipe = require "sf.recipe"
local S = recipe.schema
local sandbox = require "sf.sandbox"
local http = require "sf.http"
local log = require "sf.log"
local fs = require "sf.fs"
local cjson = require "cjson.safe"
local events = require "sf.events"

local M = {}

M.schema = S.record({
  command = S.list(S.string {}, { min = 1 }),
  webhook = S.secret {},
  on = S.string { enum = { "failure", "always" }, default = "failure" },
  timeout_s = S.integer { min = 1, max = 300, default = 10 },
}, {
  check = function(n)
    if not n.command and not n.webhook then return false, "needs a command or a webhook (or both)" end
    if n.webhook and not sandbox.reveal(n.webhook):match("^https?://[^/]") then
      return false, "webhook must be an http:// or https:// URL"
    end
    return true
  end,
})

-- Is this run one to tell about?
function M.wanted(cfg, summary)
  if not cfg then return false end
  return cfg.on == "always" or summary.status == "failed"
end

-- The JSON sent: the summary, scrubbed of every registered secret.
function M.payload(summary)
  local text = assert(cjson.encode(summary))
  return log.scrub(text)
end

local function quote(arg)
  return "'" .. arg:gsub("'", "'\\''") .. "'"
end

-- Runs the command with the payload on stdin, its output kept apart (never
-- on our stdout, which may carry a dry run's plan). true | nil, why
local function run_command(cfg, payload, dir)
  local argv = {}
  for i, a in ipairs(cfg.command) do
    if i == 1 and a:find("/", 1, true) and a:sub(1, 1) ~= "/" then a = dir .. "/" .. a end
    argv[#argv + 1] = quote(a)
  end
  local input, output = os.tmpname(), os.tmpname()
  local ok, err = fs.write_atomic(input, payload)
  if not ok then
    os.remove(input); os.remove(output)
    return nil, "cannot write the payload: " .. tostring(err)
  end
  -- timeout(1) from coreutils bounds it; -k kills what ignores SIGTERM.
  local line = string.format("timeout -k 2 %d %s <%s >%s 2>&1", cfg.timeout_s, table.concat(argv, " "),
    quote(input), quote(output))
  local done, how, code = os.execute(line)
  local out = fs.read(output, 4096) or ""
  os.remove(input); os.remove(output)
  if done then return true end
  local why
  if how == "exit" and code == 124 then why = "timed out after " .. cfg.timeout_s .. " s"
  elseif how == "exit" then why = "exited with status " .. tostring(code)
  else why = "killed by signal " .. tostring(code) end
  out = out:gsub("%s+$", "")
  if out ~= "" then why = why .. ": " .. log.scrub(out:sub(1, 300)) end
  return nil, why
end

local function post_webhook(cfg, payload)
  local url = sandbox.reveal(cfg.webhook)
  log.add_secret(url)   -- whatever quotes it later (a transport error) prints (redacted)
  local host = url:match("^https?://([^/?#]+)") or "?"
  local resp, err, code = http.request {
    method = "POST", url = url, body = payload, timeout_ms = cfg.timeout_s * 1000,
    headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "sfengine" },
    once = true,
  }
  if not resp then
    return nil, "webhook on " .. host .. ": " .. log.scrub(tostring(err)) .. " (" .. tostring(code) .. ")"
  end
  if resp.status < 200 or resp.status > 299 then
    return nil, "webhook on " .. host .. " answered HTTP " .. resp.status
  end
  return true
end

-- Sends the summary to every notifier of cfg (the recipe's validated
-- `notify`) when the run calls for it. Never raises; returns the number of
-- notifiers that failed.
function M.send(cfg, summary, dir)
  if not M.wanted(cfg, summary) then return 0 end
  local payload = M.payload(summary)
  local failed = 0
  local function try(channel, fn, ...)
    local ok, res, why = pcall(fn, ...)
    if ok and res then
      events.emit("notify", { channel = channel, ok = true })
      log.debug("notification sent (%s)", channel)
      return
    end
    failed = failed + 1
    local detail = ok and why or tostring(res)
    events.emit("notify", { channel = channel, ok = false, detail = detail })
    log.warn("notification by %s failed: %s (the run's exit code is unchanged)", channel, detail)
  end
  if cfg.command then try("command", run_command, cfg, payload, dir or ".") end
  if cfg.webhook then try("webhook", post_webhook, cfg, payload) end
  return failed
end

return M
