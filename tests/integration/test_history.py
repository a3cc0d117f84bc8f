"""Run history and run logs: `sfengine history` (table, --json, --html rendered in a
real headless Chromium whose screenshot must not be blank), `sfengine log`, and a
failed run recorded with its message.

The screenshot stays in tests/.out/history.png as an artefact of the test run.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import ROOT, Workdir, credentials_env, import_recipe, run  # noqa: E402
import tap  # noqa: E402
from harness import Emulator  # noqa: E402

OUT = os.path.join(ROOT, "tests", ".out")

RECIPE = import_recipe("hist", "{ Lead = {}, Contact = {} }", "max_daily_api_calls = 500,")


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path, png_path, size=(1000, 1500)):
    """Renders a file in headless Chromium; returns the PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="sfengine-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--user-data-dir=" + profile, "--window-size=%d,%d" % size, "--screenshot=" + png_path,
               "file://" + html_path]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if p.returncode != 0 or not os.path.exists(png_path):
            raise AssertionError("chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    with open(png_path, "rb") as f:
        return f.read()


def decode_png(data):
    """-> (width, height, rows of (r, g, b) tuples). 8-bit RGB/RGBA, non-interlaced (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype, interlace = body[8], body[9], body[12]
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


class History(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = Workdir()
        cls.recipe = cls.w.write("job.lua", RECIPE)
        cls.state = cls.w.path(".sfengine")
        with Emulator(["--generate", "Lead=300,Contact=120", "--seed", "3"]) as emu:
            env = credentials_env(emu)
            cls.runs = [run(cls.recipe, env, check=0)]
            emu.insert("Lead", [{"LastName": "N%d" % i, "Company": "C"} for i in range(25)])
            cls.runs.append(run(cls.recipe, env, check=0))
            emu.config(api_disabled=True)          # 403 API_DISABLED_FOR_ORG: the run fails
            cls.runs.append(run(cls.recipe, env))
            emu.config(api_disabled=False)
            cls.runs.append(run(cls.recipe, env, check=0))

    @classmethod
    def tearDownClass(cls):
        cls.w.cleanup()

    def cmd(self, *args, check=0):
        p = subprocess.run([os.path.join(ROOT, os.environ.get("SFENGINE", "./sfengine")), *args], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, check, p.stderr)
        return p

    def test_failed_run_is_recorded_with_its_message(self):
        """a run that fails is a history line with status failed and the error, and exits 1 as before"""
        self.assertEqual(self.runs[2].returncode, 1, self.runs[2].stderr)
        hist = self.w.read_ndjson(".sfengine", "hist.history.ndjson")
        self.assertEqual([h["status"] for h in hist], ["done", "done", "failed", "done"])
        self.assertEqual([h["run"] for h in hist], [1, 2, 3, 4])
        self.assertIn("API_DISABLED_FOR_ORG", hist[2]["message"])

    def test_history_lines_carry_counters_and_budget(self):
        """each history line: streams' records/deletions/rejects, API calls, budget, duration, its log file"""
        hist = self.w.read_ndjson(".sfengine", "hist.history.ndjson")
        first = hist[0]
        self.assertEqual(first["streams"]["salesforce_leads"]["records"] + first["streams"]["salesforce_leads"]["deletions"], 300)
        self.assertEqual(hist[1]["streams"]["salesforce_leads"]["records"], 25)
        self.assertGreater(first["api_calls"], 0)
        self.assertEqual(first["budget"]["job_max"], 500)
        self.assertEqual(first["budget"]["org_max"], 15000)
        self.assertGreaterEqual(first["budget"]["job_used"], first["api_calls"])
        self.assertTrue(os.path.exists(first["log"]), first)
        self.assertRegex(first["started"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_history_table(self):
        """sfengine history RECIPE prints one row per run and stream, with the failed run's message"""
        out = self.cmd("history", self.recipe).stdout
        lines = out.splitlines()
        self.assertTrue(lines[0].split()[:2] == ["RUN", "STARTED"], lines[0])
        rows = [l for l in lines[1:] if l[:4].strip().isdigit()]
        self.assertEqual([int(r[:4]) for r in rows], [1, 2, 3, 4])
        self.assertIn("salesforce_contacts", out)
        run2 = [l for l in lines if l.strip().startswith("2 ")][0]
        self.assertRegex(run2, r"\bdone\b.*salesforce_contacts")
        self.assertIn("API_DISABLED_FOR_ORG", out)
        self.assertEqual(len(self.cmd("history", "--limit", "2", self.recipe).stdout.splitlines()), 1 + 2 * 2 + 0)

    def test_history_json(self):
        """--json prints the history lines as one JSON array"""
        runs = json.loads(self.cmd("history", "--json", self.recipe).stdout)
        self.assertEqual(len(runs), 4)
        self.assertEqual(runs, self.w.read_ndjson(".sfengine", "hist.history.ndjson"))

    def test_log_command(self):
        """sfengine log RECIPE shows the last run's log; RUN picks one; the failed run's log has its error"""
        last = self.cmd("log", self.recipe).stdout
        self.assertIn("import hist: done", last)
        failed = self.cmd("log", self.recipe, "3").stdout
        self.assertIn("import hist: failed", failed)
        self.assertIn("API_DISABLED_FOR_ORG", failed)
        p = self.cmd("log", self.recipe, "99", check=1)
        self.assertIn("run 99 has no log", p.stderr)

    @unittest.skipUnless(chromium(), "chromium is not installed (make deps installs it)")
    def test_html_page_renders_in_chromium(self):
        """history --html writes one self-contained page; headless Chromium renders charts, not a blank page"""
        page = self.w.path("history.html")
        self.cmd("history", "--html", page, self.recipe)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        for external in ("src=", "href=", "@import", "url("):
            self.assertNotIn(external, html, "the page must not load anything")
        self.assertIn("<svg", html)
        os.makedirs(OUT, exist_ok=True)
        png = os.path.join(OUT, "history.png")
        if os.path.exists(png):
            os.remove(png)
        width, height, rows = decode_png(screenshot(page, png))
        self.assertGreaterEqual((width, height), (800, 800))
        colors, background = {}, rows[5][5]
        for y in range(0, height, 3):
            for x in range(0, width, 3):
                c = rows[y][x]
                colors[c] = colors.get(c, 0) + 1
        painted = sum(n for c, n in colors.items() if c != background)
        self.assertGreater(len(colors), 40, "too few colours: a blank or unstyled page")
        self.assertGreater(painted / sum(colors.values()), 0.05, "almost every pixel is the background")
        # the API-calls bars (#2f6fde) and a stream's bars (#e8833a) are on screen
        for rgb in ((0x2f, 0x6f, 0xde), (0xe8, 0x83, 0x3a)):
            near = sum(n for c, n in colors.items() if all(abs(c[i] - rgb[i]) <= 6 for i in range(3)))
            self.assertGreater(near, 50, "no pixels of the chart colour %r" % (rgb,))


if __name__ == "__main__":
    tap.main()
