-- sf.jwt: loading PKCS#1, PKCS#8 and encrypted PKCS#8 keys, failures that never
-- show key material, redacted handles, RS256 tokens verified by `openssl dgst`,
-- base64url. Keys: tests/fixtures/jwt (test-only).
local t = require "tests.tap"
local cjson = require "cjson"
local jwt = require "sf.jwt"

local DIR = "tests/fixtures/jwt/"
local PASS = "test-only-passphrase"
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local pkcs8_pem = slurp(DIR .. "test-only-rsa-pkcs8.pem")
local function no_key_material(msg)
  msg = tostring(msg)
  return not msg:find("MII", 1, true) and not msg:find("BEGIN", 1, true) and not msg:find(PASS, 1, true)
     and not msg:find(pkcs8_pem:sub(40, 80), 1, true)
end

-- loading ---------------------------------------------------------------------------
local k8 = jwt.load_key(pkcs8_pem)
t.ok(k8, "load_key reads a PKCS#8 key")
local k1 = jwt.load_key_file(DIR .. "test-only-rsa-pkcs1.pem")
t.ok(k1, "load_key_file reads a PKCS#1 key")
local ke = jwt.load_key_file(DIR .. "test-only-rsa-pkcs8-encrypted.pem", PASS)
t.ok(ke, "load_key_file reads an encrypted PKCS#8 key with its passphrase")
t.ok(jwt.load_key(slurp(DIR .. "test-only-rsa-pkcs8-encrypted.pem"), PASS), "load_key reads an encrypted key too")

local k, err, code = jwt.load_key_file(DIR .. "test-only-rsa-pkcs8-encrypted.pem", "wrong")
t.ok(k == nil and code == "KEY", "a wrong passphrase gives nil, msg, KEY", tostring(err))
t.ok(err and err:find("^cannot read RSA private key: ") and no_key_material(err),
     "the wrong-passphrase message has no key material", tostring(err))
k, err, code = jwt.load_key_file(DIR .. "test-only-rsa-pkcs8-encrypted.pem")
t.ok(k == nil and code == "KEY" and err:find("no passphrase", 1, true) and no_key_material(err),
     "an encrypted key without a passphrase fails without prompting", tostring(err))
k, err, code = jwt.load_key_file(DIR .. "test-only-ec-pkcs8.pem")
t.ok(k == nil and code == "KEY" and err:find("not an RSA key", 1, true), "a non-RSA key is refused", tostring(err))
k, err, code = jwt.load_key_file(DIR .. "does-not-exist.pem")
t.ok(k == nil and code == "KEY" and err:find("No such file", 1, true), "a missing key file gives KEY", tostring(err))
k, err, code = jwt.load_key(pkcs8_pem:sub(1, 900))
t.ok(k == nil and code == "KEY" and no_key_material(err), "a truncated key fails without echoing it", tostring(err))
k, err, code = jwt.load_key(slurp(DIR .. "test-only-rsa-public.pem"))
t.ok(k == nil and code == "KEY", "a public key is not a private key", tostring(err))

-- redaction -------------------------------------------------------------------------
t.eq(tostring(k8), "sf.jwt.key (redacted)", "tostring(key) is redacted")
t.eq(string.format("%s", k1), "sf.jwt.key (redacted)", "string.format shows the redacted form")
t.ok(not pcall(cjson.encode, k8), "a key cannot be JSON-encoded")
t.eq(k8.pem, nil, "a key exposes no fields")

-- signing ---------------------------------------------------------------------------
local function b64d(s) return assert(jwt.base64url_decode(s)) end
local claims = { iss = "client-id", sub = "user@example.com", aud = "https://login.salesforce.com", exp = 1700000000 }
local token = k8:sign(claims)
local h, p, s = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
t.ok(h and p and s, "sign returns three base64url parts")
t.eq(b64d(h), '{"alg":"RS256"}', "the JOSE header is {\"alg\":\"RS256\"}")
t.same(cjson.decode(b64d(p)), claims, "the payload holds the claims")
t.eq(#b64d(s), 256, "the signature is 256 bytes (RSA 2048)")

local function openssl_verify(tok)
  local hp, sig = tok:match("^(.*)%.([^.]*)$")
  local dir = t.tmpdir()
  t.write(dir .. "/input", hp)
  t.write(dir .. "/sig", b64d(sig))
  local pipe = io.popen(("openssl dgst -sha256 -verify %stest-only-rsa-public.pem -signature %s/sig %s/input 2>&1")
                        :format(DIR, dir, dir))
  local out = pipe:read("a")
  pipe:close()
  os.execute("rm -rf '" .. dir .. "'")
  return out:match("Verified OK") ~= nil, out
end
local ok, out = openssl_verify(token)
t.ok(ok, "openssl dgst -sha256 -verify accepts the signature", out)
ok = openssl_verify(ke:sign(claims))
t.ok(ok, "a token from the encrypted key verifies too")
local tampered = k8:sign(claims):gsub("^([^.]*%.)(.)", function(a, c) return a .. (c == "A" and "B" or "A") end)
ok = openssl_verify(tampered)
t.ok(not ok, "openssl rejects a tampered token")
t.eq(k1:sign(claims), token, "RS256 is deterministic: the PKCS#1 copy of the key signs identically")
local tok2 = k8:sign('{"iss":"x"}')
t.eq(b64d(tok2:match("^[^.]*%.([^.]*)")), '{"iss":"x"}', "sign accepts a JSON string as claims")
t.raises(function() k8:sign{ f = print } end, "", "unencodable claims raise")
t.raises(function() k8:sign(42) end, "claims must be a table or a JSON string", "non-table claims raise")

-- closing ---------------------------------------------------------------------------
k8:close()
k8:close()
t.eq(tostring(k8), "sf.jwt.key (closed)", "close is idempotent and tostring says closed")
t.raises(function() k8:sign(claims) end, "closed key", "signing with a closed key raises")
local escaped
do
  local kc <close> = jwt.load_key(pkcs8_pem)
  escaped = kc
  t.ok(kc:sign(claims), "a to-be-closed key signs inside its scope")
end
t.eq(tostring(escaped), "sf.jwt.key (closed)", "a <close> key is closed at the end of its scope")
collectgarbage()

-- misuse -----------------------------------------------------------------------------
t.raises(function() jwt.load_key() end, "string expected", "load_key without PEM raises")
t.raises(function() jwt.load_key(pkcs8_pem, 123) end, "string expected", "a non-string passphrase raises")
t.raises(function() jwt.load_key_file({}) end, "string expected", "load_key_file with a table raises")

-- base64url --------------------------------------------------------------------------
t.eq(jwt.base64url("foobar"), "Zm9vYmFy", "base64url RFC 4648 vector")
t.eq(jwt.base64url("\251\255\254"), "-__-", "base64url uses - and _")
t.eq(jwt.base64url(""), "", "base64url of empty is empty")
t.eq(jwt.base64url("f"), "Zg", "base64url has no padding")
local all = {}
for i = 0, 255 do all[#all + 1] = string.char(i) end
all = table.concat(all)
t.eq(jwt.base64url_decode(jwt.base64url(all)), all, "base64url round-trips all 256 byte values")
local v, msg, c = jwt.base64url_decode("Zm9v+")
t.ok(v == nil and c == "BASE64", "base64url_decode rejects junk with BASE64", tostring(msg))

t.done()
