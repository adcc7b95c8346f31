#!/usr/bin/env bash
# Fuzzes the checkpoint loaders (Tests/Fuzz/checkpoint_fuzz.c) with libFuzzer for the given number
# of seconds (default 60): the library is built with AddressSanitizer and coverage instrumentation
# in .build-fuzz, the corpus starts from valid checkpoints. Exits nonzero on a crash, a sanitizer
# report or a leak; the input that caused it is left in .build-fuzz/ (crash-*, leak-*).
#     scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/setup.sh
out=.build-fuzz
swift build -c release -q --scratch-path "$out" --product kfacpinn \
    -Xswiftc -sanitize=fuzzer,address
scripts/soname-link.sh "$out/release"
clang -g -O1 -fsanitize=fuzzer,address -Iinclude Tests/Fuzz/checkpoint_fuzz.c -o "$out/checkpoint_fuzz" \
    -L"$out/release" -lkfacpinn -Wl,-rpath,"$PWD/$out/release"
corpus=$out/corpus
rm -rf "$corpus"
mkdir -p "$corpus"
cd "$out"
KFP_FUZZ_SEEDS=corpus ./checkpoint_fuzz -runs=0 corpus > /dev/null 2>&1
echo "fuzzing the checkpoint loaders for $seconds s from $(ls corpus | wc -l) seed checkpoints"
status=0
./checkpoint_fuzz -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 corpus > fuzz.log 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    echo "FAILED (status $status); the report, in $out/fuzz.log:"
    grep -E "runtime failure|Fatal error|ERROR:|SUMMARY|Test unit written| at /.*\.swift:| at /.*\.c:" fuzz.log | head -40
    exit 1
fi
grep -E "^Done|^stat::" fuzz.log
