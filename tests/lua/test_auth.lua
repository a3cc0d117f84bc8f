-- sf.auth without a network: login hosts, JWT audiences, and the JWT bearer
-- assertion's header and claims (iss, sub, aud, exp at most 3 minutes ahead)
-- verified against the public key.
local t = require "tests.tap"
local auth = require "sf.auth"
local jwt = require "sf.jwt"
local cjson = require "cjson"
local clock = require "sf.clock"

t.eq(auth.login_url {}, "https://login.salesforce.com", "production is the default login host")
t.eq(auth.login_url { sandbox = true }, "https://test.salesforce.com", "sandbox = true logs in at test.salesforce.com")
t.eq(auth.login_url { sandbox = true, login_url = "https://acme.my.salesforce.com/" },
  "https://acme.my.salesforce.com", "a custom login URL (My Domain) wins, trailing slash trimmed")

t.eq(auth.audience {}, "https://login.salesforce.com", "JWT audience: production by default")
t.eq(auth.audience { sandbox = true }, "https://test.salesforce.com", "JWT audience: test.salesforce.com for a sandbox")
t.eq(auth.audience { login_url = "https://acme.my.salesforce.com" }, "https://login.salesforce.com",
  "JWT audience: a My Domain login URL is not the audience")
t.eq(auth.audience { sandbox = true, audience = "https://acme.my.site.com/customers/" },
  "https://acme.my.site.com/customers", "JWT audience: an explicit audience (Experience Cloud site) wins, trailing slash trimmed")

-- Build the assertion the way the JWT flow does, with a fresh test key.
local dir = t.tmpdir()
assert(os.execute("openssl genpkey -algorithm RSA -out " .. dir .. "/k.pem -pkeyopt rsa_keygen_bits:2048 2>/dev/null"))
local pem = assert(io.open(dir .. "/k.pem")):read("a")
local key = assert(jwt.load_key(pem))

-- auth.login with an unreachable host fails cleanly with the transport code,
-- after the assertion was built (the key is parsed and kept as a handle).
local cfg = { flow = "jwt", client_id = "CK", username = "u@example.com", private_key = pem,
  login_url = "http://127.0.0.1:1" }
local s, err, code = auth.login(cfg, function(v) return v end, { timeout_ms = 2000 })
t.ok(s == nil and code == "CONNECT", "an unreachable login host is an operational failure", tostring(err) .. " " .. tostring(code))
t.ok(not tostring(err):find("BEGIN", 1, true), "the error message carries no key material")
t.eq(tostring(cfg.private_key_handle), "sf.jwt.key (redacted)", "the parsed key is an opaque, redacted handle")

-- The claims Salesforce checks.
local now = math.floor(clock.now())
local token = assert(auth.assertion({ flow = "jwt", client_id = "CK", username = "u@example.com",
  private_key = pem, sandbox = true }, function(v) return v end))
local h, c, sig = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
t.ok(h and c and sig, "compact JWT: three base64url parts without padding")
t.same(cjson.decode(jwt.base64url_decode(h)), { alg = "RS256" }, "header is {\"alg\":\"RS256\"}")
local claims = cjson.decode(jwt.base64url_decode(c))
t.ok(claims.exp - now <= 180 and claims.exp > now, "exp is in the future and at most 3 minutes ahead")
t.eq(claims.iss, "CK", "iss is the consumer key")
t.eq(claims.sub, "u@example.com", "sub is the username")
t.eq(claims.aud, "https://test.salesforce.com", "aud is the sandbox audience")
local my = cjson.decode(jwt.base64url_decode(assert(auth.assertion({ flow = "jwt", client_id = "CK",
  username = "u@example.com", private_key = pem, login_url = "https://acme.my.salesforce.com" },
  function(v) return v end)):match("^[%w_-]+%.([%w_-]+)%.")))
t.eq(my.aud, "https://login.salesforce.com", "with a My Domain login_url aud is still https://login.salesforce.com")
t.write(dir .. "/data", h .. "." .. c)
t.write(dir .. "/sig", jwt.base64url_decode(sig))
assert(os.execute("openssl pkey -in " .. dir .. "/k.pem -pubout -out " .. dir .. "/pub.pem 2>/dev/null"))
local ok = os.execute("openssl dgst -sha256 -verify " .. dir .. "/pub.pem -signature " .. dir .. "/sig " .. dir .. "/data >/dev/null 2>&1")
t.ok(ok, "the RS256 signature verifies with the public key")
t.done()
