-- sf.export.abort: ending an export run from deep inside (paused by the
-- budget, stopped by a signal, failed) and the Salesforce calls that may do
-- so. The run loop (sf.export) catches the abort, checkpoints and reports
-- the status; everything below it just raises.
--
--   abort.raise("failed", message)            -- status, message[, resume_at]
--   abort.caught(e) -> true for an abort error object
--   local resp, err, code = abort.call(job, req)   -- job.client:request; a
--                                                   -- budget pause or a stop aborts
--   abort.pause(job, seconds)                 -- wait; a SIGTERM/SIGINT aborts
local signal = require "sf.signal"

local M = {}

local abort_mt = {}

function M.raise(status, message, resume_at)
  error(setmetatable({ status = status, message = message, resume_at = resume_at }, abort_mt), 0)
end

function M.caught(e)
  return getmetatable(e) == abort_mt
end

function M.call(job, req)
  local resp, err, code, resume = job.client:request(req)
  if not resp and code == "BUDGET" then M.raise("paused", err, resume) end
  if not resp and code == "STOPPED" then M.raise("stopped", err) end
  return resp, err, code
end

-- Waits before trying records again; a SIGTERM/SIGINT ends the run there.
function M.pause(job, seconds)
  local c = job.client
  local ok
  if c.wait then ok = c:wait(seconds) else ok = c.sleep(seconds) end
  if not ok then M.raise("stopped", "stopped by SIG" .. tostring(signal.pending())) end
end

return M
