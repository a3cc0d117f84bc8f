"""Export against the emulator: type rules (truncation, rounding, mismatches),
unknown company / last name, required-field refusal and other recipe errors,
duplicate rules, triggers, audience exits, consent, dry run, per-record
rejects, multiple matches, SOQL escaping and the URI limit."""
import json
import os
import unittest

from exportkit import (ORG, Job, Lua, recipe, profile, profile as P, records, by_email, writes, calls)
from harness import Emulator
import tap


class TypeRules(unittest.TestCase):
    def test_truncation_to_describe_length(self):
        """text is cut to the describe length in UTF-16 units, never mid-character"""
        company = "Ü" * 300
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(extra_fields={"Short__c": "short", "Title": "title"}), [
                P("u1", email="a@x.example", last_name="L" * 100, first_name="F" * 45, company=company,
                  short="12345678🚀x", title="t" * 127 + "🚀"),
            ])
            job.run()
            got = records(emu)
            self.assertEqual(got, [{"Email": "a@x.example", "LastName": "L" * 80, "FirstName": "F" * 40,
                                    "Company": "Ü" * 255, "Short__c": "12345678🚀", "Title": "t" * 127}])
            job.cleanup()

    def test_rounding_down_two_decimals(self):
        """numbers are truncated toward zero to 2 decimals (or the field's smaller scale)"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(extra_fields={"Score__c": "score", "Latitude": "lat", "AnnualRevenue": "revenue"}), [
                P("u1", email="a@x.example", last_name="A", company="C", score=12.3456, lat=41.90278, revenue=1234.99),
                P("u2", email="b@x.example", last_name="B", company="C", score=-7.899, lat=-0.005, revenue=-10.5),
                P("u3", email="c@x.example", last_name="C", company="C", score=0.29, lat=12, revenue=7),
            ])
            job.run()
            got = {r["Email"]: (r.get("Score__c"), r.get("Latitude"), r.get("AnnualRevenue")) for r in records(emu)}
            self.assertEqual(got, {"a@x.example": (12.34, 41.9, 1234), "b@x.example": (-7.89, 0, -10),
                                   "c@x.example": (0.29, 12, 7)})
            job.cleanup()

    def test_numbers_stay_exact(self):
        """integers past 2^53 reach Salesforce exactly (ids, match keys and number fields), through the trigger store"""
        big = 9007199254740993   # a double would make it ...992
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(match_field="Ext_Id__c", extra_fields={"Ext_Id__c": Lua("{ id = true }"),
                                                                        "Big_Number__c": "big", "Score__c": "small"}), [
                P(big, email="a@x.example", last_name="A", company="C", big=big, small=0.1),
                P(123456789012345678, email="b@x.example", last_name="B", company="C", big=-big, small=2),
            ])
            job.run()
            got = sorted((r["Ext_Id__c"], r["Big_Number__c"], r["Score__c"]) for r in emu.records("Lead"))
            self.assertEqual(got, [("123456789012345678", -big, 2), (str(big), big, 0.1)])
            job.run()   # unchanged: the trigger store knows both (their keys are exact too)
            self.assertEqual(len(emu.records("Lead")), 2)
            self.assertEqual(writes(emu), 1, "the second run sends nothing")
            job.cleanup()

    def test_type_mismatch_skips_the_field_only(self):
        """a value of the wrong type is skipped for that field, reported, and the rest is sent"""
        with Emulator(["--data", ORG]) as emu:
            fields = {"NumberOfEmployees": "employees", "Opt_In__c": "opt_in", "Birthday__c": "birthday",
                      "Score__c": "score", "Last_Seen__c": "seen", "Tags__c": "tags"}
            job = Job(emu, recipe(extra_fields=fields), [
                P("u1", email="a@x.example", last_name="Lovelace", company="Engines", employees="many",
                  opt_in="yes", birthday="10/12/1815", score="12", seen="2024-01-15T10:30:00+02:00", tags=["a", "b"]),
                P("u2", email="b@x.example", last_name="Byron", company="Poets", employees=12.0, opt_in=True,
                  birthday="1815-12-10", score=1.5, seen=1705314600, tags="x"),
            ])
            p = job.run()
            rows = {r["Email"]: r for r in emu.records("Lead")}
            a, b = rows["a@x.example"], rows["b@x.example"]
            self.assertEqual((a["LastName"], a["Company"], a["NumberOfEmployees"], a["Opt_In__c"], a["Birthday__c"],
                              a["Score__c"], a["Last_Seen__c"], a["Tags__c"]),
                             ("Lovelace", "Engines", None, False, None, None, "2024-01-15T08:30:00.000+0000", "a;b"))
            self.assertEqual((b["NumberOfEmployees"], b["Opt_In__c"], b["Birthday__c"], b["Score__c"], b["Last_Seen__c"]),
                             (12, True, "1815-12-10", 1.5, "2024-01-15T10:30:00.000+0000"))
            rej = sorted((r["user"], r["field"], r["statusCode"]) for r in job.rejects())
            self.assertEqual(rej, [("u1", "Birthday__c", "TYPE_MISMATCH"), ("u1", "NumberOfEmployees", "TYPE_MISMATCH"),
                                   ("u1", "Opt_In__c", "TYPE_MISMATCH"), ("u1", "Score__c", "TYPE_MISMATCH")])
            self.assertEqual(job.last()["field_values_skipped"], 4)
            self.assertIn("field values skipped", p.stdout)
            job.cleanup()


class UnknownValues(unittest.TestCase):
    ROWS = [
        P("u1", email="nocompany@x.example", last_name="Hopper"),
        P("u2", email="nolast@x.example", company="Initech"),
        P("u3", email="existing@x.example", first_name="Kept"),
    ]
    SEED = [{"LastName": "Existing", "Company": "Old Co", "Email": "existing@x.example"}]

    def test_on_sends_unknown(self):
        """unknown_company_ok / unknown_last_name_ok on: a missing value is created as "Unknown"; updates leave it"""
        with Emulator(["--data", ORG]) as emu:
            emu.insert("Lead", self.SEED)
            job = Job(emu, recipe(unknown_company_ok=True, unknown_last_name_ok=True), self.ROWS)
            job.run()
            self.assertEqual(records(emu, keep={"Email", "LastName", "Company", "FirstName"}), [
                {"Email": "existing@x.example", "LastName": "Existing", "Company": "Old Co", "FirstName": "Kept"},
                {"Email": "nocompany@x.example", "LastName": "Hopper", "Company": "Unknown"},
                {"Email": "nolast@x.example", "LastName": "Unknown", "Company": "Initech"},
            ])
            job.cleanup()

    def test_off_skips_creates_with_reason(self):
        """off: such users are not created (skipped by reason); an existing record is still updated"""
        with Emulator(["--data", ORG]) as emu:
            emu.insert("Lead", self.SEED)
            job = Job(emu, recipe(unknown_company_ok=False, unknown_last_name_ok=False), self.ROWS)
            p = job.run()
            self.assertEqual(records(emu, keep={"Email", "LastName", "Company", "FirstName"}), [
                {"Email": "existing@x.example", "LastName": "Existing", "Company": "Old Co", "FirstName": "Kept"},
            ])
            s = job.last()
            self.assertEqual(s["skipped"], {"missing_company": 1, "missing_last_name": 1})
            self.assertEqual((s["created"], s["updated"]), (0, 1))
            self.assertIn("missing_company 1", p.stdout)
            job.cleanup()


class RecipeErrors(unittest.TestCase):
    def test_required_fields_refused_before_any_write(self):
        """every field Salesforce requires to create must be mapped: exit 2 names them, nothing written"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(default_fields=False, extra_fields={"Email": "email"}),
                      [P("u1", email="a@x.example", last_name="A", company="C")])
            p = job.run(check=2)
            self.assertIn("Lead requires LastName, Company to create a record", p.stderr)
            self.assertRegex(p.stderr, r"recipe\.lua:\d+: required_fields: ")
            self.assertEqual(writes(emu), 0)
            self.assertEqual(emu.records("Lead"), [])
            # update only: nothing is required
            job2 = Job(emu, recipe(default_fields=False, create=False, extra_fields={"Email": "email"}),
                       [P("u1", email="a@x.example")])
            job2.run()
            job.cleanup()
            job2.cleanup()

    def test_required_fields_of_other_objects(self):
        """the rule follows describe for any object: Opportunity, a custom object's required field"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(object="Opportunity", match_field="Name", default_fields=False,
                                  extra_fields={"Name": "name"}), [P("u1", name="Deal")])
            p = job.run(check=2)
            self.assertIn("Opportunity requires StageName, CloseDate", p.stderr)
            job2 = Job(emu, recipe(object="Membership__c", match_field="Member_Key__c", default_fields=False,
                                   extra_fields={"Member_Key__c": Lua("{ id = true }")}), [P("u1")])
            p2 = job2.run(check=2)
            self.assertIn("Membership__c requires Level__c", p2.stderr)
            self.assertEqual(writes(emu), 0)
            job.cleanup()
            job2.cleanup()

    def test_other_recipe_errors(self):
        """match field not mapped, unknown fields and objects, bad keys: exit 2 with file:line, before any write"""
        cases = [
            (recipe(match_field="Ext_Id__c"), "the match field Ext_Id__c must be mapped"),
            (recipe(extra_fields={"Nope__c": "x"}), "Lead has no field Nope__c"),
            (recipe(object="Nope__c", match_field="Name"), "Salesforce has no object Nope__c"),
            (recipe(audiences_field="NumberOfEmployees"), "it must hold text"),
            (recipe(extra_fields={"Address": "x"}), "not supported"),
            (recipe(extra_fields={"CreatedDate": "x"}), "read-only"),
            (recipe(triggers=["f%d" % i for i in range(76)]), "triggers: takes at most 75 items"),
            (recipe(duplicates="merge"), "duplicates: must be one of"),
            (recipe(extra_fields={"Title": {"value": "x", "id": True}}), "exactly one of"),
            (recipe(match_field=None), "match_field: required key is missing"),
            (recipe(extra_fields={"Email": "x"}, field_overrides=None, default_fields=True)
             .replace("Email = \"x\"", "Email = \"x\", [\"email\"] = \"y\""), "mapped twice"),
        ]
        with Emulator(["--data", ORG]) as emu:
            for text, needle in cases:
                job = Job(emu, text, [P("u1", email="a@x.example", last_name="A", company="C")])
                p = job.run(check=2)
                self.assertIn(needle, p.stderr, text)
                self.assertRegex(p.stderr, r"^sfengine: \S*recipe\.lua:\d+: ", text)
                job.cleanup()
            self.assertEqual(writes(emu), 0)


class Duplicates(unittest.TestCase):
    """A duplicate rule on Lead Email; the export matches by an external ID, so
    its upsert runs into the rule for a Lead that exists without that ID."""

    def run_mode(self, mode):
        emu = Emulator(["--data", ORG, "--duplicate-rule", "Lead:Email"]).start()
        existing = emu.insert("Lead", [{"LastName": "Old", "Company": "Old Co", "Email": "dup@x.example"}])[0]
        job = Job(emu, recipe(match_field="Ext_Id__c", duplicates=mode, extra_fields={"Ext_Id__c": Lua("{ id = true }")}),
                  [P("u1", email="dup@x.example", last_name="New", company="New Co"),
                   P("u2", email="fresh@x.example", last_name="Fresh", company="F")])
        job.run()
        return emu, job, existing

    def test_report(self):
        """duplicates = "report": the record is rejected with the matched record ids"""
        emu, job, existing = self.run_mode("report")
        try:
            leads = [r for r in emu.records("Lead") if r["Email"] == "dup@x.example"]
            self.assertEqual([(r["LastName"], r["Ext_Id__c"]) for r in leads], [("Old", None)])
            rej = [r for r in job.rejects() if r["operation"] != "field"]
            self.assertEqual(len(rej), 1)
            self.assertEqual((rej[0]["user"], rej[0]["statusCode"], rej[0]["duplicate_ids"]),
                             ("u1", "DUPLICATES_DETECTED", [existing]))
            self.assertEqual((job.last()["created"], job.last()["failed"]), (1, 1))
        finally:
            job.cleanup()
            emu.stop()

    def test_allow_save(self):
        """duplicates = "allow_save": the Sforce-Duplicate-Rule-Header lets the save through"""
        emu, job, existing = self.run_mode("allow_save")
        try:
            leads = sorted((r["LastName"], r["Ext_Id__c"]) for r in emu.records("Lead") if r["Email"] == "dup@x.example")
            self.assertEqual(leads, [("New", "u1"), ("Old", None)])
            self.assertEqual(job.rejects(), [])
        finally:
            job.cleanup()
            emu.stop()

    def test_update_match(self):
        """duplicates = "update_match": the matched record is updated instead"""
        emu, job, existing = self.run_mode("update_match")
        try:
            leads = [r for r in emu.records("Lead") if r["Email"] == "dup@x.example"]
            self.assertEqual([(r["Id"], r["LastName"], r["Company"], r["Ext_Id__c"]) for r in leads],
                             [(existing, "New", "New Co", "u1")])
            self.assertEqual(job.rejects(), [])
            self.assertEqual((job.last()["created"], job.last()["updated"]), (1, 1))
        finally:
            job.cleanup()
            emu.stop()

    def test_lookup_path_create_blocked(self):
        """with an Email lookup the existing Lead is found and updated: the rule never fires"""
        with Emulator(["--data", ORG, "--duplicate-rule", "Lead:Email"]) as emu:
            emu.insert("Lead", [{"LastName": "Old", "Company": "Old Co", "Email": "Dup@X.example"}])
            job = Job(emu, recipe(), [P("u1", email="dup@x.example", last_name="New", company="New Co")])
            job.run()
            self.assertEqual(records(emu, keep={"Email", "LastName"}), [{"Email": "dup@x.example", "LastName": "New"}])
            job.cleanup()


class Triggers(unittest.TestCase):
    def test_only_changed_trigger_fields_resend(self):
        """a user already sent is sent again only when a trigger field (or its audiences) changed"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(triggers=["score", "company"], extra_fields={"Score__c": "score", "Title": "title"}), [
                P("u1", email="a@x.example", last_name="A", company="C", score=1, title="T1"),
                P("u2", email="b@x.example", last_name="B", company="C", score=2, title="T1"),
                P("u3", email="c@x.example", last_name="C", company="C", score=3, title="T1"),
            ])
            job.run()
            self.assertEqual(job.last()["created"], 3)
            before = calls(emu)
            job.input([
                P("u1", email="a@x.example", last_name="A", company="C", score=1, title="T2"),   # not a trigger
                P("u2", email="b@x.example", last_name="B", company="C", score=20, title="T1"),  # trigger changed
                P("u3", email="c@x.example", last_name="C", company="C", score=3, title="T1", audiences=["power", "vip"]),
            ])
            job.run()
            s = job.last()
            self.assertEqual((s["created"], s["updated"], s["skipped"]), (0, 2, {"unchanged": 1}))
            got = {r["Email"]: (r["Score__c"], r["Title"]) for r in emu.records("Lead")}
            self.assertEqual(got, {"a@x.example": (1, "T1"), "b@x.example": (20, "T1"), "c@x.example": (3, "T1")})
            self.assertEqual(calls(emu) - before, 2)   # one lookup, one update call (describe cached)
            job.run()
            self.assertEqual(job.last()["skipped"], {"unchanged": 3})
            job.cleanup()

    def test_without_triggers_any_mapped_change_resends(self):
        """no triggers: a change of any sent value resends; identical lines cost nothing"""
        with Emulator(["--data", ORG]) as emu:
            rows = [P("u1", email="a@x.example", last_name="A", company="C", title="T1")]
            job = Job(emu, recipe(), rows)
            job.run()
            before = calls(emu)
            job.run()
            self.assertEqual(calls(emu), before)
            job.input([P("u1", email="a@x.example", last_name="A", company="C", title="T2")])
            job.run()
            self.assertEqual(job.last()["updated"], 1)
            job.cleanup()


class Audiences(unittest.TestCase):
    def test_exit_updates_the_audiences_field(self):
        """leaving an audience updates the audiences field; leaving all clears it; others are never created"""
        with Emulator(["--data", ORG]) as emu:
            r = recipe(audiences=["power", "vip"], audiences_field="Lytics_Audiences__c")
            job = Job(emu, r, [
                P("u1", ["power"], email="a@x.example", last_name="A", company="C"),
                P("u2", ["power", "vip", "other"], email="b@x.example", last_name="B", company="C"),
                P("u3", ["other"], email="c@x.example", last_name="C", company="C"),
            ])
            job.run()
            self.assertEqual({r["Email"]: r["Lytics_Audiences__c"] for r in emu.records("Lead")},
                             {"a@x.example": "power", "b@x.example": "power, vip"})
            self.assertEqual(job.last()["skipped"], {"not_in_audience": 1})
            job.input([
                {"id": "u1", "event": "exit", "audience": "power", "audiences": [],
                 "fields": {"email": "a@x.example", "last_name": "A", "company": "C"}},
                {"id": "u2", "event": "exit", "audience": "vip", "audiences": ["power", "vip", "other"],
                 "fields": {"email": "b@x.example", "last_name": "B", "company": "C"}},
                {"id": "u4", "event": "exit", "audience": "power", "audiences": [],
                 "fields": {"email": "d@x.example", "last_name": "D", "company": "C"}},
            ])
            job.run()
            self.assertEqual({r["Email"]: r["Lytics_Audiences__c"] for r in emu.records("Lead")},
                             {"a@x.example": None, "b@x.example": "power"})
            s = job.last()
            self.assertEqual((s["updated"], s["created"]), (2, 0))
            self.assertEqual(s["skipped"], {"exit_without_record": 1})
            # a later enter brings it back
            job.input([{"id": "u1", "event": "enter", "audience": "vip",
                        "fields": {"email": "a@x.example", "last_name": "A", "company": "C"}}])
            job.run()
            self.assertEqual(by_email(emu)["a@x.example"]["Lytics_Audiences__c"], "vip")
            job.cleanup()

    def test_affinities_and_scores(self):
        """content affinity sends the top three; scores are name=value pairs"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(affinities_field="Lytics_Content_Affinity__c", scores_field="Lytics_Scores__c"), [
                {"id": "u1", "audiences": ["power"], "fields": {"email": "a@x.example", "last_name": "A", "company": "C"},
                 "affinities": {"shoes": 0.2, "travel": 0.9, "food": 0.5, "cars": 0.7},
                 "scores": {"momentum": 45, "quality": 87.5}},
            ])
            job.run()
            r = by_email(emu)["a@x.example"]
            self.assertEqual((r["Lytics_Content_Affinity__c"], r["Lytics_Scores__c"]),
                             ("travel, cars, food", "momentum=45, quality=87.5"))
            job.cleanup()


class Consent(unittest.TestCase):
    def test_consent_objectives(self):
        """profiles need at least one of the consent objectives; the others are skipped and counted"""
        with Emulator(["--data", ORG]) as emu:
            rows = [
                dict(P("u1", email="a@x.example", last_name="A", company="C"), consent=["marketing"]),
                dict(P("u2", email="b@x.example", last_name="B", company="C"), consent=["analytics", "sales"]),
                dict(P("u3", email="c@x.example", last_name="C", company="C"), consent=["analytics"]),
                P("u4", email="d@x.example", last_name="D", company="C"),
            ]
            job = Job(emu, recipe(consent=["marketing", "sales"]), rows)
            p = job.run()
            self.assertEqual(sorted(r["Email"] for r in emu.records("Lead")), ["a@x.example", "b@x.example"])
            self.assertEqual(job.last()["skipped"], {"no_consent": 2})
            self.assertIn("no_consent 2", p.stdout)
            job.cleanup()


class DryRun(unittest.TestCase):
    def test_dry_run_writes_nothing(self):
        """--dry-run reads (describe, lookups) but writes nothing, and prints each would-be write with its payload"""
        with Emulator(["--data", ORG]) as emu:
            existing = emu.insert("Lead", [{"LastName": "Old", "Company": "Old Co", "Email": "old@x.example"}])[0]
            rows = [P("u1", email="new@x.example", last_name="New", company="C"),
                    P("u2", email="OLD@x.example", last_name="Renamed", company="Old Co")]
            job = Job(emu, recipe(audiences_field="Lytics_Audiences__c"), rows)
            p = job.run("--dry-run")
            self.assertEqual(writes(emu), 0)
            # stdout is the plan alone (one JSON object per line, `| jq` works);
            # the human summary is on stderr and says what it would do
            lines = [json.loads(l) for l in p.stdout.splitlines()]
            self.assertEqual(lines, [
                {"dry_run": "update", "object": "Lead", "user": "u2", "id": existing,
                 "record": {"Company": "Old Co", "Email": "OLD@x.example", "LastName": "Renamed",
                            "Lytics_Audiences__c": "power"}},
                {"dry_run": "create", "object": "Lead", "user": "u1",
                 "record": {"Company": "C", "Email": "new@x.example", "LastName": "New", "Lytics_Audiences__c": "power"}},
            ])
            self.assertIn("dry run: nothing was written", p.stderr)
            self.assertIn("would create 1, would update 1", p.stderr)
            # the store was not touched: the real run sends both
            job.run()
            self.assertEqual((job.last()["created"], job.last()["updated"]), (1, 1))
            job.cleanup()

    def test_dry_run_with_external_id(self):
        """an upsert recipe in dry run looks the IDs up to say create or update"""
        with Emulator(["--data", ORG]) as emu:
            emu.insert("Lead", [{"LastName": "Old", "Company": "Old Co", "Ext_Id__c": "u2"}])
            job = Job(emu, recipe(match_field="Ext_Id__c", extra_fields={"Ext_Id__c": Lua("{ id = true }")}),
                      [P("u1", last_name="New", company="C"), P("u2", last_name="Renamed", company="C")])
            p = job.run("--dry-run")
            ops = sorted((json.loads(l)["dry_run"], json.loads(l)["user"]) for l in p.stdout.splitlines() if l.startswith("{"))
            self.assertEqual(ops, [("create", "u1"), ("update", "u2")])
            self.assertEqual(writes(emu), 0)
            job.cleanup()


class Records(unittest.TestCase):
    def test_per_record_failures_are_rejected(self):
        """a record Salesforce refuses goes to the rejects file with key, statusCode, message and fields"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), [P("u1", email="not-an-email", last_name="A", company="C"),
                                      P("u2", email="ok@x.example", last_name="B", company="C")])
            p = job.run()
            self.assertEqual([r["Email"] for r in emu.records("Lead")], ["ok@x.example"])
            rej = job.rejects()
            self.assertEqual(len(rej), 1)
            self.assertEqual((rej[0]["user"], rej[0]["operation"], rej[0]["statusCode"], rej[0]["fields"],
                              rej[0]["match"]), ("u1", "create", "INVALID_EMAIL_ADDRESS", ["Email"], {"Email": "not-an-email"}))
            self.assertIn("invalid email address", rej[0]["message"])
            s = job.last()
            self.assertEqual((s["created"], s["failed"], s["status"]), (1, 1, "done"))
            self.assertIn("failed 1", p.stdout)
            # a failed user is not in the trigger store: the next run tries it again
            job.run()
            self.assertEqual(job.last()["failed"], 1)
            job.cleanup()

    def test_bad_lines(self):
        """bad input lines are skipped by reason and reported with their line number"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), "not json\n\n{\"id\":\"\"}\n" + json.dumps(
                P("u1", email="a@x.example", last_name="A", company="C")) + "\n")
            job.run()
            self.assertEqual(job.last()["skipped"], {"bad_json": 1, "bad_line": 1})
            self.assertEqual([(r["line"], r["statusCode"]) for r in job.rejects()], [(1, "BAD_JSON"), (3, "BAD_LINE")])
            self.assertEqual(len(emu.records("Lead")), 1)
            job.cleanup()

    def test_multiple_matches(self):
        """several records match: most_recent updates the latest (LastModifiedDate), update_all every one"""
        seed = [{"LastName": "Older", "Company": "C", "Email": "m@x.example", "LastModifiedDate": "2024-01-01T00:00:00.000+0000"},
                {"LastName": "Newer", "Company": "C", "Email": "M@x.example", "LastModifiedDate": "2024-02-01T00:00:00.000+0000"}]
        for mode, want in (("most_recent", ["Older", "Updated"]), ("update_all", ["Updated", "Updated"])):
            with Emulator(["--data", ORG]) as emu:
                ids = emu.insert("Lead", seed)
                job = Job(emu, recipe(multiple_matches=mode),
                          [P("u1", email="m@x.example", last_name="Updated", company="C")])
                job.run()
                got = {r["Id"]: r["LastName"] for r in emu.records("Lead")}
                self.assertEqual([got[i] for i in ids], want, mode)
                self.assertEqual(len(got), 2)
                job.cleanup()

    def test_same_match_value_in_one_batch(self):
        """two users with one email in a batch: one record is created, then updated, never two"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), [P("u1", email="same@x.example", last_name="First", company="C"),
                                      P("u2", email="SAME@x.example", last_name="Second", company="C")])
            job.run()
            self.assertEqual(records(emu, keep={"Email", "LastName"}), [{"Email": "SAME@x.example", "LastName": "Second"}])
            self.assertEqual((job.last()["created"], job.last()["updated"]), (1, 1))
            job.cleanup()

    def test_soql_escaping(self):
        """match values with quotes, backslashes and newlines are escaped in the lookup"""
        values = ["O'Brien", "back\\slash", 'say "hi"', "two\nlines", "tab\there", "Zoë 山田", "' OR Name != '"]
        with Emulator(["--data", ORG]) as emu:
            emu.insert("Lead", [{"LastName": "Seed", "Company": "C", "Ext_Text__c": values[0]},
                                {"LastName": "Seed", "Company": "C", "Ext_Text__c": values[1]}])
            rows = [P("u%d" % i, ext=v, last_name="N%d" % i, company="C") for i, v in enumerate(values)]
            job = Job(emu, recipe(match_field="Ext_Text__c", extra_fields={"Ext_Text__c": "ext"}), rows)
            job.run()
            got = sorted((r["Ext_Text__c"], r["LastName"]) for r in emu.records("Lead"))
            self.assertEqual(got, sorted((v, "N%d" % i) for i, v in enumerate(values)))
            self.assertEqual((job.last()["created"], job.last()["updated"]), (5, 2))
            job.cleanup()

    def test_uri_limit_splits_the_lookup(self):
        """long match values: the IN list is split so no request URI passes 16,384 bytes"""
        with Emulator(["--data", ORG]) as emu:
            rows = [P("u%d" % i, ext=("v%03d-" % i) + "é" * 60, last_name="L", company="C") for i in range(200)]
            job = Job(emu, recipe(match_field="Ext_Text__c", extra_fields={"Ext_Text__c": "ext"}), rows)
            job.run()
            st = emu.stats()
            self.assertGreaterEqual(st["by_endpoint"]["query"], 2)
            self.assertEqual(st["rejected"], {})
            self.assertEqual(len(emu.records("Lead")), 200)
            job.run()
            self.assertEqual(len(emu.records("Lead")), 200)
            job.cleanup()

    def test_recipe_functions_and_static_values(self):
        """field values from a user field, a static text, the profile id, audiences and a Lua function (which reads, iterates and counts the user but cannot change it)"""
        with Emulator(["--data", ORG]) as emu:
            fields = {
                "Title": Lua('function(u) return string.upper(u.fields.title) .. " #" .. u.id end'),
                "LeadSource": {"value": "Web"},
                "Ext_Text__c": {"id": True},
                "Description": {"audiences": True},
                "Industry": {"audiences": ["Technology", "Banking"]},
                "Website": Lua('function(u) error("boom") end'),
                "City": "address.city",
                "MobilePhone": Lua('function(u) local n = 0 for k, v in pairs(u.fields.address) do n = n + #k + #v end '
                                   'return n .. " " .. #u.audiences end'),
                "Phone": Lua('function(u) u.fields.address.city = "Oslo" end'),
            }
            job = Job(emu, recipe(extra_fields=fields), [
                {"id": "u1", "audiences": ["power", "Technology"],
                 "fields": {"email": "a@x.example", "last_name": "A", "company": "C", "title": "cto",
                            "address": {"city": "Rome"}}}])
            job.run()
            r = by_email(emu)["a@x.example"]
            self.assertEqual((r["Title"], r["LeadSource"], r["Ext_Text__c"], r["Description"], r["Industry"],
                              r["Website"], r["City"], r["MobilePhone"], r["Phone"]),
                             ("CTO #u1", "Web", "u1", "Technology, power", "Technology", None, "Rome", "8 2", None))
            rej = sorted(job.rejects(), key=lambda x: x["field"])
            self.assertEqual([(x["field"], x["statusCode"]) for x in rej],
                             [("Phone", "FUNCTION_ERROR"), ("Website", "FUNCTION_ERROR")])
            self.assertIn("the user is read-only (cannot set city)", rej[0]["message"])
            self.assertIn("boom", rej[1]["message"])
            job.cleanup()

    def test_custom_object_upsert(self):
        """any object, custom included: upsert by its external ID, picklist and number fields"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(object="Membership__c", match_field="Member_Key__c", default_fields=False,
                                  required_fields={"Level__c": "level"},
                                  extra_fields={"Member_Key__c": Lua("{ id = true }"), "Points__c": "points"}),
                      [P("m1", level="Gold", points=10.129), P("m2", level="Silver", points=3)])
            job.run()
            job.input([P("m1", level="Platinum", points=11), P("m2", level="Silver", points=3)])
            job.run()
            got = sorted((r["Member_Key__c"], r["Level__c"], r["Points__c"]) for r in emu.records("Membership__c"))
            self.assertEqual(got, [("m1", "Platinum", 11), ("m2", "Silver", 3)])
            self.assertEqual(emu.stats()["by_endpoint"].get("query", 0), 0)
            job.cleanup()



class DescribeCache(unittest.TestCase):
    def cache(self, job):
        return job.wd.path(".sfengine", "t.describe.Lead.json")

    def edit_cache(self, job, fn):
        path = self.cache(job)
        doc = json.load(open(path))
        doc["describe"]["fields"] = fn(doc["describe"]["fields"])
        json.dump(doc, open(path, "w"))

    def test_cached_describe_missing_a_field_is_fetched_again(self):
        """a recipe that fails against the cached describe is checked against a fresh one"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), [P("u1", email="a@x.example", last_name="A", company="C")])
            job.run()
            self.edit_cache(job, lambda fs: [f for f in fs if f["name"] != "Score__c"])
            job.wd.write("recipe.lua", recipe(extra_fields={"Score__c": "score"}))
            job.input([P("u1", email="a@x.example", last_name="A", company="C", score=5)])
            job.run()
            self.assertEqual(by_email(emu)["a@x.example"]["Score__c"], 5)
            self.assertEqual(emu.stats()["by_endpoint"]["describe"], 2)
            job.cleanup()

    def test_field_gone_from_the_org(self):
        """a field in the cache but not in the org: the write fails, the cache goes, the rerun names the field"""
        with Emulator(["--data", ORG]) as emu:
            job = Job(emu, recipe(), [P("u1", email="a@x.example", last_name="A", company="C")])
            job.run()
            self.edit_cache(job, lambda fs: fs + [dict(fs[-1], name="Ghost__c", type="string", length=10)])
            job.wd.write("recipe.lua", recipe(extra_fields={"Ghost__c": "ghost"}))
            job.input([P("u2", email="b@x.example", last_name="B", company="C", ghost="boo")])
            p = job.run(check=1)
            self.assertIn("describe cache was dropped", p.stderr)
            self.assertFalse(os.path.exists(self.cache(job)))
            p = job.run(check=2)
            self.assertIn("Lead has no field Ghost__c", p.stderr)
            self.assertNotIn("b@x.example", by_email(emu))
            job.cleanup()


if __name__ == "__main__":
    tap.main()
