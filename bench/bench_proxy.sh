#!/bin/sh
# bench/bench_proxy.sh: the same client through nutcracker (twemproxy) to two sn-kv instances
# and to two memcached instances, in one run, on loopback.
#
# One nutcracker process serves two pools (distribution ketama, hash fnv1a_64, one server
# connection each, as apps/kv/cluster/nutcracker.yml): "kv" in front of two sn-kv (--smp 1),
# "mc" in front of two memcached (-t 1). Both pools are preloaded with the same keys and
# driven in turn, in interleaved rounds, by bench_kv_client (16 connections, pipelined, every
# answer validated) with get/set 90/10 and 50/50. Nothing is pinned: on this 2-CPU machine the
# client, the proxy and both servers share the CPUs, which is the point: a proxy costs CPU
# that the servers then lack.
#
# CPU per process comes from /proc/<pid>/stat (utime + stime) around each run, as percent of
# one CPU over the run (200% = both CPUs); the client's from the shell's `times`.
# Figures are medians over rounds; the ratio is the median of per-round ratios.
# Ends with: summary: proxy_kv_ops=... proxy_memcached_ops=... proxy_ratio=... + CPU figures.
#
# Environment: BUILD (default build), PROXY_BENCH_SECS (2), PROXY_BENCH_ROUNDS (5).
# Everything it starts is stopped on exit, also on failure or interrupt.
set -u
BENCH_NAME=bench_proxy
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/kv_common.sh"
SECS=${PROXY_BENCH_SECS:-2}
ROUNDS=${PROXY_BENCH_ROUNDS:-5}
MEM=128
NC=$(command -v nutcracker || ls /usr/sbin/nutcracker 2>/dev/null)
[ -n "$NC" ] || sh "$ROOT/.ci/deps.sh" --check nutcracker || fail "nutcracker is not installed"
NC=$(command -v nutcracker || ls /usr/sbin/nutcracker 2>/dev/null)
[ -n "$NC" ] || fail "nutcracker is not installed (apt-get install nutcracker)"

DIR=""
cleanup() {
    stop_started
    [ -n "$DIR" ] && rm -rf "$DIR"
    DIR=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

us_per_op() { awk -v p="$1" -v o="$2" 'BEGIN {printf "%.2f", p / 100 * 1e6 / o}'; }
pct() { awk -v t="$1" -v c="$CLK" -v s="$SECS" 'BEGIN {printf "%.0f", 100 * t / c / s}'; }
# "0m1.250000s" -> 1.25
secs_of() { echo "$1" | awk -F'[ms]' '{printf "%.3f", $1 * 60 + $2}'; }

port() { "$CLIENT" --free-port; }
K1=$(port) K2=$(port) M1=$(port) M2=$(port) PKV=$(port) PMC=$(port) STATS=$(port)

"$KV" --smp 1 --unpinned -q -m "$MEM" -c 4096 -p "$K1" &
KPID1=$!
"$KV" --smp 1 --unpinned -q -m "$MEM" -c 4096 -p "$K2" &
KPID2=$!
memcached $MCUSER -t 1 -m "$MEM" -c 4096 -l 127.0.0.1 -p "$M1" -U 0 &
MPID1=$!
memcached $MCUSER -t 1 -m "$MEM" -c 4096 -l 127.0.0.1 -p "$M2" -U 0 &
MPID2=$!
PIDS="$KPID1 $KPID2 $MPID1 $MPID2"
for p in $K1 $K2 $M1 $M2; do "$CLIENT" --port "$p" --wait-port || fail "server on $p did not start"; done

DIR=$(mktemp -d /tmp/bench_proxy.XXXXXX)
for pool in kv mc; do
    if [ $pool = kv ]; then l=$PKV a=$K1 b=$K2; else l=$PMC a=$M1 b=$M2; fi
    cat <<EOF
$pool:
  listen: 127.0.0.1:$l
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  server_connections: 1
  servers:
   - 127.0.0.1:$a:1
   - 127.0.0.1:$b:1
EOF
done > "$DIR/nutcracker.yml"
"$NC" -c "$DIR/nutcracker.yml" -o "$DIR/nutcracker.log" -s "$STATS" -a 127.0.0.1 -v 4 &
NPID=$!
PIDS="$PIDS $NPID"
for p in $PKV $PMC; do "$CLIENT" --port "$p" --wait-port || fail "nutcracker did not listen on $p"; done
for p in $PKV $PMC; do
    "$CLIENT" --port "$p" --preload --keys "$KEYS" --value-size "$VSIZE" --conns 4 --depth 32 \
        >/dev/null || fail "preload through port $p failed"
done

# proxy_run_one POOL ARGS...: one timed run; sets OPS and the CPU percentages NCP SAP SBP CLP.
proxy_run_one() {
    pool=$1
    shift
    if [ "$pool" = kv ]; then p=$PKV sa=$KPID1 sb=$KPID2; else p=$PMC sa=$MPID1 sb=$MPID2; fi
    n0=$(ticks "$NPID") a0=$(ticks "$sa") b0=$(ticks "$sb")
    out=$( ("$CLIENT" --port "$p" --keys "$KEYS" --value-size "$VSIZE" --secs "$SECS" "$@"; echo "rc=$?"; times) 2>&1)
    n1=$(ticks "$NPID") a1=$(ticks "$sa") b1=$(ticks "$sb")
    [ "$(field rc "$out")" = 0 ] || fail "client failed through the $pool pool: $out"
    [ "$(field errors "$out")" = 0 ] && [ "$(field misses "$out")" = 0 ] ||
        fail "wrong answers through the $pool pool: $out"
    OPS=$(field ops_per_s "$out")
    NCP=$(pct $((n1 - n0))) SAP=$(pct $((a1 - a0))) SBP=$(pct $((b1 - b0)))
    # `times` prints the shell's times, then its children's: user and system.
    child=$(printf '%s\n' "$out" | tail -n 1)
    CLP=$(awk -v u="$(secs_of "${child% *}")" -v s="$(secs_of "${child#* }")" -v d="$SECS" \
        'BEGIN {printf "%.0f", 100 * (u + s) / d}')
}

# workload NAME ARGS...: ROUNDS interleaved rounds; prints a row, sets the R_* medians.
workload() {
    name=$1
    shift
    kv_l="" mc_l="" r_l="" nk_l="" nm_l="" sk_l="" sm_l="" ck_l="" cm_l=""
    i=0
    while [ $i -lt "$ROUNDS" ]; do
        if [ $((i % 2)) = 0 ]; then
            proxy_run_one kv "$@"; k=$OPS nk=$NCP sk=$((SAP + SBP)) ck=$CLP
            proxy_run_one mc "$@"; m=$OPS nm=$NCP sm=$((SAP + SBP)) cm=$CLP
        else
            proxy_run_one mc "$@"; m=$OPS nm=$NCP sm=$((SAP + SBP)) cm=$CLP
            proxy_run_one kv "$@"; k=$OPS nk=$NCP sk=$((SAP + SBP)) ck=$CLP
        fi
        kv_l="$kv_l $k" mc_l="$mc_l $m" nk_l="$nk_l $nk" nm_l="$nm_l $nm"
        sk_l="$sk_l $sk" sm_l="$sm_l $sm" ck_l="$ck_l $ck" cm_l="$cm_l $cm"
        r_l="$r_l $(awk -v a="$k" -v b="$m" 'BEGIN {printf "%.3f", a / b}')"
        i=$((i + 1))
    done
    R_KV=$(median $kv_l) R_MC=$(median $mc_l) R_RATIO=$(median $r_l)
    R_NK=$(median $nk_l) R_NM=$(median $nm_l) R_SK=$(median $sk_l) R_SM=$(median $sm_l)
    R_CK=$(median $ck_l) R_CM=$(median $cm_l)
    # CPU-microseconds per op (medians of %CPU over medians of ops/s): robust to a busy machine.
    R_NKU=$(us_per_op "$R_NK" "$R_KV") R_NMU=$(us_per_op "$R_NM" "$R_MC")
    R_SKU=$(us_per_op "$R_SK" "$R_KV") R_SMU=$(us_per_op "$R_SM" "$R_MC")
    printf '  %-6s %10s %10s %6s | %5s%% %5s%% %5s%% | %5s%% %5s%% %5s%% | %5s %5s | %5s %5s  rounds:%s\n' \
        "$name" "$R_KV" "$R_MC" "$R_RATIO" "$R_NK" "$R_SK" "$R_CK" "$R_NM" "$R_SM" "$R_CM" \
        "$R_NKU" "$R_SKU" "$R_NMU" "$R_SMU" "$r_l"
}

echo "bench_proxy: client -> $("$NC" -V 2>&1 | sed -n 's/This is //p' | head -n 1) -> 2 x sn-kv" \
    "(--smp 1) vs 2 x memcached $(memcached -V 2>/dev/null | awk '{print $2}') (-t 1)," \
    "loopback, $(nproc) CPUs, nothing pinned, $KEYS keys of $VSIZE bytes, ${SECS}s runs," \
    "$ROUNDS rounds"
echo "  CPU as % of one CPU over a run: nutcracker, the two servers together, the client;"
echo "  then CPU-microseconds per op of nutcracker and of the servers, kv pool | mc pool"
printf '  %-6s %10s %10s %6s | %6s %6s %6s | %6s %6s %6s | %5s %5s | %5s %5s\n' workload \
    "kv ops/s" "mc ops/s" ratio "nc(kv)" "kv" "cl" "nc(mc)" "mc" "cl" "nc" "kv" "nc" "mc"
workload get90 --conns 16 --depth 32 --get-pct 90
G90_KV=$R_KV G90_MC=$R_MC G90_R=$R_RATIO G90_NK=$R_NK G90_NM=$R_NM G90_SK=$R_SK G90_SM=$R_SM
G90_CK=$R_CK G90_CM=$R_CM G90_NKU=$R_NKU G90_NMU=$R_NMU G90_SKU=$R_SKU G90_SMU=$R_SMU
workload get50 --conns 16 --depth 32 --get-pct 50
G50_R=$R_RATIO

echo "  The proxy is the bottleneck when nc is near 100% (one thread, one CPU) while the servers"
echo "  together use less than the CPU left over (200% - nc - client)."
echo "summary: proxy_kv_ops=$G90_KV proxy_memcached_ops=$G90_MC proxy_ratio=$G90_R" \
    "proxy_get50_ratio=$G50_R nutcracker_cpu_pct_kv=$G90_NK nutcracker_cpu_pct_memcached=$G90_NM" \
    "kv_servers_cpu_pct=$G90_SK memcached_servers_cpu_pct=$G90_SM" \
    "client_cpu_pct_kv=$G90_CK client_cpu_pct_memcached=$G90_CM" \
    "nutcracker_us_per_op_kv=$G90_NKU nutcracker_us_per_op_memcached=$G90_NMU" \
    "kv_servers_us_per_op=$G90_SKU memcached_servers_us_per_op=$G90_SMU" \
    "load_avg=$(cut -d' ' -f1 /proc/loadavg)"
