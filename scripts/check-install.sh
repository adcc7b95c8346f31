#!/usr/bin/env bash
# Checks the three ways to install kfacpinn from a clean state, each used from outside the
# repository (after `swift build -c release`; scripts/test.sh runs it):
#   - Python: a fresh virtual environment, `pip install .`, then kfacpinn imported and trained
#     from another directory without environment variables; the wheel from `pip wheel .` has the
#     library inside;
#   - C: scripts/install.sh into a temporary prefix, a C program built with pkg-config and one
#     with CMake's find_package(kfacpinn), both run; then the uninstall leaves the prefix empty;
#   - Swift: a temporary package depending on a repository of this checkout's files by a file://
#     URL and a version tag builds and calls the Swift API.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^#define KFP_VERSION_STRING "\(.*\)"$/\1/p' "$root/include/kfacpinn.h")

echo "-- Python: pip install . into a fresh virtual environment"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "$root" 2>&1 | grep -v "^\[notice\]" || true
(cd "$tmp" && env -u PYTHONPATH -u KFACPINN_LIBRARY "$tmp/venv/bin/python" - "$version" <<'PY'
import sys
import kfacpinn as kp
assert kp.__version__ == sys.argv[1], (kp.__version__, sys.argv[1])
assert "site-packages" in kp._lib.lib._name, kp._lib.lib._name
prob = kp.Problem("poisson2d_sin")
net = kp.MLP(prob.network_widths("small"), seed=0)
log = kp.train(net, prob, kp.KFAC(net, prob.operator, step="auto"), steps=100, log_every=100, progress=False)
assert log["l2_error"][-1] < 0.05, log["l2_error"]
print(f"kfacpinn {kp.__version__} from {kp._lib.lib._name}: L2 error {log['l2_error'][-1]:.2e} after 100 KFAC* steps")
PY
)
(cd "$tmp" && "$tmp/venv/bin/pip" wheel -q --no-deps -w "$tmp/wheel" "$root" 2>&1 | grep -v "^\[notice\]" || true)
wheel=$(ls "$tmp"/wheel/kfacpinn-"$version"-*.whl)
python3 -m zipfile -l "$wheel" | grep -c "kfacpinn/libkfacpinn.so" > /dev/null || { echo "the wheel has no libkfacpinn.so"; exit 1; }
python3 -m venv "$tmp/wheel-venv"
"$tmp/wheel-venv/bin/pip" install -q "$wheel" 2>&1 | grep -v "^\[notice\]" || true
(cd / && env -u PYTHONPATH -u KFACPINN_LIBRARY "$tmp/wheel-venv/bin/python" -c '
import kfacpinn as kp
net = kp.MLP([2, 16, 1], seed=0)
loss, gradient = kp.loss_and_gradient(net, kp.Operator.poisson(2), kp.Problem("poisson2d_sin").sample(100, 20))
assert "wheel-venv" in kp._lib.lib._name and gradient.shape == (net.num_params,)
assert "libswiftCore" not in open("/proc/self/maps").read(), "the wheel loads the Swift runtime of a toolchain"
print(f"the wheel installed into a fresh environment: kfacpinn {kp.__version__}, loss {loss:.3e} from /")
')

echo "-- C: scripts/install.sh, pkg-config and CMake consumers"
"$root/scripts/install.sh" --prefix "$tmp/prefix"
cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include "kfacpinn.h"
int main(void) {
    kfp_net *net = NULL;
    int64_t widths[] = {2, 8, 1}, count = 0;
    if (kfp_net_create(widths, 3, "tanh", NULL, 0, &net) != KFP_OK || kfp_net_num_params(net, &count) != KFP_OK) return 1;
    printf("kfacpinn %s: a 2-8-1 network has %lld parameters\n", kfp_version_string(), (long long)count);
    kfp_net_free(net);
    return count == 33 ? 0 : 1;
}
C
mkdir -p "$tmp/c" && cd "$tmp/c"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
[ "$(pkg-config --modversion kfacpinn)" = "$version" ]
cc -std=c99 -Wall -Wextra -Werror ../prog.c $(pkg-config --cflags --libs kfacpinn) -o prog
(cd / && "$tmp/c/prog")
readelf -d prog | grep -c "NEEDED.*libkfacpinn.so.${version%%.*}\]" > /dev/null || { echo "prog does not need libkfacpinn.so.${version%%.*}"; exit 1; }
! readelf -d "$tmp/prefix/lib/libkfacpinn.so.$version" | grep -c "NEEDED.*libswift" > /dev/null || { echo "the installed library needs the Swift runtime"; exit 1; }
mkdir -p "$tmp/cmake" && cd "$tmp/cmake"
cat > CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(kfacpinn 1.0 REQUIRED)
add_executable(prog ../prog.c)
target_link_libraries(prog PRIVATE kfacpinn::kfacpinn)
CMAKE
cmake -S . -B build -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release > cmake.log || { cat cmake.log; exit 1; }
cmake --build build > build.log || { cat build.log; exit 1; }
(cd / && "$tmp/cmake/build/prog")
"$root/scripts/install.sh" --prefix "$tmp/prefix" --uninstall
[ -z "$(find "$tmp/prefix" -mindepth 1 -not -type d)" ] || { echo "the uninstall left files:"; find "$tmp/prefix" -not -type d; exit 1; }

echo "-- Swift: a package depending on kfacpinn by URL and version"
# The product other packages use has no target with unsafe flags (which SwiftPM refuses, or
# refused, in a dependency).
(cd "$root" && swift package dump-package) | python3 -c '
import json, sys
package = json.load(sys.stdin)
targets = {t["name"]: t for t in package["targets"]}
product = next(p for p in package["products"] if p["name"] == "KFACPINNSwift")
todo, seen = list(product["targets"]), set()
while todo:
    name = todo.pop()
    if name in seen or name not in targets:
        continue
    seen.add(name)
    target = targets[name]
    assert "unsafeFlags" not in json.dumps(target.get("settings", [])), f"target {name} of KFACPINNSwift has unsafe flags"
    todo += [d.get("byName", d.get("target", [None]))[0] for d in target.get("dependencies", [])]
print("KFACPINNSwift: targets " + ", ".join(sorted(seen)) + ", none with unsafe flags")
'
# A repository of this checkout's files as they are (committed or not), tagged with the version.
mkdir -p "$tmp/kfacpinn"
(cd "$root" && git ls-files --cached --others --exclude-standard | while read -r f; do
    [ -e "$f" ] && cp --parents -P "$f" "$tmp/kfacpinn/"
done)
git -C "$tmp/kfacpinn" init -q
git -C "$tmp/kfacpinn" add -A
git -C "$tmp/kfacpinn" -c user.name=kfacpinn -c user.email=kfacpinn@localhost commit -qm "kfacpinn $version"
git -C "$tmp/kfacpinn" tag "$version"
mkdir -p "$tmp/consumer/Sources/consumer"
cat > "$tmp/consumer/Package.swift" <<SWIFT
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$tmp/kfacpinn", from: "$version")],
    targets: [.executableTarget(name: "consumer", dependencies: [.product(name: "KFACPINNSwift", package: "kfacpinn")])]
)
SWIFT
cat > "$tmp/consumer/Sources/consumer/main.swift" <<'SWIFT'
import KFACPINN

let problem = try Problem(name: "poisson2d_sin")
let net = try MLP(widths: try problem.networkWidths(size: "small"), activation: .tanh, seed: 0)
var options = TrainingOptions()
options.steps = 20
options.logEvery = 20
let log = try train(try KFAC(network: net, operator: problem.op), on: problem, options: options)
print("kfacpinn \(Version.string) from Swift: L2 error \(log.last!.l2Error) after \(log.last!.step) KFAC steps")
SWIFT
(cd "$tmp/consumer" && swift build -c release -q 2>&1 | tail -20 && .build/release/consumer)
echo "install checks: pip, pkg-config, CMake and SwiftPM consumers built and ran"
