"""The sfengine command line: versions, usage, exit codes and one-line errors.

Runs the real binary ($SFENGINE, default ./sfengine) on the recipes under
tests/fixtures/cli/. No network.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("SFENGINE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import tap  # noqa: E402

BIN = os.environ.get("SFENGINE", "./sfengine")
if not os.path.isabs(BIN):
    BIN = os.path.join(ROOT, BIN)
FIX = os.path.join(ROOT, "tests", "fixtures", "cli")


def run(*args, cwd=None, timeout=60):
    p = subprocess.run([BIN, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def fixture(name):
    return os.path.join(FIX, name)


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


class Version(unittest.TestCase):
    def test_version_prints_the_four_versions(self):
        """--version prints sfengine, Lua, libcurl and OpenSSL versions"""
        rc, out, err = run("--version")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^sfengine \d+\.\d+\.\d+$")
        self.assertRegex(out, r"(?m)^Lua 5\.4\.\d+$")
        self.assertRegex(out, r"(?m)^libcurl \d+\.\d+\.\d+")
        self.assertRegex(out, r"(?m)^OpenSSL \d+\.\d+\.\d+")
        self.assertEqual(err, "")

    def test_version_wins_over_a_recipe(self):
        """--version with a recipe does not run the recipe"""
        rc, out, _ = run("--version", fixture("cpu_loop.lua"))
        self.assertEqual(rc, 0)
        self.assertIn("sfengine", out)


class Usage(unittest.TestCase):
    def test_help_exits_0(self):
        """--help prints usage and the exit codes on stdout, exit 0"""
        rc, out, err = run("--help")
        self.assertEqual(rc, 0, err)
        self.assertIn("usage: sfengine", out)
        self.assertIn("exit codes", out)
        for opt in ("--debug", "--quiet", "--log-json", "--state-dir", "--dry-run", "--estimate",
                    "--keep-updated", "--memory-mb", "--cpu-ms"):
            self.assertIn(opt, out)

    def test_no_arguments_is_a_usage_error(self):
        """no recipe: one line on stderr, exit 2"""
        rc, _, err = run()
        self.assertEqual(rc, 2)
        self.assertEqual(len(lines(err)), 1, err)
        self.assertIn("no recipe given", err)

    def test_unknown_option(self):
        """an unknown option: one line naming it, exit 2"""
        rc, _, err = run("--frobnicate", fixture("bad_job.lua"))
        self.assertEqual(rc, 2)
        self.assertEqual(lines(err), ["sfengine: unknown option --frobnicate (see sfengine --help)"])

    def test_two_recipes(self):
        """two recipes at once: exit 2"""
        rc, _, err = run(fixture("bad_job.lua"), fixture("escape.lua"))
        self.assertEqual(rc, 2)
        self.assertIn("one recipe at a time", err)

    def test_bad_option_value(self):
        """--memory-mb needs a positive integer: exit 2"""
        rc, _, err = run("--memory-mb", "lots", fixture("bad_job.lua"))
        self.assertEqual(rc, 2)
        self.assertIn("--memory-mb must be a positive integer", err)
        rc, _, err = run(fixture("bad_job.lua"), "--cpu-ms")
        self.assertEqual(rc, 2)
        self.assertIn("--cpu-ms needs a value", err)

    def test_missing_recipe_file(self):
        """a recipe file that does not exist: exit 2, one line"""
        rc, _, err = run(fixture("does_not_exist.lua"))
        self.assertEqual(rc, 2)
        self.assertEqual(len(lines(err)), 1, err)
        self.assertIn("cannot read the recipe", err)


class RecipeErrors(unittest.TestCase):
    def one_line(self, err):
        got = lines(err)
        self.assertEqual(len(got), 1, err)
        self.assertTrue(got[0].startswith("sfengine: "), got[0])
        return got[0]

    def test_bad_job_names_file_and_line(self):
        """an unknown job: one line naming file:line and key, exit 2"""
        rc, _, err = run(fixture("bad_job.lua"))
        self.assertEqual(rc, 2, err)
        line = self.one_line(err)
        self.assertEqual(line, 'sfengine: %s:4: job: must be "import" or "export" (got "imprt")'
                         % fixture("bad_job.lua"))

    def test_relative_path_is_kept_in_messages(self):
        """messages name the recipe as the user wrote it"""
        rc, _, err = run("tests/fixtures/cli/bad_job.lua")
        self.assertEqual(rc, 2)
        self.assertIn("sfengine: tests/fixtures/cli/bad_job.lua:4: job:", err)

    def test_syntax_error(self):
        """a syntax error: one line naming file:line, exit 2"""
        rc, _, err = run(fixture("syntax_error.lua"))
        self.assertEqual(rc, 2, err)
        line = self.one_line(err)
        self.assertIn("syntax_error.lua:4:", line)

    def test_not_a_table(self):
        """a recipe that returns no table: exit 2 at its return line"""
        rc, _, err = run(fixture("not_a_table.lua"))
        self.assertEqual(rc, 2, err)
        line = self.one_line(err)
        self.assertIn("not_a_table.lua:2: a recipe must return a table", line)

    def test_runtime_error(self):
        """an error raised by recipe code: one line naming file:line, exit 1"""
        rc, _, err = run(fixture("runtime_error.lua"))
        self.assertEqual(rc, 1, err)
        line = self.one_line(err)
        self.assertIn("runtime_error.lua:3: attempt to index a nil value", line)
        self.assertNotIn("traceback", err)

    def test_debug_shows_a_traceback(self):
        """--debug adds a traceback to the error"""
        rc, _, err = run("--debug", fixture("runtime_error.lua"))
        self.assertEqual(rc, 1)
        self.assertIn("runtime_error.lua:3: attempt to index a nil value", err)
        self.assertIn("stack traceback:", err)
        self.assertIn("runtime_error.lua:3: in main chunk", err)

    def test_escape_attempt(self):
        """os.execute in a recipe: refused, nothing executed, exit 1"""
        marker = "/tmp/sfengine-cli-pwned"
        if os.path.exists(marker):
            os.remove(marker)
        rc, _, err = run(fixture("escape.lua"))
        self.assertEqual(rc, 1)
        line = self.one_line(err)
        self.assertIn("escape.lua:2: attempt to call a nil value (field 'execute')", line)
        self.assertFalse(os.path.exists(marker))

    def test_cpu_limit(self):
        """--cpu-ms bounds the recipe: one line, exit 1"""
        rc, _, err = run("--cpu-ms", "200", fixture("cpu_loop.lua"), timeout=30)
        self.assertEqual(rc, 1)
        line = self.one_line(err)
        self.assertRegex(line, r"cpu_loop\.lua:3: CPU time limit exceeded \(200 ms\)$")

    def test_memory_limit(self):
        """--memory-mb bounds the heap: one line, exit 1"""
        rc, _, err = run("--memory-mb", "64", "--cpu-ms", "60000", fixture("memory_bomb.lua"), timeout=60)
        self.assertEqual(rc, 1, err)
        line = self.one_line(err)
        self.assertIn("memory_bomb.lua: memory limit exceeded (64 MiB)", line)

    def test_runs_from_any_directory(self):
        """the runtime library is compiled in: works from another cwd"""
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = run(fixture("bad_job.lua"), cwd=d)
        self.assertEqual(rc, 2, err)
        self.assertIn('job: must be "import" or "export"', err)

    def test_log_json_unwritable(self):
        """--log-json to a path that cannot be opened: exit 2"""
        rc, _, err = run("--log-json", "/nonexistent/dir/log.jsonl", fixture("bad_job.lua"))
        self.assertEqual(rc, 2)
        self.assertIn("--log-json", err)


class Logging(unittest.TestCase):
    TOKEN = "tok-4f9a1c2e77"

    def run_logs(self, *opts):
        env = dict(os.environ, SFENGINE_CLI_TOKEN=self.TOKEN, SFENGINE_CLI_COPY=self.TOKEN)
        p = subprocess.run([BIN, *opts, fixture("logs.lua")], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, env=env)
        return p.returncode, p.stderr

    def test_secrets_are_redacted_on_stderr(self):
        """sf.log lines reach stderr with secret values redacted"""
        rc, err = self.run_logs()
        self.assertEqual(rc, 2, err)
        self.assertIn("the secret prints as (redacted)", err)
        self.assertIn("the raw value is (redacted)", err)
        self.assertNotIn(self.TOKEN, err)

    def test_sf_env_refuses_secret_names(self):
        """sf.env will not hand out a variable named like a secret (PASSWORD, TOKEN, ...) in clear"""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "job.lua")
            with open(path, "w") as f:
                f.write('local p = sf.env "SF_PASSWORD"\nreturn { job = "import" }\n')
            env = dict(os.environ, SF_PASSWORD="hunter2-secret")
            p = subprocess.run([BIN, path], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("SF_PASSWORD looks like a secret; read it with sf.secret_env", p.stderr)
            self.assertNotIn("hunter2-secret", p.stderr + p.stdout)

    def test_json_log_and_quiet(self):
        """--log-json writes {ts, level, msg} lines; --quiet keeps info off stderr"""
        import json
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "log.jsonl")
            rc, err = self.run_logs("--quiet", "--log-json", path)
            self.assertEqual(rc, 2, err)
            self.assertNotIn("the secret prints as", err)
            self.assertEqual(len(lines(err)), 1, err)
            with open(path) as f:
                text = f.read()
        self.assertNotIn(self.TOKEN, text)
        entries = [json.loads(line) for line in text.splitlines()]
        self.assertEqual([e["msg"] for e in entries],
                         ["the secret prints as (redacted)", "the raw value is (redacted)"])
        for e in entries:
            self.assertEqual(e["level"], "info")
            self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


if __name__ == "__main__":
    tap.main()
