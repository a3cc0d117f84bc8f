"""SOQL: every operator, escaping, nulls, ordering, relationships, subqueries, COUNT() and every
error message, against a small in-memory org (FakeDb below, also used by test_bulk.py)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import tap  # noqa: E402
import soql  # noqa: E402
from soql import SoqlError  # noqa: E402


# ---------------------------------------------------------------------------------------------
# a fake org: describes, rows, 18-character ids (the db interface soql.py and bulk.py read)

from store import to18 as id18  # noqa: E402  (Salesforce's case-safe 18-character id)


def make_id(prefix, n):
    return id18("%s%012d" % (prefix, n))


def F(name, type="string", **kw):
    d = {"name": name, "type": type, "nillable": True, "createable": True, "updateable": True,
         "filterable": True, "sortable": True, "custom": name.endswith("__c"), "externalId": False,
         "idLookup": name == "Id", "length": 255 if type in ("string", "email", "phone", "url", "picklist") else 0,
         "relationshipName": None, "referenceTo": [], "calculated": False, "compoundFieldName": None,
         "caseSensitive": False}
    d.update(kw)
    return d


def ref(name, rel, to):
    return F(name, "reference", relationshipName=rel, referenceTo=list(to) if isinstance(to, (list, tuple)) else [to],
             length=18)


def child(child_obj, field, rel):
    return {"childSObject": child_obj, "field": field, "relationshipName": rel, "cascadeDelete": False}


def _common():
    return [F("Id", "id", nillable=False, createable=False, updateable=False, length=18),
            F("IsDeleted", "boolean", nillable=False, createable=False, updateable=False),
            F("CreatedDate", "datetime", createable=False, updateable=False),
            F("LastModifiedDate", "datetime", createable=False, updateable=False),
            F("SystemModstamp", "datetime", createable=False, updateable=False)]


def describes():
    addr = [F("Billing" + p) for p in ("Street", "City", "State", "PostalCode", "Country")]
    for f in addr:
        f["compoundFieldName"] = "BillingAddress"
    addr.append(F("BillingAddress", "address", filterable=False, sortable=False, createable=False, updateable=False))
    objs = {
        "Account": {"fields": _common() + [F("Name"), F("Industry", "picklist"), F("AnnualRevenue", "currency"),
                                           F("NumberOfEmployees", "int"), ref("OwnerId", "Owner", "User"),
                                           ref("ParentId", "Parent", "Account"),
                                           F("External_Id__c", externalId=True, idLookup=True)] + addr,
                    "childRelationships": [child("Contact", "AccountId", "Contacts"),
                                           child("Opportunity", "AccountId", "Opportunities"),
                                           child("Account", "ParentId", "ChildAccounts")]},
        "Contact": {"fields": _common() + [F("FirstName"), F("LastName"), F("Email", "email"),
                                           ref("AccountId", "Account", "Account"), F("Birthdate", "date")],
                    "childRelationships": [child("OpportunityContactRole", "ContactId", "OpportunityContactRoles")]},
        "Lead": {"fields": _common() + [F("FirstName"), F("LastName"), F("Company"), F("Email", "email"),
                                        F("Status", "picklist"), F("IsConverted", "boolean"),
                                        F("AnnualRevenue", "currency"), F("NumberOfEmployees", "int"),
                                        F("Rating__c", "double"), F("ConvertedDate", "date"),
                                        F("Description", "textarea", filterable=False, sortable=False),
                                        F("Interests__c", "multipicklist", sortable=False),
                                        F("External_Id__c", externalId=True, idLookup=True, caseSensitive=False),
                                        ref("OwnerId", "Owner", ["User", "Group"]),
                                        ref("RecordTypeId", "RecordType", "RecordType"),
                                        ref("ConvertedAccountId", "ConvertedAccount", "Account")],
                 "childRelationships": []},
        "Opportunity": {"fields": _common() + [F("Name"), ref("AccountId", "Account", "Account"),
                                               F("Amount", "currency"), F("CloseDate", "date"),
                                               F("StageName", "picklist")],
                        "childRelationships": [child("OpportunityContactRole", "OpportunityId",
                                                     "OpportunityContactRoles")]},
        "OpportunityContactRole": {"fields": _common() + [ref("OpportunityId", "Opportunity", "Opportunity"),
                                                          ref("ContactId", "Contact", "Contact"), F("Role", "picklist"),
                                                          F("IsPrimary", "boolean")],
                                   "childRelationships": []},
        "User": {"fields": _common() + [F("Name"), F("Username"), F("IsActive", "boolean")], "childRelationships": []},
        "Group": {"fields": _common() + [F("Name")], "childRelationships": []},
        "RecordType": {"fields": _common() + [F("Name"), F("DeveloperName"), F("SobjectType", "picklist")],
                       "childRelationships": []},
    }
    for name, d in objs.items():
        d["name"] = name
        d["custom"] = False
        d["queryable"] = True
    return objs


class FakeDb:
    api_version = "62.0"

    def __init__(self, now=1705314600.0):
        self.objects = describes()
        self._lower = {k.lower(): k for k in self.objects}
        self.data = {k: {} for k in self.objects}
        self.clock = now
        self.counters = {}

    def now(self):
        return self.clock

    def name(self, obj):
        return self._lower.get(obj.lower())

    def describe(self, obj):
        n = self.name(obj)
        return self.objects[n] if n else None

    def rows(self, obj):
        return list(self.data[self.name(obj)].values())

    def get(self, obj, rid):
        n = self.name(obj)
        if n is None or rid is None:
            return None
        d = self.data[n]
        r = d.get(rid)
        if r is None and len(rid) == 15:
            r = d.get(id18(rid))
        return r

    _PREFIX = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
               "OpportunityContactRole": "00K", "User": "005", "Group": "00G", "RecordType": "012"}

    def add(self, obj, **fields):
        n = self.name(obj)
        rid = fields.get("Id")
        if rid is None:
            c = self.counters.get(n, 0) + 1
            self.counters[n] = c
            rid = make_id(self._PREFIX[n], c)
        rec = {f["name"]: None for f in self.objects[n]["fields"] if f["type"] != "address"}
        rec["IsDeleted"] = False
        ts = "2024-01-15T10:30:00.000+0000"
        rec["CreatedDate"] = rec["LastModifiedDate"] = rec["SystemModstamp"] = ts
        if n == "Lead":
            rec["IsConverted"] = False
        rec.update(fields)
        rec["Id"] = rid
        self.data[n][rid] = rec
        return rec

    # the write half bulk.py needs through ctx.write
    def write(self, obj, op, record, external_id_field=None):
        n = self.name(obj)
        if n is None:
            return False, None, False, [{"statusCode": "INVALID_TYPE", "message": "bad object", "fields": []}]
        fields = {f["name"].lower(): f for f in self.objects[n]["fields"]}
        clean = {}
        for k, v in record.items():
            f = fields.get(k.lower())
            if f is None:
                return False, None, False, [{"statusCode": "INVALID_FIELD", "message": "No such column '%s' on sobject "
                                             "of type %s" % (k, n), "fields": []}]
            clean[f["name"]] = v
        if op == "delete":
            r = self.data[n].get(clean.get("Id"))
            if r is None or r["IsDeleted"]:
                return False, clean.get("Id"), False, [{"statusCode": "ENTITY_IS_DELETED" if r else "INVALID_CROSS_REFERENCE_KEY",
                                                        "message": "entity is deleted" if r else "invalid cross reference id",
                                                        "fields": []}]
            r["IsDeleted"] = True
            return True, r["Id"], False, []
        target = None
        if op == "update":
            target = self.data[n].get(clean.get("Id"))
            if target is None:
                return False, None, False, [{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross "
                                             "reference id", "fields": []}]
        elif op == "upsert":
            key = fields[external_id_field.lower()]["name"]
            val = clean.get(key)
            if key == "Id":
                target = self.data[n].get(val) if val else None
            else:
                hits = [r for r in self.data[n].values() if val is not None and r.get(key) == val and not r["IsDeleted"]]
                if len(hits) > 1:
                    return False, None, False, [{"statusCode": "DUPLICATE_EXTERNAL_ID", "message": "more than one "
                                                 "record found for external id field: %s" % [h["Id"] for h in hits],
                                                 "fields": []}]
                target = hits[0] if hits else None
        if n == "Lead":
            merged = dict(target or {})
            merged.update(clean)
            missing = [f for f in ("LastName", "Company") if not merged.get(f)]
            if missing:
                return False, None, False, [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are "
                                             "missing: [%s]" % ", ".join(missing), "fields": missing}]
            if merged.get("LastName") and len(merged["LastName"]) > 80:
                return False, None, False, [{"statusCode": "STRING_TOO_LONG", "message": "Last Name: data value too "
                                             "large: %s (max length=80)" % merged["LastName"], "fields": ["LastName"]}]
        if target is not None:
            clean.pop("Id", None)
            target.update(clean)
            return True, target["Id"], False, []
        clean.pop("Id", None)
        rec = self.add(n, **clean)
        return True, rec["Id"], True, []


def sample():
    """A small org covering relationships, nulls and every field type the tests need."""
    db = FakeDb()
    u1 = db.add("User", Name="Ada Admin", Username="ada@example.com", IsActive=True)
    g1 = db.add("Group", Name="Queue One")
    rt = db.add("RecordType", Name="Partner Lead", DeveloperName="Partner", SobjectType="Lead")
    a1 = db.add("Account", Name="Acme", External_Id__c="ACME-1", Industry="Technology", AnnualRevenue=1000000.0, NumberOfEmployees=50,
                OwnerId=u1["Id"], BillingStreet="1 Main St", BillingCity="Springfield", BillingState="IL",
                BillingPostalCode="62701", BillingCountry="USA")
    a2 = db.add("Account", Name="Globex", Industry="Energy", AnnualRevenue=None, NumberOfEmployees=10,
                OwnerId=u1["Id"], ParentId=a1["Id"])
    a3 = db.add("Account", Name="initech", Industry=None, NumberOfEmployees=None, OwnerId=None)
    c1 = db.add("Contact", FirstName="Joe", LastName="Smith", Email="joe@acme.com", AccountId=a1["Id"],
                Birthdate="1980-05-01")
    c2 = db.add("Contact", FirstName="Ann", LastName="Lee", Email="ann@acme.com", AccountId=a1["Id"])
    c3 = db.add("Contact", FirstName="Bob", LastName="Orphan", Email=None, AccountId=None)
    c4 = db.add("Contact", FirstName="Del", LastName="Gone", AccountId=a1["Id"], IsDeleted=True)
    o1 = db.add("Opportunity", Name="Big deal", AccountId=a1["Id"], Amount=5000.0, CloseDate="2024-02-01",
                StageName="Prospecting")
    o2 = db.add("Opportunity", Name="No roles", AccountId=a2["Id"], Amount=None, CloseDate="2024-03-01",
                StageName="Closed Won")
    r1 = db.add("OpportunityContactRole", OpportunityId=o1["Id"], ContactId=c1["Id"], Role="Decision Maker",
                IsPrimary=True)
    r2 = db.add("OpportunityContactRole", OpportunityId=o1["Id"], ContactId=c2["Id"], Role=None, IsPrimary=False)
    leads = [
        dict(FirstName="Ann", LastName="O'Brien", Company="Acme", Email="ann@acme.com", Status="Open",
             AnnualRevenue=100.0, NumberOfEmployees=5, Rating__c=1.5, OwnerId=u1["Id"], RecordTypeId=rt["Id"],
             Interests__c="Golf;Tennis", External_Id__c="EXT-1", SystemModstamp="2024-01-15T10:30:00.000+0000",
             CreatedDate="2024-01-10T08:00:00.000+0000", Description="likes\ngolf"),
        dict(FirstName="bob", LastName="Back\\slash", Company="Globex", Email="bob@globex.com", Status="Working",
             AnnualRevenue=2000.0, NumberOfEmployees=50, Rating__c=-2.0, OwnerId=g1["Id"],
             Interests__c="Tennis", External_Id__c="EXT-2", SystemModstamp="2024-01-15T10:30:00.000+0000",
             CreatedDate="2024-01-14T23:59:59.000+0000", ConvertedDate="2024-01-15", IsConverted=True,
             ConvertedAccountId=a2["Id"]),
        dict(FirstName=None, LastName="100% Pure_Name", Company="initech", Email=None, Status="Open",
             AnnualRevenue=None, NumberOfEmployees=None, Rating__c=None, OwnerId=u1["Id"],
             Interests__c=None, External_Id__c=None, SystemModstamp="2024-01-15T11:00:00.000+0000",
             CreatedDate="2024-01-15T00:00:00.000+0000"),
        dict(FirstName="Zed", LastName="Tab\tQuote\"", Company="Umbrella", Email="ZED@UMBRELLA.COM",
             Status="Closed", AnnualRevenue=50.5, NumberOfEmployees=1, Rating__c=0.0, OwnerId=u1["Id"],
             Interests__c="Chess;Golf", External_Id__c="ext-4", SystemModstamp="2024-01-16T09:00:00.000+0000",
             CreatedDate="2023-12-31T23:00:00.000-0500"),
        dict(FirstName="Del", LastName="Eted", Company="Gone Inc", Status="Open", IsDeleted=True,
             SystemModstamp="2024-01-17T00:00:00.000+0000", OwnerId=u1["Id"]),
    ]
    lead_recs = [db.add("Lead", **kw) for kw in leads]
    return db, dict(u1=u1, g1=g1, rt=rt, a1=a1, a2=a2, a3=a3, c1=c1, c2=c2, c3=c3, c4=c4, o1=o1, o2=o2, r1=r1, r2=r2,
                    leads=lead_recs)



# ---------------------------------------------------------------------------------------------
# tests

DB, R = sample()
L = {r["Company"]: r for r in R["leads"]}


def companies(where, order="", db=None, **kw):
    _, rows = soql.run("SELECT Id, Company FROM Lead" + (" WHERE " + where if where else "") + order, db or DB, **kw)
    return [r["Company"] for r in rows]


MSG_FIELD = ("If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
             "Please reference your WSDL or the describe call for the appropriate names.")
MSG_REL = ("If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
           "relationship name. Please reference your WSDL or the describe call for the appropriate names.")
MSG_TYPE = ("If you are attempting to use a custom object, be sure to append the '__c' after the entity name. "
            "Please reference your WSDL or the describe call for the appropriate names.")

# (WHERE clause, companies of the live Leads it selects, in Id order)
ALL4 = ["Acme", "Globex", "initech", "Umbrella"]
FILTERS = [
    ("Company = 'Acme'", ["Acme"]),
    ("Company = 'ACME'", ["Acme"]),
    ("company = 'acme'", ["Acme"]),
    ("Company != 'Acme'", ["Globex", "initech", "Umbrella"]),
    ("Company <> 'Acme'", ["Globex", "initech", "Umbrella"]),
    ("FirstName = null", ["initech"]),
    ("FirstName != null", ["Acme", "Globex", "Umbrella"]),
    ("FirstName = ''", ["initech"]),
    ("Email != 'ann@acme.com'", ["Globex", "initech", "Umbrella"]),
    ("AnnualRevenue > 100", ["Globex"]),
    ("AnnualRevenue >= 100", ["Acme", "Globex"]),
    ("AnnualRevenue < 100", ["Umbrella"]),
    ("AnnualRevenue <= 100", ["Acme", "Umbrella"]),
    ("AnnualRevenue = 50.5", ["Umbrella"]),
    ("AnnualRevenue != 50.5", ["Acme", "Globex", "initech"]),
    ("AnnualRevenue = null", ["initech"]),
    ("NumberOfEmployees IN (5, 50)", ["Acme", "Globex"]),
    ("NumberOfEmployees NOT IN (5, 50)", ["initech", "Umbrella"]),
    ("Rating__c = -2", ["Globex"]),
    ("Rating__c < 0", ["Globex"]),
    ("Rating__c > -2.5 AND Rating__c < 1", ["Globex", "Umbrella"]),
    ("Rating__c = 0", ["Umbrella"]),
    ("Status IN ('open', 'Closed')", ["Acme", "initech", "Umbrella"]),
    ("Status NOT IN ('Open')", ["Globex", "Umbrella"]),
    ("FirstName IN ('ann', null)", ["Acme", "initech"]),
    ("FirstName NOT IN ('ann', null)", ["Globex", "Umbrella"]),
    ("IsConverted = true", ["Globex"]),
    ("IsConverted = false", ["Acme", "initech", "Umbrella"]),
    ("IsConverted != true", ["Acme", "initech", "Umbrella"]),
    ("IsConverted = TRUE", ["Globex"]),
    ("LastName LIKE 'O\\'%'", ["Acme"]),
    ("LastName = 'O\\'Brien'", ["Acme"]),
    ("LastName LIKE 'back\\\\%'", ["Globex"]),
    ("LastName = 'Back\\\\slash'", ["Globex"]),
    ("LastName LIKE '%\\%%'", ["initech"]),
    ("LastName LIKE '%\\_%'", ["initech"]),
    ("LastName LIKE '%_ure%'", ["initech"]),
    ("LastName LIKE '1__\\% %'", ["initech"]),
    ("LastName LIKE '1__\\%'", []),
    ("LastName LIKE 'tab\\tquote\\\"'", ["Umbrella"]),
    ("LastName = 'Tab\\tQuote\\\"'", ["Umbrella"]),
    ("LastName LIKE 'o\\'brien'", ["Acme"]),
    ("Company LIKE 'a%' OR Company LIKE 'u%'", ["Acme", "Umbrella"]),
    ("Email LIKE '%@UMBRELLA.com'", ["Umbrella"]),
    ("Email LIKE '%'", ["Acme", "Globex", "Umbrella"]),
    ("NOT Company = 'Acme'", ["Globex", "initech", "Umbrella"]),
    ("NOT (Company = 'Acme' OR Company = 'Globex')", ["initech", "Umbrella"]),
    ("(Status = 'Open' AND FirstName != null) OR Company = 'Umbrella'", ["Acme", "Umbrella"]),
    ("Status = 'Open' AND (AnnualRevenue = null OR AnnualRevenue > 10)", ["Acme", "initech"]),
    ("Status = 'Open' AND NOT FirstName = null AND Company != 'x'", ["Acme"]),
    ("((Company = 'Acme'))", ["Acme"]),
    ("Interests__c = 'Tennis;Golf'", ["Acme"]),
    ("Interests__c != 'Tennis;Golf'", ["Globex", "initech", "Umbrella"]),
    ("Interests__c INCLUDES ('Golf')", ["Acme", "Umbrella"]),
    ("Interests__c INCLUDES ('golf;chess', 'Tennis')", ["Acme", "Globex", "Umbrella"]),
    ("Interests__c EXCLUDES ('Golf')", ["Globex", "initech"]),
    ("SystemModstamp > 2024-01-15T10:30:00Z", ["initech", "Umbrella"]),
    ("SystemModstamp = 2024-01-15T10:30:00.000+0000", ["Acme", "Globex"]),
    ("SystemModstamp = 2024-01-15T10:30:00Z", ["Acme", "Globex"]),
    ("SystemModstamp > 2024-01-15T05:30:00-05:00", ["initech", "Umbrella"]),
    ("SystemModstamp <= 2024-01-15T12:30:00+02:00", ["Acme", "Globex"]),
    ("SystemModstamp >= 2024-01-15T10:30:00Z AND SystemModstamp < 2024-01-16T00:00:00Z",
     ["Acme", "Globex", "initech"]),
    ("CreatedDate = 2024-01-01T04:00:00Z", ["Umbrella"]),
    ("CreatedDate < 2024-01-01T04:00:01Z", ["Umbrella"]),
    ("CreatedDate > 2024-01-14T23:59:58.999Z", ["Globex", "initech"]),
    ("SystemModstamp > 2024-01-15T10:30:00Z OR (SystemModstamp = 2024-01-15T10:30:00Z AND Id > '%s')"
     % L["Acme"]["Id"], ["Globex", "initech", "Umbrella"]),
    ("ConvertedDate = 2024-01-15", ["Globex"]),
    ("ConvertedDate > 2024-01-01", ["Globex"]),
    ("ConvertedDate < 2024-01-01", []),
    ("ConvertedDate = null", ["Acme", "initech", "Umbrella"]),
    ("CreatedDate = TODAY", ["initech"]),
    ("CreatedDate = YESTERDAY", ["Globex"]),
    ("CreatedDate < YESTERDAY", ["Acme", "Umbrella"]),
    ("CreatedDate > YESTERDAY", ["initech"]),
    ("CreatedDate >= YESTERDAY", ["Globex", "initech"]),
    ("CreatedDate <= YESTERDAY", ["Acme", "Globex", "Umbrella"]),
    ("CreatedDate != TODAY", ["Acme", "Globex", "Umbrella"]),
    ("CreatedDate = LAST_N_DAYS:5", ["Acme", "Globex", "initech"]),
    ("CreatedDate = THIS_MONTH", ALL4),
    ("CreatedDate = LAST_YEAR", []),
    ("CreatedDate = THIS_YEAR", ALL4),
    ("ConvertedDate = TODAY", ["Globex"]),
    ("ConvertedDate = NEXT_N_DAYS:3", []),
    ("CALENDAR_YEAR(CreatedDate) = 2024", ALL4),
    ("DAY_ONLY(CreatedDate) = 2024-01-14", ["Globex"]),
    ("Id = '%s'" % L["Globex"]["Id"][:15], ["Globex"]),
    ("Id = '%s'" % L["Globex"]["Id"], ["Globex"]),
    ("Id != '%s'" % L["Globex"]["Id"], ["Acme", "initech", "Umbrella"]),
    ("Id IN ('%s', '%s')" % (L["Acme"]["Id"], L["initech"]["Id"][:15]), ["Acme", "initech"]),
    ("Id NOT IN ('%s')" % L["Acme"]["Id"], ["Globex", "initech", "Umbrella"]),
    ("Id > '%s'" % L["initech"]["Id"], ["Umbrella"]),
    ("OwnerId = '%s'" % R["g1"]["Id"], ["Globex"]),
    ("RecordTypeId = null", ["Globex", "initech", "Umbrella"]),
    ("RecordTypeId != null", ["Acme"]),
    ("Owner.Name = 'Queue One'", ["Globex"]),
    ("Owner.Name LIKE 'ada%'", ["Acme", "initech", "Umbrella"]),
    ("RecordType.DeveloperName = 'Partner'", ["Acme"]),
    ("RecordType.DeveloperName = null", ["Globex", "initech", "Umbrella"]),
    ("ConvertedAccount.Name LIKE 'glo%'", ["Globex"]),
    ("ConvertedAccount.Owner.Name = 'Ada Admin'", ["Globex"]),
    ("External_Id__c = 'ext-1'", ["Acme"]),
    ("External_Id__c IN ('EXT-4')", ["Umbrella"]),
    ("Lead.Company = 'Acme'", ["Acme"]),
    ("OwnerId IN (SELECT Id FROM User WHERE IsActive = true)", ["Acme", "initech", "Umbrella"]),
    ("OwnerId NOT IN (SELECT Id FROM User)", ["Globex"]),
]

ORDERS = [
    ("", ALL4),
    (" ORDER BY AnnualRevenue", ["initech", "Umbrella", "Acme", "Globex"]),
    (" ORDER BY AnnualRevenue ASC", ["initech", "Umbrella", "Acme", "Globex"]),
    (" ORDER BY AnnualRevenue DESC", ["Globex", "Acme", "Umbrella", "initech"]),
    (" ORDER BY AnnualRevenue ASC NULLS LAST", ["Umbrella", "Acme", "Globex", "initech"]),
    (" ORDER BY AnnualRevenue DESC NULLS FIRST", ["initech", "Globex", "Acme", "Umbrella"]),
    (" ORDER BY AnnualRevenue NULLS FIRST", ["initech", "Umbrella", "Acme", "Globex"]),
    (" ORDER BY Company", ["Acme", "Globex", "initech", "Umbrella"]),
    (" ORDER BY Company DESC", ["Umbrella", "initech", "Globex", "Acme"]),
    (" ORDER BY FirstName DESC", ["Umbrella", "Globex", "Acme", "initech"]),
    (" ORDER BY SystemModstamp, Id", ["Acme", "Globex", "initech", "Umbrella"]),
    (" ORDER BY SystemModstamp DESC, Id DESC", ["Umbrella", "initech", "Globex", "Acme"]),
    (" ORDER BY SystemModstamp DESC, Company ASC", ["Umbrella", "initech", "Acme", "Globex"]),
    (" ORDER BY SystemModstamp ASC, Company DESC", ["Globex", "Acme", "initech", "Umbrella"]),
    (" ORDER BY Status, AnnualRevenue DESC", ["Umbrella", "Acme", "initech", "Globex"]),
    (" ORDER BY Status, AnnualRevenue DESC NULLS FIRST", ["Umbrella", "initech", "Acme", "Globex"]),
    (" ORDER BY CreatedDate", ["Umbrella", "Acme", "Globex", "initech"]),
    (" ORDER BY Owner.Name, Company", ["Acme", "initech", "Umbrella", "Globex"]),
    (" ORDER BY RecordType.Name NULLS LAST, Company DESC", ["Acme", "Umbrella", "initech", "Globex"]),
    (" ORDER BY IsConverted DESC, Company", ["Globex", "Acme", "initech", "Umbrella"]),
    (" ORDER BY ConvertedDate DESC NULLS LAST, Id", ["Globex", "Acme", "initech", "Umbrella"]),
    (" ORDER BY Company LIMIT 2", ["Acme", "Globex"]),
    (" ORDER BY Company LIMIT 2 OFFSET 1", ["Globex", "initech"]),
    (" ORDER BY Company OFFSET 3", ["Umbrella"]),
    (" ORDER BY Company OFFSET 10", []),
    (" LIMIT 0", []),
    (" ORDER BY Company FOR VIEW", ALL4),
    (" WITH SECURITY_ENFORCED ORDER BY Company", ALL4),
]

ERRORS = [
    ("SELECT Id, Foo FROM Lead", "INVALID_FIELD",
     "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Lead'. " + MSG_FIELD),
    ("SELECT Id FROM Foo", "INVALID_TYPE",
     "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\nsObject type 'Foo' is not supported. " + MSG_TYPE),
    ("SELECT Id FORM Lead", "MALFORMED_QUERY",
     "\nSELECT Id FORM Lead\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"),
    ("SELECT Id, FROM Lead", "MALFORMED_QUERY",
     "\nSELECT Id, FROM Lead\n           ^\nERROR at Row:1:Column:12\nunexpected token: 'FROM'"),
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY",
     "\nSELECT Id FROM Lead WHERE\n                         ^\nERROR at Row:1:Column:26\nunexpected token: <EOF>"),
    ("SELECT * FROM Lead", "MALFORMED_QUERY",
     "\nSELECT * FROM Lead\n       ^\nERROR at Row:1:Column:8\nunexpected token: '*'"),
    ("SELECT Id FROM Lead WHERE Company = 'a' AND Status = 'b' OR Email = 'c'", "MALFORMED_QUERY",
     "\nSELECT Id FROM Lead WHERE Company = 'a' AND Status = 'b' OR Email = 'c'\n"
     + " " * 57 + "^\nERROR at Row:1:Column:58\nunexpected token: 'OR'"),
    ("SELECT Id FROM Lead WHERE Company = 'abc", "MALFORMED_QUERY", "mismatched character '<EOF>' expecting '''"),
    ("SELECT Id FROM Lead WHERE Company = 'a\\qb'", "MALFORMED_QUERY",
     "Invalid string literal 'a\\qb'. Illegal character sequence '\\q' in string literal."),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'", "INVALID_QUERY_FILTER_OPERATOR",
     "\nSELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'\n" + " " * 26 + "^\nERROR at Row:1:Column:27\n"
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE CreatedDate > 2024-01-01", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE ConvertedDate > 2024-01-01T00:00:00Z", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'ConvertedDate' must be of type date and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE IsConverted = 'true'", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'IsConverted' must be of type boolean and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE AnnualRevenue > '5'", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'AnnualRevenue' must be of type double and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE NumberOfEmployees = 'x'", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'NumberOfEmployees' must be of type int and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE company = 5", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'Company' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE Company IN ('a', 5)", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'Company' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR",
     "\nSELECT Id FROM Lead WHERE Id = 'abc'\n" + " " * 26 + "^\nERROR at Row:1:Column:27\ninvalid ID field: abc"),
    ("SELECT Id FROM Lead WHERE OwnerId = 5", "INVALID_QUERY_FILTER_OPERATOR",
     "value of filter criterion for field 'OwnerId' must be of type id and should be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE IsConverted > true", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid operator on boolean field: IsConverted"),
    ("SELECT Id FROM Lead WHERE AnnualRevenue LIKE '5%'", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid operator on double field: AnnualRevenue"),
    ("SELECT Id FROM Lead WHERE Company INCLUDES ('a')", "INVALID_QUERY_FILTER_OPERATOR",
     "includes or excludes operator only valid on multipicklist field"),
    ("SELECT Id FROM Lead WHERE Description = 'x'", "INVALID_FIELD",
     "field 'Description' can not be filtered in a query call"),
    ("SELECT Id FROM Lead ORDER BY Description", "INVALID_FIELD",
     "field 'Description' can not be sorted in a query call"),
    ("SELECT Id FROM Lead ORDER BY Foo", "INVALID_FIELD",
     "\nSELECT Id FROM Lead ORDER BY Foo\n" + " " * 29 + "^\nERROR at Row:1:Column:30\nNo such column 'Foo' on "
     "entity 'Lead'. " + MSG_FIELD),
    ("SELECT Id FROM Lead WHERE Foo = 1", "INVALID_FIELD", "No such column 'Foo' on entity 'Lead'. " + MSG_FIELD),
    ("SELECT Foo.Name FROM Lead", "INVALID_FIELD",
     "\nSELECT Foo.Name FROM Lead\n       ^\nERROR at Row:1:Column:8\nDidn't understand relationship 'Foo' in field "
     "path. " + MSG_REL),
    ("SELECT Owner.Foo FROM Lead", "INVALID_FIELD",
     "\nSELECT Owner.Foo FROM Lead\n             ^\nERROR at Row:1:Column:14\nNo such column 'Foo' on entity 'User'. "
     + MSG_FIELD),
    ("SELECT OwnerId.Name FROM Lead", "INVALID_FIELD", "Didn't understand relationship 'OwnerId' in field path."),
    ("SELECT Owner FROM Lead", "INVALID_FIELD", "No such column 'Owner' on entity 'Lead'."),
    ("SELECT Id, (SELECT Id FROM Foos) FROM Account", "INVALID_TYPE",
     "\nSELECT Id, (SELECT Id FROM Foos) FROM Account\n" + " " * 27 + "^\nERROR at Row:1:Column:28\n"
     "Didn't understand relationship 'Foos' in FROM part of query call. " + MSG_REL),
    ("SELECT Id, (SELECT Foo FROM Contacts) FROM Account", "INVALID_FIELD",
     "No such column 'Foo' on entity 'Contact'."),
    ("SELECT Id, (SELECT Id, (SELECT Id FROM Contacts) FROM Contacts) FROM Account", "MALFORMED_QUERY",
     "unexpected token: 'SELECT'"),
    ("SELECT Id FROM Lead OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
    ("SELECT Id, Id FROM Lead", "INVALID_FIELD", "duplicate field selected: Id"),
    ("SELECT Owner.Name, owner.name FROM Lead", "INVALID_FIELD", "duplicate field selected: owner.name"),
    ("SELECT Id FROM Lead LIMIT -1", "MALFORMED_QUERY", "unexpected token: '-1'"),
    ("SELECT Id FROM Lead LIMIT x", "MALFORMED_QUERY", "unexpected token: 'x'"),
    ("SELECT Id FROM Lead LIMIT 5 ORDER BY Id", "MALFORMED_QUERY", "unexpected token: 'ORDER'"),
    ("SELECT Id Company FROM Lead", "MALFORMED_QUERY", "Only aggregate expressions use field aliasing"),
    ("", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("UPDATE Lead SET Company = 'x'", "MALFORMED_QUERY", "unexpected token: 'UPDATE'"),
    ("SELECT Id FROM Lead WHERE Company = 'a' AND", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE (Company = 'a'", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE Company == 'a'", "MALFORMED_QUERY", "unexpected token: '='"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > 2024-01-15T10:30:00", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id\nFROM Lead\nWHERE Foo = 1", "INVALID_FIELD",
     "\nWHERE Foo = 1\n      ^\nERROR at Row:3:Column:7\nNo such column 'Foo' on entity 'Lead'. " + MSG_FIELD),
    ("SELECT Id, COUNT() FROM Lead", "MALFORMED_QUERY", "COUNT() can only be used alone"),
    ("SELECT Company, COUNT(Id) FROM Lead", "MALFORMED_QUERY", "Field must be grouped or aggregated: Company"),
    ("SELECT SUM(Company) FROM Lead", "MALFORMED_QUERY", "field Company does not support aggregate operator SUM"),
    ("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT FIELDS(ALL) FROM Lead", "MALFORMED_QUERY", "FIELDS function must have a LIMIT of at most 200"),
    ("SELECT Id FROM Contact WHERE AccountId IN (SELECT Name FROM Account)", "INVALID_FIELD",
     "Semi join sub-selects can only select ID or reference fields"),
    ("SELECT Id FROM Lead WHERE Company IN (SELECT Id FROM Account)", "INVALID_FIELD",
     "Semi join sub-selects are only allowed on ID or reference fields"),
    ("SELECT BillingAddress FROM Account WHERE BillingAddress = 'x'", "INVALID_FIELD",
     "field 'BillingAddress' can not be filtered in a query call"),
]


class Filters(unittest.TestCase):
    def test_every_operator_selects_the_right_rows(self):
        """WHERE: = != <> < <= > >= IN NOT IN LIKE INCLUDES EXCLUDES, AND/OR/NOT, nulls, literals, date literals"""
        bad = []
        for where, want in FILTERS:
            try:
                got = companies(where)
            except SoqlError as e:
                got = e
            if got != want:
                bad.append("%s -> %r (want %r)" % (where, got, want))
        self.assertEqual(bad, [])

    def test_deleted_rows_only_with_include_deleted(self):
        """deleted rows are hidden from query and returned by queryAll (include_deleted)"""
        self.assertEqual(companies("Company LIKE 'Gone%'"), [])
        self.assertEqual(companies("Company LIKE 'Gone%'", include_deleted=True), ["Gone Inc"])
        _, rows = soql.run("SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true", DB, include_deleted=True)
        self.assertEqual([r["IsDeleted"] for r in rows], [True])

    def test_escape_round_trips_every_special_character(self):
        """soql.escape(value) placed in a literal selects exactly the stored value"""
        for r in R["leads"][:4]:
            q = "LastName = '%s'" % soql.escape(r["LastName"])
            self.assertEqual(companies(q), [r["Company"]], q)
        self.assertEqual(soql.escape("a'b\\c\n\"d\te"), "a\\'b\\\\c\\n\\\"d\\te")

    def test_keywords_objects_and_fields_are_case_insensitive(self):
        """select/from/where in any case; output keys spelled as describe spells them"""
        n, rows = soql.run("select id, COMPANY, owner.NAME from lead where STATUS = 'Closed' order by company", DB)
        self.assertEqual(n, 1)
        self.assertEqual(list(rows[0].keys()), ["attributes", "Id", "Company", "Owner"])
        self.assertEqual(rows[0]["Owner"]["Name"], "Ada Admin")
        self.assertEqual(rows[0]["attributes"]["type"], "Lead")

    def test_alias_and_object_prefix(self):
        """FROM Lead l: l.Company works in SELECT and WHERE"""
        _, rows = soql.run("SELECT l.Company FROM Lead l WHERE l.Status = 'Closed'", DB)
        self.assertEqual(rows[0]["Company"], "Umbrella")
        _, rows = soql.run("SELECT Lead.Company FROM Lead WHERE Lead.Status = 'Closed'", DB)
        self.assertEqual(rows[0]["Company"], "Umbrella")

    def test_semi_join_on_contacts(self):
        """AccountId IN (SELECT Id FROM Account WHERE ...)"""
        _, rows = soql.run("SELECT LastName FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE "
                           "Industry = 'Technology') ORDER BY LastName", DB)
        self.assertEqual([r["LastName"] for r in rows], ["Lee", "Smith"])


class Ordering(unittest.TestCase):
    def test_order_by_limit_offset(self):
        """ORDER BY several fields ASC/DESC NULLS FIRST/LAST, LIMIT, OFFSET; default ASC nulls first"""
        bad = []
        for order, want in ORDERS:
            try:
                got = companies("", order)
            except SoqlError as e:
                got = e
            if got != want:
                bad.append("%s -> %r (want %r)" % (order, got, want))
        self.assertEqual(bad, [])

    def test_no_order_by_returns_id_order(self):
        """without ORDER BY rows come back in Id order, whatever order the store holds them in"""
        db, _ = sample()
        db.add("Lead", Id=make_id("00Q", 0), LastName="First", Company="Zero")
        self.assertEqual(companies("", db=db)[0], "Zero")
        self.assertEqual(companies("", " ORDER BY IsConverted", db=db), ["Zero", "Acme", "initech", "Umbrella", "Globex"])

    def test_total_size_counts_the_window(self):
        """totalSize is the number of rows returned (after LIMIT/OFFSET)"""
        n, rows = soql.run("SELECT Id FROM Lead ORDER BY Id LIMIT 3", DB)
        self.assertEqual((n, len(rows)), (3, 3))
        n, rows = soql.run("SELECT Id FROM Lead WHERE Company = 'nobody'", DB)
        self.assertEqual((n, rows), (0, []))


class Shapes(unittest.TestCase):
    def test_record_shape_and_values(self):
        """attributes first, fields in SELECT order, datetimes/dates/booleans/numbers/nulls as stored"""
        n, rows = soql.run("SELECT Id, SystemModstamp, ConvertedDate, IsConverted, AnnualRevenue, NumberOfEmployees, "
                           "Email, Interests__c FROM Lead WHERE Company = 'Globex'", DB)
        lead = L["Globex"]
        self.assertEqual(rows, [{
            "attributes": {"type": "Lead", "url": "/services/data/v62.0/sobjects/Lead/" + lead["Id"]},
            "Id": lead["Id"], "SystemModstamp": "2024-01-15T10:30:00.000+0000", "ConvertedDate": "2024-01-15",
            "IsConverted": True, "AnnualRevenue": 2000.0, "NumberOfEmployees": 50, "Email": "bob@globex.com",
            "Interests__c": "Tennis"}])
        self.assertEqual(list(rows[0]), ["attributes", "Id", "SystemModstamp", "ConvertedDate", "IsConverted",
                                         "AnnualRevenue", "NumberOfEmployees", "Email", "Interests__c"])

    def test_parent_relationships_nest(self):
        """Account.Name and Account.Owner.Name nest as objects with attributes; null reference -> null"""
        _, rows = soql.run("SELECT Id, Account.Name, LastName, Account.Owner.Name, Account.Id FROM Contact "
                           "ORDER BY LastName", DB)
        by = {r["LastName"]: r for r in rows}
        a1, u1 = R["a1"], R["u1"]
        self.assertEqual(by["Smith"]["Account"], {
            "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/" + a1["Id"]},
            "Name": "Acme",
            "Owner": {"attributes": {"type": "User", "url": "/services/data/v62.0/sobjects/User/" + u1["Id"]},
                      "Name": "Ada Admin"},
            "Id": a1["Id"]})
        self.assertEqual(list(by["Smith"]), ["attributes", "Id", "Account", "LastName"])
        self.assertIsNone(by["Orphan"]["Account"])
        self.assertNotIn("Gone", by)

    def test_polymorphic_parent_carries_its_own_type(self):
        """Owner.Name on a Lead owned by a queue: attributes.type is Group"""
        _, rows = soql.run("SELECT Owner.Name, RecordType.Name FROM Lead ORDER BY Company", DB)
        self.assertEqual(rows[0]["Owner"]["attributes"]["type"], "User")
        self.assertEqual(rows[1]["Owner"]["attributes"]["type"], "Group")
        self.assertEqual(rows[1]["Owner"]["Name"], "Queue One")
        self.assertEqual(rows[0]["RecordType"]["Name"], "Partner Lead")
        self.assertIsNone(rows[1]["RecordType"])

    def test_child_subqueries(self):
        """(SELECT ... FROM OpportunityContactRoles): {totalSize, done, records} or null when none"""
        _, rows = soql.run("SELECT Id, Name, (SELECT Id, ContactId, Contact.LastName FROM OpportunityContactRoles "
                           "ORDER BY Contact.LastName) FROM Opportunity ORDER BY Name", DB)
        big, none = rows
        self.assertIsNone(none["OpportunityContactRoles"])
        sub = big["OpportunityContactRoles"]
        self.assertEqual((sub["totalSize"], sub["done"]), (2, True))
        self.assertEqual([r["Contact"]["LastName"] for r in sub["records"]], ["Lee", "Smith"])
        first = sub["records"][0]
        self.assertEqual(first["attributes"], {"type": "OpportunityContactRole",
                                               "url": "/services/data/v62.0/sobjects/OpportunityContactRole/"
                                               + R["r2"]["Id"]})
        self.assertEqual(list(first), ["attributes", "Id", "ContactId", "Contact"])
        self.assertEqual(list(big), ["attributes", "Id", "Name", "OpportunityContactRoles"])

    def test_child_subquery_filters_limits_and_skips_deleted(self):
        """subquery WHERE / LIMIT apply per parent; deleted children are left out"""
        _, rows = soql.run("SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC LIMIT 1), "
                           "(SELECT Name FROM ChildAccounts) FROM Account ORDER BY Name", DB)
        acme = rows[0]
        self.assertEqual(acme["Contacts"]["records"][0]["LastName"], "Smith")
        self.assertEqual(acme["Contacts"]["totalSize"], 1)
        self.assertEqual(acme["ChildAccounts"]["records"][0]["Name"], "Globex")
        _, rows = soql.run("SELECT Name, (SELECT Contact.LastName FROM Account.Contacts WHERE LastName != 'Smith') "
                           "FROM Account WHERE Name = 'Acme'", DB)
        self.assertEqual([r["LastName"] for r in rows[0]["Contacts"]["records"]], ["Lee"])

    def test_count(self):
        """SELECT COUNT() -> (count, []); honours WHERE, LIMIT and include_deleted"""
        self.assertEqual(soql.run("SELECT COUNT() FROM Lead", DB), (4, []))
        self.assertEqual(soql.run("select count() from Lead where Status = 'Open'", DB), (2, []))
        self.assertEqual(soql.run("SELECT COUNT() FROM Lead", DB, include_deleted=True), (5, []))
        self.assertEqual(soql.run("SELECT COUNT() FROM Lead LIMIT 2", DB), (2, []))

    def test_aggregates(self):
        """COUNT(Id), MAX(x) alias, GROUP BY -> AggregateResult rows"""
        n, rows = soql.run("SELECT COUNT(Id), MAX(AnnualRevenue) m, MIN(CreatedDate) FROM Lead", DB)
        self.assertEqual(rows, [{"attributes": {"type": "AggregateResult"}, "expr0": 4, "m": 2000.0,
                                 "expr1": "2023-12-31T23:00:00.000-0500"}])
        n, rows = soql.run("SELECT Status, COUNT(Id) c FROM Lead GROUP BY Status ORDER BY Status", DB)
        self.assertEqual([(r["Status"], r["c"]) for r in rows], [("Closed", 1), ("Open", 2), ("Working", 1)])

    def test_compound_address(self):
        """BillingAddress comes back as a nested object of its components (null when all are empty)"""
        _, rows = soql.run("SELECT Name, BillingAddress FROM Account ORDER BY Name", DB)
        self.assertEqual(rows[0]["BillingAddress"], {"street": "1 Main St", "city": "Springfield", "state": "IL",
                                                     "postalCode": "62701", "country": "USA"})
        self.assertEqual(list(rows[0]["BillingAddress"]), ["city", "country", "postalCode", "state", "street"])
        self.assertIsNone(rows[1]["BillingAddress"])

    def test_fields_function(self):
        """FIELDS(STANDARD) expands to describe's fields"""
        _, rows = soql.run("SELECT FIELDS(STANDARD) FROM RecordType", DB)
        self.assertEqual(list(rows[0])[1:], [f["name"] for f in DB.describe("RecordType")["fields"]])

    def test_compiled_query_exposes_select_paths(self):
        """compile_query gives bulk.py the resolved columns and flags for subqueries/compound fields"""
        c = soql.compile_query("SELECT Id, Account.Name, (SELECT Id FROM OpportunityContactRoles) FROM Contact", DB)
        self.assertEqual([t for t, _ in c.select_paths], ["Id", "Account.Name"])
        self.assertTrue(c.has_subqueries)
        self.assertFalse(c.has_compound)


class Errors(unittest.TestCase):
    def test_every_error_message(self):
        """MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR, ... worded as Salesforce"""
        bad = []
        for q, code, msg in ERRORS:
            try:
                soql.run(q, DB)
                bad.append("%r did not fail" % q)
                continue
            except SoqlError as e:
                got = e
            ok = got.error_code == code and (got.message == msg if msg.startswith("\n") else msg in got.message)
            if not ok:
                bad.append("%r -> %s %r (want %s %r)" % (q, got.error_code, got.message, code, msg))
        self.assertEqual(bad, [])

    def test_error_body_is_an_array(self):
        """SoqlError.to_json() is the REST error body"""
        try:
            soql.run("SELECT Id FROM Foo", DB)
        except SoqlError as e:
            body = e.to_json()
        self.assertEqual(body[0]["errorCode"], "INVALID_TYPE")
        self.assertEqual(set(body[0]), {"message", "errorCode"})


class Datetimes(unittest.TestCase):
    def test_parse_every_offset_form(self):
        """stored, Z, +hh:mm, -hhmm and no-millis forms parse to the same instant"""
        ms = soql.parse_datetime_ms("2024-01-15T10:30:00.000+0000")
        for s in ("2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000Z", "2024-01-15T05:30:00-05:00",
                  "2024-01-15T12:30:00.000+0200", "2024-01-15T10:30:00+00:00"):
            self.assertEqual(soql.parse_datetime_ms(s), ms, s)
        self.assertEqual(ms, 1705314600000)
        self.assertIsNone(soql.parse_datetime_ms("garbage"))


class LargeTables(unittest.TestCase):
    def test_100k_rows_filtered_and_sorted(self):
        """100,000 rows filtered on (SystemModstamp, Id) and sorted in cursor order; LIMIT cuts the result
        (speed is not asserted here: tests are not timed)"""
        db = FakeDb()
        rows = db.data["Lead"]
        import random
        rnd = random.Random(7)
        for i in range(100000):
            rid = make_id("00Q", i + 1)
            ts = "2024-01-%02dT%02d:%02d:00.000+0000" % (1 + i % 28, rnd.randrange(24), rnd.randrange(60))
            rows[rid] = {"Id": rid, "IsDeleted": i % 50 == 0, "LastName": "L%d" % i, "Company": "C",
                         "SystemModstamp": ts, "Email": None, "OwnerId": None}
        cursor_id = make_id("00Q", 500)
        q = ("SELECT Id, LastName, SystemModstamp FROM Lead WHERE SystemModstamp > 2024-01-10T00:00:00Z OR "
             "(SystemModstamp = 2024-01-10T00:00:00Z AND Id > '%s') ORDER BY SystemModstamp, Id" % cursor_id)
        soql._DT_CACHE.clear()
        n, out = soql.run(q, db)
        self.assertGreater(n, 50000)
        keys = [(soql.parse_datetime_ms(r["SystemModstamp"]), r["Id"]) for r in out]
        self.assertEqual(keys, sorted(keys))
        import gc
        self.assertTrue(gc.isenabled(), "the GC pause must end with the query")
        n, out = soql.run(q + " LIMIT 2000", db)
        self.assertEqual(n, 2000)
        self.assertEqual(out, out and sorted(out, key=lambda r: (soql.parse_datetime_ms(r["SystemModstamp"]), r["Id"])))


if __name__ == "__main__":
    tap.main()
