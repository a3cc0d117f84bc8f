#!/usr/bin/env python3
"""Salesforce emulator: REST API (v20.0..vMAX), OAuth2 token endpoint, Bulk API 2.0 (bulk.py).

    python3 tests/emulator/server.py --port 0 [options]

prints `listening on http://127.0.0.1:PORT` first on stdout, serves until SIGTERM (exit 0).
See README.md next to this file for every option and endpoint.
"""
import argparse
import collections
import email.utils
import gzip
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import auth as auth_mod                                    # noqa: E402
import columns as columns_mod                              # noqa: E402
import generate as gen_mod                                 # noqa: E402
from schema import Schema, SchemaError                     # noqa: E402
from store import (Store, Clock, RequestError, ORG_ID, USER_ID, to18, sf_datetime,  # noqa: E402
                   parse_datetime)

try:
    import soql
except ImportError:          # pragma: no cover - soql.py is part of the emulator
    soql = None
try:
    import bulk
except ImportError:
    bulk = None

JSON_CT = "application/json;charset=UTF-8"
SEASONS = ("Winter", "Spring", "Summer")
DAY = 86400
NOT_FOUND = "The requested resource does not exist"
MAX_URI = 16384
QUERY_FAULTS = ("", "missing", "null", "empty")     # a page that says done:false without a usable nextRecordsUrl
BULK_FAULTS = ("", "empty", "header_only")         # a Bulk results page without its records
MAX_CHILD_CURSORS = 100000     # child-set locators kept (oldest dropped); they also expire with --cursor-timeout
LIMIT_APPS = ("sfengine", "Salesforce Mobile Dashboards", "Salesforce for Outlook")


def version_label(v):
    idx = v - 20
    return "%s '%02d" % (SEASONS[idx % 3], 11 + idx // 3)


def error_body(code, message, fields=None):
    e = {"message": message, "errorCode": code}
    if fields is not None:
        e["fields"] = fields
    return [e]


def record_errors_to_top(errors):
    """per-record errors (statusCode) -> top-level error array (errorCode)"""
    out = []
    for e in errors:
        d = {}
        if "duplicateResut" in e:
            d["duplicateResut"] = e["duplicateResut"]
        d["message"] = e["message"]
        d["errorCode"] = e["statusCode"]
        if e.get("fields"):
            d["fields"] = e["fields"]
        out.append(d)
    return out


MAX_INFLATED = 256 * 1024 * 1024     # a request body may not inflate past this (a gzip bomb is refused)


def decode_body(headers, body):
    """-> (body, None) with Content-Encoding gzip/deflate undone, or (body, message) when it cannot be.
    Salesforce decompresses gzip and deflate request bodies before processing them; a corrupt one is
    answered 400 here (its exact wording on Salesforce is unconfirmed)."""
    enc = (headers.get("Content-Encoding") or "").strip().lower()
    if enc in ("", "identity") or not body:
        return body, None
    if enc not in ("gzip", "x-gzip", "deflate"):
        return body, "Unsupported Content-Encoding: %s (use gzip or deflate)" % enc
    if enc == "deflate":
        attempts = (zlib.MAX_WBITS, -zlib.MAX_WBITS)     # zlib-wrapped, as HTTP says; raw deflate as some send
    else:
        attempts = (16 + zlib.MAX_WBITS,)
    for wbits in attempts:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, MAX_INFLATED)
        except zlib.error as e:
            err = str(e)
            continue
        if d.unconsumed_tail:
            return body, "The request body inflates past %d bytes" % MAX_INFLATED
        if not d.eof:
            err = "truncated stream"
            continue
        return out, None
    return body, "The request body could not be decompressed (Content-Encoding: %s): %s" % (enc, err)


def _mix64(x):
    m = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


class CIDict(dict):
    """request headers: a dict with lower-case keys whose get/[]/in ignore case"""

    def __init__(self, items=()):
        super().__init__()
        for k, v in items:
            super().__setitem__(k.lower(), v)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __contains__(self, k):
        return super().__contains__(k.lower())


class Usage:
    """API calls on a rolling 24-hour window of the emulator clock"""

    def __init__(self, saved=None):
        self.q = collections.deque(tuple(x) for x in (saved or ()))
        self.total = sum(c for _, c in self.q)

    def _prune(self, now):
        cut = now - DAY
        q = self.q
        while q and q[0][0] <= cut:
            self.total -= q.popleft()[1]

    def add(self, now, n=1):
        sec = int(now)
        if self.q and self.q[-1][0] == sec:
            self.q[-1] = (sec, self.q[-1][1] + n)
        else:
            self.q.append((sec, n))
        self.total += n
        self._prune(now)

    def used(self, now):
        self._prune(now)
        return self.total

    def clear(self):
        self.q.clear()
        self.total = 0

    def dump(self):
        return [list(x) for x in self.q]


class Cursor:
    """An open query locator: the rows of one query (or one parent's child set), paged on demand.
    `subs` names the child-relationship keys of the rows (their child sets are truncated per page)."""
    __slots__ = ("rows", "total", "batch", "version", "last_used", "cache", "subs", "child_locs", "lock")

    def __init__(self, rows, total, batch, version, now, subs=()):
        self.rows, self.total, self.batch, self.version, self.last_used = rows, total, batch, version, now
        self.cache = {}
        self.subs = list(subs)
        self.child_locs = {}       # (row index, relationship) -> locator of that child set
        self.lock = threading.Lock()


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.headers = headers or {}
        self.body = body


def jresp(status, obj, headers=None):
    h = {"Content-Type": JSON_CT}
    if headers:
        h.update(headers)
    return Response(status, json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), h)


def jerr(status, code, message, fields=None):
    return jresp(status, error_body(code, message, fields))


class BulkCtx:
    """what bulk.handle(...) gets as ctx (the contract is written at the top of bulk.py)"""

    def __init__(self, app, version):
        self.app = app
        self.db = app.store.db(version)
        self.store = app.store
        self.soql = soql
        self.clock = app.clock
        self.api_version = version
        self.base_url = app.base_url
        self.lock = app.store.lock
        self.user_id = USER_ID
        self.bulk_jobs = app.bulk_jobs
        self.bulk_polls_in_progress = app.cfg["bulk_polls_in_progress"]
        self.bulk_max_records = app.cfg["bulk_max_records"]

    def now(self):
        return self.clock.now()

    def write(self, obj, op, record, external_id_field=None):
        """-> (ok, id, created, errors) for one ingest row"""
        store = self.store
        canon = store.schema.object_name(obj) or obj
        try:
            if op == "insert":
                r = store.create(canon, record, version=self.api_version)
            elif op == "update":
                fields = {k: v for k, v in record.items() if k.lower() != "id"}
                rid = next((v for k, v in record.items() if k.lower() == "id"), None)
                if not rid:
                    return False, None, False, [{"statusCode": "MISSING_ARGUMENT", "message": "Id not specified in "
                                                 "an update call", "fields": []}]
                r = store.update(canon, rid, fields, version=self.api_version)
            elif op == "delete":
                rid = next((v for k, v in record.items() if k.lower() == "id"), None)
                r = store.delete(canon, rid or "", version=self.api_version)
            elif op == "upsert":
                value = next((v for k, v in record.items() if k.lower() == (external_id_field or "").lower()), None)
                r = store.upsert(canon, external_id_field, value, record, version=self.api_version)
            else:
                raise ValueError("unknown bulk operation %s" % op)
        except RequestError as e:
            return False, None, False, [{"statusCode": e.code, "message": e.message, "fields": e.fields or []}]
        return r["success"], r.get("id"), bool(r.get("created")), r["errors"]

    def results_fault(self):
        """-> (kind or None, "actual"|"zero"): the fault injected into this Bulk query results page"""
        app = self.app
        with app.lock:
            kind = app._take_fault("bulk_results")
            if kind:
                key = "bulk_results_" + kind
                app.stats["injected"][key] = app.stats["injected"].get(key, 0) + 1
            return kind, app.cfg["bulk_results_fault_count"]

    def use_limit(self, name, n=1):
        """count against a /limits entry such as DailyBulkV2QueryJobs"""
        with self.app.lock:
            self.app.limit_used[name] = self.app.limit_used.get(name, 0) + n


class App:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.clock = Clock(args.clock)
        self.store = Store(Schema(), self.clock, seed=args.seed)
        self.store.set_username(args.username)
        self.store.set_org(name=args.org_name, sandbox=args.sandbox)
        self.store.late_commit_seconds = args.late_commit_seconds
        self.api_version = args.api_version
        self.max_version = float(args.api_version)
        self.base_url = ""
        self.cfg = {
            "api_limit": args.api_limit, "fail_rate": args.fail_rate,
            "fail_kinds": [k.strip() for k in args.fail_kinds.split(",") if k.strip()],
            "session_calls": args.session_calls, "session_seconds": args.session_seconds,
            "latency_ms": args.latency_ms, "slow_ms": args.slow_ms, "api_disabled": False,
            "max_cursors": args.max_cursors, "cursor_timeout": args.cursor_timeout,
            "bulk_polls_in_progress": args.bulk_polls_in_progress, "bulk_max_records": args.bulk_max_records,
            "child_inline": args.child_inline, "child_rows_in_batch": not args.child_rows_not_in_batch,
            "query_fault": args.query_fault or "", "query_fault_skip": args.query_fault_skip,
            "query_fault_times": args.query_fault_times,
            "bulk_results_fault": args.bulk_results_fault or "", "bulk_results_fault_skip": args.bulk_results_fault_skip,
            "bulk_results_fault_times": args.bulk_results_fault_times,
            "bulk_results_fault_count": args.bulk_results_fault_count,
            "long_running_limit": args.long_running_limit, "long_running_seconds": args.long_running_seconds,
        }
        self.in_flight = {}          # request number -> monotonic start, of /services requests being served
        self._check_faults(self.cfg)
        for k in self.cfg["fail_kinds"]:
            if k not in ("503", "drop", "slow", "500", "502"):
                raise SystemExit("--fail-kinds: unknown kind %r (use 503,500,502,drop,slow)" % k)
        self.usage = Usage()
        self.limit_used = {}
        self.cursors = collections.OrderedDict()
        self.child_cursors = collections.OrderedDict()    # locators of truncated child sets
        self.fault_seen = {}                               # fault kind -> eligible responses seen
        self.bulk_jobs = bulk.Jobs() if bulk is not None and hasattr(bulk, "Jobs") else None
        self.request_no = 0
        self.reset_stats()
        self.persist = args.persist
        self.log_fh = open(args.request_log, "a", encoding="utf-8", buffering=1) if args.request_log else None
        self._load_data()
        for rule in args.duplicate_rule or ():
            self._add_dup_rule(rule)
        self.auth = auth_mod.Auth(self.clock, ORG_ID, USER_ID, username=args.username, password=args.password,
                                  security_token=args.security_token, client_id=args.client_id,
                                  client_secret=args.client_secret, refresh_token=args.refresh_token,
                                  jwt_cert=args.jwt_cert, session_seconds=args.session_seconds,
                                  session_calls=args.session_calls, sandbox=args.sandbox,
                                  audiences=args.jwt_audience)

    # -- setup ----------------------------------------------------------------------------
    def _load_data(self):
        a = self.args
        if self.persist and os.path.exists(self.persist):
            doc = self.store.load(self.persist)
            self.store.set_org(name=a.org_name, sandbox=a.sandbox)
            self.usage = Usage(doc.get("usage"))
            self.limit_used = doc.get("limit_used", {})
            return
        for path in a.data or ():
            self._load_path(path)
        if a.generate:
            try:
                gen_mod.generate(self.store, gen_mod.parse_spec(a.generate), a.seed)
            except ValueError as e:
                raise SystemExit(str(e))
        self.store.dirty = bool(self.persist)

    def _load_path(self, path):
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            if "objects.json" in names:
                self._load_file(os.path.join(path, "objects.json"))
            for n in names:
                if n != "objects.json" and (n.endswith(".json") or n.endswith(".ndjson")):
                    self._load_file(os.path.join(path, n))
        elif os.path.exists(path):
            self._load_file(path)
        else:
            raise SystemExit("--data: %s does not exist" % path)

    def _load_file(self, path):
        base = os.path.basename(path)
        try:
            if base == "objects.json":
                with open(path, encoding="utf-8") as fh:
                    self.store.apply_schema(json.load(fh))
                return
            stem = base.rsplit(".", 1)[0]
            obj = self.store.schema.object_name(stem)
            if obj is None:
                raise SystemExit("--data: %s: unknown object %s (declare custom objects in objects.json)" % (path, stem))
            with open(path, encoding="utf-8") as fh:
                if base.endswith(".ndjson"):
                    rows = [json.loads(line) for line in fh if line.strip()]
                else:
                    rows = json.load(fh)
                    if isinstance(rows, dict):
                        rows = rows.get("records", [])
            for row in rows:
                self.store.put_raw(obj, self._normalize_row(obj, row))
        except (ValueError, SchemaError) as e:
            raise SystemExit("--data: %s: %s" % (path, e))

    def _normalize_row(self, obj, row):
        out = {}
        for k, v in row.items():
            if k == "attributes":
                continue
            fd = self.store.schema.field(obj, k)
            if fd is None:
                raise ValueError("no field %s on %s" % (k, obj))
            if v is not None and fd["type"] == "datetime" and isinstance(v, str):
                e = parse_datetime(v)
                if e is None:
                    raise ValueError("%s.%s: bad datetime %r" % (obj, k, v))
                v = sf_datetime(e)
            if v is not None and fd["type"] in ("id", "reference") and isinstance(v, str):
                v18 = to18(v)
                if v18 is None:
                    raise ValueError("%s.%s: bad id %r" % (obj, k, v))
                v = v18
            out[fd["name"]] = v
        return out

    def _add_dup_rule(self, rule):
        obj, _, field = rule.partition(":")
        o = self.store.schema.object_name(obj.strip())
        fd = self.store.schema.field(o, field.strip()) if o else None
        if fd is None:
            raise ValueError("duplicate rule %r: unknown object or field" % rule)
        if (o, fd["name"]) not in self.store.dup_rules:
            self.store.dup_rules.append((o, fd["name"]))

    def reset_stats(self):
        with self.lock:
            self.stats = {"api_calls": 0, "by_endpoint": {}, "logins": 0, "login_failures": 0, "writes": 0,
                          "requests": 0, "rejected": {}, "injected": {}, "rows_served": 0,
                          "child_rows_served": 0, "in_flight_max": 0}
            self.written_base = self.store.written

    def save(self):
        if not self.persist:
            return
        with self.lock:
            extra = {"usage": self.usage.dump(), "limit_used": dict(self.limit_used)}
        self.store.save(self.persist, extra)

    def log(self, method, path, status, counted, endpoint, started):
        if not self.log_fh:
            return
        line = json.dumps({"ts": sf_datetime(self.clock.now()), "method": method, "path": path, "status": status,
                           "counted": counted, "endpoint": endpoint,
                           "ms": round((time.monotonic() - started) * 1000, 1)}, ensure_ascii=False)
        with self.lock:
            self.log_fh.write(line + "\n")

    # -- request entry --------------------------------------------------------------------
    def handle(self, h, method):
        started = time.monotonic()
        raw = h.path
        split = urllib.parse.urlsplit(raw)
        path = split.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        headers = CIDict(h.headers.items())
        if path.startswith("/__emulator/"):
            body = h.read_body()
            resp = self.introspect(method, path, query, body)
            h.send(resp, method)
            return
        # failure injection and latency apply to everything under /services and /id
        with self.lock:
            self.request_no += 1
            n = self.request_no
            self.stats["requests"] += 1
            cfg = dict(self.cfg)
            long_running = sum(1 for t in self.in_flight.values() if started - t >= cfg["long_running_seconds"])
            self.in_flight[n] = started
            if len(self.in_flight) > self.stats["in_flight_max"]:
                self.stats["in_flight_max"] = len(self.in_flight)
        try:
            if cfg["long_running_limit"] and long_running >= cfg["long_running_limit"] and \
                    path.startswith("/services/data/v"):
                # Salesforce's limit on concurrent long-running requests (25 over 20 s in production)
                h.read_body()
                self._reject("403")
                resp = jerr(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
                resp.headers["Sforce-Limit-Info"] = self._limit_header()
                self.log(method, raw, 403, False, "rejected", started)
                h.send(resp, method)
                return
            self._serve(h, method, started, raw, path, query, headers, n, cfg)
        finally:
            with self.lock:
                self.in_flight.pop(n, None)

    def _serve(self, h, method, started, raw, path, query, headers, n, cfg):
        kind = self._fail_kind(n, cfg)
        if kind:
            with self.lock:
                self.stats["injected"][kind] = self.stats["injected"].get(kind, 0) + 1
        if kind == "drop":
            self.log(method, raw, 0, False, "dropped", started)
            h.drop()
            return
        if cfg["latency_ms"]:
            time.sleep(cfg["latency_ms"] / 1000.0)
        if kind == "slow":
            time.sleep(cfg["slow_ms"] / 1000.0)
        if kind in ("503", "500", "502"):
            h.read_body()
            status = int(kind)
            if status == 503:
                resp = jerr(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later.")
            elif status == 500:
                resp = jerr(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId "
                            "if you contact support: 1234567890-12345 (-1234567890)")
            else:
                resp = Response(502, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"})
            if path.startswith("/services/data/v"):
                resp.headers["Sforce-Limit-Info"] = self._limit_header()
            self.log(method, raw, status, False, "injected", started)
            h.send(resp, method)
            return
        if len(raw) > MAX_URI:
            h.read_body()
            resp = jerr(414, "URI_TOO_LONG", "The request URI is too long (limit %d bytes)" % MAX_URI)
            self.log(method, raw, 414, False, "rejected", started)
            h.send(resp, method)
            return
        body = h.read_body()
        try:
            resp, counted, endpoint = self.route(method, path, query, headers, body)
        except Exception:                      # noqa: BLE001 - report as Salesforce does
            traceback.print_exc()
            resp, counted, endpoint = jerr(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include "
                                           "this ErrorId if you contact support: 0000000000-00000 (0)"), False, "error"
            if path.startswith("/services/data/v"):
                resp.headers["Sforce-Limit-Info"] = self._limit_header()
        self.log(method, raw, resp.status, counted, endpoint, started)
        h.send(resp, method)

    def _fail_kind(self, n, cfg):
        rate = cfg["fail_rate"]
        kinds = cfg["fail_kinds"]
        if not rate or not kinds:
            return None
        seed = self.args.seed
        u = _mix64((seed << 32) ^ n) / float(1 << 64)
        if u >= rate:
            return None
        return kinds[_mix64((seed << 32) ^ n ^ 0x5DEECE66D) % len(kinds)]

    def _limit_header(self):
        with self.lock:
            return "api-usage=%d/%d" % (self.usage.used(self.clock.now()), self.cfg["api_limit"])

    # -- routing --------------------------------------------------------------------------
    def route(self, method, path, query, headers, body):
        """-> (Response, counted, endpoint)"""
        body, bad = decode_body(headers, body)
        if path == "/services/oauth2/token":
            if bad:
                return jresp(400, {"error": "invalid_request", "error_description": bad}), False, "token"
            return self.token(method, headers, body)
        if path.rstrip("/") == "/services/oauth2/userinfo":
            return self.userinfo(headers), False, "userinfo"
        if path.rstrip("/") == "/services/data":
            if method not in ("GET", "HEAD"):
                return jerr(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are GET,HEAD" % method), \
                    False, "versions"
            mx = int(self.max_version)
            out = [{"label": version_label(v), "url": "/services/data/v%d.0" % v, "version": "%d.0" % v}
                   for v in range(20, mx + 1)]
            return jresp(200, out), False, "versions"
        if path.startswith("/id/"):
            return self.identity(headers), False, "identity"
        if not path.startswith("/services/data/v"):
            return jerr(404, "NOT_FOUND", NOT_FOUND), False, "other"
        rest = path[len("/services/data/v"):]
        ver, _, sub = rest.partition("/")
        try:
            fv = float(ver)
            ok = ver.count(".") == 1 and 20.0 <= fv <= self.max_version and fv == int(fv)
        except ValueError:
            ok = False
        if not ok:
            r = jerr(404, "NOT_FOUND", NOT_FOUND)
            return r, False, "other"
        version = "%d.0" % int(fv)
        # authentication (401s are not counted)
        token = self._bearer(headers)
        if not token or not self.auth.check(token):
            r = jerr(401, "INVALID_SESSION_ID", "Session expired or invalid")
            r.headers["WWW-Authenticate"] = "Token"
            r.headers["Sforce-Limit-Info"] = self._limit_header()
            self._reject("401")
            return r, False, "unauthorized"
        with self.lock:
            if self.cfg["api_disabled"]:
                self.stats["rejected"]["403"] = self.stats["rejected"].get("403", 0) + 1
                r = jerr(403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization.")
                r.headers["Sforce-Limit-Info"] = "api-usage=%d/%d" % (self.usage.used(self.clock.now()),
                                                                       self.cfg["api_limit"])
                return r, False, "rejected"
            now = self.clock.now()
            used = self.usage.used(now)
            limit = self.cfg["api_limit"]
            if used >= limit:
                self.stats["rejected"]["403"] = self.stats["rejected"].get("403", 0) + 1
                r = jerr(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                r.headers["Sforce-Limit-Info"] = "api-usage=%d/%d" % (used, limit)
                return r, False, "rejected"
            self.usage.add(now)
            used += 1
            self.stats["api_calls"] += 1
        self.auth.use(token)
        limit_header = "api-usage=%d/%d" % (used, limit)
        segs = [urllib.parse.unquote(s) for s in sub.split("/")]
        if segs and segs[-1] == "" and len(segs) > 1:
            trailing = True
            segs = segs[:-1]
        else:
            trailing = False
        ctx = {"version": version, "headers": headers, "query": query, "body": body, "method": method,
               "trailing": trailing, "used": used}
        try:
            if bad:
                raise RequestError(400, "JSON_PARSER_ERROR", bad)
            resp, endpoint = self.api(method, segs, ctx, sub)
        except RequestError as e:
            resp, endpoint = jresp(e.status, e.body()), ctx.get("endpoint", "other")
        with self.lock:
            be = self.stats["by_endpoint"]
            be[endpoint] = be.get(endpoint, 0) + 1
        resp.headers["Sforce-Limit-Info"] = limit_header
        return resp, True, endpoint

    def _reject(self, code):
        with self.lock:
            self.stats["rejected"][code] = self.stats["rejected"].get(code, 0) + 1

    @staticmethod
    def _bearer(headers):
        a = headers.get("Authorization") or ""
        parts = a.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in ("bearer", "oauth"):
            return parts[1].strip()
        return None

    def api(self, method, segs, ctx, sub):
        """-> (Response, endpoint name)"""
        head = segs[0] if segs else ""
        if head == "" and len(segs) <= 1:
            v = ctx["version"]
            b = "/services/data/v%s/" % v
            res = {k: b + k for k in ("tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing",
                                      "jsonxform", "chatter", "tabs", "appMenu", "quickActions", "queryAll",
                                      "commerce", "wave", "iot", "analytics", "search", "identity", "composite",
                                      "parameterizedSearch", "fingerprint", "theme", "nouns", "domino", "event",
                                      "serviceTemplates", "recent", "connect", "licensing", "limits", "process",
                                      "async-queries", "query", "match", "emailConnect", "compactLayouts",
                                      "knowledgeManagement", "sobjects", "actions", "support", "jobs", "ui-api")}
            res["identity"] = "%s/id/%s/%s" % (self.base_url, ORG_ID, USER_ID)
            return self._only(method, ("GET", "HEAD")) or jresp(200, res), "resources"
        if head == "limits" and len(segs) == 1:
            return self._only(method, ("GET", "HEAD")) or self.limits(ctx), "limits"
        if head in ("query", "queryAll"):
            return self.query_route(method, segs, ctx)
        if head == "sobjects":
            return self.sobjects_route(method, segs[1:], ctx)
        if head == "composite" and len(segs) >= 2 and segs[1] == "sobjects":
            return self.composite_route(method, segs[2:], ctx), "composite_sobjects"
        if head == "jobs":
            if bulk is None:
                return jerr(404, "NOT_FOUND", NOT_FOUND), "jobs"
            return self.bulk_route(method, sub, ctx), "jobs"
        return jerr(404, "NOT_FOUND", NOT_FOUND), "other"

    @staticmethod
    def _only(method, allowed):
        if method in allowed:
            return None
        return jerr(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are %s" % (method, ",".join(allowed)))

    # -- oauth ----------------------------------------------------------------------------
    def token(self, method, headers, body):
        if method != "POST":
            return jresp(400, {"error": "invalid_request", "error_description": "must use HTTP POST"}), False, "token"
        ct = (headers.get("Content-Type") or "").lower()
        text = body.decode("utf-8", "replace")
        if "json" in ct:
            try:
                form = {k: str(v) for k, v in json.loads(text).items()}
            except (ValueError, AttributeError):
                form = {}
        else:
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
        # client credentials may come as HTTP Basic auth
        a = headers.get("Authorization") or ""
        if a.lower().startswith("basic "):
            import base64
            try:
                cid, _, sec = base64.b64decode(a[6:].strip()).decode().partition(":")
                form.setdefault("client_id", urllib.parse.unquote(cid))
                form.setdefault("client_secret", urllib.parse.unquote(sec))
            except ValueError:
                pass
        self.auth.base_url = self.base_url
        self.auth.session_seconds = self.cfg["session_seconds"]
        status, out = self.auth.token(form)
        with self.lock:
            self.stats["logins" if status == 200 else "login_failures"] += 1
        r = jresp(status, out)
        r.headers["Cache-Control"] = "no-cache,must-revalidate,max-age=0,no-store,private"
        return r, False, "token"

    def id_url(self):
        return "%s/id/%s/%s" % (self.base_url, ORG_ID, USER_ID)

    def userinfo(self, headers):
        """OpenID Connect userinfo, as Salesforce shapes it (not an API call)"""
        token = self._bearer(headers)
        if not token or not self.auth.check(token):
            return Response(403, b"Bad_OAuth_Token", {"Content-Type": "text/plain"})
        u = self.store.tables["User"][USER_ID]
        org = self.store.tables["Organization"][ORG_ID]
        b = self.base_url
        soap = b + "/services/Soap/%s/{version}/" + ORG_ID[:15]
        rest = b + "/services/data/v{version}/"
        return jresp(200, {
            "sub": self.id_url(), "user_id": USER_ID, "organization_id": ORG_ID,
            "preferred_username": u["Username"], "nickname": u["Alias"], "name": u["Name"], "email": u["Email"],
            "email_verified": True, "given_name": u["FirstName"], "family_name": u["LastName"],
            "zoneinfo": org.get("TimeZoneSidKey") or "GMT",
            "photos": {"picture": b + "/profilephoto/005/F", "thumbnail": b + "/profilephoto/005/T"},
            "profile": b + "/" + USER_ID, "picture": b + "/profilephoto/005/F",
            "address": {"country": org.get("Country") or "US"}, "is_salesforce_integration_user": False,
            "urls": {"enterprise": soap % "c", "metadata": soap % "m", "partner": soap % "u",
                     "rest": rest, "sobjects": rest + "sobjects/", "search": rest + "search/",
                     "query": rest + "query/", "recent": rest + "recent/", "tooling_soap": soap % "T",
                     "tooling_rest": rest + "tooling/", "profile": b + "/" + USER_ID,
                     "feeds": rest + "chatter/feeds", "groups": rest + "chatter/groups",
                     "users": rest + "chatter/users", "feed_items": rest + "chatter/feed-items",
                     "feed_elements": rest + "chatter/feed-elements", "custom_domain": b},
            "active": True, "user_type": "STANDARD", "language": org.get("LanguageLocaleKey") or "en_US",
            "locale": org.get("DefaultLocaleSidKey") or "en_US", "utcOffset": 0,
            "updated_at": (u.get("LastModifiedDate") or "")[:19] + "Z", "is_app_installed": True})

    def identity(self, headers):
        token = self._bearer(headers)
        if not token or not self.auth.check(token):
            return Response(403, b"Bad_OAuth_Token", {"Content-Type": "text/plain"})
        u = self.store.tables["User"][USER_ID]
        return jresp(200, {"id": self.id_url(), "asserted_user": True,
                           "user_id": USER_ID, "organization_id": ORG_ID, "username": u["Username"],
                           "display_name": u["Name"], "email": u["Email"], "active": True, "user_type": "STANDARD",
                           "language": "en_US", "locale": "en_US", "utcOffset": 0,
                           "urls": {"rest": self.base_url + "/services/data/v{version}/",
                                    "query": self.base_url + "/services/data/v{version}/query/",
                                    "sobjects": self.base_url + "/services/data/v{version}/sobjects/"}})

    # -- limits ---------------------------------------------------------------------------
    def limits(self, ctx):
        mx = self.cfg["api_limit"]
        used = ctx["used"]
        lu = self.limit_used

        def lim(name, m):
            return {"Max": m, "Remaining": max(0, m - lu.get(name, 0))}
        api = {"Max": mx, "Remaining": max(0, mx - used)}
        for app in LIMIT_APPS:
            api[app] = {"Max": 0, "Remaining": 0}
        out = {
            "ActiveScratchOrgs": lim("ActiveScratchOrgs", 3),
            "AnalyticsExternalDataSizeMB": lim("AnalyticsExternalDataSizeMB", 40960),
            "ConcurrentAsyncGetReportInstances": lim("ConcurrentAsyncGetReportInstances", 200),
            "ConcurrentSyncReportRuns": lim("ConcurrentSyncReportRuns", 20),
            "DailyAnalyticsDataflowJobExecutions": lim("DailyAnalyticsDataflowJobExecutions", 60),
            "DailyApiRequests": api,
            "DailyAsyncApexExecutions": lim("DailyAsyncApexExecutions", 250000),
            "DailyBulkApiBatches": lim("DailyBulkApiBatches", 15000),
            "DailyBulkV2QueryFileStorageMB": lim("DailyBulkV2QueryFileStorageMB", 976562),
            "DailyBulkV2QueryJobs": lim("DailyBulkV2QueryJobs", 10000),
            "DailyDurableGenericStreamingApiEvents": lim("DailyDurableGenericStreamingApiEvents", 10000),
            "DailyDurableStreamingApiEvents": lim("DailyDurableStreamingApiEvents", 10000),
            "DailyGenericStreamingApiEvents": lim("DailyGenericStreamingApiEvents", 10000),
            "DailyStandardVolumePlatformEvents": lim("DailyStandardVolumePlatformEvents", 10000),
            "DailyStreamingApiEvents": lim("DailyStreamingApiEvents", 10000),
            "DailyWorkflowEmails": lim("DailyWorkflowEmails", 1890),
            "DataStorageMB": {"Max": 1024, "Remaining": 1024 - min(1024, self._records_mb())},
            "FileStorageMB": lim("FileStorageMB", 10240),
            "HourlyAsyncReportRuns": lim("HourlyAsyncReportRuns", 1200),
            "HourlyDashboardRefreshes": lim("HourlyDashboardRefreshes", 200),
            "HourlyODataCallout": lim("HourlyODataCallout", 20000),
            "HourlyPublishedPlatformEvents": lim("HourlyPublishedPlatformEvents", 50000),
            "HourlySyncReportRuns": lim("HourlySyncReportRuns", 500),
            "MassEmail": lim("MassEmail", 10),
            "SingleEmail": lim("SingleEmail", 15),
        }
        return jresp(200, out)

    def _records_mb(self):
        n = sum(len(t) for t in self.store.tables.values())
        return n * 2 // 1024        # Salesforce counts 2 KB per record

    # -- query ----------------------------------------------------------------------------
    def _batch_size(self, headers, default=2000):
        opt = headers.get("Sforce-Query-Options") or ""
        for part in opt.replace(";", ",").split(","):
            k, _, v = part.strip().partition("=")
            if k.strip().lower() == "batchsize":
                try:
                    n = int(v.strip())
                except ValueError:
                    return default
                return max(200, min(2000, n))
        return default

    def query_route(self, method, segs, ctx):
        head = segs[0]
        if len(segs) == 1:
            endpoint = "query" if head == "query" else "query_all"
            ctx["endpoint"] = endpoint
            bad = self._only(method, ("GET", "HEAD"))
            if bad:
                return bad, endpoint
            q = ctx["query"].get("q")
            if q is None or not q.strip():
                return jerr(400, "MALFORMED_QUERY", "A query string has to be specified"), endpoint
            return self.run_query(q, head == "queryAll", ctx), endpoint
        if len(segs) == 2:
            ctx["endpoint"] = "query_more"
            if method == "DELETE":
                with self.lock:
                    self.cursors.pop(segs[1].rsplit("-", 1)[0], None)
                    self.child_cursors.pop(segs[1].rsplit("-", 1)[0], None)
                return Response(204), "query_more"
            bad = self._only(method, ("GET", "HEAD"))
            if bad:
                return bad, "query_more"
            return self.query_more(segs[1], ctx), "query_more"
        return jerr(404, "NOT_FOUND", NOT_FOUND), "other"

    def run_query(self, q, include_deleted, ctx):
        version = ctx["version"]
        db = self.store.db(version)
        columns = (ctx["query"].get("columns") or "").lower() == "true"
        try:
            with self.store.lock:
                compiled = soql.compile_query(q, db, include_deleted=include_deleted)
                if columns:
                    return jresp(200, columns_mod.metadata(compiled, self.store.schema))
                total, rows = compiled.execute()
        except soql.SoqlError as e:
            return jresp(getattr(e, "status", 400), error_body(e.error_code, e.message))
        batch = self._batch_size(ctx["headers"])
        subs = [node[1] for node in compiled.plan.nodes if node[0] == "s"]
        now = self.clock.now()
        cur = Cursor(rows, total, batch, version, now, subs)
        with self.lock:
            inline, counted = self.cfg["child_inline"], self.cfg["child_rows_in_batch"]
        if self._span(cur, 0, batch, inline, counted) >= len(rows):
            return self._page_response(None, cur, 0, batch)     # one page: no locator is opened
        loc = self.store.new_locator()
        with self.lock:
            self._expire_cursors(now)
            self.cursors[loc] = cur
            while len(self.cursors) > max(1, self.cfg["max_cursors"]):
                self.cursors.popitem(last=False)
        return self._page_response(loc, cur, 0, batch)

    def _expire_cursors(self, now):
        to = self.cfg["cursor_timeout"]
        if not to:
            return
        for pool in (self.cursors, self.child_cursors):
            for loc in [k for k, c in pool.items() if now - c.last_used > to]:
                del pool[loc]

    def _span(self, cur, offset, size, inline, counted):
        """end index of the page that starts at offset: `size` records, where (as Salesforce counts the
        batch size) the inline rows of child sets count too, so a page holds fewer parents when their
        children add up; at least one parent per page."""
        n = len(cur.rows)
        if not cur.subs or not counted:
            return min(n, offset + size)
        used, i = 0, offset
        while i < n:
            r = cur.rows[i]
            w = 1
            for k in cur.subs:
                c = r.get(k)
                if c:
                    k_n = len(c["records"])
                    w += min(k_n, inline) if inline > 0 else k_n
            if i > offset and used + w > size:
                break
            used += w
            i += 1
        return i

    def _child_sets(self, cur, offset, end, inline):
        """the page's rows with every child set larger than `inline` cut to its first `inline` rows,
        done:false and a nextRecordsUrl of its own (a locator kept per parent row and relationship)"""
        page = cur.rows[offset:end]
        if not cur.subs or inline <= 0:
            return page
        out = []
        for i, r in enumerate(page, offset):
            big = [k for k in cur.subs if r.get(k) and len(r[k]["records"]) > inline]
            if big:
                r = dict(r)
                for k in big:
                    full = r[k]["records"]
                    loc = cur.child_locs.get((i, k))
                    if loc is None:
                        loc = self.store.new_locator()
                        child = Cursor(full, len(full), cur.batch, cur.version, self.clock.now())
                        with self.lock:
                            self.child_cursors[loc] = child
                            while len(self.child_cursors) > MAX_CHILD_CURSORS:
                                self.child_cursors.popitem(last=False)
                        cur.child_locs[(i, k)] = loc
                    r[k] = {"totalSize": len(full), "done": False,
                            "nextRecordsUrl": "/services/data/v%s/query/%s-%d" % (cur.version, loc, inline),
                            "records": full[:inline]}
            out.append(r)
        return out

    def _render(self, loc, cur, offset, size):
        """-> (total, next_url or None, records JSON bytes, parents, child rows) of one page, cached per cursor"""
        with self.lock:
            inline, counted = self.cfg["child_inline"], self.cfg["child_rows_in_batch"]
        key = (offset, size, inline, counted)
        with cur.lock:
            hit = cur.cache.get(key)
            if hit is not None:
                return hit
            end = self._span(cur, offset, size, inline, counted)
            page = self._child_sets(cur, offset, end, inline)
            nxt = "/services/data/v%s/query/%s-%d" % (cur.version, loc, end) if end < len(cur.rows) else None
            recs = json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            kids = sum(len(r[k]["records"]) for r in page for k in cur.subs if r.get(k))
            hit = (cur.total, nxt, recs, len(page), kids)
            if len(cur.cache) >= 4:
                cur.cache.pop(next(iter(cur.cache)))
            cur.cache[key] = hit
            return hit

    def _page_response(self, loc, cur, offset, size):
        total, nxt, recs, parents, kids = self._render(loc, cur, offset, size)
        with self.lock:
            self.stats["rows_served"] += parents
            self.stats["child_rows_served"] += kids
            fault = self._take_fault("query") if nxt else None
        if fault:
            with self.lock:
                self.stats["injected"]["query_" + fault] = self.stats["injected"].get("query_" + fault, 0) + 1
            tail = {"missing": "", "null": '"nextRecordsUrl":null,', "empty": '"nextRecordsUrl":"",'}[fault]
            head = '{"totalSize":%d,"done":false,%s"records":' % (total, tail)
        elif nxt:
            head = '{"totalSize":%d,"done":false,"nextRecordsUrl":"%s","records":' % (total, nxt)
        else:
            head = '{"totalSize":%d,"done":true,"records":' % total
        return Response(200, head.encode() + recs + b"}", {"Content-Type": JSON_CT})

    def _take_fault(self, kind):
        """an armed fault of this kind ("query" pages, "bulk" results pages) for this response, or None;
        call with self.lock held. The first `<kind>_fault_skip` eligible responses pass, then
        `<kind>_fault_times` of them (0: all) are damaged."""
        cfg = self.cfg
        what = cfg[kind + "_fault"]
        if not what:
            return None
        seen = self.fault_seen.get(kind, 0) + 1
        self.fault_seen[kind] = seen
        if seen <= cfg[kind + "_fault_skip"]:
            return None
        times = cfg[kind + "_fault_times"]
        if times and seen > cfg[kind + "_fault_skip"] + times:
            return None
        return what

    def query_more(self, token, ctx):
        loc, _, off = token.rpartition("-")
        now = self.clock.now()
        with self.lock:
            self._expire_cursors(now)
            cur = self.cursors.get(loc)
            pool = self.cursors
            if cur is None:
                cur, pool = self.child_cursors.get(loc), self.child_cursors
            if cur is not None:
                cur.last_used = now
                pool.move_to_end(loc)
        if cur is None or not off.isdigit() or int(off) >= len(cur.rows) or int(off) <= 0:
            return jerr(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        size = self._batch_size(ctx["headers"], cur.batch)
        return self._page_response(loc, cur, int(off), size)

    # -- sobjects -------------------------------------------------------------------------
    def _obj(self, name, ctx):
        obj = self.store.schema.object_name(name)
        if obj is None:
            raise RequestError(404, "NOT_FOUND", NOT_FOUND)
        return obj

    def sobjects_route(self, method, segs, ctx):
        v = ctx["version"]
        if not segs:
            ctx["endpoint"] = "describe_global"
            bad = self._only(method, ("GET", "HEAD"))
            if bad:
                return bad, "describe_global"
            nm = self._not_modified(ctx)
            if nm:
                return nm, "describe_global"
            body = {"encoding": "UTF-8", "maxBatchSize": 200,
                    "sobjects": [self.store.schema.global_entry(o, v) for o in sorted(self.store.schema.order)]}
            return self._with_lm(jresp(200, body)), "describe_global"
        ctx["endpoint"] = "sobject"
        obj = self._obj(segs[0], ctx)
        if len(segs) == 1:
            if method in ("GET", "HEAD"):
                return jresp(200, {"objectDescribe": self.store.schema.global_entry(obj, v), "recentItems": []}), "sobject"
            if method == "POST":
                return self.create_one(obj, ctx), "sobject"
            return self._only(method, ("GET", "HEAD", "POST")), "sobject"
        second = segs[1]
        if second == "describe" and len(segs) == 2:
            ctx["endpoint"] = "describe"
            bad = self._only(method, ("GET", "HEAD"))
            if bad:
                return bad, "describe"
            nm = self._not_modified(ctx)
            if nm:
                return nm, "describe"
            return self._with_lm(jresp(200, self.store.describe(obj, v))), "describe"
        if second in ("updated", "deleted") and len(segs) == 2:
            ctx["endpoint"] = second
            bad = self._only(method, ("GET", "HEAD"))
            if bad:
                return bad, second
            return self.replication(obj, second, ctx), second
        if len(segs) == 2:
            return self.record_route(method, obj, second, ctx), "sobject"
        if len(segs) == 3:
            return self.ext_route(method, obj, segs[1], segs[2], ctx), "sobject"
        return jerr(404, "NOT_FOUND", NOT_FOUND), "sobject"

    def _not_modified(self, ctx):
        ims = ctx["headers"].get("If-Modified-Since")
        if not ims:
            return None
        try:
            t = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
        if int(self.store.schema_mtime) <= t:
            return Response(304, b"", {})
        return None

    def _with_lm(self, resp):
        resp.headers["Last-Modified"] = email.utils.formatdate(int(self.store.schema_mtime), usegmt=True)
        return resp

    def _allow_save(self, ctx):
        h = ctx["headers"].get("Sforce-Duplicate-Rule-Header") or ""
        for part in h.replace(";", ",").split(","):
            k, _, v = part.strip().partition("=")
            if k.strip().lower() == "allowsave" and v.strip().lower() == "true":
                return True
        return False

    def _json_body(self, ctx, want=(dict,)):
        raw = ctx["body"]
        try:
            doc = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except UnicodeDecodeError:
            raise RequestError(400, "JSON_PARSER_ERROR", "Invalid UTF-8 start byte at [line:1, column:1]")
        except json.JSONDecodeError as e:
            raise RequestError(400, "JSON_PARSER_ERROR", "Unexpected character ('%s' (code %d)): was expecting "
                               "double-quote to start field name at [line:%d, column:%d]" % (
                                   raw.decode("utf-8", "replace")[e.pos:e.pos + 1] or " ",
                                   ord((raw.decode("utf-8", "replace")[e.pos:e.pos + 1] or " ")[0]), e.lineno, e.colno))
        if doc is None:
            raise RequestError(400, "JSON_PARSER_ERROR", "No content to map due to end-of-input at [line:1, column:0]")
        if not isinstance(doc, want):
            what = "START_ARRAY" if isinstance(doc, list) else "VALUE_STRING"
            raise RequestError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of %s out of %s token at "
                               "[line:1, column:1]" % ("object" if dict in want else "array", what))
        return doc

    def _write_stat(self):
        with self.lock:
            self.stats["writes"] += 1

    def create_one(self, obj, ctx):
        doc = self._json_body(ctx)
        self._write_stat()
        res = self.store.create(obj, doc, allow_save=self._allow_save(ctx), version=ctx["version"])
        if not res["success"]:
            return jresp(400, record_errors_to_top(res["errors"]))
        return jresp(201, {"id": res["id"], "success": True, "errors": []},
                     {"Location": "/services/data/v%s/sobjects/%s/%s" % (ctx["version"], obj, res["id"])})

    def _record_json(self, obj, row, version, fields=None):
        sch = self.store.schema
        out = {"attributes": {"type": obj, "url": "/services/data/v%s/sobjects/%s/%s" % (version, obj, row["Id"])}}
        names = fields or [fd["name"] for fd in (sch.fields[obj][s["name"]] for s in sch.specs[obj]["fields"])]
        for n in names:
            fd = sch.fields[obj][n]
            if fd["type"] == "address":
                out[n] = self._address(obj, row, n)
            else:
                out[n] = row.get(n)
        return out

    def _address(self, obj, row, comp):
        parts = {}
        for fd in self.store.schema.fields[obj].values():
            if fd["compoundFieldName"] == comp:
                suffix = fd["name"]
                for key in ("Street", "City", "StateCode", "State", "PostalCode", "CountryCode", "Country",
                            "Latitude", "Longitude", "GeocodeAccuracy"):
                    if suffix.endswith(key):
                        parts[key[0].lower() + key[1:]] = row.get(fd["name"])
                        break
        if all(v is None for v in parts.values()):
            return None
        return dict(sorted(parts.items()))

    def _field_list(self, obj, text):
        out = []
        for f in text.split(","):
            f = f.strip()
            if not f:
                continue
            fd = self.store.schema.field(obj, f)
            if fd is None:
                raise RequestError(400, "INVALID_FIELD", "No such column '%s' on entity '%s'. If you are attempting to "
                                   "use a custom field, be sure to append the '__c' after the custom field name. Please "
                                   "reference your WSDL or the describe call for the appropriate names." % (f, obj))
            out.append(fd["name"])
        return out

    def record_route(self, method, obj, rid_text, ctx):
        v = ctx["version"]
        rid = to18(rid_text)
        if rid is None:
            return jerr(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s" % rid_text)
        if method in ("GET", "HEAD"):
            row = self.store.get(obj, rid)
            if row is None or row.get("IsDeleted"):
                return jerr(404, "NOT_FOUND", NOT_FOUND)
            fields = self._field_list(obj, ctx["query"]["fields"]) if ctx["query"].get("fields") else None
            return jresp(200, self._record_json(obj, row, v, fields))
        if method == "PATCH":
            doc = self._json_body(ctx)
            row = self.store.get(obj, rid)
            if row is None:
                return jerr(404, "NOT_FOUND", NOT_FOUND)
            if row.get("IsDeleted"):
                return jerr(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._write_stat()
            res = self.store.update(obj, rid, doc, allow_save=self._allow_save(ctx), version=v)
            if not res["success"]:
                return jresp(400, record_errors_to_top(res["errors"]))
            return Response(204)
        if method == "DELETE":
            row = self.store.get(obj, rid)
            if row is None:
                return jerr(404, "NOT_FOUND", NOT_FOUND)
            if row.get("IsDeleted"):
                return jerr(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._write_stat()
            res = self.store.delete(obj, rid, version=v)
            if not res["success"]:
                return jresp(400, record_errors_to_top(res["errors"]))
            return Response(204)
        return self._only(method, ("GET", "HEAD", "PATCH", "DELETE"))

    def ext_route(self, method, obj, field, value, ctx):
        v = ctx["version"]
        fname = self.store.ext_field(obj, field)
        if method in ("GET", "HEAD", "DELETE"):
            ids = self.store.upsert_target(obj, fname, value)
            if not ids:
                return jerr(404, "NOT_FOUND", NOT_FOUND)
            if len(ids) > 1:
                return jresp(300, ["/services/data/v%s/sobjects/%s/%s" % (v, obj, i) for i in ids])
            if method == "DELETE":
                self._write_stat()
                self.store.delete(obj, ids[0], version=v)
                return Response(204)
            fields = self._field_list(obj, ctx["query"]["fields"]) if ctx["query"].get("fields") else None
            return jresp(200, self._record_json(obj, self.store.get(obj, ids[0]), v, fields))
        if method not in ("PATCH", "POST"):
            return self._only(method, ("GET", "HEAD", "PATCH", "DELETE"))
        doc = self._json_body(ctx)
        self._write_stat()
        res = self.store.upsert(obj, fname, value, doc, allow_save=self._allow_save(ctx), version=v)
        if res.get("matches"):
            return jresp(300, ["/services/data/v%s/sobjects/%s/%s" % (v, obj, i) for i in res["matches"]])
        if not res["success"]:
            return jresp(400, record_errors_to_top(res["errors"]))
        return jresp(201 if res["created"] else 200, {"id": res["id"], "success": True, "errors": [],
                                                       "created": res["created"]})

    # -- composite sobjects ---------------------------------------------------------------
    def composite_route(self, method, segs, ctx):
        v = ctx["version"]
        allow = self._allow_save(ctx)
        if method == "DELETE" and not segs:
            ids = [i for i in (ctx["query"].get("ids") or "").split(",") if i]
            if not ids:
                return jerr(400, "MISSING_ARGUMENT", "ids parameter is required")
            if len(ids) > 200:
                return jerr(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records "
                            "into this call")
            aon = (ctx["query"].get("allOrNone") or "").lower() == "true"
            ops = []
            for i in ids:
                obj = self.store.schema.prefix_object(i[:3]) if to18(i) else None
                if obj is None:
                    ops.append(("error", [{"statusCode": "MALFORMED_ID", "message": "malformed id %s" % i,
                                           "fields": []}]))
                else:
                    ops.append(("delete", obj, i))
            self._write_stat()
            res = self.store.batch(ops, aon, allow, v)
            for r, i in zip(res, ids):
                if r["success"]:
                    r.pop("created", None)
                else:
                    r["id"] = to18(i) or i
            return jresp(200, res)
        if method == "GET" and len(segs) == 1:
            obj = self._obj(segs[0], ctx)
            ids = [i for i in (ctx["query"].get("ids") or "").split(",") if i]
            fields = self._field_list(obj, ctx["query"].get("fields") or "Id")
            if len(ids) > 2000:
                return jerr(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 2000 records "
                            "into this call")
            out = []
            for i in ids:
                row = self.store.get(obj, i)
                out.append(None if row is None or row.get("IsDeleted") else self._record_json(obj, row, v, fields))
            return jresp(200, out)
        if method not in ("POST", "PATCH"):
            return self._only(method, ("GET", "POST", "PATCH", "DELETE"))
        doc = self._json_body(ctx)
        recs = doc.get("records")
        if not isinstance(recs, list):
            return jerr(400, "INVALID_FIELD", "'records' is required" if recs is None else "'records' must be an array")
        aon = doc.get("allOrNone") is True
        if len(recs) > 200:
            return jerr(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into "
                        "this call")
        sch = self.store.schema
        upsert_obj = upsert_field = None
        if segs:
            if method != "PATCH" or len(segs) != 2:
                return jerr(404, "NOT_FOUND", NOT_FOUND)
            upsert_obj = self._obj(segs[0], ctx)
            upsert_field = self.store.ext_field(upsert_obj, segs[1])
        ops = []
        for rec in recs:
            if not isinstance(rec, dict):
                return jerr(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject out of non-object token")
            typ = (rec.get("attributes") or {}).get("type") if isinstance(rec.get("attributes"), dict) else None
            if typ is None and upsert_obj is None:
                return jerr(400, "INVALID_TYPE", "Must specify a type in the attributes of the record")
            obj = sch.object_name(typ) if typ else upsert_obj
            if obj is None:
                return jerr(400, "INVALID_TYPE", "sObject type '%s' is not supported. If you are attempting to use a "
                            "custom object, be sure to append the '__c' after the entity name. Please reference your "
                            "WSDL or the describe call for the appropriate names." % typ)
            if upsert_obj is not None and obj != upsert_obj:
                return jerr(400, "INVALID_TYPE", "Records must all be of the type %s" % upsert_obj)
            fields = {k: val for k, val in rec.items() if k != "attributes"}
            # unknown fields fail the whole request (Salesforce rejects them while deserialising)
            self.store._resolve_fields(obj, fields)
            if upsert_obj is not None:
                ops.append(("upsert", obj, upsert_field, fields))
            elif method == "POST":
                ops.append(("create", obj, fields))
            else:
                rid = None
                for k in list(fields):
                    if k.lower() == "id":
                        rid = fields.pop(k)
                if not rid:
                    ops.append(("error", [{"statusCode": "MISSING_ARGUMENT", "message": "Id not specified in an "
                                           "update call", "fields": []}]))
                else:
                    ops.append(("update", obj, rid, fields))
        self._write_stat()
        res = self.store.batch(ops, aon, allow, v)
        if method == "PATCH" and upsert_obj is None:
            for r in res:
                r.pop("created", None)
        for r in res:
            r.pop("matches", None)
        return jresp(200, res)

    # -- replication ----------------------------------------------------------------------
    def replication(self, obj, kind, ctx):
        q = ctx["query"]
        if "start" not in q or "end" not in q:
            return jerr(400, "MISSING_ARGUMENT", "start and end are required")
        s, e = parse_datetime(q["start"]), parse_datetime(q["end"])
        if s is None or e is None:
            bad = q["start"] if s is None else q["end"]
            return jerr(400, "INVALID_REPLICATION_DATE", "Invalid date format: %s" % bad)
        s, e = s - s % 60, e - e % 60          # seconds are ignored
        now = self.clock.now()
        days = 30 if kind == "updated" else 15
        earliest = now - days * DAY
        earliest -= earliest % 60
        if s < earliest:
            return jerr(400, "INVALID_REPLICATION_DATE", "startDate before org replication enabled date" if kind ==
                        "deleted" else "startDate cannot be more than 30 days ago")
        if e <= s:
            return jerr(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate by more than "
                        "one minute")
        latest = min(e, now - now % 60)
        with self.store.lock:
            if kind == "updated":
                ids = self.store.updated_ids(obj, s, latest)
            else:
                recs = self.store.deleted_rows(obj, s, latest)
                ids = recs
        if len(ids) > 600000:
            return jerr(400, "EXCEEDED_ID_LIMIT", "Too many ids (over 600000) in the replication window; use a "
                        "shorter window")
        cov = sf_datetime(max(latest, s))
        if kind == "updated":
            return jresp(200, {"ids": ids, "latestDateCovered": cov})
        return jresp(200, {"deletedRecords": ids, "earliestDateAvailable": sf_datetime(earliest),
                           "latestDateCovered": cov})

    # -- bulk -----------------------------------------------------------------------------
    def bulk_route(self, method, sub, ctx):
        path = sub.split("?", 1)[0]
        bctx = BulkCtx(self, ctx["version"])
        status, headers, body = bulk.handle(method, path, ctx["query"], ctx["headers"], ctx["body"], bctx)
        r = Response(status, body if isinstance(body, (bytes, bytearray)) else (body or "").encode("utf-8"),
                     dict(headers or {}))
        return r

    # -- introspection (never counted) ----------------------------------------------------
    def stats_body(self):
        with self.lock:
            s = json.loads(json.dumps(self.stats))
            now = self.clock.now()
            s["api_usage"] = self.usage.used(now)
            s["api_limit"] = self.cfg["api_limit"]
            s["open_cursors"] = len(self.cursors)
        s["records_written"] = self.store.written - self.written_base
        s["clock"] = sf_datetime(now)
        return s

    def introspect(self, method, path, query, body):
        parts = [urllib.parse.unquote(p) for p in path[len("/__emulator/"):].split("/") if p]
        name = parts[0] if parts else ""
        try:
            doc = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            return jerr(400, "JSON_PARSER_ERROR", "bad JSON body")
        if name == "stats":
            return jresp(200, self.stats_body())
        if name == "records" and len(parts) == 2:
            obj = self.store.schema.object_name(parts[1])
            if obj is None:
                return jerr(404, "NOT_FOUND", "no object %s" % parts[1])
            if method == "GET":
                with self.store.lock:
                    return jresp(200, list(self.store.tables[obj].values()))
            if method == "POST":
                # [rows] | row | {"records": [rows], "stamp": ISO | "backdate_seconds": N}: the stamp (or now - N)
                # is the LastModifiedDate/SystemModstamp (and CreatedDate of new rows) of rows that give none:
                # a late commit, stamped before a cursor a reader already saved
                stamp = None
                if isinstance(doc, dict) and "records" in doc:
                    if isinstance(doc.get("stamp"), (int, float)) and not isinstance(doc["stamp"], bool):
                        stamp = float(doc["stamp"])
                    elif doc.get("stamp") is not None:
                        stamp = parse_datetime(str(doc["stamp"]))
                        if stamp is None:
                            return jerr(400, "INVALID_FIELD", "bad stamp %r" % doc["stamp"])
                    elif doc.get("backdate_seconds") is not None:
                        stamp = self.clock.now() - float(doc["backdate_seconds"])
                    rows = doc["records"] if isinstance(doc["records"], list) else [doc["records"]]
                else:
                    rows = doc if isinstance(doc, list) else [doc]
                if stamp is not None:
                    iso = sf_datetime(stamp)
                    stamped = []
                    for r in rows:
                        r = dict(r)
                        new = not r.get("Id") or self.store.get(obj, r["Id"]) is None
                        for k in ("LastModifiedDate", "SystemModstamp") + (("CreatedDate",) if new else ()):
                            r.setdefault(k, iso)
                        stamped.append(r)
                    rows = stamped
                try:
                    ids = [self.store.put_raw(obj, self._normalize_row(obj, r)) for r in rows]
                except (ValueError, AttributeError) as e:
                    return jerr(400, "INVALID_FIELD", str(e))
                return jresp(200, {"ids": ids})
        if name == "clock":
            if method == "POST":
                if "advance_seconds" in doc:
                    self.clock.advance(float(doc["advance_seconds"]))
                if "set" in doc:
                    self.clock.set(float(doc["set"]))
            now = self.clock.now()
            return jresp(200, {"now": now, "iso": sf_datetime(now)})
        if name in ("reset_stats", "reset") and method == "POST":
            self.reset_stats()
            if name == "reset" or doc.get("api_usage"):
                with self.lock:
                    self.usage.clear()
                    self.limit_used.clear()
            return jresp(200, self.stats_body())
        if name == "expire_sessions" and method == "POST":
            return jresp(200, {"expired": self.auth.expire_all()})
        if name == "config":
            if method == "POST":
                try:
                    self.configure(doc)
                except (ValueError, TypeError) as e:
                    return jerr(400, "INVALID_CONFIG", str(e))
            with self.lock:
                out = dict(self.cfg)
            out["duplicate_rules"] = ["%s:%s" % r for r in self.store.dup_rules]
            out["jwt_audiences"] = list(self.auth.audiences)
            out["late_commit_seconds"] = self.store.late_commit_seconds
            out["removed_fields"] = ["%s.%s" % k for k in sorted(self.store.schema.removed)]
            return jresp(200, out)
        if name in ("remove_field", "restore_field") and method == "POST":
            obj = self.store.schema.object_name(str(doc.get("object") or ""))
            if obj is None:
                return jerr(404, "NOT_FOUND", "no object %s" % doc.get("object"))
            try:
                fn = self.store.remove_field if name == "remove_field" else self.store.restore_field
                field = fn(obj, str(doc.get("field") or ""))
            except SchemaError as e:
                return jerr(400, "INVALID_FIELD", str(e))
            return jresp(200, {"object": obj, "field": field, "removed": name == "remove_field"})
        if name == "save" and method == "POST":
            self.save()
            return jresp(200, {"saved": bool(self.persist)})
        return jerr(404, "NOT_FOUND", "unknown introspection endpoint %s" % path)

    @staticmethod
    def _check_faults(cfg):
        if cfg["query_fault"] not in QUERY_FAULTS:
            raise ValueError("query_fault: unknown kind %r (use %s)" % (cfg["query_fault"], ", ".join(QUERY_FAULTS[1:])))
        if cfg["bulk_results_fault"] not in BULK_FAULTS:
            raise ValueError("bulk_results_fault: unknown kind %r (use %s)" % (cfg["bulk_results_fault"],
                                                                             ", ".join(BULK_FAULTS[1:])))
        if cfg["bulk_results_fault_count"] not in ("actual", "zero"):
            raise ValueError("bulk_results_fault_count: use actual or zero")

    def configure(self, doc):
        ints = ("api_limit", "session_calls", "session_seconds", "latency_ms", "slow_ms", "max_cursors",
                "cursor_timeout", "bulk_polls_in_progress", "bulk_max_records", "child_inline",
                "query_fault_skip", "query_fault_times", "bulk_results_fault_skip", "bulk_results_fault_times",
                "long_running_limit")
        strs = ("query_fault", "bulk_results_fault", "bulk_results_fault_count")
        with self.lock:
            new = dict(self.cfg)
            for k, v in doc.items():
                if k in strs:
                    new[k] = str(v or "")
            self._check_faults(new)
            for k, v in doc.items():
                if k in strs:
                    self.cfg[k] = new[k]
                    if k.endswith("_fault"):
                        self.fault_seen.pop(k[:-len("_fault")], None)    # re-arming starts the count again
                elif k in ("query_fault_skip", "query_fault_times", "bulk_results_fault_skip",
                           "bulk_results_fault_times"):
                    self.cfg[k] = int(v)
                    self.fault_seen.pop(k.rsplit("_fault_", 1)[0], None)
                elif k == "child_rows_in_batch":
                    self.cfg[k] = bool(v)
                elif k in ints:
                    self.cfg[k] = int(v)
                elif k == "fail_rate":
                    self.cfg[k] = float(v)
                elif k == "fail_kinds":
                    kinds = v.split(",") if isinstance(v, str) else list(v)
                    self.cfg[k] = [str(x).strip() for x in kinds if str(x).strip()]
                elif k == "api_disabled":
                    self.cfg[k] = bool(v)
                elif k == "long_running_seconds":
                    self.cfg[k] = float(v)
                elif k in ("duplicate_rules", "jwt_audiences", "late_commit_seconds"):
                    continue
                else:
                    raise ValueError("unknown setting %s" % k)
        if "duplicate_rules" in doc:
            with self.store.lock:
                self.store.dup_rules = []
                for r in doc["duplicate_rules"] or ():
                    self._add_dup_rule(r)
        if "jwt_audiences" in doc:
            auds = doc["jwt_audiences"] or []
            if isinstance(auds, str):
                auds = [auds]
            self.auth.audiences = [str(a).rstrip("/") for a in auds]
        if "late_commit_seconds" in doc:
            self.store.late_commit_seconds = int(doc["late_commit_seconds"])
        self.auth.session_calls = self.cfg["session_calls"]
        self.auth.session_seconds = self.cfg["session_seconds"]


# ---------------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sfemulator"
    sys_version = ""
    timeout = 300
    app = None

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return "sfemulator"

    def read_body(self):
        if getattr(self, "_body", None) is not None:
            return self._body
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(n))
                self.rfile.readline(3)
            data = b"".join(chunks)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n) if n > 0 else b""
        self._body = data      # still encoded: App.route decodes Content-Encoding (and answers 400 when corrupt)
        return data

    def send(self, resp, method):
        self.send_response(resp.status)
        body = resp.body or b""
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.status not in (204, 304):
            ae = (self.headers.get("Accept-Encoding") or "").lower()
            if "gzip" in ae and len(body) > 1024 and self.app.args.gzip:
                body = gzip.compress(body, 1)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Vary", "Accept-Encoding")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD" and resp.status not in (204, 304):
            self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _go(self, method):
        self._body = None
        try:
            self.app.handle(self, method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        self._go("GET")

    def do_HEAD(self):
        self._go("HEAD")

    def do_POST(self):
        self._go("POST")

    def do_PATCH(self):
        self._go("PATCH")

    def do_PUT(self):
        self._go("PUT")

    def do_DELETE(self):
        self._go("DELETE")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_args(argv):
    p = argparse.ArgumentParser(description="Salesforce emulator (see README.md)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data", action="append", help="seed data directory or file (repeatable)")
    p.add_argument("--generate", help="Lead=N,Contact=N,Account=N,Opportunity=N")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--api-limit", type=int, default=15000)
    p.add_argument("--api-version", default="62.0")
    p.add_argument("--session-calls", type=int, default=0)
    p.add_argument("--session-seconds", type=int, default=7200)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--slow-ms", type=int, default=5000)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-kinds", default="503")
    p.add_argument("--jwt-cert")
    p.add_argument("--username", default="demo@example.com")
    p.add_argument("--password", default="demo-password")
    p.add_argument("--security-token", default="DEMOTOKEN")
    p.add_argument("--client-id", default="demo-client-id")
    p.add_argument("--client-secret", default="demo-client-secret")
    p.add_argument("--refresh-token", default="demo-refresh-token")
    p.add_argument("--request-log")
    p.add_argument("--persist")
    p.add_argument("--duplicate-rule", action="append")
    p.add_argument("--clock", type=float)
    p.add_argument("--max-cursors", type=int, default=10)
    p.add_argument("--cursor-timeout", type=int, default=900)
    p.add_argument("--bulk-polls-in-progress", type=int, default=1,
                   help="Bulk 2.0 polls answered InProgress before JobComplete")
    p.add_argument("--bulk-max-records", type=int, default=50000,
                   help="default page size of Bulk 2.0 query results")
    p.add_argument("--gzip", action="store_true", help="gzip responses when the client accepts it")
    p.add_argument("--sandbox", action="store_true",
                   help="a sandbox org: Organization.IsSandbox, JWT audience https://test.salesforce.com")
    p.add_argument("--org-name", default="Demo Org", help="Organization.Name")
    p.add_argument("--jwt-audience", action="append", default=[],
                   help="another accepted JWT aud (an Experience Cloud site URL); repeatable")
    p.add_argument("--late-commit-seconds", type=int, default=0,
                   help="API writes are stamped this many seconds before they commit")
    p.add_argument("--long-running-limit", type=int, default=25,
                   help="requests running longer than --long-running-seconds at once before new ones get 403 "
                        "(0: no limit)")
    p.add_argument("--long-running-seconds", type=float, default=20.0)
    p.add_argument("--child-inline", type=int, default=200,
                   help="rows of a child set returned inline; larger sets get done:false and a nextRecordsUrl "
                        "(0: never cut)")
    p.add_argument("--child-rows-not-in-batch", action="store_true",
                   help="inline child rows do not count toward a page's batch size")
    p.add_argument("--query-fault", choices=QUERY_FAULTS[1:],
                   help="damage query pages that have more after them: nextRecordsUrl missing, null or empty")
    p.add_argument("--query-fault-skip", type=int, default=0, help="eligible pages served intact first")
    p.add_argument("--query-fault-times", type=int, default=1, help="pages damaged (0: all)")
    p.add_argument("--bulk-results-fault", choices=BULK_FAULTS[1:],
                   help="damage Bulk query results pages that have records: empty body or header row only")
    p.add_argument("--bulk-results-fault-skip", type=int, default=0)
    p.add_argument("--bulk-results-fault-times", type=int, default=1)
    p.add_argument("--bulk-results-fault-count", choices=("actual", "zero"), default="actual",
                   help="Sforce-NumberOfRecords of a damaged page: the records it should hold, or 0")
    a = p.parse_args(argv)
    try:
        float(a.api_version)
    except ValueError:
        p.error("--api-version: expected NN.N")
    if not 0.0 <= a.fail_rate <= 1.0:
        p.error("--fail-rate: expected 0..1")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        app = App(args)
    except (ValueError, SchemaError, OSError) as e:
        sys.stderr.write("server.py: %s\n" % e)
        return 2
    Handler.app = app
    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    app.base_url = "http://127.0.0.1:%d" % port
    app.auth.base_url = app.base_url
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    sys.stdout.write("listening on %s\n" % app.base_url)
    sys.stdout.flush()
    if app.persist:
        app.save()
    while not stop.wait(0.5):
        if app.persist and app.store.dirty:
            try:
                app.save()
            except OSError as e:
                sys.stderr.write("server.py: persist: %s\n" % e)
    srv.shutdown()
    if app.persist:
        app.save()
    if app.log_fh:
        app.log_fh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
