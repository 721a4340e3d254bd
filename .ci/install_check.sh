#!/bin/sh
# Install check (CI runs it after `make test`): installs libsn into a scratch DESTDIR with
# PREFIX=/usr/local, builds docs/example.c (the README's example) against the installed copy
# the way the README says, with `pkg-config --cflags --libs sn`, runs it on 2 unpinned cores
# and checks its output; links it with libsn.a too; checks the headers, libraries, sn.pc and the
# sample apps' binaries under bin/; installs again with another PREFIX to check that PREFIX
# reaches the paths and sn.pc; and checks that `make uninstall` leaves no file behind.
#
#   sh .ci/install_check.sh        (BUILD=dir to use another build folder; default build)
#
# Ends with "install_check: ok" and exit 0, or a message naming what failed and exit 1.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sn-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "install_check: FAILED: $*" >&2
    exit 1
}
step() {
    echo "install_check: $*"
}

# 1. Install into DESTDIR with the default layout.
dest=$tmp/root
prefix=/usr/local
step "make install DESTDIR=$dest PREFIX=$prefix"
make -s BUILD="$BUILD" install DESTDIR="$dest" PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install"; }
inc=$dest$prefix/include
lib=$dest$prefix/lib
bin=$dest$prefix/bin

for f in "$inc/sn.h" "$lib/libsn.a" "$lib/libsn.so" "$lib/libsn.so.0" "$lib/pkgconfig/sn.pc"; do
    [ -e "$f" ] || fail "missing ${f#"$dest"}"
done
for h in include/sn/*.h; do
    cmp -s "$h" "$inc/sn/${h#include/sn/}" || fail "header ${h#include/} not installed"
done
[ "$(readlink "$lib/libsn.so")" = libsn.so.0 ] || fail "libsn.so does not point at libsn.so.0"
soname=$(objdump -p "$lib/libsn.so.0" 2>/dev/null | awk '$1 == "SONAME" {print $2}')
[ -z "$soname" ] || [ "$soname" = libsn.so.0 ] || fail "SONAME is $soname, not libsn.so.0"

# 2. The sample apps' binaries under bin/, each one runnable.
napps=0
for m in apps/*/main.c; do
    [ -e "$m" ] || continue
    name=$(basename "$(dirname "$m")")
    [ -x "$bin/sn-$name" ] || fail "bin/sn-$name not installed"
    "$bin/sn-$name" --version >"$tmp/version.out" 2>&1 || fail "bin/sn-$name --version failed"
    napps=$((napps + 1))
done
step "$napps sample apps installed under $prefix/bin"

# 3. pkg-config finds the installed copy; the sysroot prefixes its -I and -L.
PKG_CONFIG_PATH=$lib/pkgconfig
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
pkg-config --exists sn || fail "pkg-config cannot find sn"
cflags=$(pkg-config --cflags sn)
libs=$(pkg-config --libs sn)
case " $cflags " in *" -I$inc "*) ;; *) fail "pkg-config --cflags sn gave '$cflags'" ;; esac
case " $libs " in *" -L$lib "*) ;; *) fail "pkg-config --libs sn gave '$libs'" ;; esac
v() { sed -n "s/^#define SN_VERSION_$1 \([0-9]*\)$/\1/p" include/sn/common.h; }
version=$(v MAJOR).$(v MINOR).$(v PATCH)
[ "$(pkg-config --modversion sn)" = "$version" ] || fail "sn.pc version is not $version"

# 4. The README's build line, plus warnings, and an rpath so the loader finds the staged .so.
cp docs/example.c "$tmp/example.c"
step "cc example.c \$(pkg-config --cflags --libs sn)"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split into words
"$CC" -Wall -Wextra -Werror "$tmp/example.c" $(pkg-config --cflags --libs sn) \
    -Wl,-rpath,"$lib" -o "$tmp/example" || fail "example does not build against the installed copy"
ldd "$tmp/example" | grep -q "libsn.so.0 => $lib/libsn.so.0" ||
    { ldd "$tmp/example"; fail "example is not linked against the installed libsn.so.0"; }
out=$("$tmp/example" --smp 2 --unpinned) || fail "example exited with $?"
[ "$out" = "2 cores answered, sum 3" ] || fail "example printed '$out'"
step "dynamic example: $out"

# 5. libsn.a instead of the .so, as the README shows: the archive, then its dependencies
#    (the Requires.private and Libs.private of sn.pc), linked against their shared libraries.
#    (`pkg-config --static` would also pull the dependencies' own private libraries, e.g.
#    hwloc's -ludev, which only a fully static build has.)
deps=$(pkg-config --print-requires-private sn | awk '{print $1}')
for d in liburing hwloc libxxhash; do
    echo "$deps" | grep -qx "$d" || fail "sn.pc's Requires.private lacks $d"
done
case " $(pkg-config --static --libs sn) " in
*" -lpthread "*" -lm "*) ;;
*) fail "pkg-config --static --libs sn lacks -lpthread -lm" ;;
esac
# shellcheck disable=SC2046,SC2086
"$CC" -Wall -Wextra -Werror "$tmp/example.c" $(pkg-config --cflags sn) "$lib/libsn.a" \
    $(pkg-config --libs $deps) -lpthread -lm -o "$tmp/example-static" ||
    fail "example does not link with libsn.a"
if ldd "$tmp/example-static" | grep -q libsn; then fail "static example still needs libsn.so"; fi
out=$("$tmp/example-static" --smp 2 --unpinned) || fail "static example exited with $?"
[ "$out" = "2 cores answered, sum 3" ] || fail "static example printed '$out'"
step "example with libsn.a: $out"

# 6. Uninstall leaves no file (directories made by install may stay, as with automake).
make -s BUILD="$BUILD" uninstall DESTDIR="$dest" PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log"; fail "make uninstall"; }
left=$(find "$dest" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
step "make uninstall removed every file"

# 7. Another PREFIX (and LIBDIR under it) reaches the paths and sn.pc.
dest2=$tmp/root2
make -s BUILD="$BUILD" install DESTDIR="$dest2" PREFIX=/opt/sn >"$tmp/install2.log" 2>&1 ||
    { cat "$tmp/install2.log"; fail "make install PREFIX=/opt/sn"; }
for f in lib/libsn.so.0 include/sn.h; do
    [ -e "$dest2/opt/sn/$f" ] || fail "PREFIX=/opt/sn did not install /opt/sn/$f"
done
[ "$(find "$dest2/opt/sn/bin" -name 'sn-*' | wc -l)" -eq "$napps" ] ||
    fail "PREFIX=/opt/sn did not install the $napps apps under /opt/sn/bin"
pc=$dest2/opt/sn/lib/pkgconfig/sn.pc
for line in prefix=/opt/sn libdir=/opt/sn/lib includedir=/opt/sn/include; do
    grep -qx "$line" "$pc" || fail "sn.pc lacks '$line': $(cat "$pc")"
done
[ -z "$(find "$dest2" ! -type d ! -path "$dest2/opt/sn/*")" ] || fail "files outside PREFIX"
make -s BUILD="$BUILD" uninstall DESTDIR="$dest2" PREFIX=/opt/sn >/dev/null 2>&1 ||
    fail "make uninstall PREFIX=/opt/sn"
left=$(find "$dest2" ! -type d)
[ -z "$left" ] || fail "make uninstall PREFIX=/opt/sn left: $left"
step "PREFIX=/opt/sn installed there and uninstalled cleanly"

echo "install_check: ok"
