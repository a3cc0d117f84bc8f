#!/usr/bin/env python3
"""A small loopback HTTP(S) server for the sf.http tests (python3 stdlib only).

usage: python3 tests/httpd.py [--port 0] [--tls CERT KEY] [--max-seconds 300]

Prints "listening on http://127.0.0.1:PORT" (https:// with --tls) as its first
line on stdout, then one heartbeat newline every 0.2 s: when the reader closes
the pipe (the test ended or died) the next heartbeat fails and the server exits.
It also exits after --max-seconds. Routes (any method):

  /status/<code>                  that status, body "status <code>"
  /respond?status=S&h=Name:Value&h=...&body=B
                                  chosen status, response headers (repeatable) and body
  /echo                           200, JSON {method, path, query, headers (lower-case
                                  names; repeats joined ", "), body, client_port, and
                                  decoded: the body gunzipped when Content-Encoding is gzip}
  /slow?ms=N                      sleeps N ms, then 200 "slow"
  /inflight                       the most /slow requests served at once since the last
                                  /inflight (then zeroed)
  /bytes?n=N[&chunked=1][&cut=1]  N bytes of "x" (Content-Length, or chunked); cut: the
                                  connection closes after half of them
  /gzip?n=N                       "0123456789" repeated to N bytes, gzip-encoded
  /free-port                      a loopback port nothing listens on (bound, then closed)
"""
import argparse
import gzip
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

SLOW = {"now": 0, "max": 0}
SLOW_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: lets the tests observe connection reuse
    server_version = "sf-test-httpd"
    sys_version = ""

    def log_message(self, fmt, *args):  # stdout is the heartbeat pipe; stay quiet
        pass

    def _send(self, status, body=b"", headers=(), chunked=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if chunked:
            for i in range(0, len(body), 8192):
                part = body[i:i + 8192]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        arg = lambda k, d=None: q.get(k, [d])[0]
        body = self._body()
        parts = url.path.strip("/").split("/")
        route = parts[0]
        if route == "status" and len(parts) == 2:
            code = int(parts[1])
            self._send(code, b"status %d" % code)
        elif route == "respond":
            headers = [tuple(h.split(":", 1)) for h in q.get("h", [])]
            self._send(int(arg("status", "200")), arg("body", "").encode(), headers)
        elif route == "echo":
            hdrs = {}
            for name, value in self.headers.items():
                k = name.lower()
                hdrs[k] = hdrs[k] + ", " + value if k in hdrs else value
            out = {"method": self.command, "path": url.path, "query": url.query,
                   "headers": hdrs, "body": body.decode("latin-1"),
                   "client_port": self.client_address[1]}
            if hdrs.get("content-encoding") == "gzip":
                try:
                    out["decoded"] = gzip.decompress(body).decode("latin-1")
                except OSError as e:
                    out["decoded_error"] = str(e)
            self._send(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
        elif route == "slow":
            with SLOW_LOCK:
                SLOW["now"] += 1
                SLOW["max"] = max(SLOW["max"], SLOW["now"])
            try:
                time.sleep(int(arg("ms", "1000")) / 1000.0)
            finally:
                with SLOW_LOCK:
                    SLOW["now"] -= 1
            self._send(200, b"slow")
        elif route == "inflight":
            with SLOW_LOCK:
                n, SLOW["max"] = SLOW["max"], 0
            self._send(200, str(n).encode())
        elif route == "bytes":
            n = int(arg("n", "0"))
            if arg("cut") == "1":
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(b"x" * (n // 2))
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(200, b"x" * n, chunked=arg("chunked") == "1")
        elif route == "gzip":
            n = int(arg("n", "1000"))
            data = (b"0123456789" * (n // 10 + 1))[:n]
            self._send(200, gzip.compress(data), [("Content-Encoding", "gzip")])
        elif route == "free-port":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            self._send(200, str(port).encode())
        else:
            self._send(404, b"no such route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # aborted clients are expected
        pass


def watchdog(max_seconds):
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            sys.stdout.write("\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            break
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    scheme = "http"
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("listening on %s://127.0.0.1:%d" % (scheme, server.server_address[1]), flush=True)
    threading.Thread(target=watchdog, args=(args.max_seconds,), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
