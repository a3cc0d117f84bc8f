"""Generated data: deterministic for seed and clock, relationships consistent, and the awkward cases the
engine must survive (nulls, unicode, max-length strings, shared timestamps, deleted rows, record types).
Also: 100,000 records served through paged queries cost the server only a few seconds of CPU."""
import collections
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402
from schema import Schema                    # noqa: E402
from store import Store, Clock, parse_datetime, utf16_len, to18   # noqa: E402
import generate                              # noqa: E402

CLOCK = 1767225600
SPEC = {"Lead": 600, "Contact": 300, "Account": 60, "Opportunity": 150}


def make(seed=1, clock=CLOCK, spec=None):
    s = Store(Schema(), Clock(clock), seed=seed)
    generate.generate(s, dict(spec or SPEC), seed)
    return s


def dump(store):
    return {o: sorted(t.values(), key=lambda r: r["Id"]) for o, t in store.tables.items()}


class Determinism(unittest.TestCase):
    def test_same_seed_same_data(self):
        """same seed and clock -> identical rows and ids; another seed -> different data"""
        a, b, c = dump(make(1)), dump(make(1)), dump(make(2))
        self.assertEqual(a, b)
        self.assertNotEqual(a["Lead"], c["Lead"])

    def test_through_the_server(self):
        """two servers with the same --seed/--clock serve identical records"""
        args = ["--generate", "Lead=50,Account=5,Contact=10,Opportunity=5", "--seed", "9", "--clock", str(CLOCK)]
        with Emulator(args) as e1, Emulator(args) as e2:
            for obj in ("Lead", "Account", "Contact", "Opportunity", "OpportunityContactRole", "RecordType"):
                self.assertEqual(e1.records(obj), e2.records(obj), obj)


class Shape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = make(1)
        cls.t = cls.s.tables

    def test_counts_and_ids(self):
        """requested counts, valid 18-char ids with the object's key prefix"""
        for obj, n in SPEC.items():
            self.assertEqual(len(self.t[obj]), n)
            prefix = self.s.schema.key_prefix[obj]
            for rid in self.t[obj]:
                self.assertEqual(to18(rid), rid)
                self.assertTrue(rid.startswith(prefix))

    def test_relationships(self):
        """Contacts/Opportunities point at Accounts, OCRs at Opportunities and Contacts, Leads at Lead record types"""
        acc, con, opp = self.t["Account"], self.t["Contact"], self.t["Opportunity"]
        linked = [c for c in con.values() if c["AccountId"]]
        self.assertGreater(len(linked), len(con) // 2)
        self.assertTrue(all(c["AccountId"] in acc for c in linked))
        self.assertTrue(all(o["AccountId"] in acc for o in opp.values() if o["AccountId"]))
        self.assertTrue(all(o["ContactId"] in con for o in opp.values() if o["ContactId"]))
        self.assertTrue(any(o["ContactId"] for o in opp.values()))
        ocr = self.t["OpportunityContactRole"]
        self.assertGreater(len(ocr), len(opp) // 2)
        for r in ocr.values():
            self.assertIn(r["OpportunityId"], opp)
            self.assertIn(r["ContactId"], con)
            self.assertGreaterEqual(r["CreatedDate"], opp[r["OpportunityId"]]["CreatedDate"])
        rts = {r["Id"] for r in self.t["RecordType"].values() if r["SobjectType"] == "Lead"}
        self.assertEqual(len(rts), 3)
        used = {l["RecordTypeId"] for l in self.t["Lead"].values()}
        self.assertLessEqual(used - {None}, rts)
        self.assertIn(None, used)

    def test_timestamps(self):
        """ordered, before the clock, runs of 50+ sharing a SystemModstamp, some SystemModstamp > LastModifiedDate"""
        leads = list(self.t["Lead"].values())
        for r in leads:
            self.assertLessEqual(r["CreatedDate"], r["LastModifiedDate"])
            self.assertLessEqual(r["LastModifiedDate"], r["SystemModstamp"])
            self.assertLessEqual(parse_datetime(r["SystemModstamp"]), CLOCK)
            self.assertRegex(r["SystemModstamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$")
        runs = collections.Counter(r["SystemModstamp"] for r in leads)
        self.assertGreaterEqual(max(runs.values()), 50)
        self.assertTrue(any(r["SystemModstamp"] > r["LastModifiedDate"] for r in leads))

    def test_deleted_share(self):
        """a small share of rows is deleted, recently (inside the 15-day /deleted window)"""
        for obj in ("Lead", "Contact"):
            rows = list(self.t[obj].values())
            dead = [r for r in rows if r["IsDeleted"]]
            self.assertTrue(0 < len(dead) < len(rows) // 10, obj)
            for r in dead:
                self.assertGreater(parse_datetime(r["SystemModstamp"]), CLOCK - 15 * 86400)

    def test_awkward_values(self):
        """nulls, accents, CJK, emoji, and strings of exactly the field's maximum length"""
        leads = list(self.t["Lead"].values())
        text = " ".join(str(r.get(f) or "") for r in leads for f in ("FirstName", "LastName", "Company", "Description"))
        self.assertTrue(any(c in text for c in "éüñøå"))
        self.assertTrue(any("\u4e00" <= c <= "\u9fff" for c in text))
        self.assertTrue(any(ord(c) > 0xFFFF for c in text))
        self.assertTrue(any(r["Email"] is None for r in leads))
        self.assertTrue(any(r["Phone"] is None for r in leads))
        fields = self.s.schema.fields["Lead"]
        for name in ("LastName", "FirstName", "Company", "Email", "Title"):
            mx = fields[name]["length"]
            vals = [r[name] for r in leads if r[name]]
            self.assertEqual(max(utf16_len(v) for v in vals), mx, name)
        self.assertTrue(any(r["Lytics_Scores__c"] and len(r["Lytics_Scores__c"]) == 32768 for r in leads))
        accs = list(self.t["Account"].values())
        self.assertTrue(any(len(r["Name"]) == 255 for r in accs))

    def test_every_field_present(self):
        """every stored row holds every describe field (None when null) and IsDeleted"""
        for obj in ("Lead", "Account", "Contact", "Opportunity", "OpportunityContactRole", "RecordType"):
            names = {n for n, f in self.s.schema.fields[obj].items() if f["type"] != "address"} | {"IsDeleted"}
            for r in self.t[obj].values():
                self.assertEqual(set(r), names, obj)

    def test_required_fields_filled(self):
        """generated rows satisfy the write rules (required fields, lengths, emails)"""
        from store import EMAIL_RE
        for r in self.t["Lead"].values():
            self.assertTrue(r["LastName"] and r["Company"])
            if r["Email"]:
                self.assertRegex(r["Email"], EMAIL_RE)
        for r in self.t["Opportunity"].values():
            self.assertTrue(r["Name"] and r["StageName"] and r["CloseDate"])


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@unittest.skipUnless(os.path.exists("/proc/self/stat"), "needs /proc")
class Performance(unittest.TestCase):
    def test_100k_paged_query_cpu(self):
        """100,000 Leads through paged queries: the server spends only a few CPU seconds"""
        with Emulator(["--generate", "Lead=100000", "--clock", str(CLOCK)], start_timeout=300) as e:
            e.login()
            c0 = cpu_seconds(e.proc.pid)
            recs, replies = e.query("SELECT Id, FirstName, LastName, Email, Company, Title, Phone, Status, "
                                    "SystemModstamp, LastModifiedDate, IsDeleted FROM Lead "
                                    "WHERE SystemModstamp > 2020-01-01T00:00:00Z ORDER BY SystemModstamp, Id")
            used = cpu_seconds(e.proc.pid) - c0
            live = sum(1 for r in e.records("Lead") if not r["IsDeleted"])
            self.assertEqual(len(recs), live)
            self.assertEqual(len(replies), (live + 1999) // 2000)
            self.assertLess(used, 5.0, "server CPU %.2f s" % used)
            print("# 100k paged query: %.2f s server CPU, %d pages" % (used, len(replies)))


if __name__ == "__main__":
    tap.main()
