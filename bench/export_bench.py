#!/usr/bin/env python3
"""Export benchmark: CPU, wall time, peak memory and API calls of sfengine exporting profiles to Leads.

    python3 bench/export_bench.py [--users 10000] [--runs 3] [--binary PATH]

One emulator (tests/emulator/server.py, high API limit) per round; in each round one recipe
(object Lead, match_field Email: the lookup path, batches of 200) runs three times on one state dir:
  create     N new profiles: one SOQL IN lookup per 200 users, then Collections creates
  update     the same N users with a changed title: lookups, then Collections updates
  unchanged  the same file again: the trigger store skips every user, no API call
CPU is user+sys of the sfengine process alone (os.wait4 rusage), so the emulator's time is not
counted; us/user = CPU / N. Medians over the rounds are printed; results also go to
bench/.out/export-<time>.json (git-ignored). Use --binary to measure another build side by side.
There is no target yet: the figures are the reference a later optimisation is held against.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
from harness import Emulator  # noqa: E402

OUT_DIR = os.path.join(HERE, ".out")
RUN_TIMEOUT = 1800   # seconds, any one run

RECIPE = """-- written by bench/export_bench.py
return {
  job = "export",
  name = "bench-export",
  auth = sf.auth_from_env(),
  input = { file = "profiles.ndjson" },
  output = "out",
  object = "Lead",
  match_field = "Email",
  audiences = { "bench" },
  extra_fields = { LeadSource = { value = "Bench" }, Industry = "industry" },
  audiences_field = "Description",
}
"""


def profiles(n, title):
    lines = []
    for i in range(n):
        lines.append(json.dumps({
            "id": "u%d" % i, "audiences": ["bench"],
            "fields": {"email": "user%d@bench.example" % i, "first_name": "First%d" % i,
                       "last_name": "Last%d" % i, "company": "Company %d" % (i % 97),
                       "title": title, "industry": "Technology", "phone": "+1 555 %07d" % i},
        }) + "\n")
    return "".join(lines)


def run_engine(binary, recipe, env):
    start = time.monotonic()
    p = subprocess.Popen([binary, "--quiet", recipe], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = start + RUN_TIMEOUT
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            raise RuntimeError("sfengine did not finish in %d s" % RUN_TIMEOUT)
        time.sleep(0.01)
    wall = time.monotonic() - start
    err = p.stderr.read().decode("utf-8", "replace")
    p.stdout.close()
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("sfengine exited %d: %s" % (code, err[-2000:]))
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "rss_mb": ru.ru_maxrss / 1024}


def one_round(binary, users):
    out = {}
    with tempfile.TemporaryDirectory(prefix="sfengine-export-bench-") as wd, \
            Emulator(["--api-limit", "100000000"]) as emu:
        recipe = os.path.join(wd, "recipe.lua")
        with open(recipe, "w") as f:
            f.write(RECIPE)
        env = dict(os.environ, SF_LOGIN_URL=emu.url, SF_CLIENT_ID="demo-client-id",
                   SF_CLIENT_SECRET="demo-client-secret", SF_USERNAME="demo@example.com",
                   SF_PASSWORD="demo-password", SF_SECURITY_TOKEN="DEMOTOKEN")
        for phase, title in (("create", "Engineer"), ("update", "Director"), ("unchanged", "Director")):
            with open(os.path.join(wd, "profiles.ndjson"), "w") as f:
                f.write(profiles(users, title))
            before = emu.stats()["api_calls"]
            r = run_engine(binary, recipe, env)
            r["api_calls"] = emu.stats()["api_calls"] - before
            r["us_per_user"] = r["cpu_s"] * 1e6 / users
            out[phase] = r
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, os.environ.get("SFENGINE", "sfengine")))
    a = ap.parse_args()
    rounds = []
    for i in range(a.runs):
        rounds.append(one_round(a.binary, a.users))
        print("round %d: %s" % (i + 1, ", ".join("%s %.0f us/user" % (k, v["us_per_user"]) for k, v in rounds[-1].items())),
              flush=True)
    print("== export of %d profiles to Lead by Email (%s), median of %d rounds" % (a.users, a.binary, a.runs))
    print("%-10s %10s %10s %10s %10s %10s" % ("run", "CPU s", "us/user", "wall s", "RSS MB", "API calls"))
    summary = {}
    for phase in ("create", "update", "unchanged"):
        med = {k: statistics.median(r[phase][k] for r in rounds) for k in rounds[0][phase]}
        summary[phase] = med
        print("%-10s %10.2f %10.1f %10.2f %10.1f %10d" % (phase, med["cpu_s"], med["us_per_user"], med["wall_s"],
                                                       med["rss_mb"], med["api_calls"]))
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "export-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump({"users": a.users, "binary": a.binary, "rounds": rounds, "median": summary}, f, indent=1)
    print("results: %s" % path)


if __name__ == "__main__":
    main()
