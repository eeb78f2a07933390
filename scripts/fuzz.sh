#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with ASan and UBSan) and runs
# each for SECONDS (default 60) on its seed corpus (fuzz/corpus/<target>/).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# New interesting inputs go to build-fuzz/corpus/<target>/ (not the repo).
# A crash stops with exit 1 and leaves its input in build-fuzz/artifacts/;
# fix it, then keep the input as a regression seed in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (SECONDS: a whole number >= 1)" >&2
    exit 2
fi
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(fuzz_job fuzz_event fuzz_cron fuzz_duration fuzz_spool fuzz_envelope fuzz_batch fuzz_web)
fi
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang is missing; run scripts/install-deps.sh" >&2
    exit 1
fi

build=build-fuzz
cmake -S . -B "$build" -DNAQ_FUZZ=ON -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null

mkdir -p "$build/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
for t in "${targets[@]}"; do
    seeds=fuzz/corpus/$t
    work=$build/corpus/$t
    mkdir -p "$work"
    log=$build/$t.log
    # The work dir comes first: libFuzzer adds new inputs to the first one.
    if "$build/fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$t-" \
        "$work" "$seeds" >"$log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 || true)
        echo "fuzz: $t ok (${runs:-done} in ${seconds}s)"
    else
        failed=1
        echo "fuzz: $t FAILED; the input is in $build/artifacts/, the log in $log:" >&2
        grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x' "$log" | head -30 >&2 || tail -30 "$log" >&2
    fi
done
exit $failed
