"""Child relationship sets in query results are query results themselves, as on a real org: null when
empty, {totalSize, done, records} when small, and for a set larger than the inline size (200, or
--child-inline / config child_inline) the first rows inline with done:false and a nextRecordsUrl of
its own that serves the rest, one counted API call per page. Inline child rows count toward the
page's batch size, so a page holds fewer parents when their children add up."""
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402

NEXT_RE = re.compile(r"^/services/data/v62\.0/query/01g[A-Za-z0-9]{15}-(\d+)$")
SIZES = (0, 1, 199, 200, 201, 1000)
SOQL = "SELECT Id, Name, (SELECT Id, LastName FROM Contacts) FROM Account WHERE Name LIKE 'Kids %' ORDER BY Name"


def seed(emu, sizes, prefix="Kids"):
    """one Account per size, named '<prefix> NNNN' (sorted by size), with that many Contacts -> {name: [ids]}"""
    names = ["%s %04d" % (prefix, n) for n in sizes]
    acc_ids = emu.insert("Account", [{"Name": n} for n in names])
    kids = {}
    for name, aid, n in zip(names, acc_ids, sizes):
        rows = [{"LastName": "K%05d" % i, "AccountId": aid} for i in range(n)]
        kids[name] = emu.insert("Contact", rows) if rows else []
    return kids


def follow(emu, child, headers=None):
    """all rows of a child set, following its nextRecordsUrl; -> (ids, continuation replies)"""
    ids = [r["Id"] for r in child["records"]]
    replies = []
    nxt = child.get("nextRecordsUrl")
    while nxt and len(replies) < 100:
        r = emu.get(nxt, headers)
        assert r.status == 200, r.text
        replies.append(r)
        ids += [x["Id"] for x in r.json["records"]]
        nxt = r.json.get("nextRecordsUrl")
        if r.json["done"]:
            assert nxt is None
    return ids, replies


class ChildSets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator().start()
        cls.emu.login()
        cls.kids = seed(cls.emu, SIZES)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def query(self):
        r = self.emu.get(self.emu.data + "/query?q=" + self.emu.q(SOQL))
        self.assertEqual(r.status, 200, r.text)
        return r.json

    def test_shapes_by_size(self):
        """0 children: null; up to 200: complete and done; 201 and 1000: 200 inline, done:false, nextRecordsUrl"""
        page = self.query()
        self.assertTrue(page["done"])
        by = {r["Name"]: r["Contacts"] for r in page["records"]}
        self.assertIsNone(by["Kids 0000"])
        for n in (1, 199, 200):
            c = by["Kids %04d" % n]
            self.assertEqual(list(c), ["totalSize", "done", "records"])
            self.assertEqual((c["totalSize"], c["done"], len(c["records"])), (n, True, n))
        for n in (201, 1000):
            c = by["Kids %04d" % n]
            self.assertEqual(list(c), ["totalSize", "done", "nextRecordsUrl", "records"])
            self.assertEqual((c["totalSize"], c["done"], len(c["records"])), (n, False, 200))
            m = NEXT_RE.match(c["nextRecordsUrl"])
            self.assertTrue(m, c["nextRecordsUrl"])
            self.assertEqual(m.group(1), "200")
            self.assertEqual(c["records"][0]["attributes"]["type"], "Contact")

    def test_following_gives_every_child_once(self):
        """following each child set's nextRecordsUrl yields every child id exactly once, in order"""
        page = self.query()
        for rec in page["records"]:
            want = self.kids[rec["Name"]]
            got = follow(self.emu, rec["Contacts"])[0] if rec["Contacts"] else []
            self.assertEqual(sorted(got), sorted(want), rec["Name"])
            self.assertEqual(len(got), len(set(got)))

    def test_each_child_page_is_an_api_call(self):
        """a child continuation is a counted query_more call; batchSize pages it (1000 = 200 + 4 x 200)"""
        page = self.query()
        big = next(r["Contacts"] for r in page["records"] if r["Name"] == "Kids 1000")
        before = self.emu.stats()
        ids, replies = follow(self.emu, big, {"Sforce-Query-Options": "batchSize=200"})
        after = self.emu.stats()
        self.assertEqual(len(replies), 4)
        self.assertEqual([len(r.json["records"]) for r in replies], [200, 200, 200, 200])
        self.assertEqual([r.json["totalSize"] for r in replies], [1000] * 4)
        self.assertEqual(after["by_endpoint"].get("query_more", 0) - before["by_endpoint"].get("query_more", 0), 4)
        self.assertEqual(after["api_calls"] - before["api_calls"], 4)
        self.assertEqual(len(set(ids)), 1000)

    def test_bad_child_locator_offset(self):
        """a child locator with an offset past its rows is INVALID_QUERY_LOCATOR, as a query locator is"""
        page = self.query()
        big = next(r["Contacts"] for r in page["records"] if r["Name"] == "Kids 0201")
        r = self.emu.get(big["nextRecordsUrl"].rsplit("-", 1)[0] + "-999")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json[0]["errorCode"], "INVALID_QUERY_LOCATOR")

    def test_inline_size_setting(self):
        """config child_inline=50 cuts at 50; 0 never cuts (the engine's old assumption, for explicit tests only)"""
        try:
            self.emu.config(child_inline=50)
            by = {r["Name"]: r["Contacts"] for r in self.query()["records"]}
            self.assertEqual((len(by["Kids 0199"]["records"]), by["Kids 0199"]["done"]), (50, False))
            self.assertEqual(sorted(follow(self.emu, by["Kids 0199"])[0]), sorted(self.kids["Kids 0199"]))
            self.emu.config(child_inline=0)
            by = {r["Name"]: r["Contacts"] for r in self.query()["records"]}
            self.assertEqual((len(by["Kids 1000"]["records"]), by["Kids 1000"]["done"]), (1000, True))
        finally:
            self.emu.config(child_inline=200)


class PageFill(unittest.TestCase):
    def test_children_count_toward_batch_size(self):
        """30 parents x 100 children: a 2000-record page holds 19 parents (19 x 101 rows); every parent once"""
        with Emulator() as emu:
            emu.login()
            seed(emu, [100] * 30, prefix="Fill")
            soql = "SELECT Id, (SELECT Id FROM Contacts) FROM Account ORDER BY Name"
            recs, replies = emu.query(soql)
            self.assertEqual([len(r.json["records"]) for r in replies], [19, 11])
            self.assertEqual(len({r["Id"] for r in recs}), 30)
            self.assertTrue(all(r["Contacts"]["done"] and len(r["Contacts"]["records"]) == 100 for r in recs))
            # batchSize=500: 4 parents (4 x 101 = 404) per page
            recs, replies = emu.query(soql, batch_size=500)
            self.assertEqual([len(r.json["records"]) for r in replies], [4] * 7 + [2])
            # without the rule (config child_rows_in_batch=false) every parent fits one page
            emu.config(child_rows_in_batch=False)
            recs, replies = emu.query(soql)
            self.assertEqual([len(r.json["records"]) for r in replies], [30])

    def test_one_parent_per_page_at_least(self):
        """a parent whose inline children alone exceed the batch size still comes, alone on its page"""
        with Emulator(["--child-inline", "1000"]) as emu:
            emu.login()
            seed(emu, [900, 900, 5], prefix="Huge")
            recs, replies = emu.query("SELECT Id, (SELECT Id FROM Contacts) FROM Account ORDER BY Name",
                                      batch_size=500)
            self.assertEqual([len(r.json["records"]) for r in replies], [1, 1, 1])
            self.assertEqual([len(r["Contacts"]["records"]) for r in recs], [5, 900, 900])


if __name__ == "__main__":
    tap.main()
