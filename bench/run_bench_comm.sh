#!/usr/bin/env bash
# run_bench_comm.sh: bench_comm at np = 1 and np = 2 (one OpenBLAS thread per rank), then one
# table of both runs, printed and appended to bench/RESULTS.md.
#   bench/run_bench_comm.sh [BUILD_DIR] [-- extra bench_comm options, e.g. --global-batch 32]
# BUILD_DIR defaults to build; LAWT_BENCH_NO_APPEND=1 prints the table without appending.
set -euo pipefail
build=${1:-build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bin=$build/bench/bench_comm
[ -x "$bin" ] || { echo "run_bench_comm.sh: $bin not found: cmake --build $build --target bench_comm" >&2; exit 2; }
mpirun=${MPIRUN:-mpirun}
rows=$(mktemp -d "${TMPDIR:-/tmp}/lawt-bench-comm-XXXXXX")
trap 'rm -rf "$rows"' EXIT
export OPENBLAS_NUM_THREADS=1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for np in 1 2; do
  # Root in containers; ranks bound to cores (Open MPI's default for np <= 2, made explicit).
  "$mpirun" --allow-run-as-root -np "$np" --bind-to core -x OPENBLAS_NUM_THREADS \
    "$bin" "$@" --row "$rows/np$np"
done
append=()
[ "${LAWT_BENCH_NO_APPEND:-0}" = 1 ] && append=(--no-append)
"$bin" --report "${append[@]}" "$rows/np1" "$rows/np2"
