#!/usr/bin/env bash
# Runs the libFuzzer target for a bounded time, starting from the committed corpus, and fails
# on any finding (libFuzzer exits non-zero and leaves the input as crash-*/leak-*/timeout-*).
#
#   tests/fuzz/run.sh [SECONDS] [FUZZER]      defaults: 60, build/fuzz/tests/fuzz/odma_fuzz_allocator
#
# Build the fuzzer first: cmake --preset fuzz && cmake --build --preset fuzz
# New inputs it finds go to a scratch directory, never into the repository; to grow the
# committed corpus, minimise into it: FUZZER -merge=1 tests/fuzz/corpus SCRATCH_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
fuzzer="${2:-$here/../../build/fuzz/tests/fuzz/odma_fuzz_allocator}"
artifacts="${ODMA_FUZZ_ARTIFACTS:-$(dirname "$fuzzer")/findings}"
mkdir -p "$artifacts"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "fuzzing for ${seconds} s: $fuzzer (findings go to $artifacts/)"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch" "$here/corpus" || status=$?
if [ "$status" -ne 0 ]; then
    echo "FUZZER FOUND A PROBLEM (exit $status); reproduce with: $fuzzer $artifacts/<file>"
    ls -l "$artifacts"
fi
exit "$status"
