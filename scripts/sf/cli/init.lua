-- sf.cli: what the commands of scripts/sf/main.lua share: loading the
-- recipe named on the command line, the job module it names, and where its
-- state (and so its history and run logs) lives.
--
--   local cli = require "sf.cli"
--   local r, ctx = cli.load(opts)          -- recipe errors exit 2
--   local job_module, job_name = cli.job(r, ctx)
--   local home = cli.home(opts)            -- { name, state_dir, ctx, kind }: no credentials needed
local recipe = require "sf.recipe"
local sandbox = require "sf.sandbox"
local log = require "sf.log"
local jobs = require "sf.jobs"

local M = {}

local JOBS = { import = true, export = true }

-- The recipe as it returned (not validated) and the context every job gets:
-- { path, dir, source, opts, log, box }.
function M.load(opts)
  local r, dir, source, box = recipe.load(opts.recipe)
  return r, { path = opts.recipe, dir = dir, source = source, opts = opts, log = log, box = box }
end

-- The module of the recipe's job (sf.import or sf.export) and its name.
function M.job(r, ctx)
  local job_name = rawget(r, "job")
  if job_name == nil then
    error(recipe.error_at(ctx, "job", 'required key is missing ("import" or "export")'), 0)
  end
  if type(job_name) ~= "string" or not JOBS[job_name] then
    error(recipe.error_at(ctx, "job", 'must be "import" or "export" (got ' ..
      (type(job_name) == "string" and string.format("%q", job_name) or type(job_name)) .. ")"), 0)
  end
  local module = "sf." .. job_name
  if not sandbox.embedded(module) and not package.preload[module] then
    error("the " .. job_name .. " job is not available in this build (no module " .. module .. ")", 0)
  end
  return require(module), job_name
end

-- Where a recipe's job keeps its state, history and logs, read from the
-- recipe's `name` and `state_dir` alone: the history and log commands work
-- without the credentials a run needs.
function M.home(opts)
  local r, ctx = M.load(opts)
  local module, kind = M.job(r, ctx)
  local fields = module.schema.fields
  local name = recipe.validate(rawget(r, "name"), fields.name, { path = ctx.path, source = ctx.source, keys = { "name" } })
  local state_dir = rawget(r, "state_dir")
  if state_dir ~= nil then
    state_dir = recipe.validate(state_dir, fields.state_dir, { path = ctx.path, source = ctx.source, keys = { "state_dir" } })
  end
  return { name = name, kind = kind, ctx = ctx, state_dir = jobs.state_dir(opts, state_dir, ctx.dir) }
end

return M
