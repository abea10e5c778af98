#!/usr/bin/env bash
# Build the libFuzzer targets in a clang build dir and run each for a bounded
# number of executions on a scratch copy of its seed corpus (the checked-in
# corpus is never written to). Any crash, leak, sanitizer report or failed
# check fails. Usage: tests/fuzz/run.sh BUILD_DIR [RUNS]: RUNS, when given,
# replaces every target's own count below. The last line is the tally:
# "fuzz: N passed, M failed", one per target.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR [RUNS]}
runs_all=${2:-}
src=$(cd "$(dirname "$0")" && pwd)
# target:runs:max_len. The counts keep the whole run under two minutes
# (each comment: its time in `make test` on a 2-core Debian 12 VM); the
# query's inputs may grow long enough for a URL over QUERY_URL_MAX.
specs=(
  ingest:200000:4096     # ~45 s
  config:100000:4096     # ~17 s
  query:1000000:12288    # ~15 s
  hostcheck:1000000:1024 # ~10 s
  cdp:1500000:4096       # ~10 s
  log:50000:4096         # ~15 s
)
targets=("${specs[@]%%:*}")
passed=0
failed=0

tally() {
  echo "fuzz: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed (Debian: apt-get install clang)" >&2
  failed=${#targets[@]}
  tally
fi
if ! ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}"); then
  echo "fuzz: the targets do not build" >&2
  failed=${#targets[@]}
  tally
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for spec in "${specs[@]}"; do
  IFS=: read -r t runs max_len <<<"$spec"
  runs=${runs_all:-$runs}
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
  cp "$src/corpus/$t/"* "$scratch/$t/corpus/"
  echo "fuzz: $t: $runs runs"
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$build/tests/fuzz/fuzz_$t" -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" "$scratch/$t/corpus" \
       >"$build/fuzz_$t.log" 2>&1; then
    # libFuzzer's progress lines are many; its final stats say what ran.
    grep -E '^(stat::|Done )' "$build/fuzz_$t.log"
    passed=$((passed + 1))
  else
    tail -n 60 "$build/fuzz_$t.log" >&2
    failed=$((failed + 1))
    # Keep the inputs that failed where the operator can replay them.
    mkdir -p "$build/fuzz-artifacts/$t"
    cp "$scratch/$t/artifacts/"* "$build/fuzz-artifacts/$t/" 2>/dev/null
    echo "fuzz: $t failed; inputs in $build/fuzz-artifacts/$t (replay: $build/tests/fuzz/fuzz_$t FILE)" >&2
  fi
done
tally
