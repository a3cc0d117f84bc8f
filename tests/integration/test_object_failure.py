"""One failing object never starves the others (issue 11, item 4), against the emulator's field
removal (an admin deletes a field: queries naming it get 400 INVALID_FIELD, describe loses it):

  * a default-mapping field removed after the describe was cached: that object fails with
    Salesforce's reason, every other object (also the ones after it in the plan) is imported,
    the summary and the run history name the failed stream and its reason, exit 1; its cursor
    stays; the next run describes it again and imports it from its own checkpoint, exactly once
  * a field the recipe names removed: the same, then a recipe error (exit 2) for that object
    only while the field is gone; restored, the object catches up
  * --keep-updated: a run with a failed object does not end the loop; the next cycle runs
"""
import collections
import datetime
import time
import unittest

import engine  # noqa: F401 (paths)
from faultlib import Org, Job, import_recipe, wait_for
import tap

ORG = Org(["--generate", "Lead=300,Contact=200,Account=50,Opportunity=80"])


def ids_once(test, job, stream, emu, obj):
    """every record of obj in the emulator (deleted ones as deletion events) is in the stream exactly once"""
    got = collections.Counter(r["_id"] for r in job.w.read_ndjson("out", stream + ".ndjson"))
    test.assertEqual(set(got), {r["Id"] for r in emu.records(obj)}, stream)
    test.assertEqual([i for i, n in got.items() if n != 1], [], stream + ": each record once")


class ObjectFailure(unittest.TestCase):
    maxDiff = None

    def test_removed_field_fails_only_its_object(self):
        """Contact.Title removed: Contact fails (INVALID_FIELD, exit 1), Lead, Account and Opportunity import;
        the next run re-describes Contact and imports it from its checkpoint"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t"))
            try:
                job.run(check=0)
                cursor = job.state()["cursors"]["Contact"]
                emu.remove_field("Contact", "Title")
                emu.insert("Lead", [{"LastName": "After", "Company": "Removal"}])
                emu.insert("Contact", [{"LastName": "After"}])
                emu.insert("Account", [{"Name": "After Removal"}])
                p = job.run()
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("Contact failed", p.stderr)
                self.assertIn("INVALID_FIELD", p.stderr)
                self.assertIn("salesforce_contacts FAILED", p.stdout)
                h = job.history()[-1]
                self.assertEqual(h["status"], "failed")
                self.assertIn("1 of 4 objects failed (Contact)", h["message"])
                self.assertIn("INVALID_FIELD", h["streams"]["salesforce_contacts"]["failed"])
                self.assertEqual([f["object"] for f in h["failed_objects"]], ["Contact"])
                self.assertEqual(h["streams"]["salesforce_leads"]["records"], 1, "the object before it ran")
                self.assertEqual(h["streams"]["salesforce_accounts"]["records"], 1, "the objects after it ran too")
                self.assertIn("salesforce_opportunities", h["streams"])
                self.assertNotIn("failed", h["streams"]["salesforce_accounts"])
                self.assertEqual(job.state()["cursors"]["Contact"], cursor, "the failed object's checkpoint stays")
                p = job.run(check=0)
                self.assertIn("field Title is not in this org", p.stderr)
                self.assertEqual(job.history()[-1]["streams"]["salesforce_contacts"]["records"], 1)
                for obj, stream in (("Lead", "salesforce_leads"), ("Contact", "salesforce_contacts"),
                                    ("Account", "salesforce_accounts")):
                    ids_once(self, job, stream, emu, obj)
            finally:
                job.cleanup()

    def test_removed_recipe_field_is_a_recipe_error_of_its_object(self):
        """a removed additional field: INVALID_FIELD (exit 1), then a recipe error of that object only (exit 2)
        while the others import; restored, the object catches up exactly once"""
        with ORG.emulator() as emu:
            job = Job(emu, "t", import_recipe("t", objects='{ Lead = { additional_fields = { "Rating" } }, Account = {} }'))
            try:
                job.run(check=0)
                emu.remove_field("Lead", "Rating")
                emu.insert("Lead", [{"LastName": "One", "Company": "C"}])
                emu.insert("Account", [{"Name": "One"}])
                p = job.run()
                self.assertEqual(p.returncode, 1, p.stderr)
                emu.insert("Account", [{"Name": "Two"}])
                p = job.run()
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertRegex(p.stderr, r"job\.lua:\d+: objects\.Lead\.additional_fields: Lead has no field Rating")
                self.assertEqual([h["streams"]["salesforce_accounts"]["records"] for h in job.history()[1:]], [1, 1],
                                 "Account imported in both failing runs")
                emu.restore_field("Lead", "Rating")
                job.run(check=0)
                self.assertEqual(job.history()[-1]["streams"]["salesforce_leads"]["records"], 1)
                ids_once(self, job, "salesforce_leads", emu, "Lead")
                ids_once(self, job, "salesforce_accounts", emu, "Account")
            finally:
                job.cleanup()

    def test_keep_updated_goes_on_after_a_failed_run(self):
        """--keep-updated: the cycle with a failed object imports the others, and the loop runs the next cycle"""
        with ORG.emulator() as emu:
            offset = (48 - time.time() % 60) % 60     # the job's clock 48 s past a minute: the next one is near
            now = time.time() + offset
            at = datetime.datetime.fromtimestamp(now - now % 60 + 60, datetime.timezone.utc)
            extra = 'keep_updated = { every = "24h", time_of_day = "%02d:%02d" },' % (at.hour, at.minute)
            job = Job(emu, "t", import_recipe("t", objects="{ Lead = {}, Contact = {} }", extra=extra))
            job.offset = offset
            try:
                job.run(check=0)               # one-shot: caches the describes
                emu.remove_field("Contact", "Title")
                emu.insert("Lead", [{"LastName": "First", "Company": "C"}])
                proc = job.popen("--keep-updated", SFENGINE_MAX_RUNS=2)
                wait_for(lambda: len(job.history()) >= 2, timeout=60)
                emu.insert("Lead", [{"LastName": "Second", "Company": "C"}])
                out, err = proc.communicate(timeout=120)
                h = job.history()
                self.assertEqual([x["status"] for x in h[1:]], ["failed", "done"], err)
                self.assertEqual([x["streams"]["salesforce_leads"]["records"] for x in h[1:]], [1, 1])
                self.assertEqual(proc.returncode, 0, err)
                ids_once(self, job, "salesforce_contacts", emu, "Contact")
            finally:
                job.cleanup()


if __name__ == "__main__":
    tap.main()
