-- sf.history.html: the run history as one self-contained HTML page (no
-- server, no external asset: inline CSS and SVG, no script), for people who
-- would rather look than read a table:
--   * records per run, stacked by stream (an export: created and updated);
--   * API calls per run;
--   * the budget over the last DAYS days: the job's calls per day against
--     max_daily_api_calls, and the org's usage as the runs last saw it;
--   * the runs as a table (newest first), with each failed run's message.
-- Every bar has a tooltip (<title>) with its exact figure.
--
--   local page = require("sf.history.html").render(runs, { name = "job", kind = "import" })
local grouped = require("sf.events").grouped
local tables = require "sf.tables"

local M = {}

M.DAYS = 14
local W, H = 900, 260                -- chart size (px)
local PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 28, 40
local COLORS = { "#2f6fde", "#e8833a", "#2fa36b", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd" }

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function fmt(n)
  if n == nil then return "-" end
  if not math.tointeger(n) then return string.format("%.1f", n) end
  return grouped(n)
end

-- A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
local function nice_max(v)
  if v <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log(v, 10))
  for _, m in ipairs { 1, 2, 5, 10 } do
    if v <= m * p then return m * p end
  end
  return 10 * p
end

-- One SVG bar chart. spec = { title, labels = {...}, series = { { name, color, values = {...} } },
-- lines = { { name, color, values = {...} (nil: a gap), dashed } } }; stacked bars.
local function chart(spec)
  local n = #spec.labels
  local top = 0
  for i = 1, n do
    local sum = 0
    for _, s in ipairs(spec.series) do sum = sum + (s.values[i] or 0) end
    if sum > top then top = sum end
    for _, l in ipairs(spec.lines or {}) do
      if l.values[i] and l.values[i] > top then top = l.values[i] end
    end
  end
  top = nice_max(top)
  local pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
  local out = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">',
    W, H, W, H, esc(spec.title)) }
  out[#out + 1] = string.format('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>', W, H)
  out[#out + 1] = string.format('<text x="%d" y="18" class="t">%s</text>', PAD_L, esc(spec.title))
  for k = 0, 4 do
    local v = top * k / 4
    local y = PAD_T + ph - ph * k / 4
    out[#out + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e3e6ea"/>', PAD_L, y, W - PAD_R, y)
    out[#out + 1] = string.format('<text x="%d" y="%.1f" class="a" text-anchor="end">%s</text>', PAD_L - 6, y + 4,
      fmt(math.tointeger(v) or v))
  end
  local slot = n > 0 and pw / n or pw
  local bw = math.max(1, math.min(48, slot * 0.7))
  local every = math.max(1, math.ceil(n / 16))
  for i = 1, n do
    local x = PAD_L + slot * (i - 1) + (slot - bw) / 2
    local y = PAD_T + ph
    for _, s in ipairs(spec.series) do
      local v = s.values[i] or 0
      if v > 0 then
        local h = ph * v / top
        y = y - h
        out[#out + 1] = string.format('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>',
          x, y, bw, h, s.color, esc(spec.labels[i]), esc(s.name), fmt(v))
      end
    end
    if (i - 1) % every == 0 then
      out[#out + 1] = string.format('<text x="%.1f" y="%d" class="a" text-anchor="middle">%s</text>', x + bw / 2, H - PAD_B + 16,
        esc(spec.labels[i]))
    end
  end
  for _, l in ipairs(spec.lines or {}) do
    local pts = {}
    for i = 1, n do
      local v = l.values[i]
      if v then
        pts[#pts + 1] = string.format("%.1f,%.1f", PAD_L + slot * (i - 0.5), PAD_T + ph - ph * v / top)
        out[#out + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %s: %s</title></circle>',
          PAD_L + slot * (i - 0.5), PAD_T + ph - ph * v / top, l.color, esc(spec.labels[i]), esc(l.name), fmt(v))
      end
    end
    if #pts > 1 then
      out[#out + 1] = string.format('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>', table.concat(pts, " "),
        l.color, l.dashed and ' stroke-dasharray="6 4"' or "")
    end
  end
  out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#6b7280"/>', PAD_L, PAD_T + ph, W - PAD_R, PAD_T + ph)
  out[#out + 1] = "</svg>"
  local legend = {}
  for _, s in ipairs(spec.series) do
    legend[#legend + 1] = string.format('<span><i style="background:%s"></i>%s</span>', s.color, esc(s.name))
  end
  for _, l in ipairs(spec.lines or {}) do
    legend[#legend + 1] = string.format('<span><i class="l" style="border-color:%s"></i>%s</span>', l.color, esc(l.name))
  end
  return '<figure>' .. table.concat(out) .. '<figcaption>' .. table.concat(legend, " ") .. '</figcaption></figure>'
end

local function run_label(r) return "#" .. tostring(math.tointeger(r.run) or r.run or "?") end

-- The per-run series: records by stream (export: created, updated).
local function record_series(runs)
  local seen = {}
  for _, r in ipairs(runs) do
    if r.kind == "export" then
      seen.created, seen.updated = true, true
    else
      for name in pairs(r.streams or {}) do seen[name] = true end
    end
  end
  local names = tables.sorted_keys(seen)
  local series = {}
  for i, name in ipairs(names) do
    local values = {}
    for j, r in ipairs(runs) do
      if r.kind == "export" then values[j] = tonumber(r[name]) or 0
      else values[j] = r.streams and r.streams[name] and tonumber(r.streams[name].records) or 0 end
    end
    series[#series + 1] = { name = name, color = COLORS[(i - 1) % #COLORS + 1], values = values }
  end
  return series
end

-- Calls per day over the last DAYS days (UTC), the job's daily budget and
-- the org's usage (the last report of each day).
local function budget_days(runs, now)
  local labels, calls, org, limit = {}, {}, {}, {}
  local index = {}
  for d = M.DAYS - 1, 0, -1 do
    local day = os.date("!%Y-%m-%d", now - d * 86400)
    labels[#labels + 1] = day:sub(6)
    index[day] = #labels
    calls[#labels] = 0
  end
  local max_daily, org_max
  for _, r in ipairs(runs) do
    local day = type(r.started) == "string" and r.started:sub(1, 10)
    local i = day and index[day]
    if i then
      calls[i] = calls[i] + (tonumber(r.api_calls) or 0)
      local b = r.budget or {}
      if tonumber(b.org_used) then org[i] = tonumber(b.org_used) end
      if tonumber(b.job_max) then max_daily = tonumber(b.job_max) end
      if tonumber(b.org_max) then org_max = tonumber(b.org_max) end
    end
  end
  if max_daily then
    for i = 1, #labels do limit[i] = max_daily end
  end
  return labels, calls, org, limit, max_daily, org_max
end

local CSS = [[
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px 32px;color:#1f2328;background:#f6f8fa}
h1{font-size:22px;margin:0 0 4px}p.sub{margin:0 0 20px;color:#57606a}
.cards{display:flex;gap:12px;margin:0 0 20px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:140px}
.card b{display:block;font-size:22px}.card span{color:#57606a;font-size:12px}
figure{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin:0 0 20px;padding:8px;width:max-content}
figcaption{padding:4px 8px;color:#57606a;font-size:12px}figcaption span{margin-right:14px}
figcaption i{display:inline-block;width:10px;height:10px;margin-right:5px;vertical-align:-1px;border-radius:2px}
figcaption i.l{height:0;border-top:2px solid;border-radius:0}
svg text.t{font-weight:600;font-size:14px;fill:#1f2328}svg text.a{font-size:11px;fill:#57606a}
table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de}
th,td{padding:5px 10px;border-bottom:1px solid #eaeef2;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f3f6;text-align:right}td.l,th.l{text-align:left}
.s-done{color:#1a7f37}.s-failed{color:#cf222e;font-weight:600}.s-paused,.s-stopped{color:#9a6700}
td.msg{text-align:left;color:#cf222e;font-size:12px}
]]

local function cards(runs)
  local last = runs[#runs] or {}
  local total_calls, total_records, failed = 0, 0, 0
  for _, r in ipairs(runs) do
    total_calls = total_calls + (tonumber(r.api_calls) or 0)
    if r.status == "failed" then failed = failed + 1 end
    if r.kind == "export" then
      total_records = total_records + (tonumber(r.created) or 0) + (tonumber(r.updated) or 0)
    else
      for _, st in pairs(r.streams or {}) do total_records = total_records + (tonumber(st.records) or 0) end
    end
  end
  local items = {
    { fmt(#runs), "runs" }, { tostring(last.status or "-"), "last run" }, { fmt(failed), "failed runs" },
    { fmt(total_records), "records" }, { fmt(total_calls), "API calls" },
  }
  local out = {}
  for _, it in ipairs(items) do
    out[#out + 1] = string.format('<div class="card"><b>%s</b><span>%s</span></div>', esc(it[1]), esc(it[2]))
  end
  return '<div class="cards">' .. table.concat(out) .. '</div>'
end

local function runs_table(runs)
  local out = { '<table><thead><tr><th>run</th><th class="l">started (UTC)</th><th>duration</th><th class="l">status</th>',
    '<th>API calls</th><th>records</th><th>deletions</th><th>rejects</th><th>profiles</th></tr></thead><tbody>' }
  for i = #runs, 1, -1 do
    local r = runs[i]
    local rec, del, rej = 0, 0, 0
    if r.kind == "export" then
      rec, rej = (tonumber(r.created) or 0) + (tonumber(r.updated) or 0), tonumber(r.failed) or 0
    else
      for _, st in pairs(r.streams or {}) do
        rec, del, rej = rec + (tonumber(st.records) or 0), del + (tonumber(st.deletions) or 0), rej + (tonumber(st.rejects) or 0)
      end
    end
    local status = tostring(r.status or "-")
    out[#out + 1] = string.format('<tr><td>%s</td><td class="l">%s</td><td>%s</td><td class="l s-%s">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
      esc(run_label(r)), esc(tostring(r.started or "-"):gsub("T", " "):gsub("Z$", "")),
      r.duration_s and string.format("%.1f s", r.duration_s) or "-", esc(status:gsub("%W", "")), esc(status),
      fmt(tonumber(r.api_calls)), fmt(rec), r.kind == "export" and "-" or fmt(del), fmt(rej), fmt(tonumber(r.unique_profiles_exported)))
    if r.message and r.message ~= "" then
      out[#out + 1] = string.format('<tr><td></td><td class="msg" colspan="8">%s</td></tr>', esc(r.message))
    end
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out)
end

function M.render(runs, info)
  info = info or {}
  local now = info.now or os.time()
  local labels = {}
  for i, r in ipairs(runs) do labels[i] = run_label(r) end
  local calls = {}
  for i, r in ipairs(runs) do calls[i] = tonumber(r.api_calls) or 0 end
  local days, day_calls, org, limit, max_daily, org_max = budget_days(runs, now)
  local budget_lines = {}
  if max_daily then budget_lines[#budget_lines + 1] = { name = "max_daily_api_calls (" .. fmt(max_daily) .. ")", color = "#c44e52", values = limit, dashed = true } end
  budget_lines[#budget_lines + 1] = { name = "org usage, rolling 24 h" .. (org_max and (" (of " .. fmt(org_max) .. ")") or ""), color = "#8172b2", values = org }
  local body = {
    "<h1>" .. esc(info.name or "sfengine") .. "</h1>",
    string.format('<p class="sub">%s job: %s run%s in the history, page written %s UTC</p>', esc(info.kind or ""), fmt(#runs),
      #runs == 1 and "" or "s", os.date("!%Y-%m-%d %H:%M", now)),
    cards(runs),
    chart { title = "Records per run", labels = labels, series = record_series(runs) },
    chart { title = "API calls per run", labels = labels, series = { { name = "API calls", color = "#2f6fde", values = calls } } },
    chart { title = "API budget, last " .. M.DAYS .. " days (UTC)", labels = days,
      series = { { name = "this job's API calls per day", color = "#2fa36b", values = day_calls } }, lines = budget_lines },
    runs_table(runs),
  }
  return table.concat {
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>', esc(info.name or "sfengine"), ' run history</title>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"><style>', CSS, '</style></head><body>\n',
    table.concat(body, "\n"), "\n</body></html>\n",
  }
end

return M
