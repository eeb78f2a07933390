#!/usr/bin/env bash
# Installs the Debian packages naq needs to build, test and run, when they are
# missing. Idempotent: when everything is present it only runs dpkg-query and
# prints one line. Uses sudo only when not root.
#   scripts/install-deps.sh           what building and testing need
#   scripts/install-deps.sh clang     ... and more packages (CI adds clang)
set -euo pipefail

packages=(
    build-essential   # gcc, make, libc headers
    cmake
    pkg-config
    nats-server       # the server: `naq server`, integration tests
    libnats-dev       # nats.c, the client
    libjansson-dev    # JSON
    libcmocka-dev     # tests
    libncurses-dev    # live terminal view
    tmux
    jq
    procps
    tzdata            # zoneinfo for schedules in named time zones
    openssl           # tests: a throwaway certificate for a TLS server
    debhelper         # scripts/package.sh (its test runs in scripts/test.sh)
    dpkg-dev
    fakeroot
    libssl-dev        # TLS diagnosis and NKeys (src/core/security.c, src/core/nkey.c)
    clang             # libFuzzer targets (scripts/fuzz.sh)
    libmicrohttpd-dev # the Prometheus metrics endpoints (naq metrics, --metrics)
    prometheus        # promtool and a real Prometheus for the metrics tests
    libcurl4-openssl-dev # webhooks (naq events webhook)
    libsodium-dev     # payload encryption, NAQ_ENCRYPTION_KEY_FILE (src/core/crypt.c)
    chromium          # tests: naq web's pages in a real headless browser (tests/web/)
    nodejs            # tests: drives chromium over its DevTools pipe (tests/web/browser.mjs)
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "naq: all build dependencies present"
    exit 0
fi

echo "naq: installing: ${missing[*]}"
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "naq: not root and sudo is missing; as root run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/naq-install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1 ||
    ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "naq: installing ${missing[*]} failed (apt-get output above)" >&2
    exit 1
fi
echo "naq: installed: ${missing[*]}"
