#!/bin/sh
# bench_echo_ab: two sn-echo binaries (an older build and this one) side by side in one run,
# driven in turn by bench_echo's client (bench_echo --port: 64 B messages with a window of
# 16, 64 KiB messages with a window of 4, per connection, every byte checked).
#
#   OLD=/path/to/old/sn-echo sh bench/bench_echo_ab.sh
#   env: OLD (required), NEW ($BUILD/bin/sn-echo), BUILD (build), SECS per run (3),
#        ROUNDS (5), CONNS (64), SETUPS ("a b")
#
# Setups as bench_echo's: a) servers on CPU 0 (--cpuset 0), client pinned on CPU 1;
# b) servers on both CPUs (--smp 2 --idle-poll-us 0), client unpinned. Both servers run for
# the whole setup (the idle one sleeps); every round runs each size on both back to back,
# alternating who goes first, so the noise of a shared machine hits both alike. A ratio is
# the median of the per-round new/old ratios (messages/s for 64 B, MB/s for 64 KiB).
#
# Ends with: summary: a_ratio_64=.. a_ratio_64k=.. b_ratio_64=.. b_ratio_64k=.. and the
# medians of each. Everything it starts is stopped on exit.
#
# Copies: the servers run with SN_NET_STATS=1, so a libsn that counts them prints, at exit,
# the bytes each core received and copied in user space (reactor/net_core.c); a_new_copies
# is then the user-space copies per received byte over the setup (64 B and 64 KiB runs
# together, the bytes being mostly 64 KiB's), a number the machine's noise moves far less
# than a rate. "na" for a binary that does not print them (main before 2026-12-05).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
NEW=${NEW:-$BUILD/bin/sn-echo}
OLD=${OLD:?set OLD to the sn-echo binary to compare with}
SECS=${SECS:-3}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
SETUPS=${SETUPS:-a b}
CLIENT=$BUILD/bench/bench_echo
[ -x "$CLIENT" ] && [ -x "$NEW" ] && [ -x "$OLD" ] || { echo "bench_echo_ab: build first (make benches apps)" >&2; exit 1; }

AB_NAME=bench_echo_ab
. bench/ab_common.sh
SN_NET_STATS=1
export SN_NET_STATS

copies() { # name: copies per received byte from the server's SN_NET_STATS lines, or na
  awk '/^libsn: net core/ { for (i = 4; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } n++ }
    END { if (!n || !s["recv_bytes"]) print "na"; else
      printf "%.3f\n", (s["held_copied"] + s["stream_copied"] + s["out_copied"]) / s["recv_bytes"] }' "$tmp/$1.out"
}

run() { # setup name size window cpu-option: appends "setup name size value" to results
  out=$("$CLIENT" --port "$(eval echo "\$port_$2")" --size "$3" --window "$4" --conns "$CONNS" \
        --secs "$SECS" $5) || { echo "bench_echo_ab: client failed against $2"; exit 1; }
  v=$(echo "$out" | sed -n "s/.*msgs_per_s=\([0-9.]*\) mb_per_s=\([0-9.]*\).*/\1 \2/p")
  [ "$3" = 64 ] && v=${v% *} || v=${v#* }
  echo "$1 $2 $3 $v" >> "$tmp/results"
  echo "$1 $2 $3 $v" >> "$tmp/rounds"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: > "$tmp/results"
echo "bench_echo_ab: new $NEW vs old $OLD; $CONNS connections, ${SECS}s per run, $ROUNDS rounds;" \
  "$(date -u '+%F %T UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for setup in $SETUPS; do
  case $setup in
    a) opts="--cpuset 0"; cpu="--cpu 1"; desc="servers on CPU 0, client on CPU 1" ;;
    b) opts="--smp 2 --idle-poll-us 0"; cpu=""; desc="servers on both CPUs, client unpinned" ;;
    *) echo "bench_echo_ab: unknown setup '$setup'" >&2; exit 2 ;;
  esac
  ab_start new "$NEW" $opts
  ab_start old "$OLD" $opts
  echo "setup $setup: $desc (sn-echo $opts)"
  r=1
  while [ $r -le "$ROUNDS" ]; do
    : > "$tmp/rounds"
    if [ $((r % 2)) = 1 ]; then order="new old"; else order="old new"; fi
    for size in 64 65536; do
      [ $size = 64 ] && win=16 || win=4
      for who in $order; do run "$setup" $who $size $win "$cpu"; done
    done
    awk -v r=$r -v s=$setup '{ v[$2 $3] = $4 } END {
      printf "  round %d: 64 B new %.0f old %.0f msg/s (%.3f); 64 KiB new %.1f old %.1f MB/s (%.3f)\n",
        r, v["new64"], v["old64"], v["new64"] / v["old64"], v["new65536"], v["old65536"],
        v["new65536"] / v["old65536"]
      print s, "ratio64", v["new64"] / v["old64"] > "/dev/stderr"
      print s, "ratio64k", v["new65536"] / v["old65536"] > "/dev/stderr" }' "$tmp/rounds" \
      2>> "$tmp/ratios"
    r=$((r + 1))
  done
  for p in $pids; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=""
  for who in new old; do
    c=$(copies $who)
    echo "$setup $c" >> "$tmp/copies_$who"
    echo "  $who: user-space copies per received byte: $c"
  done
done

stat() { # setup key | results filter: median
  awk -v s="$1" -v k="$2" '$1 == s && $2 == k { print $3 }' "$tmp/ratios" | median
}
val() { # setup who size
  awk -v s="$1" -v w="$2" -v z="$3" '$1 == s && $2 == w && $3 == z { print $4 }' "$tmp/results" | median
}
printf "summary:"
for setup in $SETUPS; do
  printf " %s_ratio_64=%.3f %s_ratio_64k=%.3f %s_new_64_mps=%.0f %s_old_64_mps=%.0f" \
    $setup "$(stat $setup ratio64)" $setup "$(stat $setup ratio64k)" \
    $setup "$(val $setup new 64)" $setup "$(val $setup old 64)"
  printf " %s_new_64k_mbps=%.1f %s_old_64k_mbps=%.1f" \
    $setup "$(val $setup new 65536)" $setup "$(val $setup old 65536)"
  printf " %s_new_copies=%s %s_old_copies=%s" $setup "$(awk -v s=$setup '$1 == s { print $2 }' "$tmp/copies_new")" \
    $setup "$(awk -v s=$setup '$1 == s { print $2 }' "$tmp/copies_old")"
done
printf " rounds=%s secs=%s conns=%s\n" "$ROUNDS" "$SECS" "$CONNS"
