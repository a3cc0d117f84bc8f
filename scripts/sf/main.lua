-- Entry point: engine/main.c calls require("sf.main")(args) inside its one
-- lua_pcall and exits with the integer returned. Parses the command line,
-- loads the recipe in the sandbox, and hands it to the job module named by
-- recipe.job (sf.import or sf.export):
--
--   job.run(recipe_table, ctx) -> exit code
--   ctx = { path = recipe path, dir = its directory, source = its text,
--           opts = parsed options, log = sf.log, box = its sandbox }
--
-- Exit codes: 0 done, 1 failed, 2 usage or recipe error, 3 paused by the API
-- budget. Recipe errors are raised as recipe.error objects (exit_code 2) and
-- printed by main.c as one line naming file:line and key.
local log = require "sf.log"
local sandbox = require "sf.sandbox"
local recipe = require "sf.recipe"

local USAGE = [[
usage: sfengine [options] RECIPE.lua

Runs the sync job a recipe describes (job = "import" or "export").

options:
  --help              this text
  --version           versions of sfengine, Lua, libcurl and OpenSSL
  --debug             debug lines, and tracebacks with errors
  --quiet             only warnings and errors on stderr
  --log-json FILE     also append JSON lines {"ts","level","msg"} to FILE
  --state-dir DIR     job state directory (default: .sfengine/ next to the recipe)
  --dry-run           export: look matches up, write nothing, print what would be sent
  --follow            export: after the backfill keep reading stdin (real time)
  --estimate          print the API calls a run would need, then stop
  --keep-updated      keep running on the recipe's schedule
  --memory-mb N       cap on the engine's Lua memory (default 4096)
  --cpu-ms N          CPU budget of the recipe's load and of each callback (default 5000)

exit codes: 0 done, 1 job failed, 2 usage or recipe error, 3 paused by the API budget,
            4 stopped by SIGTERM/SIGINT after a clean checkpoint
]]

local FLAGS = {
  ["--help"] = "help", ["-h"] = "help", ["--debug"] = "debug", ["--quiet"] = "quiet",
  ["--dry-run"] = "dry_run", ["--estimate"] = "estimate", ["--keep-updated"] = "keep_updated",
  ["--follow"] = "follow",
  ["--version"] = "version",
}
local VALUED = {
  ["--log-json"] = "log_json", ["--state-dir"] = "state_dir",
  ["--memory-mb"] = "memory_mb", ["--cpu-ms"] = "cpu_ms",
}
local INTEGER = { memory_mb = true, cpu_ms = true }

local JOBS = { import = true, export = true }

-- args -> opts (with opts.recipe) | nil, message
local function parse(args)
  local opts, paths = {}, {}
  local i, only_paths = 1, false
  while i <= #args do
    local a = args[i]
    if only_paths or a == "-" or a:sub(1, 1) ~= "-" then
      paths[#paths + 1] = a
    elseif a == "--" then
      only_paths = true
    else
      local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
      name = name or a
      if FLAGS[name] and not value then
        opts[FLAGS[name]] = true
      elseif VALUED[name] then
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then return nil, name .. " needs a value" end
        end
        local key = VALUED[name]
        if INTEGER[key] then
          local n = math.tointeger(tonumber(value))
          if not n or n <= 0 then return nil, name .. " must be a positive integer (got " .. value .. ")" end
          value = n
        elseif value == "" then
          return nil, name .. " needs a value"
        end
        opts[key] = value
      else
        return nil, "unknown option " .. a
      end
    end
    i = i + 1
  end
  if opts.memory_mb and opts.memory_mb < 16 then
    return nil, "--memory-mb must be at least 16 (the engine itself needs a few MiB)"
  end
  if opts.help then return opts end
  if #paths == 0 then return nil, "no recipe given" end
  if #paths > 1 then return nil, "one recipe at a time (got " .. #paths .. ": " .. table.concat(paths, ", ") .. ")" end
  opts.recipe = paths[1]
  return opts
end

local function exit_code(v)
  if v == nil or v == true then return 0 end
  if v == false then return 1 end
  if math.type(v) == "integer" then return v end
  return 1
end

return function(args)
  local opts, err = parse(args)
  if not opts then
    io.stderr:write("sfengine: ", err, " (see sfengine --help)\n")
    return 2
  end
  if opts.help then
    io.stdout:write(USAGE)
    return 0
  end

  local ok, lerr = log.configure { quiet = opts.quiet, debug = opts.debug, json_file = opts.log_json }
  if not ok then
    io.stderr:write("sfengine: --log-json ", opts.log_json, ": ", lerr, "\n")
    return 2
  end
  -- clears the progress line and closes the JSON log, also when unwinding
  local _ <close> = setmetatable({}, { __close = function() log.finish() end })

  sandbox.configure { debug = opts.debug, cpu_ms = opts.cpu_ms, memory_mb = opts.memory_mb }

  local r, dir, source, box = recipe.load(opts.recipe)
  local ctx = { path = opts.recipe, dir = dir, source = source, opts = opts, log = log, box = box }

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
  local job = require(module)
  log.debug("running the %s job of %s", job_name, opts.recipe)
  return exit_code(job.run(r, ctx))
end
