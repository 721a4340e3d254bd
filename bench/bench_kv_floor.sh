#!/bin/sh
# bench/bench_kv_floor.sh: how far one request in flight can go on this machine. sn-kv,
# memcached and bench/kv_floor (a server that does only the socket work: the same io_uring
# calls as sn-kv's reactors, no store, no framework, no cross-core work) in one run, each on
# both CPUs (sn-kv --smp 2, kv_floor --smp 2, memcached -t 2), driven in turn by the same
# bench_kv_client row as bench_kv.sh's get90d1 (64 connections, depth 1, get/set 90/10, the
# client's epoll loop, unpinned; --uring with FLOOR_BENCH_URING=1).
#
# Per server: ops/s, its CPU-s per million ops, the client's CPU per op against it, and the
# CPU bound 2e6 / (client us + server us): the rate if both CPUs did nothing but this
# client's and this server's work per request, never idle. Ratios are medians of per-round
# ratios; the order of the three rotates each round.
# Ends with: summary: floor_ratio_vs_memcached= kv_ratio_vs_memcached= kv_ratio_vs_floor=
#   floor_bound_ratio_vs_memcached= kv_bound_ratio_vs_memcached= (a bound ratio: that server's
#   CPU bound over memcached's measured rate).
#
# Environment: BUILD (default build), KV_BENCH_SECS (2), KV_BENCH_ROUNDS (5), KV_ARGS (extra
# sn-kv options), FLOOR_ARGS (extra kv_floor options, e.g. "--poll-us 200"),
# FLOOR_BENCH_URING=1. Everything it starts is stopped on exit, also on failure or interrupt.
set -u
BENCH_NAME=bench_kv_floor
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/kv_common.sh"
SECS=${KV_BENCH_SECS:-2}
ROUNDS=${KV_BENCH_ROUNDS:-5}
KV_ARGS=${KV_ARGS:-}
FLOOR_ARGS=${FLOOR_ARGS:-}
FLOOR=$B/bench/kv_floor
[ -x "$FLOOR" ] || fail "$FLOOR is not built (make BUILD=$BUILD benches)"
# The CPU bound counts two CPUs: with more, the client would have one of its own.
[ "$(nproc)" = 2 ] || fail "needs exactly 2 CPUs (its CPU bound assumes them)"
ROW="--conns 64 --depth 1 --get-pct 90"
[ "${FLOOR_BENCH_URING:-0}" = 1 ] && ROW="$ROW --uring"

trap stop_started EXIT
trap 'exit 130' INT TERM

KPORT=$("$CLIENT" --free-port)
FPORT=$("$CLIENT" --free-port)
MPORT=$("$CLIENT" --free-port)
"$KV" --smp 2 --port "$KPORT" -m 256 -c 4096 -q $KV_ARGS &
KPID=$!
"$FLOOR" --smp 2 --port "$FPORT" --value-size "$VSIZE" $FLOOR_ARGS &
FPID=$!
memcached $MCUSER -t 2 -m 256 -c 4096 -l 127.0.0.1 -p "$MPORT" -U 0 &
MPID=$!
PIDS="$KPID $FPID $MPID"
for p in "$KPORT" "$FPORT" "$MPORT"; do
    "$CLIENT" --port "$p" --wait-port || fail "the server on port $p did not start"
    "$CLIENT" --port "$p" --preload --keys "$KEYS" --value-size "$VSIZE" --conns 4 \
        --depth 64 >/dev/null || fail "preload of port $p failed"
done

# measure WHO: one run against kv, floor or mc; appends to that server's lists.
measure() {
    case $1 in
    kv) pid=$KPID port=$KPORT ;;
    floor) pid=$FPID port=$FPORT ;;
    *) pid=$MPID port=$MPORT ;;
    esac
    # shellcheck disable=SC2086
    run_one "$pid" "$port" no $ROW
    eval "OPS_$1=$OPS CPM_$1=$CPM CUS_$1=$CUS"
    eval "L_OPS_$1=\"\${L_OPS_$1:-} $OPS\" L_CPM_$1=\"\${L_CPM_$1:-} $CPM\" L_CUS_$1=\"\${L_CUS_$1:-} $CUS\""
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
bound() { awk -v c="$1" -v s="$2" 'BEGIN {printf "%.0f", 2e6 / (c + s)}'; }

echo "bench_kv_floor: sn-kv, kv_floor and memcached $(memcached -V 2>/dev/null | awk '{print $2}')" \
    "on both CPUs, bench_kv_client $ROW, ${SECS}s runs, $ROUNDS rounds"
[ -n "$KV_ARGS" ] && echo "sn-kv options: $KV_ARGS"
[ -n "$FLOOR_ARGS" ] && echo "kv_floor options: $FLOOR_ARGS"
R_FM="" R_KM="" R_KF="" R_FB="" R_KB=""
i=0
while [ $i -lt "$ROUNDS" ]; do
    case $((i % 3)) in
    0) order="kv floor mc" ;;
    1) order="floor mc kv" ;;
    *) order="mc kv floor" ;;
    esac
    for who in $order; do measure "$who"; done
    R_FM="$R_FM $(ratio "$OPS_floor" "$OPS_mc")"
    R_KM="$R_KM $(ratio "$OPS_kv" "$OPS_mc")"
    R_KF="$R_KF $(ratio "$OPS_kv" "$OPS_floor")"
    R_FB="$R_FB $(ratio "$(bound "$CUS_floor" "$CPM_floor")" "$OPS_mc")"
    R_KB="$R_KB $(ratio "$(bound "$CUS_kv" "$CPM_kv")" "$OPS_mc")"
    i=$((i + 1))
done

printf '  %-9s %10s %12s %12s %12s\n' server ops/s "cpu-s/M" "client us" "CPU bound"
for who in kv floor mc; do
    eval "o=\$L_OPS_$who c=\$L_CPM_$who u=\$L_CUS_$who"
    mc=$(median $c) mu=$(median $u)
    case $who in kv) name=sn-kv ;; floor) name=kv_floor ;; *) name=memcached ;; esac
    printf '  %-9s %10s %12s %12s %12s\n' "$name" "$(median $o)" "$mc" "$mu" "$(bound "$mu" "$mc")"
done
echo "  kv_floor / memcached:$R_FM"
echo "  sn-kv / memcached:   $R_KM"
echo "  sn-kv / kv_floor:    $R_KF"
echo "  CPU bound / memcached's rate: kv_floor$R_FB; sn-kv$R_KB"
echo "summary: floor_ratio_vs_memcached=$(median $R_FM) kv_ratio_vs_memcached=$(median $R_KM)" \
    "kv_ratio_vs_floor=$(median $R_KF) floor_bound_ratio_vs_memcached=$(median $R_FB)" \
    "kv_bound_ratio_vs_memcached=$(median $R_KB)"
