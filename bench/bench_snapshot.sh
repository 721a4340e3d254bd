#!/bin/sh
# bench/bench_snapshot.sh: sn-kv's snapshot (--snapshot DIR) and restore against the disk's
# own sequential write and read rate, measured in the same run on the same file system.
#
#   sh bench/bench_snapshot.sh            (or: make bench BENCHES=bench_snapshot)
#   env: BUILD (build), DIR (BUILD/bench-snapshot: must be on the file system to measure,
#        not tmpfs), ITEMS (1000000; 200000 with SN_BENCH_QUICK), VSIZE (100 bytes),
#        SMP (2: cores writing and reading their files in parallel), ROUNDS (3)
#
# One sn-kv (--smp SMP --snapshot DIR) is filled with ITEMS items by bench_kv_client
# --preload. Then each round:
#   snapshot  SIGTERM: every core writes its file (O_DIRECT, 1 MiB chunks, 4 in flight), then
#             fsync, the manifest's rename and the directory's fsync; the time is sn-kv's own
#             ("snapshot G ...: N items, X MB in T s"), from the start to the durable commit.
#   disk write  dd if=/dev/zero of=DIR/dd.bin bs=1M count=<the snapshot's MB> oflag=direct
#             conv=fsync: one stream, the same bytes, the same file system, right after.
#   restore   sn-kv starts on DIR and loads it ("loaded snapshot ...: N items ... X MB in T s",
#             from opening the manifest to every item linked on its owner core).
#   disk read dd if=DIR/dd.bin of=/dev/null bs=1M iflag=direct.
# The CPU time sn-kv used until it listened (the load is all of it but the start-up) is shown
# too: the restore builds every item (malloc, hash table), so on a loaded machine it waits for
# CPU while dd waits only for the disk.
# A ratio is the median of the per-round ratios (this machine is shared and noisy: only
# figures taken side by side mean anything). Every restore must bring back all ITEMS items.
#
# Ends with: summary: snapshot_vs_disk=.. restore_vs_disk=.. snapshot_items_per_s=..
# restore_items_per_s=.. (medians), then more keys. Everything it starts is stopped on exit.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BENCH_NAME=bench_snapshot
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
KV=$B/bin/sn-kv
CLIENT=$B/bench/bench_kv_client
DIR=${DIR:-$B/bench-snapshot}
if [ -n "${SN_BENCH_QUICK:-}" ]; then ITEMS=${ITEMS:-200000}; else ITEMS=${ITEMS:-1000000}; fi
VSIZE=${VSIZE:-100}
SMP=${SMP:-2}
ROUNDS=${ROUNDS:-3}

fail() { echo "$BENCH_NAME: $*" >&2; exit 1; }
[ -x "$KV" ] || fail "$KV is not built (make BUILD=$BUILD apps)"
[ -x "$CLIENT" ] || fail "$CLIENT is not built (make BUILD=$BUILD benches)"
mkdir -p "$DIR" || fail "cannot make $DIR"
FSTYPE=$(findmnt -n -o FSTYPE -T "$DIR" 2>/dev/null || stat -f -c %T "$DIR")
[ "$FSTYPE" = tmpfs ] && fail "$DIR is on tmpfs: no disk to compare with (set DIR)"
rm -f "$DIR"/sn-kv.* "$DIR/dd.bin"

log=$(mktemp -d /tmp/bench-snapshot.XXXXXX) || exit 1
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$log" "$DIR"/sn-kv.* "$DIR/dd.bin"
    rmdir "$DIR" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLK=$(getconf CLK_TCK)
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# start TAG: sn-kv on DIR, its output in $log/TAG.out; waits until it listens (sets PORT).
start() {
    PORT=$("$CLIENT" --free-port) || fail "no free port"
    "$KV" --smp "$SMP" --port "$PORT" -m 2048 --snapshot "$DIR" >"$log/$1.out" 2>"$log/$1.err" &
    pid=$!
    "$CLIENT" --port "$PORT" --wait-port >/dev/null || fail "sn-kv did not start: $(cat "$log/$1.err")"
}

# stop TAG: SIGTERM (the snapshot), waits for the exit.
stop() {
    kill -TERM "$pid"
    wait "$pid" || fail "sn-kv exited $? after SIGTERM: $(cat "$log/$1.err")"
    pid=""
}

# "... N items, X MB in T s ..." of the line holding WHAT in a log: "N X T".
figures() {
    grep "$2" "$1" | tail -n 1 |
        sed -n 's/.*: \([0-9]*\) items[^,]*, \([0-9.]*\) MB in \([0-9.]*\) s.*/\1 \2 \3/p'
}

# dd's "B bytes (...) copied, T s, ..." on stderr: "B T".
dd_figures() { LC_ALL=C dd "$@" 2>&1 | sed -n 's/^\([0-9]*\) bytes.* copied, \([0-9.e-]*\) s.*/\1 \2/p'; }

echo "bench_snapshot: sn-kv --smp $SMP --snapshot $DIR ($FSTYPE), $ITEMS items of $VSIZE-byte" \
    "values, $ROUNDS rounds; dd bs=1M with O_DIRECT on the same file system;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
start fill
"$CLIENT" --port "$PORT" --preload --keys "$ITEMS" --value-size "$VSIZE" --conns 4 \
    --depth 512 >"$log/preload.txt" || fail "preload failed: $(cat "$log/preload.txt")"

L_CPU="" S_R="" R_R="" S_IPS="" R_IPS="" S_MBS="" R_MBS="" W_MBS="" RD_MBS=""
printf '  %5s %12s %10s %10s %7s | %12s %10s %10s %7s %8s\n' round "snap items/s" "snap MB/s" \
    "dd write" ratio "load items/s" "load MB/s" "dd read" ratio "load cpu"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    tag=r$r
    [ "$r" = 1 ] && tag=fill
    stop "$tag"
    set -- $(figures "$log/$tag.out" "sn-kv: snapshot ")
    [ $# -eq 3 ] || fail "round $r: no snapshot line: $(cat "$log/$tag.out" "$log/$tag.err")"
    [ "$1" = "$ITEMS" ] || fail "round $r: the snapshot has $1 items, not $ITEMS"
    s_items=$1 s_mb=$2 s_t=$3
    mb=$(awk -v m="$s_mb" 'BEGIN { printf "%d", m * 1e6 / 1048576 + 1 }')
    set -- $(dd_figures if=/dev/zero of="$DIR/dd.bin" bs=1M count="$mb" oflag=direct conv=fsync)
    [ $# -eq 2 ] || fail "dd write failed (O_DIRECT on $FSTYPE?)"
    w_mbs=$(div "$1" "$(awk -v t="$2" 'BEGIN { print t * 1e6 }')")

    start "r$((r + 1))"
    set -- $(figures "$log/r$((r + 1)).out" "loaded snapshot")
    [ $# -eq 3 ] || fail "round $r: no load line: $(cat "$log/r$((r + 1)).out" "$log/r$((r + 1)).err")"
    [ "$1" = "$ITEMS" ] || fail "round $r: $1 items loaded, not $ITEMS"
    l_items=$1 l_mb=$2 l_t=$3
    l_cpu=$(awk -v clk="$CLK" '{ printf "%.2f", ($14 + $15) / clk }' "/proc/$pid/stat")
    set -- $(dd_figures if="$DIR/dd.bin" of=/dev/null bs=1M iflag=direct)
    [ $# -eq 2 ] || fail "dd read failed"
    rd_mbs=$(div "$1" "$(awk -v t="$2" 'BEGIN { print t * 1e6 }')")
    rm -f "$DIR/dd.bin"

    s_mbs=$(div "$s_mb" "$s_t") l_mbs=$(div "$l_mb" "$l_t")
    s_ips=$(div "$s_items" "$s_t") l_ips=$(div "$l_items" "$l_t")
    s_r=$(div "$s_mbs" "$w_mbs") l_r=$(div "$l_mbs" "$rd_mbs")
    printf '  %5s %12.0f %10.0f %10.0f %7.2f | %12.0f %10.0f %10.0f %7.2f %7ss\n' "$r" "$s_ips" \
        "$s_mbs" "$w_mbs" "$s_r" "$l_ips" "$l_mbs" "$rd_mbs" "$l_r" "$l_cpu"
    S_R="$S_R $s_r" R_R="$R_R $l_r" S_IPS="$S_IPS $s_ips" R_IPS="$R_IPS $l_ips"
    L_CPU="$L_CPU $l_cpu" S_MBS="$S_MBS $s_mbs" R_MBS="$R_MBS $l_mbs" W_MBS="$W_MBS $w_mbs" RD_MBS="$RD_MBS $rd_mbs"
    r=$((r + 1))
done
stop "r$r"
echo "snapshot size: $s_mb MB in $SMP files; ratios are medians of the per-round ratios"
printf 'summary: snapshot_vs_disk=%s restore_vs_disk=%s snapshot_items_per_s=%.0f' \
    "$(median $S_R)" "$(median $R_R)" "$(median $S_IPS)"
printf ' restore_items_per_s=%.0f snapshot_mb_s=%.0f restore_mb_s=%.0f disk_write_mb_s=%.0f' \
    "$(median $R_IPS)" "$(median $S_MBS)" "$(median $R_MBS)" "$(median $W_MBS)"
printf ' disk_read_mb_s=%.0f restore_cpu_s=%s items=%s snapshot_mb=%s\n' "$(median $RD_MBS)" \
    "$(median $L_CPU)" "$ITEMS" "$s_mb"
