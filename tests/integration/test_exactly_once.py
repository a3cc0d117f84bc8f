"""Exactly once: records sharing one timestamp across page boundaries, and a
SIGKILL at random points followed by reruns, end with the same stream as one
clean run: no record lost, none duplicated."""
import os
import random
import signal
import time
import unittest

import engine
from engine import Workdir, credentials_env, run, popen, import_recipe, normalized
from harness import Emulator
import tap

KILLS = int(os.environ.get("SFENGINE_KILLS", "24"))


def recipe(name, objects, batch=200):
    return import_recipe(name, objects, "batch_size = %d," % batch)


class ExactlyOnce(unittest.TestCase):
    def test_equal_timestamps_across_pages(self):
        """450 leads sharing one timestamp, pages of 200: each read once, none skipped"""
        with Emulator(["--generate", "Lead=0"]) as emu:
            ts = "2024-05-05T05:05:05.000+0000"
            rows = [{"Id": "00Q%012d" % (i + 1), "LastName": "Same%d" % i, "Company": "C",
                     "Status": "Open", "CreatedDate": ts, "LastModifiedDate": ts, "SystemModstamp": ts,
                     "IsDeleted": False} for i in range(450)]
            emu.post("/__emulator/records/Lead", rows)
            w = Workdir()
            try:
                path = w.write("job.lua", recipe("same", "{ Lead = {} }"))
                p = run(path, credentials_env(emu), check=0)
                got = w.read_ndjson("out", "salesforce_leads.ndjson")
                ids = [r["salesforce_lead_ids"][0] for r in got]
                self.assertEqual(len(ids), 450, p.stdout)
                self.assertEqual(len(set(ids)), 450)
                self.assertEqual(ids, sorted(ids), "ordered by (timestamp, Id)")
                stats = emu.stats()
                self.assertEqual(stats["by_endpoint"].get("query_all", 0) + stats["by_endpoint"].get("query_more", 0), 3,
                                 "3 pages of at most 200: %r" % stats["by_endpoint"])
                # A new record with the same timestamp and a higher Id appears after the run:
                emu.post("/__emulator/records/Lead", [dict(rows[0], Id="00Q999999999999", LastName="Late")])
                run(path, credentials_env(emu), check=0)
                got = w.read_ndjson("out", "salesforce_leads.ndjson")
                self.assertEqual([r["salesforce_lead_ids"][0] for r in got[450:]], ["00Q999999999999EAA"])
            finally:
                w.cleanup()

    def test_sigkill_at_random_points_then_resume(self):
        """SIGKILL at >= 20 random points, then reruns: output identical to a clean run"""
        args = ["--generate", "Lead=3000,Contact=1500,Account=300,Opportunity=600", "--seed", "11", "--latency-ms", "15"]
        objects = "{ Lead = {}, Contact = {}, Account = {}, Opportunity = {} }"
        streams = ["salesforce_leads", "salesforce_contacts", "salesforce_accounts", "salesforce_opportunities"]
        with Emulator(args) as emu:
            clean = Workdir()
            killed = Workdir()
            try:
                path = clean.write("job.lua", recipe("clean", objects))
                t0 = time.monotonic()
                run(path, credentials_env(emu), check=0)
                duration = time.monotonic() - t0
                want = {s: normalized(clean.read_ndjson("out", s + ".ndjson")) for s in streams}
                self.assertGreater(sum(len(v) for v in want.values()), 5000)

                rng = random.Random(20261123)
                path = killed.write("job.lua", recipe("killed", objects))
                kills = 0
                finished = False
                deadline = time.monotonic() + 600
                while not finished and time.monotonic() < deadline:
                    proc = popen(path, credentials_env(emu))
                    if kills < KILLS:
                        time.sleep(rng.uniform(0.0, max(0.3, duration / 6)))
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGKILL)
                            proc.wait()
                            kills += 1
                            continue
                    out, err = proc.communicate(timeout=300)
                    self.assertEqual(proc.returncode, 0, err)
                    finished = True
                self.assertTrue(finished, "the killed job finished within the time bound")
                self.assertGreaterEqual(kills, 20)
                for s in streams:
                    got = normalized(killed.read_ndjson("out", s + ".ndjson"))
                    self.assertEqual(len(got), len(want[s]), s)
                    self.assertEqual(got, want[s], s)
            finally:
                clean.cleanup()
                killed.cleanup()


if __name__ == "__main__":
    tap.main()
