"""sfengine --keep-updated: the long-lived loop, end to end against the
emulator, with real (short) waits:

  * a daily run at a time of day in an IANA zone: the second cycle starts at
    that time and picks up a changed record
  * SIGTERM while waiting for the next run: exit 0 promptly; the next start
    keeps the schedule (waits, sends nothing)
  * a job-budget pause whose window frees within seconds (the budget file
    pre-seeded with calls about to leave the 24 h window): the loop sleeps
    until then and the resumed cycle completes: identical output plus the
    record changed during the pause, calls equal
  * SIGTERM during a cycle: checkpoint, exit 0, the next start resumes

The job's clock is shifted (SFENGINE_CLOCK_OFFSET, < 60 s) so that minute
boundaries, which schedules and budget windows use, come a few seconds after
the start. SFENGINE_MAX_RUNS bounds each loop.
"""
import datetime
import signal
import time
import unittest
from zoneinfo import ZoneInfo

import engine  # noqa: F401 (paths)
from faultlib import Org, Job, import_recipe, STREAMS4, wait_for, stop, counter_dump, normalized
import tap

ORG = Org(["--generate", "Lead=1000,Contact=400,Account=100,Opportunity=200"])
BASE = {}


def offset_to_second(sec):
    """An offset (0..59 s) putting the job's clock at `sec` past a minute now."""
    return (sec - time.time() % 60) % 60


class KeepUpdated(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not BASE:
            BASE.update(ORG.baseline(import_recipe("clean"), STREAMS4))
        cls.base = BASE

    def change_lead(self, emu):
        lead = sorted(r["Id"] for r in emu.records("Lead") if not r.get("IsDeleted"))[3]
        emu.post("/__emulator/records/Lead", [{"Id": lead, "Title": "Changed between runs"}])
        return lead

    def assert_leads_plus_change(self, job, lead):
        got = job.streams(STREAMS4)
        for s in STREAMS4:
            if s != "salesforce_leads":
                self.assertEqual(got[s], self.base["streams"][s], s)
        leads = got["salesforce_leads"]
        self.assertEqual(leads[:-1], self.base["streams"]["salesforce_leads"])
        self.assertEqual(leads[-1]["salesforce_lead_ids"], [lead])
        self.assertEqual(leads[-1]["salesforce_lead_title"], "Changed between runs")

    def test_daily_time_of_day_second_cycle_picks_up_change(self):
        """every 24h at a time of day in Asia/Kolkata: the second cycle starts then and picks up a changed record"""
        with ORG.emulator() as emu:
            offset = offset_to_second(48)
            now = time.time() + offset
            at = datetime.datetime.fromtimestamp(now - now % 60 + 60, ZoneInfo("Asia/Kolkata"))
            extra = 'keep_updated = { every = "24h", time_of_day = "%02d:%02d", time_zone = "Asia/Kolkata" },' % (at.hour, at.minute)
            job = Job(emu, "t", import_recipe("t", extra=extra))
            job.offset = offset
            try:
                t0 = time.monotonic()
                proc = job.popen("--keep-updated", SFENGINE_MAX_RUNS=2)
                wait_for(lambda: len(job.history()) >= 1, timeout=30)
                first_done = time.monotonic() - t0
                self.assertEqual(job.history()[0]["status"], "done")
                lead = self.change_lead(emu)
                out, err = proc.communicate(timeout=90)
                self.assertEqual(proc.returncode, 0, err)
                elapsed = time.monotonic() - t0
                self.assertIn("next run at", err)
                self.assertGreater(elapsed, first_done + 2, "the second cycle waited for the time of day")
                self.assertLess(elapsed, 30)
                h = job.history()
                self.assertEqual([x["status"] for x in h], ["done", "done"])
                self.assertEqual(h[1]["streams"]["salesforce_leads"]["records"], 1, "only the change, incrementally")
                self.assert_leads_plus_change(job, lead)
                job.assert_counts_match(self)
            finally:
                job.cleanup()

    def test_sigterm_during_wait_exits_0_promptly(self):
        """SIGTERM while waiting for the next run: exit 0 within seconds; a restart keeps waiting, sends nothing"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t", extra='keep_updated = { every = "1h" },'))
            try:
                proc = job.popen("--keep-updated")
                wait_for(lambda: len(job.history()) >= 1, timeout=30)
                time.sleep(0.5)
                rc, out, err, secs = stop(proc, signal.SIGTERM)
                self.assertEqual(rc, 0, err)
                self.assertLess(secs, 3)
                self.assertIn("while waiting", err)
                next_run = job.state()["next_run"]
                self.assertAlmostEqual(next_run, time.time() + 3600, delta=30, msg="one hour after the run finished")
                requests = emu.stats()["requests"]
                proc = job.popen("--keep-updated")
                time.sleep(1.0)
                self.assertIsNone(proc.poll())
                rc, out, err, secs = stop(proc, signal.SIGINT)
                self.assertEqual(rc, 0, err)
                self.assertLess(secs, 3)
                self.assertEqual(emu.stats()["requests"], requests, "the restart waits for the scheduled time")
                self.assertEqual(len(job.history()), 1)
                self.assertEqual(job.state()["next_run"], next_run)
            finally:
                job.cleanup()

    def test_budget_pause_sleeps_until_window_frees(self):
        """a job-budget pause in keep-updated mode sleeps until the window frees, then the cycle resumes and completes"""
        with ORG.emulator() as emu:
            offset = offset_to_second(50)
            now = time.time() + offset
            # 20 calls made 24 h ago, in the minute that leaves the window ~10 s from now.
            old_minute = int((now - 86400) // 60) + 1
            extra = 'max_daily_api_calls = 26, keep_updated = { every = "24h" },'
            job = Job(emu, "t", import_recipe("t", extra=extra))
            job.offset = offset
            try:
                job.w.write(".sfengine/t.budget", counter_dump(old_minute, 20))
                t0 = time.monotonic()
                proc = job.popen("--keep-updated", SFENGINE_MAX_RUNS=2)
                wait_for(lambda: len(job.history()) >= 1, timeout=30)
                h = job.history()
                self.assertEqual((h[0]["status"], h[0]["api_calls"]), ("paused", 6))
                lead = self.change_lead(emu)
                out, err = proc.communicate(timeout=90)
                self.assertEqual(proc.returncode, 0, err)
                self.assertRegex(err, r"paused: job budget reached \(max_daily_api_calls = 26 per 24 h\), resumes at ")
                self.assertLess(time.monotonic() - t0, 40)
                self.assertEqual([x["status"] for x in job.history()], ["paused", "done"])
                self.assert_leads_plus_change(job, lead)
                job.assert_counts_match(self)
            finally:
                job.cleanup()

    def test_failures_first_run_exits_later_runs_retry(self):
        """a failing first run exits 1 (configuration errors do not loop); a later failing run is logged and
        the process waits for the next scheduled time"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t", extra='keep_updated = { every = "1h" },'),
                      env={"SF_PASSWORD": "wrong"})
            try:
                p = job.run("--keep-updated", timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("invalid_grant", p.stderr)
            finally:
                job.cleanup()
        with ORG.emulator() as emu:
            offset = offset_to_second(50)
            now = time.time() + offset
            at = time.gmtime(now - now % 60 + 60)
            extra = 'keep_updated = { every = "24h", time_of_day = "%02d:%02d" },' % (at.tm_hour, at.tm_min)
            job = Job(emu, "t", import_recipe("t", extra=extra))
            job.offset = offset
            try:
                proc = job.popen("--keep-updated")
                wait_for(lambda: len(job.history()) >= 1, timeout=30)
                emu.config(api_disabled=True)       # the second cycle fails: 403 API_DISABLED_FOR_ORG
                wait_for(lambda: job.state().get("next_run", 0) > now + 3600, timeout=40)
                time.sleep(0.3)
                self.assertIsNone(proc.poll(), "still running after the failed cycle")
                rc, out, err, secs = stop(proc, signal.SIGTERM)
                self.assertEqual(rc, 0, err)
                self.assertIn("run failed", err)
                self.assertIn("API_DISABLED_FOR_ORG", err)
                self.assertAlmostEqual(job.state()["next_run"], now - now % 60 + 60 + 86400, delta=1,
                                       msg="the next attempt is the next scheduled time")
            finally:
                job.cleanup()

    def test_schedule_recipe_errors(self):
        """bad schedules are recipe errors (exit 2) naming the key: time of day, weekday, time zone, period"""
        cases = [
            ('{ every = "24h", time_of_day = "25:00" }', "keep_updated.time_of_day"),
            ('{ every = "24h", weekday = "monday" }', "keep_updated.weekday"),
            ('{ every = "24h", time_of_day = "09:00", time_zone = "Mars/Olympus" }', "keep_updated.time_zone"),
            ('{ every = "2h" }', "keep_updated.every"),
        ]
        with ORG.emulator() as emu:
            for ku, key in cases:
                job = Job(emu, "t", import_recipe("t", extra="keep_updated = %s," % ku))
                try:
                    p = job.run("--keep-updated", timeout=60)
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertIn(key, p.stderr)
                finally:
                    job.cleanup()
            self.assertEqual(emu.stats()["requests"], 0)

    def test_sigterm_during_cycle_then_resume(self):
        """SIGTERM during a cycle in keep-updated mode: checkpoint, exit 0; the next start resumes: identical output"""
        with ORG.emulator(["--latency-ms", "150"]) as emu:
            job = Job(emu, "t", import_recipe("t", extra='keep_updated = { every = "1h" },'))
            try:
                proc = job.popen("--keep-updated")
                wait_for(lambda: emu.stats()["api_calls"] >= 5, timeout=30)
                rc, out, err, secs = stop(proc, signal.SIGTERM)
                self.assertEqual(rc, 0, err)
                self.assertLess(secs, 3)
                self.assertEqual(job.history()[-1]["status"], "stopped")
                proc = job.popen("--keep-updated", SFENGINE_MAX_RUNS=1)
                out, err = proc.communicate(timeout=90)
                self.assertEqual(proc.returncode, 0, err)
                self.assertEqual(job.history()[-1]["status"], "done")
                job.assert_outputs(self, self.base, STREAMS4)
                job.assert_counts_match(self)
            finally:
                job.cleanup()


if __name__ == "__main__":
    tap.main()
