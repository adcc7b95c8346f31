#!/usr/bin/env bash
# Checks include/kfacpinn.h (and bindings/python/kfacpinn/_abi.py): they are what the
# generator produces, the header compiles as strict C99 (gcc, clang) and as C++, it
# declares exactly the functions that libkfacpinn.so exports, and its example builds
# with its own link line in another directory and runs. Run after `swift build -c release`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/generate-header.py --check
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '#include "kfacpinn.h"\nint main(void) { return kfp_version_number() > 0 ? 0 : 1; }\n' > "$tmp/h.c"
cp "$tmp/h.c" "$tmp/h.cpp"
gcc -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c "$tmp/h.c" -o "$tmp/gcc.o"
clang -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c "$tmp/h.c" -o "$tmp/clang.o"
g++ -Wall -Wextra -Werror -Iinclude -c "$tmp/h.cpp" -o "$tmp/gpp.o"
# Declared functions vs. exported (GLOBAL, defined) dynamic symbols.
grep -oE '\bkfp_[a-z0-9_]+\(' include/kfacpinn.h | tr -d '(' | sort -u > "$tmp/declared"
readelf --dyn-syms -W .build/release/libkfacpinn.so | awk '$5 == "GLOBAL" && $7 != "UND" {print $8}' | sed 's/@.*//' | sort -u > "$tmp/exported"
if ! diff "$tmp/declared" "$tmp/exported" > "$tmp/diff"; then
    echo "header declarations and exported symbols differ (< header only, > library only):"; cat "$tmp/diff"; exit 1
fi
major=$(sed -n 's/^#define KFP_VERSION_MAJOR \([0-9]*\)$/\1/p' include/kfacpinn.h)
readelf -d .build/release/libkfacpinn.so | grep -c "SONAME.*\[libkfacpinn.so.$major\]" > /dev/null || { echo "libkfacpinn.so's SONAME is not libkfacpinn.so.$major"; exit 1; }
scripts/soname-link.sh
# The header's example, built with its own link line in another directory and run from /.
python3 - "$tmp/example.c" <<'PY'
import sys
h = open("include/kfacpinn.h").read()
lines = h[h.index(" *     #include <stdio.h>"):h.index(" * Build against an installation")].splitlines()
open(sys.argv[1], "w").write("\n".join(l[7:] if l.startswith(" *     ") else "" for l in lines) + "\n")
PY
link=$(grep -o 'cc prog.c -I"$KFP.*' include/kfacpinn.h | sed 's/^cc prog.c //')
(cd "$tmp" && KFP="$OLDPWD" eval "cc -std=c99 -Wall -Wextra -Werror example.c $link -o example")
(cd / && "$tmp/example") | grep -c "L2 error" > /dev/null || { echo "the header's example did not train"; exit 1; }
echo "header check: $(wc -l < "$tmp/declared") functions declared and exported; gcc, clang and g++ compile it; its example runs"
