"""`columns=true` on query and queryAll: the query's column metadata instead of its records, shaped as
Salesforce shapes it (the Salesforce CLI asks it before printing): field columns with apexType and
flags from describe, parent relationships and child subqueries as joinColumns, aggregate columns,
entityName, groupBy, idSelected, keyPrefix; SOQL errors as for the query itself."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import tap                                   # noqa: E402
from harness import Emulator                 # noqa: E402

KEYS = ["aggregate", "apexType", "booleanType", "columnName", "custom", "displayName", "foreignKeyName",
        "insertable", "joinColumns", "numberType", "textType", "updatable"]


class Columns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(["--generate", "Account=3,Contact=5,Lead=4"]).start()
        cls.emu.login()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def cols(self, soql, endpoint="query"):
        r = self.emu.get("%s/%s?q=%s&columns=true" % (self.emu.data, endpoint, self.emu.q(soql)))
        self.assertEqual(r.status, 200, r.text)
        return r.json

    def test_fields(self):
        """plain fields: one column each, keys sorted, types and flags from describe; top-level keys"""
        b = self.cols("SELECT Id, LastName, Email, NumberOfEmployees, IsConverted, AnnualRevenue, CreatedDate, "
                      "Lytics_Scores__c FROM Lead")
        self.assertEqual(sorted(b), ["columnMetadata", "entityName", "groupBy", "idSelected", "keyPrefix"])
        self.assertEqual((b["entityName"], b["groupBy"], b["idSelected"], b["keyPrefix"]), ("Lead", False, True, "00Q"))
        c = {x["columnName"]: x for x in b["columnMetadata"]}
        self.assertEqual(list(c), ["Id", "LastName", "Email", "NumberOfEmployees", "IsConverted", "AnnualRevenue",
                                   "CreatedDate", "Lytics_Scores__c"])
        for x in b["columnMetadata"]:
            self.assertEqual(list(x), KEYS)
            self.assertEqual((x["aggregate"], x["joinColumns"], x["foreignKeyName"]), (False, [], None))
            self.assertEqual(x["displayName"], x["columnName"])
        self.assertEqual((c["Id"]["apexType"], c["Id"]["textType"], c["Id"]["insertable"]), ("Id", False, False))
        self.assertEqual((c["LastName"]["apexType"], c["LastName"]["textType"], c["LastName"]["insertable"],
                          c["LastName"]["updatable"]), ("String", True, True, True))
        self.assertEqual((c["NumberOfEmployees"]["apexType"], c["NumberOfEmployees"]["numberType"]), ("Integer", True))
        self.assertEqual((c["IsConverted"]["apexType"], c["IsConverted"]["booleanType"]), ("Boolean", True))
        self.assertEqual(c["AnnualRevenue"]["apexType"], "Decimal")
        self.assertEqual((c["CreatedDate"]["apexType"], c["CreatedDate"]["updatable"]), ("Datetime", False))
        self.assertTrue(c["Lytics_Scores__c"]["custom"])
        self.assertFalse(self.cols("SELECT Name FROM Lead")["idSelected"])

    def test_parent_and_child_joins(self):
        """Account.Name / Account.Owner.Name: one Account column with foreignKeyName AccountId and nested
        joinColumns; (SELECT ... FROM Contacts): an aggregate column of the child's columns"""
        b = self.cols("SELECT Id, Account.Name, Account.Owner.Name FROM Contact")
        c = b["columnMetadata"]
        self.assertEqual([x["columnName"] for x in c], ["Id", "Account"])
        acc = c[1]
        self.assertEqual((acc["apexType"], acc["foreignKeyName"], acc["aggregate"], acc["insertable"]),
                         (None, "AccountId", False, False))
        self.assertEqual([x["columnName"] for x in acc["joinColumns"]], ["Name", "Owner"])
        owner = acc["joinColumns"][1]
        self.assertEqual((owner["foreignKeyName"], [x["columnName"] for x in owner["joinColumns"]]), ("OwnerId", ["Name"]))
        self.assertEqual(acc["joinColumns"][0]["apexType"], "String")
        self.assertEqual(b["entityName"], "Contact")
        b = self.cols("SELECT Name, (SELECT LastName, Email, Owner.Name FROM Contacts) FROM Account")
        c = b["columnMetadata"]
        self.assertEqual([x["columnName"] for x in c], ["Name", "Contacts"])
        kids = c[1]
        self.assertEqual((kids["aggregate"], kids["apexType"], kids["foreignKeyName"]), (True, None, None))
        self.assertEqual([x["columnName"] for x in kids["joinColumns"]], ["LastName", "Email", "Owner"])
        self.assertEqual(kids["joinColumns"][2]["joinColumns"][0]["columnName"], "Name")
        self.assertEqual((b["entityName"], b["keyPrefix"], b["idSelected"]), ("Account", "001", False))

    def test_aggregates(self):
        """aggregate functions: exprN or the alias, displayName as the call in lower case; GROUP BY fields;
        groupBy true; COUNT() has no columns"""
        b = self.cols("SELECT LeadSource, COUNT(Id), MAX(CreatedDate) latest, SUM(NumberOfEmployees) FROM Lead "
                      "GROUP BY LeadSource")
        self.assertTrue(b["groupBy"])
        c = b["columnMetadata"]
        self.assertEqual([(x["columnName"], x["displayName"], x["aggregate"]) for x in c],
                         [("LeadSource", "LeadSource", False), ("expr0", "count(Id)", True),
                          ("latest", "max(CreatedDate)", True), ("expr1", "sum(NumberOfEmployees)", True)])
        self.assertEqual([x["numberType"] for x in c], [False, True, False, True])
        b = self.cols("SELECT COUNT() FROM Lead")
        self.assertEqual((b["columnMetadata"], b["entityName"], b["keyPrefix"]), ([], "Lead", "00Q"))

    def test_query_all_and_errors(self):
        """queryAll answers the same; a bad query is the same 400 as without columns; it is a counted call"""
        self.assertEqual(self.cols("SELECT Id FROM Lead", "queryAll")["entityName"], "Lead")
        before = self.emu.stats()["api_calls"]
        r = self.emu.get("%s/query?q=%s&columns=true" % (self.emu.data, self.emu.q("SELECT Nope FROM Lead")))
        self.assertEqual((r.status, r.json[0]["errorCode"]), (400, "INVALID_FIELD"))
        self.assertEqual(self.emu.stats()["api_calls"], before + 1)
        r = self.emu.get("%s/query?q=%s&columns=false" % (self.emu.data, self.emu.q("SELECT Id FROM Lead")))
        self.assertIn("records", r.json)


if __name__ == "__main__":
    tap.main()
