#!/bin/bash
# tests/fuzz/run.sh [SECONDS]: builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang,
# AddressSanitizer and UBSan in build-fuzz/, and runs each for SECONDS (default 60) from its
# seed corpus tests/fuzz/corpus/<target>/. New inputs go to build-fuzz/corpus-<target>/, never
# into the repository. Stops with a non-zero status at the first crash, sanitizer report, leak,
# timeout or failed check; the input is left in build-fuzz/artifacts/ (replay it with
# build-fuzz/tests/fuzz_<target> FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DLAWT_WITH_CUDA=OFF -DLAWT_FUZZ=ON \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_config fuzz_decode fuzz_checkpoint
mkdir -p build-fuzz/artifacts
# One BLAS thread: the checkpoint target builds a model, and the fuzzer runs one input at a time.
export OPENBLAS_NUM_THREADS=1 UBSAN_OPTIONS=print_stacktrace=1
# HDF5 leaks inside the library on some damaged files (tests/lsan_hdf5.supp says which).
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan_hdf5.supp
for target in config decode checkpoint; do
    work=build-fuzz/corpus-$target
    rm -rf "$work"
    mkdir -p "$work"
    seeds=("tests/fuzz/corpus/$target")
    max_len=4096
    # Checkpoints: the format-1 file of the damage test seeds too; seeds are ~55 KB.
    if [ "$target" = checkpoint ]; then seeds+=(tests/data); max_len=65536; fi
    echo "fuzz_$target: $seconds s"
    build-fuzz/tests/fuzz_$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -max_len=$max_len -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target-" \
        "$work" "${seeds[@]}" 2>&1 | grep -v '^#[0-9]' || exit 1
done
echo "fuzzing: no crash, sanitizer report or failed check in 3 targets x $seconds s"
