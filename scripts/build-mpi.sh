#!/usr/bin/env bash
# Builds libkfacpinn_mpi.so (bindings/mpi, include/kfacpinn_mpi.h) next to libkfacpinn.so with
# OpenMPI's mpicc (scripts/setup.sh installs it). With SOURCE.c OUTPUT, also compiles an
# MPI program against both libraries: scripts/build-mpi.sh [SOURCE.c OUTPUT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib="$root/.build/release"
command -v mpicc >/dev/null || { echo "mpicc not found: scripts/setup.sh installs OpenMPI"; exit 1; }
"$root/scripts/soname-link.sh"
mpicc -std=c99 -O2 -fPIC -shared -Wall -Wextra -Werror -I"$root/include" "$root/bindings/mpi/kfacpinn_mpi.c" \
    -o "$lib/libkfacpinn_mpi.so" -Wl,-soname,libkfacpinn_mpi.so -L"$lib" -lkfacpinn -Wl,-rpath,"$lib"
if [ $# -ge 2 ]; then
    mpicc -std=c99 -O2 -Wall -Wextra -Werror -I"$root/include" "$1" -o "$2" \
        -L"$lib" -lkfacpinn_mpi -lkfacpinn -Wl,-rpath,"$lib" -lm
fi
