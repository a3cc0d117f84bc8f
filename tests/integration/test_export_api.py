"""Export API economy and robustness against the emulator: API calls per
1,000 users (external-ID upsert, lookups), a create whose response is lost,
injected 503s, a budget pause and a kill with resume, and real-time
micro-batches from stdin (--follow semantics)."""
import json
import os
import signal
import sys
import unittest

from exportkit import ORG, Job, Lua, recipe, profile, profile as P, records, by_email, writes, calls
from engine import wait_for
from harness import Emulator
import tap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulator"))
from server import _mix64  # noqa: E402  (the emulator's failure schedule)


def users(n, start=0, **extra):
    return [P("u%05d" % i, email="user%05d@x.example" % i, last_name="L%d" % i, company="C", **extra)
            for i in range(start, start + n)]


def failing(seed, n, rate):
    return _mix64((seed << 32) ^ n) / float(1 << 64) < rate


def seed_where(rate, fail=(), ok=()):
    """A --seed whose failure schedule fails exactly the request numbers in
    `fail` and none in `ok` (request 1 is the login)."""
    for seed in range(1, 200000):
        if all(failing(seed, n, rate) for n in fail) and not any(failing(seed, n, rate) for n in ok):
            return seed
    raise AssertionError("no seed found")


class ApiCalls(unittest.TestCase):
    def test_external_id_upsert_at_most_5_per_1000(self):
        """external-ID match: one Collections upsert per 200 users, <= 5 API calls per 1,000 users"""
        with Emulator(["--data", ORG]) as emu:
            r = recipe(match_field="Ext_Id__c", extra_fields={"Ext_Id__c": Lua("{ id = true }")})
            job = Job(emu, r, users(1000))
            job.run()
            st = emu.stats()
            # cold: 5 upserts + the describe (cached in the state for the next runs)
            self.assertEqual(st["by_endpoint"], {"describe": 1, "composite_sobjects": 5})
            self.assertEqual(len(emu.records("Lead")), 1000)
            emu.reset_stats()
            job.input(users(1000, title="changed"))
            job.run()
            st = emu.stats()
            self.assertLessEqual(st["api_calls"], 5, st)
            self.assertEqual(st["by_endpoint"], {"composite_sobjects": 5})
            self.assertEqual(job.last()["updated"], 1000)
            self.assertEqual(len(emu.records("Lead")), 1000)
            job.cleanup()

    def test_lookups_at_most_10_per_1000(self):
        """lookup match (Email): one IN query per 200 users + one write per 200 records, <= 10 per 1,000"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), users(1000))
            job.run()
            st = emu.stats()
            self.assertEqual(st["by_endpoint"], {"describe": 1, "query": 5, "composite_sobjects": 5})
            self.assertEqual(job.last()["created"], 1000)
            emu.reset_stats()
            job.input(users(1000, title="changed"))          # every one exists: 5 lookups + 5 updates
            job.run()
            st = emu.stats()
            self.assertLessEqual(st["api_calls"], 10, st)
            self.assertEqual(job.last()["updated"], 1000)
            emu.reset_stats()
            # a mix costs 5 + ceil(updates/200) + ceil(creates/200): 500/500 -> 11
            job.input(users(500, title="again") + users(500, start=1000))
            job.run()
            st = emu.stats()
            self.assertLessEqual(st["api_calls"], 11, st)
            self.assertEqual((job.last()["updated"], job.last()["created"]), (500, 500))
            self.assertEqual(len(emu.records("Lead")), 1500)
            job.cleanup()


class LostResponses(unittest.TestCase):
    def test_lost_create_response_never_duplicates(self):
        """a create whose response is lost (timeout; Salesforce saved it) is looked up, not re-sent"""
        # requests: 1 login, 2 describe, 3 lookup, 4 create (slow: answered after the client gave up)
        seed = seed_where(0.1, fail=[4], ok=[1, 2, 3, 5, 6, 7, 8])
        with Emulator(["--data", ORG, "--seed", str(seed), "--fail-rate", "0.1", "--fail-kinds", "slow",
                       "--slow-ms", "3000"]) as emu:
            job = Job(emu, recipe(request_timeout_s=2), users(3))
            p = job.run()
            self.assertEqual(emu.stats()["injected"], {"slow": 1})
            emails = sorted(r["Email"] for r in emu.records("Lead"))
            self.assertEqual(emails, ["user00000@x.example", "user00001@x.example", "user00002@x.example"])
            s = job.last()
            self.assertEqual((s["created"], s["failed"], s["lost_create_responses"]), (3, 0, 1))
            self.assertIn("looking them up before trying again", p.stderr)
            job.cleanup()

    def test_dropped_create_is_sent_again_once(self):
        """a create dropped before Salesforce saw it: the lookup finds nothing, so it is created once"""
        seed = seed_where(0.1, fail=[4], ok=[1, 2, 3, 5, 6, 7, 8])
        with Emulator(["--data", ORG, "--seed", str(seed), "--fail-rate", "0.1", "--fail-kinds", "drop"]) as emu:
            job = Job(emu, recipe(), users(3))
            job.run()
            self.assertEqual(emu.stats()["injected"], {"drop": 1})
            self.assertEqual(len(emu.records("Lead")), 3)
            # libcurl itself sends a request again when a reused connection
            # closes with no reply at all; else the job's lookup does it
            self.assertEqual(job.last()["created"], 3)
            self.assertIn(job.last()["lost_create_responses"], (0, 1))
            job.cleanup()

    def test_injected_503s(self):
        """503s everywhere: lookups, updates and upserts are retried, creates verified; each user once"""
        seed = seed_where(0.25, ok=[1])
        with Emulator(["--data", ORG, "--seed", str(seed), "--fail-rate", "0.25", "--fail-kinds", "503,500"]) as emu:
            job = Job(emu, recipe(), users(450))
            job.run()
            job.input(users(450, title="x") + users(50, start=450))
            job.run()
            r2 = Job(emu, recipe(name="t2", match_field="Ext_Id__c", extra_fields={"Ext_Id__c": Lua("{ id = true }")}),
                     users(300, start=1000))
            r2.run()
            r2.run()
            st = emu.stats()
            self.assertGreater(sum(st["injected"].values()), 5)
            leads = [r for r in emu.records("Lead")]
            self.assertEqual(len(leads), 800)
            self.assertEqual(len({r["Email"] for r in leads}), 800)
            self.assertEqual(sum(1 for r in leads if r["Title"] == "x"), 450)
            job.cleanup()
            r2.cleanup()


class Resume(unittest.TestCase):
    def test_budget_pause_then_resume_after_last_confirmed_batch(self):
        """a budget pause exits 3 with the input offset checkpointed; the rerun resumes there, nothing twice"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(max_daily_api_calls=12), users(2000))
            p = job.run(check=3)
            self.assertIn("paused", p.stderr + p.stdout)
            self.assertEqual(len(emu.records("Lead")), 1000)
            state = json.load(open(job.wd.path(".sfengine", "t.state.json")))
            with open(job.wd.path("in.ndjson"), "rb") as f:
                first_1000 = len(b"".join(f.readlines()[:1000]))
            self.assertEqual(state["input"]["offset"], first_1000)
            job.wd.write("recipe.lua", recipe(max_daily_api_calls=100))
            job.run()
            s = job.last()
            self.assertEqual((s["lines_read"], s["created"], s["status"]), (1000, 1000, "done"))
            leads = emu.records("Lead")
            self.assertEqual(len(leads), 2000)
            self.assertEqual(len({r["Email"] for r in leads}), 2000)
            # the finished file is read again from the start next time; the store skips everyone
            before = calls(emu)
            job.run()
            self.assertEqual(job.last()["skipped"], {"unchanged": 2000})
            self.assertEqual(calls(emu), before)
            job.cleanup()

    def test_kill_and_rerun(self):
        """SIGKILL in the middle: the rerun resumes, the store skips confirmed users, no duplicates"""
        with Emulator(["--data", ORG, "--latency-ms", "40"]) as emu:
            job = Job(emu, recipe(), users(3000))
            proc = job.popen()
            # past the first round of 1,000 users (checkpointed), inside the second
            wait_for(lambda: len(emu.records("Lead")) >= 1200, timeout=60, step=0.02)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            first = len(emu.records("Lead"))
            self.assertLess(first, 3000)
            job.run()
            leads = emu.records("Lead")
            self.assertEqual(len(leads), 3000)
            self.assertEqual(len({r["Email"] for r in leads}), 3000)
            s = job.last()
            self.assertEqual(s["lines_read"], 2000)   # resumed after the last confirmed batch
            job.cleanup()


class Follow(unittest.TestCase):
    def test_backfill_then_realtime_from_stdin(self):
        """file backfill, then stdin followed: micro-batches flushed after flush_after_s, exit on SIGTERM"""
        with Emulator(["--data", ORG]) as emu:
            r = recipe(input={"file": "in.ndjson", "stdin": True, "follow": True}, flush_after_s=0.3,
                       audiences=["power"], audiences_field="Lytics_Audiences__c")
            job = Job(emu, r, users(3))
            proc = job.popen()
            try:
                self.assertTrue(wait_for(lambda: len(emu.records("Lead")) == 3), "backfill sent")
                proc.stdin.write(json.dumps(P("rt1", email="rt1@x.example", last_name="RT", company="C")) + "\n")
                proc.stdin.flush()
                self.assertTrue(wait_for(lambda: "rt1@x.example" in by_email(emu)), "a real-time user is sent")
                self.assertIsNone(proc.poll(), "still following")
                proc.stdin.write(json.dumps({"id": "u00000", "event": "exit", "audience": "power", "audiences": [],
                                             "fields": {"email": "user00000@x.example", "last_name": "L0",
                                                        "company": "C"}}) + "\n")
                proc.stdin.flush()
                self.assertTrue(wait_for(lambda: by_email(emu)["user00000@x.example"]["Lytics_Audiences__c"] is None),
                                "an audience exit updates the field")
                for i in range(250):     # more than a batch: flushed at 200 without waiting
                    proc.stdin.write(json.dumps(P("b%d" % i, email="b%d@x.example" % i, last_name="B", company="C")) + "\n")
                proc.stdin.flush()
                self.assertTrue(wait_for(lambda: len(emu.records("Lead")) == 254), "the burst is sent")
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            self.assertEqual(proc.returncode, 0, err)
            self.assertIn("created 254", out)
            self.assertGreaterEqual(job.last()["batches"], 4)
            job.cleanup()

    def test_follow_a_growing_file(self):
        """input = { file, stdin = false, follow = true }: lines appended to the file are sent as they come"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(input={"file": "in.ndjson", "stdin": False, "follow": True}, flush_after_s=0.2),
                      users(2))
            proc = job.popen()
            try:
                self.assertTrue(wait_for(lambda: len(emu.records("Lead")) == 2))
                job.append(users(3, start=2))
                self.assertTrue(wait_for(lambda: len(emu.records("Lead")) == 5))
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            self.assertEqual(proc.returncode, 0, err)
            self.assertIn("created 5", out)
            job.cleanup()

    def test_stdin_without_follow_reads_to_eof(self):
        """input from stdin (the default without a file) is read to EOF"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(input={"stdin": True}))
            proc = job.popen()
            out, err = proc.communicate("".join(json.dumps(u) + "\n" for u in users(5)), timeout=60)
            self.assertEqual(proc.returncode, 0, err)
            self.assertEqual(len(emu.records("Lead")), 5)
            job.cleanup()


if __name__ == "__main__":
    tap.main()
