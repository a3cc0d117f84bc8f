"""Injected page damage, for clients that must not take a cut page for the end: a query page that says
done:false without a usable nextRecordsUrl (query_fault missing | null | empty), and a Bulk API 2.0
results page that is empty or header-only although the job reports its records (bulk_results_fault
empty | header_only, with Sforce-NumberOfRecords telling the truth or 0). Every Bulk results page
carries Sforce-NumberOfRecords and the job its numberRecordsProcessed."""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402

SOQL = "SELECT Id FROM Lead ORDER BY Id"


class QueryFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Lead=700"]).start()
        cls.emu.login()
        cls.live = sum(1 for r in cls.emu.records("Lead") if not r["IsDeleted"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def setUp(self):
        self.emu.config(query_fault="", query_fault_skip=0, query_fault_times=1)

    def first(self):
        return self.emu.get(self.emu.data + "/query?q=" + self.emu.q(SOQL), {"Sforce-Query-Options": "batchSize=200"})

    def test_kinds(self):
        """missing / null / empty: done:false, records and totalSize intact, no usable nextRecordsUrl"""
        for kind, check in (("missing", lambda b: "nextRecordsUrl" not in b),
                            ("null", lambda b: b["nextRecordsUrl"] is None),
                            ("empty", lambda b: b["nextRecordsUrl"] == "")):
            self.emu.config(query_fault=kind, query_fault_skip=0, query_fault_times=1)
            r = self.first()
            b = r.json
            self.assertEqual((r.status, b["done"], b["totalSize"], len(b["records"])), (200, False, self.live, 200),
                             kind)
            self.assertTrue(check(b), (kind, r.text[:200]))
            self.assertEqual(list(b)[:2], ["totalSize", "done"])
            # times=1: the next query is whole again
            self.assertTrue(self.first().json["nextRecordsUrl"].startswith("/services/data/"))
        self.assertGreaterEqual(self.emu.stats()["injected"].get("query_missing", 0), 1)

    def test_skip_and_times(self):
        """skip=1 damages the second page that has more after it; times=0 damages every one; last pages never"""
        self.emu.config(query_fault="null", query_fault_skip=1, query_fault_times=1)
        recs, replies = self.emu.query(SOQL, batch_size=200)
        self.assertEqual([r.json["done"] for r in replies], [False, False])
        self.assertIsNone(replies[1].json["nextRecordsUrl"])
        self.assertEqual(len(recs), 400)
        self.emu.config(query_fault="missing", query_fault_skip=0, query_fault_times=0)
        for _ in range(3):
            self.assertNotIn("nextRecordsUrl", self.first().json)
        small = self.emu.get(self.emu.data + "/query?q=" + self.emu.q("SELECT Id FROM Lead LIMIT 5"))
        self.assertEqual(small.json["done"], True, "a last page is never damaged")
        self.emu.config(query_fault="")
        recs, replies = self.emu.query(SOQL, batch_size=200)
        self.assertEqual(len(recs), self.live)

    def test_unknown_kind(self):
        """an unknown kind is refused by config (400) and the former setting stays"""
        r = self.emu.post("/__emulator/config", {"query_fault": "bogus"}, token=None)
        self.assertEqual(r.status, 400)
        self.assertEqual(self.emu.config()["query_fault"], "")


class BulkResultsFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Lead=1200", "--bulk-polls-in-progress", "0"]).start()
        cls.emu.login()
        cls.live = sum(1 for r in cls.emu.records("Lead") if not r["IsDeleted"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def job(self):
        e = self.emu
        r = e.post(e.data + "/jobs/query", {"operation": "query", "query": "SELECT Id, LastName FROM Lead"})
        self.assertEqual(r.status, 200, r.text)
        jid = r.json["id"]
        info = e.get(e.data + "/jobs/query/" + jid).json
        self.assertEqual(info["state"], "JobComplete")
        return jid, info

    def pages(self, jid, max_records=500):
        e = self.emu
        out, loc = [], None
        while len(out) < 50:
            url = e.data + "/jobs/query/%s/results?maxRecords=%d" % (jid, max_records)
            if loc:
                url += "&locator=" + loc
            r = e.get(url)
            self.assertEqual(r.status, 200, r.text)
            out.append(r)
            loc = r.headers["sforce-locator"]
            if loc == "null":
                break
        return out

    @staticmethod
    def rows(reply):
        lines = [ln for ln in reply.text.split("\n") if ln]
        return lines[1:] if lines else []

    def test_intact_pages_carry_counts(self):
        """every results page says Sforce-NumberOfRecords (its rows); the job says numberRecordsProcessed"""
        self.emu.config(bulk_results_fault="")
        jid, info = self.job()
        self.assertEqual(info["numberRecordsProcessed"], self.live)
        pages = self.pages(jid)
        self.assertEqual([int(p.headers["sforce-numberofrecords"]) for p in pages],
                         [len(self.rows(p)) for p in pages])
        self.assertEqual(sum(len(self.rows(p)) for p in pages), self.live)
        self.assertEqual(pages[-1].headers["sforce-locator"], "null")

    def test_empty_and_header_only(self):
        """empty: no bytes; header_only: the header row alone; Sforce-NumberOfRecords still the true count"""
        for kind, body in (("empty", lambda t: t == ""), ("header_only", lambda t: t == '"Id","LastName"\n')):
            self.emu.config(bulk_results_fault=kind, bulk_results_fault_skip=1, bulk_results_fault_times=1,
                            bulk_results_fault_count="actual")
            jid, info = self.job()
            pages = self.pages(jid)
            self.assertEqual(len(pages), 3)
            self.assertTrue(body(pages[1].text), (kind, pages[1].text[:80]))
            self.assertEqual(pages[1].headers["sforce-numberofrecords"], "500")
            self.assertNotEqual(pages[1].headers["sforce-locator"], "null", "the locator still goes on")
            got = sum(len(self.rows(p)) for p in pages)
            self.assertEqual(got, self.live - 500)
            self.assertEqual(info["numberRecordsProcessed"], self.live)
            self.assertEqual(len(self.rows(self.pages(jid)[1])), 500, "times=1: a re-read is whole")

    def test_count_zero(self):
        """bulk_results_fault_count=zero: the damaged page's header agrees with it (0), only the job's
        numberRecordsProcessed tells records are missing"""
        self.emu.config(bulk_results_fault="empty", bulk_results_fault_skip=0, bulk_results_fault_times=0,
                        bulk_results_fault_count="zero")
        try:
            jid, info = self.job()
            pages = self.pages(jid, max_records=5000)
            self.assertEqual([(p.text, p.headers["sforce-numberofrecords"], p.headers["sforce-locator"])
                              for p in pages], [("", "0", "null")])
            self.assertEqual(info["numberRecordsProcessed"], self.live)
            self.assertGreaterEqual(self.emu.stats()["injected"].get("bulk_results_empty", 0), 1)
        finally:
            self.emu.config(bulk_results_fault="", bulk_results_fault_count="actual")


if __name__ == "__main__":
    tap.main()
