"""Conventions users already know, and errors that say the fix.

Auth as the Salesforce CLI and jsforce take it (SF_ACCESS_TOKEN + SF_INSTANCE_URL, an
SFDX auth URL, SF_ORG_API_VERSION / --api-version); `stream = "name"` on a standard
object; `sfengine fields`; and the errors a new user meets first: every missing auth item
at once with the variables to set, a refused password naming the security token, a bad
login URL without a Lua pattern, an unwritable output directory named once, options that
do not fit the job.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import PASSWORD_AUTH, Workdir, credentials_env, normalized, run  # noqa: E402
import tap  # noqa: E402
from harness import Emulator  # noqa: E402

NO_AUTH = """return {
  job = "import", name = "conv", output = "out",
  objects = { Lead = %s },
}
"""


def bare_env(**extra):
    """The environment without any SF_* / SFDX_* variable of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SF_", "SFDX_"))}
    env.update(extra)
    return env


def lines(text):
    return [l for l in text.splitlines() if l.strip()]


class Auth(unittest.TestCase):
    def setUp(self):
        self.w = Workdir()

    def tearDown(self):
        self.w.cleanup()

    def test_access_token_and_instance_url(self):
        """SF_ACCESS_TOKEN + SF_INSTANCE_URL with no auth table: no login; a refused token says how to get a new one"""
        with Emulator(["--generate", "Lead=30"]) as emu:
            token = emu.login()
            r = self.w.write("job.lua", NO_AUTH % "{}")
            env = bare_env(SF_ACCESS_TOKEN=token, SF_INSTANCE_URL=emu.url)
            p = run(r, env, check=0)
            self.assertEqual(emu.stats()["logins"], 1, "the engine made no token request of its own")
            self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 30)
            self.assertNotIn(token, p.stdout + p.stderr)
            emu.expire_sessions()
            emu.insert("Lead", [{"LastName": "X", "Company": "Y"}])
            p = run(r, env)
            self.assertEqual(p.returncode, 1, p.stderr)
            err = lines(p.stderr)[-1]
            self.assertIn("refused the access token in SF_ACCESS_TOKEN", err)
            self.assertIn("sf org display --verbose", err)
            self.assertNotIn(token, p.stdout + p.stderr)

    def test_sfdx_auth_url(self):
        """SFDX_AUTH_URL=force://<clientId>:<clientSecret>:<refreshToken>@<instance>: the refresh-token flow on that instance"""
        with Emulator(["--generate", "Lead=12"]) as emu:
            r = self.w.write("job.lua", NO_AUTH % "{}")
            url = "force://demo-client-id:demo-client-secret:demo-refresh-token@" + emu.url
            p = run(r, bare_env(SFDX_AUTH_URL=url), check=0)
            self.assertEqual(len(self.w.read_ndjson("out", "salesforce_leads.ndjson")), 12)
            self.assertEqual(emu.stats()["logins"], 1)
            # the same in a recipe, explicitly
            r = self.w.write("job2.lua", """return { job = "import", name = "conv2", output = "out2",
  auth = { flow = "sfdx_url", auth_url = sf.secret_env "MY_ORG_URL" }, objects = { Lead = {} } }""")
            run(r, bare_env(MY_ORG_URL=url), check=0)
            # a revoked refresh token: Salesforce's words and what to do, no secret
            bad = "force://demo-client-id:demo-client-secret:revoked-token-123@" + emu.url
            p = run(r, bare_env(MY_ORG_URL=bad))
            self.assertEqual(p.returncode, 1)
            self.assertIn("expired access/refresh token", p.stderr)
            self.assertIn("refresh token in the SFDX auth URL (MY_ORG_URL) is no longer accepted", p.stderr)
            self.assertNotIn("revoked-token-123", p.stderr + p.stdout)

    def test_malformed_sfdx_url_is_a_recipe_error_without_the_url(self):
        """an SFDX auth URL that is not one: exit 2, the format expected, never the value"""
        r = self.w.write("job.lua", NO_AUTH % "{}")
        for bad in ("https://secret-token-9@example.com", "force://a:b@", "force://a:b:c:d:secret-token-9@x.my.salesforce.com"):
            p = run(r, bare_env(SFDX_AUTH_URL=bad))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(len(lines(p.stderr)), 1, p.stderr)
            self.assertIn("auth.auth_url: ", p.stderr)
            self.assertIn("force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>", p.stderr)
            self.assertNotIn("secret-token-9", p.stderr)

    def test_api_version_from_env_and_option(self):
        """SF_ORG_API_VERSION sets the API version; --api-version wins over it; a bad one is exit 2"""
        log = self.w.path("requests.jsonl")
        with Emulator(["--generate", "Lead=5", "--request-log", log]) as emu:
            r = self.w.write("job.lua", NO_AUTH % "{}")
            env = credentials_env(emu, SF_ORG_API_VERSION="58.0")
            run(r, env, check=0)
            emu.insert("Lead", [{"LastName": "X", "Company": "Y"}])
            run(r, env, "--api-version", "59.0", check=0)
        with open(log) as f:
            paths = [json.loads(l)["path"] for l in f]
        data = [p for p in paths if p.startswith("/services/data/v")]
        self.assertTrue(any(p.startswith("/services/data/v58.0/") for p in data), data)
        self.assertTrue(any(p.startswith("/services/data/v59.0/") for p in data), data)
        self.assertFalse(any(p.startswith("/services/data/v62.0/") for p in data), data)
        p = run(r, bare_env(SF_ORG_API_VERSION="latest"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("SF_ORG_API_VERSION: not an API version: latest (e.g. 62.0)", p.stderr)


class Errors(unittest.TestCase):
    def setUp(self):
        self.w = Workdir()

    def tearDown(self):
        self.w.cleanup()

    def recipe(self, auth=PASSWORD_AUTH, output="out", objects="{ Lead = {} }"):
        return self.w.write("job.lua", 'return {\n  job = "import", name = "err",\n  auth = %s,\n  output = "%s",\n  objects = %s,\n}\n'
                            % (auth, output, objects))

    def test_every_missing_auth_item_at_once(self):
        """nothing set: one line naming every missing item and the variables to set, at the auth line"""
        p = run(self.recipe(), bare_env())
        self.assertEqual(p.returncode, 2)
        self.assertEqual(lines(p.stderr), ["sfengine: %s:3: auth: the password flow needs client_id, username and password, "
                                           "which are not set: set SF_CLIENT_ID, SF_USERNAME and SF_PASSWORD in the environment"
                                           % self.w.path("job.lua")])

    def test_missing_items_name_the_recipes_own_variables(self):
        """a recipe reading ACME_* variables: the message names those"""
        auth = """{
    flow = "password",
    client_id = sf.secret_env "ACME_CLIENT_ID",
    username = sf.env "ACME_USER",
    password = sf.secret_env "ACME_PW",
  }"""
        p = run(self.recipe(auth=auth), bare_env(ACME_USER="someone"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs client_id and password, which are not set: set ACME_CLIENT_ID and ACME_PW in the environment",
                      p.stderr)

    def test_no_auth_table_names_the_alternatives(self):
        """no auth table and no variable: the conventional variables of each flow are named"""
        p = run(self.w.write("job.lua", NO_AUTH % "{}"), bare_env())
        self.assertEqual(p.returncode, 2)
        self.assertIn("set SF_CLIENT_ID, SF_USERNAME and SF_PASSWORD", p.stderr)
        self.assertIn("SF_ACCESS_TOKEN + SF_INSTANCE_URL", p.stderr)
        self.assertIn("SFDX_AUTH_URL", p.stderr)

    def test_wrong_password_names_the_security_token(self):
        """invalid_grant on the password flow: Salesforce's words, then the variables to check and the security token"""
        with Emulator(["--generate", "Lead=3"]) as emu:
            r = self.recipe()
            p = run(r, credentials_env(emu, SF_PASSWORD="wrong"))
            self.assertEqual(p.returncode, 1)
            err = lines(p.stderr)[-1]
            self.assertIn("refused: invalid_grant: authentication failure", err)
            self.assertIn("SF_USERNAME, SF_PASSWORD", err)
            self.assertIn("SF_SECURITY_TOKEN", err)
            self.assertIn("security token", err)
            self.assertNotIn("describe failed", err)
            env = credentials_env(emu)
            del env["SF_SECURITY_TOKEN"]
            p = run(r, env)
            self.assertIn("Salesforce also wants the user's security token: set SF_SECURITY_TOKEN", p.stderr)
            p = run(r, credentials_env(emu, SF_CLIENT_ID="nope"))
            self.assertIn("consumer key is wrong: check client_id (SF_CLIENT_ID)", p.stderr)

    def test_unreachable_login_host_says_what_to_check(self):
        """nothing listens at the login URL: the transport error, then the variable to check"""
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = run(self.recipe(), bare_env(SF_LOGIN_URL="http://127.0.0.1:%d" % port, SF_CLIENT_ID="x", SF_USERNAME="u",
                                        SF_PASSWORD="p"), timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("nothing answers there: check login_url (SF_LOGIN_URL) and the network", lines(p.stderr)[-1])

    def test_bad_login_url_says_what_to_change(self):
        """a login URL without https:// or with a path: one line saying what to change, never a Lua pattern"""
        for bad, want in (("127.0.0.1:8761", "must start with https://"),
                          ("https://acme.my.salesforce.com/services/oauth2", 'drop "/services/oauth2"'),
                          ("https://", "is not a host name")):
            p = run(self.recipe(), bare_env(SF_LOGIN_URL=bad, SF_CLIENT_ID="x", SF_USERNAME="u", SF_PASSWORD="p"))
            self.assertEqual(p.returncode, 2, p.stderr)
            err = lines(p.stderr)
            self.assertEqual(len(err), 1, p.stderr)
            self.assertIn("auth.login_url: ", err[0])
            self.assertIn(want, err[0])
            self.assertNotIn("%", err[0])

    def test_unwritable_output_directory_named_once(self):
        """an output directory that cannot be made: its path once, the reason, what to change"""
        p = run(self.recipe(output="/proc/sfengine-nope/out"), bare_env(SF_CLIENT_ID="x", SF_USERNAME="u", SF_PASSWORD="p"))
        self.assertEqual(p.returncode, 1)
        err = lines(p.stderr)
        self.assertEqual(len(err), 1, p.stderr)
        self.assertEqual(err[0].count("/proc/sfengine-nope/out"), 1, err[0])
        self.assertIn("cannot create the output directory /proc/sfengine-nope/out: ", err[0])
        self.assertIn("set `output`", err[0])

    def test_options_that_do_not_fit_the_job(self):
        """--dry-run on an import and --estimate on an export are usage errors that point at the right option"""
        env = bare_env(SF_CLIENT_ID="x", SF_USERNAME="u", SF_PASSWORD="p")
        p = run(self.recipe(), env, "--dry-run")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--dry-run applies to export recipes only", p.stderr)
        self.assertIn("--estimate", p.stderr)
        p = run(self.recipe(), env, "--html", "x.html")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--html does not apply to the run command (only to: history)", p.stderr)


class Streams(unittest.TestCase):
    def test_stream_rename_keeps_the_default_mapping(self):
        """objects.Lead.stream = "crm_leads": the same lines as salesforce_leads, in crm_leads.ndjson"""
        w = Workdir()
        try:
            with Emulator(["--generate", "Lead=40", "--seed", "9", "--clock", "1700000000"]) as emu:
                renamed = w.write("a/job.lua", NO_AUTH.replace('name = "conv"', 'name = "a"') % '{ stream = "crm_leads" }')
                plain = w.write("b/job.lua", NO_AUTH.replace('name = "conv"', 'name = "b"') % "{}")
                run(renamed, credentials_env(emu), check=0)
                run(plain, credentials_env(emu), check=0)
            got = w.read_ndjson("a", "out", "crm_leads.ndjson")
            want = w.read_ndjson("b", "out", "salesforce_leads.ndjson")
            self.assertEqual(len(got), 40)
            # the same lines but for the import time (the runs straddle a second)
            self.assertEqual(normalized(got), normalized(want))
            self.assertFalse(os.path.exists(w.path("a", "out", "salesforce_leads.ndjson")))
            with open(w.path("a", "out", "crm_leads.schema.json")) as f:
                self.assertEqual(json.load(f)["stream"], "crm_leads")
            dup = w.write("c/job.lua", NO_AUTH.replace("objects = { Lead = %s }",
                                                       'objects = { Lead = {}, Contact = { stream = "salesforce_leads" } }'))
            p = run(dup, bare_env(SF_CLIENT_ID="x", SF_USERNAME="u", SF_PASSWORD="p"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn('objects.Contact.stream: stream "salesforce_leads" is already Lead\'s', p.stderr)
        finally:
            w.cleanup()


class Fields(unittest.TestCase):
    def test_fields_command(self):
        """sfengine fields RECIPE Lead lists the org's fields with types; --json; --describe; an unknown object"""
        w = Workdir()
        try:
            with Emulator(["--generate", "Lead=1"]) as emu:
                r = w.write("job.lua", NO_AUTH % "{}")
                env = credentials_env(emu)
                from engine import SFENGINE
                import subprocess
                p = subprocess.run([SFENGINE, "fields", r, "Lead"], env=env, capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                rows = {l.split()[0]: l for l in lines(p.stdout)[1:-1]}
                self.assertRegex(rows["Email"], r"^Email\s+email\s+80\s+.*create, update")
                self.assertRegex(rows["OwnerId"], r"reference -> User")
                self.assertRegex(rows["Lytics_Audiences__c"], r"textarea\s+32768\s.*custom")
                self.assertRegex(lines(p.stdout)[-1], r"^\d+ fields of Lead \(API v62\.0\)$")
                p = subprocess.run([SFENGINE, "--describe", "Lead", "--json", r], env=env, capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                fields = {f["name"]: f for f in json.loads(p.stdout)}
                self.assertEqual(fields["Email"]["type"], "email")
                self.assertEqual(fields["AnnualRevenue"]["type"], "currency")
                self.assertIn("create", fields["Email"]["flags"])
                p = subprocess.run([SFENGINE, "fields", r, "Lede"], env=env, capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 1)
                self.assertIn("the org has no object Lede", p.stderr)
                self.assertFalse(os.path.exists(w.path("out")), "fields creates no output directory")
        finally:
            w.cleanup()


if __name__ == "__main__":
    tap.main()
