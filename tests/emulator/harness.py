"""Start the Salesforce emulator for a python test.

    import sys, os; sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
    from harness import Emulator
    with Emulator(["--generate", "Lead=10"]) as emu:
        tok = emu.login()
        r = emu.get("/services/data/v62.0/query?q=" + emu.q("SELECT Id FROM Lead"))
        assert r.status == 200 and r.json["totalSize"] == 10
        emu.stats()["api_calls"]

`emu.url` / `emu.base` = http://127.0.0.1:PORT (login host and instance URL), `emu.version` = "62.0",
`emu.data` = "/services/data/v62.0". get/post/patch/delete/request send the current token
(`emu.token`, set by `login()`) unless `token=None`/`auth=False` is given, and return a `Reply`
(.status, .headers (lower-case keys), .body bytes, .json (parsed or None), .text).
The server is stopped with SIGTERM on exit (`emu.returncode` then holds its exit status).
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
_UNSET = object()


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Reply(%d, %s)" % (self.status, self.text[:200])


class Emulator:
    def __init__(self, args=(), version="62.0", start_timeout=60, stderr=None):
        self.args = list(args)
        self.version = version
        self.data = "/services/data/v%s" % version
        self.start_timeout = start_timeout
        self.stderr = stderr
        self.proc = None
        self.url = self.base = None
        self.port = None
        self.token = None
        self.returncode = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self):
        cmd = [sys.executable, SERVER, "--port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        text = line.decode().strip()
        if not text.startswith("listening on http://"):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("emulator did not start (%r), exit %s" % (text, self.proc.returncode))
        self.url = self.base = text.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout=30):
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return self.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- http -----------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, token=_UNSET, timeout=60):
        """path: absolute path (or a full URL on this emulator); body: bytes/str or a JSON-able value"""
        if path.startswith("http://"):
            path = "/" + path.split("/", 3)[3]
        h = {}
        tok = self.token if token is _UNSET else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        if headers:
            h.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, headers=None, token=_UNSET, **kw):
        return self.request("GET", path, None, headers, token, **kw)

    def post(self, path, body=None, headers=None, token=_UNSET, **kw):
        return self.request("POST", path, body, headers, token, **kw)

    def patch(self, path, body=None, headers=None, token=_UNSET, **kw):
        return self.request("PATCH", path, body, headers, token, **kw)

    def delete(self, path, headers=None, token=_UNSET, **kw):
        return self.request("DELETE", path, None, headers, token, **kw)

    @staticmethod
    def q(soql):
        return urllib.parse.quote(soql, safe="")

    def query(self, soql, all_rows=False, batch_size=None):
        """follow nextRecordsUrl; -> (records, replies)"""
        h = {"Sforce-Query-Options": "batchSize=%d" % batch_size} if batch_size else None
        r = self.get("%s/%s?q=%s" % (self.data, "queryAll" if all_rows else "query", self.q(soql)), h)
        replies = [r]
        recs = list(r.json["records"]) if r.status == 200 else []
        guard = 0
        while r.status == 200 and not r.json["done"] and r.json.get("nextRecordsUrl") and guard < 100000:
            r = self.get(r.json["nextRecordsUrl"], h)
            replies.append(r)
            if r.status != 200:
                break
            recs.extend(r.json["records"])
            guard += 1
        return recs, replies

    # -- oauth ----------------------------------------------------------------------------
    def token_request(self, **form):
        body = urllib.parse.urlencode(form)
        return self.request("POST", "/services/oauth2/token", body,
                            {"Content-Type": "application/x-www-form-urlencoded"}, token=None)

    def login(self, username="demo@example.com", password="demo-password", security_token="DEMOTOKEN",
              client_id="demo-client-id", client_secret="demo-client-secret"):
        r = self.token_request(grant_type="password", client_id=client_id, client_secret=client_secret,
                               username=username, password=password + security_token)
        if r.status != 200:
            raise RuntimeError("login failed: %s" % r.text)
        self.token = r.json["access_token"]
        return self.token

    # -- introspection --------------------------------------------------------------------
    def _intro(self, method, name, body=None):
        r = self.request(method, "/__emulator/" + name, body, token=None)
        if r.status != 200:
            raise RuntimeError("%s /__emulator/%s: %s" % (method, name, r.text))
        return r.json

    def stats(self):
        return self._intro("GET", "stats")

    def records(self, obj):
        return self._intro("GET", "records/" + obj)

    def insert(self, obj, rows):
        return self._intro("POST", "records/" + obj, rows)["ids"]

    def advance_clock(self, seconds):
        return self._intro("POST", "clock", {"advance_seconds": seconds})

    def set_clock(self, epoch):
        return self._intro("POST", "clock", {"set": epoch})

    def clock(self):
        return self._intro("GET", "clock")["now"]

    def clock_iso(self):
        """the emulator clock as Salesforce writes a timestamp (whole seconds)"""
        return self._intro("GET", "clock")["iso"]

    def reset_stats(self, api_usage=False):
        return self._intro("POST", "reset_stats", {"api_usage": api_usage})

    def expire_sessions(self):
        return self._intro("POST", "expire_sessions", {})

    def config(self, **settings):
        return self._intro("POST", "config", settings)

    def remove_field(self, obj, field):
        """as an admin deleting a field: describe loses it, queries naming it get 400 INVALID_FIELD"""
        return self._intro("POST", "remove_field", {"object": obj, "field": field})

    def restore_field(self, obj, field):
        return self._intro("POST", "restore_field", {"object": obj, "field": field})

    def late_commit(self, obj, rows, stamp=None, backdate_seconds=None):
        """insert/merge rows stamped in the past (stamp: ISO datetime or epoch; or now - backdate_seconds):
        a transaction that started before a reader saved its cursor and committed after"""
        body = {"records": rows}
        if stamp is not None:
            body["stamp"] = stamp
        if backdate_seconds is not None:
            body["backdate_seconds"] = backdate_seconds
        return self._intro("POST", "records/" + obj, body)["ids"]
