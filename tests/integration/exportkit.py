"""Helpers for the export integration tests (test_export*.py): recipes as
python dicts rendered to Lua, profile files, runs against the emulator and
the records it holds."""
import json
import os
import re
import subprocess

import engine
from engine import Workdir, credentials_env, run, PASSWORD_AUTH, SFENGINE

ORG = os.path.join(engine.ROOT, "tests", "fixtures", "export", "org")
EXAMPLES = os.path.join(engine.ROOT, "examples")

SYSTEM = {"Id", "OwnerId", "CreatedById", "LastModifiedById", "CreatedDate", "LastModifiedDate",
          "SystemModstamp", "IsDeleted", "IsConverted", "IsUnreadByOwner", "HasOptedOutOfEmail", "Status",
          "IsPartner", "IsEmailBounced", "Opt_In__c"}
DERIVED_NAME = {"Lead", "Contact"}   # Name is FirstName + LastName there


class Lua:
    """Raw Lua source inside a recipe dict."""

    def __init__(self, src):
        self.src = src


def lua(v, indent=""):
    if isinstance(v, Lua):
        return v.src
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    inner = indent + "  "
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(lua(x, inner) for x in v) + " }"
    if isinstance(v, dict):
        parts = []
        for k, x in v.items():
            key = k if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k) else "[%s]" % json.dumps(k)
            parts.append("%s%s = %s," % (inner, key, lua(x, inner)))
        return "{\n" + "\n".join(parts) + "\n" + indent + "}"
    raise TypeError(type(v))


def recipe(**keys):
    """An export recipe: defaults for a Lead export by Email from in.ndjson."""
    r = {"job": "export", "name": "t", "auth": Lua(PASSWORD_AUTH), "input": {"file": "in.ndjson"},
         "output": "out", "object": "Lead", "match_field": "Email"}
    for k, v in keys.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return "return " + lua(r) + "\n"


def profile(uid, audiences=("power",), event=None, **fields):
    d = {"id": uid, "fields": fields, "audiences": list(audiences)}
    if event:
        d["event"] = event
    return d


def ndjson(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


class Job:
    """A workdir with a recipe and an input file, run against an emulator."""

    def __init__(self, emu, recipe_text, rows=None, name="recipe.lua"):
        self.emu = emu
        self.wd = Workdir()
        self.recipe = self.wd.write(name, recipe_text)
        if rows is not None:
            self.input(rows)
        self.env = credentials_env(emu)

    def input(self, rows, name="in.ndjson"):
        return self.wd.write(name, rows if isinstance(rows, str) else ndjson(rows))

    def append(self, rows, name="in.ndjson"):
        with open(self.wd.path(name), "a") as f:
            f.write(rows if isinstance(rows, str) else ndjson(rows))

    def run(self, *args, check=0, **env):
        e = dict(self.env)
        e.update(env)
        return run(self.recipe, e, *args, check=check)

    def popen(self, *args):
        """The engine with stdin, stdout and stderr as text pipes."""
        return subprocess.Popen([SFENGINE, *args, self.recipe], env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def rejects(self):
        return self.wd.read_ndjson("out", "export-rejects.ndjson")

    def history(self):
        return self.wd.read_ndjson(".sfengine", "t.history.ndjson")

    def last(self):
        return self.history()[-1]

    def cleanup(self):
        self.wd.cleanup()


def records(emu, obj="Lead", keep=None):
    """Live rows with system fields and nulls dropped, sorted by Email/Name."""
    out = []
    for r in emu.records(obj):
        if r.get("IsDeleted"):
            continue
        d = {k: v for k, v in r.items() if v is not None and k not in SYSTEM
             and not (k == "Name" and obj in DERIVED_NAME)}
        if keep:
            d = {k: v for k, v in d.items() if k in keep}
        out.append(d)
    return sorted(out, key=lambda d: (str(d.get("Email") or d.get("AccountNumber") or d.get("Member_Key__c") or "").lower(),
                                      str(d.get("LastName") or d.get("Name") or "")))


def by_email(emu, obj="Lead"):
    return {(r.get("Email") or "").lower(): r for r in emu.records(obj) if not r.get("IsDeleted")}


def writes(emu):
    return emu.stats()["writes"]


def calls(emu):
    return emu.stats()["api_calls"]
