"""Real-org behaviours a sync must survive: OpportunityContactRole is a queryable object with its own
timestamps and deletions; adding, removing or re-parenting a child never touches its parent's
LastModifiedDate/SystemModstamp; late commits (rows stamped before a cursor a reader already saved);
a field an admin removes (400 INVALID_FIELD) and restores; the Organization object and the
OpenID Connect userinfo endpoint, consistent with the token's org and the sandbox flag."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402

CLOCK = "1767225600"   # 2026-01-01T00:00:00Z
STAMPS = ("LastModifiedDate", "SystemModstamp")


class ChildrenNeverTouchParents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--clock", CLOCK, "--generate", "Account=3,Contact=6,Opportunity=3"]).start()
        cls.emu.login()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def row(self, obj, rid):
        return next(r for r in self.emu.records(obj) if r["Id"] == rid)

    def stamps(self, obj, rid):
        r = self.row(obj, rid)
        return tuple(r[k] for k in STAMPS)

    def live(self, obj):
        return [r for r in self.emu.records(obj) if not r["IsDeleted"]]

    def test_contact_changes_leave_accounts_alone(self):
        """create / re-parent / delete a Contact through the API: neither Account's timestamps move"""
        e = self.emu
        a1, a2 = [r["Id"] for r in self.live("Account")[:2]]
        before = {a: self.stamps("Account", a) for a in (a1, a2)}
        e.advance_clock(120)
        r = e.post(e.data + "/sobjects/Contact", {"LastName": "Child", "AccountId": a1})
        self.assertEqual(r.status, 201, r.text)
        cid = r.json["id"]
        e.advance_clock(60)
        self.assertEqual(e.patch(e.data + "/sobjects/Contact/" + cid, {"AccountId": a2}).status, 204)
        e.advance_clock(60)
        self.assertEqual(e.delete(e.data + "/sobjects/Contact/" + cid).status, 204)
        for a in (a1, a2):
            self.assertEqual(self.stamps("Account", a), before[a], a)
        # the child itself moved every time
        c = self.row("Contact", cid)
        self.assertTrue(c["IsDeleted"])
        self.assertGreater(c["SystemModstamp"], c["CreatedDate"])

    def test_contact_role_is_a_queryable_object(self):
        """OpportunityContactRole: created with its own timestamps, queryable, re-parentable, deleted
        (seen by queryAll with IsDeleted and by /deleted); the Opportunity and Contacts never move"""
        e = self.emu
        opp = self.live("Opportunity")[0]["Id"]
        c1, c2 = [r["Id"] for r in self.live("Contact")[:2]]
        before = {("Opportunity", opp): self.stamps("Opportunity", opp), ("Contact", c1): self.stamps("Contact", c1),
                  ("Contact", c2): self.stamps("Contact", c2)}
        e.advance_clock(300)
        r = e.post(e.data + "/sobjects/OpportunityContactRole", {"OpportunityId": opp, "ContactId": c1,
                                                                   "Role": "Decision Maker"})
        self.assertEqual(r.status, 201, r.text)
        ocr = r.json["id"]
        self.assertTrue(ocr.startswith("00K"))
        created = self.row("OpportunityContactRole", ocr)
        self.assertEqual(created["CreatedDate"], e.clock_iso())
        q = "SELECT Id, ContactId, Role, CreatedDate, LastModifiedDate, SystemModstamp FROM OpportunityContactRole " \
            "WHERE OpportunityId = '%s'" % opp
        recs, _ = e.query(q)
        mine = [x for x in recs if x["Id"] == ocr]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["ContactId"], mine[0]["SystemModstamp"]), (c1, created["SystemModstamp"]))
        e.advance_clock(60)
        self.assertEqual(e.patch(e.data + "/sobjects/OpportunityContactRole/" + ocr, {"ContactId": c2}).status, 204)
        moved = self.row("OpportunityContactRole", ocr)
        self.assertGreater(moved["SystemModstamp"], created["SystemModstamp"])
        e.advance_clock(60)
        self.assertEqual(e.delete(e.data + "/sobjects/OpportunityContactRole/" + ocr).status, 204)
        recs, _ = e.query(q.replace("SELECT Id,", "SELECT Id, IsDeleted,"), all_rows=True)
        self.assertEqual([x["IsDeleted"] for x in recs if x["Id"] == ocr], [True])
        recs, _ = e.query(q)
        self.assertEqual([x for x in recs if x["Id"] == ocr], [])
        e.advance_clock(120)          # /deleted covers whole minutes up to now
        r = e.get(e.data + "/sobjects/OpportunityContactRole/deleted/?start=2025-12-31T00:00:00Z"
                  "&end=2026-01-02T00:00:00Z")
        self.assertIn(ocr, [d["id"] for d in r.json["deletedRecords"]])
        for (obj, rid), st in before.items():
            self.assertEqual(self.stamps(obj, rid), st, (obj, rid))


class LateCommits(unittest.TestCase):
    def test_rows_stamped_before_a_saved_cursor(self):
        """late_commit writes rows stamped in the past: a cursor query after the newest stamp misses them,
        a look-back window finds them"""
        with Emulator(["--clock", CLOCK, "--generate", "Lead=20"]) as e:
            e.login()
            recs, _ = e.query("SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp DESC LIMIT 1")
            cursor = recs[0]["SystemModstamp"]               # what a run saved
            e.advance_clock(30)
            ids = e.late_commit("Lead", [{"LastName": "Late%d" % i, "Company": "L"} for i in range(5)],
                                stamp=parse(cursor) - 1)              # 1 s before the cursor
            rows = {r["Id"]: r for r in e.records("Lead")}
            want = sf(parse(cursor) - 1)
            self.assertEqual({rows[i]["SystemModstamp"] for i in ids}, {want})
            self.assertEqual({rows[i]["LastModifiedDate"] for i in ids}, {want})
            self.assertEqual({rows[i]["CreatedDate"] for i in ids}, {want})
            after, _ = e.query("SELECT Id FROM Lead WHERE SystemModstamp > %s" % cursor.replace(".000+0000", "Z"))
            self.assertEqual([x["Id"] for x in after if x["Id"] in ids], [])
            window, _ = e.query("SELECT Id FROM Lead WHERE SystemModstamp > %s" % sf(parse(cursor) - 60)
                                .replace(".000+0000", "Z"))
            self.assertEqual(sorted(x["Id"] for x in window if x["Id"] in ids), sorted(ids))
            # backdate_seconds: stamped now - N; an update of an existing row keeps its CreatedDate
            old = ids[0]
            e.late_commit("Lead", [{"Id": old, "Company": "Later"}], backdate_seconds=10)
            row = next(r for r in e.records("Lead") if r["Id"] == old)
            self.assertEqual(row["SystemModstamp"], sf(int(e.clock()) - 10))
            self.assertEqual(row["CreatedDate"], want)

    def test_api_writes_with_a_commit_lag(self):
        """config late_commit_seconds=5: API writes are stamped 5 s before the clock (the transaction began earlier)"""
        with Emulator(["--clock", CLOCK]) as e:
            e.login()
            e.config(late_commit_seconds=5)
            r = e.post(e.data + "/sobjects/Lead", {"LastName": "Lag", "Company": "C"})
            row = next(x for x in e.records("Lead") if x["Id"] == r.json["id"])
            now = int(e.clock())
            self.assertIn(parse(row["SystemModstamp"]), (now - 5, now - 6))
            self.assertEqual(e.config()["late_commit_seconds"], 5)


class RemovedField(unittest.TestCase):
    def test_remove_and_restore(self):
        """remove_field: describe loses the field, a query or a Bulk job naming it gets 400 INVALID_FIELD,
        writes naming it fail; restore_field brings it and its values back"""
        with Emulator(["--generate", "Lead=5"]) as e:
            e.login()
            q = e.data + "/queryAll?q=" + e.q("SELECT Id, Rating FROM Lead")
            self.assertEqual(e.get(q).status, 200)
            ratings = sorted(str(r["Rating"]) for r in e.get(q).json["records"])
            out = e.remove_field("Lead", "rating")
            self.assertEqual(out, {"object": "Lead", "field": "Rating", "removed": True})
            r = e.get(q)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json[0]["errorCode"], "INVALID_FIELD")
            self.assertIn("No such column 'Rating' on entity 'Lead'", r.json[0]["message"])
            names = [f["name"] for f in e.get(e.data + "/sobjects/Lead/describe").json["fields"]]
            self.assertNotIn("Rating", names)
            r = e.post(e.data + "/sobjects/Lead", {"LastName": "X", "Company": "Y", "Rating": "Hot"})
            self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_FIELD"))
            r = e.post(e.data + "/jobs/query", {"operation": "query", "query": "SELECT Id, Rating FROM Lead"})
            self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_FIELD"))
            self.assertEqual(e.config()["removed_fields"], ["Lead.Rating"])
            e.restore_field("Lead", "Rating")
            r = e.get(q)
            self.assertEqual(r.status, 200)
            self.assertEqual(sorted(str(x["Rating"]) for x in r.json["records"]), ratings)
            names2 = [f["name"] for f in e.get(e.data + "/sobjects/Lead/describe").json["fields"]]
            self.assertEqual(names2.index("Rating"), len(names) - len(names) + names2.index("Rating"))
            self.assertEqual(len(names2), len(names) + 1)

    def test_remove_errors(self):
        """unknown object 404, unknown field or Id 400"""
        with Emulator() as e:
            for doc, status in (({"object": "Nope", "field": "X"}, 404), ({"object": "Lead", "field": "Nope"}, 400),
                                ({"object": "Lead", "field": "Id"}, 400)):
                r = e.post("/__emulator/remove_field", doc, token=None)
                self.assertEqual(r.status, status, doc)


class Organization(unittest.TestCase):
    def test_organization_row_and_describe(self):
        """one Organization row whose Id is the token's org id; describe; IsSandbox follows --sandbox"""
        for args, sandbox in (([], False), (["--sandbox", "--org-name", "Acme Sandbox"], True)):
            with Emulator(args) as e:
                tok = e.token_request(grant_type="password", client_id="demo-client-id",
                                      client_secret="demo-client-secret", username="demo@example.com",
                                      password="demo-passwordDEMOTOKEN").json
                e.token = tok["access_token"]
                org_id = tok["id"].split("/")[-2]
                recs, _ = e.query("SELECT Id, Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, "
                                  "OrganizationType FROM Organization")
                self.assertEqual(len(recs), 1)
                o = recs[0]
                self.assertEqual(o["Id"], org_id)
                self.assertEqual(o["IsSandbox"], sandbox)
                self.assertEqual(o["Name"], "Acme Sandbox" if sandbox else "Demo Org")
                self.assertEqual((o["TrialExpirationDate"], o["NamespacePrefix"]), (None, None))
                self.assertEqual(o["OrganizationType"], "Enterprise Edition")
                self.assertTrue(o["InstanceName"])
                d = e.get(e.data + "/sobjects/Organization/describe").json
                self.assertEqual((d["keyPrefix"], d["createable"], d["deletable"]), ("00D", False, False))
                self.assertIn("IsSandbox", [f["name"] for f in d["fields"]])
                r = e.get(e.data + "/sobjects/Organization/" + org_id)
                self.assertEqual((r.status, r.json["Id"]), (200, org_id))
                self.assertIn("Organization", [s["name"] for s in e.get(e.data + "/sobjects").json["sobjects"]])

    def test_userinfo(self):
        """GET /services/oauth2/userinfo: the OpenID Connect claims of the token's user and org, not counted;
        a bad token gets 403 Bad_OAuth_Token"""
        with Emulator() as e:
            tok = e.token_request(grant_type="password", client_id="demo-client-id", client_secret="demo-client-secret",
                                  username="demo@example.com", password="demo-passwordDEMOTOKEN").json
            e.token = tok["access_token"]
            r = e.get("/services/oauth2/userinfo")
            self.assertEqual(r.status, 200, r.text)
            u = r.json
            self.assertEqual(u["sub"], tok["id"])
            _, _, org, user = tok["id"].rsplit("/", 3)
            self.assertEqual((u["user_id"], u["organization_id"]), (user, org))
            self.assertEqual((u["preferred_username"], u["email"], u["name"]),
                             ("demo@example.com", "demo@example.com", "Demo User"))
            for k in ("nickname", "given_name", "family_name", "zoneinfo", "email_verified", "active", "user_type",
                      "language", "locale", "utcOffset", "updated_at"):
                self.assertIn(k, u)
            self.assertEqual(u["urls"]["rest"], e.url + "/services/data/v{version}/")
            self.assertEqual(u["urls"]["query"], e.url + "/services/data/v{version}/query/")
            r = e.get("/services/data/v51.0/sobjects/User/" + u["user_id"])
            self.assertEqual(r.json["Username"], "demo@example.com")
            self.assertEqual(e.stats()["by_endpoint"].get("userinfo"), None)
            self.assertEqual(e.get("/services/oauth2/userinfo", token="nope").status, 403)
            self.assertEqual(e.get("/services/oauth2/userinfo", token=None).status, 403)


def parse(iso):
    import calendar
    import time
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))


def sf(epoch):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(int(epoch)))


if __name__ == "__main__":
    tap.main()
