#!/bin/sh
# bench/kv_common.sh: what the kv benchmarks share. Sourced, never run (the
# name does not match bench_*.sh, so `make bench` does not run it). Before sourcing, set
# BENCH_NAME (for messages) and ROOT (the repository). Defines the binaries both drive (KV,
# CLIENT, from BUILD), KEYS, VSIZE, CLK, MCUSER; fail; checks that the binaries are built and
# memcached installed; PIDS, the processes a benchmark started, and stop_started, which
# stops them; the readers ticks (CPU ticks of a process), median and field (one key=value
# of bench_kv_client's output line); and run_one, one timed run of the client. Sourced by
# bench_kv.sh, bench_kv_floor.sh and bench_proxy.sh.
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
KV=${KV_BIN:-$B/bin/sn-kv} # KV_BIN: another server with sn-kv's options (bench/kv_floor)
CLIENT=$B/bench/bench_kv_client
KEYS=100000
VSIZE=100
CLK=$(getconf CLK_TCK)

fail() { echo "$BENCH_NAME: $*" >&2; exit 1; }
[ -x "$KV" ] || fail "$KV is not built (make BUILD=$BUILD apps, or benches for bench/kv_floor)"
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

# run_one PID PORT PIN ARGS...: one timed run of bench_kv_client (SECS seconds, KEYS keys of
# VSIZE bytes; PIN=yes pins it on CPU 1); sets OPS (ops/s), CPM (the server's CPU-s per
# Mops) and CUS (the client's own CPU per op in us, as it prints it).
run_one() {
    pid=$1 port=$2 pin=$3
    shift 3
    t0=$(ticks "$pid")
    if [ "$pin" = yes ]; then
        out=$("$CLIENT" --cpu 1 --port "$port" --keys "$KEYS" --value-size "$VSIZE" --secs "$SECS" "$@")
    else
        out=$("$CLIENT" --port "$port" --keys "$KEYS" --value-size "$VSIZE" --secs "$SECS" "$@")
    fi
    rc=$?
    t1=$(ticks "$pid")
    [ $rc = 0 ] || fail "client failed against port $port: $out"
    [ "$(field errors "$out")" = 0 ] && [ "$(field misses "$out")" = 0 ] ||
        fail "wrong answers from port $port: $out"
    OPS=$(field ops_per_s "$out")
    CUS=$(field cpu_us_per_op "$out")
    n=$(field ops "$out")
    [ "${n:-0}" -gt 0 ] || fail "no op answered by port $port: $out"
    CPM=$(awk -v t="$((t1 - t0))" -v c="$CLK" -v n="$n" 'BEGIN {printf "%.3f", t / c / (n / 1e6)}')
}
