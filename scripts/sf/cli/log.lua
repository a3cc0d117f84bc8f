-- sfengine log RECIPE [RUN]: the log file of run RUN (its number in
-- `sfengine history`), or of the last run that has one (sf.runlog keeps the
-- last runlog.KEEP runs' logs).
local cli = require "sf.cli"
local runlog = require "sf.runlog"
local fs = require "sf.fs"

return function(opts)
  local home = cli.home(opts)
  local have = runlog.runs(home.state_dir, home.name)
  local run
  if opts.run then
    run = math.tointeger(tonumber(opts.run))
    if not run or run < 1 then
      io.stderr:write("sfengine: RUN must be a run number from `sfengine history` (got " .. opts.run .. ")\n")
      return 2
    end
  else
    run = have[#have]
    if not run then
      error("no run of " .. home.name .. " has a log yet (looked in " .. runlog.dir(home.state_dir, home.name) .. ")", 0)
    end
  end
  local text, err, code = fs.read(runlog.path(home.state_dir, home.name, run))
  if not text then
    if code == "ENOENT" then
      local span = #have > 0 and (": runs " .. have[1] .. " to " .. have[#have] .. " have one") or ""
      error(string.format("run %d has no log (only the last %d runs keep theirs%s)", run, runlog.KEEP, span), 0)
    end
    error("run log: " .. tostring(err), 0)
  end
  io.stdout:write(text)
  return 0
end
