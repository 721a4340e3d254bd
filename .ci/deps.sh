#!/bin/sh
# The Debian packages libsn needs, grouped by the make target that needs them. Each group
# includes the ones it builds on (test includes tests, which includes lib):
#
#   lib      make lib, apps, install: a C compiler, pkg-config, liburing, hwloc, xxHash
#   tests    building the tests (make tests): + Criterion, g++ (tests/cxx_api.cc), libmemcached
#            (tests/test_ketama_libmemcached.c checks ketama against it)
#   test     running them (make test, asan, tsan): + the programs the tests drive (curl,
#            memccapable, memcached, the Python memcached clients, nutcracker)
#   benches  building the benchmarks (make benches): + Concurrency Kit, libmemcached,
#            boost.context
#   bench    running them (make bench): + the peers (nginx, wrk, memcached, iperf3, nutcracker),
#            gnuplot for the report's plots, and perf for bench/kv_where_depth1.sh
#   fuzz     make fuzz: + clang and the libFuzzer runtime of that clang version
#   all      everything above
#
# Usage: sh .ci/deps.sh [--check] [GROUP...] [PACKAGE...]
#   No GROUP and no PACKAGE means all. Words that are not group names are Debian packages.
#   Without --check: installs whatever is missing with apt-get (as root; otherwise prints the
#   command to run and fails). Quiet when everything is there.
#   --check: never installs. Prints what is missing and the command that installs it, and
#   exits 1; exits 0 when everything is there (also on a system without dpkg, where it cannot
#   tell: the compiler will say what is missing).
set -eu

check=""
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi

# The libFuzzer runtime ships per clang version (Debian 12: clang 14, libclang-rt-14-dev).
clang_rt() {
    v=$(clang -dumpversion 2>/dev/null | cut -d. -f1) || v=""
    if [ -z "$v" ]; then
        v=$(apt-cache depends clang 2>/dev/null |
            sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1) || v=""
    fi
    echo "libclang-rt-${v:-14}-dev"
}

group() {
    case $1 in
    lib) echo "build-essential pkg-config liburing-dev libhwloc-dev libxxhash-dev" ;;
    tests) echo "$(group lib) libcriterion-dev g++ libmemcached-dev" ;;
    test)
        echo "$(group tests) curl libmemcached-tools memcached python3-pymemcache" \
            "python3-pylibmc nutcracker"
        ;;
    benches) echo "$(group lib) libck-dev libmemcached-dev libboost-context-dev" ;;
    bench)
        echo "$(group benches) nginx-light wrk curl memcached iperf3 nutcracker gnuplot-nox" \
            "linux-perf"
        ;;
    fuzz) echo "$(group lib) clang $(clang_rt)" ;;
    all) echo "$(group test) $(group bench) $(group fuzz)" ;;
    *) return 1 ;;
    esac
}

want=""
groups=""
for w in "$@"; do
    if g=$(group "$w"); then
        want="$want $g"
        groups="$groups $w"
    else
        want="$want $w"
    fi
done
if [ $# -eq 0 ]; then
    want=$(group all)
    groups=" all"
fi
# One word per package, in first-seen order.
want=$(printf '%s\n' $want | awk 'NF && !seen[$1]++' | tr '\n' ' ')
what=${groups:+" for${groups}"}

if ! command -v dpkg-query >/dev/null 2>&1; then
    [ -n "$check" ] && exit 0
    echo "libsn: not a Debian system: install the equivalents of these packages$what:" >&2
    echo "       $want" >&2
    exit 1
fi

# One dpkg-query for all: "name ii " for each installed one; unknown names print nothing.
# shellcheck disable=SC2086 # one word per package
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $want 2>/dev/null |
    awk '$2 == "ii" {print $1}') || true
missing=""
for p in $want; do
    printf '%s\n' "$installed" | grep -qx "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo "
cmd="${sudo}apt-get update && ${sudo}apt-get install -y$missing"
if [ -n "$check" ] || [ -n "$sudo" ]; then
    echo "libsn: missing Debian packages$what:$missing" >&2
    echo "libsn: install them with:  $cmd" >&2
    exit 1
fi

echo "libsn: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt-get update -qq >"$log" 2>&1 || echo "libsn: apt-get update failed; trying the install anyway" >&2
# shellcheck disable=SC2086 # one word per package
if ! apt-get install -y -qq $missing >"$log" 2>&1; then
    cat "$log" >&2
    echo "libsn: apt-get install failed" >&2
    exit 1
fi
