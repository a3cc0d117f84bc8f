"""The emulator's transport, as an engine with compressed writes and bounded concurrency sees it:
request bodies with Content-Encoding gzip or deflate are decoded (a corrupt one is a counted 400);
requests are served concurrently (a threading server whose state stays consistent under parallel
writes and queries); --latency-ms delays every call without serialising them; the limit on
concurrent long-running requests answers 403 REQUEST_LIMIT_EXCEEDED as Salesforce does."""
import gzip
import http.client
import json
import os
import sys
import threading
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402


def parallel(n, fn):
    """run fn(i) in n threads at once; -> results in order (exceptions re-raised)"""
    out = [None] * n
    errs = []
    start = threading.Barrier(n)

    def run(i):
        try:
            start.wait(30)
            out[i] = fn(i)
        except Exception as e:   # noqa: BLE001 - reported below
            errs.append(e)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    if errs:
        raise errs[0]
    return out


class Compression(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator().start()
        cls.emu.login()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def post(self, body, encoding, path="/sobjects/Lead"):
        return self.emu.post(self.emu.data + path, body, {"Content-Type": "application/json",
                                                          "Content-Encoding": encoding})

    def test_gzip_and_deflate_bodies(self):
        """gzip, x-gzip and deflate (zlib or raw) bodies are decoded: single creates and a collection"""
        doc = {"LastName": "Zipped", "Company": "Gz Co"}
        raw = json.dumps(doc).encode()
        co = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        for enc, body in (("gzip", gzip.compress(raw)), ("x-gzip", gzip.compress(raw)),
                          ("deflate", zlib.compress(raw)), ("deflate", co.compress(raw) + co.flush())):
            r = self.post(body, enc)
            self.assertEqual(r.status, 201, (enc, r.text))
        coll = {"allOrNone": False, "records": [dict(doc, attributes={"type": "Lead"}, LastName="Z%d" % i)
                                                for i in range(200)]}
        r = self.post(gzip.compress(json.dumps(coll).encode()), "gzip", "/composite/sobjects")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(sum(1 for x in r.json if x["success"]), 200)
        names = {x["LastName"] for x in self.emu.records("Lead")}
        self.assertIn("Z199", names)

    def test_gzip_bulk_upload(self):
        """a Bulk API 2.0 CSV upload may be gzip-compressed too"""
        e = self.emu
        job = e.post(e.data + "/jobs/ingest", {"object": "Lead", "operation": "insert", "lineEnding": "LF"}).json
        csv = b"LastName,Company\nBulkGz,Gz Inc\n"
        r = e.request("PUT", e.data + "/jobs/ingest/%s/batches" % job["id"], gzip.compress(csv),
                      {"Content-Type": "text/csv", "Content-Encoding": "gzip"})
        self.assertEqual(r.status, 201, r.text)

    def test_corrupt_body_is_a_counted_400(self):
        """a corrupt or truncated gzip body, or an unknown encoding: 400 with an error array, counted, nothing written"""
        before_n = len(self.emu.records("Lead"))
        good = gzip.compress(json.dumps({"LastName": "Bad", "Company": "B"}).encode())
        for enc, body in (("gzip", b"\x1f\x8b\x08\x00garbage-not-deflate"), ("gzip", good[:-12]),
                          ("gzip", b'{"LastName":"plain"}'), ("br", good)):
            before = self.emu.stats()["api_calls"]
            r = self.post(body, enc)
            self.assertEqual(r.status, 400, (enc, r.text))
            self.assertIsInstance(r.json, list)
            self.assertTrue(r.json[0]["errorCode"] and r.json[0]["message"], r.text)
            self.assertEqual(self.emu.stats()["api_calls"], before + 1)
        self.assertEqual(len(self.emu.records("Lead")), before_n)
        r = self.emu.request("POST", "/services/oauth2/token", gzip.compress(b"grant_type=password")[:-9],
                             {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
                             token=None)
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_request"))


class Concurrency(unittest.TestCase):
    def test_parallel_writes_and_queries_stay_consistent(self):
        """8 clients x 25 creates each, with queries in between: 200 distinct ids, every one stored once,
        api_calls equals the requests made"""
        with Emulator(["--generate", "Lead=300"]) as e:
            e.login()
            base = e.stats()["api_calls"]

            def client(i):
                ids = []
                for k in range(25):
                    r = e.post(e.data + "/sobjects/Lead", {"LastName": "P%d-%d" % (i, k), "Company": "Par"})
                    assert r.status == 201, r.text
                    ids.append(r.json["id"])
                    if k % 5 == 0:
                        recs, _ = e.query("SELECT Id FROM Lead WHERE Company = 'Par'", batch_size=200)
                        assert len(recs) >= len(ids)
                return ids
            out = parallel(8, client)
            ids = [i for part in out for i in part]
            self.assertEqual(len(set(ids)), 200)
            stored = [r for r in e.records("Lead") if r["Company"] == "Par"]
            self.assertEqual(sorted(r["Id"] for r in stored), sorted(ids))
            s = e.stats()
            self.assertEqual(s["api_calls"] - base, 200 + 8 * 5)
            self.assertEqual(s["api_calls"], sum(s["by_endpoint"].values()))

    def test_latency_overlaps(self):
        """--latency-ms 300 with 6 parallel calls: they are in flight together (in_flight_max >= 4) and
        finish well before 6 x 300 ms would"""
        with Emulator(["--latency-ms", "300"]) as e:
            e.login()
            t0 = time.monotonic()
            parallel(6, lambda i: e.get(e.data + "/limits").status)
            wall = time.monotonic() - t0
            self.assertGreaterEqual(e.stats()["in_flight_max"], 4)
            self.assertLess(wall, 1.6, "6 calls of 300 ms took %.2f s: serialised" % wall)
            t0 = time.monotonic()
            e.get(e.data + "/limits")
            self.assertGreaterEqual(time.monotonic() - t0, 0.29, "every call waits --latency-ms")


class LongRunning(unittest.TestCase):
    def test_concurrent_long_running_limit(self):
        """--long-running-limit 2 --long-running-seconds 0.5: with 2 requests running past 0.5 s a third
        gets 403 REQUEST_LIMIT_EXCEEDED (not counted); afterwards calls pass again"""
        with Emulator(["--long-running-limit", "2", "--long-running-seconds", "0.5"]) as e:
            e.login()
            e.config(latency_ms=1500)
            slow = [threading.Thread(target=lambda: e.get(e.data + "/limits")) for _ in range(2)]
            for t in slow:
                t.start()
            time.sleep(0.9)
            e.config(latency_ms=0)
            before = e.stats()["api_calls"]
            r = e.get(e.data + "/limits")
            self.assertEqual(r.status, 403, r.text)
            self.assertEqual(r.json, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
            self.assertRegex(r.headers.get("sforce-limit-info", ""), r"^api-usage=\d+/\d+$")
            for t in slow:
                t.join(30)
            self.assertEqual(e.stats()["api_calls"], before + 2, "the two slow calls count, the refused one does not")
            self.assertEqual(e.get(e.data + "/limits").status, 200)
            s = e.stats()
            self.assertEqual(s["rejected"].get("403"), 1)
            self.assertEqual(s["api_calls"], sum(s["by_endpoint"].values()))

    def test_default_is_salesforce(self):
        """the default limit is Salesforce's production one: 25 requests running over 20 s"""
        with Emulator() as e:
            c = e.config()
            self.assertEqual((c["long_running_limit"], c["long_running_seconds"]), (25, 20.0))


if __name__ == "__main__":
    tap.main()
