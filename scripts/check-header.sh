#!/usr/bin/env bash
# Checks include/kfacpinn.h: it is what the generator produces, it compiles as
# strict C99 (gcc, clang) and as C++, and it declares exactly the functions
# that libkfacpinn.so exports. Run after `swift build -c release`.
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
readelf -d .build/release/libkfacpinn.so | grep -q 'SONAME.*\[libkfacpinn.so\]' || { echo "libkfacpinn.so has no SONAME"; exit 1; }
echo "header check: $(wc -l < "$tmp/declared") functions declared and exported; gcc, clang and g++ compile it"
