#!/usr/bin/env bash
# Every test: the layering check, Swift tests, the header check, C programs (compiled with
# -Wall -Wextra -Werror, then run; the MPI example on two processes) and the Python binding's
# tests (data-parallel ones on two MPI processes), then installs as each language's users do
# (scripts/check-install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== layering"
python3 scripts/check-layers.py
echo "== build"
swift build -c release -q
test -f .build/release/libkfacpinn.so
scripts/soname-link.sh
echo "== Swift tests"
# Release build with testing enabled (the training tests need optimised code), in its own folder.
swift test -c release -Xswiftc -enable-testing --scratch-path .build-tests -q --disable-xctest 2>&1 | grep -vE "^◇"
echo "== header"
scripts/check-header.sh
echo "== C programs"
mkdir -p .build/c
for src in examples/*.c Tests/C/*.c; do
    exe=.build/c/$(basename "$src" .c)
    case "$src" in */mpi_*.c) continue ;; esac
    scripts/build-c.sh "$src" "$exe"
    echo "-- $exe"
    case "$src" in
        */train_poisson_kfac.c)   # short runs (scripts/demo.sh trains fully); malformed arguments are refused
            "$exe" 300 100 && "$exe" 300 100 auto
            for bad in "300 100 nonsense" "300 abc" "0 10" "300 100 auto extra"; do
                if "$exe" $bad > /dev/null 2>&1; then echo "accepted bad arguments: $bad"; exit 1; fi
            done ;;
        */compare_optimizers.c) "$exe" 100 50 engd adam && "$exe" 20 10 hessian_free lbfgs ;;
        */own_problem.c) (cd / && "$OLDPWD/$exe" 300) ;;
        */inverse_problem.c) "$exe" heat1d_inverse 200 && "$exe" poisson2d_reaction_inverse 50 ;;
        *) "$exe" ;;
    esac
done
echo "== MPI"
scripts/build-mpi.sh examples/mpi_train.c .build/c/mpi_train
timeout 600 mpirun --allow-run-as-root --oversubscribe -np 2 .build/c/mpi_train 60 200 50
echo "== Python tests"
python3 -m pytest -q bindings/python/tests
echo "== install (pip, pkg-config, CMake, SwiftPM)"
scripts/check-install.sh
