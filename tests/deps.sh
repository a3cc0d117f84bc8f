#!/bin/sh
# Installs the Debian packages named on the command line that are missing.
# Quiet and idempotent when everything is present.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
  echo "make deps: installing$missing" >&2
  $SUDO apt-get update -qq >/dev/null || exit 1
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
fi
# Node.js + npm (for the jsforce conformance test and benchmark) may come
# from another source on this machine: only install Debian's when absent.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "make deps: installing nodejs npm" >&2
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || exit 1
fi
