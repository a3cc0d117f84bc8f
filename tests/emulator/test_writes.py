"""Emulator writes: create/update/delete/upsert, sObject Collections (allOrNone, 200 cap), validation error
bodies, timestamps, duplicate rules, custom objects with external ids, replication (/updated, /deleted)."""
import json
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402
from store import parse_datetime             # noqa: E402

CLOCK = 1767225600          # 2026-01-01T00:00:00Z
MIN = 60


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Writes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Account=5,Contact=5", "--clock", str(CLOCK),
                            "--session-seconds", "99999999"]).start()
        cls.emu.login()
        cls.d = cls.emu.data

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def row(self, obj, rid):
        return {r["Id"]: r for r in self.emu.records(obj)}[rid]

    def err(self, r, status=400):
        self.assertEqual(r.status, status, r.text)
        self.assertIsInstance(r.json, list)
        return r.json[0]

    def test_create_body_and_timestamps(self):
        """POST /sobjects/Lead -> 201 {id, success, errors}; CreatedDate/LastModifiedDate/SystemModstamp = clock"""
        e = self.emu
        r = e.post(self.d + "/sobjects/Lead", {"LastName": "Doe", "FirstName": "Jane", "Company": "Acme",
                                               "Email": "jane@example.com", "NumberOfEmployees": 12})
        self.assertEqual(r.status, 201)
        self.assertEqual(list(r.json), ["id", "success", "errors"])
        self.assertEqual((r.json["success"], r.json["errors"]), (True, []))
        rid = r.json["id"]
        self.assertEqual(len(rid), 18)
        self.assertTrue(rid.startswith("00Q"))
        row = self.row("Lead", rid)
        now = e.clock()
        for f in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            self.assertRegex(row[f], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
            self.assertAlmostEqual(parse_datetime(row[f]), now, delta=5)
        self.assertEqual(row["Name"], "Jane Doe")
        self.assertEqual(row["Status"], "Open - Not Contacted")
        self.assertFalse(row["IsDeleted"])
        g = e.get(self.d + "/sobjects/Lead/" + rid)
        self.assertEqual(g.json["Email"], "jane@example.com")
        self.assertEqual(g.json["attributes"]["url"], "/services/data/v62.0/sobjects/Lead/" + rid)
        self.assertEqual(e.get(self.d + "/sobjects/Lead/" + rid[:15]).json["Id"], rid)

    def test_update_and_delete(self):
        """PATCH -> 204 and moves LastModifiedDate/SystemModstamp; DELETE -> 204, IsDeleted, queryAll only"""
        e = self.emu
        rid = e.post(self.d + "/sobjects/Lead", {"LastName": "Up", "Company": "Co"}).json["id"]
        before = self.row("Lead", rid)
        e.advance_clock(100)
        r = e.patch(self.d + "/sobjects/Lead/" + rid, {"Title": "CTO", "Email": None})
        self.assertEqual((r.status, r.body), (204, b""))
        after = self.row("Lead", rid)
        self.assertEqual(after["Title"], "CTO")
        self.assertEqual(after["CreatedDate"], before["CreatedDate"])
        self.assertGreaterEqual(parse_datetime(after["SystemModstamp"]) - parse_datetime(before["SystemModstamp"]), 100)
        self.assertEqual(after["LastModifiedDate"], after["SystemModstamp"])
        e.advance_clock(10)
        r = e.delete(self.d + "/sobjects/Lead/" + rid)
        self.assertEqual(r.status, 204)
        row = self.row("Lead", rid)
        self.assertTrue(row["IsDeleted"])
        self.assertGreater(row["SystemModstamp"], after["SystemModstamp"])
        q = "SELECT Id FROM Lead WHERE Id = '%s'" % rid
        self.assertEqual(e.query(q)[0], [])
        self.assertEqual([x["Id"] for x in e.query(q, all_rows=True)[0]], [rid])
        self.assertEqual(self.err(e.get(self.d + "/sobjects/Lead/" + rid), 404)["errorCode"], "NOT_FOUND")
        self.assertEqual(self.err(e.patch(self.d + "/sobjects/Lead/" + rid, {"Title": "x"}), 404),
                         {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"})
        self.assertEqual(self.err(e.delete(self.d + "/sobjects/Lead/" + rid), 404)["errorCode"], "ENTITY_IS_DELETED")

    def test_unknown_ids(self):
        """unknown id -> 404 NOT_FOUND; a non-id segment -> 404 'Provided external ID field does not exist'"""
        e = self.emu
        self.assertEqual(self.err(e.patch(self.d + "/sobjects/Lead/00Q5g00000zzzzz", {"Title": "x"}), 404),
                         {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"})
        self.assertEqual(self.err(e.get(self.d + "/sobjects/Lead/xyz"), 404)["message"],
                         "Provided external ID field does not exist or is not accessible: xyz")

    def test_validation_errors(self):
        """each validation failure has Salesforce's code, message and fields"""
        e = self.emu
        url = self.d + "/sobjects/Lead"
        ok = {"LastName": "V", "Company": "Co"}
        cases = [
            ({"LastName": "V"}, {"message": "Required fields are missing: [Company]",
                                 "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Company"]}),
            ({}, {"message": "Required fields are missing: [LastName, Company]",
                  "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Company"]}),
            (dict(ok, Company="c" * 256), {"message": "Company: data value too large: %s (max length=255)" % ("c" * 256),
                                           "errorCode": "STRING_TOO_LONG", "fields": ["Company"]}),
            (dict(ok, FirstName="😀" * 21), {"message": "First Name: data value too large: %s (max length=40)" % ("😀" * 21),
                                            "errorCode": "STRING_TOO_LONG", "fields": ["FirstName"]}),
            (dict(ok, NumberOfEmployees="many"), {"message": "Employees: value not of required type: many",
                                                  "errorCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                  "fields": ["NumberOfEmployees"]}),
            (dict(ok, HasOptedOutOfEmail="yes"), {"message": "Email Opt Out: value not of required type: yes",
                                                  "errorCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                  "fields": ["HasOptedOutOfEmail"]}),
            (dict(ok, EmailBouncedDate="yesterday"), {"message": "Email Bounced Date: value not of required type: yesterday",
                                                      "errorCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                      "fields": ["EmailBouncedDate"]}),
            (dict(ok, Email="not-an-email"), {"message": "Email: invalid email address: not-an-email",
                                              "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}),
            (dict(ok, Name="X Y"), {"message": "Unable to create/update fields: Name. Please check the security settings "
                                    "of this field and verify that it is read/write for your profile or permission set.",
                                    "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["Name"]}),
            (dict(ok, IsDeleted=True), None),
            (dict(ok, CreatedDate="2020-01-01T00:00:00Z"), None),
            (dict(ok, Id="00Q5g00000ABCDEAAA"), {"message": "Record ID: cannot specify Id in an insert call",
                                                 "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["Id"]}),
            (dict(ok, Bogus__c="x"), {"message": "No such column 'Bogus__c' on sobject of type Lead",
                                      "errorCode": "INVALID_FIELD"}),
            (dict(ok, RecordTypeId="nope"), {"message": "Record Type ID: id value of incorrect type: nope",
                                             "errorCode": "MALFORMED_ID", "fields": ["RecordTypeId"]}),
        ]
        for body, want in cases:
            got = self.err(e.post(url, body))
            if want is None:
                self.assertEqual(got["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE", body)
            else:
                self.assertEqual(got, want, body)
        r = e.post(url, b"{not json", {"Content-Type": "application/json"})
        self.assertEqual(self.err(r)["errorCode"], "JSON_PARSER_ERROR")
        for obj, body, missing in (("Account", {}, ["Name"]), ("Contact", {}, ["LastName"]),
                                   ("Opportunity", {}, ["Name", "StageName", "CloseDate"])):
            self.assertEqual(self.err(e.post(self.d + "/sobjects/" + obj, body))["fields"], missing, obj)
        # updates: non-updateable field, nulling a required field
        rid = e.post(url, ok).json["id"]
        self.assertEqual(self.err(e.patch(url + "/" + rid, {"IsConverted": True}))["errorCode"],
                         "INVALID_FIELD_FOR_INSERT_UPDATE")
        self.assertEqual(self.err(e.patch(url + "/" + rid, {"Company": None}))["fields"], ["Company"])
        # accepted coercions: CSV-ish strings
        r = e.post(url, dict(ok, NumberOfEmployees="42", HasOptedOutOfEmail="true", AnnualRevenue="1.5e3",
                             EmailBouncedDate="2025-03-04T05:06:07.000+0200"))
        self.assertEqual(r.status, 201, r.text)
        row = self.row("Lead", r.json["id"])
        self.assertEqual((row["NumberOfEmployees"], row["HasOptedOutOfEmail"], row["AnnualRevenue"]), (42, True, 1500))
        self.assertEqual(row["EmailBouncedDate"], "2025-03-04T03:06:07.000+0000")

    def test_opportunity_derived_fields(self):
        """Opportunity stage drives IsClosed/IsWon/Probability/ForecastCategory; CloseDate drives Fiscal*"""
        e = self.emu
        acc = e.records("Account")[0]["Id"]
        r = e.post(self.d + "/sobjects/Opportunity", {"Name": "Deal", "StageName": "Closed Won",
                                                      "CloseDate": "2026-05-10", "Amount": 100, "AccountId": acc})
        self.assertEqual(r.status, 201, r.text)
        row = self.row("Opportunity", r.json["id"])
        self.assertEqual((row["IsClosed"], row["IsWon"], row["Probability"], row["ForecastCategory"]),
                         (True, True, 100, "Closed"))
        self.assertEqual((row["FiscalYear"], row["FiscalQuarter"], row["Fiscal"]), (2026, 2, "2026 2"))
        r = e.post(self.d + "/sobjects/Opportunity", {"Name": "Deal", "StageName": "Prospecting",
                                                      "CloseDate": "2026-05-10", "AccountId": "001zzzzzzzzzzzz"})
        self.assertEqual(self.err(r)["errorCode"], "INVALID_CROSS_REFERENCE_KEY")

    def test_upsert(self):
        """upsert by external id: 201 created:true, 200 created:false, 300 on several matches, 404 bad field"""
        e = self.emu
        u = self.d + "/sobjects/Contact/Email/"
        r = e.patch(u + "ups@example.com", {"LastName": "Ups"})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.json, {"id": r.json["id"], "success": True, "errors": [], "created": True})
        rid = r.json["id"]
        r = e.patch(u + "UPS@example.com", {"Title": "Dr"})
        self.assertEqual((r.status, r.json), (200, {"id": rid, "success": True, "errors": [], "created": False}))
        self.assertEqual(self.row("Contact", rid)["Title"], "Dr")
        e.post(self.d + "/sobjects/Contact", {"LastName": "Twin", "Email": "twin@example.com"})
        e.post(self.d + "/sobjects/Contact", {"LastName": "Twin2", "Email": "twin@example.com"})
        r = e.patch(u + "twin@example.com", {"Title": "x"})
        self.assertEqual(r.status, 300)
        self.assertEqual(len(r.json), 2)
        self.assertTrue(all(x.startswith("/services/data/v62.0/sobjects/Contact/003") for x in r.json))
        r = e.patch(self.d + "/sobjects/Contact/Title/x", {"LastName": "N"})
        self.assertEqual(self.err(r, 404), {"message": "Provided external ID field does not exist or is not "
                                                       "accessible: Title", "errorCode": "NOT_FOUND"})
        self.assertEqual(e.get(u + "ups@example.com").json["Id"], rid)

    def test_collections(self):
        """composite/sobjects create/update/upsert: per-record results in order; failures without id"""
        e = self.emu
        c = self.d + "/composite/sobjects"
        recs = [{"attributes": {"type": "Lead"}, "LastName": "C%d" % i, "Company": "Co", "Email": "c%d@x.com" % i}
                for i in range(3)]
        recs.insert(1, {"attributes": {"type": "Lead"}, "LastName": "Bad", "Company": "x" * 300})
        r = e.post(c, {"allOrNone": False, "records": recs})
        self.assertEqual(r.status, 200)
        res = r.json
        self.assertEqual([x["success"] for x in res], [True, False, True, True])
        self.assertNotIn("id", res[1])
        self.assertEqual(res[1]["errors"][0]["statusCode"], "STRING_TOO_LONG")
        self.assertEqual(res[1]["errors"][0]["fields"], ["Company"])
        ids = [x["id"] for x in res if x["success"]]
        # update
        upd = [{"attributes": {"type": "Lead"}, "id": ids[0], "Title": "T0"},
               {"attributes": {"type": "Lead"}, "Title": "no id"},
               {"attributes": {"type": "Lead"}, "id": "00Qbad", "Title": "x"}]
        res = e.patch(c, {"records": upd}).json
        self.assertEqual(res[0], {"id": ids[0], "success": True, "errors": []})
        self.assertEqual(res[1]["errors"][0]["statusCode"], "MISSING_ARGUMENT")
        self.assertEqual(res[2]["errors"][0], {"statusCode": "MALFORMED_ID", "message": "malformed id 00Qbad",
                                               "fields": ["Id"]})
        self.assertEqual(self.row("Lead", ids[0])["Title"], "T0")
        # upsert
        ups = [{"attributes": {"type": "Lead"}, "Email": "c1@x.com", "Title": "up"},
               {"attributes": {"type": "Lead"}, "Email": "new-up@x.com", "LastName": "N", "Company": "C"}]
        res = e.patch(c + "/Lead/Email", {"allOrNone": False, "records": ups}).json
        self.assertEqual([(x["success"], x["created"]) for x in res], [(True, False), (True, True)])
        self.assertEqual(res[0]["id"], ids[1])
        # delete
        res = e.delete(c + "?ids=%s,%s" % (ids[2], "00Q5g00000zzzzz")).json
        self.assertEqual(res[0], {"id": ids[2], "success": True, "errors": []})
        self.assertFalse(res[1]["success"])

    def test_collections_all_or_none(self):
        """allOrNone: one bad record -> others ALL_OR_NONE_OPERATION_ROLLED_BACK, nothing written"""
        e = self.emu
        n0 = len(e.records("Account"))
        recs = [{"attributes": {"type": "Account"}, "Name": "A%d" % i} for i in range(4)]
        recs[2] = {"attributes": {"type": "Account"}}
        res = e.post(self.d + "/composite/sobjects", {"allOrNone": True, "records": recs}).json
        self.assertEqual(res[2]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING")
        for i in (0, 1, 3):
            self.assertEqual(res[i], {"success": False, "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                           "header", "fields": []}]})
        self.assertEqual(len(e.records("Account")), n0)

    def test_collection_limits(self):
        """201 records -> 400 EXCEEDED_ID_LIMIT; unknown field or type fails the whole request"""
        e = self.emu
        c = self.d + "/composite/sobjects"
        recs = [{"attributes": {"type": "Account"}, "Name": "A"}] * 201
        r = e.post(c, {"records": recs})
        self.assertEqual(r.json, [{"message": "record limit reached. cannot submit more than 200 records into this "
                                              "call", "errorCode": "EXCEEDED_ID_LIMIT"}])
        n0 = len(e.records("Account"))
        r = e.post(c, {"records": [{"attributes": {"type": "Account"}, "Name": "ok"},
                                   {"attributes": {"type": "Account"}, "Name": "x", "Nope": 1}]})
        self.assertEqual(self.err(r)["errorCode"], "INVALID_FIELD")
        self.assertEqual(len(e.records("Account")), n0)
        r = e.post(c, {"records": [{"attributes": {"type": "Nope"}, "Name": "x"}]})
        self.assertEqual(self.err(r)["errorCode"], "INVALID_TYPE")
        self.assertEqual(len(e.records("Account")), n0)
        self.assertEqual(len(e.post(c, {"records": recs[:200]}).json), 200)

    def test_cascade_delete(self):
        """deleting an Account deletes its Contacts"""
        e = self.emu
        acc = e.post(self.d + "/sobjects/Account", {"Name": "Parent"}).json["id"]
        con = e.post(self.d + "/sobjects/Contact", {"LastName": "Kid", "AccountId": acc}).json["id"]
        e.delete(self.d + "/sobjects/Account/" + acc)
        self.assertTrue(self.row("Contact", con)["IsDeleted"])


class Duplicates(unittest.TestCase):
    def test_duplicate_rule(self):
        """Lead:Email rule -> DUPLICATES_DETECTED with duplicateResut...record.Id; allowSave bypasses it"""
        with Emulator(["--duplicate-rule", "Lead:Email"]) as e:
            e.login()
            u = e.data + "/sobjects/Lead"
            first = e.post(u, {"LastName": "A", "Company": "C", "Email": "dup@example.com"}).json["id"]
            r = e.post(u, {"LastName": "B", "Company": "C", "Email": "DUP@example.com"})
            self.assertEqual(r.status, 400)
            body = r.json[0]
            self.assertEqual(body["errorCode"], "DUPLICATES_DETECTED")
            self.assertEqual(body["message"], "You're creating a duplicate record. We recommend you use an existing "
                                              "record instead.")
            dr = body["duplicateResut"]
            self.assertEqual(dr["matchResults"][0]["matchRecords"][0]["record"]["Id"], first)
            self.assertTrue(dr["allowSave"])
            self.assertEqual(len(e.records("Lead")), 1)
            r = e.post(u, {"LastName": "B", "Company": "C", "Email": "dup@example.com"},
                       {"Sforce-Duplicate-Rule-Header": "allowSave=true"})
            self.assertEqual(r.status, 201)
            # update into a duplicate; collections report it per record
            other = e.post(u, {"LastName": "O", "Company": "C", "Email": "other@example.com"}).json["id"]
            r = e.patch(u + "/" + other, {"Email": "dup@example.com"})
            self.assertEqual(r.json[0]["errorCode"], "DUPLICATES_DETECTED")
            res = e.post(e.data + "/composite/sobjects", {"records": [
                {"attributes": {"type": "Lead"}, "LastName": "Z", "Company": "C", "Email": "dup@example.com"}]}).json
            self.assertEqual(res[0]["errors"][0]["statusCode"], "DUPLICATES_DETECTED")
            self.assertIn(first, [m["record"]["Id"] for m in
                                  res[0]["errors"][0]["duplicateResut"]["matchResults"][0]["matchRecords"]])
            # switched off at run time
            e.config(duplicate_rules=[])
            self.assertEqual(e.post(u, {"LastName": "C", "Company": "C", "Email": "dup@example.com"}).status, 201)
            e.config(duplicate_rules=["Lead:Email"])
            self.assertEqual(e.post(u, {"LastName": "D", "Company": "C", "Email": "dup@example.com"}).status, 400)


class CustomObjects(unittest.TestCase):
    def test_objects_json_and_seed_files(self):
        """objects.json declares a custom object and an external-id field; JSON and NDJSON seed rows load"""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "objects.json"), "w") as fh:
                json.dump({"objects": [{"name": "Widget__c", "label": "Widget", "fields": [
                    {"name": "Code__c", "type": "string", "length": 20, "externalId": True, "unique": True},
                    {"name": "Price__c", "type": "currency", "precision": 10, "scale": 2},
                    {"name": "Account__c", "type": "reference", "referenceTo": ["Account"],
                     "relationshipName": "Account__r", "childRelationshipName": "Widgets__r"}]}],
                    "fields": {"Lead": [{"name": "Ext_Id__c", "type": "string", "length": 50, "externalId": True}]}},
                    fh)
            with open(os.path.join(d, "Widget__c.ndjson"), "w") as fh:
                fh.write('{"Code__c": "W-1", "Name": "One", "Price__c": 9.5}\n{"Code__c": "W-2", "Name": "Two"}\n')
            with open(os.path.join(d, "Lead.json"), "w") as fh:
                json.dump([{"LastName": "Seed", "Company": "Co", "Ext_Id__c": "L-1",
                            "SystemModstamp": "2025-06-01T10:00:00Z", "CreatedDate": "2025-06-01T10:00:00Z",
                            "LastModifiedDate": "2025-06-01T10:00:00Z"}], fh)
            with Emulator(["--data", d]) as e:
                e.login()
                desc = e.get(e.data + "/sobjects/Widget__c/describe").json
                f = {x["name"]: x for x in desc["fields"]}
                self.assertTrue(desc["custom"])
                self.assertTrue(f["Code__c"]["externalId"] and f["Code__c"]["idLookup"])
                self.assertTrue(desc["keyPrefix"].startswith("a"))
                acc = e.get(e.data + "/sobjects/Account/describe").json
                self.assertIn("Widgets__r", [c["relationshipName"] for c in acc["childRelationships"]])
                recs, _ = e.query("SELECT Code__c, Price__c FROM Widget__c ORDER BY Code__c")
                self.assertEqual([(r["Code__c"], r["Price__c"]) for r in recs], [("W-1", 9.5), ("W-2", None)])
                r = e.patch(e.data + "/sobjects/Widget__c/Code__c/W-2", {"Price__c": 3})
                self.assertEqual((r.status, r.json["created"]), (200, False))
                r = e.patch(e.data + "/sobjects/Widget__c/Code__c/W-3", {"Price__c": 4})
                self.assertEqual((r.status, r.json["created"]), (201, True))
                w3 = [x for x in e.records("Widget__c") if x["Code__c"] == "W-3"][0]
                self.assertEqual(w3["Name"], w3["Id"])
                lead = e.records("Lead")[0]
                self.assertEqual(lead["SystemModstamp"], "2025-06-01T10:00:00.000+0000")
                r = e.patch(e.data + "/sobjects/Lead/Ext_Id__c/L-1", {"Title": "x"})
                self.assertEqual((r.status, r.json["id"]), (200, lead["Id"]))


class Replication(unittest.TestCase):
    def test_updated_and_deleted(self):
        """/updated and /deleted windows: ids by SystemModstamp, seconds ignored, latestDateCovered, limits"""
        with Emulator(["--clock", str(CLOCK), "--session-seconds", "99999999"]) as e:
            e.login()
            d = e.data
            a = e.post(d + "/sobjects/Lead", {"LastName": "A", "Company": "C"}).json["id"]
            e.advance_clock(5 * MIN)
            b = e.post(d + "/sobjects/Lead", {"LastName": "B", "Company": "C"}).json["id"]
            e.advance_clock(5 * MIN)
            e.delete(d + "/sobjects/Lead/" + a)
            e.advance_clock(5 * MIN)
            t0 = CLOCK
            r = e.get(d + "/sobjects/Lead/updated/?start=%s&end=%s" % (iso(t0 - 3600), iso(t0 + 3600)))
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json["ids"], [b])
            cov = parse_datetime(r.json["latestDateCovered"])
            now = e.clock()
            self.assertEqual(cov, now - now % 60)
            # seconds are ignored: start 00:04:59 means 00:04:00 (B was written at about 00:05)
            r = e.get(d + "/sobjects/Lead/updated/?start=%s&end=%s" % (iso(t0 + 4 * MIN + 59), iso(t0 + 6 * MIN)))
            self.assertEqual(r.json["ids"], [b])
            r = e.get(d + "/sobjects/Lead/updated/?start=%s&end=%s" % (iso(t0 + 6 * MIN), iso(t0 + 3600)))
            self.assertEqual(r.json["ids"], [])
            r = e.get(d + "/sobjects/Lead/deleted/?start=%s&end=%s" % (iso(t0), iso(t0 + 3600)))
            body = r.json
            self.assertEqual([x["id"] for x in body["deletedRecords"]], [a])
            self.assertAlmostEqual(parse_datetime(body["deletedRecords"][0]["deletedDate"]), t0 + 10 * MIN, delta=5)
            self.assertIn("earliestDateAvailable", body)
            self.assertIn("latestDateCovered", body)
            # windows
            r = e.get(d + "/sobjects/Lead/updated/?start=%s&end=%s" % (iso(now - 31 * 86400), iso(now)))
            self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_REPLICATION_DATE"))
            r = e.get(d + "/sobjects/Lead/deleted/?start=%s&end=%s" % (iso(now - 16 * 86400), iso(now)))
            self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_REPLICATION_DATE"))
            r = e.get(d + "/sobjects/Lead/updated/?start=%s&end=%s" % (iso(now - 60), iso(now - 600)))
            self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_REPLICATION_DATE"))
            self.assertEqual(e.stats()["by_endpoint"]["updated"], 5)


if __name__ == "__main__":
    tap.main()
