#!/usr/bin/env bash
# Installs what naq needs, builds it and runs every test (unit and
# integration; the integration tests start their own nats-server processes).
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-sanitize/
#   scripts/test.sh -R worker    extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
cmake_flags=()
if [[ "${1:-}" == "--sanitize" ]]; then
    shift
    build=build-sanitize
    cmake_flags+=(-DNAQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
    # Fail on the first report; leaks are reports too.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

scripts/install-deps.sh
cmake -S . -B "$build" "${cmake_flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j2 "$@"
