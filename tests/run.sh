#!/bin/sh
# Runs every test and ends with one line: "N passed, N failed".
#
# A test is a file that prints TAP-style lines ("ok - what it proves",
# "not ok - what it proves: why") and exits 0 when all passed:
#   tests/c/test_*.c          C unit tests, linked against the engine objects
#   tests/lua/test_*.lua      Lua tests run by the real binary (sfengine --test)
#   tests/*/test_*.py         emulator and integration tests (python3)
#   tests/*/test_*.sh         shell tests
# A file that exits non-zero without a "not ok" line counts as one failure.
# Test files run TEST_JOBS at a time (default: one per CPU, at least 2): most
# of a test's time is spent waiting on the emulator and on fsync, not on a CPU.
# Each file reports as it ends; the totals come last.
# usage: sh tests/run.sh [PATTERN]   (only files whose path contains PATTERN)
#        sh tests/run.sh --one FILE  (run one file; used by the scheduler)
cd "$(dirname "$0")/.." || exit 2
SFENGINE=${SFENGINE:-./sfengine}
export SFENGINE
BUILD=${BUILD:-build}
[ -n "$SANITIZE" ] && BUILD=build-asan
export BUILD SFENGINE_ROOT="$(pwd)"
out=tests/.out
mkdir -p "$out"

# One file: run it, write its log, print one result line, and record
# "<ok> <not ok>" in <log>.counts for the totals.
run_one() {
  f=$1
  name=$(echo "$f" | tr '/.' '__')
  log="$out/$name.log"
  start=$(date +%s)
  case "$f" in
    *.c)  timeout 300 "$BUILD/tests/$(basename "$f" .c)" >"$log" 2>&1; rc=$? ;;
    *.lua) timeout 600 "$SFENGINE" --test "$f" >"$log" 2>&1; rc=$? ;;
    *.py)  timeout 900 python3 "$f" >"$log" 2>&1; rc=$? ;;
    *.sh)  timeout 900 sh "$f" >"$log" 2>&1; rc=$? ;;
  esac
  ok=$(grep -c '^ok' "$log"); nok=$(grep -c '^not ok' "$log")
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok - $f exited with status $rc" >>"$log"; fi
  secs=$(( $(date +%s) - start ))
  if [ "$nok" -gt 0 ]; then
    { echo "FAIL $f ($ok passed, $nok failed, ${secs}s)"
      grep '^not ok' "$log" | head -20 | sed 's/^/     /'
      echo "     log: $log"; } | sed -n p   # one write per report
  else
    echo "pass $f ($ok passed, ${secs}s)"
  fi
  echo "$ok $nok" >"$log.counts"
}

if [ "${1:-}" = "--one" ]; then run_one "$2"; exit 0; fi
pattern=${1:-}

files=$(ls tests/c/test_*.c tests/lua/test_*.lua tests/*/test_*.py tests/*/test_*.sh 2>/dev/null | sort)
selected=""
for f in $files; do
  case "$f" in *"$pattern"*) selected="$selected $f" ;; esac
done
[ -n "$selected" ] || { echo "no test file matches '$pattern'"; echo "0 passed, 0 failed"; exit 1; }

# C test binaries are built first, in one make, so parallel runs never race
# on shared objects. A file whose binary did not build fails with the log.
bins=""
for f in $selected; do
  case "$f" in *.c) bins="$bins $BUILD/tests/$(basename "$f" .c)" ;; esac
done
if [ -n "$bins" ]; then
  make --no-print-directory -s $bins BUILD="$BUILD" ${SANITIZE:+OPT=-O1 EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" EXTRA_LDLIBS="-fsanitize=address,undefined"} >"$out/build-tests.log" 2>&1 ||
    { cat "$out/build-tests.log"; echo "0 passed, 1 failed"; exit 1; }
fi

for f in $selected; do rm -f "$out/$(echo "$f" | tr '/.' '__').log.counts"; done
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 2 ] 2>/dev/null || jobs=2
# Python and shell tests are the long ones: start them first.
printf '%s\n' $selected | awk '{ print (/\.(py|sh)$/ ? 0 : 1) "\t" $0 }' | sort -s -k1,1 | cut -f2 |
  xargs -P "$jobs" -n 1 sh tests/run.sh --one

passed=0; failed=0; failures=""
for f in $selected; do
  c="$out/$(echo "$f" | tr '/.' '__').log.counts"
  if [ -f "$c" ]; then read -r ok nok <"$c"; else ok=0; nok=1; fi
  passed=$((passed + ok)); failed=$((failed + nok))
  [ "$nok" -gt 0 ] && failures="$failures $f"
done
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
