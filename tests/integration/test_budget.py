"""The API budget across runs and processes:

  * a shared budget file (`shared_budget = "path"`) drawn on by two concurrent
    processes, with and without injected failures: per 24 h window the sum of
    their calls never exceeds the maximum, and the engines' counts equal the
    emulator's; both finish with output identical to a clean run
  * the job budget is persisted across runs (budget file, and the job state's
    copy when the file is gone)
  * a damaged budget file counts as spent, never as zero
"""
import json
import os
import unittest

import engine  # noqa: F401 (paths)
from faultlib import Org, Job, import_recipe, STREAMS4, PAUSED_RE, DAY
import tap

ORG = Org(["--generate", "Lead=3000,Contact=1000,Account=300,Opportunity=500"])
BASE = {}


def counter_used(text):
    """Calls in an sf.limits counter dump ("c1:<minute>:<age>=<n>...") within its window."""
    parts = text.strip().split(":")
    return sum(int(p.split("=")[1]) for p in parts[2:])


class SharedBudget(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not BASE:
            BASE.update(ORG.baseline(import_recipe("clean"), STREAMS4))
        cls.base = BASE

    def shared_run(self, emu_args, max_daily=20):
        with ORG.emulator(emu_args) as emu:
            jobs = []
            try:
                shared_dir = Job(emu, "holder", "return {}")
                jobs.append(shared_dir)
                shared = shared_dir.w.path("org.budget")
                for name in ("a", "b"):
                    extra = 'max_daily_api_calls = %d, shared_budget = "%s",' % (max_daily, shared)
                    jobs.append(Job(emu, name, import_recipe(name, extra=extra)))
                a, b = jobs[1], jobs[2]
                windows = []
                done = set()
                for _ in range(12):
                    before = emu.stats()["api_calls"]
                    procs = {j.name: j.popen() for j in (a, b) if j.name not in done}
                    codes = {}
                    for name, p in procs.items():
                        out, err = p.communicate(timeout=300)
                        codes[name] = p.returncode
                        self.assertIn(p.returncode, (0, 3), err)
                        if p.returncode == 3:
                            m = PAUSED_RE.search(err)
                            self.assertTrue(m and m.group(1).startswith("job budget reached"), err)
                        else:
                            done.add(name)
                    used = emu.stats()["api_calls"] - before
                    windows.append(used)
                    self.assertLessEqual(used, max_daily, "two processes never exceed the shared maximum in a window")
                    with open(shared) as f:
                        self.assertEqual(counter_used(f.read()), used, "the shared file counts exactly the calls made")
                    if len(done) == 2:
                        break
                    for j in (a, b):
                        j.offset += DAY + 60
                    emu.advance_clock(DAY + 60)
                self.assertEqual(done, {"a", "b"}, windows)
                self.assertEqual(windows[0], max_daily, "the first window is used to the last call")
                self.assertTrue(a.history()[0]["api_calls"] > 0 and b.history()[0]["api_calls"] > 0,
                                "both processes drew on the first window at the same time")
                for j in (a, b):
                    j.assert_outputs(self, self.base, STREAMS4)
                    self.assertTrue(all(h["api_calls"] <= max_daily for h in j.history()))
                st = emu.stats()
                self.assertEqual(a.engine_calls() + b.engine_calls(), st["api_calls"],
                                 "the engines' counts add up to the emulator's")
                self.assertFalse(os.path.exists(a.w.path(".sfengine", "a.budget")), "no private budget file")
                return windows, st
            finally:
                for j in jobs:
                    j.cleanup()

    def test_two_processes_share_one_budget(self):
        """two concurrent processes on one shared budget file: <= max per window, counts equal, outputs identical"""
        windows, _ = self.shared_run(["--latency-ms", "5"])
        self.assertGreaterEqual(len(windows), 3, windows)

    def test_two_processes_share_one_budget_with_failures(self):
        """the same with 15% 503s and dropped connections: refunds under the lock keep the sum exact"""
        windows, st = self.shared_run(["--latency-ms", "5", "--fail-rate", "0.15", "--fail-kinds", "503,drop"])
        self.assertGreater(sum(st["injected"].values()), 3, st)


class JobBudget(unittest.TestCase):
    def test_budget_persisted_across_runs(self):
        """the job's window survives the process: budget file, then the state's copy when the file is gone"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t", extra="max_daily_api_calls = 10,"))
            try:
                p = job.run()
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertEqual(emu.stats()["api_calls"], 10)
                budget_file = job.w.path(".sfengine", "t.budget")
                with open(budget_file) as f:
                    self.assertEqual(counter_used(f.read()), 10)
                self.assertEqual(counter_used(job.state()["budget"]), 10, "the job state holds a copy")
                os.remove(budget_file)
                requests = emu.stats()["requests"]
                p = job.run()
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertEqual(emu.stats()["requests"], requests, "the state's copy still counts the 10 calls")
                job.write_recipe(import_recipe("t", extra="max_daily_api_calls = 12,"))
                p = job.run()
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertEqual(emu.stats()["api_calls"], 12, "a larger maximum allows exactly the difference")
                job.assert_counts_match(self)
            finally:
                job.cleanup()

    def test_damaged_budget_file_counts_as_spent(self):
        """a damaged budget file: a warning, paused (exit 3) for a day, nothing sent"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t", extra="max_daily_api_calls = 1000,"))
            try:
                os.makedirs(job.w.path(".sfengine"), exist_ok=True)
                with open(job.w.path(".sfengine", "t.budget"), "w") as f:
                    f.write("c1:garbage")
                p = job.run()
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn("unreadable", p.stderr)
                self.assertRegex(p.stderr, PAUSED_RE)
                self.assertEqual(emu.stats()["requests"], 0)
            finally:
                job.cleanup()


if __name__ == "__main__":
    tap.main()
