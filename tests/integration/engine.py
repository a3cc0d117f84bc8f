"""Helpers for integration tests: write recipes, run the real sfengine binary
against an emulator, read its outputs. Shared by every tests/integration file
(exportkit.py adds the export's, faultlib.py the fault-injection ones)."""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))

SFENGINE = os.path.join(ROOT, os.environ.get("SFENGINE", "./sfengine"))

PASSWORD_AUTH = """{
    flow = "password",
    login_url = sf.env "SF_LOGIN_URL",
    client_id = sf.secret_env "SF_CLIENT_ID",
    client_secret = sf.secret_env "SF_CLIENT_SECRET",
    username = sf.env "SF_USERNAME",
    password = sf.secret_env "SF_PASSWORD",
    security_token = sf.secret_env "SF_SECURITY_TOKEN",
  }"""


def credentials_env(emu, **extra):
    env = dict(os.environ)
    env.update({
        "SF_LOGIN_URL": emu.url,
        "SF_CLIENT_ID": "demo-client-id",
        "SF_CLIENT_SECRET": "demo-client-secret",
        "SF_USERNAME": "demo@example.com",
        "SF_PASSWORD": "demo-password",
        "SF_SECURITY_TOKEN": "DEMOTOKEN",
    })
    env.update(extra)
    return env


class Workdir:
    """A temp dir holding a recipe, its state and its output."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sfengine-test-")
        self.dir = self.tmp.name

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def read_ndjson(self, *parts):
        path = self.path(*parts)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def cleanup(self):
        self.tmp.cleanup()


def run(recipe_path, env, *args, timeout=300, check=None):
    """Runs sfengine; returns CompletedProcess (text)."""
    cmd = [SFENGINE, *args, recipe_path]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError("sfengine exited %d (want %d)\nstdout: %s\nstderr: %s"
                             % (p.returncode, check, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def popen(recipe_path, env, *args):
    return subprocess.Popen([SFENGINE, *args, recipe_path], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def import_recipe(name="t", objects="{ Lead = {} }", extra="", auth=PASSWORD_AUTH):
    """An import recipe: job, name, auth, output "out", objects (Lua text), then
    `extra` (more keys as Lua text, e.g. "batch_size = 200,")."""
    return """return {
  job = "import", name = "%s", auth = %s, output = "out",
  objects = %s,
  %s
}
""" % (name, auth, objects, extra)


def normalized(rows):
    """Stream lines without salesforce_last_user_imported: the import time differs
    between runs; everything else must be identical."""
    return [{k: v for k, v in r.items() if k != "salesforce_last_user_imported"} for r in rows]


def wait_for(cond, timeout=60, step=0.02):
    """cond()'s first true value, polled every `step` seconds; AssertionError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("condition not met within %ss" % timeout)
