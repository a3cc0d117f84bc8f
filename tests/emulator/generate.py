"""Deterministic data generator: `--generate Lead=N,Contact=N,Account=N,Opportunity=N [--seed S]`.

Same seed and same --clock -> byte-identical data. What it produces, on purpose:
  * nulls in most optional fields; unicode (accents, CJK, emoji) in names, companies, descriptions;
  * a few rows with strings at exactly the field's maximum length (BMP characters only, so the
    UTF-16 length Salesforce counts equals the python length);
  * runs of 50+ rows sharing one LastModifiedDate/SystemModstamp (mass updates), plus rows whose
    SystemModstamp is later than LastModifiedDate (system-only changes);
  * Contacts and Opportunities linked to Accounts, Opportunity.ContactId, and
    OpportunityContactRoles linking Opportunities to Contacts (about 1.5 per Opportunity, unless
    OpportunityContactRole=N is given);
  * three Lead RecordTypes (always), Leads spread over them and over no record type;
  * a small share (about 3%) of deleted rows (IsDeleted, deleted within the last 10 days):
    visible only through queryAll and /deleted.
Timestamps lie in the 90 days before the emulator clock's start and never after it.
Other objects (custom ones too) get type-driven values.
"""
import random

from schema import STAGES, pl
from store import sf_datetime, sf_date, USER_ID

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "José", "Zoë", "François", "Søren", "Ñuño", "Chloé", "Björn", "Małgorzata", "Ærin", "Renée",
         "伟", "芳", "翔太", "さくら", "민준", "Олег", "Αθηνά", "محمد", "Ana 🌸", "Leo 🦁", None]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Müller", "Øster", "Dupré", "Nuñez", "Ångström", "O'Brien", "van der Berg", "Łukasiewicz",
        "王", "李", "佐藤", "鈴木", "김", "Иванов", "Παπαδόπουλος", "Smith 🚀", "D'Angelo", "Zürcher"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
           "Café Crème SARL", "Müller & Söhne GmbH", "東京商事", "北京科技有限公司", "삼성전자", "Ñandú S.A.",
           "Rocket 🚀 Labs", "Coffee ☕ Co", "Øresund AB", "Żabka Sp. z o.o.", "Łódź Works", "Zeta \"Quoted\" Inc",
           "Comma, Inc.", "Line\nBreak LLC"]
SUFFIX = ["", " Inc", " LLC", " Ltd", " Corp", " Group", " Holdings"]
CITY = ["San Francisco", "New York", "Austin", "Seattle", "Chicago", "Boston", "Toronto", "Montréal",
        "München", "Zürich", "São Paulo", "東京", "北京", "서울", "Kraków", None]
STATE = ["CA", "NY", "TX", "WA", "IL", "MA", "ON", "QC", None]
COUNTRY = [("United States", "US"), ("Canada", "CA"), ("Germany", "DE"), ("France", "FR"), ("Japan", "JP"),
           ("China", "CN"), ("Brazil", "BR"), (None, None)]
TITLE = ["CEO", "CTO", "VP Sales", "Director of Marketing", "Engineer", "Analyst", "Directeur Général",
         "Geschäftsführer", "営業部長", "Head of Growth 📈", None]
DEPT = ["Sales", "Marketing", "Engineering", "Finance", "R&D", "Support", None]
DESCR = ["Met at the conference.", "Interested in the premium plan. Prefers email.", "Très intéressé 👍",
         "重要な顧客", "Follow up next quarter\nSecond line", "Emoji: 🎉🎉🎉", "Tab\tseparated", "", None, None, None]
INDUSTRY = [v["value"] for v in pl("Banking", "Technology", "Healthcare", "Retail", "Education", "Media",
                                   "Manufacturing", "Energy", "Consulting", "Other")] + [None]
SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", None]
RATINGS = ["Hot", "Warm", "Cold", None]
STATUSES = ["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"]
SALUT = ["Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", None]
ROLES = ["Business User", "Decision Maker", "Economic Buyer", "Evaluator", "Executive Sponsor", "Influencer",
         "Technical Buyer", None]
BOUNCE = ["550 5.1.1 User unknown", "Mailbox full", "Domain not found"]
LEAD_RECORD_TYPES = [("Inbound Lead", "Inbound_Lead"), ("Outbound Lead", "Outbound_Lead"),
                     ("Partner Lead", "Partner_Lead")]
MAXCHARS = "abcdefghijklmnopqrstuvwxyzéüñçøåæ中文字"   # BMP only

DAY = 86400


class Gen:
    def __init__(self, store, seed):
        self.store = store
        self.rng = random.Random("sfemulator-%s" % seed)
        self.now = int(store.clock.now())
        self.start = self.now - 90 * DAY
        self.emails = set()
        self._pool = None
        self._rnd = self.rng.random

    # -- helpers --------------------------------------------------------------------------
    def maybe(self, p, value):
        return value if self._rnd() < p else None

    def pick(self, seq):
        return seq[int(self._rnd() * len(seq))]

    def ri(self, a, b=None):
        """random int in [a, b) (or [0, a)); cheaper than randrange"""
        if b is None:
            a, b = 0, a
        return a + int(self._rnd() * (b - a))

    def maxstr(self, n):
        """n BMP characters (slices of one random pool drawn once)"""
        if self._pool is None:
            self._pool = "".join(self.rng.choices(MAXCHARS, k=70000))
        start = self.rng.randrange(len(self._pool) - n)
        return self._pool[start:start + n]

    def email(self, first, last, i):
        base = "".join(c for c in ((first or "x") + "." + (last or "y")).lower() if c.isascii() and (c.isalnum() or c == "."))
        base = base.strip(".") or "user"
        dom = self.pick(["example.com", "example.org", "mail.example.net", "corp.example.co.uk"])
        e = "%s.%d@%s" % (base, i, dom)
        self.emails.add(e)
        return e

    def phone(self):
        k = self.ri(3)
        if k == 0:
            return "+1 (%03d) %03d-%04d" % (self.ri(200, 999), self.ri(1000), self.ri(10000))
        if k == 1:
            return "+44 20 %04d %04d" % (self.ri(10000), self.ri(10000))
        return "+81-3-%04d-%04d" % (self.ri(10000), self.ri(10000))

    def times(self, n):
        """n (created, modified, systemmodstamp, deleted_at|None) tuples, created ascending"""
        r = self.rng
        span = max(self.now - 3600 - self.start, 1)
        created = sorted(self.start + self.ri(span) for _ in range(n))
        out = []
        for c in created:
            m = c if r.random() < 0.3 else min(c + self.ri(30 * DAY), self.now - 60)
            m = max(m, c)
            s = m if r.random() < 0.9 else min(m + self.ri(5 * DAY), self.now - 30)
            out.append([c, m, max(s, m), None])
        # mass updates: runs of 50..150 consecutive rows sharing one timestamp
        if n >= 50:
            runs = max(1, n // 800)
            for _ in range(runs):
                length = min(n, self.ri(50, 151))
                first = self.ri(0, n - length + 1)
                latest = max(out[i][0] for i in range(first, first + length))
                t = min(latest + self.ri(1, 3 * DAY), self.now - 120)
                t = max(t, latest)
                for i in range(first, first + length):
                    out[i][1] = t
                    out[i][2] = t
        # deletions: ~3%, within the last 10 days
        for row in out:
            if r.random() < 0.03:
                d = max(row[2] + 1, self.now - self.ri(60, 10 * DAY))
                d = min(d, self.now - 1)
                row[1] = row[2] = row[3] = d
        return out

    def stamp(self, row, t):
        row["CreatedDate"] = sf_datetime(t[0])
        row["LastModifiedDate"] = sf_datetime(t[1])
        row["SystemModstamp"] = sf_datetime(t[2])
        row["IsDeleted"] = t[3] is not None
        row["CreatedById"] = USER_ID
        row["LastModifiedById"] = USER_ID
        if "OwnerId" in self.store.schema.fields.get(self._obj, {}):
            row["OwnerId"] = USER_ID

    def insert(self, obj, rows):
        self.store.put_generated(obj, rows)
        return rows

    # -- objects --------------------------------------------------------------------------
    def record_types(self):
        self._obj = "RecordType"
        existing = [r for r in self.store.tables["RecordType"].values() if r.get("SobjectType") == "Lead"]
        if existing:
            return [r["Id"] for r in existing]
        rows = []
        t0 = self.start - 30 * DAY
        for name, dev in LEAD_RECORD_TYPES:
            row = {"Id": self.store.new_id("RecordType"), "Name": name, "DeveloperName": dev, "SobjectType": "Lead",
                   "IsActive": True, "Description": name + " record type", "IsDeleted": False}
            self.stamp(row, (t0, t0, t0, None))
            rows.append(row)
        self.insert("RecordType", rows)
        return [r["Id"] for r in rows]

    def accounts(self, n):
        self._obj = "Account"
        r = self.rng
        rows = []
        for i, t in enumerate(self.times(n)):
            country, ccode = self.pick(COUNTRY)
            row = {"Id": self.store.new_id("Account"),
                   "Name": self.pick(COMPANY) + self.pick(SUFFIX) + (" %d" % i if r.random() < 0.5 else ""),
                   "Type": self.maybe(0.7, self.pick(["Prospect", "Customer - Direct", "Customer - Channel", "Other"])),
                   "BillingStreet": self.maybe(0.8, "%d Main St%s" % (self.ri(1, 9999), self.pick(["", "\nSuite 100"]))),
                   "BillingCity": self.pick(CITY), "BillingState": self.pick(STATE),
                   "BillingPostalCode": self.maybe(0.8, "%05d" % self.ri(100000)),
                   "BillingCountry": country, "BillingCountryCode": ccode,
                   "BillingStateCode": self.maybe(0.5, self.pick(["CA", "NY", "TX", "WA"])) if ccode == "US" else None,
                   "BillingLatitude": self.maybe(0.5, round(r.uniform(-90, 90), 15)),
                   "BillingLongitude": None,
                   "ShippingStreet": self.maybe(0.4, "%d Dock Rd" % self.ri(1, 999)),
                   "ShippingCity": self.maybe(0.4, self.pick(CITY)), "ShippingState": self.maybe(0.4, self.pick(STATE)),
                   "ShippingPostalCode": self.maybe(0.4, "%05d" % self.ri(100000)),
                   "ShippingCountry": self.maybe(0.4, country), "ShippingCountryCode": self.maybe(0.4, ccode),
                   "ShippingStateCode": None,
                   "Phone": self.maybe(0.8, self.phone()), "AccountNumber": self.maybe(0.6, "AC-%06d" % i),
                   "Website": self.maybe(0.7, "https://www.example%d.com" % i),
                   "Industry": self.pick(INDUSTRY), "AnnualRevenue": self.maybe(0.6, self.ri(10 ** 4, 10 ** 10)),
                   "NumberOfEmployees": self.maybe(0.7, self.ri(1, 250000)),
                   "Ownership": self.maybe(0.5, self.pick(["Public", "Private", "Subsidiary", "Other"])),
                   "Rating": self.pick(RATINGS), "Description": self.pick(DESCR), "AccountSource": self.pick(SOURCES),
                   "IsPartner": r.random() < 0.05}
            if row["BillingLatitude"] is not None:
                row["BillingLongitude"] = round(r.uniform(-180, 180), 15)
            if i % 97 == 5:
                row["Name"] = self.maxstr(255)
                row["Description"] = self.maxstr(32000)
                row["AccountNumber"] = self.maxstr(40)
            self.stamp(row, t)
            rows.append(row)
        return self.insert("Account", rows)

    def contacts(self, n, accounts):
        self._obj = "Contact"
        r = self.rng
        live_acc = [a["Id"] for a in accounts if not a["IsDeleted"]]
        rows = []
        for i, t in enumerate(self.times(n)):
            first, last = self.pick(FIRST), self.pick(LAST)
            country, ccode = self.pick(COUNTRY)
            bounced = r.random() < 0.04
            row = {"Id": self.store.new_id("Contact"),
                   "AccountId": self.pick(live_acc) if live_acc and r.random() < 0.85 else None,
                   "FirstName": first, "LastName": last, "Salutation": self.pick(SALUT),
                   "Email": self.maybe(0.85, self.email(first, last, i)),
                   "Phone": self.maybe(0.7, self.phone()), "MobilePhone": self.maybe(0.4, self.phone()),
                   "Title": self.pick(TITLE), "Department": self.pick(DEPT), "LeadSource": self.pick(SOURCES),
                   "Birthdate": self.maybe(0.4, sf_date(self.now - self.ri(18 * 365, 80 * 365) * DAY)),
                   "MailingStreet": self.maybe(0.6, "%d Elm St" % self.ri(1, 9999)),
                   "MailingCity": self.pick(CITY), "MailingState": self.pick(STATE),
                   "MailingPostalCode": self.maybe(0.6, "%05d" % self.ri(100000)),
                   "MailingCountry": country, "MailingCountryCode": ccode, "MailingStateCode": None,
                   "MailingLatitude": None, "MailingLongitude": None,
                   "Description": self.pick(DESCR), "HasOptedOutOfEmail": r.random() < 0.1,
                   "LastCURequestDate": self.maybe(0.1, sf_datetime(t[0] + self.ri(DAY))),
                   "EmailBouncedReason": self.pick(BOUNCE) if bounced else None,
                   "EmailBouncedDate": sf_datetime(t[1]) if bounced else None,
                   "IsEmailBounced": bounced}
            if r.random() < 0.3:
                row["MailingLatitude"] = round(r.uniform(-90, 90), 15)
                row["MailingLongitude"] = round(r.uniform(-180, 180), 15)
            if i % 97 == 7:
                row["FirstName"], row["LastName"] = self.maxstr(40), self.maxstr(80)
                row["Title"], row["Department"] = self.maxstr(128), self.maxstr(80)
                row["Email"] = "a" * (80 - len("@example.com") - len(str(i)) - 1) + ".%d@example.com" % i
            self.stamp(row, t)
            rows.append(row)
        return self.insert("Contact", rows)

    def opportunities(self, n, accounts, contacts):
        self._obj = "Opportunity"
        r = self.rng
        live_acc = [a["Id"] for a in accounts if not a["IsDeleted"]]
        by_acc = {}
        for c in contacts:
            if not c["IsDeleted"] and c["AccountId"]:
                by_acc.setdefault(c["AccountId"], []).append(c["Id"])
        rows = []
        for i, t in enumerate(self.times(n)):
            acc = self.pick(live_acc) if live_acc and r.random() < 0.9 else None
            stage = self.pick(STAGES)[0]
            row = {"Id": self.store.new_id("Opportunity"), "AccountId": acc,
                   "ContactId": self.pick(by_acc[acc]) if acc in by_acc and r.random() < 0.4 else None,
                   "Name": "%s – %s" % (self.pick(COMPANY), self.pick(["Renewal", "Upsell", "New Business", "Expansion 🚀"])),
                   "StageName": stage, "Amount": self.maybe(0.8, round(r.uniform(100, 500000), 2)),
                   "CloseDate": sf_date(t[0] + self.ri(-30, 180) * DAY),
                   "Type": self.maybe(0.7, self.pick(["New Customer", "Existing Customer - Upgrade",
                                                      "Existing Customer - Replacement"])),
                   "NextStep": self.maybe(0.5, self.pick(["Send proposal", "Call CFO", "Démo technique", "契約書送付"])),
                   "LeadSource": self.pick(SOURCES), "Description": self.pick(DESCR),
                   "HasOpenActivity": r.random() < 0.3, "IsPrivate": False}
            if i % 97 == 11:
                row["Name"], row["NextStep"] = self.maxstr(120), self.maxstr(255)
            self.stamp(row, t)
            rows.append(row)
        return self.insert("Opportunity", rows)

    def contact_roles(self, n, opps, contacts):
        self._obj = "OpportunityContactRole"
        r = self.rng
        live_c = [c for c in contacts if not c["IsDeleted"]]
        if not live_c or not opps:
            return []
        by_acc = {}
        for c in live_c:
            if c["AccountId"]:
                by_acc.setdefault(c["AccountId"], []).append(c["Id"])
        pairs = []
        if n is None:
            for o in opps:
                k = self.pick([0, 1, 1, 2, 2, 3])
                for j in range(k):
                    pool = by_acc.get(o["AccountId"]) or [c["Id"] for c in live_c]
                    pairs.append((o, self.pick(pool), j == 0))
        else:
            for j in range(n):
                pairs.append((self.pick(opps), self.pick(live_c)["Id"], r.random() < 0.5))
        times = self.times(len(pairs))
        rows = []
        for (o, cid, primary), t in zip(pairs, times):
            t = list(t)
            oc = max(int(_epoch_of(o["CreatedDate"])), t[0])
            t[0] = oc
            t[1] = max(t[1], oc)
            t[2] = max(t[2], t[1])
            if o["IsDeleted"]:
                d = int(_epoch_of(o["SystemModstamp"]))
                t = [min(oc, d), d, d, d]
            elif t[3] is not None:
                t[3] = t[1] = t[2] = max(t[2], t[3])
            row = {"Id": self.store.new_id("OpportunityContactRole"), "OpportunityId": o["Id"], "ContactId": cid,
                   "Role": self.pick(ROLES), "IsPrimary": primary}
            self.stamp(row, t)
            rows.append(row)
        return self.insert("OpportunityContactRole", rows)

    def leads(self, n, rts):
        self._obj = "Lead"
        r = self.rng
        rows = []
        for i, t in enumerate(self.times(n)):
            first, last = self.pick(FIRST), self.pick(LAST)
            converted = r.random() < 0.05
            bounced = r.random() < 0.04
            country = self.pick(COUNTRY)[0]
            row = {"Id": self.store.new_id("Lead"), "FirstName": first, "LastName": last,
                   "Salutation": self.pick(SALUT), "Company": self.pick(COMPANY) + self.pick(SUFFIX),
                   "Email": self.maybe(0.9, self.email(first, last, i)), "Title": self.pick(TITLE),
                   "Phone": self.maybe(0.7, self.phone()), "MobilePhone": self.maybe(0.4, self.phone()),
                   "Street": self.maybe(0.6, "%d Oak Ave" % self.ri(1, 9999)), "City": self.pick(CITY),
                   "State": self.pick(STATE), "PostalCode": self.maybe(0.6, "%05d" % self.ri(100000)),
                   "Country": country, "Website": self.maybe(0.5, "https://lead%d.example.com" % i),
                   "Description": self.pick(DESCR), "LeadSource": self.pick(SOURCES),
                   "Status": "Closed - Converted" if converted else self.pick(STATUSES[:2] + STATUSES[3:]),
                   "Industry": self.pick(INDUSTRY), "Rating": self.pick(RATINGS),
                   "AnnualRevenue": self.maybe(0.4, self.ri(10 ** 4, 10 ** 9)),
                   "NumberOfEmployees": self.maybe(0.5, self.ri(1, 100000)),
                   "HasOptedOutOfEmail": r.random() < 0.1, "IsConverted": converted,
                   "ConvertedDate": sf_date(t[1]) if converted else None,
                   "RecordTypeId": self.pick(rts) if rts and r.random() < 0.8 else None,
                   "IsUnreadByOwner": r.random() < 0.2,
                   "EmailBouncedReason": self.pick(BOUNCE) if bounced else None,
                   "EmailBouncedDate": sf_datetime(t[1]) if bounced else None,
                   "Lytics_Audiences__c": self.maybe(0.1, "all;high_value;engaged"),
                   "Lytics_Content_Affinity__c": self.maybe(0.1, "sports,technology,café"),
                   "Lytics_Scores__c": self.maybe(0.1, '{"momentum":%d,"quantity":%d}' % (self.ri(100), self.ri(100)))}
            if i % 97 == 3:
                row["FirstName"], row["LastName"], row["Company"] = self.maxstr(40), self.maxstr(80), self.maxstr(255)
                row["Title"], row["City"], row["PostalCode"] = self.maxstr(128), self.maxstr(40), self.maxstr(20)
                row["Email"] = "b" * (80 - len("@example.org") - len(str(i)) - 1) + ".%d@example.org" % i
                if i % 2 == 1:
                    row["Lytics_Scores__c"] = self.maxstr(32768)
                    row["Description"] = self.maxstr(32000)
            self.stamp(row, t)
            rows.append(row)
        return self.insert("Lead", rows)

    def generic(self, obj, n):
        self._obj = obj
        r = self.rng
        rows = []
        fields = self.store.schema.fields[obj]
        for i, t in enumerate(self.times(n)):
            row = {"Id": self.store.new_id(obj)}
            for name, fd in fields.items():
                if not fd["createable"] or fd["type"] in ("reference", "address"):
                    continue
                ty = fd["type"]
                if ty == "boolean":
                    row[name] = r.random() < 0.5
                    continue
                if fd["nillable"] and name != "Name" and r.random() < 0.2:
                    continue
                if ty == "email":
                    row[name] = "rec%d.%s@example.com" % (i, name.lower().replace("_", ""))
                elif ty in ("string", "textarea", "phone", "url", "picklist", "combobox"):
                    if fd["unique"] or fd["externalId"]:
                        row[name] = "%s-%06d" % (obj[:4].upper(), i)
                    elif fd["picklistValues"]:
                        row[name] = self.pick(fd["picklistValues"])["value"]
                    else:
                        s = "%s %d %s" % (self.pick(COMPANY), i, self.pick(["", "é", "🚀", "中文"]))
                        row[name] = s[:fd["length"] or 255]
                elif ty in ("int",):
                    row[name] = self.ri(0, 100000)
                elif ty in ("double", "currency", "percent"):
                    row[name] = round(r.uniform(0, 1000), fd.get("scale") or 2)
                elif ty == "date":
                    row[name] = sf_date(t[0] + self.ri(-100, 100) * DAY)
                elif ty == "datetime":
                    row[name] = sf_datetime(t[0])
            self.stamp(row, t)
            rows.append(row)
        return self.insert(obj, rows)


def _epoch_of(s):
    from store import parse_datetime
    return parse_datetime(s)


def parse_spec(text):
    """'Lead=10,Contact=5' -> {"Lead": 10, "Contact": 5} (raises ValueError)"""
    out = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, num = part.partition("=")
        if not num.strip().isdigit():
            raise ValueError("--generate: expected Object=N, got %r" % part)
        out[name.strip()] = int(num)
    return out


def generate(store, counts, seed=1):
    """counts: {object name: n}; deterministic for seed and the store's clock start"""
    g = Gen(store, seed)
    sch = store.schema
    canon = {}
    for k, v in counts.items():
        c = sch.object_name(k)
        if c is None:
            raise ValueError("--generate: unknown object %s" % k)
        canon[c] = v
    rts = g.record_types()
    accounts = g.accounts(canon.pop("Account", 0))
    contacts = g.contacts(canon.pop("Contact", 0), accounts)
    opps = g.opportunities(canon.pop("Opportunity", 0), accounts, contacts)
    n_ocr = canon.pop("OpportunityContactRole", None)
    g.contact_roles(n_ocr, opps, contacts)
    g.leads(canon.pop("Lead", 0), rts)
    canon.pop("RecordType", None)
    for obj, n in canon.items():
        if obj in ("User", "Organization"):
            continue
        g.generic(obj, n)
