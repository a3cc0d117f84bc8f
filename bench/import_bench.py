#!/usr/bin/env python3
"""Import benchmarks: sfengine side by side with jsforce, memory flatness, CPU profile.

    python3 bench/import_bench.py side-by-side [--leads 100000] [--runs 3] [--jsforce-modes querymore,autofetch]
    python3 bench/import_bench.py memory [--sizes 20000,100000,300000] [--with-jsforce]
    python3 bench/import_bench.py profile [--leads 100000] [--tool auto|perf|callgrind] [--binary PATH]
    python3 bench/import_bench.py all        (side-by-side, then memory: what bench/run.sh runs)

side-by-side: one emulator (tests/emulator/server.py --generate Lead=N --seed 1, high API limit,
--request-log) serves both clients, runs interleaved (sfengine, jsforce, sfengine, ...):
  sfengine  a recipe importing Lead only with the default mapping (batch_size = 2000, other keys at
            their defaults: deletions = true, so queryAll and deleted rows as "_deleted" lines) into
            a fresh temp dir;
  jsforce   bench/jsforce_import.js: password login, the SOQL and endpoint the engine sent (read back
            from the request log), the same mapping in plain JS, NDJSON through a write stream.
Each client's CPU (user+sys), peak RSS (ru_maxrss) come from os.wait4 on that child only: the
emulator is a separate process (its CPU per run is shown for context, from /proc/PID/stat).
Line counts must agree on every run; run 1's outputs are compared line by line as JSON (minus
salesforce_last_user_imported, the run's time). Medians of the runs are reported and checked
against the targets (exit 1 when one is missed).

memory: peak RSS of sfengine importing N Leads for each N (one emulator per N): must stay flat.

profile: sfengine under `perf record` (hardware cycles when `perf stat -e instructions` works,
else the cpu-clock software event), or valgrind --tool=callgrind (instructions, smaller N) when
perf cannot sample; CPU grouped by component (engine file, cjson, Lua, libcurl, OpenSSL, zlib,
libc, kernel) and the top functions.

Results also go to bench/.out/<command>-<time>.json (git-ignored).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator  # noqa: E402

SFENGINE = os.path.join(ROOT, os.environ.get("SFENGINE", "sfengine"))
JS_SCRIPT = os.path.join(HERE, "jsforce_import.js")
JS_PKG = os.path.join(ROOT, "tests", "emulator", "jsforce")      # package.json + package-lock.json
NODE_DIRS = [os.path.join(ROOT, "tests", ".node"), os.path.join(HERE, ".node")]
OUT_DIR = os.path.join(HERE, ".out")
STREAM = "salesforce_leads"
NOW_KEY = "salesforce_last_user_imported"
CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT = 1800          # seconds, any one client run
CREDS = dict(username="demo@example.com", password="demo-password", token="DEMOTOKEN",
             clientId="demo-client-id", clientSecret="demo-client-secret")

# Targets (the brief): sfengine's CPU per imported record at most a third of jsforce's measured
# side by side; jsforce spends about 30 us here, hence also an absolute 10 us; peak RSS flat as N grows.
TARGET_RATIO = 3.0
TARGET_US = 10.0
TARGET_RSS_GROWTH = 1.15    # peak RSS at the largest N / at the smallest N (one page in memory: no drift)

RECIPE = """-- written by bench/import_bench.py
return {
  job = "import",
  name = "bench-import",
  auth = {
    flow = "password",
    login_url = sf.env "SF_LOGIN_URL",
    client_id = sf.secret_env "SF_CLIENT_ID",
    client_secret = sf.secret_env "SF_CLIENT_SECRET",
    username = sf.env "SF_USERNAME",
    password = sf.secret_env "SF_PASSWORD",
    security_token = sf.secret_env "SF_SECURITY_TOKEN",
  },
  output = "out",
  batch_size = %(batch_size)d,
  objects = { Lead = true },     -- default mapping (mappings/salesforce_leads.lua)
}
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- machine ------------------------------------------------------------------------------

def _cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    fs = _cmd(["df", "-T", tempfile.gettempdir()]).splitlines()
    return {
        "cpu": cpu, "cpus": os.cpu_count(), "mem_gb": round(mem_kb / 1048576, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "node": _cmd(["node", "--version"]),
        "sfengine": " / ".join(_cmd([SFENGINE, "--version"]).splitlines()),
        "tmp_fs": fs[1].split()[1] if len(fs) > 1 else "",
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def machine_line(m):
    return ("machine: %s, %s CPUs, %s GB RAM, Linux %s, temp dir on %s; %s; node %s; python %s; load average %s"
            % (m["cpu"], m["cpus"], m["mem_gb"], m["kernel"], m["tmp_fs"], m["sfengine"], m["node"], m["python"],
               " ".join("%.2f" % x for x in m["loadavg"])))


# ---- child processes with their own rusage ------------------------------------------------

def run_child(cmd, env=None, cwd=None, timeout=RUN_TIMEOUT, stdout_path=None, stderr_path=None):
    """Runs cmd; -> dict(rc, cpu_s (user+sys of the child alone), user_s, sys_s, wall_s, max_rss_kb)."""
    out = open(stdout_path or os.devnull, "wb")
    err = open(stderr_path or os.devnull, "wb")
    try:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = t0 + timeout
        while True:                          # bounded by the deadline
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() > deadline:
                os.kill(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                p.returncode = -9
                raise RuntimeError("%s timed out after %d s" % (cmd[0], timeout))
            time.sleep(0.02)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        out.close()
        err.close()
    return {"rc": p.returncode, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime, "wall_s": wall, "max_rss_kb": ru.ru_maxrss}


def proc_cpu_s(pid):
    """CPU seconds (user+sys, all threads) a live process has used so far."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tail(path, n=1500):
    try:
        with open(path, "rb") as fh:
            return fh.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def count_lines(path):
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


# ---- emulator -----------------------------------------------------------------------------

def start_emulator(leads, request_log=None, gzip=False):
    args = ["--generate", "Lead=%d" % leads, "--seed", "1", "--api-limit", "100000000",
            "--session-seconds", "86400"] + (["--gzip"] if gzip else [])
    if request_log:
        args += ["--request-log", request_log]
    log("starting the emulator with %d Leads%s ..." % (leads, " (--gzip)" if gzip else ""))
    emu = Emulator(args, start_timeout=600, stderr=subprocess.DEVNULL)
    emu.start()
    return emu


def engine_env(emu):
    env = dict(os.environ)
    env.update({"SF_LOGIN_URL": emu.url, "SF_CLIENT_ID": CREDS["clientId"],
                "SF_CLIENT_SECRET": CREDS["clientSecret"], "SF_USERNAME": CREDS["username"],
                "SF_PASSWORD": CREDS["password"], "SF_SECURITY_TOKEN": CREDS["token"]})
    return env


# ---- the two clients ----------------------------------------------------------------------

def run_sfengine(emu, work, binary=SFENGINE, wrapper=(), batch_size=2000):
    """One import into a fresh dir under work; -> measurements + output path."""
    d = tempfile.mkdtemp(prefix="sfengine-", dir=work)
    recipe = os.path.join(d, "recipe.lua")
    with open(recipe, "w") as fh:
        fh.write(RECIPE % {"batch_size": batch_size})
    e0 = proc_cpu_s(emu.proc.pid)
    r = run_child(list(wrapper) + [binary, "--quiet", recipe], env=engine_env(emu), cwd=d,
                  stdout_path=os.path.join(d, "stdout"), stderr_path=os.path.join(d, "stderr"))
    r["emulator_cpu_s"] = proc_cpu_s(emu.proc.pid) - e0
    if r["rc"] != 0:
        raise RuntimeError("sfengine exited %d: %s %s" % (r["rc"], tail(os.path.join(d, "stdout")),
                                                          tail(os.path.join(d, "stderr"))))
    r["out"] = os.path.join(d, "out", STREAM + ".ndjson")
    r["dir"] = d
    r["lines"] = count_lines(r["out"])
    r["rejects"] = count_lines(os.path.join(d, "out", "rejects.ndjson"))
    return r


def node_modules():
    """The node_modules holding the pinned jsforce; installs it into bench/.node when missing."""
    with open(os.path.join(JS_PKG, "package.json")) as fh:
        want = json.load(fh)["dependencies"]["jsforce"]
    for d in NODE_DIRS:
        try:
            with open(os.path.join(d, "node_modules", "jsforce", "package.json")) as fh:
                if json.load(fh).get("version") == want:
                    return os.path.join(d, "node_modules")
        except (OSError, ValueError):
            pass
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s is not installed (make deps installs nodejs and npm)" % tool)
    d = NODE_DIRS[-1]
    os.makedirs(d, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(JS_PKG, name), os.path.join(d, name))
    log("installing jsforce@%s into %s (npm ci, lockfile of tests/emulator/jsforce) ..." % (want, d))
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("npm ci failed installing jsforce@%s: %s" % (want, (p.stdout + p.stderr)[-800:]))
    return os.path.join(d, "node_modules")


def run_jsforce(emu, work, modules, soql, scan_all, leads, mode, batch_size=2000):
    d = tempfile.mkdtemp(prefix="jsforce-", dir=work)
    cfg = dict(CREDS, url=emu.url, version=emu.version, soql=soql, scanAll=scan_all, batchSize=batch_size,
               maxFetch=max(leads * 2, 10000), out=os.path.join(d, STREAM + ".ndjson"),
               rejects=os.path.join(d, "rejects.ndjson"), mode=mode)
    env = dict(os.environ, NODE_PATH=modules)
    e0 = proc_cpu_s(emu.proc.pid)
    r = run_child(["node", JS_SCRIPT, json.dumps(cfg)], env=env, cwd=ROOT,
                  stdout_path=os.path.join(d, "stdout"), stderr_path=os.path.join(d, "stderr"))
    r["emulator_cpu_s"] = proc_cpu_s(emu.proc.pid) - e0
    lines = [ln for ln in tail(os.path.join(d, "stdout"), 100000).splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    if r["rc"] != 0 or not report or "error" in report:
        raise RuntimeError("jsforce_import.js exited %d: %s %s" % (r["rc"], report.get("error", ""),
                                                                   tail(os.path.join(d, "stderr"))))
    r["report"] = report
    r["out"] = cfg["out"]
    r["dir"] = d
    r["lines"] = count_lines(cfg["out"])
    r["rejects"] = count_lines(cfg["rejects"])
    return r


def engine_query(request_log):
    """-> (SOQL, scan_all) of the engine's first query, read back from the emulator's request log."""
    with open(request_log, encoding="utf-8") as fh:
        for ln in fh:
            r = json.loads(ln)
            if r.get("endpoint") in ("query", "query_all") and r.get("method") == "GET":
                u = urllib.parse.urlsplit(r["path"])
                q = urllib.parse.parse_qs(u.query).get("q")
                if q:
                    return q[0], r["endpoint"] == "query_all" or "/queryAll" in u.path
    raise RuntimeError("no query in the emulator's request log " + request_log)


def compare_outputs(a_path, b_path, limit=5):
    """Both files line by line as JSON objects (keys and their order), minus the run's time."""
    diffs, n = [], 0
    with open(a_path, encoding="utf-8") as fa, open(b_path, encoding="utf-8") as fb:
        for n, (la, lb) in enumerate(zip(fa, fb), 1):
            if la == lb:
                continue
            a, b = json.loads(la), json.loads(lb)
            a.pop(NOW_KEY, None)
            b.pop(NOW_KEY, None)
            if a != b or list(a) != list(b):
                if len(diffs) < limit:
                    keys = [k for k in list(dict.fromkeys(list(a) + list(b))) if a.get(k) != b.get(k)]
                    diffs.append({"line": n, "fields": {k: [a.get(k), b.get(k)] for k in keys}
                                  or {"(key order)": [list(a), list(b)]}})
                else:
                    diffs.append(None)
    return n, [d for d in diffs if d], len(diffs)


def us_per_record(r):
    return r["cpu_s"] * 1e6 / r["lines"] if r["lines"] else float("nan")


def med(runs, f):
    return statistics.median([f(r) for r in runs])


def save(kind, data):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "%s-%s.json" % (kind, time.strftime("%Y%m%d-%H%M%S")))
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
    return path


# ---- side by side -------------------------------------------------------------------------

def side_by_side(args):
    modes = [m for m in args.jsforce_modes.split(",") if m]
    modules = node_modules() if modes else None
    work = tempfile.mkdtemp(prefix="sfbench-")
    reqlog = os.path.join(work, "requests.ndjson")
    results = {"sfengine": []}
    results.update({"jsforce-" + m: [] for m in modes})
    emu_cpu = {k: [] for k in results}
    soql = scan_all = None
    check = {}
    emu = start_emulator(args.leads, reqlog, args.gzip)
    try:
        for i in range(1, args.runs + 1):
            r = run_sfengine(emu, work, batch_size=args.batch_size)
            log("run %d sfengine: %d lines, %.3f s CPU, %.2f us/record, %.1f s wall, %d MB peak RSS"
                % (i, r["lines"], r["cpu_s"], us_per_record(r), r["wall_s"], r["max_rss_kb"] // 1024))
            results["sfengine"].append(r)
            if soql is None:
                soql, scan_all = engine_query(reqlog)
                log("engine query (%s): %s" % ("queryAll" if scan_all else "query", soql))
            for m in modes:
                j = run_jsforce(emu, work, modules, soql, scan_all, args.leads, m, args.batch_size)
                log("run %d jsforce %s: %d lines, %.3f s CPU, %.2f us/record, %.1f s wall, %d MB peak RSS"
                    % (i, m, j["lines"], j["cpu_s"], us_per_record(j), j["wall_s"], j["max_rss_kb"] // 1024))
                results["jsforce-" + m].append(j)
                if j["lines"] != r["lines"]:
                    raise RuntimeError("line counts differ: sfengine %d, jsforce %s %d"
                                       % (r["lines"], m, j["lines"]))
                if i == 1:
                    n, diffs, ndiff = compare_outputs(r["out"], j["out"])
                    check[m] = {"lines_compared": n, "differing": ndiff, "first": diffs}
                    log("  compared %d lines of sfengine and jsforce %s as JSON: %d differ" % (n, m, ndiff))
                    for d in diffs:
                        log("    line %d: %s" % (d["line"], json.dumps(d["fields"], ensure_ascii=False)[:400]))
                shutil.rmtree(j["dir"], ignore_errors=True)
            shutil.rmtree(r["dir"], ignore_errors=True)
        for k in results:
            emu_cpu[k] = [x["emulator_cpu_s"] for x in results[k]]
        stats = emu.stats()
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for k, runs in results.items():
        summary[k] = {
            "lines": runs[0]["lines"], "rejects": runs[0]["rejects"],
            "cpu_s": med(runs, lambda x: x["cpu_s"]),
            "user_s": med(runs, lambda x: x["user_s"]), "sys_s": med(runs, lambda x: x["sys_s"]),
            "us_per_record": med(runs, us_per_record),
            "us_per_record_runs": [round(us_per_record(x), 2) for x in runs],
            "wall_s": med(runs, lambda x: x["wall_s"]),
            "max_rss_mb": med(runs, lambda x: x["max_rss_kb"]) / 1024,
            "emulator_cpu_s": statistics.median(emu_cpu[k]),
        }
        if k.startswith("jsforce"):
            summary[k]["us_per_record_after_login"] = med(
                runs, lambda x: x["report"]["cpu_query_us"] / x["lines"])
    first = results["sfengine"][0]
    print("\n== side by side: %d Leads generated, %d lines imported (%s, batch_size %d%s), median of %d runs =="
          % (args.leads, first["lines"], "queryAll" if scan_all else "query", args.batch_size,
             ", gzip responses" if args.gzip else "", args.runs))
    print("%-20s %12s %10s %9s %9s %9s %12s %13s" % ("client", "CPU us/rec", "CPU s", "user s", "sys s",
                                                    "wall s", "peak RSS MB", "emulator CPU s"))
    for k, s in summary.items():
        print("%-20s %12.2f %10.3f %9.3f %9.3f %9.1f %12.1f %13.2f" % (
            k, s["us_per_record"], s["cpu_s"], s["user_s"], s["sys_s"], s["wall_s"], s["max_rss_mb"],
            s["emulator_cpu_s"]))
    for k, s in summary.items():
        extra = (", %.2f us/rec after login (node start-up and require excluded)" % s["us_per_record_after_login"]
                 if "us_per_record_after_login" in s else "")
        print("  %-18s runs: %s us/rec%s" % (k, ", ".join("%.2f" % v for v in s["us_per_record_runs"]), extra))
    for m, c in check.items():
        print("  output check vs jsforce-%s: %d lines compared as JSON (minus %s): %d differ"
              % (m, c["lines_compared"], NOW_KEY, c["differing"]))
    ok = True
    eng = summary["sfengine"]["us_per_record"]
    verdicts = []
    base = "jsforce-querymore" if "jsforce-querymore" in summary else next((k for k in summary if k != "sfengine"), None)
    if base:
        js = summary[base]["us_per_record"]
        good = eng * TARGET_RATIO <= js
        ok &= good
        verdicts.append("%s sfengine %.2f us/record <= %s %.2f / %.0f = %.2f" % (
            "PASS" if good else "FAIL", eng, base, js, TARGET_RATIO, js / TARGET_RATIO))
    good = eng <= TARGET_US
    ok &= good
    verdicts.append("%s sfengine %.2f us/record <= %.0f us/record (a third of jsforce's ~30)" % (
        "PASS" if good else "FAIL", eng, TARGET_US))
    for m, c in check.items():
        good = c["differing"] == 0
        ok &= good
        verdicts.append("%s identical output to jsforce-%s (%d lines)" % ("PASS" if good else "FAIL", m, c["lines_compared"]))
    print("targets:")
    for v in verdicts:
        print("  " + v)
    for runs in results.values():
        for x in runs:
            x.pop("out", None)
            x.pop("dir", None)
    path = save("side-by-side", {"args": vars(args), "machine": machine(), "soql": soql, "queryAll": scan_all,
                                 "summary": summary, "check": check, "runs": results, "emulator_stats": stats,
                                 "verdicts": verdicts})
    print("load average at the end: %s (other work on the machine inflates CPU times a little)"
          % " ".join("%.2f" % x for x in os.getloadavg()))
    print("results: %s" % os.path.relpath(path, ROOT))
    return ok


# ---- memory -------------------------------------------------------------------------------

def memory(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    modules = node_modules() if args.with_jsforce else None
    rows = []
    for n in sizes:
        work = tempfile.mkdtemp(prefix="sfbench-mem-")
        reqlog = os.path.join(work, "requests.ndjson")
        emu = start_emulator(n, reqlog)
        try:
            r = run_sfengine(emu, work)
            row = {"leads": n, "lines": r["lines"], "max_rss_mb": r["max_rss_kb"] / 1024,
                   "cpu_s": r["cpu_s"], "us_per_record": us_per_record(r), "wall_s": r["wall_s"]}
            shutil.rmtree(r["dir"], ignore_errors=True)
            if modules:
                soql, scan_all = engine_query(reqlog)
                j = run_jsforce(emu, work, modules, soql, scan_all, n, "querymore")
                row["jsforce_querymore_rss_mb"] = j["max_rss_kb"] / 1024
                shutil.rmtree(j["dir"], ignore_errors=True)
            rows.append(row)
            log("N=%d: %d lines, peak RSS %.1f MB" % (n, row["lines"], row["max_rss_mb"]))
        finally:
            emu.stop()
            shutil.rmtree(work, ignore_errors=True)
    print("\n== memory: sfengine peak RSS (ru_maxrss) by Leads imported ==")
    hdr = "%10s %10s %14s %12s %10s" % ("Leads", "lines", "peak RSS MB", "CPU us/rec", "wall s")
    if modules:
        hdr += " %22s" % "jsforce(querymore) MB"
    print(hdr)
    for r in rows:
        ln = "%10d %10d %14.1f %12.2f %10.1f" % (r["leads"], r["lines"], r["max_rss_mb"], r["us_per_record"], r["wall_s"])
        if modules:
            ln += " %22.1f" % r["jsforce_querymore_rss_mb"]
        print(ln)
    ok = True
    if len(rows) >= 2:
        lo, hi = rows[0]["max_rss_mb"], rows[-1]["max_rss_mb"]
        ok = hi <= lo * TARGET_RSS_GROWTH
        print("targets:\n  %s peak RSS at %d Leads %.1f MB <= %.2f x %.1f MB (at %d Leads) = %.1f MB (flat)" % (
            "PASS" if ok else "FAIL", rows[-1]["leads"], hi, TARGET_RSS_GROWTH, lo, rows[0]["leads"],
            lo * TARGET_RSS_GROWTH))
    path = save("memory", {"args": vars(args), "machine": machine(), "rows": rows})
    print("results: %s" % os.path.relpath(path, ROOT))
    return ok


# ---- profile ------------------------------------------------------------------------------

def _symbol_files(binary):
    """{symbol: component} for the engine's own objects and the static libraries linked in."""
    comp = {}
    build = os.path.join(ROOT, os.environ.get("BUILD", "build"))
    if os.path.isdir(build):
        for f in sorted(os.listdir(build)):
            if f.endswith(".o") and f != "embedded.o":
                for ln in _cmd(["nm", "--defined-only", os.path.join(build, f)]).splitlines():
                    parts = ln.split()
                    if len(parts) == 3 and parts[1] in "tT":
                        name = "engine/" + f[:-2] + ".c"
                        prev = comp.get(parts[2])
                        comp[parts[2]] = name if prev in (None, name) else prev + "|" + name
    for lib, name in (("liblua5.4-cjson.a", "cjson"), ("liblua5.4.a", "Lua VM/GC")):
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/local/lib"):
            p = os.path.join(d, lib)
            if os.path.exists(p):
                for ln in _cmd(["nm", "--defined-only", p]).splitlines():
                    parts = ln.split()
                    if len(parts) == 3 and parts[1] in "tT":
                        comp.setdefault(parts[2], name)
                break
    return comp


LIBC_MEM = re.compile(r"mem(cpy|move|set|cmp|chr)|str(len|cmp|ncmp|chr)")
LIBC_ALLOC = re.compile(r"malloc|free|realloc|calloc|_int_|unlink_chunk|consolidate|tcache|brk|arena")


def component(dso, sym, comp, binary_name):
    base = os.path.basename(dso)
    sym = sym.split("@")[0].replace(" (inlined)", "")
    if dso.startswith("[kernel") or base.startswith("vmlinux") or dso == "[k]":
        return "kernel (syscalls: recv, write, fsync, page faults)"
    if base == binary_name or base.startswith("sfengine"):
        c = comp.get(sym)
        if c is None and "." in sym:
            c = comp.get(sym.split(".")[0])
        if c == "engine/json.c":
            return "engine/json.c (JSON tokenizer)"
        return c or "sfengine (other)"
    if base.startswith("liblua5.4-cjson"):
        return "cjson"
    if base.startswith("liblua"):
        return "Lua VM/GC"
    if base.startswith("libcurl"):
        return "libcurl"
    if base.startswith(("libssl", "libcrypto")):
        return "OpenSSL"
    if base.startswith("libz."):
        return "zlib (gzip)"
    if base.startswith("libsqlite"):
        return "SQLite"
    if base.startswith("libc.") or base.startswith("libc-"):
        if LIBC_MEM.search(sym):
            return "libc memcpy/memmove/str*"
        if LIBC_ALLOC.search(sym):
            return "libc malloc/free"
        return "libc (other)"
    if base.startswith("ld-linux"):
        return "dynamic loader"
    return "other: " + base


# Entry points whose inclusive cost the profile prints (C functions of the per-page path).
ENTRY_POINTS = {
    "json_decode": "cjson.decode (scripts/sf/client.lua decodes every JSON response body)",
    "l_parse": "sf.page.parse (engine/page.c + json.c tokenizer)",
    "l_map_page": "sf.mapper map_page (engine/mapper.c)",
    "l_request": "sf.http.request (libcurl, recv, body buffer)",
    "l_file_write": "sf.fs write of the NDJSON page",
    "l_file_sync": "sf.fs sync (fsync per page)",
    "l_write_atomic": "sf.fs.write_atomic (state checkpoint per page)",
    "json_encode": "cjson.encode (state checkpoint, budget)",
    "asm_exc_page_fault": "page faults (fresh memory touched)",
}


def perf_usable():
    """-> 'hw' (hardware counters), 'sw' (cpu-clock sampling only) or None."""
    if shutil.which("perf") is None:
        return None
    st = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"], capture_output=True, text=True, timeout=60)
    if st.returncode == 0 and "not supported" not in st.stderr and "<not" not in st.stderr:
        return "hw"
    with tempfile.TemporaryDirectory() as d:
        rec = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", os.path.join(d, "p.data"), "true"],
                             capture_output=True, text=True, timeout=60)
    return "sw" if rec.returncode == 0 else None


def profile(args):
    binary = os.path.abspath(args.binary or SFENGINE)
    kind = perf_usable() if args.tool in ("auto", "perf") else None
    tool = "perf" if kind else "callgrind"
    if args.tool == "perf" and not kind:
        raise RuntimeError("perf cannot sample here")
    if tool == "callgrind" and shutil.which("valgrind") is None:
        print("profile skipped: neither perf nor valgrind is usable here")
        return True
    leads = args.leads or (100000 if tool == "perf" else 20000)
    work = tempfile.mkdtemp(prefix="sfbench-prof-")
    data = os.path.join(work, "perf.data" if tool == "perf" else "callgrind.out")
    if tool == "perf":
        event = "cycles" if kind == "hw" else "cpu-clock"
        # DWARF unwinding: the engine is built without frame pointers.
        wrapper = ["perf", "record", "-e", event, "-F", "999", "--call-graph", "dwarf", "-o", data, "--"]
        how = "perf record -e %s -F 999 --call-graph dwarf" % event
    else:
        wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + data]
        how = "valgrind --tool=callgrind"
    emu = start_emulator(leads, gzip=args.gzip)
    try:
        plain = run_sfengine(emu, work, binary)                    # the CPU time without a profiler
        shutil.rmtree(plain["dir"], ignore_errors=True)
        r = run_sfengine(emu, work, binary, wrapper)
    finally:
        emu.stop()
    comp = _symbol_files(binary)
    bname = os.path.basename(binary)
    rows = []                      # (share %, dso, symbol)
    if tool == "perf":
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                              "-g", "none", "--percent-limit", "0.01"], capture_output=True, text=True, timeout=600)
        for ln in rep.stdout.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$", ln)
            if m:
                sym = m.group(4).split("  ")[0].strip()
                dso = m.group(2) if m.group(3) != "k" else "[kernel]"
                rows.append((float(m.group(1)), dso, sym))
    else:
        rep = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", data],
                             capture_output=True, text=True, timeout=600)
        total = None
        entries = []
        for ln in rep.stdout.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+PROGRAM TOTALS", ln) or re.match(r"\s*([\d,]+)\s+PROGRAM TOTALS", ln)
            if m:
                total = int(m.group(1).replace(",", ""))
                continue
            m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?):(\S+?)(?: \[(.+)\])?\s*$", ln)
            if m and total:
                entries.append((int(m.group(1).replace(",", "")), m.group(4) or m.group(2), m.group(3)))
        for ir, dso, sym in entries:
            sym = re.sub(r"'\d+$", "", sym)             # callgrind's recursion depth suffix
            rows.append((ir * 100.0 / total, dso if dso.startswith("/") else bname, sym))
    inclusive = {}
    if tool == "perf":
        rep = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio", "-g", "none",
                              "--percent-limit", "0.05"], capture_output=True, text=True, timeout=900)
        for ln in rep.stdout.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+[\d.]+%\s+\[(.)\]\s+(\S+)", ln)
            if m and m.group(3) in ENTRY_POINTS:
                inclusive[m.group(3)] = max(inclusive.get(m.group(3), 0.0), float(m.group(1)))
    else:
        rep = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", data],
                             capture_output=True, text=True, timeout=600)
        total = None
        for ln in rep.stdout.splitlines():
            m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?PROGRAM TOTALS", ln)
            if m:
                total = int(m.group(1).replace(",", ""))
                continue
            m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?\S.*?:(\S+?)(?: \[.+\])?\s*$", ln)
            sym = m and re.sub(r"'\d+$", "", m.group(2))
            if m and total and sym in ENTRY_POINTS:
                inclusive[sym] = max(inclusive.get(sym, 0.0), int(m.group(1).replace(",", "")) * 100.0 / total)
    buckets = {}
    for share, dso, sym in rows:
        c = component(dso, sym, comp, bname)
        buckets[c] = buckets.get(c, 0.0) + share
    per_rec = plain["cpu_s"] * 1e6 / plain["lines"]
    print("\n== profile: sfengine importing %d Leads (%d lines)%s, %s ==" % (
        leads, r["lines"], ", gzip responses" if args.gzip else "", how))
    if tool == "callgrind":
        print("(shares of instructions executed in user space, kernel excluded; us/record = share x unprofiled CPU)")
    print("without the profiler: %.3f s CPU, %.2f us/record" % (plain["cpu_s"], per_rec))
    print("%-52s %7s %10s" % ("component", "share", "us/record"))
    for c, s in sorted(buckets.items(), key=lambda x: -x[1]):
        if s >= 0.2:
            print("%-52s %6.1f%% %10.2f" % (c, s, s * per_rec / 100))
    if inclusive:
        print("inclusive (the function and everything it calls, Lua allocation and GC included):")
        for sym, what in ENTRY_POINTS.items():
            if inclusive.get(sym, 0) >= 0.05:
                print("  %6.1f%% %8.2f us/rec  %-22s %s" % (inclusive[sym], inclusive[sym] * per_rec / 100, sym, what))
    print("top functions (self):")
    for share, dso, sym in sorted(rows, key=lambda x: -x[0])[:args.top]:
        print("  %6.2f%%  %-40s %s" % (share, sym[:40], component(dso, sym, comp, bname)))
    keep = os.path.join(OUT_DIR, os.path.basename(data))
    os.makedirs(OUT_DIR, exist_ok=True)
    shutil.copyfile(data, keep)
    path = save("profile", {"args": vars(args), "machine": machine(), "tool": how, "leads": leads,
                            "lines": r["lines"], "cpu_s_unprofiled": plain["cpu_s"], "us_per_record": per_rec,
                            "components": buckets, "functions": sorted(rows, key=lambda x: -x[0])[:200]})
    print("results: %s; raw profile: %s" % (os.path.relpath(path, ROOT), os.path.relpath(keep, ROOT)))
    shutil.rmtree(work, ignore_errors=True)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    for name in ("side-by-side", "memory", "profile", "all"):
        p = sub.add_parser(name)
        if name in ("side-by-side", "all"):
            p.add_argument("--leads", type=int, default=100000)
            p.add_argument("--runs", type=int, default=3)
            p.add_argument("--jsforce-modes", default="querymore,autofetch",
                           help="comma list of querymore, autofetch ('' for none)")
            p.add_argument("--batch-size", type=int, default=2000, help="recipe batch_size / jsforce batchSize")
            p.add_argument("--gzip", action="store_true", help="emulator --gzip: gzip responses (both clients ask)")
        if name in ("memory", "all"):
            p.add_argument("--sizes", default="20000,100000,300000")
            p.add_argument("--with-jsforce", action="store_true", help="also jsforce's peak RSS (querymore)")
        if name == "profile":
            p.add_argument("--leads", type=int, default=0, help="default 100000 (perf) or 20000 (callgrind)")
            p.add_argument("--tool", choices=("auto", "perf", "callgrind"), default="auto")
            p.add_argument("--binary", help="sfengine binary to profile (default ./sfengine)")
            p.add_argument("--top", type=int, default=25)
            p.add_argument("--gzip", action="store_true", help="emulator --gzip: gzip responses")
    args = ap.parse_args()
    if not os.access(SFENGINE, os.X_OK) and not getattr(args, "binary", None):
        sys.exit("no %s: run `make` first (make bench does)" % SFENGINE)
    print(machine_line(machine()))
    ok = True
    if args.cmd in ("side-by-side", "all"):
        ok &= side_by_side(args)
    if args.cmd in ("memory", "all"):
        ok &= memory(args)
    if args.cmd == "profile":
        ok &= profile(args)
    if args.cmd is None:
        ap.print_help()
        return 2
    if not ok:
        print("some targets were missed (see FAIL above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
