"""The example export recipes end to end against the emulator, seeded with
examples/data/org: exact Salesforce records afterwards (read back from the
emulator), the run summary, and variants of each seed system's settings."""
import json
import os
import unittest

import engine
from engine import Workdir, credentials_env, run
from exportkit import EXAMPLES, Job, Lua, recipe, records
from harness import Emulator
import tap

ORG = os.path.join(EXAMPLES, "data", "org")


def utf16_cut(s, n):
    out, units = "", 0
    for ch in s:
        u = 2 if ord(ch) > 0xFFFF else 1
        if units + u > n:
            break
        out += ch
        units += u
    return out


class Example:
    """Runs examples/<name>.lua with its state and output in a temp dir."""

    def __init__(self, emu, name, **env):
        self.wd = Workdir()
        self.path = os.path.join(EXAMPLES, name + ".lua")
        self.env = credentials_env(emu, SF_OUTPUT=self.wd.path("out"), **env)

    def run(self, *args, check=0):
        return run(self.path, self.env, "--state-dir", self.wd.path("state"), *args, check=check)

    def last(self):
        return self.wd.read_ndjson("state", [f for f in os.listdir(self.wd.path("state"))
                                             if f.endswith(".history.ndjson")][0])[-1]

    def rejects(self):
        return self.wd.read_ndjson("out", "export-rejects.ndjson")

    def cleanup(self):
        self.wd.cleanup()


class ExportLeads(unittest.TestCase):
    def test_audience_export_to_lead(self):
        """examples/export_leads.lua: audiences field, affinity, scores, unknown company, extra fields, overrides"""
        with open(os.path.join(EXAMPLES, "data", "profiles.ndjson")) as f:
            long_company = [json.loads(l) for l in f][4]["fields"]["company"]
        with Emulator(["--data", ORG]) as emu:
            ex = Example(emu, "export_leads")
            p = ex.run("--dry-run")
            self.assertEqual(emu.stats()["writes"], 0)
            self.assertEqual(sum(1 for l in p.stdout.splitlines() if l.startswith('{"dry_run":"create"')), 3)
            p = ex.run()
            self.assertEqual(records(emu), [
                {"Email": "ada@engines.example", "FirstName": "Ada", "LastName": "Lovelace", "Company": "Analytical Engines",
                 "Title": "Countess", "Phone": "+44 7700 900000", "Website": "https://engines.example", "Rating": "Hot",
                 "Industry": "Technology", "NumberOfEmployees": 12, "LeadSource": "Lytics",
                 "Description": "Lytics user u1 in 2 audiences", "Lytics_Audiences__c": "power",
                 "Lytics_Content_Affinity__c": "math, engines, poetry", "Lytics_Scores__c": "intensity=64.5, quality=87"},
                {"Email": "grace@navy.example", "FirstName": "Grace", "LastName": "Hopper", "Company": "Unknown",
                 "Title": "Rear Admiral", "LeadSource": "Lytics", "Description": "Lytics user u2 in 1 audiences",
                 "Lytics_Audiences__c": "high_value"},
                {"Email": "Katherine@NASA.example", "FirstName": "Katherine", "LastName": "Johnson", "Company": "NASA",
                 "Title": "Mathematician", "Rating": "Warm", "LeadSource": "Lytics",
                 "Description": "Lytics user u6 in 2 audiences", "Lytics_Audiences__c": "high_value, power",
                 "Lytics_Scores__c": "quality=99"},
                {"Email": "long@example.com", "FirstName": "Maximiliana Wilhelmina Theodora Josephin",
                 "LastName": "Ünïcødé-山田", "Company": utf16_cut(long_company, 255), "LeadSource": "Lytics",
                 "Description": "Lytics user u5 in 1 audiences", "Lytics_Audiences__c": "power"},
                {"Email": "milton@initech.example", "FirstName": "Milton", "LastName": "Waddams", "Company": "Initech",
                 "Title": "Collator"},
            ])
            s = ex.last()
            self.assertEqual((s["created"], s["updated"], s["failed"], s["unique_profiles_exported"]), (3, 1, 0, 4))
            self.assertEqual(s["skipped"], {"missing_last_name": 1, "not_in_audience": 1, "superseded": 1})
            self.assertEqual([(r["user"], r["field"], r["statusCode"]) for r in ex.rejects()],
                             [("u2", "NumberOfEmployees", "TYPE_MISMATCH")])
            self.assertIn("created 3, updated 1, failed 0, unique profiles exported 4", p.stdout)
            # the same input again: nothing changed, nothing sent, no API call
            before = emu.stats()["api_calls"]
            ex.run()
            self.assertEqual(emu.stats()["api_calls"], before)
            ex.cleanup()


class Segment(unittest.TestCase):
    def test_identify_and_group(self):
        """examples/segment.lua: identify -> Lead (lookup by email), group -> Account by AccountNumber"""
        with Emulator(["--data", ORG]) as emu:
            ex = Example(emu, "segment")
            ex.run()
            title = ("Software Engineer and Professional Name Pronunciation Coach, Initech; also occasional printer "
                     "exorcist and part-time TPS report cover sheet auditor extraordinaire")
            self.assertEqual(records(emu), [
                {"Email": "katherine@nasa.example", "FirstName": "Katherine", "LastName": "Johnson",
                 "Company": "NASA Langley", "Title": "Mathematician", "LeadSource": "Web"},
                {"Email": "milton@initech.example", "FirstName": "Milton", "LastName": "Waddams", "Company": "Initech",
                 "Title": "Stapler Custodian", "Street": "1 Basement", "City": "Austin", "State": "TX",
                 "PostalCode": "73301", "Country": "USA"},
                {"Email": "peter.gibbons@initech.com", "FirstName": "Peter", "LastName": "Gibbons", "Company": "Initech",
                 "Title": "VP of Derp", "Phone": "570-690-4150", "Rating": "Hot", "Street": "19123 forest lane",
                 "City": "east greenwich", "State": "RI", "PostalCode": "94115", "Country": "USA",
                 "testProp__c": "hello", "planTier__c": 3},
                {"Email": "samir@initech.com", "FirstName": "Samir", "LastName": "Nagheenanajar", "Company": "Initech",
                 "Title": title[:128]},
            ])
            accounts = [r for r in records(emu, "Account") if r.get("AccountNumber")]
            self.assertEqual(accounts, [{
                "Name": "Teemo Industries", "AccountNumber": "813", "BillingCity": "East Greenwich",
                "BillingCountry": "US", "BillingPostalCode": "02818", "BillingState": "RI",
                "BillingStreet": "9000 Forest Lane", "NumberOfEmployees": 4, "Phone": "222-333-4444",
                "Website": "https://teemothewolf.com", "Description": "Makes great husky products"}])
            s = ex.last()
            self.assertEqual(s["skipped"], {"integration_disabled": 3, "missing_match_value": 1, "missing_name": 1,
                                            "unsupported_event": 1})
            self.assertEqual((s["created"], s["updated"]), (3, 1))
            self.assertEqual([(r["user"], r["field"], r["statusCode"]) for r in ex.rejects()],
                             [("identify:u-milton", "favoriteColor__c", "NO_SUCH_FIELD")])
            ex.cleanup()

    def test_custom_lookup_fields_and_address_settings(self):
        """lookup fields combine with AND; group address to shipping or to both"""
        events = [
            {"type": "identify", "userId": "p1", "integrations": {"Salesforce": True},
             "traits": {"email": "peter@initech.example", "company": "Initech", "lastName": "Gibbons", "title": "New"}},
            {"type": "identify", "userId": "p2", "integrations": {"Salesforce": True},
             "traits": {"email": "peter@initech.example", "company": "Initrode", "lastName": "Gibbons"}},
            {"type": "group", "groupId": "900", "integrations": {"Salesforce": True},
             "traits": {"name": "Both Inc", "address": {"city": "Austin", "street": "1 Main"}}},
        ]
        for where, want in (("shipping", {"ShippingCity": "Austin", "ShippingStreet": "1 Main"}),
                            ("both", {"ShippingCity": "Austin", "ShippingStreet": "1 Main",
                                      "BillingCity": "Austin", "BillingStreet": "1 Main"})):
            with Emulator(["--data", ORG]) as emu:
                emu.insert("Lead", [{"LastName": "Gibbons", "Company": "Initech", "Email": "peter@initech.example",
                                     "Title": "Old"}])
                r = recipe(input={"file": "in.ndjson", "format": "segment"}, object=None, match_field=None,
                           segment={"lookup_fields": {"email": "Email", "company": "Company"}, "address": where})
                job = Job(emu, r, events)
                job.run()
                got = sorted((x["Company"], x.get("Title")) for x in records(emu) if x["LastName"] == "Gibbons")
                self.assertEqual(got, [("Initech", "New"), ("Initrode", None)], where)
                acc = [x for x in records(emu, "Account") if x.get("AccountNumber") == "900"][0]
                want = dict(want, Name="Both Inc", AccountNumber="900")
                self.assertEqual(acc, want, where)
                job.cleanup()


class BlueConic(unittest.TestCase):
    def test_export_goal(self):
        """examples/blueconic.lua: segment, objectives, Contact by email, id / segments / static text mapping"""
        with Emulator(["--data", ORG]) as emu:
            ex = Example(emu, "blueconic")
            ex.run()
            self.assertEqual(records(emu, "Contact"), [
                {"Email": "christine@nasa.example", "FirstName": "Christine", "LastName": "Darden",
                 "LeadSource": "BlueConic", "BlueConic_Profile_Id__c": "bc-0002",
                 "BlueConic_Segments__c": "Newsletter subscribers"},
                {"Email": "dorothy@nasa.example", "FirstName": "Dorothy", "LastName": "Vaughan",
                 "Title": "Head of Computing", "LeadSource": "BlueConic", "BlueConic_Profile_Id__c": "bc-0001",
                 "BlueConic_Segments__c": "Newsletter subscribers, Space fans"},
                {"Email": "mary@jackson.example", "FirstName": "Mary", "LastName": "Jackson", "Phone": "+1 555 0100"},
            ])
            s = ex.last()
            self.assertEqual(s["unique_profiles_exported"], 2)
            self.assertEqual(s["skipped"], {"no_consent": 2, "not_in_audience": 1, "superseded": 1})
            ex.cleanup()

    def test_match_on_profile_id_and_unique_count(self):
        """match on the profile id (an external ID: upsert); a profile exported twice counts once"""
        with Emulator(["--data", ORG]) as emu:
            r = recipe(object="Contact", match_field="BlueConic_Profile_Id__c", audiences=["Newsletter subscribers"],
                       consent=["crm_sync"], default_fields=False, required_fields={"LastName": "last_name"},
                       extra_fields={"BlueConic_Profile_Id__c": Lua("{ id = true }"), "Email": "email",
                                     "BlueConic_Segments__c": Lua('{ audiences = { "Newsletter subscribers", "VIP" } }')},
                       unknown_last_name_ok=True)
            rows = [{"id": "bc-9", "segments": ["Newsletter subscribers", "Other"], "objectives": ["crm_sync"],
                     "fields": {"email": "old@x.example", "last_name": "Zed"}}]
            job = Job(emu, r, rows)
            job.run()
            job.input([dict(rows[0], fields={"email": "z@x.example", "last_name": "Zed"})])
            job.run()
            s = job.last()
            self.assertEqual((s["updated"], s["unique_profiles_exported"], s["profiles_in_store"]), (1, 1, 1))
            got = [x for x in records(emu, "Contact") if x.get("BlueConic_Profile_Id__c")]
            self.assertEqual(got, [{"BlueConic_Profile_Id__c": "bc-9", "Email": "z@x.example", "LastName": "Zed",
                                    "BlueConic_Segments__c": "Newsletter subscribers"}])
            self.assertEqual(emu.stats()["by_endpoint"].get("query", 0), 0)
            job.cleanup()


class Journy(unittest.TestCase):
    def test_update_only_by_default(self):
        """examples/journy.lua: contacts by email and accounts by external ID are only updated by default"""
        with Emulator(["--data", ORG]) as emu:
            ex = Example(emu, "journy")
            ex.run()
            self.assertEqual(records(emu, "Contact"), [
                {"Email": "dorothy@nasa.example", "FirstName": "Dorothy", "LastName": "Vaughan", "Title": "Supervisor"},
                {"Email": "mary@jackson.example", "FirstName": "Mary", "LastName": "Jackson", "Phone": "+1 555 0199",
                 "Journy_Stage__c": "Activated", "Journy_Score__c": 72.45},
            ])
            self.assertEqual(records(emu, "Account"), [
                {"Name": "Jackson Aero", "Journy_Account_Id__c": "acc-1", "Website": "https://jackson.example",
                 "Journy_Health__c": "Healthy"}])
            s = ex.last()
            self.assertEqual((s["created"], s["updated"], s["skipped"]), (0, 2, {"no_match_update_only": 3}))
            ex.cleanup()

    def test_create_switch(self):
        """JOURNY_CREATE=true: missing contacts are created, accounts upserted by the external ID"""
        with Emulator(["--data", ORG]) as emu:
            ex = Example(emu, "journy", JOURNY_CREATE="true")
            ex.run()
            self.assertEqual(records(emu, "Contact"), [
                {"Email": "dorothy@nasa.example", "FirstName": "Dorothy", "LastName": "Vaughan", "Title": "Supervisor"},
                {"Email": "mary@jackson.example", "FirstName": "Mary", "LastName": "Jackson", "Phone": "+1 555 0199",
                 "Journy_Stage__c": "Activated", "Journy_Score__c": 72.45},
                {"Email": "new.user@jackson.example", "FirstName": "New", "LastName": "User",
                 "Journy_Stage__c": "Signed up", "Journy_Score__c": 10},
            ])
            self.assertEqual(sorted(records(emu, "Account"), key=lambda r: r["Journy_Account_Id__c"]), [
                {"Name": "Jackson Aero", "Journy_Account_Id__c": "acc-1", "Website": "https://jackson.example",
                 "Journy_Health__c": "Healthy"},
                {"Name": "Brand New Co", "Journy_Account_Id__c": "acc-2", "Website": "https://brandnew.example",
                 "Journy_Health__c": "At risk"}])
            s = ex.last()
            self.assertEqual((s["created"], s["updated"], s["skipped"]), (2, 2, {"missing_last_name": 1}))
            ex.cleanup()


if __name__ == "__main__":
    tap.main()
