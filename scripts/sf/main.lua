-- Entry point: engine/main.c calls require("sf.main")(args) inside its one
-- lua_pcall and exits with the integer returned. Parses the command line and
-- hands it to the command it names:
--
--   sfengine [options] RECIPE              run the job (the command "run")
--   sfengine COMMAND [options] ARGS...     another command (COMMANDS below)
--
-- Both the commands and the options are rows of a table: a new command is a
-- row in COMMANDS plus its module under scripts/sf/cli/ (a function
-- (opts) -> exit code), a new option a row in OPTIONS naming the commands it
-- applies to. The usage text is built from the same rows.
--
-- Exit codes: 0 done, 1 failed, 2 usage or recipe error, 3 paused by the API
-- budget, 4 stopped by a signal. Recipe errors are raised as recipe.error
-- objects (exit_code 2) and printed by main.c as one line naming file:line
-- and key.
local log = require "sf.log"
local sandbox = require "sf.sandbox"
local tables = require "sf.tables"

-- name, positional arguments (a trailing "?" marks an optional one), the
-- module that runs it, one line of help.
local COMMANDS = {
  { name = "run", args = { "recipe" }, module = "sf.cli.run",
    help = "run the job a recipe describes (the default command: sfengine RECIPE)" },
  { name = "history", args = { "recipe" }, module = "sf.cli.history",
    help = "the recipe's runs: start, duration, status, records, API calls" },
  { name = "log", args = { "recipe", "run?" }, module = "sf.cli.log",
    help = "the log of the last run, or of run number RUN" },
  { name = "fields", args = { "recipe", "object" }, module = "sf.cli.fields",
    help = "the org's fields of OBJECT with their types (one describe call)" },
}

-- flag, key in opts, value kind (nil: a flag; "string", "integer", "number"),
-- commands it applies to (nil: every command), the job kind it applies to
-- (nil: both; checked by sf.cli.run once the recipe is loaded), help. A value option may
-- also switch the command (--describe OBJECT is `fields RECIPE OBJECT`).
local OPTIONS = {
  { flag = "--help", alias = "-h", key = "help", help = "this text" },
  { flag = "--version", key = "version", help = "versions of sfengine, Lua, libcurl and OpenSSL" },
  { flag = "--debug", key = "debug", help = "debug lines, and tracebacks with errors" },
  { flag = "--quiet", key = "quiet", help = "no progress and info lines; warnings, errors and the summary stay" },
  { flag = "--log-json", key = "log_json", value = "FILE",
    help = "append structured events and log lines as JSON lines to FILE (- : stderr)" },
  { flag = "--state-dir", key = "state_dir", value = "DIR", help = "job state directory (default: .sfengine/ next to the recipe)" },
  { flag = "--api-version", key = "api_version", value = "V", commands = { run = true, fields = true },
    help = "Salesforce API version, e.g. 62.0 (default: $SF_ORG_API_VERSION, else the recipe's)" },
  { flag = "--dry-run", key = "dry_run", commands = { run = true }, job = "export",
    help = "export: look matches up, write nothing; the plan as NDJSON on stdout" },
  { flag = "--follow", key = "follow", commands = { run = true }, job = "export", help = "export: after the backfill keep reading stdin" },
  { flag = "--estimate", key = "estimate", commands = { run = true }, job = "import", help = "import: the API calls a run would need, then stop" },
  { flag = "--keep-updated", key = "keep_updated", commands = { run = true }, help = "keep running on the recipe's schedule" },
  { flag = "--progress-every", key = "progress_every", value = "S", kind = "integer", commands = { run = true },
    help = "when stderr is not a terminal, log a progress line every S seconds (default 60)" },
  { flag = "--describe", key = "object", value = "OBJECT", command = "fields", commands = { run = true },
    help = "same as: sfengine fields RECIPE OBJECT" },
  { flag = "--json", key = "json", commands = { history = true, fields = true }, help = "JSON instead of a table" },
  { flag = "--html", key = "html", value = "FILE", commands = { history = true },
    help = "write the history as one self-contained HTML page with charts" },
  { flag = "--limit", key = "limit", value = "N", kind = "integer", commands = { history = true },
    help = "only the last N runs (default: all)" },
  { flag = "--memory-mb", key = "memory_mb", value = "N", kind = "integer",
    help = "cap on the engine's Lua memory (default 4096)" },
  { flag = "--cpu-ms", key = "cpu_ms", value = "N", kind = "integer",
    help = "CPU budget of the recipe's load and of each callback (default 5000)" },
}

local BY_FLAG, BY_NAME = {}, {}
for _, o in ipairs(OPTIONS) do
  BY_FLAG[o.flag] = o
  if o.alias then BY_FLAG[o.alias] = o end
end
for _, c in ipairs(COMMANDS) do BY_NAME[c.name] = c end

local function usage()
  local out = { "usage: sfengine [options] RECIPE.lua", "       sfengine COMMAND [options] ARGS", "",
    "Runs the sync job a recipe describes (job = \"import\" or \"export\").", "", "commands:" }
  for _, c in ipairs(COMMANDS) do
    local args = {}
    for _, a in ipairs(c.args) do
      local name, opt = a:match("^(.-)(%??)$")
      args[#args + 1] = opt == "?" and ("[" .. name:upper() .. "]") or name:upper()
    end
    out[#out + 1] = string.format("  %-28s %s", c.name .. " " .. table.concat(args, " "), c.help)
  end
  out[#out + 1] = ""
  out[#out + 1] = "options:"
  for _, o in ipairs(OPTIONS) do
    local names = tables.sorted_keys(o.commands or {})
    local where = #names > 0 and (" [" .. table.concat(names, ", ") .. "]") or ""
    out[#out + 1] = string.format("  %-26s %s%s", o.flag .. (o.value and (" " .. o.value) or ""), o.help, where)
  end
  out[#out + 1] = ""
  out[#out + 1] = "exit codes: 0 done, 1 job failed, 2 usage or recipe error, 3 paused by the API budget,"
  out[#out + 1] = "            4 stopped by SIGTERM/SIGINT after a clean checkpoint"
  return table.concat(out, "\n") .. "\n"
end

-- One option's value, converted and checked: value | nil, message.
local function convert(o, value)
  if value == "" then return nil, o.flag .. " needs a value" end
  if o.kind == "integer" then
    local n = math.tointeger(tonumber(value))
    if not n or n <= 0 then return nil, o.flag .. " must be a positive integer (got " .. value .. ")" end
    return n
  end
  return value
end

-- args -> opts (opts.command, opts.recipe and the command's other
-- positionals by name) | nil, message
local function parse(args)
  local opts, paths = {}, {}
  local i, only_paths = 1, false
  local command
  if args[1] and BY_NAME[args[1]] then
    command = BY_NAME[args[1]]
    i = 2
  end
  local switched
  while i <= #args do
    local a = args[i]
    if only_paths or a == "-" or a:sub(1, 1) ~= "-" then
      paths[#paths + 1] = a
    elseif a == "--" then
      only_paths = true
    else
      local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
      name = name or a
      local o = BY_FLAG[name]
      if not o or (not o.value and value) then return nil, "unknown option " .. a end
      if o.value then
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then return nil, name .. " needs a value" end
        end
        local v, err = convert(o, value)
        if v == nil then return nil, err end
        opts[o.key] = v
        if o.command then switched = o end
      else
        opts[o.key] = true
      end
      opts.given = opts.given or {}
      opts.given[#opts.given + 1] = o
    end
    i = i + 1
  end
  if opts.memory_mb and opts.memory_mb < 16 then
    return nil, "--memory-mb must be at least 16 (the engine itself needs a few MiB)"
  end
  if opts.help then return opts end
  command = command or BY_NAME.run
  local switched_value
  if switched then
    if command.name ~= "run" then return nil, switched.flag .. " cannot be combined with the " .. command.name .. " command" end
    command = BY_NAME[switched.command]
    switched_value, opts[switched.key] = opts[switched.key], nil
  end
  for _, o in ipairs(opts.given or {}) do
    if o.commands and not o.commands[command.name] and o ~= switched then
      local names = tables.sorted_keys(o.commands)
      return nil, o.flag .. " does not apply to the " .. command.name .. " command (only to: " .. table.concat(names, ", ") .. ")"
    end
  end
  opts.command = command.name
  local want_min, want_max = 0, #command.args
  for _, a in ipairs(command.args) do
    if a:sub(-1) ~= "?" then want_min = want_min + 1 end
  end
  if switched_value and #paths > 0 then paths[#paths + 1] = switched_value end
  if #paths == 0 then return nil, "no recipe given" end
  if command.name == "run" and #paths > 1 then
    return nil, "one recipe at a time (got " .. #paths .. ": " .. table.concat(paths, ", ") .. ")"
  end
  if #paths < want_min then
    return nil, "the " .. command.name .. " command needs " .. (command.args[#paths + 1]):upper()
  end
  if #paths > want_max then
    return nil, "the " .. command.name .. " command takes " .. want_max .. " argument" ..
      (want_max == 1 and "" or "s") .. " (got " .. #paths .. ": " .. table.concat(paths, ", ") .. ")"
  end
  for k, a in ipairs(command.args) do opts[(a:gsub("%?$", ""))] = paths[k] end
  return opts
end

return function(args)
  local opts, err = parse(args)
  if not opts then
    io.stderr:write("sfengine: ", err, " (see sfengine --help)\n")
    return 2
  end
  if opts.help then
    io.stdout:write(usage())
    return 0
  end

  local ok, lerr = log.configure { quiet = opts.quiet, debug = opts.debug, json_file = opts.log_json,
    progress_every = opts.progress_every }
  if not ok then
    io.stderr:write("sfengine: --log-json: ", lerr, "\n")
    return 2
  end
  -- clears the progress line and closes the JSON log, also when unwinding
  local _ <close> = setmetatable({}, { __close = function() log.finish() end })

  sandbox.configure { debug = opts.debug, cpu_ms = opts.cpu_ms, memory_mb = opts.memory_mb }
  return require(BY_NAME[opts.command].module)(opts)
end
