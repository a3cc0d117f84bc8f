#!/bin/sh
# An out-of-memory while the engine sets up its Lua state (opening the
# libraries, the searchers, the string-metatable lock) is an error message
# and exit 1, never an abort: main.c does all of it inside one protected
# call. A realloc that fails after N growths (tests/c/failing_realloc.c,
# LD_PRELOAD) is tried for N across the whole setup.
cd "$(dirname "$0")/../.." || exit 2
SFENGINE=${SFENGINE:-./sfengine}
if [ -n "$SANITIZE" ]; then
  echo "# skipped under the sanitizers: their runtime must be the first library, not a preload"
  exit 0
fi
out=tests/.out/setup_oom
mkdir -p "$out"
${CC:-cc} -shared -fPIC -O1 -o "$out/failing_realloc.so" tests/c/failing_realloc.c -ldl || exit 2

aborted=""; setup_oom=0; ran=0; n=0
while [ $n -le 700 ]; do
  FAIL_AFTER=$n LD_PRELOAD="$PWD/$out/failing_realloc.so" "$SFENGINE" --test /dev/null >"$out/stdout" 2>"$out/stderr"
  rc=$?
  case $rc in 0|1) ;; *) aborted="$aborted $n:$rc" ;; esac
  grep -q PANIC "$out/stderr" && aborted="$aborted $n:PANIC"
  [ "$(cat "$out/stderr")" = "sfengine: not enough memory" ] && setup_oom=$((setup_oom + 1))
  [ $rc -eq 0 ] && ran=$((ran + 1))
  n=$((n + 7))
done

if [ -z "$aborted" ]; then
  echo "ok - an allocation failure at any point of the setup exits 0 or 1, never aborts"
else
  echo "not ok - an allocation failure at any point of the setup exits 0 or 1, never aborts: aborted at$aborted"
fi
if [ $setup_oom -gt 0 ]; then
  echo "ok - an allocation failure inside the setup is the one line \"sfengine: not enough memory\" ($setup_oom runs)"
else
  echo "not ok - an allocation failure inside the setup is the one line \"sfengine: not enough memory\": no run failed there"
fi
if [ $ran -gt 0 ]; then
  echo "ok - with enough memory the same run completes ($ran runs)"
else
  echo "not ok - with enough memory the same run completes: no run did"
fi
