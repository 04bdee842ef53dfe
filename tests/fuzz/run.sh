#!/usr/bin/env bash
# Runs the libFuzzer targets for a bounded time each, starting from the committed corpus, and
# fails on any finding (libFuzzer exits non-zero and leaves the input as crash-*/leak-*/timeout-*).
#
#   tests/fuzz/run.sh [SECONDS] [FUZZER]
#
# Without FUZZER: build/fuzz/tests/fuzz/odma_fuzz_allocator, then odma_fuzz_capi (the C
# interface), SECONDS each (default 60). With FUZZER: that one only.
#
# Build the fuzzers first: cmake --preset fuzz && cmake --build --preset fuzz
# New inputs they find go to a scratch directory, never into the repository; to grow the
# committed corpus, minimise into it: FUZZER -merge=1 tests/fuzz/corpus SCRATCH_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
if [ $# -ge 2 ]; then
    fuzzers=("$2")
else
    fuzzers=("$here/../../build/fuzz/tests/fuzz/odma_fuzz_allocator"
             "$here/../../build/fuzz/tests/fuzz/odma_fuzz_capi")
fi

status=0
for fuzzer in "${fuzzers[@]}"; do
    artifacts="${ODMA_FUZZ_ARTIFACTS:-$(dirname "$fuzzer")/findings}"
    mkdir -p "$artifacts"
    scratch="$(mktemp -d)"
    echo "fuzzing for ${seconds} s: $fuzzer (findings go to $artifacts/)"
    one=0
    "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch" "$here/corpus" || one=$?
    rm -rf "$scratch"
    if [ "$one" -ne 0 ]; then
        echo "FUZZER FOUND A PROBLEM (exit $one); reproduce with: $fuzzer $artifacts/<file>"
        ls -l "$artifacts"
        status=$one
    fi
done
exit "$status"
