#!/bin/bash
# The whole test suite: installs what is missing, builds lawt twice (optimised, and with
# AddressSanitizer + UBSan) and runs CTest on both. The long end-to-end learning tests
# (label "slow") run in the optimised build only. After each CTest run, tests/ctest_skipped.sh
# lists the tests that did not run and the reason each printed. Then, where nvcc exists, the GPU kit is built
# and rehearsed without a GPU (tests/gpu/kit_rehearsal.sh: also the build without MPI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
# Open MPI refuses to run as root unless told; tests start it through mpirun.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
tests/ctest_skipped.sh --test-dir build --output-on-failure -j"$jobs"

# The CUDA backend is compiled by the first build; the sanitizer build is the CPU path.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLAWT_SANITIZE=ON -DLAWT_WITH_CUDA=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 tests/ctest_skipped.sh --test-dir build-asan --output-on-failure -LE slow \
    -j"$jobs"

# The GPU kit (scripts/gpu-kit.sh): a third build (no MPI, static dependencies, sm_90),
# unpacked and run as on the GPU machine, minus the GPU.
if command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    tests/gpu/kit_rehearsal.sh
else
    echo "run_all: no nvcc: the GPU kit rehearsal is skipped"
fi
