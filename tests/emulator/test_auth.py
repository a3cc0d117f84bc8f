"""Emulator auth and faults: JWT bearer grant (RS256 verified against --jwt-cert), session expiry by
calls / by time / on demand, deterministic failure injection (503, drop, slow), latency."""
import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402
import auth                                  # noqa: E402

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SESSION_401 = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_key(d, name):
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=sfengine-test"], check=True, capture_output=True, timeout=60)
    return key, cert


def sign_jwt(key, claims, d, header=None):
    signing_input = b64url(json.dumps(header or {"alg": "RS256"}).encode()) + "." + b64url(json.dumps(claims).encode())
    path = os.path.join(d, "input")
    with open(path, "wb") as fh:
        fh.write(signing_input.encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, path], check=True, capture_output=True,
                         timeout=60).stdout
    return signing_input + "." + b64url(sig)


@unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
class Jwt(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.key, cls.cert = make_key(cls.dir, "app")
        cls.other_key, _ = make_key(cls.dir, "other")
        cls.emu = Emulator(["--jwt-cert", cls.cert]).start()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def claims(self, **kw):
        c = {"iss": "demo-client-id", "sub": "demo@example.com", "aud": "https://login.salesforce.com",
             "exp": str(int(time.time()) + 120)}
        c.update(kw)
        return c

    def grant(self, assertion):
        return self.emu.token_request(grant_type=JWT_GRANT, assertion=assertion)

    def test_public_key_parsed_from_certificate(self):
        """the certificate's RSA modulus matches what openssl reports"""
        n, e = auth.load_public_key(self.cert)
        out = subprocess.run(["openssl", "x509", "-noout", "-modulus", "-in", self.cert], capture_output=True,
                             check=True, text=True).stdout
        self.assertEqual(int(out.strip().split("=", 1)[1], 16), n)
        self.assertEqual(e, 65537)

    def test_jwt_success(self):
        """a valid assertion (exp as string or number) yields a usable token with scope"""
        for aud in ("https://login.salesforce.com", "https://login.salesforce.com/"):
            for exp in (str(int(time.time()) + 150), int(time.time()) + 60):
                r = self.grant(sign_jwt(self.key, self.claims(aud=aud, exp=exp), self.dir))
                self.assertEqual(r.status, 200, (aud, exp, r.text))
                b = r.json
                self.assertEqual(b["instance_url"], self.emu.url)
                self.assertEqual(b["token_type"], "Bearer")
                self.assertIn("scope", b)
                r = self.emu.get(self.emu.data + "/limits", token=b["access_token"])
                self.assertEqual(r.status, 200)

    def test_jwt_errors(self):
        """bad signature, iss, aud, sub, past exp, malformed: the documented 400 pairs"""
        now = int(time.time())
        cases = [
            (sign_jwt(self.other_key, self.claims(), self.dir), "invalid_grant", "invalid assertion"),
            (sign_jwt(self.key, self.claims(iss="someone"), self.dir), "invalid_client_id", "client identifier invalid"),
            (sign_jwt(self.key, self.claims(aud="https://evil.example.com"), self.dir), "invalid_grant",
             "audience is invalid"),
            (sign_jwt(self.key, self.claims(sub="nobody@example.com"), self.dir), "invalid_grant",
             "user hasn't approved this consumer"),
            (sign_jwt(self.key, self.claims(exp=now - 10), self.dir), "invalid_grant", "expired authorization code"),
            (sign_jwt(self.key, self.claims(), self.dir, header={"alg": "HS256"}), "invalid_grant", "invalid assertion"),
            ("not.a.jwt", "invalid_grant", "invalid assertion"),
            ("", "invalid_grant", "invalid assertion"),
        ]
        for assertion, err, desc in cases:
            r = self.grant(assertion)
            self.assertEqual(r.status, 400, desc)
            self.assertEqual(r.json, {"error": err, "error_description": desc})

    def test_far_exp_accepted(self):
        """exp far ahead is accepted: the Salesforce CLI signs exp in milliseconds (Date.now() + 300) and real
        orgs log it in"""
        for exp in (int(time.time()) + 3600, int(time.time() * 1000) + 300):
            r = self.grant(sign_jwt(self.key, self.claims(exp=exp), self.dir))
            self.assertEqual(r.status, 200, (exp, r.text))

    def test_jwt_audience_is_the_documented_one(self):
        """aud must be https://login.salesforce.com (production), whatever host the token request went to:
        test.salesforce.com, the host asked (a My Domain, here the emulator) and others are refused"""
        for aud in ("https://test.salesforce.com", self.emu.url, "https://acme.my.salesforce.com",
                    "http://login.salesforce.com", "https://login.salesforce.com.evil.example"):
            r = self.grant(sign_jwt(self.key, self.claims(aud=aud), self.dir))
            self.assertEqual((r.status, r.json), (400, {"error": "invalid_grant",
                                                        "error_description": "audience is invalid"}), aud)
        # a list holding the documented audience passes (JWT allows aud to be an array)
        r = self.grant(sign_jwt(self.key, self.claims(aud=["https://example.com", "https://login.salesforce.com"]),
                                self.dir))
        self.assertEqual(r.status, 200, r.text)

    def test_jwt_audience_sandbox_and_site(self):
        """--sandbox: only https://test.salesforce.com; --jwt-audience (or config jwt_audiences) adds an
        Experience Cloud site URL"""
        site = "https://acme.my.site.com/customers"
        with Emulator(["--jwt-cert", self.cert, "--sandbox", "--jwt-audience", site]) as e:
            def grant(aud):
                return e.token_request(grant_type=JWT_GRANT, assertion=sign_jwt(self.key, self.claims(aud=aud),
                                                                                 self.dir))
            self.assertEqual(grant("https://test.salesforce.com").status, 200)
            self.assertEqual(grant(site).status, 200)
            self.assertEqual(grant(site + "/").status, 200)
            r = grant("https://login.salesforce.com")
            self.assertEqual((r.status, r.json["error_description"]), (400, "audience is invalid"))
            e.config(jwt_audiences=[e.url])
            self.assertEqual(grant(e.url).status, 200)
            self.assertEqual(grant(site).status, 400, "the configured list replaces the former one")
            self.assertEqual(e.config()["jwt_audiences"], [e.url])

    def test_tampered_claims_rejected(self):
        """changing the claims after signing breaks the signature"""
        tok = sign_jwt(self.key, self.claims(), self.dir)
        h, _, s = tok.split(".")
        forged = h + "." + b64url(json.dumps(self.claims(sub="demo@example.com", exp=int(time.time()) + 100)).encode()) + "." + s
        self.assertEqual(self.grant(forged).json["error_description"], "invalid assertion")

    def test_jwt_without_cert(self):
        """without --jwt-cert every assertion is refused"""
        with Emulator() as e:
            r = e.token_request(grant_type=JWT_GRANT, assertion=sign_jwt(self.key, self.claims(), self.dir))
            self.assertEqual(r.json, {"error": "invalid_grant", "error_description": "invalid assertion"})


class Sessions(unittest.TestCase):
    def test_session_calls(self):
        """--session-calls 3: the 4th call with a token gets 401 (not counted); a new login works"""
        with Emulator(["--session-calls", "3"]) as e:
            e.login()
            for _ in range(3):
                self.assertEqual(e.get(e.data + "/limits").status, 200)
            r = e.get(e.data + "/limits")
            self.assertEqual((r.status, r.json), (401, SESSION_401))
            self.assertEqual(e.stats()["api_calls"], 3)
            e.login()
            self.assertEqual(e.get(e.data + "/limits").status, 200)

    def test_session_seconds(self):
        """--session-seconds 60: after 61 s of emulator clock the token is refused"""
        with Emulator(["--session-seconds", "60"]) as e:
            e.login()
            self.assertEqual(e.get(e.data + "/limits").status, 200)
            e.advance_clock(61)
            self.assertEqual(e.get(e.data + "/limits").json, SESSION_401)

    def test_expire_sessions(self):
        """POST /__emulator/expire_sessions invalidates every token"""
        with Emulator() as e:
            e.login()
            self.assertEqual(e.expire_sessions()["expired"], 1)
            self.assertEqual(e.get(e.data + "/limits").status, 401)

    def test_session_calls_config(self):
        """session_calls can be switched on at run time"""
        with Emulator() as e:
            e.login()
            e.config(session_calls=1)
            e.login()
            self.assertEqual(e.get(e.data + "/limits").status, 200)
            self.assertEqual(e.get(e.data + "/limits").status, 401)


def statuses(args, n=60):
    """-> (statuses of n API calls, stats, injected failures met while logging in)"""
    out = []
    with Emulator(args) as e:
        login_fails = 0
        for _ in range(20):
            try:
                e.login()
                break
            except (RuntimeError, http.client.HTTPException, ConnectionError):
                login_fails += 1
        for _ in range(n):
            try:
                out.append(e.get(e.data + "/limits", timeout=10).status)
            except (http.client.HTTPException, ConnectionError):
                out.append("drop")
        stats = e.stats()
    return out, stats, login_fails


class Failures(unittest.TestCase):
    def test_fail_rate_deterministic(self):
        """--fail-rate with the same seed fails the same requests; another seed fails others"""
        args = ["--fail-rate", "0.3", "--fail-kinds", "503", "--api-limit", "1000"]
        a, sa, la = statuses(args + ["--seed", "7"])
        b, _, lb = statuses(args + ["--seed", "7"])
        c, _, _ = statuses(args + ["--seed", "8"])
        self.assertEqual((a, la), (b, lb))
        self.assertNotEqual(a, c)
        n503 = a.count(503)
        self.assertTrue(5 <= n503 <= 35, a)
        self.assertEqual(set(a), {200, 503})
        self.assertEqual(sa["injected"].get("503", 0), n503 + la)
        self.assertEqual(sa["api_calls"], a.count(200))

    def test_503_body_and_not_counted(self):
        """an injected 503 has a SERVER_UNAVAILABLE body and is not counted"""
        with Emulator(["--fail-rate", "1", "--fail-kinds", "503"]) as e:
            r = e.token_request(grant_type="password")
            self.assertEqual(r.status, 503)
            r = e.get(e.data + "/limits", token="x")
            self.assertEqual(r.json[0]["errorCode"], "SERVER_UNAVAILABLE")
            self.assertEqual(e.stats()["api_calls"], 0)
            e.config(fail_rate=0)
            e.login()
            self.assertEqual(e.get(e.data + "/limits").status, 200)

    def test_drop(self):
        """drop closes the connection without a response"""
        with Emulator(["--fail-rate", "1", "--fail-kinds", "drop"]) as e:
            with self.assertRaises((http.client.HTTPException, ConnectionError)):
                e.get("/services/data/", token=None)
            self.assertEqual(e.stats()["injected"], {"drop": 1})

    def test_slow_and_latency(self):
        """slow delays by --slow-ms then answers; --latency-ms delays every /services call"""
        with Emulator(["--fail-rate", "1", "--fail-kinds", "slow", "--slow-ms", "400"]) as e:
            t = time.monotonic()
            r = e.get("/services/data/", token=None)
            self.assertEqual(r.status, 200)
            self.assertGreaterEqual(time.monotonic() - t, 0.4)
        with Emulator(["--latency-ms", "1500"]) as e:
            t = time.monotonic()
            e.get("/services/data/", token=None)
            self.assertGreaterEqual(time.monotonic() - t, 1.5)
            t = time.monotonic()
            e.stats()
            self.assertLess(time.monotonic() - t, 1.5, "introspection is not delayed")

    def test_mixed_kinds_deterministic(self):
        """with several kinds the kind per failing request is also fixed by the seed"""
        args = ["--fail-rate", "0.5", "--fail-kinds", "503,500,drop", "--seed", "3"]
        a, sa, _ = statuses(args, 30)
        b, sb, _ = statuses(args, 30)
        self.assertEqual(a, b)
        self.assertEqual(sa["injected"], sb["injected"])
        self.assertGreaterEqual(len(sa["injected"]), 2)


if __name__ == "__main__":
    tap.main()
