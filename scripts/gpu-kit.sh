#!/bin/bash
# scripts/gpu-kit.sh OUTDIR: builds, on this machine (nvcc, no GPU needed), the GPU kit: the
# programs that prove lawt's CUDA backend, ready to run on a bare CUDA machine (no MPI, HDF5,
# OpenBLAS, inih there, nothing installable), packed as OUTDIR/lawt-gpu-kit.tar.xz (~3.4 MB).
#
#   bin/lawt_dist, bin/test_cuda_parity, bin/bench_gpu   for CUDA_ARCH (default 90: H100/H200),
#       built without MPI (one process) and without NCCL (it needs MPI; the kit's machine has
#       one GPU), HDF5/OpenBLAS/LAPACKE/inih/gfortran linked statically, stripped: at run time
#       they need only glibc, libstdc++/libgcc_s and CUDA's libcudart/libcublas/libcublasLt;
#       no path of this machine (LAWT_RELOCATABLE)
#   run.sh (tests/gpu/kit_run.sh)   every GPU check in one command, logs under $OUT
#   jobs/*.ini, tests/test_trainer.sh and the tests/lib.sh it sources, bench/pytorch_reference.py (from ../shared/bench beside
#       the checkout, or $LAWT_PYTORCH_REFERENCE; without it the benchmark runs lawt alone),
#       KIT.txt (commit, build machine, checksums)
#
# Environment: CUDA_ARCH (90), LAWT_KIT_BUILD (the build folder, default build-kit at the
# repository root, reused between runs), LAWT_PYTORCH_REFERENCE.
# When OUTDIR is inside a git checkout it is added to that checkout's .git/info/exclude, and
# the device command printed at the end names it (the device tool carries ignored folders
# only when `carry` names them).
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in --help | -h) usage; exit 0 ;; esac
[ $# -eq 1 ] || { usage >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
build=${LAWT_KIT_BUILD:-$root/build-kit}
arch=${CUDA_ARCH:-90}
say() { echo "gpu-kit: $*"; }
die() { echo "gpu-kit: error: $*" >&2; exit 1; }
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
    die "nvcc not found: the kit's CUDA code is compiled here"
export PATH=$PATH:/usr/local/cuda/bin

# The device tool runs a command at the repository root of the session's checkout, carrying
# the ignored folders that `carry` names. Ignored before anything is written there, so that
# the kit's commit is not marked as having uncommitted changes by the kit itself.
top=$(git -C "$out" rev-parse --show-toplevel 2>/dev/null || true)
if [ -n "$top" ]; then
    rel=${out#"$top"/}
    exclude=$(git -C "$top" rev-parse --path-format=absolute --git-common-dir)/info/exclude
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/$rel/" "$exclude" 2>/dev/null || echo "/$rel/" >> "$exclude"
    say "ignored by $exclude: /$rel/"
fi
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain 2>/dev/null | head -n 1)

t0=$(date +%s)
mkdir -p "$build"
say "configure $build (sm_$arch, MPI off, NCCL off, static dependencies)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DLAWT_WITH_CUDA=ON -DLAWT_WITH_MPI=OFF -DLAWT_WITH_NCCL=OFF -DLAWT_STATIC_DEPS=ON \
      -DLAWT_RELOCATABLE=ON > "$build/lawt-kit-configure.log" 2>&1 ||
    { cat "$build/lawt-kit-configure.log" >&2; die "configure failed"; }
grep -q 'lawt: CUDA backend ON' "$build/lawt-kit-configure.log" ||
    die "CMake did not enable the CUDA backend (see $build/lawt-kit-configure.log)"
programs=(trainer/lawt_dist tests/test_cuda_parity bench/bench_gpu)
cmake --build "$build" -j"$(nproc)" --target lawt_dist test_cuda_parity bench_gpu
t_build=$(($(date +%s) - t0))

stage=$out/lawt-gpu-kit
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/jobs" "$stage/tests" "$stage/bench"
for p in "${programs[@]}"; do
    strip --strip-unneeded -o "$stage/bin/$(basename "$p")" "$build/$p"
done
# Only the libraries the kit may meet on the GPU machine: glibc, libstdc++/libgcc_s, CUDA's.
allowed='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libcudart|libcublas|libcublasLt)\.so'
for b in "$stage"/bin/*; do
    extra=$(ldd "$b" | awk '{print $1}' | sed 's|.*/||' | grep -Ev "$allowed" || true)
    [ -z "$extra" ] || die "$(basename "$b") needs libraries the GPU machine lacks: $extra"
done
cp "$root"/jobs/*.ini "$stage/jobs/"
cp "$root/tests/test_trainer.sh" "$root/tests/lib.sh" "$stage/tests/"
cp "$root/tests/gpu/kit_run.sh" "$stage/run.sh"
# ../shared beside the checkout; from a git worktree, beside the main checkout.
ref=${LAWT_PYTORCH_REFERENCE:-$root/../shared/bench/pytorch_reference.py}
common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
if [ -z "${LAWT_PYTORCH_REFERENCE:-}" ] && [ ! -f "$ref" ] && [ -n "$common" ]; then
    ref=$(dirname "$common")/../shared/bench/pytorch_reference.py
fi
if [ -f "$ref" ]; then
    cp "$ref" "$stage/bench/pytorch_reference.py"
else
    say "warning: $ref not found: the kit's benchmark will run lawt without PyTorch"
fi
{
    echo "lawt GPU kit"
    echo "commit: $commit${dirty:+ + uncommitted changes}"
    echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname) ($(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(ldd --version | head -n 1 | awk '{print $NF}'))"
    echo "nvcc: $(nvcc --version | tail -n 1)"
    echo "CUDA architectures: $arch; MPI off; NCCL off; static HDF5/OpenBLAS/LAPACKE/inih"
    echo "PyTorch reference: $([ -f "$stage/bench/pytorch_reference.py" ] && echo "yes ($(sha256sum < "$stage/bench/pytorch_reference.py" | cut -c1-12))" || echo no)"
    echo "run: bash run.sh   (or, from the repository root: bash tests/gpu/run.sh --kit KIT.tar.xz)"
    echo
    (cd "$stage" && find . -type f ! -name KIT.txt | sort | xargs sha256sum)
} > "$stage/KIT.txt"

t1=$(date +%s)
# -9: a 64 MiB dictionary sees that the three programs share most of their bytes (OpenBLAS,
# HDF5): 3.4 MB instead of 6.
tar -C "$out" -cf - lawt-gpu-kit | xz -9 -T1 > "$out/lawt-gpu-kit.tar.xz.tmp"
mv "$out/lawt-gpu-kit.tar.xz.tmp" "$out/lawt-gpu-kit.tar.xz"
rm -rf "$stage"
t_pack=$(($(date +%s) - t1))
size=$(stat -c %s "$out/lawt-gpu-kit.tar.xz")
say "$out/lawt-gpu-kit.tar.xz: $size bytes (build ${t_build} s, pack ${t_pack} s, commit $commit${dirty:+ + uncommitted changes})"

if [ -n "$top" ]; then
    say "the device command (from $top):"
    echo "    run(command=\"bash tests/gpu/run.sh --kit $rel/lawt-gpu-kit.tar.xz\", carry=[\"$rel\"], timeout_s=540)"
else
    say "the device command, with the kit copied to KITDIR in the repository (ignored, carried):"
    echo "    run(command=\"bash tests/gpu/run.sh --kit KITDIR/lawt-gpu-kit.tar.xz\", carry=[\"KITDIR\"], timeout_s=540)"
fi
