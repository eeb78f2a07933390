#!/usr/bin/env bash
# Installs what naq needs, builds it with warnings as errors and runs every
# test (unit and integration; the integration tests start their own
# nats-server processes).
#   scripts/test.sh              RelWithDebInfo build in build/
#   scripts/test.sh --sanitize   Debug + AddressSanitizer + UBSan in build-sanitize/
#   scripts/test.sh --debug      Debug build in build-debug/
#   scripts/test.sh --release    Release (-O3) build with Debian's hardening
#                                flags (_FORTIFY_SOURCE, ...) in build-release/
#   scripts/test.sh --clang      Release (-O3) build with clang in build-clang/
#   scripts/test.sh --unit ...   only the tests that start no server (ctest -L unit)
#   scripts/test.sh -R worker    other arguments go to ctest
# .ci/run runs a matrix of these.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
cmake_flags=(-DNAQ_WERROR=ON)
ctest_flags=()
deps=()
while (($# > 0)); do
    case "$1" in
    --sanitize)
        build=build-sanitize
        cmake_flags+=(-DNAQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
        # Fail on the first report; leaks are reports too.
        export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
        export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
        ;;
    --debug)
        build=build-debug
        cmake_flags+=(-DCMAKE_BUILD_TYPE=Debug)
        ;;
    --release)
        build=build-release
        # What a Debian packager's build adds; _FORTIFY_SOURCE finds
        # ignored results that plain -O3 does not.
        hardening="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)"
        hardening+=" $(dpkg-buildflags --get CPPFLAGS)"
        cmake_flags+=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=$hardening")
        ;;
    --clang)
        build=build-clang
        cmake_flags+=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang)
        deps+=(clang)
        ;;
    --unit) ctest_flags+=(-L unit) ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
        exit 0
        ;;
    *) break ;;
    esac
    shift
done

scripts/install-deps.sh "${deps[@]}"
cmake -S . -B "$build" "${cmake_flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j2 "${ctest_flags[@]}" "$@"
