"""Notifications: a recipe's `notify` command and webhook get the run's summary as
JSON when a run fails (or after every run with on = "always"); no secret in it; a
failing notifier is a warning and never changes the exit code.
"""
import http.server
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Workdir, credentials_env, import_recipe, run  # noqa: E402
import tap  # noqa: E402
from harness import Emulator  # noqa: E402

SECRETS = ("demo-password", "DEMOTOKEN", "demo-client-secret", "hook-token-77")


class Hook:
    """A loopback webhook that records each POST and answers `status`."""

    def __init__(self, status=200):
        self.bodies, self.status = [], status
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append((self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks/sfengine?key=hook-token-77" % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def recipe(notify):
    return import_recipe("noti", extra="notify = %s," % notify)


NOTIFY_SH = """#!/bin/sh
cat > "$(dirname "$0")/payload-$1.json"
echo "notifier says hi" 
exit "${2:-0}"
"""


class Notify(unittest.TestCase):
    def setUp(self):
        self.w = Workdir()
        script = self.w.write("notify.sh", NOTIFY_SH)
        os.chmod(script, 0o755)

    def tearDown(self):
        self.w.cleanup()

    def payload(self, tag):
        path = self.w.path("payload-%s.json" % tag)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def test_failure_reaches_command_and_webhook(self):
        """a failed run: the command gets the summary on stdin and the webhook as a JSON POST; no secret in either"""
        with Emulator(["--generate", "Lead=20"]) as emu, Hook() as hook:
            r = self.w.write("job.lua", recipe('{ command = { "./notify.sh", "fail" }, webhook = sf.secret_env "HOOK_URL" }'))
            env = credentials_env(emu, HOOK_URL=hook.url)
            emu.config(api_disabled=True)
            p = run(r, env)
            self.assertEqual(p.returncode, 1, p.stderr)
            text = self.payload("fail")
            self.assertIsNotNone(text, p.stderr)
            doc = json.loads(text)
            self.assertEqual((doc["status"], doc["job"], doc["kind"], doc["run"]), ("failed", "noti", "import", 1))
            self.assertIn("API_DISABLED_FOR_ORG", doc["message"])
            self.assertEqual(len(hook.bodies), 1)
            path, ctype, body = hook.bodies[0]
            self.assertEqual(ctype, "application/json")
            self.assertEqual(json.loads(body), doc)
            for s in SECRETS:
                self.assertNotIn(s, text)
                self.assertNotIn(s, p.stderr + p.stdout)
            self.assertNotIn(hook.url, p.stderr)

    def test_success_is_quiet_unless_always(self):
        """a good run notifies nobody by default; on = "always" notifies every run"""
        with Emulator(["--generate", "Lead=20"]) as emu, Hook() as hook:
            env = credentials_env(emu, HOOK_URL=hook.url)
            r = self.w.write("job.lua", recipe('{ command = { "./notify.sh", "ok" } }'))
            run(r, env, check=0)
            self.assertIsNone(self.payload("ok"))
            r = self.w.write("job.lua", recipe('{ command = { "./notify.sh", "ok" }, webhook = sf.secret_env "HOOK_URL", on = "always" }'))
            run(r, env, check=0)
            doc = json.loads(self.payload("ok"))
            self.assertEqual((doc["status"], doc["run"]), ("done", 2))
            self.assertIn("salesforce_leads", doc["streams"])
            self.assertEqual(len(hook.bodies), 1)

    def test_failing_notifiers_do_not_change_the_exit_code(self):
        """a notifier that exits 7 and a webhook that answers 500 are warnings; the run still exits 0 (and 1 when it failed)"""
        with Emulator(["--generate", "Lead=20"]) as emu, Hook(status=500) as hook:
            env = credentials_env(emu, HOOK_URL=hook.url)
            r = self.w.write("job.lua", recipe('{ command = { "./notify.sh", "bad", "7" }, webhook = sf.secret_env "HOOK_URL", on = "always" }'))
            p = run(r, env, check=0)
            self.assertIn("notification by command failed: exited with status 7: notifier says hi", p.stderr)
            self.assertIn("notification by webhook failed: webhook on 127.0.0.1:%d answered HTTP 500" % hook.server.server_port, p.stderr)
            self.assertNotIn("hook-token-77", p.stderr)
            log = self.w.read_ndjson(".sfengine", "noti.history.ndjson")
            self.assertEqual(log[-1]["status"], "done")
            emu.config(api_disabled=True)
            p = run(r, env)
            self.assertEqual(p.returncode, 1)
            # nothing listens: a connection failure is a warning too
            hook.server.shutdown()
            hook.server.server_close()
            p = run(r, credentials_env(emu, HOOK_URL="http://127.0.0.1:9/x"))
            self.assertEqual(p.returncode, 1)
            self.assertIn("notification by webhook failed", p.stderr)

    def test_notify_needs_a_target(self):
        """notify without command or webhook is a recipe error naming the key"""
        r = self.w.write("job.lua", recipe('{ on = "always" }'))
        p = run(r, dict(os.environ, SF_CLIENT_ID="x", SF_USERNAME="u", SF_PASSWORD="p"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("notify: needs a command or a webhook", p.stderr)


if __name__ == "__main__":
    tap.main()
