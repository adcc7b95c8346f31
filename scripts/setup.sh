#!/usr/bin/env bash
# Installs what kfacpinn needs and is missing: OpenBLAS + LAPACKE (Debian
# packages), OpenMPI for data-parallel training (libkfacpinn_mpi.so), pkg-config and CMake for
# the install checks and, for the Python binding and its tests, numpy, pytest and mpi4py.
set -euo pipefail
missing=()
for pkg in libopenblas-dev liblapacke-dev libopenmpi-dev openmpi-bin pkgconf cmake; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c "import numpy, pytest" 2>/dev/null || python3 -m pip install -q numpy pytest
python3 -c "import mpi4py" 2>/dev/null || python3 -m pip install -q mpi4py
command -v swift >/dev/null || { echo "swift not found: install the Swift toolchain (6.3 or newer)"; exit 1; }
