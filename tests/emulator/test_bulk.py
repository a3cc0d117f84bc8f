"""Bulk API 2.0 (bulk.py) driven directly with a fake ctx: query jobs, result paging, ingest jobs,
results CSVs, job states and error bodies."""
import base64
import csv
import io
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import tap  # noqa: E402
import soql  # noqa: E402
import bulk  # noqa: E402
from test_soql import sample  # noqa: E402

V = "62.0"


class Ctx:
    """What the server hands bulk.handle."""

    def __init__(self, db, **settings):
        self.db = db
        self.soql = soql
        self.api_version = V
        self.bulk_jobs = bulk.Jobs()
        self.clock = 1705314600.0
        self.writes = []
        for k, v in settings.items():
            setattr(self, k, v)

    def now(self):
        return self.clock

    def write(self, obj, op, record, external_id_field=None):
        self.writes.append((obj, op, dict(record), external_id_field))
        return self.db.write(obj, op, record, external_id_field)


def call(ctx, method, path, body=None, query=None, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = headers or {"Content-Type": "application/json"}
    elif isinstance(body, str):
        body = body.encode()
    status, h, raw = bulk.handle(method, path, query or {}, headers or {}, body, ctx)
    return status, h, raw


def jcall(ctx, method, path, body=None, query=None, headers=None):
    status, h, raw = call(ctx, method, path, body, query, headers)
    return status, (json.loads(raw) if raw else None)


def poll_until_done(ctx, kind, jid, limit=10):
    states = []
    for _ in range(limit):
        st, info = jcall(ctx, "GET", "jobs/%s/%s" % (kind, jid))
        assert st == 200, info
        states.append(info["state"])
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info, states
    raise AssertionError("job never finished: %s" % states)


def rows_of(raw, delim=","):
    return list(csv.reader(io.StringIO(raw.decode(), newline=""), delimiter=delim))


QUERY_KEYS = ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
              "concurrencyMode", "contentType", "apiVersion", "lineEnding", "columnDelimiter"]


class QueryJobs(unittest.TestCase):
    def setUp(self):
        self.db, self.r = sample()
        self.ctx = Ctx(self.db)

    def create(self, q, **kw):
        spec = {"operation": "query", "query": q}
        spec.update(kw)
        st, info = jcall(self.ctx, "POST", "jobs/query", spec)
        self.assertEqual(st, 200, info)
        return info

    def test_job_moves_through_its_states_as_polled(self):
        """create -> UploadComplete; polls -> InProgress -> JobComplete with numberRecordsProcessed"""
        info = self.create("SELECT Id FROM Lead")
        self.assertEqual(list(info), QUERY_KEYS)
        self.assertEqual((info["state"], info["operation"], info["object"], info["apiVersion"],
                          info["concurrencyMode"], info["contentType"], info["lineEnding"], info["columnDelimiter"]),
                         ("UploadComplete", "query", "Lead", 62.0, "Parallel", "CSV", "LF", "COMMA"))
        self.assertTrue(info["id"].startswith("750") and len(info["id"]) == 18)
        self.assertEqual(info["createdDate"], "2024-01-15T10:30:00.000+0000")
        done, states = poll_until_done(self.ctx, "query", info["id"])
        self.assertEqual(states, ["InProgress", "JobComplete"])
        for k in ("numberRecordsProcessed", "retries", "totalProcessingTime", "jobType"):
            self.assertIn(k, done)
        self.assertEqual((done["numberRecordsProcessed"], done["jobType"]), (4, "V2Query"))

    def test_results_csv_is_quoted_with_empty_nulls(self):
        """results: header row, every value double-quoted, nulls empty, relationship columns, Z datetimes"""
        info = self.create("SELECT Id, Company, AnnualRevenue, IsConverted, SystemModstamp, Owner.Name, Email, "
                           "LastName FROM Lead ORDER BY Company")
        poll_until_done(self.ctx, "query", info["id"])
        st, h, raw = call(self.ctx, "GET", "jobs/query/%s/results" % info["id"])
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "text/csv")
        self.assertEqual((h["Sforce-Locator"], h["Sforce-NumberOfRecords"]), ("null", "4"))
        lines = raw.decode().split("\n")
        self.assertEqual(lines[0], '"Id","Company","AnnualRevenue","IsConverted","SystemModstamp","Owner.Name",'
                                   '"Email","LastName"')
        acme = [x for x in self.r["leads"] if x["Company"] == "Acme"][0]
        self.assertEqual(lines[1], '"%s","Acme","100.0","false","2024-01-15T10:30:00.000Z","Ada Admin",'
                                   '"ann@acme.com","O\'Brien"' % acme["Id"])
        rows = rows_of(raw)
        initech = rows[3]
        self.assertEqual(initech[1:4], ["initech", "", "false"])
        self.assertIn(',,"false"', lines[3])                       # null -> empty, unquoted cell
        self.assertEqual(rows[4][7], 'Tab\tQuote"')                # embedded quote doubled, tab kept
        self.assertEqual(lines[-1], "")                            # LF after the last row

    def test_result_pages_follow_the_locator(self):
        """maxRecords pages; Sforce-Locator opaque until the last page says the literal null"""
        info = self.create("SELECT Id FROM Lead")
        poll_until_done(self.ctx, "query", info["id"])
        seen, locator, pages = [], None, 0
        while True:
            q = {"maxRecords": ["3"]}
            if locator:
                q["locator"] = [locator]
            st, h, raw = call(self.ctx, "GET", "jobs/query/%s/results" % info["id"], query=q)
            self.assertEqual(st, 200, raw)
            rows = rows_of(raw)
            self.assertEqual(rows[0], ["Id"])
            self.assertEqual(int(h["Sforce-NumberOfRecords"]), len(rows) - 1)
            seen += [r[0] for r in rows[1:]]
            pages += 1
            locator = h["Sforce-Locator"]
            if locator == "null":
                break
            self.assertEqual(base64.b64decode(locator + "==").decode(), "3")
        self.assertEqual(pages, 2)
        self.assertEqual(seen, sorted(x["Id"] for x in self.r["leads"] if not x["IsDeleted"]))
        st, h, raw = call(self.ctx, "GET", "jobs/query/%s/results" % info["id"], query="maxRecords=10")
        self.assertEqual(h["Sforce-NumberOfRecords"], "4")

    def test_query_all_returns_deleted_rows(self):
        """operation queryAll includes deleted rows"""
        info = self.create("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", operation="queryAll")
        done, _ = poll_until_done(self.ctx, "query", info["id"])
        self.assertEqual(done["numberRecordsProcessed"], 1)
        st, h, raw = call(self.ctx, "GET", "jobs/query/%s/results" % info["id"])
        self.assertEqual(rows_of(raw)[1][1], "true")

    def test_delimiter_and_line_ending(self):
        """columnDelimiter PIPE and lineEnding CRLF shape the results"""
        info = self.create("SELECT Company, NumberOfEmployees FROM Lead WHERE Company = 'Acme'",
                           columnDelimiter="PIPE", lineEnding="CRLF")
        poll_until_done(self.ctx, "query", info["id"])
        st, h, raw = call(self.ctx, "GET", "jobs/query/%s/results" % info["id"])
        self.assertEqual(raw.decode(), '"Company"|"NumberOfEmployees"\r\n"Acme"|"5"\r\n')

    def test_snapshot_at_creation(self):
        """the job returns the rows as they were when it was created"""
        info = self.create("SELECT Id FROM Lead")
        self.db.add("Lead", LastName="Late", Company="Late Inc")
        done, _ = poll_until_done(self.ctx, "query", info["id"])
        self.assertEqual(done["numberRecordsProcessed"], 4)

    def test_results_before_completion_fail(self):
        """results of a job that is not JobComplete: 400 with an error array"""
        info = self.create("SELECT Id FROM Lead")
        st, body = jcall(self.ctx, "GET", "jobs/query/%s/results" % info["id"])
        self.assertEqual(st, 400)
        self.assertEqual(body[0]["errorCode"], "INVALIDJOBSTATE")

    def test_unsupported_queries_and_soql_errors(self):
        """subqueries, compound fields, COUNT(), GROUP BY, OFFSET, bad SOQL: 400 error arrays"""
        cases = [
            ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "API_ERROR", "Nested queries"),
            ("SELECT Id, BillingAddress FROM Account", "API_ERROR", "compound data"),
            ("SELECT COUNT() FROM Lead", "API_ERROR", "Aggregate"),
            ("SELECT Status, COUNT(Id) FROM Lead GROUP BY Status", "API_ERROR", "Aggregate"),
            ("SELECT Id FROM Lead OFFSET 5", "API_ERROR", "OFFSET"),
            ("SELECT Id, Foo FROM Lead", "INVALID_FIELD", "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at "
                                                          "Row:1:Column:12\nNo such column 'Foo' on entity 'Lead'."),
            ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported."),
            ("SELECT Id FORM Lead", "MALFORMED_QUERY", "unexpected token: 'FORM'"),
        ]
        for q, code, msg in cases:
            st, body = jcall(self.ctx, "POST", "jobs/query", {"operation": "query", "query": q})
            self.assertEqual(st, 400, q)
            self.assertIsInstance(body, list)
            self.assertEqual(body[0]["errorCode"], code, q)
            self.assertIn(msg, body[0]["message"], q)
        self.assertEqual(self.ctx.bulk_jobs.jobs, {})

    def test_bad_requests(self):
        """bad operation, bad JSON, unknown job (404), wrong method (405): error arrays"""
        st, body = jcall(self.ctx, "POST", "jobs/query", {"operation": "select", "query": "SELECT Id FROM Lead"})
        self.assertEqual((st, body[0]["errorCode"]), (400, "INVALIDJOB"))
        st, body = jcall(self.ctx, "POST", "jobs/query", "{not json")
        self.assertEqual((st, body[0]["errorCode"]), (400, "JSON_PARSER_ERROR"))
        st, body = jcall(self.ctx, "POST", "jobs/query", {"operation": "query", "query": "SELECT Id FROM Lead",
                                                          "columnDelimiter": "STAR"})
        self.assertEqual((st, body[0]["errorCode"]), (400, "INVALIDJOB"))
        st, body = jcall(self.ctx, "GET", "jobs/query/750000000000000AAA")
        self.assertEqual((st, body), (404, [{"errorCode": "NOT_FOUND",
                                              "message": "The requested resource does not exist"}]))
        info = self.create("SELECT Id FROM Lead")
        st, body = jcall(self.ctx, "PUT", "jobs/query/%s" % info["id"], {})
        self.assertEqual((st, body[0]["errorCode"]), (405, "METHOD_NOT_ALLOWED"))
        st, body = jcall(self.ctx, "GET", "jobs/ingest/%s" % info["id"])
        self.assertEqual(st, 404)

    def test_abort_delete_and_list(self):
        """PATCH Aborted, GET jobs/query lists jobs, DELETE removes a finished job"""
        a = self.create("SELECT Id FROM Lead")
        b = self.create("SELECT Id FROM Account")
        st, info = jcall(self.ctx, "PATCH", "jobs/query/%s" % a["id"], {"state": "Aborted"})
        self.assertEqual((st, info["state"]), (200, "Aborted"))
        st, info = jcall(self.ctx, "GET", "jobs/query/%s" % a["id"])
        self.assertEqual(info["state"], "Aborted")
        st, body = jcall(self.ctx, "GET", "jobs/query")
        self.assertEqual((st, body["done"]), (200, True))
        self.assertEqual({j["id"] for j in body["records"]}, {a["id"], b["id"]})
        st, _, raw = call(self.ctx, "DELETE", "jobs/query/%s" % a["id"])
        self.assertEqual((st, raw), (204, b""))
        st, _ = jcall(self.ctx, "GET", "jobs/query/%s" % a["id"])
        self.assertEqual(st, 404)

    def test_polls_in_progress_setting(self):
        """ctx.bulk_polls_in_progress sets how many polls say InProgress"""
        self.ctx.bulk_polls_in_progress = 3
        info = self.create("SELECT Id FROM Lead")
        _, states = poll_until_done(self.ctx, "query", info["id"])
        self.assertEqual(states, ["InProgress"] * 3 + ["JobComplete"])


CSV_HEADERS = {"Content-Type": "text/csv"}


class IngestJobs(unittest.TestCase):
    def setUp(self):
        self.db, self.r = sample()
        self.ctx = Ctx(self.db)

    def run_job(self, spec, *uploads):
        st, info = jcall(self.ctx, "POST", "jobs/ingest", spec)
        self.assertEqual(st, 200, info)
        self.assertEqual(info["state"], "Open")
        self.assertEqual(info["contentUrl"], "services/data/v%s/jobs/ingest/%s/batches" % (V, info["id"]))
        for data in uploads:
            st, h, raw = call(self.ctx, "PUT", "jobs/ingest/%s/batches" % info["id"], data, headers=CSV_HEADERS)
            self.assertEqual((st, raw), (201, b""), raw)
        st, patched = jcall(self.ctx, "PATCH", "jobs/ingest/%s" % info["id"], {"state": "UploadComplete"})
        self.assertEqual((st, patched["state"]), (200, "UploadComplete"))
        done, states = poll_until_done(self.ctx, "ingest", info["id"])
        return info["id"], done, states

    def results(self, jid, which):
        st, h, raw = call(self.ctx, "GET", "jobs/ingest/%s/%s/" % (jid, which))
        self.assertEqual(st, 200, raw)
        self.assertEqual(h["Content-Type"], "text/csv")
        return raw.decode()

    def test_insert_job_end_to_end(self):
        """insert: Open -> upload (201, empty) -> UploadComplete -> InProgress -> JobComplete; results CSVs"""
        data = ('LastName,Company,Email,Description\n'
                'Alpha,"Comma, Inc",a@x.com,"multi\nline ""quoted"""\n'
                ',NoName Inc,,\n'
                'Gamma,Gamma Co,,\n')
        jid, done, states = self.run_job({"object": "Lead", "operation": "insert", "contentType": "CSV",
                                          "lineEnding": "LF"}, data)
        self.assertEqual(states, ["InProgress", "JobComplete"])
        self.assertEqual((done["numberRecordsProcessed"], done["numberRecordsFailed"], done["jobType"]),
                         (3, 1, "V2Ingest"))
        for k in ("retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"):
            self.assertIn(k, done)
        ok = rows_of(self.results(jid, "successfulResults").encode())
        self.assertEqual(ok[0], ["sf__Id", "sf__Created", "LastName", "Company", "Email", "Description"])
        self.assertEqual(ok[1][1:], ["true", "Alpha", "Comma, Inc", "a@x.com", 'multi\nline "quoted"'])
        new = self.db.get("Lead", ok[1][0])
        self.assertEqual((new["Company"], new["Description"]), ("Comma, Inc", 'multi\nline "quoted"'))
        self.assertTrue(self.results(jid, "successfulResults").startswith('"sf__Id","sf__Created","LastName"'))
        bad = rows_of(self.results(jid, "failedResults").encode())
        self.assertEqual(bad[0], ["sf__Id", "sf__Error", "LastName", "Company", "Email", "Description"])
        self.assertEqual(bad[1][0], "")
        self.assertTrue(bad[1][1].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:"
                                             "LastName"), bad[1][1])
        self.assertEqual(bad[1][2:], ["", "NoName Inc", "", ""])
        un = rows_of(self.results(jid, "unprocessedrecords").encode())
        self.assertEqual(un, [["LastName", "Company", "Email", "Description"]])
        # the empty cells were left out of the write, not sent as ""
        self.assertNotIn("Email", self.ctx.writes[2][2])

    def test_update_empty_cell_keeps_and_na_clears(self):
        """update: an empty cell leaves the field unchanged, #N/A sets it to null"""
        lead = self.r["leads"][0]
        data = "Id,FirstName,Email\n%s,,#N/A\n" % lead["Id"]
        jid, done, _ = self.run_job({"object": "Lead", "operation": "update"}, data)
        self.assertEqual(done["numberRecordsFailed"], 0)
        now = self.db.get("Lead", lead["Id"])
        self.assertEqual((now["FirstName"], now["Email"]), ("Ann", None))
        ok = rows_of(self.results(jid, "successfulResults").encode())
        self.assertEqual(ok[1][:2], [lead["Id"], "false"])

    def test_upsert_by_external_id(self):
        """upsert on externalIdFieldName: sf__Created true for new rows, false for matched ones"""
        data = "External_Id__c,LastName,Company\nEXT-1,Updated,Acme\nEXT-NEW,Brand,New Co\n"
        jid, done, _ = self.run_job({"object": "Lead", "operation": "upsert", "externalIdFieldName": "external_id__c"},
                                    data)
        self.assertEqual(done["externalIdFieldName"], "External_Id__c")
        ok = rows_of(self.results(jid, "successfulResults").encode())
        self.assertEqual([r[1] for r in ok[1:]], ["false", "true"])
        self.assertEqual(ok[1][0], self.r["leads"][0]["Id"])
        self.assertEqual(self.db.get("Lead", ok[1][0])["LastName"], "Updated")
        self.assertEqual(self.db.get("Lead", ok[2][0])["Company"], "New Co")
        self.assertEqual(self.ctx.writes[0][3], "External_Id__c")

    def test_delete_job(self):
        """delete: rows need only Id; a bad id lands in failedResults with its id"""
        lead = self.r["leads"][1]
        data = "Id\n%s\n00Q000000000099AAA\n" % lead["Id"]
        jid, done, _ = self.run_job({"object": "Lead", "operation": "delete"}, data)
        self.assertEqual((done["numberRecordsProcessed"], done["numberRecordsFailed"]), (2, 1))
        self.assertTrue(self.db.get("Lead", lead["Id"])["IsDeleted"])
        bad = rows_of(self.results(jid, "failedResults").encode())
        self.assertEqual(bad[1][0], "00Q000000000099AAA")

    def test_relationship_column_by_parent_external_id(self):
        """Account.External_Id__c in a Contact insert sets AccountId"""
        data = "LastName,Account.External_Id__c\nKid,ACME-1\nLost,NOPE\n"
        jid, done, _ = self.run_job({"object": "Contact", "operation": "insert"}, data)
        ok = rows_of(self.results(jid, "successfulResults").encode())
        self.assertEqual(self.db.get("Contact", ok[1][0])["AccountId"], self.r["a1"]["Id"])
        bad = rows_of(self.results(jid, "failedResults").encode())
        self.assertIn("Foreign key external ID: NOPE not found", bad[1][1])

    def test_several_uploads_and_other_delimiters(self):
        """two uploads in one job; SEMICOLON delimiter and CRLF line endings"""
        spec = {"object": "Lead", "operation": "insert", "columnDelimiter": "SEMICOLON", "lineEnding": "CRLF"}
        jid, done, _ = self.run_job(spec, "LastName;Company\r\nOne;A\r\n", "LastName;Company\r\nTwo;B\r\n")
        self.assertEqual(done["numberRecordsProcessed"], 2)
        text = self.results(jid, "successfulResults")
        self.assertTrue(text.startswith('"sf__Id";"sf__Created";"LastName";"Company"\r\n'), text)

    def test_unknown_column_fails_the_job(self):
        """a header naming no field: job Failed, errorMessage says which, rows are unprocessed"""
        jid, done, _ = self.run_job({"object": "Lead", "operation": "insert"}, "LastName,Foo\nA,b\n")
        self.assertEqual(done["state"], "Failed")
        self.assertEqual(done["errorMessage"], "InvalidBatch : Field name not found : Foo")
        un = rows_of(self.results(jid, "unprocessedrecords").encode())
        self.assertEqual(un, [["LastName", "Foo"], ["A", "b"]])
        st, body = jcall(self.ctx, "GET", "jobs/ingest/%s/successfulResults/" % jid)
        self.assertEqual(st, 400)

    def test_state_and_upload_errors(self):
        """bad create specs, wrong Content-Type, upload after UploadComplete, bad state changes"""
        for spec, code in [({"object": "Foo", "operation": "insert"}, "INVALIDJOB"),
                           ({"object": "Lead", "operation": "merge"}, "INVALIDJOB"),
                           ({"object": "Lead", "operation": "upsert"}, "INVALIDJOB"),
                           ({"object": "Lead", "operation": "upsert", "externalIdFieldName": "Company"}, "INVALIDJOB"),
                           ({"object": "Lead", "operation": "insert", "lineEnding": "CR"}, "INVALIDJOB")]:
            st, body = jcall(self.ctx, "POST", "jobs/ingest", spec)
            self.assertEqual((st, body[0]["errorCode"]), (400, code), spec)
        st, info = jcall(self.ctx, "POST", "jobs/ingest", {"object": "lead", "operation": "insert"})
        self.assertEqual(info["object"], "Lead")
        jid = info["id"]
        st, h, raw = call(self.ctx, "PUT", "jobs/ingest/%s/batches" % jid, "LastName,Company\nA,B\n",
                          headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        st, h, raw = call(self.ctx, "PUT", "jobs/ingest/%s/batches" % jid, "LastName,Company\nA,B\n",
                          headers={"content-type": "text/csv; charset=UTF-8"})
        self.assertEqual(st, 201)
        st, body = jcall(self.ctx, "PATCH", "jobs/ingest/%s" % jid, {"state": "JobComplete"})
        self.assertEqual(st, 400)
        st, body = jcall(self.ctx, "PATCH", "jobs/ingest/%s" % jid, {"state": "UploadComplete"})
        self.assertEqual(st, 200)
        st, h, raw = call(self.ctx, "PUT", "jobs/ingest/%s/batches" % jid, "LastName,Company\nC,D\n",
                          headers=CSV_HEADERS)
        self.assertEqual(st, 409)
        self.assertEqual(json.loads(raw)[0]["errorCode"], "INVALIDJOBSTATE")
        st, body = jcall(self.ctx, "PATCH", "jobs/ingest/%s" % jid, {"state": "UploadComplete"})
        self.assertEqual(st, 400)

    def test_abort_open_job(self):
        """an aborted ingest job processes nothing; its rows are unprocessed"""
        st, info = jcall(self.ctx, "POST", "jobs/ingest", {"object": "Lead", "operation": "insert"})
        call(self.ctx, "PUT", "jobs/ingest/%s/batches" % info["id"], "LastName,Company\nA,B\n", headers=CSV_HEADERS)
        st, body = jcall(self.ctx, "PATCH", "jobs/ingest/%s" % info["id"], {"state": "Aborted"})
        self.assertEqual(body["state"], "Aborted")
        self.assertEqual(self.ctx.writes, [])
        st, h, raw = call(self.ctx, "GET", "jobs/ingest/%s/unprocessedrecords/" % info["id"])
        self.assertEqual(rows_of(raw), [["LastName", "Company"], ["A", "B"]])


if __name__ == "__main__":
    tap.main()
