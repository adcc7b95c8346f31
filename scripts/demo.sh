#!/usr/bin/env bash
# The main job: install what is missing, build libkfacpinn, then train a PINN for
# 2-d Poisson with KFAC through the C ABI and print its L2 error.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release -q
test -f .build/release/libkfacpinn.so
scripts/soname-link.sh
mkdir -p .build/c
scripts/build-c.sh examples/train_poisson_kfac.c .build/c/train_poisson_kfac
.build/c/train_poisson_kfac "$@"
