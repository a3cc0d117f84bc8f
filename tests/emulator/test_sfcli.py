"""The Salesforce CLI (`sf`, npm @salesforce/cli pinned in tests/emulator/sfcli/package.json, installed into
the git-ignored tests/.sfcli/) works against the emulator as against a real org: it logs in with an access
token and with the JWT bearer flow (the emulator's certificate), runs `sf data query` (plain, parent
fields, COUNT(), a child subquery whose set is paged, --all-rows, --bulk), `sf data export bulk`,
`sf data upsert bulk` of a small CSV, `sf sobject describe` and `sf org list limits`, each checked on its
--json result against what the emulator holds. The CLI runs with its home, config and cache in a temp
dir, telemetry and update checks off, and a preloaded guard (sfcli/loopback-only.cjs) that refuses any
connection or name lookup beyond loopback; the hosts it refused are checked too.

Skipped (a "# skip" line, exit 0) only when the CLI is not installed and the npm registry cannot be reached.
"""
import csv
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
from store import ORG_ID  # noqa: E402
import npmclient  # noqa: E402

PKG_DIR = os.path.join(HERE, "sfcli")
CLI_DIR = os.path.join(ROOT, "tests", ".sfcli")
GUARD = os.path.join(PKG_DIR, "loopback-only.cjs")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "emulator", "jsforce")   # Lead.External_Id__c
LEADS = 2300          # more than one 2,000-row page
BIG = 250             # Contacts of one Account: more than the 200 a child set holds inline
MIN_NODE = (20, 17)   # what the pinned CLI's dependencies need (undici is overridden to 7.x for this)
LOGIN_HOSTS = {"login.salesforce.com", "test.salesforce.com"}


def node_version():
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
        return tuple(int(x) for x in out.lstrip("v").split(".")[:2])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def ensure_cli():
    """-> (ok, reason, skip): the pinned CLI in tests/.sfcli, on a Node.js it runs on"""
    if shutil.which("node") is None:
        return False, "node is not installed (make deps installs nodejs and npm)", False
    nv = node_version()
    if nv is None or nv < MIN_NODE:
        return False, "node %s is too old for @salesforce/cli@%s (needs %d.%d or later)" % (
            nv, npmclient.pinned_version(PKG_DIR, "@salesforce/cli"), MIN_NODE[0], MIN_NODE[1]), False
    return npmclient.ensure(PKG_DIR, CLI_DIR, "@salesforce/cli")


class SfCli(unittest.TestCase):
    problem = None
    skip = False

    @classmethod
    def setUpClass(cls):
        try:
            cls._start()
        except Exception as e:   # reported by every test, never a crash of the runner
            cls.problem = "%s: %s" % (type(e).__name__, e)

    @classmethod
    def _start(cls):
        ok, reason, skip = ensure_cli()
        if not ok:
            cls.problem, cls.skip = reason, skip
            return
        cls.tmp = tempfile.mkdtemp(prefix="sfemu-sfcli-")
        home = os.path.join(cls.tmp, "home")
        os.makedirs(home)
        cls.key, cls.cert = os.path.join(cls.tmp, "server.key"), os.path.join(cls.tmp, "server.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
                        cls.cert, "-days", "2", "-subj", "/CN=sfengine-sfcli"], check=True, capture_output=True,
                       timeout=60)
        cls.log = os.path.join(cls.tmp, "requests.ndjson")
        cls.guard_log = os.path.join(cls.tmp, "refused.txt")
        cls.emu = Emulator(["--data", FIXTURE, "--generate", "Lead=%d,Account=12,Contact=40,Opportunity=10" % LEADS,
                            "--jwt-cert", cls.cert, "--request-log", cls.log]).start()
        e = cls.emu
        big = e.insert("Account", [{"Name": "Big Parent"}])[0]
        cls.big_kids = e.insert("Contact", [{"LastName": "Kid%03d" % i, "AccountId": big} for i in range(BIG)])
        e.insert("Lead", [{"LastName": "Upsert Me", "Company": "Before", "External_Id__c": "CLI-1"}])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "SFDX_", "NODE_OPTIONS"))
               and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        env.update({
            "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
            "XDG_DATA_HOME": os.path.join(home, ".local", "share"), "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "SF_DISABLE_TELEMETRY": "true", "SF_AUTOUPDATE_DISABLE": "true", "SF_SKIP_NEW_VERSION_CHECK": "true",
            "SF_USE_GENERIC_UNIX_KEYCHAIN": "true", "SF_DISABLE_LOG_FILE": "true", "SF_CONTENT_TYPE": "JSON",
            "NODE_OPTIONS": "--require " + GUARD, "SFCLI_GUARD_LOG": cls.guard_log, "NO_COLOR": "1",
        })
        cls.env = env
        cls.bin = os.path.join(CLI_DIR, "node_modules", ".bin", "sf")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "emu", None) is not None:
            cls.emu.stop()
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        if self.skip:
            self.skipTest(self.problem)
        if self.problem:
            self.fail(self.problem)

    # -- helpers ------------------------------------------------------------------------
    def sf(self, *args, env=None, want=0):
        """run `sf ARGS --json`; -> the parsed JSON document (its status checked against want)"""
        p = subprocess.run([self.bin] + list(args) + ["--json"], cwd=self.tmp, env=dict(self.env, **(env or {})),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            self.fail("sf %s printed no JSON (exit %d): %s %s" % (" ".join(args), p.returncode, p.stdout[-600:],
                                                                 p.stderr[-600:]))
        self.assertEqual(doc.get("status"), want, "sf %s: %s" % (" ".join(args), json.dumps(doc)[:1500]))
        return doc

    def login(self):
        """an access-token login (alias emu), once per class"""
        if not getattr(type(self), "logged_in", False):
            tok = self.emu.login()
            doc = self.sf("org", "login", "access-token", "--instance-url", self.emu.url, "--no-prompt",
                          "--alias", "emu", env={"SF_ACCESS_TOKEN": tok})
            type(self).login_doc = doc
            type(self).logged_in = True
        return self.login_doc

    def query(self, soql, *extra):
        self.login()
        return self.sf("data", "query", "-o", "emu", "-q", soql, *extra)["result"]

    def requests(self):
        with open(self.log, encoding="utf-8") as fh:
            return [json.loads(ln) for ln in fh if ln.strip()]

    def live(self, obj):
        return [r for r in self.emu.records(obj) if not r["IsDeleted"]]

    # -- tests (unittest runs them in name order; each logs in when it needs to) -----------
    def test_a_login_access_token(self):
        """sf org login access-token: userinfo and the User record give the username and org id"""
        r = self.login()["result"]
        self.assertEqual((r["username"], r["orgId"]), ("demo@example.com", ORG_ID))
        self.assertEqual(r["instanceUrl"].rstrip("/"), self.emu.url)
        paths = [(q["method"], q["status"], q["path"].split("?")[0]) for q in self.requests()]
        self.assertIn(("GET", 200, "/services/oauth2/userinfo"), paths)

    def test_b_query_plain(self):
        """sf data query over every Lead: more than one page, followed; columns=true asked and answered"""
        live = self.live("Lead")
        r = self.query("SELECT Id, LastName FROM Lead")
        self.assertEqual((r["totalSize"], r["done"]), (len(live), True))
        self.assertEqual(sorted(x["Id"] for x in r["records"]), sorted(x["Id"] for x in live))
        cols = [q for q in self.requests() if "columns=true" in q["path"]]
        self.assertTrue(cols and all(q["status"] == 200 for q in cols), cols)
        self.assertTrue(any("/query/01g" in q["path"] for q in self.requests()), "nextRecordsUrl was followed")

    def test_c_query_parent_fields(self):
        """parent fields (Account.Name, Account.Owner.Name) come back as nested records"""
        r = self.query("SELECT Id, LastName, Account.Name, Account.Owner.Name FROM Contact WHERE AccountId != null "
                       "ORDER BY Id LIMIT 20")
        accounts = {a["Id"]: a["Name"] for a in self.emu.records("Account")}
        contacts = {c["Id"]: c for c in self.emu.records("Contact")}
        self.assertEqual(r["totalSize"], 20)
        for rec in r["records"]:
            self.assertEqual(rec["Account"]["Name"], accounts[contacts[rec["Id"]]["AccountId"]])
            self.assertEqual(rec["Account"]["Owner"]["Name"], "Demo User")

    def test_d_query_count(self):
        """SELECT COUNT(): totalSize is the count, no records"""
        r = self.query("SELECT COUNT() FROM Lead")
        self.assertEqual((r["totalSize"], r["records"]), (len(self.live("Lead")), []))

    def test_e_query_child_subquery(self):
        """a child subquery: the 250-Contact set comes inline cut at 200 with its own nextRecordsUrl, which the
        CLI follows (one more query_more call) to give the whole set"""
        before = self.emu.stats()["by_endpoint"].get("query_more", 0)
        r = self.query("SELECT Id, Name, (SELECT Id, LastName FROM Contacts) FROM Account WHERE Name = 'Big Parent'")
        self.assertEqual(r["totalSize"], 1)
        kids = r["records"][0]["Contacts"]
        self.assertEqual((kids["totalSize"], kids["done"]), (BIG, True))
        self.assertEqual(sorted(k["Id"] for k in kids["records"]), sorted(self.big_kids))
        self.assertEqual(self.emu.stats()["by_endpoint"].get("query_more", 0) - before, 1)

    def test_f_query_all_rows(self):
        """--all-rows runs queryAll: deleted Leads too, with IsDeleted"""
        every = self.emu.records("Lead")
        r = self.query("SELECT Id, IsDeleted FROM Lead", "--all-rows")
        self.assertEqual(r["totalSize"], len(every))
        self.assertEqual(sum(1 for x in r["records"] if x["IsDeleted"]), sum(1 for x in every if x["IsDeleted"]))
        self.assertGreater(sum(1 for x in every if x["IsDeleted"]), 0)
        self.assertTrue(any(q["path"].split("/")[4].startswith("queryAll") for q in self.requests()
                            if q["path"].startswith("/services/data/")))

    def test_g_query_bulk(self):
        """--bulk: a Bulk API 2.0 query job, polled, its CSV results read"""
        live = self.live("Lead")
        r = self.query("SELECT Id, LastName FROM Lead", "--bulk", "--wait", "5")
        self.assertEqual(sorted(x["Id"] for x in r["records"]), sorted(x["Id"] for x in live))
        self.assertTrue(any(q["method"] == "POST" and q["path"].endswith("/jobs/query") for q in self.requests()))

    def test_h_export_bulk(self):
        """sf data export bulk writes every Lead to a CSV file"""
        self.login()
        out = os.path.join(self.tmp, "leads.csv")
        r = self.sf("data", "export", "bulk", "-o", "emu", "-q", "SELECT Id, LastName FROM Lead", "--output-file", out,
                    "--result-format", "csv", "--wait", "5")["result"]
        live = self.live("Lead")
        self.assertEqual(r["totalSize"], len(live))
        with open(out, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.assertEqual(sorted(x["Id"] for x in rows), sorted(x["Id"] for x in live))

    def test_i_upsert_bulk(self):
        """sf data upsert bulk of a 2-row CSV by External_Id__c: one update, one create"""
        self.login()
        path = os.path.join(self.tmp, "upsert.csv")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("External_Id__c,LastName,Company\nCLI-1,Updated,After\nCLI-2,Created,After\n")
        r = self.sf("data", "upsert", "bulk", "-o", "emu", "-s", "Lead", "-i", "External_Id__c", "--file", path,
                    "--wait", "5")["result"]
        info = r["jobInfo"]
        self.assertEqual((info["state"], info["operation"], info["numberRecordsProcessed"],
                          info["numberRecordsFailed"]), ("JobComplete", "upsert", 2, 0), r)
        done = {x["External_Id__c"]: x for x in r["records"]["successfulResults"]}
        self.assertEqual((done["CLI-1"]["sf__Created"], done["CLI-2"]["sf__Created"]), ("false", "true"))
        self.assertEqual((r["records"]["failedResults"], r["records"]["unprocessedRecords"]), ([], []))
        rows = {x["External_Id__c"]: x for x in self.live("Lead") if x.get("External_Id__c")}
        self.assertEqual((rows["CLI-1"]["LastName"], rows["CLI-1"]["Company"]), ("Updated", "After"))
        self.assertEqual((rows["CLI-2"]["LastName"], rows["CLI-2"]["Company"]), ("Created", "After"))

    def test_j_sobject_describe(self):
        """sf sobject describe: the emulator's describe of Account"""
        self.login()
        r = self.sf("sobject", "describe", "-o", "emu", "-s", "Account")["result"]
        want = self.emu.get(self.emu.data + "/sobjects/Account/describe").json
        self.assertEqual((r["name"], r["keyPrefix"]), ("Account", "001"))
        self.assertEqual([f["name"] for f in r["fields"]], [f["name"] for f in want["fields"]])

    def test_k_org_list_limits(self):
        """sf org list limits: DailyApiRequests as /limits reports it"""
        self.login()
        r = self.sf("org", "list", "limits", "-o", "emu")["result"]
        by = {x["name"]: x for x in r}
        s = self.emu.stats()
        self.assertEqual(by["DailyApiRequests"]["max"], 15000)
        self.assertEqual(by["DailyApiRequests"]["remaining"], 15000 - s["api_usage"])
        self.assertIn("DailyBulkV2QueryJobs", by)

    def test_l_organization_asked(self):
        """the CLI's Organization query (Name, InstanceName, IsSandbox, ...) is answered, never refused"""
        self.login()
        orgq = [q for q in self.requests() if "FROM%20Organization" in q["path"]]
        self.assertTrue(orgq, "the CLI asked the Organization object")
        self.assertTrue(all(q["status"] == 200 for q in orgq), orgq)

    def test_m_login_jwt(self):
        """sf org login jwt with the emulator's certificate: the CLI first offers its login URL as the audience
        (refused, as a real org refuses it), tries test.salesforce.com and login.salesforce.com over the network
        (refused by the loopback guard), then sends aud https://login.salesforce.com to the emulator: accepted;
        a query runs with the new session"""
        n0 = len(self.requests())
        r = self.sf("org", "login", "jwt", "--username", "demo@example.com", "--jwt-key-file", self.key,
                    "--client-id", "demo-client-id", "--instance-url", self.emu.url, "--alias", "emujwt")["result"]
        self.assertEqual((r["username"], r["orgId"]), ("demo@example.com", ORG_ID))
        tokens = [q["status"] for q in self.requests()[n0:] if q["path"] == "/services/oauth2/token"]
        self.assertEqual(tokens, [400, 200])
        refused = set()
        with open(self.guard_log, encoding="utf-8") as fh:
            for line in fh:
                refused.add(line.split()[1].split(":")[0])
        self.assertEqual(refused, LOGIN_HOSTS)
        q = self.sf("data", "query", "-o", "emujwt", "-q", "SELECT COUNT() FROM Account")["result"]
        self.assertEqual(q["totalSize"], len(self.live("Account")))
        type(self).logged_in = False     # the JWT login replaced the access-token one (same username)

    def test_o_table_from_column_metadata(self):
        """without --json the CLI prints a table whose columns come from columns=true: parent fields and
        child subquery fields as dotted headers"""
        self.login()
        env = {k: v for k, v in self.env.items() if k != "SF_CONTENT_TYPE"}
        p = subprocess.run([self.bin, "data", "query", "-o", "emu", "-q", "SELECT Name, Owner.Name, (SELECT LastName "
                            "FROM Contacts) FROM Account WHERE Name = 'Big Parent'"], cwd=self.tmp, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-800:] + p.stderr[-800:])
        for header in ("NAME", "OWNER.NAME", "CONTACTS.LASTNAME"):
            self.assertIn(header, p.stdout)
        self.assertIn("Kid249", p.stdout)
        self.assertIn("Total number of records retrieved: 1.", p.stdout)

    def test_n_every_call_accounted(self):
        """no 5xx answered to the CLI; the emulator's stats account for every counted request"""
        self.login()
        reqs = self.requests()
        self.assertEqual([q for q in reqs if q["status"] >= 500], [])
        s = self.emu.stats()
        self.assertEqual(s["api_calls"], sum(s["by_endpoint"].values()))
        self.assertEqual(sum(1 for q in reqs if q["counted"]), s["api_calls"])


if __name__ == "__main__":
    tap.main()
