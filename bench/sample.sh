#!/bin/sh
# Sampling cost, the whole benchmark: builds bench/sample_bench, starts the
# reference peer (Debian's prometheus-process-exporter) on 127.0.0.1 grouping
# the benchmark's three process trees, and in one run times our samples
# against its scrapes; then counts instructions per sample with callgrind and
# checks with strace which /proc files a sample opens. Stops the peer on exit.
#
#   bench/sample.sh [BUILD_DIR]        (default: build-bench in the source tree)
#
# Environment: RUNS (3), SAMPLES (1000), SCRAPES (200), PROCS (50),
# CG_SAMPLES (20), PEER_PORT (19256). Needs prometheus-process-exporter;
# valgrind and strace are used when installed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
RUNS=${RUNS:-3}
SAMPLES=${SAMPLES:-1000}
SCRAPES=${SCRAPES:-200}
PROCS=${PROCS:-50}
CG_SAMPLES=${CG_SAMPLES:-20}
PEER_PORT=${PEER_PORT:-19256}
PEER=prometheus-process-exporter

if ! command -v "$PEER" >/dev/null 2>&1; then
    echo "sample.sh: $PEER is not installed (apt-get install $PEER)" >&2
    exit 1
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" -Dtests=false >/dev/null
fi
ninja -C "$BUILD" bench/sample_bench >/dev/null
BENCH=$BUILD/bench/sample_bench

TMP=$(mktemp -d)
PEER_PID=
cleanup() {
    if [ -n "$PEER_PID" ]; then
        kill "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The trees' roots are named rvb-tree0..2 and their descendants rvb-node, so
# the peer's -children (its default) must put each whole tree in its root's
# group, as our sampler does by parent links.
cat >"$TMP/peer.yml" <<'EOF'
process_names:
  - name: "{{.Comm}}"
    comm:
      - rvb-tree0
      - rvb-tree1
      - rvb-tree2
EOF
"$PEER" -config.path "$TMP/peer.yml" -web.listen-address "127.0.0.1:$PEER_PORT" \
    >"$TMP/peer.log" 2>&1 &
PEER_PID=$!
tries=0
until curl -fs -o /dev/null "http://127.0.0.1:$PEER_PORT/metrics"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 50 ] || ! kill -0 "$PEER_PID" 2>/dev/null; then
        echo "sample.sh: the peer did not come up:" >&2
        cat "$TMP/peer.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -sr), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "# peer: $("$PEER" -version 2>&1 | head -1)"
echo "# processes on the host before the trees: $(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)"
echo "# wall time, our samples interleaved with the peer's scrapes:"
run=1
while [ "$run" -le "$RUNS" ]; do
    echo "run=$run"
    "$BENCH" --procs "$PROCS" --samples "$SAMPLES" --peer "127.0.0.1:$PEER_PORT" \
        --peer-scrapes "$SCRAPES" | grep -v '^tree='
    run=$((run + 1))
done

if command -v valgrind >/dev/null 2>&1; then
    # Instructions of CG_SAMPLES warm samples: the difference between a run
    # with them and one without, so start-up and the trees' spawning cancel.
    # User-space instructions only: the kernel's work on /proc is not seen.
    echo "# callgrind, instructions per warm sample:"
    for k in 0 "$CG_SAMPLES"; do
        valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$k" \
            "$BENCH" --procs "$PROCS" --warmup 2 --samples "$k" --breakdown 0 \
            >"$TMP/cg.$k.out" 2>"$TMP/cg.$k.err"
        sed -n 's/.*Collected : //p' "$TMP/cg.$k.err" >"$TMP/cg.$k.total"
        callgrind_annotate --inclusive=yes "$TMP/cg.$k" 2>/dev/null |
            awk '/:sampler_run /{gsub(",","",$1); print $1; exit}' >"$TMP/cg.$k.sampler"
        # libproc2: the full pass (reap) and the quick one (select by pid).
        callgrind_annotate --inclusive=yes "$TMP/cg.$k" 2>/dev/null |
            awk '/:procps_pids_reap / && !r {gsub(",","",$1); r = $1}
                 /:procps_pids_select / && !s {gsub(",","",$1); s = $1}
                 END {print r + s}' \
            >"$TMP/cg.$k.libproc2"
    done
    table=$(sed -n 's/.*table_processes=\([0-9]*\).*/\1/p' "$TMP/cg.$CG_SAMPLES.out")
    awk -v k="$CG_SAMPLES" -v procs="$PROCS" -v table="$table" \
        -v t0="$(cat "$TMP/cg.0.total")" -v t1="$(cat "$TMP/cg.$CG_SAMPLES.total")" \
        -v s0="$(cat "$TMP/cg.0.sampler")" -v s1="$(cat "$TMP/cg.$CG_SAMPLES.sampler")" \
        -v l0="$(cat "$TMP/cg.0.libproc2")" -v l1="$(cat "$TMP/cg.$CG_SAMPLES.libproc2")" \
        'BEGIN {
            t = (t1 - t0) / k; s = (s1 - s0) / k; l = (l1 - l0) / k;
            printf "callgrind samples=%d total_ir_per_sample=%.0f sampler_ir_per_sample=%.0f ", k, t, s;
            printf "libproc2_ir_per_sample=%.0f libproc2_ir_per_process=%.0f table_processes=%d ",
                l, l / procs, table;
            printf "own_ir_per_sample=%.0f sampler_ir_per_process=%.0f total_ir_per_process=%.0f\n",
                s - l, s / procs, t / procs;
        }'
fi

if command -v strace >/dev/null 2>&1; then
    # One sample (no warm-up, no breakdown), main process only: which /proc
    # files it opens or stats, by name.
    echo "# strace, /proc/PID files touched by one sample:"
    strace -o "$TMP/strace" -e trace=openat,newfstatat,statx,prlimit64 \
        "$BENCH" --procs "$PROCS" --warmup 0 --samples 1 --breakdown 0 >/dev/null
    grep -o '"/proc/[0-9][0-9]*[^"]*"' "$TMP/strace" | sed 's|^"/proc/[0-9]*|PID|; s|"$||' |
        sort | uniq -c | awk '{printf "strace /proc/%s=%s\n", $2, $1}'
    echo "strace /proc/other=$(grep -o '"/proc/[a-z][^"]*"' "$TMP/strace" | sort | uniq -c | tr -s ' ' | paste -sd, -)"
    echo "strace prlimit64=$(grep -c '^prlimit64([1-9]' "$TMP/strace" || true)"
fi
