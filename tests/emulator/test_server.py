"""Emulator protocol: startup, OAuth password/refresh grants, 401s, versions, limits and their header,
rolling 24 h allocation, query paging (batchSize, queryAll, locators), describe, introspection,
request log, persistence, SIGTERM exit."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator, SERVER         # noqa: E402

LIMIT_RE = re.compile(r"^api-usage=(\d+)/(\d+)$")
NEXT_RE = re.compile(r"^/services/data/v62\.0/query/01g[A-Za-z0-9]{15}-(\d+)$")
SESSION_401 = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT_403 = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
CLOCK = "1767225600"   # 2026-01-01T00:00:00Z


def usage(reply):
    m = LIMIT_RE.match(reply.headers.get("sforce-limit-info", ""))
    assert m, "bad Sforce-Limit-Info %r" % reply.headers.get("sforce-limit-info")
    return int(m.group(1)), int(m.group(2))


class Startup(unittest.TestCase):
    def test_first_line_and_sigterm(self):
        """first stdout line is 'listening on http://127.0.0.1:PORT'; SIGTERM exits 0"""
        p = subprocess.Popen([sys.executable, SERVER, "--port", "0"], stdout=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            self.assertRegex(line, r"^listening on http://127\.0\.0\.1:\d+\n$")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(20), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_bad_option_fails(self):
        """an unknown --generate object makes the server exit non-zero without listening"""
        p = subprocess.run([sys.executable, SERVER, "--port", "0", "--generate", "Nope=3"], capture_output=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn(b"listening", p.stdout)


class OAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--clock", CLOCK]).start()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def test_password_grant_body(self):
        """password grant (password + security token) returns the documented body"""
        r = self.emu.token_request(grant_type="password", client_id="demo-client-id",
                                   client_secret="demo-client-secret", username="demo@example.com",
                                   password="demo-passwordDEMOTOKEN")
        self.assertEqual(r.status, 200)
        b = r.json
        self.assertEqual(set(b), {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"})
        self.assertEqual(b["instance_url"], self.emu.url)
        self.assertEqual(b["token_type"], "Bearer")
        self.assertIsInstance(b["issued_at"], str)
        self.assertTrue(b["issued_at"].isdigit() and len(b["issued_at"]) == 13, b["issued_at"])
        self.assertAlmostEqual(int(b["issued_at"]) / 1000.0, float(CLOCK), delta=120)
        self.assertRegex(b["id"], r"/id/00D[A-Za-z0-9]{15}/005[A-Za-z0-9]{15}$")

    def test_password_grant_errors(self):
        """password grant errors: 400 with the documented error/error_description pairs"""
        e = self.emu
        base = dict(grant_type="password", client_id="demo-client-id", client_secret="demo-client-secret",
                    username="demo@example.com", password="demo-passwordDEMOTOKEN")
        cases = [
            (dict(password="demo-password"), "invalid_grant", "authentication failure"),
            (dict(username="other@example.com"), "invalid_grant", "authentication failure"),
            (dict(client_id="nope"), "invalid_client_id", "client identifier invalid"),
            (dict(client_secret="nope"), "invalid_client", "invalid client credentials"),
            (dict(grant_type="magic"), "unsupported_grant_type", "grant type not supported"),
        ]
        for change, err, desc in cases:
            r = e.token_request(**dict(base, **change))
            self.assertEqual(r.status, 400, change)
            self.assertEqual(r.json, {"error": err, "error_description": desc}, change)

    def test_refresh_grant(self):
        """refresh_token grant works with the configured token and fails with another"""
        r = self.emu.token_request(grant_type="refresh_token", refresh_token="demo-refresh-token",
                                   client_id="demo-client-id")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.json["access_token"])
        r2 = self.emu.get(self.emu.data + "/limits", token=r.json["access_token"])
        self.assertEqual(r2.status, 200)
        r = self.emu.token_request(grant_type="refresh_token", refresh_token="stale", client_id="demo-client-id")
        self.assertEqual((r.status, r.json), (400, {"error": "invalid_grant",
                                                    "error_description": "expired access/refresh token"}))

    def test_tokens_are_random_and_distinct(self):
        """two logins give two different opaque tokens, both valid"""
        a, b = self.emu.login(), self.emu.login()
        self.assertNotEqual(a, b)
        for t in (a, b):
            self.assertEqual(self.emu.get(self.emu.data + "/limits", token=t).status, 200)

    def test_401_body_not_counted(self):
        """missing or unknown token: 401 INVALID_SESSION_ID array body, not counted"""
        e = self.emu
        before = e.stats()["api_calls"]
        for tok in (None, "garbage"):
            r = e.get(e.data + "/limits", token=tok)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json, SESSION_401)
        self.assertEqual(e.stats()["api_calls"], before)

    def test_logins_counted_separately(self):
        """token calls count as logins, not API calls"""
        e = self.emu
        s0 = e.stats()
        e.login()
        e.token_request(grant_type="password", client_id="x")
        s1 = e.stats()
        self.assertEqual(s1["api_calls"], s0["api_calls"])
        self.assertEqual(s1["logins"], s0["logins"] + 1)
        self.assertEqual(s1["login_failures"], s0["login_failures"] + 1)


class VersionsAndLimits(unittest.TestCase):
    def test_versions_list(self):
        """GET /services/data/ lists versions up to v62.0, no auth, no limit header, not counted"""
        with Emulator() as e:
            r = e.get("/services/data/", token=None)
            self.assertEqual(r.status, 200)
            self.assertNotIn("sforce-limit-info", r.headers)
            self.assertEqual(r.json[-1], {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"})
            self.assertEqual(r.json[0]["version"], "20.0")
            self.assertEqual(e.stats()["api_calls"], 0)

    def test_unknown_version_404(self):
        """a version newer than --api-version is 404 NOT_FOUND"""
        with Emulator() as e:
            e.login()
            r = e.get("/services/data/v99.0/limits")
            self.assertEqual(r.status, 404)
            self.assertEqual(r.json[0]["errorCode"], "NOT_FOUND")

    def test_limit_header_and_limits_body(self):
        """every API response carries api-usage=U/M after counting; /limits agrees"""
        with Emulator(["--api-limit", "500"]) as e:
            e.login()
            for i in range(1, 4):
                r = e.get(e.data + "/sobjects")
                self.assertEqual(usage(r), (i, 500))
            r = e.get(e.data + "/limits")
            self.assertEqual(usage(r), (4, 500))
            d = r.json["DailyApiRequests"]
            self.assertEqual((d["Max"], d["Remaining"]), (500, 496))
            for k in ("DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DataStorageMB"):
                self.assertEqual(set(r.json[k]) >= {"Max", "Remaining"}, True, k)
            # error responses carry the header too
            r = e.get(e.data + "/sobjects/Nope/describe")
            self.assertEqual(r.status, 404)
            self.assertEqual(usage(r), (5, 500))

    def test_limit_exhaustion_and_rolling_window(self):
        """allocation spent -> 403 REQUEST_LIMIT_EXCEEDED (not counted); calls age out after 24 h of clock"""
        with Emulator(["--api-limit", "5", "--clock", CLOCK, "--session-seconds", "999999"]) as e:
            e.login()
            for i in range(3):
                self.assertEqual(e.get(e.data + "/limits").status, 200)
            e.advance_clock(12 * 3600)
            for i in range(2):
                self.assertEqual(e.get(e.data + "/limits").status, 200)
            r = e.get(e.data + "/limits")
            self.assertEqual(r.status, 403)
            self.assertEqual(r.json, LIMIT_403)
            self.assertEqual(usage(r), (5, 5))
            self.assertEqual(e.stats()["api_calls"], 5)
            self.assertEqual(e.stats()["rejected"].get("403"), 1)
            e.advance_clock(12 * 3600 + 1)          # the first three age out
            r = e.get(e.data + "/limits")
            self.assertEqual(r.status, 200)
            self.assertEqual(usage(r), (3, 5))
            e.advance_clock(86400)
            self.assertEqual(usage(e.get(e.data + "/limits")), (1, 5))

    def test_config_api_limit_at_runtime(self):
        """POST /__emulator/config changes api_limit at run time"""
        with Emulator(["--api-limit", "2"]) as e:
            e.login()
            e.get(e.data + "/limits")
            e.get(e.data + "/limits")
            self.assertEqual(e.get(e.data + "/limits").status, 403)
            e.config(api_limit=10)
            r = e.get(e.data + "/limits")
            self.assertEqual((r.status, usage(r)), (200, (3, 10)))

    def test_api_disabled(self):
        """config api_disabled -> 403 API_DISABLED_FOR_ORG"""
        with Emulator() as e:
            e.login()
            e.config(api_disabled=True)
            r = e.get(e.data + "/limits")
            self.assertEqual(r.status, 403)
            self.assertEqual(r.json[0]["errorCode"], "API_DISABLED_FOR_ORG")


class Query(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Lead=4500,Account=30,Contact=60,Opportunity=40", "--clock", CLOCK]).start()
        cls.emu.login()
        cls.leads = cls.emu.records("Lead")
        cls.live = [r for r in cls.leads if not r["IsDeleted"]]

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def test_default_pages_of_2000(self):
        """query pages default to 2000 rows, nextRecordsUrl /query/01g...-2000, one API call per page"""
        e = self.emu
        e.reset_stats()
        recs, replies = e.query("SELECT Id, Email FROM Lead ORDER BY Id")
        n = len(self.live)
        self.assertEqual(len(recs), n)
        self.assertEqual([len(r.json["records"]) for r in replies], [2000, 2000, n - 4000])
        self.assertEqual(replies[0].json["totalSize"], n)
        self.assertFalse(replies[0].json["done"])
        m = NEXT_RE.match(replies[0].json["nextRecordsUrl"])
        self.assertTrue(m, replies[0].json["nextRecordsUrl"])
        self.assertEqual(m.group(1), "2000")
        self.assertEqual(NEXT_RE.match(replies[1].json["nextRecordsUrl"]).group(1), "4000")
        last = replies[-1].json
        self.assertTrue(last["done"])
        self.assertNotIn("nextRecordsUrl", last)
        self.assertEqual(list(last), ["totalSize", "done", "records"])
        self.assertEqual(list(replies[0].json), ["totalSize", "done", "nextRecordsUrl", "records"])
        self.assertEqual(len({r["Id"] for r in recs}), n)
        u0 = usage(replies[0])[0]
        self.assertEqual([usage(r)[0] for r in replies], [u0, u0 + 1, u0 + 2])
        s = e.stats()
        self.assertEqual(s["by_endpoint"], {"query": 1, "query_more": 2})
        self.assertEqual(s["api_calls"], 3)
        a = recs[0]["attributes"]
        self.assertEqual(a, {"type": "Lead", "url": "/services/data/v62.0/sobjects/Lead/" + recs[0]["Id"]})

    def test_batch_size_header(self):
        """Sforce-Query-Options batchSize=500 gives pages of 500; 50 clamps to 200; 5000 to 2000"""
        e = self.emu
        for asked, got in ((500, 500), (50, 200), (5000, 2000)):
            recs, replies = e.query("SELECT Id FROM Lead", batch_size=asked)
            self.assertEqual(len(replies[0].json["records"]), got, asked)
            self.assertEqual(len(recs), len(self.live))
            self.assertEqual(NEXT_RE.match(replies[0].json["nextRecordsUrl"]).group(1), str(got))

    def test_query_all_sees_deleted(self):
        """queryAll returns deleted rows too, continuation URLs still say /query/; query does not"""
        e = self.emu
        deleted = [r["Id"] for r in self.leads if r["IsDeleted"]]
        self.assertTrue(deleted)
        recs, replies = e.query("SELECT Id, IsDeleted FROM Lead", all_rows=True)
        self.assertEqual(len(recs), len(self.leads))
        self.assertTrue(NEXT_RE.match(replies[0].json["nextRecordsUrl"]))
        self.assertEqual({r["Id"] for r in recs if r["IsDeleted"]}, set(deleted))
        recs, _ = e.query("SELECT Id FROM Lead")
        self.assertFalse(set(deleted) & {r["Id"] for r in recs})

    def test_empty_result(self):
        """an empty result is {"totalSize":0,"done":true,"records":[]}"""
        r = self.emu.get(self.emu.data + "/query?q=" + self.emu.q("SELECT Id FROM Lead WHERE Email = 'nobody@x'"))
        self.assertEqual(r.text, '{"totalSize":0,"done":true,"records":[]}')

    def test_query_errors(self):
        """SOQL errors: 400 array bodies; missing q: MALFORMED_QUERY; bad locator: INVALID_QUERY_LOCATOR"""
        e = self.emu
        r = e.get(e.data + "/query?q=" + e.q("SELECT Id FROM"))
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json[0]["errorCode"], "MALFORMED_QUERY")
        r = e.get(e.data + "/query?q=" + e.q("SELECT Nope__c FROM Lead"))
        self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_FIELD"))
        r = e.get(e.data + "/query?q=" + e.q("SELECT Id FROM Nope"))
        self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_TYPE"))
        r = e.get(e.data + "/query")
        self.assertEqual(r.json, [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}])
        r = e.get(e.data + "/query/01gRO0000000000AAA-2000")
        self.assertEqual(r.json, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])

    def test_page_retry_same_bytes(self):
        """a page fetched twice is byte-identical (rendered once, cached by locator)"""
        e = self.emu
        r = e.get(e.data + "/query?q=" + e.q("SELECT Id, Name FROM Lead"))
        a = e.get(r.json["nextRecordsUrl"])
        b = e.get(r.json["nextRecordsUrl"])
        self.assertEqual(a.body, b.body)

    def test_relationships_in_query(self):
        """Contact.Account.Name parent relationship and Account child subquery work against the describe"""
        e = self.emu
        recs, _ = e.query("SELECT Id, Account.Name FROM Contact WHERE AccountId != null LIMIT 5")
        self.assertTrue(recs)
        self.assertEqual(recs[0]["Account"]["attributes"]["type"], "Account")
        recs, _ = e.query("SELECT Id, (SELECT Id FROM Contacts) FROM Account")
        self.assertTrue(any(r["Contacts"] for r in recs))


class Cursors(unittest.TestCase):
    def test_cursor_eviction_and_timeout(self):
        """the 11th open cursor evicts the oldest; a cursor idle past --cursor-timeout expires"""
        with Emulator(["--generate", "Lead=450", "--cursor-timeout", "900"]) as e:
            e.login()
            h = {"Sforce-Query-Options": "batchSize=200"}
            firsts = [e.get(e.data + "/query?q=" + e.q("SELECT Id FROM Lead"), h).json["nextRecordsUrl"]
                      for _ in range(11)]
            self.assertEqual(e.get(firsts[0]).json[0]["errorCode"], "INVALID_QUERY_LOCATOR")
            self.assertEqual(e.get(firsts[1]).status, 200)
            e.advance_clock(901)
            self.assertEqual(e.get(firsts[2]).json[0]["errorCode"], "INVALID_QUERY_LOCATOR")


class Describe(unittest.TestCase):
    REQUIRED = {
        "Account": "Id Name AnnualRevenue BillingStreet BillingCity BillingState BillingStateCode BillingPostalCode "
                   "BillingCountry BillingCountryCode BillingLatitude BillingLongitude ShippingStreet ShippingCity "
                   "ShippingState ShippingStateCode ShippingPostalCode ShippingCountry ShippingCountryCode CreatedDate "
                   "LastModifiedDate SystemModstamp Industry IsPartner NumberOfEmployees Ownership Rating "
                   "AccountSource Type Website AccountNumber Phone Description IsDeleted",
        "Contact": "Id AccountId FirstName LastName Name Email Birthdate MailingCity MailingStreet MailingState "
                   "MailingPostalCode MailingCountry MailingCountryCode MailingLatitude MailingLongitude CreatedDate "
                   "LastModifiedDate SystemModstamp Department EmailBouncedReason EmailBouncedDate HasOptedOutOfEmail "
                   "IsEmailBounced LastCURequestDate Salutation Title LeadSource Phone IsDeleted",
        "Lead": "Id FirstName LastName Name Company Email ConvertedDate IsConverted CreatedDate LastModifiedDate "
                "SystemModstamp EmailBouncedDate EmailBouncedReason HasOptedOutOfEmail Industry MobilePhone "
                "NumberOfEmployees Phone PostalCode City State Country Street RecordTypeId Salutation LeadSource "
                "Status Title Website Rating Description IsDeleted Lytics_Audiences__c Lytics_Content_Affinity__c "
                "Lytics_Scores__c",
        "Opportunity": "Id AccountId ContactId Name Amount CloseDate CreatedDate LastModifiedDate SystemModstamp Fiscal "
                       "FiscalQuarter FiscalYear ForecastCategory ForecastCategoryName HasOpenActivity IsClosed IsWon "
                       "NextStep Probability StageName Type LeadSource IsDeleted",
        "OpportunityContactRole": "Id OpportunityId ContactId Role IsPrimary CreatedDate LastModifiedDate "
                                  "SystemModstamp IsDeleted",
        "RecordType": "Id Name DeveloperName SobjectType",
    }
    TYPES = {("Account", "AnnualRevenue"): "currency", ("Account", "BillingLatitude"): "double",
             ("Account", "IsPartner"): "boolean", ("Account", "NumberOfEmployees"): "int",
             ("Account", "Website"): "url", ("Account", "Phone"): "phone", ("Account", "Description"): "textarea",
             ("Contact", "Birthdate"): "date", ("Contact", "Email"): "email", ("Contact", "AccountId"): "reference",
             ("Contact", "EmailBouncedDate"): "datetime", ("Lead", "Id"): "id", ("Lead", "Status"): "picklist",
             ("Lead", "SystemModstamp"): "datetime", ("Opportunity", "Probability"): "percent",
             ("Opportunity", "CloseDate"): "date", ("Opportunity", "FiscalYear"): "int"}

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Lead=5"]).start()
        cls.emu.login()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def describe(self, obj):
        r = self.emu.get("%s/sobjects/%s/describe" % (self.emu.data, obj))
        self.assertEqual(r.status, 200, obj)
        return r.json

    def test_fields_behind_default_mappings(self):
        """describe covers every field behind the default import mappings, with Salesforce types"""
        for obj, names in self.REQUIRED.items():
            d = self.describe(obj)
            self.assertEqual(d["name"], obj)
            have = {f["name"]: f for f in d["fields"]}
            missing = [n for n in names.split() if n not in have]
            self.assertEqual(missing, [], obj)
            for f in d["fields"]:
                for k in ("name", "type", "length", "nillable", "createable", "updateable", "externalId",
                          "idLookup", "calculated", "custom", "relationshipName", "referenceTo", "label", "soapType"):
                    self.assertIn(k, f, "%s.%s lacks %s" % (obj, f["name"], k))
        for (obj, name), t in self.TYPES.items():
            f = {f["name"]: f for f in self.describe(obj)["fields"]}[name]
            self.assertEqual(f["type"], t, "%s.%s" % (obj, name))

    def test_field_details(self):
        """lengths, flags, the Lytics long text areas, relationship names"""
        lead = {f["name"]: f for f in self.describe("Lead")["fields"]}
        for n in ("Lytics_Audiences__c", "Lytics_Content_Affinity__c", "Lytics_Scores__c"):
            self.assertEqual((lead[n]["type"], lead[n]["length"], lead[n]["custom"]), ("textarea", 32768, True))
        self.assertEqual(lead["Company"]["length"], 255)
        self.assertFalse(lead["Company"]["nillable"])
        self.assertFalse(lead["Name"]["createable"])
        self.assertFalse(lead["IsDeleted"]["createable"])
        self.assertFalse(lead["CreatedDate"]["updateable"])
        self.assertEqual(lead["RecordTypeId"]["referenceTo"], ["RecordType"])
        self.assertEqual(lead["RecordTypeId"]["relationshipName"], "RecordType")
        self.assertTrue(lead["Id"]["idLookup"])
        self.assertEqual(lead["Street"]["compoundFieldName"], "Address")
        con = {f["name"]: f for f in self.describe("Contact")["fields"]}
        self.assertEqual((con["AccountId"]["relationshipName"], con["AccountId"]["referenceTo"]), ("Account", ["Account"]))
        self.assertEqual(con["MailingAddress"]["type"], "address")
        opp = {f["name"]: f for f in self.describe("Opportunity")["fields"]}
        self.assertTrue(opp["ExpectedRevenue"]["calculated"])
        self.assertFalse(opp["IsWon"]["createable"])

    def test_child_relationships(self):
        """Account.Contacts/Opportunities, Opportunity/Contact.OpportunityContactRoles"""
        def rels(obj):
            return {(c["relationshipName"], c["childSObject"], c["field"]) for c in self.describe(obj)["childRelationships"]}
        self.assertLessEqual({("Contacts", "Contact", "AccountId"), ("Opportunities", "Opportunity", "AccountId")},
                             rels("Account"))
        self.assertIn(("OpportunityContactRoles", "OpportunityContactRole", "OpportunityId"), rels("Opportunity"))
        self.assertIn(("OpportunityContactRoles", "OpportunityContactRole", "ContactId"), rels("Contact"))

    def test_record_type_infos(self):
        """Lead describe lists the generated record types plus Master"""
        infos = self.describe("Lead")["recordTypeInfos"]
        self.assertEqual(len(infos), 4)
        self.assertTrue(infos[-1]["master"])

    def test_describe_global_and_unknown(self):
        """/sobjects lists every object with name/label/custom/queryable/createable/urls; unknown object 404"""
        r = self.emu.get(self.emu.data + "/sobjects")
        self.assertEqual(r.json["maxBatchSize"], 200)
        names = {o["name"]: o for o in r.json["sobjects"]}
        for n in ("Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "RecordType", "User"):
            self.assertIn(n, names)
            for k in ("label", "custom", "queryable", "createable", "updateable", "urls", "keyPrefix"):
                self.assertIn(k, names[n])
        self.assertEqual(names["Lead"]["keyPrefix"], "00Q")
        r = self.emu.get(self.emu.data + "/sobjects/Nope/describe")
        self.assertEqual(r.json, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])

    def test_if_modified_since(self):
        """If-Modified-Since at/after the schema time -> 304 with no body; older -> 200"""
        r = self.emu.get(self.emu.data + "/sobjects/Lead/describe")
        lm = r.headers["last-modified"]
        r = self.emu.get(self.emu.data + "/sobjects/Lead/describe", {"If-Modified-Since": lm})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertTrue(LIMIT_RE.match(r.headers["sforce-limit-info"]))
        r = self.emu.get(self.emu.data + "/sobjects/Lead/describe", {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        self.assertEqual(r.status, 200)
        r = self.emu.get(self.emu.data + "/sobjects", {"If-Modified-Since": lm})
        self.assertEqual(r.status, 304)


class Introspection(unittest.TestCase):
    def test_stats_match_requests(self):
        """stats count each endpoint, logins apart; introspection itself is never counted"""
        with Emulator(["--generate", "Lead=2500"]) as e:
            e.login()
            e.get(e.data + "/sobjects")
            e.get(e.data + "/sobjects/Lead/describe")
            e.get(e.data + "/limits")
            e.query("SELECT Id FROM Lead")
            e.get(e.data + "/sobjects/Lead/describe", token="bad")
            e.post(e.data + "/sobjects/Lead", {"LastName": "A", "Company": "B"})
            e.post(e.data + "/composite/sobjects", {"records": [{"attributes": {"type": "Lead"}, "LastName": "C",
                                                                 "Company": "D"}]})
            for _ in range(3):
                e.stats()
            s = e.stats()
            self.assertEqual(s["by_endpoint"], {"describe_global": 1, "describe": 1, "limits": 1, "query": 1,
                                                "query_more": 1, "sobject": 1, "composite_sobjects": 1})
            self.assertEqual(s["api_calls"], 7)
            self.assertEqual(s["api_usage"], 7)
            self.assertEqual(s["logins"], 1)
            self.assertEqual(s["rejected"], {"401": 1})
            self.assertEqual(s["writes"], 2)
            self.assertEqual(s["records_written"], 2)
            self.assertEqual(s["api_limit"], 15000)
            e.reset_stats()
            s = e.stats()
            self.assertEqual((s["api_calls"], s["by_endpoint"], s["api_usage"]), (0, {}, 7))
            e.reset_stats(api_usage=True)
            self.assertEqual(e.stats()["api_usage"], 0)

    def test_records_and_clock(self):
        """records GET/POST, clock advance and set"""
        with Emulator(["--clock", CLOCK]) as e:
            ids = e.insert("Lead", [{"LastName": "Raw", "Company": "Co"},
                                    {"LastName": "Old", "Company": "Co", "SystemModstamp": "2025-01-01T00:00:00Z"}])
            rows = {r["Id"]: r for r in e.records("Lead")}
            self.assertEqual(rows[ids[0]]["SystemModstamp"][:16], "2026-01-01T00:00")
            self.assertEqual(rows[ids[1]]["SystemModstamp"], "2025-01-01T00:00:00.000+0000")
            self.assertEqual(rows[ids[0]]["Name"], "Raw")
            now = e.clock()
            e.advance_clock(3600)
            self.assertAlmostEqual(e.clock(), now + 3600, delta=5)
            e.set_clock(1800000000)
            self.assertAlmostEqual(e.clock(), 1800000000, delta=5)
            e.insert("Lead", [{"Id": ids[0], "Title": "Boss"}])
            row = {r["Id"]: r for r in e.records("Lead")}[ids[0]]
            self.assertEqual(row["Title"], "Boss")
            self.assertEqual(row["SystemModstamp"][:4], "2027")

    def test_request_log(self):
        """--request-log writes one JSON line per request with method, path, status, counted"""
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "req.log")
            with Emulator(["--request-log", log]) as e:
                e.login()
                e.get(e.data + "/limits")
                e.get(e.data + "/limits", token="bad")
                e.get("/services/data/")
            lines = [json.loads(x) for x in open(log, encoding="utf-8")]
            self.assertEqual([(x["method"], x["path"].split("?")[0], x["status"], x["counted"]) for x in lines], [
                ("POST", "/services/oauth2/token", 200, False), ("GET", "/services/data/v62.0/limits", 200, True),
                ("GET", "/services/data/v62.0/limits", 401, False), ("GET", "/services/data/", 200, False)])

    def test_persist(self):
        """--persist saves writes and API usage and loads them on the next start"""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "org.json")
            with Emulator(["--persist", path, "--generate", "Lead=5"]) as e:
                e.login()
                rid = e.post(e.data + "/sobjects/Lead", {"LastName": "Kept", "Company": "Co"}).json["id"]
            self.assertEqual(e.returncode, 0)
            with Emulator(["--persist", path, "--generate", "Lead=50"]) as e:
                e.login()
                rows = e.records("Lead")
                self.assertEqual(len(rows), 6)
                self.assertIn(rid, {r["Id"] for r in rows})
                self.assertEqual(usage(e.get(e.data + "/limits"))[0], 2)
                rid2 = e.post(e.data + "/sobjects/Lead", {"LastName": "Two", "Company": "Co"}).json["id"]
                self.assertNotEqual(rid, rid2)


if __name__ == "__main__":
    tap.main()
