"""JWT bearer audience, engine against the emulator (which accepts only Salesforce's documented
audiences): with a login_url that is not a Salesforce login host (a My Domain; here the emulator) the
assertion's aud is still https://login.salesforce.com; sandbox = true sends https://test.salesforce.com;
auth.audience (an Experience Cloud site URL) is sent as given; a malformed audience is a recipe error."""
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from engine import Workdir, run, import_recipe, ROOT  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tap  # noqa: E402
from harness import Emulator  # noqa: E402

SITE = "https://acme.my.site.com/customers"


JWT_AUTH = """{
    flow = "jwt",
    login_url = sf.env "SF_LOGIN_URL",
    client_id = sf.secret_env "SF_CLIENT_ID",
    username = sf.env "SF_USERNAME",
    private_key_file = "key.pem",%s
  }"""


def recipe(extra=""):
    return import_recipe("jwt-aud", "{ Lead = {} }", auth=JWT_AUTH % extra)


@unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
class JwtAudience(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = Workdir()
        cls.key, cls.cert = cls.w.path("key.pem"), cls.w.path("cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
                        cls.cert, "-days", "2", "-subj", "/CN=sfengine-test"], check=True, capture_output=True,
                       timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.w.cleanup()

    def env(self, emu):
        e = dict(os.environ)
        e.update({"SF_LOGIN_URL": emu.url, "SF_CLIENT_ID": "demo-client-id", "SF_USERNAME": "demo@example.com"})
        return e

    def go(self, emu_args, extra=""):
        path = self.w.write("r%d/import.lua" % abs(hash((tuple(emu_args), extra))), recipe(extra))
        shutil.copy(self.key, os.path.join(os.path.dirname(path), "key.pem"))
        with Emulator(["--generate", "Lead=7", "--jwt-cert", self.cert] + emu_args) as emu:
            p = run(path, self.env(emu), "--state-dir", os.path.join(os.path.dirname(path), "state"))
            stats = emu.stats()
        return p, stats, os.path.dirname(path)

    def test_my_domain_login_url_sends_production_audience(self):
        """login_url = a My Domain (the emulator): the login succeeds, aud = https://login.salesforce.com"""
        p, stats, d = self.go([])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual((stats["logins"], stats["login_failures"]), (1, 0))
        with open(os.path.join(d, "out", "salesforce_leads.ndjson")) as fh:
            self.assertGreater(len(fh.readlines()), 0)

    def test_sandbox_sends_test_audience(self):
        """sandbox = true against a sandbox org: aud https://test.salesforce.com is accepted; against a
        production org the same recipe is refused with Salesforce's words, exit 1"""
        p, stats, _ = self.go(["--sandbox"], "\n    sandbox = true,")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(stats["logins"], 1)
        p, stats, _ = self.go([], "\n    sandbox = true,")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("audience is invalid", p.stdout + p.stderr)
        self.assertEqual(stats["logins"], 0)

    def test_explicit_audience(self):
        """auth.audience = an Experience Cloud site URL is sent as the aud (and only it is)"""
        p, stats, _ = self.go(["--jwt-audience", SITE], '\n    audience = "%s",' % SITE)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(stats["logins"], 1)
        p, stats, _ = self.go([], '\n    audience = "%s",' % SITE)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("audience is invalid", p.stdout + p.stderr)

    def test_malformed_audience_is_a_recipe_error(self):
        """auth.audience that is not an https URL: exit 2, the message names file:line and auth.audience"""
        for bad in ("login.salesforce.com", "http://login.salesforce.com"):
            p, stats, d = self.go([], '\n    audience = "%s",' % bad)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            out = p.stdout + p.stderr
            self.assertRegex(out, r"import\.lua:\d+")
            self.assertIn("auth.audience", out)
            self.assertEqual(stats["logins"] + stats["login_failures"], 0)


if __name__ == "__main__":
    tap.main()
