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
# usage: sh tests/run.sh [PATTERN]   (only files whose path contains PATTERN)
cd "$(dirname "$0")/.." || exit 2
SFENGINE=${SFENGINE:-./sfengine}
export SFENGINE
BUILD=${BUILD:-build}
[ -n "$SANITIZE" ] && BUILD=build-asan
export SFENGINE_ROOT="$(pwd)"
pattern=${1:-}
out=tests/.out
mkdir -p "$out"
passed=0; failed=0; failures=""

files=$(ls tests/c/test_*.c tests/lua/test_*.lua tests/*/test_*.py tests/*/test_*.sh 2>/dev/null | sort)
for f in $files; do
  case "$f" in *"$pattern"*) ;; *) continue ;; esac
  name=$(echo "$f" | tr '/.' '__')
  log="$out/$name.log"
  start=$(date +%s)
  case "$f" in
    *.c)
      bin="$BUILD/tests/$(basename "$f" .c)"
      if make --no-print-directory -s "$bin" BUILD="$BUILD" ${SANITIZE:+OPT=-O1 EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" EXTRA_LDLIBS="-fsanitize=address,undefined"} >"$log" 2>&1; then
        timeout 300 "$bin" >>"$log" 2>&1; rc=$?
      else rc=2; fi ;;
    *.lua) timeout 600 "$SFENGINE" --test "$f" >"$log" 2>&1; rc=$? ;;
    *.py)  timeout 900 python3 "$f" >"$log" 2>&1; rc=$? ;;
    *.sh)  timeout 900 sh "$f" >"$log" 2>&1; rc=$? ;;
  esac
  ok=$(grep -c '^ok' "$log"); nok=$(grep -c '^not ok' "$log")
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok - $f exited with status $rc" >>"$log"; fi
  passed=$((passed + ok)); failed=$((failed + nok))
  secs=$(( $(date +%s) - start ))
  if [ "$nok" -gt 0 ]; then
    echo "FAIL $f ($ok passed, $nok failed, ${secs}s)"
    grep '^not ok' "$log" | head -20 | sed 's/^/     /'
    echo "     log: $log"
    failures="$failures $f"
  else
    echo "pass $f ($ok passed, ${secs}s)"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
