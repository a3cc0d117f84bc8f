"""OAuth2 token endpoint of the emulator: password, refresh_token and JWT bearer grants.

Access tokens are random opaque strings tracked server-side with their expiry (emulator clock)
and the number of API calls made with them (--session-calls). JWT assertions are verified
RS256 (RSA PKCS#1 v1.5 + SHA-256) in pure python against the public key of --jwt-cert
(an X.509 certificate PEM, or a PUBLIC KEY / RSA PUBLIC KEY PEM), parsed once at startup.
"""
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time

LOGIN_HOSTS = ("https://login.salesforce.com", "https://test.salesforce.com")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


# ---------------------------------------------------------------------------------------------
# minimal DER reader for the public key of a certificate

def _der(buf, pos):
    """-> (tag, content_start, content_end)"""
    tag = buf[pos]
    pos += 1
    ln = buf[pos]
    pos += 1
    if ln & 0x80:
        n = ln & 0x7F
        ln = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + ln


def _children(buf, start, end):
    """-> [(tag, content_start, content_end, header_start)]"""
    out = []
    pos = start
    while pos < end:
        tag, s, e = _der(buf, pos)
        out.append((tag, s, e, pos))
        pos = e
    return out


def _pem_blocks(text):
    blocks = []
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN "):
            cur = [line[11:].rstrip("-").strip(), []]
        elif line.startswith("-----END ") and cur:
            blocks.append((cur[0], base64.b64decode("".join(cur[1]))))
            cur = None
        elif cur is not None:
            cur[1].append(line)
    return blocks


def _rsa_from_pkcs1(der):
    _, s, e = _der(der, 0)
    kids = _children(der, s, e)
    n = int.from_bytes(der[kids[0][1]:kids[0][2]], "big")
    ex = int.from_bytes(der[kids[1][1]:kids[1][2]], "big")
    return n, ex


def _rsa_from_spki(der, start=0):
    _, s, e = _der(der, start)
    alg, bitstr = _children(der, s, e)[:2]
    # BIT STRING: first content byte = unused bits
    return _rsa_from_pkcs1(der[bitstr[1] + 1:bitstr[2]])


def load_public_key(path):
    """-> (n, e) from a certificate or public key PEM file"""
    with open(path, encoding="ascii", errors="replace") as fh:
        text = fh.read()
    for kind, der in _pem_blocks(text):
        if kind == "CERTIFICATE":
            _, s, e = _der(der, 0)                 # Certificate
            tbs = _children(der, s, e)[0]          # tbsCertificate
            fields = _children(der, tbs[1], tbs[2])
            i = 0
            if fields[0][0] == 0xA0:              # [0] version
                i = 1
            # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
            spki = fields[i + 5]
            return _rsa_from_spki(der, spki[3])
        if kind == "PUBLIC KEY":
            return _rsa_from_spki(der)
        if kind == "RSA PUBLIC KEY":
            return _rsa_from_pkcs1(der)
    raise ValueError("%s: no certificate or public key PEM block" % path)


def rs256_verify(pub, signing_input, signature):
    n, e = pub
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


def b64url_decode(s):
    if isinstance(s, str):
        s = s.encode("ascii")
    s += b"=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s)


# ---------------------------------------------------------------------------------------------

class OAuthError(Exception):
    def __init__(self, error, description):
        super().__init__(description)
        self.error, self.description = error, description


class Auth:
    def __init__(self, clock, org_id, user_id, username="demo@example.com", password="demo-password",
                 security_token="DEMOTOKEN", client_id="demo-client-id", client_secret="demo-client-secret",
                 refresh_token="demo-refresh-token", jwt_cert=None, session_seconds=7200, session_calls=0,
                 sandbox=False, audiences=()):
        self.clock = clock
        self.org_id, self.user_id = org_id, user_id
        self.username, self.password, self.security_token = username, password, security_token
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.jwt_key = load_public_key(jwt_cert) if jwt_cert else None
        self.session_seconds = session_seconds
        self.session_calls = session_calls
        self.sandbox = sandbox
        self.audiences = [a.rstrip("/") for a in audiences]   # configured Experience Cloud site URLs
        self.tokens = {}           # token -> {"expires": epoch, "calls": n, "grant": str}
        self.lock = threading.Lock()
        self.base_url = ""

    def allowed_audiences(self):
        """Salesforce's documented JWT audiences, whatever host the token request went to: the login
        host of the org's kind (production or sandbox) and any configured Experience Cloud site URL"""
        return {LOGIN_HOSTS[1] if self.sandbox else LOGIN_HOSTS[0]} | set(self.audiences)

    # -- sessions -------------------------------------------------------------------------
    def _issue(self, grant):
        tok = "%s!AR%s" % (self.org_id[:15], secrets.token_urlsafe(72).replace("-", ".").replace("_", "."))
        with self.lock:
            self.tokens[tok] = {"expires": self.clock.now() + self.session_seconds, "calls": 0, "grant": grant}
        return tok

    def check(self, token):
        """True when the access token is live (not expired by time nor by --session-calls)"""
        with self.lock:
            s = self.tokens.get(token)
            if s is None:
                return False
            if self.clock.now() >= s["expires"]:
                del self.tokens[token]
                return False
            if self.session_calls and s["calls"] >= self.session_calls:
                return False
            return True

    def use(self, token):
        """count one API call made with this token"""
        with self.lock:
            s = self.tokens.get(token)
            if s is not None:
                s["calls"] += 1

    def expire_all(self):
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    # -- token endpoint -------------------------------------------------------------------
    def token(self, form):
        """form: {name: value} -> (status, body dict)"""
        try:
            return 200, self._grant(form)
        except OAuthError as e:
            return 400, {"error": e.error, "error_description": e.description}

    def _body(self, tok, issued=True, scope=None):
        body = {"access_token": tok, "instance_url": self.base_url,
                "id": "%s/id/%s/%s" % (self.base_url or LOGIN_HOSTS[0], self.org_id, self.user_id),
                "token_type": "Bearer"}
        if issued:
            issued_at = str(int(self.clock.now() * 1000))
            body["issued_at"] = issued_at
            mac = hmac.new(self.client_secret.encode(), (body["id"] + issued_at).encode(), hashlib.sha256).digest()
            body["signature"] = base64.b64encode(mac).decode()
        if scope:
            body["scope"] = scope
        return body

    def _grant(self, form):
        gt = form.get("grant_type", "")
        if gt == "password":
            self._client(form, secret_required=True)
            if form.get("username") != self.username or form.get("password") != self.password + self.security_token:
                raise OAuthError("invalid_grant", "authentication failure")
            return self._body(self._issue("password"))
        if gt == "refresh_token":
            self._client(form, secret_required=False)
            if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            return self._body(self._issue("refresh_token"), scope="refresh_token api")
        if gt == JWT_GRANT:
            return self._jwt(form.get("assertion", ""))
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _client(self, form, secret_required):
        if form.get("client_id") != self.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = form.get("client_secret")
        if (secret_required or secret is not None) and secret != self.client_secret:
            raise OAuthError("invalid_client", "invalid client credentials")

    def _jwt(self, assertion):
        parts = assertion.split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_grant", "invalid assertion")
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if self.jwt_key is None or not rs256_verify(self.jwt_key, (parts[0] + "." + parts[1]).encode("ascii"), sig):
            raise OAuthError("invalid_grant", "invalid assertion")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a.rstrip("/") in self.allowed_audiences() for a in auds):
            raise OAuthError("invalid_grant", "audience is invalid")
        exp = claims.get("exp")
        try:
            exp = float(exp) if not isinstance(exp, bool) else None
        except (TypeError, ValueError):
            exp = None
        if exp is None:
            raise OAuthError("invalid_grant", "invalid assertion")
        # the engine signs with the machine's clock; accept exp valid on it or on the emulator clock
        nows = (self.clock.now(), time.time())
        if all(exp <= now for now in nows):
            raise OAuthError("invalid_grant", "expired authorization code")
        # No upper bound: Salesforce documents "within 3 minutes", yet the Salesforce CLI signs
        # exp = Date.now() + 300 (milliseconds, thousands of years ahead) and real orgs accept it.
        if claims.get("sub") != self.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self._body(self._issue("jwt"), issued=False, scope="api")
