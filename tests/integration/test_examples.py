"""The example recipes run as documented: the standard import, the custom
object import, and the acme tenant (JWT bearer auth with a key file, a
customised default mapping, a tenant-local module and a Lua transform)."""
import os
import shutil
import subprocess
import unittest

import engine
from engine import Workdir, credentials_env, run
from harness import Emulator
import tap

EXAMPLES = os.path.join(engine.ROOT, "examples")
FIXTURE = os.path.join(engine.ROOT, "tests", "fixtures", "import")


class Examples(unittest.TestCase):
    def setUp(self):
        self.w = Workdir()

    def tearDown(self):
        self.w.cleanup()

    def test_import_example(self):
        """examples/import.lua imports the four standard objects into their streams"""
        with Emulator(["--generate", "Lead=300,Contact=200,Account=50,Opportunity=80", "--seed", "3"]) as emu:
            env = credentials_env(emu, SF_OUTPUT=self.w.path("out"))
            p = run(os.path.join(EXAMPLES, "import.lua"), env, "--state-dir", self.w.path("state"), check=0)
            self.assertIn("import demo-import: done", p.stdout)
            for stream, n in (("salesforce_leads", 300), ("salesforce_contacts", 200),
                              ("salesforce_accounts", 50), ("salesforce_opportunities", 80)):
                self.assertEqual(len(self.w.read_ndjson("out", stream + ".ndjson")), n, stream)
            # Additional field Rating lands under its raw source name.
            self.assertTrue(any("lead_rating" in r for r in self.w.read_ndjson("out", "salesforce_leads.ndjson")))

    def test_custom_object_example(self):
        """examples/custom_object.lua imports Invoice__c since 2024 into salesforce_invoices"""
        with Emulator(["--data", FIXTURE]) as emu:
            env = credentials_env(emu, SF_OUTPUT=self.w.path("out"))
            run(os.path.join(EXAMPLES, "custom_object.lua"), env, "--state-dir", self.w.path("state"), check=0)
            rows = self.w.read_ndjson("out", "salesforce_invoices.ndjson")
            self.assertEqual([r["Name"] for r in rows], ["INV-0001"])
            self.assertEqual(rows[0]["Contact__c"], "003000000000001AAA")

    def test_acme_tenant_jwt_and_custom_mapping(self):
        """the acme tenant logs in with JWT and customises the Lead mapping without touching mappings/"""
        tenant = self.w.path("acme")
        shutil.copytree(os.path.join(EXAMPLES, "tenants", "acme"), tenant)
        key, cert = os.path.join(tenant, "sf_private_key.pem"), self.w.path("sf_cert.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", key, "-pkeyopt", "rsa_keygen_bits:2048"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=sfengine test"], check=True, capture_output=True)
        with Emulator(["--data", FIXTURE, "--jwt-cert", cert]) as emu:
            env = credentials_env(emu, SF_OUTPUT=self.w.path("out"))
            for k in ("SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_CLIENT_SECRET"):
                env.pop(k)
            p = run(os.path.join(tenant, "import.lua"), env, check=0)
            self.assertIn("acme-import", p.stdout)
            leads = self.w.read_ndjson("out", "salesforce_leads.ndjson")
            ada = next(r for r in leads if r.get("salesforce_lead_first_name") == "Ada")
            self.assertEqual(ada["company"], "Analytical Engines", "renamed user field")
            self.assertNotIn("salesforce_lead_company", ada)
            self.assertNotIn("salesforce_lead_salutation", ada, "dropped row")
            self.assertEqual(ada["lead_temperature"], "Hot", "added row")
            self.assertEqual(ada["acme_region"], "apac", "Lua transform with the tenant's lookup table")
            zoe = next(r for r in leads if r.get("salesforce_lead_first_name") == "Zoë")
            self.assertNotIn("acme_region", zoe, "a null source is omitted, the transform is not called")
            contacts = self.w.read_ndjson("out", "salesforce_contacts.ndjson")
            self.assertEqual(len(contacts), 2)
            self.assertFalse(os.path.exists(self.w.path("out", "salesforce_accounts.ndjson")))
            self.assertEqual(emu.stats().get("logins"), 1)
            # The private key never appears in logs, state or output.
            pem = open(key).read().splitlines()[1]
            for root, _, files in os.walk(self.w.dir):
                for f in files:
                    if f.endswith(".pem"):
                        continue
                    self.assertNotIn(pem, open(os.path.join(root, f), errors="replace").read(), f)
            self.assertNotIn(pem, p.stdout + p.stderr)


if __name__ == "__main__":
    tap.main()
