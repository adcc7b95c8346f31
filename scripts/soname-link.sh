#!/usr/bin/env bash
# Links libkfacpinn.so.<major> (the library's SONAME, which programs linked against it ask for)
# to libkfacpinn.so in a build folder: scripts/soname-link.sh [FOLDER (.build/release)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.build/release}
major=$(sed -n 's/^#define KFP_VERSION_MAJOR \([0-9]*\)$/\1/p' "$root/include/kfacpinn.h")
ln -sfn libkfacpinn.so "$dir/libkfacpinn.so.$major"
