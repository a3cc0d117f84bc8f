"""Records of the emulated org: ids, timestamps, validation, writes, persistence.

Rows are flat dicts (field name -> python value: str, int/float, bool, None). Every row holds
every field of its object's describe (absent values are None) plus IsDeleted (also on objects
whose describe has no IsDeleted field). Datetimes are Salesforce strings
"2024-01-15T10:30:00.000+0000", dates "2024-01-15". Rows are replaced, never mutated, on
update: a list of rows taken earlier stays a consistent snapshot.

Write API (used by server.py and bulk.py; call with `store.lock` held for a multi-record batch):

    store.create(obj, fields, allow_save=False)            -> result
    store.update(obj, record_id, fields, allow_save=False) -> result
    store.upsert(obj, ext_field, value, fields, allow_save=False) -> result (+ "created")
    store.delete(obj, record_id)                           -> result
    store.batch(ops, all_or_none)                          -> [result]   ops: [("create", obj, fields), ...]

A result is Salesforce's per-record shape: {"id": ..., "success": True, "errors": [], "created": ...}
or {"success": False, "errors": [{"statusCode", "message", "fields"}]}. Field values may be JSON
values or strings (CSV): "true"/"false", "12.5", "2024-01-15" are coerced by the field's type.
Problems that Salesforce reports for the whole request (unknown object or field) raise
`RequestError(status, error_code, message)`.
"""
import calendar
import datetime
import json
import os
import re
import threading
import time

from schema import Schema, NO_DELETE_FIELD, PERSON_NAME, STAGE_INFO, STRING_TYPES, QUERY_LOCATOR_PREFIX

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                   r"(Z|[+-]\d{2}:?\d{2})?$")
NUM_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")

ORG_ID = "00D5g000004XyZaEAK"
USER_ID = "0055g00000ABCDeAAP"  # a valid 18-character id (checksum AAP)
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
               "fields": []}
DUP_MESSAGE = "You're creating a duplicate record. We recommend you use an existing record instead."


# ---------------------------------------------------------------------------------------------
# ids and times

def id_suffix(id15):
    out = ""
    for chunk in range(3):
        bits = 0
        for i in range(5):
            c = id15[chunk * 5 + i]
            if "A" <= c <= "Z":
                bits |= 1 << i
        out += _SUFFIX[bits]
    return out


def to18(rid):
    """15- or 18-char id -> 18-char id (None when malformed or the checksum is wrong)"""
    if not isinstance(rid, str) or not ID_RE.match(rid):
        return None
    if len(rid) == 15:
        return rid + id_suffix(rid)
    if id_suffix(rid[:15]) != rid[15:].upper() and id_suffix(rid[:15]) != rid[15:]:
        return None
    return rid[:15] + id_suffix(rid[:15])


def b62(n, width):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s.rjust(width, "0")


def make_id(prefix, n):
    body = prefix + "5g0" + b62(n, 9)
    return body + id_suffix(body)


def sf_datetime(epoch):
    """epoch seconds -> '2024-01-15T10:30:00.000+0000' (Salesforce keeps whole seconds)"""
    t = time.gmtime(int(epoch // 1))
    return "%04d-%02d-%02dT%02d:%02d:%02d.000+0000" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour,
                                                      t.tm_min, t.tm_sec)


def sf_date(epoch):
    t = time.gmtime(int(epoch))
    return "%04d-%02d-%02d" % (t.tm_year, t.tm_mon, t.tm_mday)


def parse_datetime(s):
    """ISO 8601 / Salesforce datetime string -> epoch seconds (float) or None"""
    if not isinstance(s, str):
        return None
    m = DT_RE.match(s.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        datetime.date(int(y), int(mo), int(d))
        if int(hh or 0) > 23 or int(mi or 0) > 59 or int(ss or 0) > 60:
            return None
    except ValueError:
        return None
    epoch = calendar.timegm((int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), 0, 0, 0))
    if frac:
        epoch += int(frac[:3].ljust(3, "0")) / 1000.0
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t = tz[1:].replace(":", "")
        epoch -= sign * (int(t[:2]) * 3600 + int(t[2:]) * 60)
    return epoch


def utf16_len(s):
    n = len(s)
    if s.isascii():
        return n
    return n + sum(1 for c in s if ord(c) > 0xFFFF)


class Clock:
    """Emulator clock: real time flow from a settable start, advanceable."""

    def __init__(self, start=None):
        self._lock = threading.Lock()
        self._base = time.time() if start is None else float(start)
        self._mono = time.monotonic()

    def now(self):
        with self._lock:
            return self._base + (time.monotonic() - self._mono)

    def advance(self, seconds):
        with self._lock:
            self._base += float(seconds)

    def set(self, epoch):
        with self._lock:
            self._base = float(epoch)
            self._mono = time.monotonic()

    def sf_now(self):
        return sf_datetime(self.now())


# ---------------------------------------------------------------------------------------------

class RequestError(Exception):
    """an error Salesforce reports for the whole request: status + [{"message","errorCode"}]"""

    def __init__(self, status, code, message, fields=None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self):
        e = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            e["fields"] = self.fields
        return [e]


class _Fail(Exception):
    def __init__(self, *errors):
        super().__init__(errors[0]["message"] if errors else "")
        self.errors = list(errors)


def err(code, message, fields=()):
    return {"statusCode": code, "message": message, "fields": list(fields)}


class Db:
    """The view soql.py and bulk.py read through (one per API version)."""

    def __init__(self, store, api_version):
        self.store = store
        self.api_version = api_version

    def describe(self, object_name):
        obj = self.store.schema.object_name(object_name)
        if obj is None:
            return None
        return self.store.describe(obj, self.api_version)

    def rows(self, object_name):
        obj = self.store.schema.object_name(object_name)
        if obj is None:
            return []
        return list(self.store.tables[obj].values())

    def now(self):
        """emulator clock, epoch seconds"""
        return self.store.clock.now()

    def get(self, object_name, record_id):
        obj = self.store.schema.object_name(object_name)
        rid = to18(record_id)
        if obj is None or rid is None:
            return None
        return self.store.tables[obj].get(rid)


class Store:
    def __init__(self, schema=None, clock=None, seed=1):
        self.schema = schema or Schema()
        self.clock = clock or Clock()
        self.seed = seed
        self.lock = threading.RLock()
        self.tables = {o: {} for o in self.schema.order}
        self.counters = {}
        self.dup_rules = []          # [(obj, field)]
        self.schema_docs = []        # objects.json documents applied (persisted)
        self.written = 0             # records written through the API
        self.dirty = False
        self.on_write = None         # callback after a committed write
        self._index = {}             # (obj, field) -> {key: set(ids)}
        self._templates = {}
        self.schema_mtime = self.clock.now()
        self.late_commit_seconds = 0  # API writes stamped this long before they commit (a transaction started earlier)
        self._ensure_user()
        self._ensure_org()

    # -- schema ---------------------------------------------------------------------------
    def apply_schema(self, doc):
        with self.lock:
            self.schema.apply(doc)
            self.schema_docs.append(doc)
            for o in self.schema.order:
                self.tables.setdefault(o, {})
            self._templates = {}
            self._index = {}
            # new fields appear as None on existing rows
            for o in self.schema.order:
                names = self.schema.fields[o].keys()
                for rid, row in list(self.tables[o].items()):
                    missing = [n for n in names if n not in row]
                    if missing:
                        row = dict(row)
                        for n in missing:
                            row[n] = None
                        self.tables[o][rid] = row
            self.schema_mtime = self.clock.now()

    def describe(self, obj, version):
        with self.lock:
            rts = ()
            if obj not in ("RecordType", "User", "Organization"):
                rts = [r for r in self.tables.get("RecordType", {}).values()
                       if r.get("SobjectType") == obj and not r.get("IsDeleted")]
            return self.schema.describe(obj, version, rts)

    def template(self, obj):
        t = self._templates.get(obj)
        if t is None:
            t = {}
            for name, fd in self.schema.fields[obj].items():
                if fd["type"] == "address":
                    continue
                t[name] = fd["defaultValue"] if fd["type"] == "boolean" else None
            t["IsDeleted"] = False
            self._templates[obj] = t
        return t

    # -- ids ------------------------------------------------------------------------------
    def new_id(self, obj):
        prefix = self.schema.key_prefix[obj]
        n = self.counters.get(prefix)
        if n is None:
            n = 62 ** 4 * (1 + (self.seed * 7919 + sum(map(ord, prefix))) % 61)
        n += 1
        self.counters[prefix] = n
        return make_id(prefix, n)

    def new_locator(self):
        with self.lock:
            n = self.counters.get(QUERY_LOCATOR_PREFIX, 62 ** 5) + 1
            self.counters[QUERY_LOCATOR_PREFIX] = n
        body = QUERY_LOCATOR_PREFIX + "RO" + b62(n, 10)
        return body + id_suffix(body)

    def _ensure_user(self):
        users = self.tables["User"]
        if USER_ID not in users:
            row = dict(self.template("User"))
            now = sf_datetime(self.clock.now() - 400 * 86400)
            row.update({"Id": USER_ID, "Username": "demo@example.com", "LastName": "User", "FirstName": "Demo",
                        "Name": "Demo User", "Email": "demo@example.com", "Alias": "demo", "IsActive": True,
                        "CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                        "CreatedById": USER_ID, "LastModifiedById": USER_ID})
            users[USER_ID] = row

    def _ensure_org(self):
        orgs = self.tables["Organization"]
        if ORG_ID not in orgs:
            row = dict(self.template("Organization"))
            then = sf_datetime(self.clock.now() - 400 * 86400)
            row.update({"Id": ORG_ID, "Name": "Demo Org", "Country": "US", "DefaultLocaleSidKey": "en_US",
                        "TimeZoneSidKey": "GMT", "LanguageLocaleKey": "en_US", "FiscalYearStartMonth": 1,
                        "DefaultAccountAccess": "Edit", "DefaultContactAccess": "ControlledByParent",
                        "DefaultOpportunityAccess": "Edit", "DefaultLeadAccess": "ReadEditTransfer",
                        "DefaultCaseAccess": "ReadEditTransfer", "DefaultCalendarAccess": "HideDetails",
                        "DefaultPricebookAccess": "ReadSelect", "DefaultCampaignAccess": "All", "UiSkin": "Theme3",
                        "SignupCountryIsoCode": "US", "NumKnowledgeService": 0, "OrganizationType": "Enterprise Edition",
                        "InstanceName": "EMU1", "IsSandbox": False, "MonthlyPageViewsUsed": 0,
                        "MonthlyPageViewsEntitlement": 0, "IsReadOnly": False, "CreatedDate": then,
                        "LastModifiedDate": then, "SystemModstamp": then, "CreatedById": USER_ID,
                        "LastModifiedById": USER_ID})
            orgs[ORG_ID] = row

    def set_org(self, name=None, sandbox=None, instance=None, edition=None):
        """the Organization row (--org-name, --sandbox, --instance-name, --edition)"""
        with self.lock:
            row = dict(self.tables["Organization"][ORG_ID])
            if name is not None:
                row["Name"] = name
            if sandbox is not None:
                row["IsSandbox"] = bool(sandbox)
            if instance is not None:
                row["InstanceName"] = instance
            if edition is not None:
                row["OrganizationType"] = edition
            self.tables["Organization"][ORG_ID] = row

    @property
    def is_sandbox(self):
        return bool(self.tables["Organization"][ORG_ID].get("IsSandbox"))

    # -- fields an admin removes and restores (tests) -------------------------------------------
    def remove_field(self, obj, name):
        with self.lock:
            canon = self.schema.remove_field(obj, name)
            self._schema_changed()
            return canon

    def restore_field(self, obj, name):
        with self.lock:
            canon = self.schema.restore_field(obj, name)
            self._schema_changed()
            return canon

    def _schema_changed(self):
        self._templates = {}
        self._index = {}
        self.schema_mtime = self.clock.now()

    def set_username(self, username):
        with self.lock:
            row = dict(self.tables["User"][USER_ID])
            row["Username"] = username
            if EMAIL_RE.match(username):
                row["Email"] = username
            self.tables["User"][USER_ID] = row

    # -- reads ----------------------------------------------------------------------------
    def db(self, version):
        return Db(self, version)

    def get(self, obj, rid):
        r = to18(rid)
        return self.tables[obj].get(r) if r else None

    def lookup(self, obj, field, value):
        """ids of live rows whose field equals value (case-insensitive for strings)"""
        idx = self._get_index(obj, field)
        return sorted(idx.get(_key(value), ()))

    def _get_index(self, obj, field):
        idx = self._index.get((obj, field))
        if idx is None:
            idx = {}
            for rid, row in self.tables[obj].items():
                if not row.get("IsDeleted"):
                    v = row.get(field)
                    if v is not None and v != "":
                        idx.setdefault(_key(v), set()).add(rid)
            self._index[(obj, field)] = idx
        return idx

    def _reindex(self, obj, old, new):
        for (o, field), idx in self._index.items():
            if o != obj:
                continue
            if old is not None and not old.get("IsDeleted"):
                v = old.get(field)
                if v is not None and v != "":
                    s = idx.get(_key(v))
                    if s:
                        s.discard(old["Id"])
            if new is not None and not new.get("IsDeleted"):
                v = new.get(field)
                if v is not None and v != "":
                    idx.setdefault(_key(v), set()).add(new["Id"])

    # -- direct writes (seed data, introspection) -----------------------------------------
    def put_raw(self, obj, row, bump=True):
        """insert or merge a row without validation; returns its id"""
        with self.lock:
            row = dict(row)
            rid = to18(row.get("Id")) if row.get("Id") else None
            table = self.tables[obj]
            old = table.get(rid) if rid else None
            now = sf_datetime(self.clock.now())
            if old is None:
                new = dict(self.template(obj))
                if rid is None:
                    rid = self.new_id(obj)
                if bump:
                    new.update({"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now})
                new.update({"CreatedById": USER_ID, "LastModifiedById": USER_ID})
                if "OwnerId" in new:
                    new["OwnerId"] = USER_ID
            else:
                new = dict(old)
                if bump:
                    new.update({"LastModifiedDate": now, "SystemModstamp": now})
            for k, v in row.items():
                if k == "attributes":
                    continue
                fd = self.schema.field(obj, k)
                name = fd["name"] if fd else k
                if fd and fd["type"] == "address":
                    continue
                new[name] = v
            new["Id"] = rid
            if new.get("IsDeleted") is None:
                new["IsDeleted"] = False
            self._derive(obj, new, old, set(row))
            table[rid] = new
            self._reindex(obj, old, new)
            self.dirty = True
            return rid

    def put_generated(self, obj, rows):
        """bulk insert of complete rows with canonical field names (generator); assigns ids"""
        with self.lock:
            table = self.tables[obj]
            tmpl = self.template(obj)
            for r in rows:
                row = dict(tmpl)
                row.update(r)
                if not row.get("Id"):
                    row["Id"] = self.new_id(obj)
                row.setdefault("CreatedById", USER_ID)
                if row.get("CreatedById") is None:
                    row["CreatedById"] = USER_ID
                if row.get("LastModifiedById") is None:
                    row["LastModifiedById"] = USER_ID
                self._derive(obj, row, None, set(r))
                table[row["Id"]] = row
                r["Id"] = row["Id"]
            self._index = {k: v for k, v in self._index.items() if k[0] != obj}
            self.dirty = True

    # -- validation -----------------------------------------------------------------------
    def _coerce(self, obj, fd, value):
        """JSON/CSV value -> stored value; raises _Fail"""
        t = fd["type"]
        name = fd["name"]
        if value is None:
            return None
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise _Fail(self._bad_type(fd, value))
        if t in ("int", "double", "currency", "percent"):
            if isinstance(value, bool):
                raise _Fail(self._bad_type(fd, value))
            if isinstance(value, str):
                v = value.strip()
                if v == "":
                    return None
                if not NUM_RE.match(v):
                    raise _Fail(self._bad_type(fd, value))
                value = float(v) if any(c in v for c in ".eE") else int(v)
            if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
                raise _Fail(self._bad_type(fd, value))
            if t == "int":
                if isinstance(value, float):
                    if value != int(value):
                        raise _Fail(self._bad_type(fd, value))
                    value = int(value)
                return value
            prec, scale = fd.get("precision") or 18, fd.get("scale") or 0
            if abs(value) >= 10 ** (prec - scale):
                raise _Fail(err("NUMBER_OUTSIDE_VALID_RANGE",
                                "%s: value outside of valid range on numeric field: %s" % (fd["label"], value), [name]))
            if isinstance(value, float) and scale >= 0:
                value = round(value, scale)
                if scale == 0 and value == int(value):
                    value = int(value)
            return value
        if t == "date":
            if isinstance(value, str):
                v = value.strip()
                if DATE_RE.match(v):
                    e = parse_datetime(v)
                    if e is not None:
                        return v
                e = parse_datetime(v)
                if e is not None and "T" in v:
                    return sf_date(e)
            raise _Fail(self._bad_type(fd, value))
        if t == "datetime":
            if isinstance(value, str):
                e = parse_datetime(value)
                if e is not None:
                    return sf_datetime(e)
            raise _Fail(self._bad_type(fd, value))
        if t in STRING_TYPES or t == "time":
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = repr(value) if isinstance(value, float) else str(value)
            elif not isinstance(value, str):
                raise _Fail(self._bad_type(fd, value))
            return None if value == "" else value
        raise _Fail(self._bad_type(fd, value))

    def _bad_type(self, fd, value):
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        return err("INVALID_TYPE_ON_FIELD_IN_RECORD", "%s: value not of required type: %s" % (fd["label"], value),
                   [fd["name"]])

    def _resolve_fields(self, obj, fields):
        """{json key: value} -> {canonical field: value}; unknown fields raise RequestError"""
        out = {}
        for k, v in fields.items():
            if k == "attributes":
                continue
            fd = self.schema.field(obj, k)
            if fd is None:
                raise RequestError(400, "INVALID_FIELD", "No such column '%s' on sobject of type %s" % (k, obj))
            out[fd["name"]] = v
        return out

    def _validate(self, obj, values, old, op):
        """values: {field: raw value}; returns {field: stored value}; raises _Fail"""
        sch = self.schema
        fds = sch.fields[obj]
        # types first (Salesforce deserialises the record before it checks anything else)
        coerced = {}
        for name, v in values.items():
            if name == "Id":
                continue
            coerced[name] = self._coerce(obj, fds[name], v)
        # permissions
        if op == "create" and "Id" in values and values["Id"] not in (None, ""):
            raise _Fail(err("INVALID_FIELD_FOR_INSERT_UPDATE", "Record ID: cannot specify Id in an insert call", ["Id"]))
        flag = "createable" if op == "create" else "updateable"
        bad = [n for n in coerced if not fds[n][flag]]
        if bad:
            raise _Fail(err("INVALID_FIELD_FOR_INSERT_UPDATE",
                            "Unable to create/update fields: %s. Please check the security settings of this field "
                            "and verify that it is read/write for your profile or permission set." % ", ".join(bad), bad))
        # required
        merged = dict(old) if old else {}
        merged.update(coerced)
        missing = []
        for name, fd in fds.items():
            if fd["nillable"] or fd["type"] in ("boolean", "id", "address") or not fd["createable"]:
                continue
            if op == "create" and fd["defaultedOnCreate"]:
                continue
            if name == "Name" and sch.is_custom(obj):
                continue
            if op == "update" and name not in coerced:
                continue
            if merged.get(name) in (None, ""):
                missing.append(name)
        if missing:
            raise _Fail(err("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % ", ".join(missing), missing))
        # lengths, emails, references
        for name, v in coerced.items():
            fd = fds[name]
            t = fd["type"]
            if v is None:
                continue
            if t in STRING_TYPES and t not in ("reference", "id") and fd["length"] and utf16_len(v) > fd["length"]:
                raise _Fail(err("STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)" % (
                    fd["label"], v, fd["length"]), [name]))
            if t == "email" and not EMAIL_RE.match(v):
                raise _Fail(err("INVALID_EMAIL_ADDRESS", "%s: invalid email address: %s" % (fd["label"], v), [name]))
            if t == "reference":
                rid = to18(v)
                targets = fd["referenceTo"]
                target = sch.prefix_object(v[:3]) if rid else None
                if rid is None:
                    raise _Fail(err("MALFORMED_ID", "%s: id value of incorrect type: %s" % (fd["label"], v), [name]))
                if target not in targets:
                    raise _Fail(err("FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s" % (fd["label"], v),
                                    [name]))
                ref = self.tables.get(target, {}).get(rid)
                if ref is None or ref.get("IsDeleted"):
                    raise _Fail(err("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]))
                coerced[name] = rid
        return coerced

    def _dup_check(self, obj, new, allow_save, version="62.0"):
        if allow_save:
            return
        for (o, field) in self.dup_rules:
            if o != obj:
                continue
            v = new.get(field)
            if v in (None, ""):
                continue
            ids = [i for i in self.lookup(obj, field, v) if i != new.get("Id")]
            if not ids:
                continue
            recs = [{"additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                     "record": {"attributes": {"type": obj, "url": "/services/data/v%s/sobjects/%s/%s" % (version, obj, i)},
                                "Id": i}} for i in ids]
            dr = {"allowSave": True, "duplicateRule": "Standard_%s_Duplicate_Rule" % obj,
                  "duplicateRuleEntityType": obj, "errorMessage": DUP_MESSAGE,
                  "matchResults": [{"entityType": obj, "errors": [], "matchEngine": "ExactMatchEngine",
                                    "matchRecords": recs, "rule": "%s_%s_Match_Rule" % (obj, field),
                                    "size": len(recs), "success": True}]}
            e = err("DUPLICATES_DETECTED", DUP_MESSAGE, [])
            e["duplicateResut"] = dr
            raise _Fail(e)

    def _derive(self, obj, new, old, changed):
        if obj in PERSON_NAME and (old is None or changed & {"FirstName", "LastName", "Name"}):
            if not (old is None and new.get("Name") and "Name" in changed):
                parts = [p for p in (new.get("FirstName"), new.get("LastName")) if p]
                new["Name"] = " ".join(parts) if parts else None
        if obj == "Opportunity":
            info = STAGE_INFO.get(new.get("StageName"))
            if info:
                if old is None or "StageName" in changed:
                    if "Probability" not in changed:
                        new["Probability"] = info[1]
                    if "ForecastCategoryName" not in changed:
                        new["ForecastCategoryName"] = info[2]
                new["IsClosed"], new["IsWon"] = info[4], info[5]
            cat = {"Omitted": "Omitted", "Pipeline": "Pipeline", "Best Case": "BestCase", "Commit": "Forecast",
                   "Closed": "Closed"}.get(new.get("ForecastCategoryName"))
            if cat:
                new["ForecastCategory"] = cat
            cd = new.get("CloseDate")
            if cd and DATE_RE.match(cd):
                y, m = int(cd[:4]), int(cd[5:7])
                q = (m - 1) // 3 + 1
                new["FiscalYear"], new["FiscalQuarter"], new["Fiscal"] = y, q, "%d %d" % (y, q)
            if new.get("Amount") is not None and new.get("Probability") is not None:
                new["ExpectedRevenue"] = round(new["Amount"] * new["Probability"] / 100.0, 2)
            else:
                new["ExpectedRevenue"] = None
        if obj == "Lead" and not new.get("Status"):
            new["Status"] = "Open - Not Contacted"
        if obj not in NO_DELETE_FIELD and "OwnerId" in self.schema.fields[obj] and not new.get("OwnerId"):
            new["OwnerId"] = USER_ID
        if self.schema.is_custom(obj) and not new.get("Name") and "Name" in self.schema.fields[obj]:
            new["Name"] = new["Id"]

    # -- API writes -----------------------------------------------------------------------
    def _prepare(self, op, obj, arg, fields, allow_save, version):
        """-> ("create"|"update"|"delete", obj, old, new_values) or raises _Fail/RequestError"""
        table = self.tables[obj]
        flags = self.schema.object_flags(obj)
        if op == "create":
            if not flags["createable"]:
                raise _Fail(err("INVALID_TYPE_FOR_OPERATION", "entity type cannot be inserted: %s" % obj))
            values = self._resolve_fields(obj, fields)
            coerced = self._validate(obj, values, None, "create")
            self._dup_check(obj, coerced, allow_save, version)
            return ("create", obj, None, coerced)
        if op == "update":
            rid = to18(arg) if isinstance(arg, str) else None
            if rid is None or self.schema.prefix_object(rid[:3]) != obj:
                raise _Fail(err("MALFORMED_ID", "malformed id %s" % (arg,), ["Id"]))
            old = table.get(rid)
            if old is None:
                raise _Fail(err("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            if old.get("IsDeleted"):
                raise _Fail(err("ENTITY_IS_DELETED", "entity is deleted"))
            if not flags["updateable"]:
                raise _Fail(err("INVALID_TYPE_FOR_OPERATION", "entity type cannot be updated: %s" % obj))
            values = self._resolve_fields(obj, fields)
            if "Id" in values and to18(values["Id"]) not in (None, rid):
                raise _Fail(err("INVALID_ID_FIELD", "Id in the body does not match the record", ["Id"]))
            coerced = self._validate(obj, values, old, "update")
            if any(f in coerced for (o, f) in self.dup_rules if o == obj):
                self._dup_check(obj, dict(old, **coerced), allow_save, version)
            return ("update", obj, old, coerced)
        if op == "delete":
            rid = to18(arg) if isinstance(arg, str) else None
            if rid is None or self.schema.prefix_object(rid[:3]) != obj:
                raise _Fail(err("MALFORMED_ID", "malformed id %s" % (arg,)))
            old = table.get(rid)
            if old is None:
                raise _Fail(err("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            if old.get("IsDeleted"):
                raise _Fail(err("ENTITY_IS_DELETED", "entity is deleted"))
            if not flags["deletable"]:
                raise _Fail(err("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted: %s" % obj))
            return ("delete", obj, old, None)
        raise ValueError(op)

    def _commit(self, prep, allow_save, version):
        kind, obj, old, values = prep
        now = sf_datetime(self.clock.now() - self.late_commit_seconds)
        table = self.tables[obj]
        if kind == "create":
            new = dict(self.template(obj))
            new.update(values)
            new["Id"] = self.new_id(obj)
            new.update({"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now,
                        "CreatedById": USER_ID, "LastModifiedById": USER_ID, "IsDeleted": False})
            self._derive(obj, new, None, set(values))
            table[new["Id"]] = new
            self._reindex(obj, None, new)
            created = True
        elif kind == "update":
            new = dict(old)
            new.update(values)
            new.update({"LastModifiedDate": now, "SystemModstamp": now, "LastModifiedById": USER_ID})
            self._derive(obj, new, old, set(values))
            table[new["Id"]] = new
            self._reindex(obj, old, new)
            created = False
        else:
            self._delete_row(obj, old, now)
            created = False
            new = old
        self.written += 1
        self.dirty = True
        if self.on_write:
            self.on_write()
        return new["Id"], created

    def _delete_row(self, obj, old, now):
        new = dict(old)
        new.update({"IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now, "LastModifiedById": USER_ID})
        self.tables[obj][old["Id"]] = new
        self._reindex(obj, old, new)
        # cascade to children (Account -> Contacts/Opportunities, Opportunity/Contact -> contact roles)
        for rel in self.schema.child_rels.get(obj, []):
            if not rel["cascadeDelete"]:
                continue
            child = rel["childSObject"]
            for row in list(self.tables[child].values()):
                if row.get(rel["field"]) == old["Id"] and not row.get("IsDeleted"):
                    self._delete_row(child, row, now)

    def _one(self, op, obj, arg, fields, allow_save, version):
        with self.lock:
            try:
                prep = self._prepare(op, obj, arg, fields, allow_save, version)
                rid, created = self._commit(prep, allow_save, version)
            except _Fail as e:
                return {"success": False, "errors": e.errors}
            res = {"id": rid, "success": True, "errors": []}
            if op == "create":
                res["created"] = True
            return res

    def create(self, obj, fields, allow_save=False, version="62.0"):
        return self._one("create", obj, None, fields, allow_save, version)

    def update(self, obj, record_id, fields, allow_save=False, version="62.0"):
        return self._one("update", obj, record_id, fields, allow_save, version)

    def delete(self, obj, record_id, version="62.0"):
        return self._one("delete", obj, record_id, None, False, version)

    def ext_field(self, obj, ext_field):
        """canonical external-id field usable for upsert, else raises RequestError 404"""
        fd = self.schema.field(obj, ext_field)
        if fd is None or not (fd["externalId"] or fd["idLookup"]):
            raise RequestError(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s"
                               % ext_field)
        return fd["name"]

    def upsert_target(self, obj, field, value):
        """ids of live rows matching an external id value"""
        if field == "Id":
            rid = to18(value) if isinstance(value, str) else None
            row = self.tables[obj].get(rid) if rid else None
            return [rid] if row is not None and not row.get("IsDeleted") else []
        if value is None or value == "":
            return []
        return self.lookup(obj, field, value)

    def upsert(self, obj, ext_field, value, fields, allow_save=False, version="62.0"):
        """-> result; a 300 (several matches) result has success False and "matches": [ids]"""
        with self.lock:
            field = self.ext_field(obj, ext_field)
            return self._upsert_one(obj, field, value, fields, allow_save, version)

    def _upsert_prepare(self, obj, field, value, fields, allow_save, version):
        fields = {k: v for k, v in fields.items() if k != "attributes"}
        # the external id value from the URL wins over the body
        for k in list(fields):
            if k.lower() == field.lower():
                del fields[k]
        fd = self.schema.fields[obj][field]
        if value is None or value == "":
            raise _Fail(err("MISSING_ARGUMENT", "%s not specified" % field, [field]))
        if field != "Id":
            value = self._coerce(obj, fd, value)
        ids = self.upsert_target(obj, field, value)
        if len(ids) > 1:
            e = err("DUPLICATE_EXTERNAL_ID", "%s: more than one record found for external id field: [%s]" % (
                fd["label"], ", ".join(ids)), [field])
            f = _Fail(e)
            f.matches = ids
            raise f
        if ids:
            return self._prepare("update", obj, ids[0], fields, allow_save, version)
        if field == "Id":
            raise _Fail(err("NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s" % value))
        body = dict(fields)
        body[field] = value
        return self._prepare("create", obj, None, body, allow_save, version)

    def _upsert_one(self, obj, field, value, fields, allow_save, version):
        try:
            prep = self._upsert_prepare(obj, field, value, fields, allow_save, version)
            rid, created = self._commit(prep, allow_save, version)
        except _Fail as e:
            r = {"success": False, "errors": e.errors}
            if getattr(e, "matches", None):
                r["matches"] = e.matches
            return r
        return {"id": rid, "success": True, "errors": [], "created": prep[0] == "create"}

    def batch(self, ops, all_or_none=False, allow_save=False, version="62.0"):
        """ops: [("create", obj, fields) | ("update", obj, id, fields) | ("upsert", obj, ext_field, fields)
        | ("delete", obj, id)]; -> results in order. allOrNone: all or nothing is written."""
        with self.lock:
            if not all_or_none:
                out = []
                for op in ops:
                    out.append(self._batch_one(op, allow_save, version))
                return out
            preps, results, failed = [], [], False
            for op in ops:
                try:
                    preps.append(self._batch_prepare(op, allow_save, version))
                    results.append(None)
                except _Fail as e:
                    preps.append(None)
                    results.append({"success": False, "errors": e.errors})
                    failed = True
            if not failed:
                done = []
                for op, p in zip(ops, preps):
                    rid, created = self._commit(p, allow_save, version)
                    r = {"id": rid, "success": True, "errors": []}
                    if op[0] == "create":
                        r["created"] = True
                    elif op[0] == "upsert":
                        r["created"] = p[0] == "create"
                    done.append(r)
                return done
            return [r if r is not None else {"success": False, "errors": [dict(ROLLED_BACK)]} for r in results]

    def _batch_prepare(self, op, allow_save, version):
        kind = op[0]
        if kind == "error":
            raise _Fail(*op[1])
        obj = op[1]
        if kind == "create":
            return self._prepare("create", obj, None, op[2], allow_save, version)
        if kind == "update":
            return self._prepare("update", obj, op[2], op[3], allow_save, version)
        if kind == "delete":
            return self._prepare("delete", obj, op[2], None, allow_save, version)
        if kind == "upsert":
            field = op[2]
            fields = op[3]
            value = None
            for k, v in fields.items():
                if k.lower() == field.lower():
                    value = v
            return self._upsert_prepare(obj, field, value, fields, allow_save, version)
        raise ValueError(kind)

    def _batch_one(self, op, allow_save, version):
        try:
            prep = self._batch_prepare(op, allow_save, version)
            rid, created = self._commit(prep, allow_save, version)
        except _Fail as e:
            return {"success": False, "errors": e.errors}
        res = {"id": rid, "success": True, "errors": []}
        if op[0] == "create":
            res["created"] = True
        elif op[0] == "upsert":
            res["created"] = prep[0] == "create"
        return res

    # -- replication ----------------------------------------------------------------------
    def updated_ids(self, obj, start, end):
        lo, hi = sf_datetime(start), sf_datetime(end)
        return [r["Id"] for r in self.tables[obj].values()
                if not r.get("IsDeleted") and r.get("SystemModstamp") and lo <= r["SystemModstamp"] < hi]

    def deleted_rows(self, obj, start, end):
        lo, hi = sf_datetime(start), sf_datetime(end)
        return [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in self.tables[obj].values()
                if r.get("IsDeleted") and r.get("SystemModstamp") and lo <= r["SystemModstamp"] < hi]

    # -- persistence ----------------------------------------------------------------------
    def dump(self, extra=None):
        with self.lock:
            doc = {"format": "sfemulator-1", "seed": self.seed, "counters": self.counters,
                   "schema_docs": self.schema_docs,
                   "tables": {o: list(t.values()) for o, t in self.tables.items() if t}}
            if extra:
                doc.update(extra)
            self.dirty = False
            return doc

    def save(self, path, extra=None):
        doc = self.dump(extra)
        tmp = "%s.tmp%d" % (path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load(self, path):
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        with self.lock:
            for sd in doc.get("schema_docs", []):
                if sd not in self.schema_docs:
                    self.apply_schema(sd)
            self.counters.update(doc.get("counters", {}))
            for obj, rows in doc.get("tables", {}).items():
                canon = self.schema.object_name(obj)
                if canon is None:
                    continue
                t = self.tables[canon]
                t.clear()
                tmpl = self.template(canon)
                for r in rows:
                    row = dict(tmpl)
                    row.update(r)
                    t[row["Id"]] = row
            self._index = {}
            self._ensure_user()
            self._ensure_org()
            self.dirty = False
        return doc


def _key(v):
    if isinstance(v, str):
        return v.lower()
    return v
