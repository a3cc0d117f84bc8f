"""A pinned npm client for a conformance test (jsforce, the Salesforce CLI): its package.json and
package-lock.json live in the emulator's tree, `npm ci` installs them into a git-ignored directory.

    ok, reason, skip = npmclient.ensure(pkg_dir, install_dir, "jsforce")

ok: the pinned version is installed (now or before); otherwise reason says why, and skip is true only
when the npm registry cannot be reached (the test then prints "# skip" instead of failing).
"""
import json
import os
import shutil
import subprocess


def pinned_version(pkg_dir, package):
    with open(os.path.join(pkg_dir, "package.json"), encoding="utf-8") as fh:
        return json.load(fh)["dependencies"][package]


def installed_version(install_dir, package):
    try:
        with open(os.path.join(install_dir, "node_modules", package, "package.json"), encoding="utf-8") as fh:
            return json.load(fh).get("version")
    except (OSError, ValueError):
        return None


def ensure(pkg_dir, install_dir, package, timeout=900):
    """-> (ok, reason, skip): `npm ci` the pinned package into install_dir when it is missing"""
    want = pinned_version(pkg_dir, package)
    if installed_version(install_dir, package) == want:
        return True, "", False
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return False, "%s is not installed (make deps installs nodejs and npm)" % tool, False
    os.makedirs(install_dir, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(pkg_dir, name), os.path.join(install_dir, name))
    try:
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=install_dir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        out = (p.stdout + p.stderr).strip()
    except subprocess.TimeoutExpired:
        p, out = None, "npm ci timed out after %d s" % timeout
    if p is not None and p.returncode == 0 and installed_version(install_dir, package) == want:
        return True, "", False
    try:
        reachable = subprocess.run(["npm", "ping"], cwd=install_dir, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        reachable = False
    if not reachable:
        return False, "the npm registry cannot be reached to install %s@%s" % (package, want), True
    return False, "npm ci failed installing %s@%s: %s" % (package, want, out[-600:]), False
