#!/bin/sh
# `make bench` (after building ./sfengine): the import benchmarks, see bench/README.md.
#   1. sfengine vs jsforce side by side on one emulator (CPU us/record, wall, peak RSS; same output)
#   2. memory flatness: sfengine's peak RSS importing 20k, 100k, 300k Leads
#   3. bench/mapper_bench.lua: sf.page.parse + sf.mapper alone (C hot path), when present
#   4. where the CPU goes: perf record (or valgrind --tool=callgrind) of one import
# Environment: LEADS (100000), RUNS (3), SIZES (20000,100000,300000),
#   JSFORCE_MODES (querymore,autofetch), GZIP=1 (gzip responses), PROFILE=0 (skip 4).
# Exits 1 when a target is missed (the lines marked FAIL) or a benchmark fails; runs every part anyway.
set -u
cd "$(dirname "$0")/.." || exit 1
[ -x ./sfengine ] || { echo "bench/run.sh: build ./sfengine first (make bench does)" >&2; exit 1; }
status=0
gzip=""
[ "${GZIP:-0}" = 1 ] && gzip="--gzip"

python3 bench/import_bench.py side-by-side --leads "${LEADS:-100000}" --runs "${RUNS:-3}" \
  --jsforce-modes "${JSFORCE_MODES:-querymore,autofetch}" $gzip || status=1

python3 bench/import_bench.py memory --sizes "${SIZES:-20000,100000,300000}" || status=1

if [ -f bench/mapper_bench.lua ]; then
  echo
  echo "== bench/mapper_bench.lua (C hot path alone) =="
  ./sfengine --test bench/mapper_bench.lua || status=1
fi

if [ "${PROFILE:-1}" = 1 ]; then
  python3 bench/import_bench.py profile $gzip || status=1
fi

[ "$status" = 0 ] && echo "bench: all targets met" || echo "bench: some targets missed or a benchmark failed (see FAIL above)"
exit $status
