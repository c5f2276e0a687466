#!/bin/bash
# Fresh Debian machine to a trained model: installs what is missing, builds, and trains the
# quick-start model (3x3 matrices, a small transformer) on the CPU, printing its accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
build/trainer/lawt_dist --config jobs/quickstart.ini --run-dir runs/quickstart "$@"
