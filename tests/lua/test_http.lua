-- sf.http against tests/httpd.py on loopback: statuses are data, case-insensitive
-- headers, request headers/body sent, error codes (TIMEOUT, TOO_LARGE, CONNECT, TLS,
-- INSECURE, PROTOCOL, URL), gzip decoding, connection reuse, misuse raises.
local t = require "tests.tap"
local cjson = require "cjson"
local http = require "sf.http"

-- Starts tests/httpd.py; it exits by itself once we close the pipe (heartbeat).
local function start_server(extra)
  local p = assert(io.popen("exec python3 tests/httpd.py --port 0 --max-seconds 120 " .. (extra or ""), "r"))
  local line = p:read("l") or ""
  local base = line:match("^listening on (%S+)$")
  assert(base, "httpd.py did not start: " .. line)
  return p, base
end

local server, base = start_server()
local function get(path, opts)
  opts = opts or {}
  opts.url = base .. path
  return http.request(opts)
end
local function echo(opts)
  local r, err, code = get("/echo", opts)
  assert(r, tostring(err) .. " " .. tostring(code))
  return cjson.decode(r.body), r
end

-- statuses are data ---------------------------------------------------------------
do
  local r, err = get("/status/404")
  t.ok(r and r.status == 404 and r.body == "status 404", "a 404 is returned as a response, not an error", err)
  r = get("/status/500")
  t.ok(r and r.status == 500 and r.body == "status 500", "a 500 is returned as a response, not an error")
  r = get("/respond?status=201&body=made")
  t.ok(r and r.status == 201 and r.body == "made", "status and body of a chosen response")
end

-- response headers ----------------------------------------------------------------
do
  local r = get("/respond?h=Sforce-Limit-Info:api-usage=25/15000&h=X-Twice:one&h=X-Twice:two&h=X-Spaced:%20%20v%20%20")
  t.eq(r.headers["Sforce-Limit-Info"], "api-usage=25/15000", "headers are found by their original case")
  t.eq(r.headers["sforce-limit-info"], "api-usage=25/15000", "headers are found by lower case")
  t.eq(r.headers["SFORCE-LIMIT-INFO"], "api-usage=25/15000", "headers are found by upper case")
  t.eq(r.headers["X-Twice"], "one, two", "repeated headers are joined with \", \"")
  t.eq(r.headers["x-spaced"], "v", "header values are trimmed")
  local lower = true
  for k in pairs(r.headers) do if k ~= k:lower() then lower = false end end
  t.ok(lower, "header names are stored in lower case")
  t.eq(r.headers["content-length"], "0", "standard headers are present")
  t.eq(r.headers[1], nil, "non-string header lookups return nil")
end

-- request headers and body ----------------------------------------------------------
do
  local e = echo{ method = "PATCH", body = "{\"a\":1}\0bin",
                  headers = { ["Content-Type"] = "application/json", ["X-Custom"] = "v1", ["X-Num"] = 42 } }
  t.eq(e.method, "PATCH", "the method is sent")
  t.eq(e.body, "{\"a\":1}\0bin", "the body is sent byte for byte (NUL included)")
  t.eq(e.headers["content-type"], "application/json", "request headers are sent")
  t.eq(e.headers["x-custom"], "v1", "custom request headers are sent")
  t.eq(e.headers["x-num"], "42", "numeric header values are sent as text")
  t.eq(e.headers["content-length"], tostring(#"{\"a\":1}\0bin"), "Content-Length matches the body")
  t.eq(e.headers["expect"], nil, "no Expect: 100-continue round trip")
  e = echo{}
  t.eq(e.method, "GET", "the default method is GET")
  t.eq(e.headers["user-agent"], "sfengine", "the default User-Agent is sfengine")
  t.ok((e.headers["accept-encoding"] or ""):find("gzip", 1, true), "gzip is offered in Accept-Encoding")
  e = echo{ headers = { ["User-Agent"] = "custom/1" } }
  t.eq(e.headers["user-agent"], "custom/1", "a User-Agent header overrides the default")
  e = echo{ method = "POST" }
  t.ok(e.method == "POST" and e.headers["content-length"] == "0", "a POST without a body sends Content-Length: 0")
  e = echo{ method = "DELETE" }
  t.eq(e.method, "DELETE", "DELETE is sent")
  local r = get("/echo", { method = "HEAD" })
  t.ok(r and r.status == 200 and r.body == "", "HEAD returns the status and an empty body")
  e = echo{ headers = { ["X-Empty"] = "" } }
  t.eq(e.headers["x-empty"], "", "a header with an empty value is sent")
end

-- connection reuse -------------------------------------------------------------------
do
  local a = echo{}
  local b = echo{ method = "POST", body = "x" }
  local c = echo{}
  t.ok(a.client_port == b.client_port and b.client_port == c.client_port,
       "consecutive requests reuse one connection (same client port)",
       ("ports %s %s %s"):format(a.client_port, b.client_port, c.client_port))
  local d = echo{ method = "POST", body = "create", once = true }
  t.ok(d.client_port ~= c.client_port,
       "once = true sends a non-repeatable request on a new connection, never a reused one",
       ("ports %s %s"):format(c.client_port, d.client_port))
end

-- gzip -------------------------------------------------------------------------------
do
  local r = get("/gzip?n=100000")
  t.ok(r and r.body == ("0123456789"):rep(10000), "a gzip body is decoded")
  t.eq(r.headers["content-encoding"], "gzip", "the response says it was gzip-encoded")
  local r2, err, code = get("/gzip?n=1000000", { max_bytes = 1000 })
  t.ok(r2 == nil and code == "TOO_LARGE", "max_bytes caps the decoded size (gzip bomb)", tostring(err))
end

-- gzip request bodies -------------------------------------------------------------------
do
  local body = ("Ada Lovelace, "):rep(200)
  local e = echo{ method = "POST", body = body, gzip = true, headers = { ["Content-Type"] = "application/json" } }
  t.eq(e.headers["content-encoding"], "gzip", "gzip = true sends Content-Encoding: gzip")
  t.eq(e.decoded, body, "... and the body gunzips to the original")
  t.ok(#e.body < #body / 4, "... compressed", tostring(#e.body))
  t.ok(tonumber(e.headers["content-length"]) < #body / 4, "... Content-Length is the compressed size")
  e = echo{ method = "POST", body = "tiny", gzip = true }
  t.ok(e.body == "tiny" and e.headers["content-encoding"] == nil, "a body under 256 bytes goes as it is")
  t.raises(function() http.request{ url = base .. "/echo", method = "POST", body = body, gzip = true,
                                    headers = { ["Content-Encoding"] = "br" } } end,
    "opts.gzip sets Content-Encoding itself", "gzip with a Content-Encoding header raises")
end

-- streams: the body read as it arrives, at most window_bytes held ---------------------------
do
  local r, err = http.request{ url = base .. "/bytes?n=3000000", stream = true, window_bytes = 65536 }
  t.ok(r and r.status == 200 and r.body == nil and r.stream ~= nil, "stream = true returns at the headers", err)
  t.eq(r.headers["content-length"], "3000000", "... with the headers")
  for _ = 1, 20 do http.wait(20) end
  local held = r.stream:buffered()
  t.ok(held >= 65536 and held <= 65536 + 65536, "an unread stream pauses at its window", tostring(held))
  t.ok(not r.stream:ready("done"), "... and the transfer waits (not done)")
  local total, reads, biggest = 0, 0, 0
  while true do
    local chunk, rerr = r.stream:read(100000)
    if not chunk then t.eq(rerr, nil, "the end of a stream is nil without an error") break end
    total, reads = total + #chunk, reads + 1
    biggest = math.max(biggest, r.stream:buffered())
  end
  t.eq(total, 3000000, "every byte of the stream is read")
  t.ok(biggest <= 65536 + 65536, "... never more than the window buffered", tostring(biggest))
  t.eq(r.stream:read(), nil, "reading past the end gives nil again")
  r.stream:close()
  t.raises(function() r.stream:read() end, "the transfer is closed", "reading a closed transfer raises")

  r = http.request{ url = base .. "/bytes?n=200000&chunked=1", stream = true, window_bytes = 4096 }
  local first = r.stream:read(1000)
  t.eq(#first, 1000, "read(max) returns at most max bytes")
  local rest = r.stream:finish()
  t.ok(rest and rest.status == 200 and #rest.body == 199000, "finish returns the rest of a stream whole")

  r = http.request{ url = base .. "/bytes?n=400000&cut=1", stream = true }
  local got, ferr, fcode = 0, nil, nil
  for _ = 1, 1000 do
    local chunk
    chunk, ferr, fcode = r.stream:read()
    if not chunk then break end
    got = got + #chunk
  end
  t.ok(ferr ~= nil and fcode == "RECV" and got == 200000,
    "a stream cut off gives its bytes, then nil, message, RECV", tostring(ferr) .. " " .. tostring(fcode) .. " " .. got)

  local nr, nerr, ncode = http.request{ url = base .. "/status/503", stream = true }
  t.ok(nr and nr.status == 503 and nr.stream, "a stream's status is data like any other", tostring(nerr) .. tostring(ncode))
  t.eq(nr.stream:finish().body, "status 503", "... its body readable whole")
  t.raises(function() http.request{ url = base .. "/bytes?n=10" }.stream:read() end, "index a nil",
    "a request without stream = true has no stream")
  local x = assert(http.start{ url = base .. "/bytes?n=10" })
  t.raises(function() x:read() end, "not a stream", "read on a transfer that is not a stream raises")
  x:close()
end

-- several transfers in flight at once ---------------------------------------------------
do
  get("/inflight")
  local xs = {}
  for i = 1, 4 do xs[i] = assert(http.start{ url = base .. "/slow?ms=400" }) end
  t.ok(not xs[1]:ready("done"), "a started transfer is not done before it is driven")
  local done, rounds = 0, 0
  while done < 4 and rounds < 200 do
    http.wait(100)
    rounds = rounds + 1
    done = 0
    for _, x in ipairs(xs) do if x:ready("done") then done = done + 1 end end
  end
  t.eq(done, 4, "http.wait drives every started transfer to its end")
  t.eq(get("/inflight").body, "4", "the four requests were served at the same time")
  for _, x in ipairs(xs) do
    local r = x:finish()
    t.ok(r and r.status == 200 and r.body == "slow", "each transfer's response is its own")
  end
  local a = assert(http.start{ url = base .. "/slow?ms=200" })
  local b = assert(http.start{ url = base .. "/bytes?n=5" })
  local rb = b:finish()
  t.ok(rb and rb.body == "xxxxx", "finishing one transfer moves the others too")
  local ra = a:head()
  t.ok(ra and ra.status == 200 and ra.stream == nil, "head() of a buffered transfer has no stream")
  t.eq(a:finish().body, "slow", "... and its body comes with finish")
  local bad, berr, bcode = http.start{ url = "ftp://127.0.0.1/x" }
  t.ok(bad == nil and bcode == "PROTOCOL", "start fails like request for a bad url", tostring(berr))
  local free = get("/free-port").body
  local c = assert(http.start{ url = "http://127.0.0.1:" .. free .. "/" })
  local cr, cerr, ccode = c:head()
  t.ok(cr == nil and ccode == "CONNECT", "head() of a transfer that cannot connect fails with CONNECT", tostring(cerr))
end

-- size cap -----------------------------------------------------------------------------
do
  local r, err, code = get("/bytes?n=5000", { max_bytes = 1000 })
  t.ok(r == nil and code == "TOO_LARGE" and err == "response larger than 1000 bytes",
       "a body over max_bytes (Content-Length) gives TOO_LARGE", tostring(err))
  r, err, code = get("/bytes?n=100000&chunked=1", { max_bytes = 1000 })
  t.ok(r == nil and code == "TOO_LARGE", "a chunked body over max_bytes gives TOO_LARGE", tostring(err))
  r = get("/bytes?n=1000&chunked=1", { max_bytes = 1000 })
  t.ok(r and #r.body == 1000, "a body of exactly max_bytes is accepted")
  r = get("/bytes?n=3000000&chunked=1")
  t.ok(r and #r.body == 3000000, "a 3 MB body arrives whole")
end

-- timeouts -----------------------------------------------------------------------------
do
  local start = os.time()
  local r, err, code = get("/slow?ms=3000", { timeout_ms = 300 })
  t.ok(r == nil and code == "TIMEOUT", "a slow response gives TIMEOUT", tostring(err))
  t.ok(os.time() - start <= 2, "the timeout fires on time")
  r = get("/echo")
  t.ok(r and r.status == 200, "the next request after a timeout works")
end

-- connection errors ----------------------------------------------------------------------
do
  local port = get("/free-port").body
  local r, err, code = http.request{ url = "http://127.0.0.1:" .. port .. "/", connect_timeout_ms = 2000 }
  t.ok(r == nil and code == "CONNECT", "a refused connection gives CONNECT", tostring(err))
  local https_base = base:gsub("^http:", "https:")
  r, err, code = http.request{ url = https_base .. "/echo", timeout_ms = 5000 }
  t.ok(r == nil and code == "TLS", "https:// to a plain-HTTP server gives TLS", tostring(err))
end

-- TLS verification is always on (a self-signed certificate on loopback) -------------------
do
  local dir = t.tmpdir()
  local ok = os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem " ..
    "-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1"):format(dir, dir))
  if ok then
    local tls, tls_base = start_server(("--tls %s/cert.pem %s/key.pem"):format(dir, dir))
    local r, err, code = http.request{ url = tls_base .. "/echo", timeout_ms = 5000 }
    t.ok(r == nil and code == "TLS", "an untrusted (self-signed) certificate is refused with TLS", tostring(err))
    tls:close()
  else
    t.ok(false, "openssl req could make a test certificate")
  end
  os.execute("rm -rf '" .. dir .. "'")
end

-- plain http:// only to loopback --------------------------------------------------------
do
  local start = os.time()
  local r, err, code = http.request{ url = "http://example.invalid/path?secret=1" }
  t.ok(r == nil and code == "INSECURE", "http:// to a non-loopback host gives INSECURE", tostring(err))
  t.ok(not tostring(err):find("secret", 1, true), "the INSECURE message does not echo the url")
  r, err, code = http.request{ url = "http://10.0.0.1/" }
  t.eq(code, "INSECURE", "http:// to a private address gives INSECURE")
  r, err, code = http.request{ url = "http://127.0.0.1.example.com/" }
  t.eq(code, "INSECURE", "a host that merely starts with 127.0.0.1 is not loopback")
  t.ok(os.time() - start <= 1, "INSECURE is decided without network traffic (immediately)")
  local port = base:match(":(%d+)$")
  r = http.request{ url = "http://localhost:" .. port .. "/status/204" }
  t.ok(r and r.status == 204, "http://localhost is allowed (loopback)")
  r, err, code = http.request{ url = "http://127.0.0.2:" .. port .. "/status/204", connect_timeout_ms = 2000 }
  t.ok(code ~= "INSECURE", "127.0.0.0/8 is loopback", tostring(code))
  r, err, code = http.request{ url = "http://[::1]:" .. port .. "/", connect_timeout_ms = 2000 }
  t.ok(code ~= "INSECURE", "http://[::1] is loopback", tostring(code))
  r, err, code = http.request{ url = "ftp://127.0.0.1/" }
  t.eq(code, "PROTOCOL", "schemes other than http and https give PROTOCOL")
  r, err, code = http.request{ url = "file:///etc/passwd" }
  t.eq(code, "PROTOCOL", "file:// is refused")
  r, err, code = http.request{ url = "not a url" }
  t.eq(code, "URL", "an unparseable url gives URL")
end

-- misuse raises ---------------------------------------------------------------------------
do
  t.raises(function() http.request() end, "table expected", "request without opts raises")
  t.raises(function() http.request{} end, "sf.http.request: opts.url must be a string", "a missing url raises")
  t.raises(function() http.request{ url = base, timeout_ms = 1.5 } end,
           "sf.http.request: opts.timeout_ms must be an integer", "a fractional timeout_ms raises")
  t.raises(function() http.request{ url = base, timeout_ms = "10" } end,
           "sf.http.request: opts.timeout_ms must be an integer", "a string timeout_ms raises")
  t.raises(function() http.request{ url = base, max_bytes = 0 } end,
           "sf.http.request: opts.max_bytes must be positive", "max_bytes 0 raises")
  t.raises(function() http.request{ url = base, headers = "x" } end,
           "sf.http.request: opts.headers must be a table", "non-table headers raise")
  t.raises(function() http.request{ url = base, headers = { ["X-A"] = "v\r\nX-Injected: 1" } } end,
           "contains a line break", "a header value with CR LF raises (no header injection)")
  t.raises(function() http.request{ url = base, headers = { ["Bad Name"] = "v" } } end,
           "invalid header name", "an invalid header name raises")
  t.raises(function() http.request{ url = base, headers = { "positional" } } end,
           "keys must be strings", "positional headers raise")
  t.raises(function() http.request{ url = base, method = "GET /x" } end,
           "not an HTTP method", "an invalid method raises")
  t.raises(function() http.request{ url = base, body = {} } end,
           "sf.http.request: opts.body must be a string", "a non-string body raises")
  local r = get("/echo")
  t.ok(r and r.status == 200, "requests still work after raised misuse")
end

-- helpers -----------------------------------------------------------------------------------
t.eq(http.urlencode("a b&c=d/e~f.g_h-i"), "a%20b%26c%3Dd%2Fe~f.g_h-i", "urlencode keeps unreserved characters only")
t.eq(http.urlencode("é\0"), "%C3%A9%00", "urlencode encodes UTF-8 and NUL bytes")
t.eq(http.urlencode("SELECT Id FROM Lead"), "SELECT%20Id%20FROM%20Lead", "urlencode encodes a SOQL query")
t.ok(http.version():match("^libcurl/%d"), "version() reports libcurl's version")

server:close()
t.done()
