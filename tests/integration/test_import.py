"""Import against the emulator: exact stream output for every standard object,
auth flows, additional fields, since, custom objects, incremental runs,
equal timestamps across pages, deletions, bad recipes and bad credentials."""
import json
import os
import re
import subprocess
import unittest

import engine
from engine import Workdir, credentials_env, run, import_recipe, PASSWORD_AUTH
from harness import Emulator
import tap

FIXTURE = os.path.join(engine.ROOT, "tests", "fixtures", "import")
NOW_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

L1, L2, L3 = "00Q000000000001EAA", "00Q000000000002EAA", "00Q000000000003EAA"
C1, C2 = "003000000000001AAA", "003000000000002AAA"
A1, A2 = "001000000000001AAA", "001000000000002AAA"
O1 = "006000000000001AAA"

EXPECTED = {
    "salesforce_leads": [
        {"_id": L1, "salesforce_lead_ids": [L1], "email": "Ada@Example.COM", "emaildomains": ["example.com"],
         "salesforce_lead_company": "Analytical Engines", "salesforce_lead_created_date": "2024-01-10T09:00:00Z",
         "salesforce_lead_first_name": "Ada", "salesforce_lead_has_opted_out_of_email": False,
         "salesforce_lead_industry": "Technology", "salesforce_lead_is_converted": False,
         "salesforce_lead_last_modified_date": "2024-02-01T10:00:00Z", "salesforce_lead_last_name": "Lovelace",
         "salesforce_lead_mobile_phone": "+44 7700 900000", "salesforce_lead_name": "Ada Lovelace",
         "salesforce_lead_number_of_employees": 12, "salesforce_lead_phone": "+44 20 7946 0000",
         "salesforce_lead_postal_code": "EC1A 1BB", "salesforce_lead_record_type": "Partner Lead",
         "salesforce_lead_salutation": "Ms.", "salesforce_lead_source": "Web",
         "salesforce_lead_status": "Open - Not Contacted", "salesforce_lead_title": "Countess",
         "salesforce_lead_website": "https://engines.example"},
        {"_id": L2, "salesforce_lead_ids": [L2], "salesforce_lead_company": "Ünïcode \"Quotes\" Ltd",
         "salesforce_lead_converted_date": "2024-03-01T00:00:00Z", "salesforce_lead_created_date": "2024-01-11T09:00:00Z",
         "salesforce_lead_email_bounced_date": "2024-02-15T08:30:00Z",
         "salesforce_lead_email_bounced_reason": "550 mailbox unavailable", "salesforce_lead_first_name": "Zoë",
         "salesforce_lead_has_opted_out_of_email": True, "salesforce_lead_is_converted": True,
         "salesforce_lead_last_modified_date": "2024-02-01T10:00:00Z", "salesforce_lead_last_name": "山田 🚀",
         "salesforce_lead_name": "Zoë 山田 🚀", "salesforce_lead_status": "Closed - Converted"},
        {"_deleted": True, "_object": "Lead", "_id": L3, "_deleted_at": "2024-02-03T10:00:00Z",
         "salesforce_lead_ids": [L3]},
    ],
    "salesforce_contacts": [
        {"_id": C1, "salesforce_contact_ids": [C1], "email": "peter.gibbons@INITECH.example", "emaildomains": ["initech.example"],
         "salesforce_contact_birthdate": "1970-02-19T00:00:00Z", "salesforce_contact_city": "Austin",
         "salesforce_contact_country": "US", "salesforce_contact_created_date": "2023-06-01T08:00:00Z",
         "salesforce_contact_department": "Engineering", "salesforce_contact_has_opted_out_of_email": False,
         "salesforce_contact_is_email_bounced": False,
         "salesforce_contact_last_cu_request_date": "2024-01-20T15:45:30Z",
         "salesforce_contact_last_modified_date": "2024-01-07T08:00:00Z", "salesforce_contact_latitude": 30.25,
         "salesforce_contact_longitude": -97.75, "salesforce_contact_salutation": "Mr.",
         "salesforce_contact_title": "Programmer", "salesforce_lead_source": "Word of mouth"},
        {"_id": C2, "salesforce_contact_ids": [C2], "email": "milton@initech.example", "emaildomains": ["initech.example"],
         "salesforce_contact_created_date": "2023-06-02T08:00:00Z",
         "salesforce_contact_email_bounced_reason": "mailbox full",
         "salesforce_contact_has_opted_out_of_email": True, "salesforce_contact_is_email_bounced": True,
         "salesforce_contact_last_email_bounced_date": "2024-01-02T00:00:00Z",
         "salesforce_contact_last_modified_date": "2024-01-08T08:00:00Z"},
    ],
    "salesforce_accounts": [
        {"_id": A1, "salesforce_contact_ids": [C1, C2], "salesforce_account_annual_revenue": 1250000.5,
         "salesforce_account_billing_city": "Austin", "salesforce_account_billing_country": "United States",
         "salesforce_account_billing_country_code": "US", "salesforce_account_billing_latitude": 30.2672,
         "salesforce_account_billing_longitude": -97.7431, "salesforce_account_billing_postal_code": "73301",
         "salesforce_account_billing_state": "Texas", "salesforce_account_billing_state_code": "TX",
         "salesforce_account_billing_street": "1 Infinite Loop", "salesforce_account_created_date": "2023-05-01T12:00:00Z",
         "salesforce_account_id": A1, "salesforce_account_industry": "Software", "salesforce_account_is_partner": True,
         "salesforce_account_name": "Initech", "salesforce_account_number_of_employees": 250,
         "salesforce_account_ownership": "Private", "salesforce_account_rating": "Warm",
         "salesforce_account_shipping_city": "Dallas", "salesforce_account_shipping_country": "United States",
         "salesforce_account_shipping_country_code": "US", "salesforce_account_shipping_postal_code": "75201",
         "salesforce_account_shipping_state": "Texas", "salesforce_account_shipping_state_code": "TX",
         "salesforce_account_shipping_street": "2 Loop Rd", "salesforce_account_source": "Partner Referral",
         "salesforce_account_type": "Customer - Direct", "salesforce_account_website": "https://initech.example"},
        {"_id": A2, "salesforce_account_created_date": "2023-05-02T12:00:00Z", "salesforce_account_id": A2,
         "salesforce_account_is_partner": False, "salesforce_account_name": "Lonely Corp"},
    ],
    "salesforce_opportunities": [
        {"_id": O1, "salesforce_contact_ids": [C1, C2], "salesforce_lead_source": "Web", "salesforce_opportunity_amount": 50000,
         "salesforce_opportunity_close_date": "2024-06-30T00:00:00Z",
         "salesforce_opportunity_created_date": "2024-01-15T10:00:00Z", "salesforce_opportunity_fiscal": "2024 2",
         "salesforce_opportunity_fiscal_quarter": "2", "salesforce_opportunity_fiscal_year": 2024,
         "salesforce_opportunity_forecast_category": "Pipeline",
         "salesforce_opportunity_forecast_category_name": "Pipeline",
         "salesforce_opportunity_has_open_activity": True, "salesforce_opportunity_is_closed": False,
         "salesforce_opportunity_is_won": False, "salesforce_opportunity_last_modified_date": "2024-01-16T10:00:00Z",
         "salesforce_opportunity_name": "Initech - TPS upgrade", "salesforce_opportunity_next_step": "Demo",
         "salesforce_opportunity_probability": 20, "salesforce_opportunity_stage_name": "Prospecting",
         "salesforce_opportunity_type": "New Customer"},
    ],
}


def recipe(objects, extra="", auth=PASSWORD_AUTH, name="t"):
    return import_recipe(name, objects, "max_daily_api_calls = 10000,\n  " + extra, auth)


ALL4 = "{ Lead = {}, Contact = {}, Account = {}, Opportunity = {} }"


def strip_now(rows, test, stream):
    # Only the leads and contacts tables of the document carry this row.
    out = []
    for r in rows:
        r = dict(r)
        if not r.get("_deleted") and stream in ("salesforce_leads", "salesforce_contacts"):
            v = r.pop("salesforce_last_user_imported", None)
            test.assertTrue(v and NOW_RE.match(v), "salesforce_last_user_imported is the import time: %r" % v)
        out.append(r)
    return out


class ImportTest(unittest.TestCase):
    maxDiff = None
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--data", FIXTURE])
        cls.emu.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.emu.__exit__(None, None, None)

    def setUp(self):
        self.w = Workdir()
        self.env = credentials_env(self.emu)

    def tearDown(self):
        self.w.cleanup()

    def test_standard_objects_exact_output(self):
        """each standard object lands in its stream with exactly the default mapping's fields"""
        path = self.w.write("job.lua", recipe(ALL4))
        run(path, self.env, check=0)
        for stream, want in EXPECTED.items():
            got = strip_now(self.w.read_ndjson("out", stream + ".ndjson"), self, stream)
            self.assertEqual(got, want, stream)
            schema = json.load(open(self.w.path("out", stream + ".schema.json")))
            self.assertEqual(schema["stream"], stream)
            self.assertEqual(schema["fields"][0]["field"], "_id", "the schema names the record key first")
            self.assertTrue(all(r.get("_id") for r in got), stream + ": every line carries its record's Id")
            ids = {f["field"]: f for f in schema["fields"]}
            self.assertTrue(all(ids[f]["identity"] for f in ids if f in ("email", "salesforce_contact_ids", "salesforce_lead_ids")))
        self.assertEqual(self.w.read_ndjson("out", "rejects.ndjson"), [])
        history = self.w.read_ndjson(".sfengine", "t.history.ndjson")
        self.assertEqual(history[-1]["streams"]["salesforce_leads"], {"records": 2, "deletions": 1, "rejects": 0, "pages": 1})

    def test_second_run_is_incremental(self):
        """a second run fetches only records changed since the first"""
        with Emulator(["--data", FIXTURE]) as emu:
            self._incremental(emu, credentials_env(emu))

    def _incremental(self, emu, env):
        self.emu, self.env = emu, env
        path = self.w.write("job.lua", recipe("{ Lead = {} }"))
        run(path, self.env, check=0)
        self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 3)
        before = emu.stats()
        run(path, self.env, check=0)
        self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 3, "nothing changed: nothing new")
        after = emu.stats()
        self.assertEqual(after["api_calls"] - before["api_calls"], 1,
                         "an incremental run with nothing new costs one query (the describe is cached a day)")
        self.emu.post("/__emulator/records/Lead", [{"Id": L1, "Title": "Enchantress of Numbers"}])
        run(path, self.env, check=0)
        rows = self.w.read_ndjson("out", "salesforce_leads.ndjson")
        self.assertEqual(len(rows), 4)
        self.assertEqual(rows[-1]["salesforce_lead_title"], "Enchantress of Numbers")

    def test_additional_fields_and_since(self):
        """additional fields land under their raw names; since filters old records"""
        path = self.w.write("job.lua", recipe(
            '{ Lead = { additional_fields = { "Rating", "Country" }, since = "2024-01-11" } }'))
        run(path, self.env, check=0)
        rows = self.w.read_ndjson("out", "salesforce_leads.ndjson")
        self.assertEqual([r.get("salesforce_lead_ids") for r in rows], [[L1], [L2], [L3]])
        self.assertEqual(rows[0].get("lead_rating"), "Hot")
        self.assertEqual(rows[0].get("lead_country"), "Japan")
        path2 = self.w.write("job2.lua", recipe('{ Lead = { since = "2024-02-02T00:00:00Z" } }', name="t2").replace('"out"', '"out2"'))
        run(path2, self.env, check=0)
        self.assertEqual([r["_id"] for r in self.w.read_ndjson("out2", "salesforce_leads.ndjson")], [L3])
        # A second job pointed at the first one's output refuses to touch it.
        path3 = self.w.write("job3.lua", recipe('{ Lead = {} }', name="t3"))
        p = run(path3, self.env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("this job did not write", p.stderr)
        self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 3)

    def test_custom_object(self):
        """a custom object job imports the selected fields into its own stream"""
        path = self.w.write("job.lua", recipe("nil", extra="""custom_objects = {
    { object = "Invoice__c", fields = { "Name", "Amount__c", "Paid__c", "Due_Date__c" },
      stream = "invoices", since = "2024-01-01" } },"""))
        run(path, self.env, check=0)
        rows = self.w.read_ndjson("out", "invoices.ndjson")
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual((r["Name"], r["Amount__c"], r["Paid__c"], r["Due_Date__c"]),
                         ("INV-0001", 99.5, False, "2024-02-01T00:00:00Z"))
        inv = [x for x in self.emu.records("Invoice__c") if x["Name"] == "INV-0001"]
        self.assertEqual(r["_id"], inv[0]["Id"], "a custom object's line carries its Id although the recipe lists no Id")

    def test_uncoercible_value_goes_to_rejects(self):
        """a value that cannot be coerced drops that field only, into rejects.ndjson and the counters"""
        path = self.w.write("job.lua", recipe(
            '{ Lead = { mapping = { add = { { sf = "Title", to = "title_as_int", type = "int" } } } } }'))
        p = run(path, self.env, check=0)
        rows = self.w.read_ndjson("out", "salesforce_leads.ndjson")
        self.assertEqual(len(rows), 3, "the record is kept")
        self.assertEqual(rows[0]["salesforce_lead_title"], "Countess")
        self.assertNotIn("title_as_int", rows[0])
        rejects = self.w.read_ndjson("out", "rejects.ndjson")
        self.assertEqual(len(rejects), 1)
        r = rejects[0]
        self.assertEqual((r["stream"], r["id"], r["field"], r["source"], r["value"], r["reason"]),
                         ("salesforce_leads", L1, "title_as_int", "Title", "Countess", "not an integer: Countess"))
        self.assertRegex(p.stdout, r"salesforce_leads\s+2 records\s+1 deletions\s+1 rejects")

    def test_refresh_token_flow(self):
        """the refresh-token flow logs in and imports"""
        auth = """{ flow = "refresh_token", login_url = sf.env "SF_LOGIN_URL",
    client_id = sf.secret_env "SF_CLIENT_ID", client_secret = sf.secret_env "SF_CLIENT_SECRET",
    refresh_token = sf.secret_env "SF_REFRESH_TOKEN" }"""
        path = self.w.write("job.lua", recipe("{ Lead = {} }", auth=auth))
        env = dict(self.env, SF_REFRESH_TOKEN="demo-refresh-token")
        run(path, env, check=0)
        self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 3)
        env["SF_REFRESH_TOKEN"] = "revoked"
        path = self.w.write("job2.lua", recipe("{ Lead = {} }", auth=auth, name="t2").replace('"out"', '"out2"'))
        p = run(path, env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("invalid_grant", p.stderr)
        self.assertNotIn("revoked", p.stderr)

    def test_bad_recipe_unknown_key(self):
        """an unknown key is one clear line naming file:line and the key, exit 2"""
        path = self.w.write("job.lua", recipe('{ Lead = { sincee = "2024-01-01" } }'))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        text = open(path).read().splitlines()
        line = next(i + 1 for i, l in enumerate(text) if "sincee" in l)
        self.assertRegex(lines[0], r"job\.lua:%d: objects\.Lead\.sincee: unknown key" % line)

    def test_bad_mapping_row_is_a_recipe_error(self):
        """an added mapping row that breaks a row rule is one line naming file:line and the row, exit 2, before any API call"""
        calls = self.emu.stats()["api_calls"]
        path = self.w.write("job.lua", recipe('{ Lead = { mapping = { add = {\n'
                                              '  { sf = "Rating", const = "now", to = "r", type = "string" },\n'
                                              '} } } }'))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], r"job\.lua:\d+: objects\.Lead\.mapping\.add\[1\]: needs exactly one of source, sf or const")
        self.assertEqual(self.emu.stats()["api_calls"], calls, "no API call before the recipe is valid")

    def test_bad_recipe_wrong_type_and_missing_auth(self):
        """a wrong type and a missing auth block are recipe errors (exit 2)"""
        path = self.w.write("job.lua", recipe(ALL4, extra="batch_size = \"lots\","))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("batch_size", p.stderr)
        # no auth block: the credentials come from the environment; none there is a
        # recipe error naming the variables to set
        path = self.w.write("job2.lua", 'return { job = "import", name = "x", objects = { Lead = {} } }\n')
        p = run(path, {k: v for k, v in self.env.items() if not k.startswith("SF_")})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("auth: the password flow needs client_id, username and password", p.stderr)
        self.assertIn("set SF_CLIENT_ID, SF_USERNAME and SF_PASSWORD", p.stderr)

    def test_unknown_requested_field_or_object(self):
        """a misspelt additional field or custom object is a recipe error naming file:line, before any output"""
        path = self.w.write("job.lua", recipe('{ Lead = { additional_fields = { "Ratingg" } } }'))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"job\.lua:\d+: objects\.Lead\.additional_fields: Lead has no field Ratingg \(did you mean Rating\?\)")
        self.assertEqual(self.w.read_ndjson("out", "salesforce_leads.ndjson"), [])
        path = self.w.write("job2.lua", recipe("nil", name="t2", extra="""custom_objects = {
    { object = "Invoices__c", fields = { "Name" }, stream = "invoices" } },"""))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"job2\.lua:\d+: custom_objects\[1\]\.object: this org has no object Invoices__c")

    def test_bad_since_and_timestamp_field(self):
        """a malformed since, or a timestamp field that is not a datetime, is a recipe error (exit 2)"""
        before = self.emu.stats()["requests"]
        for bad in ("2024-01-01T10", "2024-13-01", "2023-02-29", "2024-04-31", "2024-01-01T25:00:00Z",
                    "2024-01-01T10:60:00Z", "2024-01-01T10:00:00+25:00", "2024-01-01T10:00:00+02:99"):
            path = self.w.write("job.lua", recipe('{ Lead = { since = "%s" } }' % bad))
            p = run(path, self.env)
            self.assertEqual(p.returncode, 2, bad + ": " + p.stderr)
            self.assertRegex(p.stderr, r"job\.lua:11: objects\.Lead\.since: not a date or datetime: " + re.escape(bad))
        path = self.w.write("job.lua", recipe('nil', extra='custom_objects = { { object = "Invoice__c", '
                                              'fields = { "Name" }, stream = "inv", since = "2024-02-30" } },'))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"job\.lua:\d+: custom_objects\[1\]\.since: not a date or datetime: 2024-02-30")
        self.assertEqual(self.emu.stats()["requests"], before, "a recipe error is found before any call")
        path = self.w.write("job2.lua", recipe('{ Lead = { timestamp_field = "ConvertedDate" } }', name="t2"))
        p = run(path, self.env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("objects.Lead.timestamp_field: ConvertedDate is a date field", p.stderr)

    def test_wrong_credentials(self):
        """wrong credentials give Salesforce's error, not a crash, and no secret"""
        env = dict(self.env, SF_PASSWORD="not-the-password")
        path = self.w.write("job.lua", recipe("{ Lead = {} }"))
        p = run(path, env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("invalid_grant", p.stderr)
        self.assertIn("authentication failure", p.stderr)
        self.assertNotIn("not-the-password", p.stderr + p.stdout)
        self.assertNotIn("DEMOTOKEN", p.stderr + p.stdout)


if __name__ == "__main__":
    tap.main()
