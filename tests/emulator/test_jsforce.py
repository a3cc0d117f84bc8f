"""A client written against real Salesforce works against the emulator unchanged: jsforce (pinned in
tests/emulator/jsforce/package.json, installed into the git-ignored tests/.node/) logs in with the OAuth2
password flow, runs an autoFetch query over every Lead, upserts a collection by an external id, runs a
Bulk API 2.0 query and a Bulk API 2.0 ingest job; the emulator's stats and request log show its calls.

Skipped (a "# skip" line, exit 0) only when jsforce is not installed and the npm registry cannot be reached.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import tap  # noqa: E402
from harness import Emulator  # noqa: E402
import npmclient  # noqa: E402

PKG_DIR = os.path.join(HERE, "jsforce")
NODE_DIR = os.path.join(ROOT, "tests", ".node")
SCRIPT = os.path.join(PKG_DIR, "conformance.js")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "emulator", "jsforce")
LEADS = 2500          # more than one 2,000-row query page: autoFetch must follow nextRecordsUrl
CREDS = dict(username="demo@example.com", password="demo-password", token="DEMOTOKEN",
             clientId="demo-client-id", clientSecret="demo-client-secret")


class JsforceConformance(unittest.TestCase):
    result = None        # what conformance.js printed
    problem = None       # why there is no result
    skip = False

    @classmethod
    def setUpClass(cls):
        try:
            cls._run()
        except Exception as e:   # reported by every test, never a crash of the runner
            cls.problem = "%s: %s" % (type(e).__name__, e)

    @classmethod
    def _run(cls):
        ok, reason, skip = npmclient.ensure(PKG_DIR, NODE_DIR, "jsforce", timeout=600)
        if not ok:
            cls.problem, cls.skip = reason, skip
            return
        cls.tmp = tempfile.mkdtemp(prefix="sfemu-jsforce-")
        log = os.path.join(cls.tmp, "requests.ndjson")
        args = ["--data", FIXTURE, "--generate", "Lead=%d" % LEADS, "--request-log", log]
        with Emulator(args) as emu:
            cls.url = emu.url
            before = emu.records("Lead")
            cls.live_before = sum(1 for r in before if not r.get("IsDeleted"))
            cfg = dict(CREDS, url=emu.url, version=emu.version)
            env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
            p = subprocess.run(["node", SCRIPT, json.dumps(cfg)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=300)
            cls.stats = emu.stats()
            cls.after = emu.records("Lead")
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not lines:
            cls.problem = "conformance.js exited %d: %s %s" % (p.returncode, p.stdout[-800:], p.stderr[-800:])
            return
        cls.result = json.loads(lines[-1])
        with open(log, encoding="utf-8") as fh:
            cls.requests = [json.loads(ln) for ln in fh if ln.strip()]
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        if self.skip:
            self.skipTest(self.problem)
        if self.result is None:
            self.fail(self.problem or "no result")

    def calls(self, method, fragment):
        return [r for r in self.requests if r["method"] == method and fragment in r["path"]]

    def test_login_with_oauth2_password_flow(self):
        """jsforce logs in with the OAuth2 password flow (password + security token) at the emulator URL"""
        login = self.result["login"]
        self.assertTrue(login["hasAccessToken"])
        self.assertEqual(login["instanceUrl"].rstrip("/"), self.url.rstrip("/"))
        self.assertTrue(login["userId"].startswith("005") and len(login["userId"]) == 18, login)
        self.assertTrue(login["organizationId"].startswith("00D"), login)
        self.assertEqual(self.stats["logins"], 1)
        self.assertEqual(len(self.calls("POST", "/services/oauth2/token")), 1)

    def test_autofetch_query_returns_every_lead(self):
        """autoFetch follows nextRecordsUrl: every live Lead once; totalSize and count() agree"""
        q = self.result["query"]
        self.assertEqual(q["totalSize"], self.live_before)
        self.assertEqual(q["fetched"], self.live_before)
        self.assertEqual(q["distinct"], self.live_before)
        self.assertEqual((q["done"], q["type"]), (True, "Lead"))
        self.assertEqual(self.result["count"], self.live_before)
        self.assertGreaterEqual(self.stats["by_endpoint"].get("query_more", 0), 1)
        self.assertTrue(self.calls("GET", "/query/01g"), "no nextRecordsUrl was followed")

    def test_upsert_collection_by_external_id(self):
        """PATCH composite/sobjects/Lead/External_Id__c: created, then matched/created/failed per record"""
        u1, u2 = self.result["upsert1"], self.result["upsert2"]
        self.assertEqual([(r["success"], r["created"]) for r in u1], [(True, True), (True, True)])
        self.assertEqual([(r["success"], r.get("created")) for r in u2[:2]], [(True, False), (True, True)])
        self.assertEqual(u2[0]["id"], u1[0]["id"])
        self.assertEqual((u2[2]["success"], u2[2]["id"]), (False, None))
        self.assertEqual(u2[2]["errors"], [{"statusCode": "STRING_TOO_LONG", "fields": ["LastName"]}])
        self.assertEqual(self.result["back"], [{"ext": "JSF-1", "first": "Uno", "company": "JS Co 2"},
                                               {"ext": "JSF-2", "first": "Two", "company": "JS Co"},
                                               {"ext": "JSF-3", "first": "Three", "company": "JS Co"}])
        stored = {r["External_Id__c"]: r for r in self.after if (r.get("External_Id__c") or "").startswith("JSF-")}
        self.assertEqual(sorted(stored), ["JSF-1", "JSF-2", "JSF-3"])
        self.assertEqual(len(self.calls("PATCH", "/composite/sobjects/Lead/External_Id__c")), 2)
        self.assertEqual(self.stats["by_endpoint"].get("composite_sobjects"), 2)

    def test_bulk2_query(self):
        """Bulk API 2.0 query: job created, polled to JobComplete, CSV results read to the null locator"""
        b = self.result["bulkQuery"]
        self.assertEqual(b["count"], self.live_before + 3)      # + the three upserted Leads
        self.assertEqual(b["distinct"], b["count"])
        self.assertEqual(b["jsf1"]["LastName"], "Jsforce")
        self.assertEqual(len(self.calls("POST", "/jobs/query")), 1)
        self.assertGreaterEqual(len([r for r in self.calls("GET", "/jobs/query/") if "/results" not in r["path"]]), 2)
        self.assertTrue(self.calls("GET", "/results"))

    def test_bulk2_ingest(self):
        """Bulk API 2.0 ingest: upload CSV, UploadComplete, poll, successful and failed results"""
        b = self.result["bulkIngest"]
        self.assertEqual((b["successful"], b["failed"], b["unprocessed"]), (1, 1, 0))
        self.assertEqual(b["created"], "true")
        self.assertTrue(b["failedError"].startswith("REQUIRED_FIELD_MISSING:"), b["failedError"])
        new = [r for r in self.after if r["Id"] == b["createdId"]]
        self.assertEqual([(r["LastName"], r["Company"]) for r in new], [("BulkOne", "Bulk Co")])
        self.assertEqual(len(self.calls("PUT", "/batches")), 1)
        for which in ("successfulResults", "failedResults", "unprocessedrecords"):
            self.assertEqual(len(self.calls("GET", "/" + which)), 1, which)

    def test_stats_account_for_every_call(self):
        """the emulator's stats count every API call jsforce made, by endpoint"""
        s = self.stats
        by = s["by_endpoint"]
        self.assertEqual(s["api_calls"], sum(by.values()))
        self.assertGreaterEqual(by.get("query", 0), 3)          # autoFetch query, count(), read-back
        counted = [r for r in self.requests if r.get("counted")]
        self.assertEqual(len(counted), s["api_calls"])
        jobs = [r for r in self.requests if "/jobs/" in r["path"]]
        self.assertEqual(by.get("jobs", 0), len(jobs))
        self.assertGreaterEqual(len(jobs), 10)
        self.assertEqual(s["login_failures"], 0)


if __name__ == "__main__":
    tap.main()
