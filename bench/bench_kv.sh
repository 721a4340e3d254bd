#!/bin/sh
# bench/bench_kv.sh: sn-kv (apps/kv) against memcached, in one run, on loopback.
#
# Both servers run side by side with the same memory (-m) and the same number of cores, are
# preloaded with the same keys, and are driven in turn, in interleaved rounds, by the same
# client with the same settings: bench_kv_client (deep pipelining, validates every answer;
# memcaslap keeps one request in flight per connection, so it cannot load a server from one
# client core). Workloads: get/set 90/10 and 50/50 (single-key gets), and multi-gets of 16 keys.
# Ops are counted per key (a 16-key multi-get is 16 ops).
#
#   (a) the server on CPU 0 only (sn-kv --cpuset 0; memcached -t 1 under taskset -c 0), the
#       client pinned on CPU 1: the server is the bottleneck.
#   (b) both CPUs for the server (sn-kv --smp 2; memcached -t 2), the client unpinned: keys
#       are owned by both cores, so half the commands cross cores. Also one request in
#       flight per connection (get90d1: 64 connections, depth 1, the client's epoll loop, the
#       row the goal is judged by; get90d1u: the same from its io_uring loop, --uring, which
#       costs the client less CPU per request; both followed by the client's own CPU per
#       request against each server, also in the summary), and memcaslap (the same
#       kind of client, heavier: it is its own bottleneck; ROUNDS alternating rounds too).
#       memcaslap's keys begin with 8 raw bytes (its key prefix), which memcached takes and
#       sn-kv answers with CLIENT_ERROR unless --lax-keys: setup b runs sn-kv with it, and a
#       memcaslap run with an error answer or no get is not counted (the row says invalid).
#       memcaslap is never idle, so its rate is bounded by its own CPU per request: the row is
#       followed by that figure against each server and the ceiling it gives (1e6 / us per
#       request), also in the summary (b_memcaslap_client_us_kv=, b_memcaslap_client_us_<peer>=).
#
# Server CPU-seconds per million ops come from /proc/<pid>/stat (utime + stime) around each
# run. Figures are medians over rounds; the ratio is the median of per-round ratios.
# Ends with: summary: kv_ops=... memcached_ops=... ratio=... (setup a, get/set 90/10) + more.
#
# Environment: BUILD (default build), KV_BENCH_SECS (2), KV_BENCH_ROUNDS (5), KV_PEER (a
# path: another sn-kv binary, e.g. one built from an older commit, is the peer instead of
# memcached, with the same options as sn-kv; the figures and summary keys say "peer" then),
# KV_BENCH_ONLY=depth1 (only setup b's one-request-in-flight rows, get90d1(u) and memcaslap; the
# other summary keys say "none") or b (only setup b, all its rows), KV_ARGS (extra sn-kv
# options, e.g. "--io-poll-us 0" or "--unpinned"; not given to a KV_PEER, so KV_PEER=<the same
# sn-kv> with KV_ARGS compares the options head to head), KV_BIN (another server in sn-kv's
# place, started with sn-kv's options: bench/kv_floor, in setup b only: KV_BENCH_ONLY=b or depth1).
# Everything it starts is stopped on exit, also on failure or interrupt.
set -u
BENCH_NAME=bench_kv
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/kv_common.sh"
SECS=${KV_BENCH_SECS:-2}
ROUNDS=${KV_BENCH_ROUNDS:-5}
ONLY=${KV_BENCH_ONLY:-}
KV_ARGS=${KV_ARGS:-}
case $ONLY in "" | depth1 | b) ;; *) echo "bench_kv: KV_BENCH_ONLY=$ONLY: only depth1 and b are known" >&2; exit 1 ;; esac
MEM=256
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs"

PEER=${KV_PEER:-}
PN=memcached
if [ -n "$PEER" ]; then
    [ -x "$PEER" ] || fail "KV_PEER=$PEER is not an executable"
    PN=peer
    # An older sn-kv without --lax-keys refuses memcaslap's keys: its memcaslap row is invalid.
    PEER_LAX=""
    "$PEER" --help 2>&1 | grep -q -e --lax-keys && PEER_LAX=--lax-keys
fi

cleanup() { stop_started; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_servers SETUP: starts sn-kv and memcached for setup a or b, waits, preloads both.
start_servers() {
    KPORT=$("$CLIENT" --free-port)
    MPORT=$("$CLIENT" --free-port)
    if [ "$1" = a ]; then
        "$KV" --cpuset 0 --port "$KPORT" -m "$MEM" -c 4096 -q $KV_ARGS &
        KPID=$!
        if [ -n "$PEER" ]; then
            "$PEER" --cpuset 0 --port "$MPORT" -m "$MEM" -c 4096 -q &
        else
            taskset -c 0 memcached $MCUSER -t 1 -m "$MEM" -c 4096 -l 127.0.0.1 -p "$MPORT" -U 0 &
        fi
        MPID=$!
    else
        "$KV" --smp 2 --port "$KPORT" -m "$MEM" -c 4096 -q --lax-keys $KV_ARGS &
        KPID=$!
        if [ -n "$PEER" ]; then
            "$PEER" --smp 2 --port "$MPORT" -m "$MEM" -c 4096 -q $PEER_LAX &
        else
            memcached $MCUSER -t 2 -m "$MEM" -c 4096 -l 127.0.0.1 -p "$MPORT" -U 0 &
        fi
        MPID=$!
    fi
    PIDS="$KPID $MPID"
    "$CLIENT" --port "$KPORT" --wait-port || fail "sn-kv did not start"
    "$CLIENT" --port "$MPORT" --wait-port || fail "$PN did not start"
    for p in "$KPORT" "$MPORT"; do
        "$CLIENT" --port "$p" --preload --keys "$KEYS" --value-size "$VSIZE" --conns 4 \
            --depth 64 >/dev/null || fail "preload of port $p failed"
    done
}

# workload SETUP NAME PIN ARGS...: ROUNDS interleaved rounds; prints a row, sets R_* results.
workload() {
    setup=$1 name=$2 pin=$3
    shift 3
    kv_l="" mc_l="" r_l="" kc_l="" mcc_l="" ku_l="" mu_l=""
    i=0
    while [ $i -lt "$ROUNDS" ]; do
        # Alternate who goes first, so drift in the machine's load hits both alike.
        if [ $((i % 2)) = 0 ]; then
            run_one "$KPID" "$KPORT" "$pin" "$@"; k=$OPS kc=$CPM ku=$CUS
            run_one "$MPID" "$MPORT" "$pin" "$@"; m=$OPS mc=$CPM mu=$CUS
        else
            run_one "$MPID" "$MPORT" "$pin" "$@"; m=$OPS mc=$CPM mu=$CUS
            run_one "$KPID" "$KPORT" "$pin" "$@"; k=$OPS kc=$CPM ku=$CUS
        fi
        kv_l="$kv_l $k" mc_l="$mc_l $m" kc_l="$kc_l $kc" mcc_l="$mcc_l $mc"
        ku_l="$ku_l $ku" mu_l="$mu_l $mu"
        r_l="$r_l $(awk -v a="$k" -v b="$m" 'BEGIN {printf "%.3f", a / b}')"
        i=$((i + 1))
    done
    R_KV=$(median $kv_l) R_MC=$(median $mc_l) R_RATIO=$(median $r_l)
    R_KCPU=$(median $kc_l) R_MCPU=$(median $mcc_l) R_KU=$(median $ku_l) R_MU=$(median $mu_l)
    printf '  %-8s %12s %12s %7s %10s %10s   rounds:%s\n' "$name" "$R_KV" "$R_MC" "$R_RATIO" \
        "$R_KCPU" "$R_MCPU" "$r_l"
}

# client_cpu WHO: after a one-request-in-flight row, the client's own CPU per request against
# each server (medians of the row's rounds) and the rate it allows with a CPU to itself.
client_cpu() {
    printf '  %-8s %s CPU per request: %s us against sn-kv, %s us against %s' '' "$1" \
        "$R_KU" "$R_MU" "$PN"
    awk -v a="$R_KU" -v b="$R_MU" \
        'BEGIN {if (a > 0 && b > 0) printf " (ceilings %.0f and %.0f requests/s)", 1e6 / a, 1e6 / b
                print ""}'
}

# slap PID PORT: one memcaslap run (-T 1 -c 32, SECS seconds) against PORT; sets TPS, CPM
# (the server's CPU-s per million requests) and CUS (memcaslap's own CPU per request, in us:
# its user + sys once its connections are open, read by a python3 wrapper, over the requests
# it counted; its ceiling is 1e6 / CUS requests/s). TPS is empty when memcaslap printed none, or when
# the run is not valid: an error answer (memcaslap prints them: its keys begin with 8 raw
# bytes, which sn-kv refuses without --lax-keys) or no get at all (it then only sets).
slap() {
    t0=$(ticks "$1")
    so=$(python3 -c "$CHILD_CPU" memcaslap -s "127.0.0.1:$2" -t "${SECS}s" -T 1 -c 32 \
        -X "$VSIZE" 2>&1)
    t1=$(ticks "$1")
    cs=$(printf '%s\n' "$so" | sed -n 's/^child_cpu_s=//p' | tail -n 1)
    TPS=$(printf '%s\n' "$so" | sed -n 's/.*TPS: \([0-9]*\).*/\1/p' | tail -n 1)
    gets=$(printf '%s\n' "$so" | sed -n 's/^cmd_get: \([0-9]*\).*/\1/p' | tail -n 1)
    if printf '%s\n' "$so" | grep -q ERROR || [ "${gets:-0}" = 0 ]; then
        echo "$BENCH_NAME: memcaslap against port $2: error answers or no gets (cmd_get: ${gets:-?}); $(printf '%s\n' "$so" | grep -m 1 ERROR)" >&2
        TPS=""
    fi
    CPM=$(awk -v t="$((t1 - t0))" -v c="$CLK" -v n="${TPS:-0}" -v s="$SECS" \
        'BEGIN {printf "%.3f", n ? t / c / (n * s / 1e6) : 0}')
    ops=$(printf '%s\n' "$so" | sed -n 's/.* Ops: \([0-9]*\).*/\1/p' | tail -n 1)
    CUS=$(awk -v t="${cs:-0}" -v n="${ops:-0}" 'BEGIN {printf "%.2f", n ? t * 1e6 / n : 0}')
}

# Runs its arguments (memcaslap) as a child and prints, on stderr, the child's CPU time (user
# + sys) from the moment its 32 connections are open to its exit: its start-up (generating
# its keys and values, ~0.25 CPU-s here) is left out. Polls the child's fds every 10 ms
# until then, and only waits afterwards.
CHILD_CPU='import os, resource, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:])
tck, c0 = os.sysconf("SC_CLK_TCK"), None
def cpu():
    f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
def sockets():
    d = "/proc/%d/fd" % p.pid
    return sum(os.readlink(d + "/" + fd).startswith("socket") for fd in os.listdir(d))
while c0 is None and p.poll() is None:
    try:
        if sockets() >= 32:
            c0 = cpu()
    except OSError:
        pass
    time.sleep(0.01)
rc = p.wait()
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("child_cpu_s=%.3f" % (u.ru_utime + u.ru_stime - (c0 or 0)), file=sys.stderr)
sys.exit(rc)'

# workload_slap: ROUNDS interleaved memcaslap rounds against both servers; prints a row (ops/s
# medians, ratio = median of the per-round ratios), sets BSLAP_R.
workload_slap() {
    kv_l="" mc_l="" r_l="" kc_l="" mcc_l="" ku_l="" mu_l=""
    i=0
    while [ $i -lt "$ROUNDS" ]; do
        if [ $((i % 2)) = 0 ]; then
            slap "$KPID" "$KPORT"; k=$TPS kc=$CPM ku=$CUS
            slap "$MPID" "$MPORT"; m=$TPS mc=$CPM mu=$CUS
        else
            slap "$MPID" "$MPORT"; m=$TPS mc=$CPM mu=$CUS
            slap "$KPID" "$KPORT"; k=$TPS kc=$CPM ku=$CUS
        fi
        if [ -z "$k" ] || [ -z "$m" ]; then
            BSLAP_R=invalid
            printf '  %-8s %12s %12s %7s   (no valid memcaslap run, see above)\n' memcaslap \
                "${k:--}" "${m:--}" invalid
            return
        fi
        kv_l="$kv_l $k" mc_l="$mc_l $m" kc_l="$kc_l $kc" mcc_l="$mcc_l $mc"
        ku_l="$ku_l $ku" mu_l="$mu_l $mu"
        r_l="$r_l $(awk -v a="$k" -v b="$m" 'BEGIN {printf "%.3f", a / b}')"
        i=$((i + 1))
    done
    BSLAP_R=$(median $r_l)
    printf '  %-8s %12s %12s %7s %10s %10s   rounds:%s\n' memcaslap "$(median $kv_l)" \
        "$(median $mc_l)" "$BSLAP_R" "$(median $kc_l)" "$(median $mcc_l)" "$r_l"
    BSLAP_KU=$(median $ku_l) BSLAP_MU=$(median $mu_l)
    printf '  %-8s memcaslap CPU per request: %s us against sn-kv, %s us against %s' '' \
        "$BSLAP_KU" "$BSLAP_MU" "$PN"
    awk -v a="$BSLAP_KU" -v b="$BSLAP_MU" \
        'BEGIN {if (a > 0 && b > 0) printf " (ceilings %.0f and %.0f requests/s)", 1e6 / a, 1e6 / b
                print ""}'
}

header() {
    printf '  %-8s %12s %12s %7s %10s %10s\n' workload "sn-kv ops/s" "$PN" ratio \
        "kv cpu-s/M" "mc cpu-s/M"
}

[ -n "$PEER" ] && PV="$PEER" || PV="memcached $(memcached -V 2>/dev/null | awk '{print $2}')"
echo "bench_kv: sn-kv vs $PV, loopback," \
    "$KEYS keys of $VSIZE bytes, -m $MEM, ${SECS}s runs, $ROUNDS rounds"

# the_workloads SETUP PIN PREFIX: the three workloads of a setup; results in PREFIX90_KV,
# PREFIX90_MC, PREFIX90_R, PREFIX90_KC, PREFIX90_MCC, PREFIX50_R and PREFIXMG_R.
the_workloads() {
    header
    workload "$1" get90 "$2" --conns 16 --depth 32 --get-pct 90
    eval "${3}90_KV=\$R_KV ${3}90_MC=\$R_MC ${3}90_R=\$R_RATIO ${3}90_KC=\$R_KCPU ${3}90_MCC=\$R_MCPU"
    workload "$1" get50 "$2" --conns 16 --depth 32 --get-pct 50
    eval "${3}50_R=\$R_RATIO"
    workload "$1" mget16 "$2" --conns 16 --depth 8 --get-pct 100 --mget 16
    eval "${3}MG_R=\$R_RATIO"
}

for k in A90_KV A90_MC A90_R A50_R AMG_R A90_KC A90_MCC B90_KV B90_MC B90_R B50_R BMG_R B90_KC \
    B90_MCC; do
    eval "$k=none"
done
[ -n "$KV_ARGS" ] && echo "sn-kv options: $KV_ARGS"
if [ -z "$ONLY" ]; then
    echo "setup a: server on CPU 0 (sn-kv --cpuset 0; memcached -t 1 under taskset -c 0)," \
        "client pinned on CPU 1, 16 connections"
    start_servers a
    the_workloads a yes A
    cleanup
fi

echo "setup b: server on both CPUs (sn-kv --smp 2; memcached -t 2), client unpinned," \
    "16 connections"
start_servers b
if [ "$ONLY" != depth1 ]; then
    the_workloads b no B
else
    header
fi
# One request in flight per connection (no pipelining), from bench_kv_client: 64 connections,
# get/set 90/10. get90d1 (the row issue 17's goal is judged by) uses the client's epoll loop,
# a send and a recv system call per request; get90d1u the same requests from its io_uring
# loop (--uring: one io_uring_enter per batch of completions), a cheaper load generator that
# leaves the servers more of the two CPUs. Each is followed by the client's own CPU per
# request against each server. memcaslap below is a third, heavier client of the same kind.
workload b get90d1 no --conns 64 --depth 1 --get-pct 90
BD1_R=$R_RATIO BD1_KU=$R_KU BD1_MU=$R_MU
client_cpu "bench_kv_client (epoll)"
workload b get90d1u no --conns 64 --depth 1 --get-pct 90 --uring
BD1U_R=$R_RATIO BD1U_KU=$R_KU BD1U_MU=$R_MU
client_cpu "bench_kv_client --uring"
BSLAP_R=none BSLAP_KU=none BSLAP_MU=none
if command -v memcaslap >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
    # memcaslap's default mix is get/set 90/10, one request in flight per connection. ROUNDS
    # rounds, alternating who goes first like the rows above; the ratio is the median of the
    # per-round ratios (one round moved 0.8x-2.0x between runs).
    workload_slap
fi
cleanup

echo "summary: kv_ops=$A90_KV ${PN}_ops=$A90_MC ratio=$A90_R" \
    "a_get50_ratio=$A50_R a_mget16_ratio=$AMG_R" \
    "a_kv_cpu_s_per_mops=$A90_KC a_${PN}_cpu_s_per_mops=$A90_MCC" \
    "b_kv_ops=$B90_KV b_${PN}_ops=$B90_MC b_ratio=$B90_R b_get50_ratio=$B50_R" \
    "b_mget16_ratio=$BMG_R b_depth1_ratio=$BD1_R b_depth1_uring_ratio=$BD1U_R" \
    "b_memcaslap_ratio=$BSLAP_R" \
    "b_kv_cpu_s_per_mops=$B90_KC b_${PN}_cpu_s_per_mops=$B90_MCC" \
    "b_depth1_client_us_kv=$BD1_KU b_depth1_client_us_${PN}=$BD1_MU" \
    "b_depth1_uring_client_us_kv=$BD1U_KU b_depth1_uring_client_us_${PN}=$BD1U_MU" \
    "b_memcaslap_client_us_kv=$BSLAP_KU b_memcaslap_client_us_${PN}=$BSLAP_MU"
