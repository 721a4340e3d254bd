#!/bin/sh
# Builds a program against this checkout without `make install`, through the uninstalled
# pkg-config file the build writes ($BUILD/sn-uninstalled.pc), and runs it:
#   - docs/example.c (the README's example) with
#     `PKG_CONFIG_PATH=$BUILD pkg-config --cflags --libs sn-uninstalled`, -Wall -Wextra
#     -Werror, must be linked against $BUILD/libsn.so.0, run without LD_LIBRARY_PATH, and
#     print "2 cores answered, sum 3" on 2 unpinned cores;
#   - plain `pkg-config sn` with $BUILD on the path finds the same file (pkg-config prefers
#     NAME-uninstalled.pc);
#   - the version pkg-config reports is SN_VERSION_STRING in the headers and sn_version() in
#     the library (the version is written once, in include/sn/common.h).
# `make test` runs it with BUILD, CC and SAN_FLAGS (the sanitizer flags of that build, so
# the program links with the instrumented library).
#
# Ends with "check_uninstalled_pc: ok" and exit 0, or a message naming what failed and exit 1.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
SAN_FLAGS=${SAN_FLAGS:-}
build=$(cd "$BUILD" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sn-uninstalled.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
    echo "check_uninstalled_pc: FAILED: $*" >&2
    exit 1
}

[ -f "$build/sn-uninstalled.pc" ] || fail "$BUILD/sn-uninstalled.pc is missing (make lib)"
PKG_CONFIG_PATH=$build
export PKG_CONFIG_PATH
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_DISABLE_UNINSTALLED 2>/dev/null || true

flags=$(pkg-config --cflags --libs sn-uninstalled) || fail "pkg-config cannot read sn-uninstalled"
case " $flags " in
*" -I$(pwd)/include "*) ;;
*) fail "pkg-config --cflags sn-uninstalled does not point at $(pwd)/include: $flags" ;;
esac

# shellcheck disable=SC2086 # the flags are words
"$CC" $SAN_FLAGS -Wall -Wextra -Werror docs/example.c $flags -o "$tmp/example" ||
    fail "docs/example.c does not build with pkg-config sn-uninstalled"
ldd "$tmp/example" | grep -q "libsn.so.0 => $build/libsn.so.0" ||
    { ldd "$tmp/example"; fail "example is not linked against $BUILD/libsn.so.0"; }
out=$(env -u LD_LIBRARY_PATH "$tmp/example" --smp 2 --unpinned) || fail "example exited with $?"
[ "$out" = "2 cores answered, sum 3" ] || fail "example printed '$out'"
echo "check_uninstalled_pc: example built with pkg-config sn-uninstalled: $out"

[ "$(pkg-config --variable=libdir sn)" = "$build" ] ||
    fail "pkg-config sn with $BUILD on PKG_CONFIG_PATH does not pick sn-uninstalled.pc"

cat >"$tmp/version.c" <<'EOF'
#include <sn.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    printf("%s\n", SN_VERSION_STRING);
    return strcmp(sn_version(), SN_VERSION_STRING) != 0;
}
EOF
# shellcheck disable=SC2086
"$CC" $SAN_FLAGS -Wall -Wextra -Werror "$tmp/version.c" $flags -o "$tmp/version" ||
    fail "a program printing SN_VERSION_STRING does not build"
header=$("$tmp/version") || fail "sn_version() is not SN_VERSION_STRING ($header)"
pc=$(pkg-config --modversion sn-uninstalled)
[ "$header" = "$pc" ] || fail "the headers say version $header, sn-uninstalled.pc says $pc"
echo "check_uninstalled_pc: version $pc in the headers, sn_version() and the .pc file"
echo "check_uninstalled_pc: ok"
