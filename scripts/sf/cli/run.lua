-- sfengine [options] RECIPE: runs the job the recipe names (sf.import or
-- sf.export; see jobs.lua for the run loop and the exit codes).
local cli = require "sf.cli"
local log = require "sf.log"
local recipe = require "sf.recipe"

-- What to use instead of an option that does not apply to the recipe's job.
local HINT = {
  dry_run = " (--estimate shows the API calls an import would make)",
  estimate = " (--dry-run shows what an export would send)",
}

local function exit_code(v)
  if v == nil or v == true then return 0 end
  if v == false then return 1 end
  if math.type(v) == "integer" then return v end
  return 1
end

return function(opts)
  local r, ctx = cli.load(opts)
  local job, job_name = cli.job(r, ctx)
  for _, o in ipairs(opts.given or {}) do
    if o.job and o.job ~= job_name then
      error(recipe.error(string.format("%s applies to %s recipes only; %s is an %s recipe%s", o.flag, o.job,
        opts.recipe, job_name, HINT[o.key] or "")), 0)
    end
  end
  log.debug("running the %s job of %s", job_name, opts.recipe)
  return exit_code(job.run(r, ctx))
end
