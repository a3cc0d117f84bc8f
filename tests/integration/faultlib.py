"""Reusable pieces for budget and fault-injection tests (import now, export
later): a fixed org, a clean baseline, runs repeated until done with the
job's clock moved past each pause, the engine's API-call count from the
run history, and the comparison with the emulator's.

    from faultlib import Org, Job, normalized
    org = Org(["--generate", "Lead=500"])                 # same data in every emulator
    base = org.baseline(import_recipe("clean", ...), STREAMS)   # outputs of a clean run
    with org.emulator(["--fail-rate", "0.1"]) as emu:
        job = Job(emu, "t", import_recipe("t", ...))
        codes = job.run_until_done(advance=86400)         # exit codes of each run
        job.assert_outputs(test, base, STREAMS)
        job.assert_counts_match(test)                     # engine api_calls == emulator api_calls
        job.cleanup()

Every loop is bounded (run count, time); the emulator is on loopback.
"""
import json
import os
import re
import signal
import subprocess
import time

import engine
from engine import Workdir, credentials_env, run, popen, normalized, wait_for  # noqa: F401 (re-exported)
from harness import Emulator

# A fixed emulator clock start: --generate with a seed and a clock gives the
# same records, ids and timestamps in every emulator instance.
CLOCK = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400
ALL4 = "{ Lead = {}, Contact = {}, Account = {}, Opportunity = {} }"
STREAMS4 = ["salesforce_leads", "salesforce_contacts", "salesforce_accounts", "salesforce_opportunities"]
PAUSED_RE = re.compile(r"paused: (.+), resumes at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


def import_recipe(name, objects=ALL4, batch=200, extra=""):
    return engine.import_recipe(name, objects, "batch_size = %d,\n  %s" % (batch, extra))


def read_streams(w, streams):
    return {s: normalized(w.read_ndjson("out", s + ".ndjson")) for s in streams}


class Org:
    """Emulator arguments that give the same org every time (--seed also picks
    the generated data: vary --fail-rate, not --seed, to move failures)."""

    def __init__(self, generate_args, seed=7):
        self.args = list(generate_args) + ["--seed", str(seed), "--clock", str(CLOCK)]

    def emulator(self, extra=()):
        return Emulator(self.args + list(extra))

    def baseline(self, recipe_text, streams, name="clean"):
        """Outputs of one clean run, and the API calls it took."""
        with self.emulator() as emu:
            job = Job(emu, name, recipe_text)
            try:
                job.run(check=0)
                return {"streams": job.streams(streams), "api_calls": emu.stats()["api_calls"]}
            finally:
                job.cleanup()


class Job:
    """One recipe in its own work directory, run against one emulator."""

    def __init__(self, emu, name, recipe_text, env=None):
        self.emu = emu
        self.name = name
        self.w = Workdir()
        self.path = self.w.write("job.lua", recipe_text)
        self.env = credentials_env(emu, **(env or {}))
        self.offset = 0       # SFENGINE_CLOCK_OFFSET given to the next run
        self.runs = []        # CompletedProcess of each run

    def write_recipe(self, text):
        self.path = self.w.write("job.lua", text)

    def env_with(self, **extra):
        env = dict(self.env)
        env["SFENGINE_CLOCK_OFFSET"] = str(self.offset)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, *args, check=None, timeout=300, **env):
        p = run(self.path, self.env_with(**env), *args, timeout=timeout, check=check)
        self.runs.append(p)
        return p

    def popen(self, *args, **env):
        return popen(self.path, self.env_with(**env), *args)

    def advance(self, seconds):
        """Moves both clocks: the emulator's (its API usage window, sessions,
        cursors) and the job's (budget windows, pauses, schedule)."""
        self.emu.advance_clock(seconds)
        self.offset += seconds

    def run_until_done(self, advance=DAY + 60, max_runs=12, on_paused=None):
        """Runs; after each pause (exit 3) moves both clocks by `advance` and
        runs again, until exit 0. Returns the exit codes."""
        codes = []
        for _ in range(max_runs):
            p = self.run()
            codes.append(p.returncode)
            if p.returncode == 0:
                return codes
            if p.returncode != 3:
                raise AssertionError("run exited %d\nstdout: %s\nstderr: %s"
                                     % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
            if on_paused:
                on_paused(self, p)
            self.advance(advance)
        raise AssertionError("not done after %d runs: %r" % (max_runs, codes))

    def history(self):
        return self.w.read_ndjson(".sfengine", self.name + ".history.ndjson")

    def state(self):
        with open(self.w.path(".sfengine", self.name + ".state.json")) as f:
            return json.load(f)

    def engine_calls(self):
        """API calls the engine counted, summed over its run history."""
        return sum(h["api_calls"] for h in self.history())

    def streams(self, streams):
        return read_streams(self.w, streams)

    def assert_outputs(self, test, baseline, streams):
        got = self.streams(streams)
        for s in streams:
            test.assertEqual(len(got[s]), len(baseline["streams"][s]), s)
            test.assertEqual(got[s], baseline["streams"][s], s)

    def assert_counts_match(self, test, emu=None, extra_engine_calls=0):
        st = (emu or self.emu).stats()
        test.assertEqual(self.engine_calls() + extra_engine_calls, st["api_calls"],
                         "engine-counted API calls equal the emulator's (stats %r, history %r)"
                         % ({k: st[k] for k in ("api_calls", "by_endpoint", "requests", "rejected", "injected", "logins")},
                            [h["api_calls"] for h in self.history()]))
        return st

    def cleanup(self):
        self.w.cleanup()



def stop(proc, sig=signal.SIGTERM, timeout=30):
    """Sends sig and waits; returns (returncode, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("process did not exit within %ss of signal %d" % (timeout, sig))
    return proc.returncode, out, err, time.monotonic() - t0


def counter_dump(minute, calls):
    """An sf.limits counter holding `calls` calls in epoch minute `minute`."""
    return "c1:%d:0=%d" % (minute, calls)
