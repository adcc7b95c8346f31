#!/usr/bin/env bash
# Compiles a C program against include/kfacpinn.h and .build/release/libkfacpinn.so
# with -Wall -Wextra -Werror: scripts/build-c.sh SOURCE.c OUTPUT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/soname-link.sh"
cc -std=c99 -O2 -Wall -Wextra -Werror -I"$root/include" "$1" -o "$2" \
    -L"$root/.build/release" -lkfacpinn -Wl,-rpath,"$root/.build/release" -lm
