#!/usr/bin/env bash
# test_package: scripts/package.sh builds a Debian package that, unpacked
# into a temporary root (dpkg -x), holds a naq that runs and tells the
# project's version, the shared and static library, the headers, naq.pc
# and the man page.
#   tests/test_package.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: test_package.sh SOURCE_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naq-test-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "test_package: FAILED: $*" >&2
    exit 1
}

# One compile job: this runs next to the other tests, some of them timed.
deb=$("$src/scripts/package.sh" --out "$tmp/out" --jobs 1 | tail -n 1)
[[ -f "$deb" ]] || fail "scripts/package.sh printed no package path ($deb)"
dpkg -x "$deb" "$tmp/root"

version=$(sed -n 's/^project(naq VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
out=$("$tmp/root/usr/bin/naq" --version) || fail "naq --version exited $?"
[[ "$out" == "naq $version "* ]] || fail "naq --version printed '$out', want 'naq $version ...'"

arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in usr/lib/"$arch"/libnaq.so.0 usr/lib/"$arch"/libnaq.so usr/lib/"$arch"/libnaq.a \
    usr/lib/"$arch"/pkgconfig/naq.pc usr/include/naq/naq.h usr/share/man/man1/naq.1.gz \
    usr/share/doc/naq/README.md.gz; do
    [[ -e "$tmp/root/$f" ]] || fail "the package has no /$f"
done
# The package records the library's SONAME for programs built against it.
dpkg-deb -I "$deb" shlibs | grep -q '^libnaq 0 naq' || fail "no shlibs entry for libnaq.so.0"
echo "test_package: $deb unpacks to a naq that says: $out"
