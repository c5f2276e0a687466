#!/bin/bash
# Installs the Debian packages lawt builds and tests with (root or sudo). Idempotent: does
# nothing but a dpkg query when everything is there.
set -euo pipefail
PACKAGES=(cmake make gcc pkg-config openmpi-bin libopenmpi-dev libhdf5-dev hdf5-tools
          liblapacke-dev libopenblas-dev libopenblas0-pthread librandom123-dev libinih-dev
          libopenblas-pthread-dev libaec-dev zlib1g-dev libgfortran-12-dev xz-utils binutils)
# The last six: the static archives (OpenBLAS, libsz/libaec, libz, libgfortran) and the packing (xz,
# strip) of the GPU kit, scripts/gpu-kit.sh.
# Slurm is only needed by the local-Slurm test; it is skipped when absent.
if [ "${LAWT_WITH_SLURM:-1}" = 1 ]; then
    PACKAGES+=(slurmctld slurmd slurm-client munge)
fi
# gnuplot draws the learning curves (lawt_plot, curves.png); without it they are skipped.
PACKAGES+=(gnuplot-nox)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
