-- sfengine history RECIPE [--json] [--limit N] [--html FILE]: the runs in
-- the recipe's history file (sf.history) as a table, as JSON (an array of
-- the history lines), or as one self-contained HTML page (sf.history.html).
local cli = require "sf.cli"
local history = require "sf.history"
local fs = require "sf.fs"
local cjson = require "cjson.safe"

return function(opts)
  local home = cli.home(opts)
  local runs, damaged = history.read(home.state_dir, home.name, opts.limit)
  if not runs then error("run history " .. history.path(home.state_dir, home.name) .. ": " .. tostring(damaged), 0) end
  if damaged > 0 then
    io.stderr:write(string.format("sfengine: %d damaged line%s in %s skipped\n", damaged, damaged == 1 and "" or "s",
      history.path(home.state_dir, home.name)))
  end
  if opts.html then
    local page = require("sf.history.html").render(runs, { name = home.name, kind = home.kind })
    local ok, err = fs.write_atomic(opts.html, page)
    if not ok then error("--html: cannot write the page: " .. tostring(err), 0) end
    io.stderr:write(string.format("sfengine: %d run%s written to %s\n", #runs, #runs == 1 and "" or "s", opts.html))
    return 0
  end
  if opts.json then
    setmetatable(runs, cjson.empty_array_mt)
    io.stdout:write(assert(cjson.encode(runs)), "\n")
    return 0
  end
  if #runs == 0 then
    io.stderr:write("sfengine: no runs yet (" .. history.path(home.state_dir, home.name) .. " does not exist or is empty)\n")
    return 0
  end
  io.stdout:write(require("sf.history.text").render(runs))
  return 0
end
