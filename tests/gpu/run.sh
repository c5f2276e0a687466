#!/usr/bin/env bash
# tests/gpu/run.sh: the one command that proves the CUDA backend on a GPU machine (issue 5).
#   1. configures and builds lawt with the CUDA backend (CUDA_ARCH, default 90: H100/H200);
#   2. runs the CPU model tests (they must stay green with the CUDA backend linked in);
#   3. runs tests/gpu/test_cuda_parity: every layer's forward/backward, a whole training step,
#      decoding and a short training run against the CPU reference (fp32 <= 1e-5 relative);
#      here it must RUN: a skip (exit 77, no GPU seen) is a failure;
#   4. the NCCL all-reduce of device buffers (singleton, and np = GPUs when there are several);
#   5. compute-sanitizer memcheck and racecheck on a short run (any error fails), initcheck as
#      advisory (cuBLAS workspaces may trip it);
#   6. lawt_dist on the GPU: checkpoints resumed across devices (cuda -> cpu, cpu -> cuda),
#      losses within 1e-3 of a straight run; bf16 and fp32 runs of the quick-start job;
#   7. with LEARN=1: jobs/transpose_5x5_p1000.ini trained on the GPU for at most LEARN_STEPS
#      steps (default 20000) must reach >= 99% (transposition counts only exact answers, at
#      every tolerance; the paper: 100%, Table 2).
# Usage: tests/gpu/run.sh [build-dir]      (default: build-gpu at the repository root)
# The log is kept in <build-dir>/gpu-run.log, for bench/RESULTS.md.
#
#        tests/gpu/run.sh --kit KIT.tar.xz
# On a machine with no MPI, HDF5 or OpenBLAS (the lent H200): unpacks the kit that
# scripts/gpu-kit.sh built elsewhere into $LAWT_KIT_DIR (default $TMPDIR/lawt-gpu-kit-run) and
# runs its own run.sh (tests/gpu/kit_run.sh: the same checks from the kit's prebuilt programs,
# single-process, the reduced benchmark, logs under $OUT).
set -uo pipefail
if [ "${1:-}" = --kit ]; then
    [ $# -eq 2 ] && [ -f "$2" ] || { echo "usage: $0 --kit KIT.tar.xz (a file)" >&2; exit 2; }
    dir=${LAWT_KIT_DIR:-${TMPDIR:-/tmp}/lawt-gpu-kit-run}
    rm -rf "$dir" && mkdir -p "$dir" && tar -xJf "$2" -C "$dir" ||
        { echo "gpu/run.sh: cannot unpack $2 into $dir" >&2; exit 1; }
    exec bash "$dir/lawt-gpu-kit/run.sh"
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-gpu}
arch=${CUDA_ARCH:-90}
mkdir -p "$build"
log=$build/gpu-run.log
exec > >(tee "$log") 2>&1

fail() { echo "gpu/run.sh: FAILED: $*"; exit 1; }
step() { echo; echo "== $* =="; }

step "machine"
date -u
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
nvcc --version | tail -2

step "build (CMAKE_CUDA_ARCHITECTURES=$arch)"
t0=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      "-DMPIEXEC_PREFLAGS=--allow-run-as-root;--oversubscribe" >/dev/null || fail "configure"
cmake --build "$build" -j"$(nproc)" || fail "build"
echo "build: $(( $(date +%s) - t0 )) s"

step "CPU model tests"
ctest --test-dir "$build" -R '^model' --output-on-failure || fail "CPU model tests"

step "CUDA parity against the CPU reference"
"$build/tests/test_cuda_parity"
rc=$?
[ $rc -eq 77 ] && fail "test_cuda_parity skipped: no CUDA device visible"
[ $rc -eq 0 ] || fail "test_cuda_parity (exit $rc)"
"$build/tests/test_cuda_recurrent"
rc=$?
[ $rc -eq 0 ] || fail "test_cuda_recurrent, the LSTM/GRU models (exit $rc)"

step "NCCL all-reduce of device buffers"
if [ -x "$build/tests/test_nccl" ]; then
    "$build/tests/test_nccl" || fail "test_nccl (singleton)"
    ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if [ "${ngpu:-0}" -gt 1 ]; then
        mpiexec --allow-run-as-root -n "$ngpu" "$build/tests/test_nccl" || fail "test_nccl (np $ngpu)"
    fi
else
    echo "(NCCL not built: no nccl.h/libnccl found at configure time)"
fi

if command -v compute-sanitizer >/dev/null; then
    san=compute-sanitizer
elif [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
    san=/usr/local/cuda/bin/compute-sanitizer
else
    fail "compute-sanitizer not found"
fi
step "compute-sanitizer memcheck (short run)"
"$san" --tool memcheck --error-exitcode 1 --leak-check full "$build/tests/test_cuda_parity" --short \
    || fail "memcheck"
step "compute-sanitizer racecheck (short run)"
"$san" --tool racecheck --error-exitcode 1 "$build/tests/test_cuda_parity" --short || fail "racecheck"
step "compute-sanitizer initcheck (short run, advisory)"
"$san" --tool initcheck --error-exitcode 1 "$build/tests/test_cuda_parity" --short \
    || echo "gpu/run.sh: initcheck reported errors (advisory, see above)"

dist=$build/trainer/lawt_dist
tt=$root/tests/test_trainer.sh
step "lawt_dist: checkpoints across devices"
bash "$tt" backends "$dist" "$root" "$build/gpu-backends-cc" cuda cpu || fail "cuda -> cpu"
bash "$tt" backends "$dist" "$root" "$build/gpu-backends-cc2" cpu cuda || fail "cpu -> cuda"

step "lawt_dist: quick-start job on the GPU, fp32 and bf16"
for prec in fp32 bf16; do
    t0=$(date +%s)
    "$dist" --config "$root/jobs/quickstart.ini" --set run.device=cuda --set run.precision=$prec \
        --run-dir "$build/gpu-quickstart-$prec" > "$build/gpu-quickstart-$prec.log" 2>&1 ||
        { tail -n 20 "$build/gpu-quickstart-$prec.log"; fail "quick-start on cuda ($prec)"; }
    grep -E '^(lawt|eval|done)' "$build/gpu-quickstart-$prec.log" | tail -n 4
    echo "quick-start $prec: $(( $(date +%s) - t0 )) s"
done

if [ "${LEARN:-0}" = 1 ]; then
    step "lawt_dist: 5x5 transposition learns on the GPU (>= 99% exact)"
    bash "$tt" learn "$dist" "$root" "$build/gpu-learn" transpose_5x5_p1000.ini 0.5 99 \
        --set run.device=cuda --set train.max_steps="${LEARN_STEPS:-20000}" \
        || fail "5x5 transposition on the GPU"
fi

step "done"
echo "gpu/run.sh: all GPU checks passed (log: $log)"
