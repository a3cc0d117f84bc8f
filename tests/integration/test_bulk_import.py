"""Bulk API 2.0 query mode of the import (objects with mode = "bulk" / "auto"):
the same stream output as REST for the same data, far fewer API calls, and a
run killed while polling or paging resumes the same job to identical output.

Needs scripts/sf/import/ to call sf.import.bulk (the recipe keys mode,
bulk_threshold, bulk_max_records, bulk_max_wait): without that integration the
recipes below fail validation and every test says so."""
import json
import os
import random
import signal
import time
import unittest

import engine
from engine import Workdir, credentials_env, run, popen, normalized, import_recipe as recipe
from harness import Emulator
import tap

LEADS = int(os.environ.get("SFENGINE_BULK_LEADS", "100000"))
STREAMS = {"Lead": "salesforce_leads", "Contact": "salesforce_contacts", "Account": "salesforce_accounts"}




def check_integrated(p):
    text = p.stderr + p.stdout
    if p.returncode == 2 and "mode" in text:
        raise AssertionError("the recipe key `mode` is refused: scripts/sf/import/ does not call sf.import.bulk yet "
                             "(see the integration note of the Bulk mode): " + text.strip()[-300:])


def run_ok(path, emu, *args, timeout=600):
    p = run(path, credentials_env(emu), *args, timeout=timeout)
    check_integrated(p)
    if p.returncode != 0:
        raise AssertionError("sfengine exited %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout[-2000:], p.stderr[-3000:]))
    return p


def state(w, name):
    path = w.path(".sfengine", name + ".state.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def outputs(w, objects):
    return {o: normalized(w.read_ndjson("out", STREAMS[o] + ".ndjson")) for o in objects}


class BulkVersusRest(unittest.TestCase):
    """One large org: REST and Bulk runs of the same data."""
    maxDiff = 2000

    @classmethod
    def setUpClass(cls):
        # engine bug, issue 11: the call counts asserted below assume pages of 2,000 parents; on a real org the
        # Accounts' inline child Contacts count toward the batch size (more pages). Old paging set explicitly.
        cls.emu = Emulator(["--generate", "Lead=%d,Contact=3000,Account=300" % LEADS, "--seed", "7",
                            "--child-rows-not-in-batch"], start_timeout=600)
        cls.emu.__enter__()
        cls.addClassCleanup(cls.emu.__exit__, None, None, None)  # also when setUpClass fails
        cls.rest = Workdir()
        cls.addClassCleanup(cls.rest.cleanup)
        cls.emu.post("/__emulator/reset_stats", {})
        run_ok(cls.rest.write("job.lua", recipe("rest", "{ Lead = { mode = 'rest' }, Contact = { mode = 'rest' }, "
                                                       "Account = { mode = 'rest' } }")), cls.emu)
        cls.rest_stats = cls.emu.stats()
        cls.want = outputs(cls.rest, ["Lead", "Contact", "Account"])
        cls.rest_rejects = cls.rest.read_ndjson("out", "rejects.ndjson")

    def setUp(self):
        self.w = Workdir()
        self.emu.post("/__emulator/reset_stats", {})

    def tearDown(self):
        self.w.cleanup()

    def test_same_output_far_fewer_calls(self):
        """mode bulk: Leads and Contacts identical to REST (lines, rejects, schema, cursor) with far fewer API calls"""
        p = run_ok(self.w.write("job.lua", recipe("bulk", "{ Lead = { mode = 'bulk' }, Contact = { mode = 'bulk' } }")),
                   self.emu)
        stats = self.emu.stats()
        got = outputs(self.w, ["Lead", "Contact"])
        for o in ("Lead", "Contact"):
            self.assertEqual(len(got[o]), len(self.want[o]), o)
            self.assertEqual(got[o], self.want[o], o)
            with open(self.w.path("out", STREAMS[o] + ".schema.json")) as a, \
                    open(self.rest.path("out", STREAMS[o] + ".schema.json")) as b:
                self.assertEqual(json.load(a), json.load(b), o + " schema")
        self.assertEqual(self.w.read_ndjson("out", "rejects.ndjson"),
                         [r for r in self.rest_rejects if r.get("object") in ("Lead", "Contact")])
        self.assertEqual(state(self.w, "bulk")["cursors"], {o: state(self.rest, "rest")["cursors"][o] for o in ("Lead", "Contact")},
                         "the cursors after a Bulk run equal the REST cursors (same format)")
        self.assertNotIn("bulk", state(self.w, "bulk"), "no Bulk job is left in the state")
        by = stats["by_endpoint"]
        self.assertEqual(by.get("query", 0) + by.get("query_all", 0) + by.get("query_more", 0), 0, by)
        # per object: create + 2 polls (InProgress, JobComplete) + ceil(n / 50,000) results pages
        pages = -(-LEADS // 50000) + 1
        self.assertEqual(by.get("jobs"), 2 * 3 + pages, by)
        # REST for the same two objects: pages of 2,000 (Contacts: 2) and 2 describes
        rest_calls = -(-LEADS // 2000) + 2 + 2
        self.assertGreaterEqual(self.rest_stats["api_calls"], rest_calls)
        self.assertLessEqual(stats["api_calls"] * 4, rest_calls, "at least 4x fewer calls: %d vs %d"
                             % (stats["api_calls"], rest_calls))
        print("# %d Leads + 3000 Contacts: REST %d API calls, Bulk %d (%s)"
              % (LEADS, rest_calls, stats["api_calls"], by), flush=True)
        self.assertIn("%d API calls" % stats["api_calls"], p.stdout)

    def test_auto_mode_switches_after_the_first_page(self):
        """mode auto: the first REST page's totalSize decides; Bulk takes over from its cursor; same output"""
        run_ok(self.w.write("job.lua", recipe("auto", "{ Lead = {}, Contact = {}, Account = {} }",
                                              "mode = 'auto', bulk_threshold = 10000,")), self.emu)
        by = self.emu.stats()["by_endpoint"]
        got = outputs(self.w, ["Lead", "Contact", "Account"])
        for o in ("Lead", "Contact", "Account"):
            self.assertEqual(got[o], self.want[o], o)
        # Leads: one REST page, then a Bulk job (create, 2 polls, pages); Contacts (3,000) and
        # Accounts (child subquery: never Bulk) stay with REST.
        self.assertEqual(by.get("jobs"), 3 + -(-(LEADS - 2000) // 50000), by)
        self.assertEqual(by.get("query_all"), 3, by)
        self.assertEqual(by.get("query_more", 0), 1 + 0, by)  # Contacts' second page

    def test_bulk_impossible_falls_back_to_rest(self):
        """mode bulk on Accounts (a child subquery): a warning, then REST with identical output"""
        p = run_ok(self.w.write("job.lua", recipe("acc", "{ Account = { mode = 'bulk' } }")), self.emu)
        self.assertIn("Bulk API 2.0 cannot run this query", p.stderr)
        self.assertEqual(outputs(self.w, ["Account"])["Account"], self.want["Account"])
        self.assertEqual(self.emu.stats()["by_endpoint"].get("jobs", 0), 0)


class BulkResume(unittest.TestCase):
    """A smaller org for killed, stopped and incremental runs."""
    maxDiff = 2000

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Lead=6000,Contact=3000", "--seed", "13"])
        cls.emu.__enter__()
        cls.addClassCleanup(cls.emu.__exit__, None, None, None)  # also when setUpClass fails
        cls.rest = Workdir()
        cls.addClassCleanup(cls.rest.cleanup)
        run_ok(cls.rest.write("job.lua", recipe("rest", "{ Lead = { mode = 'rest' }, Contact = { mode = 'rest' } }")),
               cls.emu)
        cls.want = outputs(cls.rest, ["Lead", "Contact"])

    def setUp(self):
        self.w = Workdir()
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 1, "latency_ms": 0})

    def tearDown(self):
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 1, "latency_ms": 0})
        self.w.cleanup()

    def bulk_recipe(self, name):
        return self.w.write("job.lua", recipe(name, "{ Lead = { mode = 'bulk' }, Contact = { mode = 'bulk' } }",
                                              "bulk_max_records = 1000,"))

    def wait_for(self, proc, name, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(state(self.w, name)):
                return True
            if proc.poll() is not None:
                out, err = proc.communicate()
                check_integrated(type("P", (), {"returncode": proc.returncode, "stdout": out, "stderr": err}))
                self.fail("sfengine ended (%d) before the awaited state: %s" % (proc.returncode, err[-2000:]))
            time.sleep(0.005)
        self.fail("the awaited state never came")

    def test_kill_while_polling_and_paging_then_resume(self):
        """SIGKILL while polling, then while paging: each rerun resumes the same Bulk job; output identical"""
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 2, "latency_ms": 60})
        path = self.bulk_recipe("k")
        logs = []
        # 1. killed while polling the Leads job: the job is saved, no page yet
        proc = popen(path, credentials_env(self.emu))
        self.wait_for(proc, "k", lambda s: "Lead" in (s.get("bulk") or {}) and "locator" not in s["bulk"]["Lead"])
        job_id = state(self.w, "k")["bulk"]["Lead"]["job"]
        time.sleep(0.5)
        self.assertIsNone(proc.poll(), "still polling")
        proc.send_signal(signal.SIGKILL)
        logs.append(proc.communicate()[1])
        # 2. killed while paging: after the first results page was checkpointed
        proc = popen(path, credentials_env(self.emu))
        self.wait_for(proc, "k", lambda s: (s.get("bulk") or {}).get("Lead", {}).get("locator") is not None)
        s = state(self.w, "k")
        self.assertEqual(s["bulk"]["Lead"]["job"], job_id, "the rerun resumed the same job")
        proc.send_signal(signal.SIGKILL)
        logs.append(proc.communicate()[1])
        killed_at = state(self.w, "k")
        # 3. run to the end
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 1, "latency_ms": 0})
        p = run_ok(path, self.emu)
        logs.append(p.stderr)
        got = outputs(self.w, ["Lead", "Contact"])
        for o in ("Lead", "Contact"):
            self.assertEqual(len(got[o]), len(self.want[o]), o)
            self.assertEqual(got[o], self.want[o], o)
        text = "\n".join(logs)
        self.assertEqual(text.count("Lead: Bulk query job %s created" % job_id), 1, text)
        self.assertGreaterEqual(text.count("resuming Bulk query job %s" % job_id), 1 if "Lead" not in killed_at.get("bulk", {}) else 2, text)
        self.assertNotIn("bulk", state(self.w, "k"))

    def test_random_kills_then_resume(self):
        """SIGKILL at random points of Bulk runs (pages of 1,000), then reruns: output identical to REST"""
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 2, "latency_ms": 20})
        path = self.bulk_recipe("r")
        rng = random.Random(77)
        kills, finished = 0, False
        deadline = time.monotonic() + 300
        while not finished and time.monotonic() < deadline:
            proc = popen(path, credentials_env(self.emu))
            if kills < 8:
                time.sleep(rng.uniform(0.2, 4.0))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate()
                    kills += 1
                    continue
            out, err = proc.communicate(timeout=300)
            check_integrated(type("P", (), {"returncode": proc.returncode, "stdout": out, "stderr": err}))
            self.assertEqual(proc.returncode, 0, err)
            finished = True
        self.assertTrue(finished)
        self.assertGreaterEqual(kills, 4)
        got = outputs(self.w, ["Lead", "Contact"])
        for o in ("Lead", "Contact"):
            self.assertEqual(got[o], self.want[o], o)

    def test_sigterm_while_polling_stops_cleanly(self):
        """SIGTERM while waiting for the job: exits 4 at once with the job saved; the rerun finishes it"""
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 5})
        path = self.bulk_recipe("t")
        proc = popen(path, credentials_env(self.emu))
        self.wait_for(proc, "t", lambda s: "Lead" in (s.get("bulk") or {}))
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        self.assertLess(time.monotonic() - t0, 3, "the poll wait is cut short")
        self.assertEqual(proc.returncode, 4, err)
        job_id = state(self.w, "t")["bulk"]["Lead"]["job"]
        self.emu.post("/__emulator/config", {"bulk_polls_in_progress": 1})
        p = run_ok(path, self.emu)
        self.assertIn("resuming Bulk query job " + job_id, p.stderr)
        self.assertEqual(outputs(self.w, ["Lead", "Contact"]), self.want)

    def damaged_page_run(self, name, kind, count, skip, says):
        """a results page damaged by the emulator fails the run at a clean checkpoint; the rerun is whole"""
        self.emu.post("/__emulator/config", {"bulk_results_fault": kind, "bulk_results_fault_count": count,
                                             "bulk_results_fault_skip": skip, "bulk_results_fault_times": 1})
        path = self.w.write("job.lua", recipe(name, "{ Lead = { mode = 'bulk' } }", "bulk_max_records = 1000,"))
        before = self.emu.stats()["injected"].get("bulk_results_" + kind, 0)
        try:
            p = run(path, credentials_env(self.emu), timeout=300)
        finally:
            self.emu.post("/__emulator/config", {"bulk_results_fault": ""})
        self.assertEqual(p.returncode, 1, p.stderr[-2000:])
        self.assertIn(says, p.stderr)
        self.assertIn("the checkpoint stays before this page", p.stderr)
        self.assertEqual(self.emu.stats()["injected"].get("bulk_results_" + kind, 0) - before, 1)
        lines = self.w.read_ndjson("out", "salesforce_leads.ndjson")
        self.assertEqual(len(lines), skip * 1000, "only the pages before the damaged one were kept")
        self.assertEqual(state(self.w, name)["bulk"]["Lead"]["read"], skip * 1000, "the checkpoint is the page before")
        run_ok(path, self.emu)
        self.assertEqual(outputs(self.w, ["Lead"])["Lead"], self.want["Lead"])

    def test_empty_page_that_should_hold_records(self):
        """an empty results page whose Sforce-NumberOfRecords says 1,000: the run fails, nothing of it is kept"""
        self.damaged_page_run("empty", "empty", "actual", 2, "Sforce-NumberOfRecords says 1000 records, the page holds 0")

    def test_header_only_page_that_says_zero_before_the_end(self):
        """a header-only page saying 0 records while Sforce-Locator says more follow: an error, not the end"""
        self.damaged_page_run("hdr", "header_only", "zero", 3,
                              "the page holds no records, yet Sforce-Locator says more pages follow")

    def test_short_last_page_against_number_records_processed(self):
        """a last page that says and holds 0 records: the job's numberRecordsProcessed tells, the run fails"""
        self.damaged_page_run("last", "header_only", "zero", 5,
                              "the job processed 6000 records (numberRecordsProcessed), its pages held 5000")

    def test_incremental_run_after_bulk(self):
        """after a Bulk run, a rerun imports only what changed since its cursor, exactly as REST does"""
        rest = Workdir()
        # its own org: this test changes the data
        with Emulator(["--generate", "Lead=3000", "--seed", "17"]) as emu:
          try:
            path = self.w.write("job.lua", recipe("inc", "{ Lead = { mode = 'bulk' } }", "bulk_max_records = 1000,"))
            run_ok(path, emu)
            rpath = rest.write("job.lua", recipe("inc_rest", "{ Lead = { mode = 'rest' } }"))
            run_ok(rpath, emu)
            before = len(self.w.read_ndjson("out", "salesforce_leads.ndjson"))
            emu.post("/__emulator/records/Lead", [
                {"LastName": "Newcomer %d" % i, "Company": "Inc %d" % i, "Status": "Open - Not Contacted",
                 "Email": "new%d@example.com" % i} for i in range(5)])
            run_ok(path, emu)
            run_ok(rpath, emu)
            got = normalized(self.w.read_ndjson("out", "salesforce_leads.ndjson"))
            want = normalized(rest.read_ndjson("out", "salesforce_leads.ndjson"))
            self.assertEqual(len(got), before + 5)
            self.assertEqual(got, want)
            self.assertEqual([r.get("salesforce_lead_last_name") for r in got[-5:]], ["Newcomer %d" % i for i in range(5)])
          finally:
            rest.cleanup()


if __name__ == "__main__":
    tap.main()
