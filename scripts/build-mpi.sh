#!/usr/bin/env bash
# Builds libkfacpinn_mpi.so (bindings/mpi, include/kfacpinn_mpi.h) with OpenMPI's mpicc
# (scripts/setup.sh installs it) against the libkfacpinn.so in --lib (default .build/release):
#     scripts/build-mpi.sh [--lib DIR] [--output FILE --soname NAME] [SOURCE.c PROGRAM]
# Without --output the library goes next to libkfacpinn.so, finding it there at run time (rpath);
# with --output (an installation, a wheel) it has no rpath and the given SONAME. With SOURCE.c
# PROGRAM, also compiles an MPI program against both libraries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib="$root/.build/release" output="" soname=libkfacpinn_mpi.so
while [ $# -gt 0 ]; do
    case "$1" in
        --lib) lib=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        --soname) soname=$2; shift 2 ;;
        *) break ;;
    esac
done
command -v mpicc >/dev/null || { echo "mpicc not found: scripts/setup.sh installs OpenMPI"; exit 1; }
"$root/scripts/soname-link.sh" "$lib"
rpath=()
if [ -z "$output" ]; then output="$lib/libkfacpinn_mpi.so"; rpath=(-Wl,-rpath,"$lib"); fi
mpicc -std=c99 -O2 -fPIC -shared -Wall -Wextra -Werror -I"$root/include" "$root/bindings/mpi/kfacpinn_mpi.c" \
    -o "$output" -Wl,-soname,"$soname" -L"$lib" -lkfacpinn "${rpath[@]}"
if [ $# -ge 2 ]; then
    mpicc -std=c99 -O2 -Wall -Wextra -Werror -I"$root/include" "$1" -o "$2" \
        -L"$lib" -lkfacpinn_mpi -lkfacpinn -Wl,-rpath,"$lib" -lm
fi
