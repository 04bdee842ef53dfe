#!/usr/bin/env bash
# Instruction counts of odma::allocator<constant, fixed, host> and of the hand-written
# equivalent on the same operations (bench_zero_overhead --odma_callgrind), and their ratio.
# Instruction counts do not depend on machine load, so this is the repeatable form of the
# zero-overhead figure.
#
#   bench/callgrind_ratio.sh [BENCH_BINARY] [OPS] [MAX_RATIO]
#
# Exits 77 (ctest: skipped) without valgrind, 1 if the ratio exceeds MAX_RATIO (if given).
set -euo pipefail
bin="${1:-build/dev/bench/odma_bench_zero_overhead}"
ops="${2:-200000}"
max_ratio="${3:-}"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind not found (Debian: valgrind); skipped"
    exit 77
fi
count() {
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \
        "$bin" --odma_callgrind="$1" --odma_ops="$ops" 2>&1 |
        sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
}
odma=$(count odma)
hand=$(count hand)
if [ -z "$odma" ] || [ -z "$hand" ] || [ "$hand" -eq 0 ]; then
    echo "no instruction count (is $bin built with valgrind/callgrind.h?)"
    exit 1
fi
awk -v o="$odma" -v h="$hand" -v n="$ops" -v max="$max_ratio" 'BEGIN {
    r = o / h
    printf "instructions for %d operations: odma %d (%.1f/op), hand-written %d (%.1f/op); ratio %.3f\n", n, o, o / n, h, h / n, r
    if (max != "" && r > max) { printf "ratio above %s\n", max; exit 1 }
}'
