#!/usr/bin/env bash
# run_bench_comm.sh: bench_comm at np = 2 and np = 1 (one OpenBLAS thread per rank), then one
# table of both runs, printed and appended to bench/RESULTS.md.
#   bench/run_bench_comm.sh [BUILD_DIR] [-- extra bench_comm options, e.g. --global-batch 32]
# BUILD_DIR defaults to build. Environment: LAWT_BENCH_NO_APPEND=1 prints the table without
# appending it; LAWT_BENCH_ROWS=DIR keeps the two measurements there (np1, np2), so that
# `bench_comm --report DIR/np1 DIR/np2` can append them later. np = 2 runs first: it needs both
# cores, so it goes into the quiet moment a loaded machine gave.
set -euo pipefail
build=${1:-build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bin=$build/bench/bench_comm
[ -x "$bin" ] || { echo "run_bench_comm.sh: $bin not found: cmake --build $build --target bench_comm" >&2; exit 2; }
mpirun=${MPIRUN:-mpirun}
if [ -n "${LAWT_BENCH_ROWS:-}" ]; then
  rows=$LAWT_BENCH_ROWS
  mkdir -p "$rows"
else
  rows=$(mktemp -d "${TMPDIR:-/tmp}/lawt-bench-comm-XXXXXX")
  trap 'rm -rf "$rows"' EXIT
fi
export OPENBLAS_NUM_THREADS=1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for np in 2 1; do
  # Root in containers; ranks bound to cores (Open MPI's default for np <= 2, made explicit).
  "$mpirun" --allow-run-as-root -np "$np" --bind-to core -x OPENBLAS_NUM_THREADS \
    "$bin" "$@" --row "$rows/np$np"
done
append=()
[ "${LAWT_BENCH_NO_APPEND:-0}" = 1 ] && append=(--no-append)
"$bin" --report "${append[@]}" "$rows/np1" "$rows/np2"
