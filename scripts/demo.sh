#!/usr/bin/env bash
# The main job: install what is missing, build libkfacpinn, build and run the C demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release -q
test -f .build/release/libkfacpinn.so
mkdir -p .build/c
scripts/build-c.sh examples/poisson_demo.c .build/c/poisson_demo
.build/c/poisson_demo
