#!/bin/sh
# bench/kv_common.sh: what bench_kv.sh and bench_proxy.sh share. Sourced, never run (the
# name does not match bench_*.sh, so `make bench` does not run it). Before sourcing, set
# BENCH_NAME (for messages) and ROOT (the repository). Defines the binaries both drive (KV,
# CLIENT, from BUILD), KEYS, VSIZE, CLK, MCUSER; fail; checks that the binaries are built and
# memcached installed; PIDS, the processes a benchmark started, and stop_started, which
# stops them; and the readers ticks (CPU ticks of a process), median and field (one
# key=value of bench_kv_client's output line).
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
KV=$B/bin/sn-kv
CLIENT=$B/bench/bench_kv_client
KEYS=100000
VSIZE=100
CLK=$(getconf CLK_TCK)

fail() { echo "$BENCH_NAME: $*" >&2; exit 1; }
[ -x "$KV" ] || fail "$KV is not built (make BUILD=$BUILD apps)"
[ -x "$CLIENT" ] || fail "$CLIENT is not built (make BUILD=$BUILD benches)"
sh "$ROOT/.ci/deps.sh" --check memcached || fail "memcached is not installed"
command -v memcached >/dev/null 2>&1 || fail "memcached is not on PATH"

PIDS=""
stop_started() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
}

# memcached refuses to run as root without -u.
MCUSER=""
[ "$(id -u)" = 0 ] && MCUSER="-u nobody"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
