"""The terminal and the machine-readable log: the progress line on a real pseudo-terminal
shows the API budget and is cleared before the summary; off a terminal a progress line is
logged every --progress-every seconds; --quiet keeps the summary; --log-json carries the
structured events (run start, objects, pages, retries, budget pause, error, summary).
"""
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import SFENGINE, Workdir, credentials_env, import_recipe, run  # noqa: E402
import tap  # noqa: E402
from harness import Emulator  # noqa: E402


def recipe():
    return import_recipe("term", "{ Lead = {}, Contact = {} }", "max_daily_api_calls = 5000, batch_size = 200,")


def run_on_pty(args, env, timeout=120):
    """Runs sfengine with stdout and stderr on one pseudo-terminal (as in a shell); returns (rc, bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([SFENGINE, *args], env=dict(env, COLUMNS="160"), stdin=subprocess.DEVNULL,
                         stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout=30), out


class Terminal(unittest.TestCase):
    def setUp(self):
        self.w = Workdir()

    def tearDown(self):
        self.w.cleanup()

    def test_progress_on_a_tty_shows_the_budget_and_is_cleared_before_the_summary(self):
        """on a pty: the progress line carries 'API n/5,000 today, org n/15,000'; the summary starts on a clean line"""
        with Emulator(["--generate", "Lead=1000,Contact=300", "--latency-ms", "20"]) as emu:
            r = self.w.write("job.lua", recipe())
            rc, out = run_on_pty([r], credentials_env(emu))
            text = out.decode("utf-8", "replace")
            self.assertEqual(rc, 0, text[-2000:])
            self.assertRegex(text, r"API \d+/5,000 today, org \d+/15,000", text[-2000:])
            self.assertRegex(text, r"Lead: \d+/\d+ records, \d+ pages")
            lines = text.replace("\r\n", "\n").split("\n")
            head = [l for l in lines if "import term: done" in l]
            self.assertEqual(len(head), 1, text[-2000:])
            # the progress line was erased right before the summary (not printed onto its end)
            self.assertTrue(head[0].split("\x1b[K")[-1].startswith("import term: done"), repr(head[0][-300:]))
            self.assertIn("  budget: API ", text)
            # the progress line was drawn, then erased: the last erase comes before the summary
            self.assertLess(text.rindex("\x1b[K"), text.index("import term: done"))

    def test_progress_is_logged_off_a_terminal(self):
        """stderr not a terminal: a 'progress:' line with the budget every --progress-every seconds"""
        with Emulator(["--generate", "Lead=1400", "--latency-ms", "350"]) as emu:
            r = self.w.write("job.lua", recipe())
            p = run(r, credentials_env(emu), "--progress-every", "1", check=0)
            progress = [l for l in p.stderr.splitlines() if "progress: " in l]
            self.assertGreaterEqual(len(progress), 2, p.stderr)
            self.assertRegex(progress[0], r"progress: API \d+/5,000 today")
            self.assertNotIn("\x1b", p.stderr)
            # the default interval (60 s) stays silent on a short run
            p = run(r, credentials_env(emu), check=0)
            self.assertNotIn("progress: ", p.stderr)

    def test_quiet_keeps_the_summary(self):
        """--quiet: no info lines on stderr, the summary still on stdout"""
        with Emulator(["--generate", "Lead=50,Contact=10"]) as emu:
            r = self.w.write("job.lua", recipe())
            p = run(r, credentials_env(emu), "--quiet", check=0)
            self.assertEqual(p.stderr, "")
            self.assertIn("import term: done", p.stdout)
            self.assertRegex(p.stdout, r"salesforce_leads\s+\d+ records")
            # --log-json -: stderr carries JSON lines only (events instead of plain lines)
            emu.insert("Lead", [{"LastName": "X", "Company": "Y"}])
            p = run(r, credentials_env(emu), "--log-json", "-", check=0)
            ev = [json.loads(l) for l in p.stderr.splitlines()]
            self.assertEqual([e["event"] for e in ev if "event" in e][0], "run_start")
            self.assertIn("import term: done", p.stdout)

    def test_log_json_events(self):
        """--log-json: run_start, object_start, page, object_end, summary, each with the run number, in order"""
        with Emulator(["--generate", "Lead=450,Contact=10"]) as emu:
            r = self.w.write("job.lua", recipe())
            path = self.w.path("events.jsonl")
            run(r, credentials_env(emu), "--log-json", path, check=0)
            with open(path) as f:
                lines = [json.loads(l) for l in f]
            ev = [e for e in lines if "event" in e]
            names = [e["event"] for e in ev]
            self.assertEqual(names[0], "run_start")
            self.assertEqual(names[-1], "summary")
            self.assertEqual(names[1:4], ["object_start", "page", "page"])
            self.assertEqual(names.count("object_start"), 2)
            self.assertEqual(names.count("object_end"), 2)
            self.assertTrue(all(e["run"] == 1 for e in ev), ev)
            for e in ev:
                self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            lead_end = [e for e in ev if e["event"] == "object_end" and e["object"] == "Lead"][0]
            pages = [e for e in ev if e["event"] == "page" and e["object"] == "Lead"]
            self.assertEqual(lead_end["pages"], len(pages))
            self.assertEqual(lead_end["records"] + lead_end["deletions"], 450)
            self.assertEqual(sum(e["records"] + e["deletions"] for e in pages), 450)
            self.assertEqual(pages[-1]["org_max"], 15000)
            summary = ev[-1]
            self.assertEqual(summary["status"], "done")
            self.assertEqual(summary["streams"]["salesforce_leads"]["records"], lead_end["records"])
            self.assertEqual(summary["api_calls"], emu.stats()["api_calls"])

    def test_log_json_retry_pause_and_error(self):
        """--log-json: a retried 503 is a retry event; a spent budget a budget_pause; a failed run an error"""
        with Emulator(["--generate", "Lead=450", "--fail-rate", "0.3", "--fail-kinds", "503", "--seed", "5"]) as emu:
            r = self.w.write("job.lua", recipe().replace("max_daily_api_calls = 5000", "max_daily_api_calls = 4"))
            path = self.w.path("events.jsonl")
            p = run(r, credentials_env(emu), "--log-json", path)
            self.assertEqual(p.returncode, 3, p.stderr)
            emu.config(fail_rate=0, api_disabled=True)
            r = self.w.write("job.lua", recipe())
            p = run(r, credentials_env(emu), "--log-json", path)
            self.assertEqual(p.returncode, 1, p.stderr)
            with open(path) as f:
                ev = [json.loads(l) for l in f]
            ev = [e for e in ev if "event" in e]
            retries = [e for e in ev if e["event"] == "retry"]
            self.assertTrue(retries, [e["event"] for e in ev])
            self.assertIn("503", retries[0]["reason"])
            pause = [e for e in ev if e["event"] == "budget_pause"]
            self.assertEqual(len(pause), 1)
            self.assertIn("max_daily_api_calls = 4", pause[0]["message"])
            self.assertRegex(pause[0]["resume_at"], r"^\d{4}-\d\d-\d\dT")
            errors = [e for e in ev if e["event"] == "error"]
            self.assertEqual(len(errors), 1)
            self.assertIn("API_DISABLED_FOR_ORG", errors[0]["message"])
            self.assertEqual(errors[0]["run"], 2)
            self.assertEqual([e["status"] for e in ev if e["event"] == "summary"], ["paused", "failed"])


if __name__ == "__main__":
    tap.main()
