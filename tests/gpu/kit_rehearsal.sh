#!/bin/bash
# tests/gpu/kit_rehearsal.sh [WORK_DIR]: the GPU kit rehearsed on a machine without a GPU (CI,
# tests/run_all.sh), so that the first GPU we get runs it rather than debugs it:
#   1. scripts/gpu-kit.sh builds the kit (build folder $LAWT_KIT_BUILD, default build-kit);
#   2. it is unpacked into an empty folder and run with LD_LIBRARY_PATH naming only the kit and
#      CUDA's folder: ldd shows nothing but glibc, libstdc++/libgcc_s and CUDA's libraries (those
#      from CUDA's folder), and no program holds a path of this checkout (but nvcc's line
#      information of the CUDA kernels, which nothing reads at run time);
#   3. the programs start: --help; the GPU programs exit 77 ("no GPU");
#   4. the kit's run.sh says "no GPU" (77) and, forced through every step (KIT_FORCE=1), fails
#      each within seconds and prints its summary (the script's own plumbing);
#   5. the kit's lawt_dist trains the quick-start model on the CPU (200 steps: the loss falls,
#      an evaluation and HDF5 checkpoints are written) and a checkpoint resumes bit for bit
#      (test_trainer.sh backends cpu cpu), from an unrelated working directory;
#   6. the no-MPI build's own tests (comm_single*, trainer config/errors/determinism/resume).
# WORK_DIR (default $TMPDIR/lawt-kit-rehearsal) is emptied first.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-${TMPDIR:-/tmp}/lawt-kit-rehearsal}
build=${LAWT_KIT_BUILD:-$root/build-kit}
rm -rf "$work"
mkdir -p "$work/out" "$work/unpacked" "$work/OUT" "$work/OUT-forced" "$work/cpu"
failures=0
fail() { echo "kit_rehearsal: FAIL: $*"; failures=$((failures + 1)); }
t0=$(date +%s)

echo "== 1. build the kit"
LAWT_KIT_BUILD=$build bash "$root/scripts/gpu-kit.sh" "$work/out" ||
    { echo "kit_rehearsal: FAIL: scripts/gpu-kit.sh"; exit 1; }
tarball=$work/out/lawt-gpu-kit.tar.xz
size=$(stat -c %s "$tarball")
[ "$size" -lt $((8 * 1024 * 1024)) ] || fail "the kit is $size bytes (expected about 3.4 MB)"
t_build=$(($(date +%s) - t0))

echo "== 2. unpacked into an empty folder: libraries and paths"
tar -xJf "$tarball" -C "$work/unpacked" || { echo "kit_rehearsal: FAIL: unpacking"; exit 1; }
kit=$work/unpacked/lawt-gpu-kit
cudalib=
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    if ls "$d"/libcublas.so.* > /dev/null 2>&1; then cudalib=$(readlink -f "$d"); break; fi
done
[ -n "$cudalib" ] || { echo "kit_rehearsal: FAIL: no CUDA library folder (libcublas)"; exit 1; }
export LD_LIBRARY_PATH=$kit/bin:$cudalib
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
system='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so'
cuda='^(libcudart|libcublas|libcublasLt)\.so'
for b in "$kit"/bin/*; do
    name=$(basename "$b")
    libs=$(ldd "$b" | awk '{print $1}' | sed 's|.*/||' | sort | tr '\n' ' ')
    echo "$name: $libs"
    ldd "$b" | grep -q 'not found' && fail "$name: $(ldd "$b" | grep 'not found' | tr -s ' \t' ' ')"
    while read -r lib _ path _; do
        lib=${lib##*/}
        if [[ $lib =~ $cuda ]]; then
            [ "$(dirname "$(readlink -f "$path")")" = "$cudalib" ] ||
                fail "$name: $lib from $path, not from CUDA's folder"
        elif ! [[ $lib =~ $system ]]; then
            fail "$name needs $lib ($path): not glibc, libstdc++, libgcc_s or CUDA"
        fi
    done < <(ldd "$b" | grep -v 'statically linked')
    paths=$(strings -a "$b" | grep -F "$root" | grep -v '/model/cuda' | sort -u | head -n 5)
    [ -z "$paths" ] || fail "$name holds paths of this checkout: $paths"
done

echo "== 3. the programs start"
cd "$work/cpu" || exit 1
for p in lawt_dist bench_gpu; do
    "$kit/bin/$p" --help > "$p.help" 2>&1 || fail "$p --help: exit $?"
    head -n 1 "$p.help"
done
"$kit/bin/test_cuda_parity" > parity.log 2>&1
rc=$?
cat parity.log
[ $rc -eq 77 ] || fail "test_cuda_parity without a GPU: exit $rc, expected 77"
"$kit/bin/bench_gpu" --seconds 1 --no-results > bench.log 2>&1
rc=$?
tail -n 1 bench.log
[ $rc -eq 77 ] || fail "bench_gpu without a GPU: exit $rc, expected 77"

echo "== 4. the kit's run.sh without a GPU"
OUT=$work/OUT bash "$kit/run.sh" > run.log 2>&1
rc=$?
tail -n 1 run.log
[ $rc -eq 77 ] || fail "run.sh without a GPU: exit $rc, expected 77"
[ -s "$work/OUT/gpu-run.log" ] && [ -s "$work/OUT/summary.txt" ] || fail "run.sh wrote no logs under \$OUT"
t=$(date +%s)
KIT_FORCE=1 OUT=$work/OUT-forced bash "$kit/run.sh" > forced.log 2>&1
rc=$?
sed -n '/^lawt GPU kit summary/,$p' "$work/OUT-forced/summary.txt"
[ $rc -eq 1 ] || fail "run.sh forced without a GPU: exit $rc, expected 1 (every step failing)"
rows=$(grep -c '^| [a-z]' "$work/OUT-forced/summary.txt")
[ "$rows" -eq 10 ] || fail "run.sh forced: $rows rows in the summary, expected 10 (the header and 9 steps)"
grep '^| [a-z]' "$work/OUT-forced/summary.txt" | grep -v '^| step' | grep -v FAIL &&
    fail "run.sh forced: a step passed without a GPU"
[ $(($(date +%s) - t)) -lt 60 ] || fail "run.sh forced took $(($(date +%s) - t)) s"

echo "== 5. lawt_dist from the kit trains the quick-start model on the CPU"
t=$(date +%s)
"$kit/bin/lawt_dist" --config "$kit/jobs/quickstart.ini" --set run.device=cpu \
    --set train.max_steps=200 --set train.epoch_size=6400 --set eval.size=200 \
    --run-dir quickstart > quickstart.log 2>&1 || { fail "quick-start on the CPU"; tail quickstart.log; }
grep -E '^(eval|done)' quickstart.log | tail -n 3
awk -F'"loss":' '/"type":"train"/ { split($2, v, ","); if (!n++) first = v[1]; last = v[1] }
     END { printf "loss %s -> %s\n", first, last; exit !(n > 2 && last < first / 2) }' \
    quickstart/metrics.jsonl || fail "the quick-start loss did not halve in 200 steps"
grep -q '"type":"eval"' quickstart/metrics.jsonl || fail "no evaluation in the quick-start run"
ls quickstart/step-*.h5 quickstart/best.h5 > /dev/null 2>&1 || fail "no HDF5 checkpoint written"
echo "quick-start, 200 steps: $(($(date +%s) - t)) s"
bash "$kit/tests/test_trainer.sh" backends "$kit/bin/lawt_dist" "$kit" "$work/cpu/backends" cpu cpu \
    > backends.log 2>&1 || { fail "checkpoint resume from the kit (cpu -> cpu)"; tail backends.log; }
tail -n 1 backends.log

echo "== 6. the no-MPI build's tests"
cmake --build "$build" -j"$(nproc)" --target test_comm test_comm_fail test_trainer_config > /dev/null ||
    fail "building the no-MPI tests"
ctest --test-dir "$build" -R '^comm_single|^trainer_(config|errors|determinism|resume)$' \
    --output-on-failure -j"$(nproc)" | tail -n 4
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "the no-MPI build's tests"

echo "kit_rehearsal: kit $size bytes, built and packed in $t_build s, $(($(date +%s) - t0)) s in all"
[ $failures -eq 0 ] && echo "kit_rehearsal: passed" || echo "kit_rehearsal: $failures failure(s)"
exit $((failures > 0))
