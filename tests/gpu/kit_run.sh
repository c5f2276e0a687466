#!/bin/bash
# run.sh of the GPU kit (scripts/gpu-kit.sh packs tests/gpu/kit_run.sh as run.sh): every GPU
# check of the kit's programs in one command, single-process, on a bare CUDA machine. Run it
# from anywhere (`bash run.sh`, or `tests/gpu/run.sh --kit KIT.tar.xz` in a checkout).
#
#   parity      bin/test_cuda_parity: the CUDA backend against the CPU reference (layers,
#               whole step, decoding); a skip (no GPU) is a failure here
#   memcheck    compute-sanitizer memcheck (leaks too) on test_cuda_parity --short
#   racecheck   compute-sanitizer racecheck on test_cuda_parity --short
#   ckpt-*      checkpoints across devices: 10 steps on cuda resumed for 10 on cpu, and back,
#               give the losses of 20 straight steps to 1e-3 (tests/test_trainer.sh backends)
#   quick-*     the quick-start job on the GPU in fp32 and bf16: >= 99% exact at the end
#   bench       bench_gpu reduced: cuBLAS peak, config (a) at batch 64 and 1024, decoding, next
#               to PyTorch eager and --amp bf16 (the machine's python3, bench/ of the kit)
#   learn       a short 5x5 transposition run (P1000, 256 dims) on the GPU: LEARN_STEPS steps
#               (8000), >= LEARN_MIN % (90) exact at the end
#
# Every log goes under $OUT when it is set (else logs/ in the kit): gpu-run.log (this output),
# gpu-steps.log (each step's full output), summary.txt (the table printed last), bench-gpu.md
# (the benchmark's tables). Every step runs even when an earlier one fails; each has a time
# limit, and the whole run stays within KIT_BUDGET_S seconds (420): a step that no longer fits
# is reported as skipped. KIT_STEPS=name,name... runs a subset (names as above, ckpt and quick
# for both of theirs). Exit status: 0 when every step passed, 77 when no GPU is visible
# (nothing run), 1 otherwise. KIT_FORCE=1 runs every step even without a GPU (the CI
# rehearsal, tests/gpu/kit_rehearsal.sh: each step then fails within seconds).
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
logs=${OUT:-$kit/logs}
mkdir -p "$logs"
work=${TMPDIR:-/tmp}/lawt-kit-work
rm -rf "$work"
mkdir -p "$work"
console=$logs/gpu-run.log steps_log=$logs/gpu-steps.log summary=$logs/summary.txt
: > "$steps_log"
exec > >(tee "$console") 2>&1
budget=${KIT_BUDGET_S:-420}
start=$(date +%s)
bin=$kit/bin

echo "== lawt GPU kit: $(date -u "+%Y-%m-%d %H:%M:%S UTC") on ${HOSTNAME:-unknown}"
sed -n '1,7p' "$kit/KIT.txt" 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
    --format=csv,noheader 2>/dev/null || echo "(nvidia-smi: no answer)"
python=$(command -v python3 || true)
echo "python3: ${python:-none} $("${python:-false}" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null)"

# CUDA's libraries: the toolkit's folders, else wherever a missing one is found (e.g. inside
# PyTorch's wheels).
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
done
for lib in $(ldd "$bin"/* | awk '/not found/ {print $1}' | sort -u); do
    found=$(find /usr/local /opt /usr/lib -name "$lib" 2>/dev/null | head -n 1)
    if [ -n "$found" ]; then
        dir=$(dirname "$found")
        export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir
    fi
    echo "$lib: ${found:-NOT FOUND}"
done
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
ldd "$bin/lawt_dist" | grep -E 'cuda|cublas|not found'

san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null ||
      ls /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -n 1)

rows=()
failures=0
# record NAME RESULT SECONDS DETAIL
record() {
    rows+=("$(printf '| %-10s | %-7s | %5s | %s |' "$1" "$2" "$3" "$4")")
    [ "$2" = PASS ] || failures=$((failures + 1))
}
wanted() { [ -z "${KIT_STEPS:-}" ] || [[ ",$KIT_STEPS," == *",$1,"* ]] || [[ ",$KIT_STEPS," == *",${1%%-*},"* ]]; }

# step NAME LIMIT DETAIL-REGEX COMMAND...: runs COMMAND within min(LIMIT, time left); PASS on
# exit 0; the detail is the last output line matching DETAIL-REGEX (on a failure, the first
# complaint).
step() {
    local name=$1 limit=$2 regex=$3
    shift 3
    wanted "$name" || return 0
    local left=$((budget - ($(date +%s) - start)))
    if [ "$left" -lt 15 ]; then
        echo "== $name: skipped, out of time (KIT_BUDGET_S=$budget)"
        record "$name" SKIPPED - "out of time: rerun with KIT_STEPS=$name"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most $limit s): $*"
    local log=$work/$name.log t0 rc dt detail result
    t0=$(date +%s)
    (cd "$work" && timeout -k 10 "$limit" "$@") > "$log" 2>&1
    rc=$?
    dt=$(($(date +%s) - t0))
    { echo "===== $name: exit $rc after $dt s: $*"; cat "$log"; echo; } >> "$steps_log"
    detail=$(grep -E -- "$regex" "$log" | tail -n 1 | cut -c1-110)
    case $rc in
    0) result=PASS ;;
    124 | 137) result=FAIL detail="timed out after $limit s; ${detail}" ;;
    77) result=FAIL detail="skipped: no GPU seen; ${detail}" ;;
    *)
        # the first complaint says more than the last
        result=FAIL
        detail="exit $rc; $(grep -m 1 -E 'FAIL|[Ee]rror' "$log" | cut -c1-100)"
        [ "$detail" = "exit $rc; " ] && detail="exit $rc; $(tail -n 1 "$log" | cut -c1-100)"
        ;;
    esac
    tail -n 6 "$log" | sed 's/^/   /'
    echo "== $name: $result in $dt s"
    record "$name" "$result" "$dt" "$detail"
}

if [ "${KIT_FORCE:-0}" != 1 ] && ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    "$bin/test_cuda_parity" > "$work/probe.log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then
        echo "no GPU: nothing run ($(head -n 1 "$work/probe.log"))"
        echo "lawt GPU kit: no GPU visible, nothing run" > "$summary"
        exit 77
    fi
fi

dist=$bin/lawt_dist tt=$kit/tests/test_trainer.sh
step parity 90 'passed|FAIL' "$bin/test_cuda_parity"
if [ -n "$san" ]; then
    step memcheck 90 'ERROR SUMMARY' "$san" --tool memcheck --leak-check full --error-exitcode 1 \
        "$bin/test_cuda_parity" --short
    step racecheck 90 'RACECHECK SUMMARY|ERROR SUMMARY' "$san" --tool racecheck --error-exitcode 1 \
        "$bin/test_cuda_parity" --short
else
    wanted memcheck && record memcheck FAIL - "compute-sanitizer not found"
    wanted racecheck && record racecheck FAIL - "compute-sanitizer not found"
fi
step ckpt-c2cpu 45 'rel|passed|FAIL' bash "$tt" backends "$dist" "$kit" "$work/ckpt-c2cpu" cuda cpu
step ckpt-cpu2c 45 'rel|passed|FAIL' bash "$tt" backends "$dist" "$kit" "$work/ckpt-cpu2c" cpu cuda
for prec in fp32 bf16; do
    step "quick-$prec" 60 'L1 accuracy|FAIL' bash "$tt" learn "$dist" "$kit" "$work/quick-$prec" \
        quickstart.ini 5 99 --set run.device=cuda --set run.precision="$prec"
done
pyargs=(--no-pytorch)
if [ -f "$kit/bench/pytorch_reference.py" ] && [ -n "$python" ]; then
    pyargs=(--python "$python" --pytorch "$kit/bench/pytorch_reference.py" --no-compile)
fi
step bench 200 'appended|bench_gpu:' "$bin/bench_gpu" --only peak,a,large,decode --large-batch 1024 \
    --decode-batch 1024 --seconds "${BENCH_SECONDS:-2}" --warmup 3 "${pyargs[@]}" \
    --results "$logs/bench-gpu.md"
step learn 120 'L1 accuracy|FAIL' bash "$tt" learn "$dist" "$kit" "$work/learn" \
    transpose_5x5_p1000.ini 0.5 "${LEARN_MIN:-90}" --set run.device=cuda \
    --set train.max_steps="${LEARN_STEPS:-8000}" --set train.warmup=1000 \
    --set train.epoch_size=128000 --set eval.size=2000

{
    echo
    echo "lawt GPU kit summary ($(sed -n 2p "$kit/KIT.txt" 2>/dev/null)), $(($(date +%s) - start)) s in all"
    echo "| step       | result  |     s | detail |"
    echo "|------------|---------|------:|--------|"
    printf '%s\n' "${rows[@]}"
    [ -f "$logs/bench-gpu.md" ] && { echo; cat "$logs/bench-gpu.md"; }
    echo
    echo "$failures step(s) not passed; logs: $logs (gpu-run.log, gpu-steps.log, summary.txt, bench-gpu.md)"
} | tee "$summary"
[ $failures -eq 0 ]
