"""sf.input on a pipe (the export's stdin): lines as they arrive, timeouts
while waiting, partial lines held back, too-long lines skipped, EOF with the
byte offset, and a trapped SIGTERM ending a blocking wait."""
import os
import signal
import subprocess
import time
import unittest

import engine
import tap

FIXTURE = os.path.join(engine.ROOT, "tests", "fixtures", "export", "read_stdin.lua")


def start(max_line, timeout_ms):
    return subprocess.Popen([engine.SFENGINE, "--test", FIXTURE, str(max_line), str(timeout_ms)],
                            cwd=engine.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def events(out):
    rows = []
    for line in out.decode().splitlines():
        kind, t, *rest = line.split(" ", 2)
        rows.append((kind, float(t), rest[0] if rest else None))
    return rows


class Pipe(unittest.TestCase):
    def test_lines_timeouts_and_eof(self):
        """lines arrive as written, TIMEOUT while the writer is idle, a partial line waits for its newline"""
        p = start(1024, 150)
        sent = b""
        try:
            for chunk, pause in ((b"first\n", 0.5), (b"par", 0.5), (b"tial\r\n", 0.1),
                                 (b"x" * 3000 + b"\n", 0.1), (b"after\n", 0.1), (b"last-no-newline", 0.2)):
                p.stdin.write(chunk)
                p.stdin.flush()
                sent += chunk
                time.sleep(pause)
            p.stdin.close()
            p.wait(timeout=30)
            out, err = p.stdout.read(), p.stderr.read()
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 0, err)
        ev = events(out)
        lines = [(k, v) for k, _, v in ev if k != "TIMEOUT"]
        self.assertEqual(lines[:3], [("LINE", "first"), ("LINE", "partial"),
                                     ("ERROR", "TOO_LONG sf.input: line 3 is longer than 1024 bytes; it was skipped")])
        self.assertEqual(lines[3:5], [("LINE", "after"), ("LINE", "last-no-newline")])
        self.assertEqual(lines[5], ("EOF", str(len(sent))))
        timeouts = [t for k, t, _ in ev if k == "TIMEOUT"]
        self.assertGreaterEqual(len(timeouts), 4, "idle waits end in TIMEOUT")
        first = [t for k, t, v in ev if k == "LINE" and v == "first"][0]
        self.assertLess(first, 1.0, "a line is returned as soon as it arrives")

    def test_sigterm_ends_a_blocking_wait(self):
        """a trapped SIGTERM interrupts read_line(nil) (no timeout) at once"""
        p = start(1024, -1)
        try:
            p.stdin.write(b"one\n")
            p.stdin.flush()
            time.sleep(0.5)
            started = time.monotonic()
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)        # stdin stays open: only the signal can end the wait
            took = time.monotonic() - started
            out, err = p.stdout.read(), p.stderr.read()
            p.stdin.close()
        finally:
            if p.poll() is None:
                p.kill()
        ev = events(out)
        self.assertEqual([(k, v) for k, _, v in ev], [("LINE", "one"), ("SIGNAL", "TERM")], err)
        self.assertLess(took, 5)


if __name__ == "__main__":
    tap.main()
