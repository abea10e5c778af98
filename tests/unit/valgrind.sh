#!/usr/bin/env bash
# Run every cmocka unit test of a build dir under valgrind's memcheck: any
# invalid read or write, use of uninitialised memory or definite/indirect
# leak fails that test, as does a failed case. UNIT_ALLOC=libc makes the
# test binaries allocate from libc instead of cmocka's allocator, which
# would hide all three from valgrind (unit_alloc.h says why). Nothing is
# suppressed. Usage: tests/unit/valgrind.sh BUILD_DIR. The last line is the
# tally, one per test binary: "valgrind: N passed, M failed".
set -uo pipefail

build=${1:?usage: valgrind.sh BUILD_DIR}
passed=0
failed=0

tally() {
  echo "valgrind: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

if ! command -v valgrind >/dev/null; then
  echo "valgrind: valgrind is not installed (Debian: apt-get install valgrind)" >&2
  failed=1
  tally
fi

# With a wrapper, meson names its log after it: testlog-valgrind.json, next
# to (not over) the plain run's testlog.json.
log="$build/meson-logs/testlog-valgrind.json"
rm -f "$log"
# Valgrind runs them some 20 to 50 times slower: give each that much more time.
UNIT_ALLOC=libc meson test -C "$build" --suite unit --logbase testlog \
  --timeout-multiplier 10 --print-errorlogs \
  --wrapper 'valgrind --tool=memcheck --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite,indirect'

if [[ ! -s $log ]]; then
  echo "valgrind: no test log (the unit tests did not build or did not run)" >&2
  failed=1
  tally
fi
read -r passed failed < <(python3 - "$log" <<'EOF'
import json, sys
ok = bad = 0
for line in open(sys.argv[1]):
    if line.strip():
        if json.loads(line).get('result') == 'OK':
            ok += 1
        else:
            bad += 1
print(ok, bad)
EOF
)
if ! [[ $passed =~ ^[0-9]+$ && $failed =~ ^[0-9]+$ ]] || ((passed + failed == 0)); then
  echo "valgrind: cannot read $log" >&2
  passed=0
  failed=1
fi
tally
