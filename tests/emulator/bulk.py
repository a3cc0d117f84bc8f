"""Bulk API 2.0 for the Salesforce emulator: query jobs and ingest jobs.

    status, headers, body = bulk.handle(method, path, query, headers, body, ctx)

`path` is relative to /services/data/vNN.N/ ("jobs/query", "jobs/ingest/<id>/batches", ...);
`query` a dict of query parameters (values may be lists, as parse_qs gives) or a raw query string;
`headers` any mapping (looked up case-insensitively); `body` bytes.
`ctx` gives: db (soql.py's db), soql (the soql module), now() (emulator clock, epoch seconds),
write(object, op, record, external_id_field=None) -> (ok, id, created, errors), api_version,
and optionally bulk_jobs (a Jobs(); one per emulated org), user_id, lock, use_limit(name, n)
(DailyBulkV2QueryJobs per query job, DailyBulkApiBatches per 10,000 ingested records),
record_write_call(), and settings
bulk_polls_in_progress (polls answered InProgress before JobComplete, default 1) and
bulk_max_records (default page size of query results, default 50000).

Job life (as Salesforce shows it): a query job is created UploadComplete (the query is checked and
run then, a snapshot); the first poll says InProgress, the next JobComplete. An ingest job is
created Open; PUT .../batches uploads CSV (201, empty body); PATCH {"state":"UploadComplete"};
the first poll says InProgress, the next processes the records through ctx.write and says
JobComplete. Results: query CSV pages with Sforce-Locator / Sforce-NumberOfRecords; ingest
successfulResults/, failedResults/, unprocessedrecords/.

CSV out: a header row (field names as describe spells them, parent paths as Account.Name), every
value double-quoted, null an empty unquoted cell, booleans true/false, datetimes in UTC with a Z
(2024-01-15T10:30:00.000Z), the job's columnDelimiter and lineEnding. Ingest CSV in: an empty cell
leaves the field unchanged (not sent), #N/A sets it to null, a Relationship.ExternalIdField column
(Account.External_Id__c) sets the reference by the parent's external id; a column that names no
field fails the whole job ("InvalidBatch : Field name not found : Foo"). Several uploads per job
are accepted (each with the same header row). Per-record errors read
"STATUS_CODE:message:Field1,Field2 --".

Choices (unconfirmed on the wire): error bodies are arrays [{"errorCode","message"}]; unknown job
404 NOT_FOUND; bad job specs 400 INVALIDJOB; state errors 400 INVALIDJOBSTATE (an upload to a job
that is not Open: 409); queries Bulk API 2.0 refuses (subqueries, COUNT()/GROUP BY, OFFSET,
FIELDS(), compound fields) 400 API_ERROR at job creation; SOQL errors 400 with SOQL's code and
message at job creation; results of an unfinished job 400 INVALIDJOBSTATE; the locator is the
base64 of the next offset; default page size 50,000 rows (setting bulk_max_records).
"""
import base64
import csv
import io
import json
import threading
import time
from urllib.parse import parse_qs

from store import USER_ID, id_suffix

__all__ = ["handle", "Jobs", "JOBS"]

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPS = ("insert", "update", "upsert", "delete", "hardDelete")
MAX_UPLOAD = 150 * 1024 * 1024
DEFAULT_USER = USER_ID

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _id18(rid):
    """The 18-character form of a job id given with 15 or 18 characters."""
    return rid[:15] + id_suffix(rid[:15])


def _b62(n, width):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = _B62[r] + s
    return s.rjust(width, "0")


def _sf_time(epoch):
    t = time.gmtime(epoch)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
                                                       t.tm_sec, int(round((epoch % 1) * 1000)) % 1000)


class Jobs:
    """Every Bulk 2.0 job of one emulated org."""

    def __init__(self):
        self.jobs = {}
        self.counter = 0
        self.lock = threading.RLock()

    def new_id(self):
        with self.lock:
            self.counter += 1
            return _id18("7505g" + _b62(self.counter + 62 ** 6, 10))

    def reset(self):
        with self.lock:
            self.jobs.clear()


JOBS = Jobs()


class BulkError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(status, obj, extra=None):
    h = {"Content-Type": "application/json;charset=UTF-8"}
    if extra:
        h.update(extra)
    return status, h, json.dumps(obj).encode("utf-8")


def _error(status, code, message):
    return _json(status, [{"errorCode": code, "message": message}])


def _not_found():
    return BulkError(404, "NOT_FOUND", "The requested resource does not exist")


def _header(headers, name):
    if headers is None:
        return None
    try:
        v = headers.get(name)
        if v is not None:
            return v
    except AttributeError:
        pass
    low = name.lower()
    try:
        for k, v in headers.items():
            if k.lower() == low:
                return v
    except AttributeError:
        pass
    return None


def _params(query):
    if not query:
        return {}
    if isinstance(query, (bytes, str)):
        query = parse_qs(query.decode() if isinstance(query, bytes) else query, keep_blank_values=True)
    out = {}
    for k, v in query.items():
        if isinstance(v, (list, tuple)):
            v = v[0] if v else ""
        out[k] = v
    return out


def _body_json(body):
    if body is None or body == b"" or body == "":
        raise BulkError(400, "JSON_PARSER_ERROR", "The request body is empty")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise BulkError(400, "JSON_PARSER_ERROR", "Unexpected character in request body: %s" % e)
    if not isinstance(obj, dict):
        raise BulkError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of job info from a non-object value")
    return obj


def _api_version(ctx):
    v = str(getattr(ctx, "api_version", None) or getattr(ctx.db, "api_version", "62.0"))
    return v[1:] if v.startswith("v") else v


def _setting(ctx, name, default):
    v = getattr(ctx, name, None)
    return default if v is None else v


# ---------------------------------------------------------------------------------------------
# CSV

def _csv_value(v):
    """A stored value as Bulk CSV shows it (None -> empty cell)."""
    if v is None:
        return None
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return repr(v) if v != int(v) or abs(v) >= 1e16 else "%.1f" % v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if len(v) == 28 and v[10] == "T" and v[19] == "." and v.endswith("+0000"):
            return v[:23] + "Z"
        return v
    return json.dumps(v)


def _csv_line(values, delim, eol):
    out = []
    for v in values:
        if v is None:
            out.append("")
        else:
            out.append('"' + v.replace('"', '""') + '"')
    return delim.join(out) + eol


# ---------------------------------------------------------------------------------------------
# job bodies

class Job:
    def __init__(self, jid, kind, ctx, spec):
        now = ctx.now()
        self.id = jid
        self.kind = kind                  # "query" | "ingest"
        self.operation = spec["operation"]
        self.object = spec.get("object")
        self.created = _sf_time(now)
        self.modstamp = self.created
        self.created_by = getattr(ctx, "user_id", None) or DEFAULT_USER
        self.state = "UploadComplete" if kind == "query" else "Open"
        self.content_type = spec.get("contentType") or "CSV"
        self.line_ending = spec.get("lineEnding") or "LF"
        self.delimiter = spec.get("columnDelimiter") or "COMMA"
        self.api_version = _api_version(ctx)
        self.ext_field = spec.get("externalIdFieldName")
        self.assignment_rule = spec.get("assignmentRuleId")
        self.polls = 0
        self.processed = 0
        self.failed = 0
        self.error_message = None
        self.processing_ms = 0
        # query
        self.compiled = None
        self.rows = None
        self.columns = None
        # ingest
        self.uploads = []                 # raw CSV texts
        self.success = []                 # [(id, created, values)]
        self.failures = []                # [(id or "", error, values)]
        self.unprocessed = []             # [values]
        self.header = None

    def touch(self, ctx):
        self.modstamp = _sf_time(ctx.now())

    def info(self, full=True):
        d = {"id": self.id, "operation": self.operation, "object": self.object, "createdById": self.created_by,
             "createdDate": self.created, "systemModstamp": self.modstamp, "state": self.state}
        if self.kind == "ingest" and self.ext_field and self.operation == "upsert":
            d["externalIdFieldName"] = self.ext_field
        if self.assignment_rule:
            d["assignmentRuleId"] = self.assignment_rule
        d.update({"concurrencyMode": "Parallel", "contentType": self.content_type,
                  "apiVersion": float(self.api_version)})
        if self.kind == "ingest":
            d["contentUrl"] = "services/data/v%s/jobs/ingest/%s/batches" % (self.api_version, self.id)
        if full:
            d["jobType"] = "V2Query" if self.kind == "query" else "V2Ingest"
        d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        if full:
            d["numberRecordsProcessed"] = self.processed
            if self.kind == "ingest":
                d["numberRecordsFailed"] = self.failed
            d["retries"] = 0
            d["totalProcessingTime"] = self.processing_ms
            if self.kind == "ingest":
                d["apiActiveProcessingTime"] = self.processing_ms
                d["apexProcessingTime"] = 0
            else:
                d["isPkChunkingSupported"] = True
            if self.error_message:
                d["errorMessage"] = self.error_message
        return d

    def created_info(self):
        d = self.info(full=False)
        if self.kind == "query":
            d.pop("contentUrl", None)
        return d


def _check_format(spec):
    ct = spec.get("contentType")
    if ct is not None and ct != "CSV":
        raise BulkError(400, "INVALIDJOB", "InvalidJob : Invalid content type: %s. Only CSV is supported" % ct)
    le = spec.get("lineEnding")
    if le is not None and le not in LINE_ENDINGS:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : Invalid line ending: %s. Valid values are LF and CRLF" % le)
    cd = spec.get("columnDelimiter")
    if cd is not None and cd not in DELIMITERS:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : Invalid column delimiter: %s. Valid values are %s"
                        % (cd, ", ".join(sorted(DELIMITERS))))


def _advance(job, ctx):
    """One poll of a job that is being processed: UploadComplete -> InProgress -> JobComplete."""
    if job.state not in ("UploadComplete", "InProgress"):
        return
    job.polls += 1
    in_progress = int(_setting(ctx, "bulk_polls_in_progress", 1))
    if job.polls > in_progress:
        _complete(job, ctx)
    elif job.state != "InProgress":
        job.state = "InProgress"
        job.touch(ctx)


def _complete(job, ctx):
    if job.kind == "query":
        job.processed = len(job.rows)
        job.processing_ms = max(1, len(job.rows) // 100)
        job.state = "JobComplete"
    else:
        _process_ingest(job, ctx)
    job.touch(ctx)


# ---------------------------------------------------------------------------------------------
# query jobs

_UNSUPPORTED = "API_ERROR"


def _create_query(ctx, spec):
    jobs = _jobs(ctx)
    op = spec.get("operation")
    if op not in ("query", "queryAll"):
        raise BulkError(400, "INVALIDJOB", "InvalidJob : Invalid operation: %s. Valid values are query and queryAll"
                        % op)
    text = spec.get("query")
    if not isinstance(text, str) or not text.strip():
        raise BulkError(400, "INVALIDJOB", "InvalidJob : The query field is required")
    _check_format(spec)
    soql = ctx.soql
    lock = getattr(ctx, "lock", None)
    if lock is not None:
        lock.acquire()
    try:
        compiled = soql.compile_query(text, ctx.db, include_deleted=(op == "queryAll"))
        _check_bulk_query(compiled)
        rows = compiled.window(compiled.matching_rows_nogc())     # the snapshot the job returns
    except soql.SoqlError as e:
        raise BulkError(400, e.error_code, e.message)
    finally:
        if lock is not None:
            lock.release()
    spec = dict(spec)
    spec["object"] = compiled.obj.name
    _use_limit(ctx, "DailyBulkV2QueryJobs", 1)
    job = Job(jobs.new_id(), "query", ctx, spec)
    job.compiled = compiled
    job.rows = rows
    job.columns = [(_column_name(p), compiled.run.getter(p)) for _, p in compiled.select_paths]
    with jobs.lock:
        jobs.jobs[job.id] = job
    return _json(200, job.created_info())


def _check_bulk_query(compiled):
    """What Bulk API 2.0 refuses: subqueries, aggregates, OFFSET, FIELDS(), compound fields."""
    q = compiled.q
    if compiled.has_subqueries:
        raise BulkError(400, _UNSUPPORTED, "Nested queries (parent-to-child relationship queries) are not supported "
                                          "by Bulk API 2.0 query")
    if compiled.count_only or compiled.aggregate is not None or q.group_by:
        raise BulkError(400, _UNSUPPORTED, "Aggregate queries (COUNT(), GROUP BY) are not supported by Bulk API 2.0 "
                                          "query")
    if q.offset is not None:
        raise BulkError(400, _UNSUPPORTED, "OFFSET is not supported by Bulk API 2.0 query")
    if any(type(it).__name__ == "FieldsItem" for it in q.items):
        raise BulkError(400, _UNSUPPORTED, "FIELDS() is not supported by Bulk API 2.0 query")
    if compiled.has_compound:
        names = [p.field["name"] for _, p in compiled.select_paths if p.type in ("address", "location")]
        raise BulkError(400, _UNSUPPORTED, "Selecting compound data not supported in Bulk Query: %s; query its "
                                          "component fields instead" % ", ".join(names))


def _column_name(path):
    parts = [ref["relationshipName"] for ref, _ in path.hops]
    parts.append(path.field["name"])
    return ".".join(parts)


def _query_results(job, ctx, params):
    if job.state != "JobComplete":
        raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Job is not complete (state: %s)" % job.state)
    default = int(_setting(ctx, "bulk_max_records", 50000))
    mr = params.get("maxRecords")
    if mr in (None, ""):
        max_records = default
    else:
        try:
            max_records = int(mr)
        except ValueError:
            max_records = 0
        if max_records <= 0:
            raise BulkError(400, "INVALID_MAX_RECORDS", "maxRecords must be a positive integer: %s" % mr)
    loc = params.get("locator")
    start = 0
    if loc not in (None, "", "null"):
        try:
            start = int(base64.b64decode(loc + "=" * (-len(loc) % 4)).decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            start = -1
        if start < 0 or start > len(job.rows):
            raise BulkError(400, "INVALID_LOCATOR", "Invalid locator: %s" % loc)
    end = min(len(job.rows), start + max_records)
    delim = DELIMITERS[job.delimiter]
    eol = LINE_ENDINGS[job.line_ending]
    parts = [_csv_line([name for name, _ in job.columns], delim, eol)]
    getters = [g for _, g in job.columns]
    for r in job.rows[start:end]:
        parts.append(_csv_line([_csv_value(g(r)) for g in getters], delim, eol))
    locator = base64.b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.rows) else "null"
    count = end - start
    fault = getattr(ctx, "results_fault", None)
    if count and callable(fault):
        # injected damage (tests of a client's checks): the page loses its records, the header still says
        # how many it should hold ("actual") or agrees with the damaged body ("zero")
        kind, said = fault()
        if kind == "empty":
            parts = []
        elif kind == "header_only":
            parts = parts[:1]
        if kind and said == "zero":
            count = 0
    headers = {"Content-Type": "text/csv", "Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)}
    return 200, headers, "".join(parts).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# ingest jobs

def _create_ingest(ctx, spec):
    jobs = _jobs(ctx)
    obj = spec.get("object")
    op = spec.get("operation")
    if not isinstance(obj, str) or not obj:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : The object field is required")
    if op not in INGEST_OPS:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : Invalid operation: %s. Valid values are %s"
                        % (op, ", ".join(INGEST_OPS)))
    _check_format(spec)
    desc = ctx.db.describe(obj)
    if desc is None:
        raise BulkError(400, "INVALIDJOB", "InvalidJob : sObject type '%s' is not supported." % obj)
    spec = dict(spec)
    spec["object"] = desc["name"]
    if op == "upsert":
        ext = spec.get("externalIdFieldName")
        if not ext:
            raise BulkError(400, "INVALIDJOB", "InvalidJob : External ID was blank for %s. An External ID must be "
                                               "specified for upsert." % desc["name"])
        f = _field(desc, ext)
        if f is None or not (f.get("externalId") or f.get("idLookup") or f["name"] == "Id"):
            raise BulkError(400, "INVALIDJOB", "InvalidJob : Field name provided, %s does not match an External ID "
                                               "for %s" % (ext, desc["name"]))
        spec["externalIdFieldName"] = f["name"]
    job = Job(jobs.new_id(), "ingest", ctx, spec)
    with jobs.lock:
        jobs.jobs[job.id] = job
    return _json(200, job.created_info())


def _field(desc, name):
    low = name.lower()
    for f in desc.get("fields") or ():
        if f["name"].lower() == low:
            return f
    return None


def _upload(job, ctx, headers, body):
    if job.state != "Open":
        raise BulkError(409, "INVALIDJOBSTATE", "InvalidJobState : Job is not open for data upload (state: %s)"
                        % job.state)
    ct = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if ct not in ("text/csv",):
        raise BulkError(400, "INVALID_CONTENT_TYPE", "Content-Type of the upload must be text/csv, not %s"
                        % (ct or "(none)"))
    if body is None:
        body = b""
    if len(body) > MAX_UPLOAD:
        raise BulkError(400, "EXCEEDED_QUOTA", "The upload is larger than 150 MB")
    text = body.decode("utf-8-sig", errors="replace") if isinstance(body, bytes) else body
    if not text.strip():
        raise BulkError(400, "INVALIDBATCH", "InvalidBatch : The uploaded data is empty")
    job.uploads.append(text)
    job.touch(ctx)
    return 201, {}, b""


def _patch_state(job, ctx, spec):
    want = spec.get("state")
    if want == "UploadComplete":
        if job.kind != "ingest" or job.state != "Open":
            raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Invalid state change: %s to %s"
                            % (job.state, want))
        job.state = "UploadComplete"
    elif want == "Aborted":
        if job.state in ("JobComplete", "Failed", "Aborted"):
            raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Invalid state change: %s to %s"
                            % (job.state, want))
        job.state = "Aborted"
        if job.kind == "ingest":
            try:
                job.unprocessed = [list(vals) for vals in _all_rows(job)[1]] if job.uploads else []
            except (BulkError, csv.Error):
                job.unprocessed = []
    else:
        raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Invalid state: %s" % want)
    job.touch(ctx)
    return _json(200, job.created_info())


def _all_rows(job):
    """(header, [row values]) of every upload (each upload carries its own header row)."""
    delim = DELIMITERS[job.delimiter]
    header = None
    rows = []
    for text in job.uploads:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        h = None
        for rec in reader:
            if h is None:
                h = [c.strip() for c in rec]
                if header is None:
                    header = h
                elif [c.lower() for c in h] != [c.lower() for c in header]:
                    raise BulkError(400, "INVALIDBATCH", "InvalidBatch : All uploads of a job must have the same "
                                                         "header row")
                continue
            if not rec or (len(rec) == 1 and rec[0] == ""):
                continue
            rows.append(rec)
    return header or [], rows


def _format_errors(errors):
    out = []
    for e in errors or ():
        fields = e.get("fields") or []
        out.append("%s:%s:%s --" % (e.get("statusCode", "UNKNOWN_EXCEPTION"), e.get("message", ""),
                                    ",".join(fields)))
    return "; ".join(out) if out else "UNKNOWN_EXCEPTION:unknown error: --"


def _process_ingest(job, ctx):
    t0 = time.time()
    try:
        header, rows = _all_rows(job)
    except BulkError as e:
        _fail(job, e.message, [])
        return
    except csv.Error as e:
        _fail(job, "InvalidBatch : Failed to parse CSV: %s" % e, [])
        return
    job.header = header
    desc = ctx.db.describe(job.object)
    # resolve every column: a field, or Relationship.ExternalIdField of a parent
    cols = []
    for name in header:
        if "." in name:
            rel, _, pfield = name.partition(".")
            ref = None
            for f in desc.get("fields") or ():
                if (f.get("relationshipName") or "").lower() == rel.lower():
                    ref = f
                    break
            if ref is None or not ref.get("referenceTo"):
                _fail(job, "InvalidBatch : Field name not found : %s" % name, rows)
                return
            parent = ref["referenceTo"][0]
            if ":" in rel:
                _fail(job, "InvalidBatch : Field name not found : %s" % name, rows)
                return
            pdesc = ctx.db.describe(parent)
            pf = _field(pdesc, pfield) if pdesc else None
            if pf is None or not (pf.get("externalId") or pf.get("idLookup")):
                _fail(job, "InvalidBatch : Field name not found : %s" % name, rows)
                return
            cols.append(("ref", ref["name"], parent, pf["name"]))
            continue
        f = _field(desc, name)
        if f is None:
            _fail(job, "InvalidBatch : Field name not found : %s" % name, rows)
            return
        cols.append(("field", f["name"], None, None))
    names = [c[1] for c in cols if c[0] == "field"]
    if job.operation in ("update", "delete", "hardDelete") and "Id" not in names:
        _fail(job, "InvalidBatch : Field name not found : Id", rows)
        return
    if job.operation == "upsert" and job.ext_field not in names:
        _fail(job, "InvalidBatch : Field name not found : %s" % job.ext_field, rows)
        return
    op = "delete" if job.operation == "hardDelete" else job.operation
    parent_index = {}
    lock = getattr(ctx, "lock", None)
    if lock is not None:
        lock.acquire()
    try:
        for rec in rows:
            values = list(rec) + [""] * (len(header) - len(rec))
            if len(rec) > len(header):
                job.failures.append(("", "INVALID_FIELD:Too many columns in the row: %d (the header has %d):: --"
                                     % (len(rec), len(header)), values[:len(header)]))
                continue
            record = {}
            err = None
            for (kind, fname, parent, pfield), cell in zip(cols, values):
                if cell == "":
                    continue            # empty cell: leave the field unchanged
                if cell == "#N/A":
                    record[fname] = None
                    continue
                if kind == "ref":
                    pid = _parent_id(ctx, parent_index, parent, pfield, cell)
                    if pid is None:
                        err = ("INVALID_FIELD:Foreign key external ID: %s not found for field %s in entity %s:%s --"
                               % (cell, pfield, parent, fname))
                        break
                    record[fname] = pid
                else:
                    record[fname] = cell
            if err is not None:
                job.failures.append((record.get("Id", ""), err, values))
                continue
            if op == "delete":
                record = {"Id": record.get("Id")}
            try:
                ok, rid, created, errors = ctx.write(job.object, op, record,
                                                     job.ext_field if op == "upsert" else None)
            except Exception as e:   # a store failure is that record's failure, as Salesforce reports it
                ok, rid, created, errors = False, None, False, [{"statusCode": "UNKNOWN_EXCEPTION",
                                                                  "message": str(e), "fields": []}]
            if ok:
                job.success.append((rid or "", bool(created), values))
            else:
                job.failures.append((rid or record.get("Id") or "", _format_errors(errors), values))
    finally:
        if lock is not None:
            lock.release()
    job.processed = len(job.success) + len(job.failures)
    job.failed = len(job.failures)
    # Bulk API 2.0 ingest counts one DailyBulkApiBatches per 10,000 records
    _use_limit(ctx, "DailyBulkApiBatches", max(1, (len(rows) + 9999) // 10000))
    rec = getattr(ctx, "record_write_call", None)
    if callable(rec):
        rec()
    job.processing_ms = max(1, int((time.time() - t0) * 1000))
    job.state = "JobComplete"


def _parent_id(ctx, index, parent, pfield, value):
    key = (parent, pfield)
    idx = index.get(key)
    if idx is None:
        idx = {}
        for r in ctx.db.rows(parent):
            if r.get("IsDeleted"):
                continue
            v = r.get(pfield)
            if v is not None:
                idx.setdefault(str(v).lower(), r["Id"])
        index[key] = idx
    return idx.get(value.lower())


def _fail(job, message, rows):
    job.state = "Failed"
    job.error_message = message
    job.unprocessed = [list(r) for r in rows]
    job.processed = 0
    job.failed = 0


def _ingest_results(job, which):
    if which == "unprocessedrecords":
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Job is not complete (state: %s)" % job.state)
    elif job.state != "JobComplete":
        raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : Job is not complete (state: %s)" % job.state)
    delim = DELIMITERS[job.delimiter]
    eol = LINE_ENDINGS[job.line_ending]
    header = job.header
    if header is None:
        try:
            header = _all_rows(job)[0]
        except BulkError:
            header = []
    parts = []
    if which == "successfulResults":
        parts.append(_csv_line(["sf__Id", "sf__Created"] + header, delim, eol))
        for rid, created, values in job.success:
            parts.append(_csv_line([rid, "true" if created else "false"] + list(values), delim, eol))
    elif which == "failedResults":
        parts.append(_csv_line(["sf__Id", "sf__Error"] + header, delim, eol))
        for rid, error, values in job.failures:
            parts.append(_csv_line([rid, error] + list(values), delim, eol))
    else:
        parts.append(_csv_line(header, delim, eol))
        for values in job.unprocessed:
            parts.append(_csv_line(list(values), delim, eol))
    return 200, {"Content-Type": "text/csv"}, "".join(parts).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# routing

def _use_limit(ctx, name, n):
    fn = getattr(ctx, "use_limit", None)
    if callable(fn):
        fn(name, n)


def _jobs(ctx):
    j = getattr(ctx, "bulk_jobs", None)
    return j if j is not None else JOBS


def _get_job(ctx, kind, jid):
    job = _jobs(ctx).jobs.get(jid)
    if job is None and len(jid) == 15:
        job = _jobs(ctx).jobs.get(_id18(jid))
    if job is None or job.kind != kind:
        raise _not_found()
    return job


def _method_not_allowed(method, allowed):
    return BulkError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are %s" % (method, allowed))


def _list(ctx, kind, params):
    jobs = [j for j in _jobs(ctx).jobs.values() if j.kind == kind]
    jobs.sort(key=lambda j: j.id)
    state = params.get("jobState")
    if state:
        jobs = [j for j in jobs if j.state == state]
    return _json(200, {"done": True, "records": [j.created_info() for j in jobs], "nextRecordsUrl": None})


def handle(method, path, query, headers, body, ctx):
    """Answer one Bulk API 2.0 request; returns (status, headers, body bytes)."""
    try:
        return _handle(method.upper(), path, _params(query), headers, body, ctx)
    except BulkError as e:
        return _error(e.status, e.code, e.message)


def _handle(method, path, params, headers, body, ctx):
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2 or parts[0] != "jobs" or parts[1] not in ("query", "ingest"):
        raise _not_found()
    kind = parts[1]
    rest = parts[2:]
    jobs = _jobs(ctx)
    if not rest:
        if method == "POST":
            spec = _body_json(body)
            return _create_query(ctx, spec) if kind == "query" else _create_ingest(ctx, spec)
        if method == "GET":
            return _list(ctx, kind, params)
        raise _method_not_allowed(method, "GET,POST")
    job = _get_job(ctx, kind, rest[0])
    with jobs.lock:
        if len(rest) == 1:
            if method == "GET":
                _advance(job, ctx)
                return _json(200, job.info())
            if method == "PATCH":
                return _patch_state(job, ctx, _body_json(body))
            if method == "DELETE":
                if job.state in ("Open", "InProgress"):
                    raise BulkError(400, "INVALIDJOBSTATE", "InvalidJobState : A job in state %s can't be deleted"
                                    % job.state)
                del jobs.jobs[job.id]
                return 204, {}, b""
            raise _method_not_allowed(method, "GET,PATCH,DELETE")
        if len(rest) == 2:
            sub = rest[1]
            if kind == "query" and sub == "results":
                if method != "GET":
                    raise _method_not_allowed(method, "GET")
                return _query_results(job, ctx, params)
            if kind == "ingest" and sub == "batches":
                if method != "PUT":
                    raise _method_not_allowed(method, "PUT")
                return _upload(job, ctx, headers, body)
            if kind == "ingest" and sub in ("successfulResults", "failedResults", "unprocessedrecords"):
                if method != "GET":
                    raise _method_not_allowed(method, "GET")
                return _ingest_results(job, sub)
    raise _not_found()
