#!/usr/bin/env bash
# Builds the Debian package naq_<version>_<arch>.deb with dpkg-buildpackage
# from a clean copy of this tree (debian/ holds the packaging), and prints
# its path. Install it with `apt install ./naq_*.deb`: the naq command,
# libnaq.so.0 and libnaq.a, the headers, naq.pc, naq(1) and the docs.
#   scripts/package.sh                  the .deb goes to build-package/
#   scripts/package.sh --out DIR        ... to DIR
#   scripts/package.sh --jobs N         compile with N jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$src/build-package
jobs=$(nproc)
while (($# > 0)); do
    case "$1" in
    --out)
        out=${2:?--out needs a directory}
        shift
        ;;
    --jobs)
        jobs=${2:?--jobs needs a number}
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
        exit 0
        ;;
    *)
        echo "naq package: unknown argument '$1'; see scripts/package.sh --help" >&2
        exit 2
        ;;
    esac
    shift
done

# The package version (debian/changelog) must be the one naq --version and
# naq.pc tell (CMakeLists.txt project()).
cmake_version=$(sed -n 's/^project(naq VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(sed -n '1s/^naq (\([^)]*\)).*/\1/p' debian/changelog)
if [[ "$deb_version" != "$cmake_version" ]]; then
    echo "naq package: debian/changelog says $deb_version but CMakeLists.txt $cmake_version;" \
        "add a debian/changelog entry for $cmake_version" >&2
    exit 1
fi

scripts/install-deps.sh

# dpkg-buildpackage writes next to the source tree, so build in a scratch
# copy without build directories or git metadata.
work=$(mktemp -d "${TMPDIR:-/tmp}/naq-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/naq-$cmake_version
mkdir "$tree"
tar -C "$src" --exclude='./build' --exclude='./build-*' --exclude='./.git' -cf - . |
    tar -C "$tree" -xf -

log=$work/build.log
if ! (cd "$tree" && dpkg-buildpackage -b -us -uc -j"$jobs") >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "naq package: dpkg-buildpackage failed (the end of its log is above)" >&2
    exit 1
fi
mkdir -p "$out"
deb=$(ls "$work"/naq_"$cmake_version"_*.deb)
cp "$deb" "$out/"
echo "$out/$(basename "$deb")"
