#!/bin/sh
# bench_httpd_ab: two sn-httpd binaries (an older build and this one) side by side in one run,
# driven in turn by wrk on loopback, the loads of bench_httpd.sh.
#
#   OLD=/path/to/old/sn-httpd sh bench/bench_httpd_ab.sh
#   env: OLD (required), NEW ($BUILD/bin/sn-httpd), BUILD (build), DURATION seconds per wrk
#        run (3), ROUNDS (5), CONNS (64), SETUPS ("a"), LOADS ("hello pipelined static")
#
# Loads: "hello" (GET / with keep-alive), "pipelined" (the same, 16 requests per write through
# bench/wrk_pipeline.lua), "static" (GET of a 4 KiB file, keep-alive). Setups as bench_httpd's:
# a) servers on CPU 0 (--cpuset 0), wrk with 1 thread on CPU 1; b) servers on both CPUs
# (--smp 2 --idle-poll-us 0), wrk with 2 threads unpinned. Both servers run for the whole
# setup (the idle one sleeps); every round runs each load on both back to back, alternating
# who goes first, so the noise of a shared machine hits both alike. For each run it reads the
# server's CPU time (utime+stime of the process, /proc/<pid>/stat) and reports CPU-seconds per
# million requests. A ratio is the median of the per-round new/old ratios.
#
# Ends with: summary: hello_ratio=.. hello_cpu_ratio=.. static_ratio=.. static_cpu_ratio=..
# pipelined_ratio=.. pipelined_cpu_ratio=.. (new/old, setup a, or the first setup run), then
# the same with a b_ prefix for setup b when it ran, and loadavg_start= / loadavg_end=.
# Everything it starts is stopped on exit.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
NEW=${NEW:-$BUILD/bin/sn-httpd}
OLD=${OLD:?set OLD to the sn-httpd binary to compare with}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
SETUPS=${SETUPS:-a}
LOADS=${LOADS:-hello pipelined static}
PIPELINE_LUA=$(pwd)/bench/wrk_pipeline.lua
[ -x "$NEW" ] && [ -x "$OLD" ] || { echo "bench_httpd_ab: build first (make apps)" >&2; exit 1; }
sh .ci/deps.sh --check wrk curl || exit 1
TCK=$(getconf CLK_TCK)

AB_NAME=bench_httpd_ab
. bench/ab_common.sh
mkdir "$tmp/root"
head -c 3072 /dev/urandom | base64 -w 64 | head -c 4096 > "$tmp/root/small.txt"

start() { # name binary libsn-options...: ab_start with the static root, then a warm-up
  n=$1 b=$2
  shift 2
  ab_start "$n" "$b" --root "$tmp/root" "$@"
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$(eval echo "\$port_$n")/static/small.txt" >/dev/null 2>&1
}

cpu_ticks() { # pid: utime+stime of the process (every thread)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

run() { # setup load who round: appends "setup load who round rps cpu_s_per_mreq non2xx"
  port=$(eval echo "\$port_$3") pid=$(eval echo "\$pid_$3")
  url="http://127.0.0.1:$port/"
  lua=""
  [ "$2" = static ] && url="${url}static/small.txt"
  [ "$2" = pipelined ] && lua="-s $PIPELINE_LUA"
  t0=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086
  $WRK_PIN wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" $lua "$url" ${lua:+-- 16} \
    > "$tmp/wrk.out" 2>&1
  t1=$(cpu_ticks "$pid")
  grep -q "Requests/sec" "$tmp/wrk.out" || { echo "bench_httpd_ab: wrk failed:"; cat "$tmp/wrk.out"; exit 1; }
  awk -v s="$1" -v l="$2" -v w="$3" -v r="$4" -v ticks=$((t1 - t0)) -v tck="$TCK" '
    $2 == "requests" && $3 == "in" { n = $1 }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx/ { bad += $NF }
    END { printf "%s %s %s %s %.0f %.3f %d\n", s, l, w, r, rps, n ? ticks / tck / n * 1e6 : 0, bad }' \
    "$tmp/wrk.out" >> "$tmp/results"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { # setup load who column: median over rounds
  awk -v s="$1" -v l="$2" -v w="$3" -v k="$4" '$1 == s && $2 == l && $3 == w { print $k }' "$tmp/results" | median
}
ratio() { # setup load column: median of the per-round new/old ratios
  awk -v s="$1" -v l="$2" -v k="$3" '$1 == s && $2 == l { v[$3, $4] = $k; r[$4] = 1 }
    END { for (i in r) if (v["old", i] > 0) printf "%.3f\n", v["new", i] / v["old", i] }' \
    "$tmp/results" | median
}

: > "$tmp/results"
load_start=$(cut -d' ' -f1 /proc/loadavg)
echo "bench_httpd_ab: new $NEW vs old $OLD; wrk $CONNS connections, ${DURATION}s per run," \
  "$ROUNDS rounds; $(date -u '+%F %T UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for setup in $SETUPS; do
  case $setup in
    a) opts="--cpuset 0"; WRK_PIN="taskset -c 1"; WRK_THREADS=1; desc="servers on CPU 0, wrk on CPU 1" ;;
    b) opts="--smp 2 --idle-poll-us 0"; WRK_PIN=""; WRK_THREADS=2; desc="servers on both CPUs, wrk unpinned" ;;
    *) echo "bench_httpd_ab: unknown setup '$setup'" >&2; exit 2 ;;
  esac
  start new "$NEW" $opts
  start old "$OLD" $opts
  echo "setup $setup: $desc (sn-httpd $opts)"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="new old"; else order="old new"; fi
    for l in $LOADS; do
      for who in $order; do run "$setup" "$l" $who "$r"; done
      awk -v s="$setup" -v l="$l" -v r="$r" '$1 == s && $2 == l && $4 == r { v[$3] = $5; c[$3] = $6 }
        END { printf "  round %d %-9s new %8.0f old %8.0f req/s (%.3f); cpu-s/Mreq new %.3f old %.3f (%.3f)\n",
              r, l, v["new"], v["old"], v["new"] / v["old"], c["new"], c["old"], c["new"] / c["old"] }' \
        "$tmp/results"
    done
  done
  for p in $pids; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=""
done

bad=$(awk '{ s += $7 } END { print s + 0 }' "$tmp/results")
[ "$bad" = 0 ] || echo "WARNING: $bad non-2xx responses"
printf "summary:"
first=${SETUPS%% *}
for setup in $SETUPS; do
  [ "$setup" = "$first" ] && pre="" || pre="${setup}_"
  for l in hello static pipelined; do
    case " $LOADS " in *" $l "*) ;; *) continue ;; esac
    printf " %s%s_ratio=%s %s%s_cpu_ratio=%s %s%s_new_rps=%s %s%s_old_rps=%s" \
      "$pre" $l "$(ratio $setup $l 5)" "$pre" $l "$(ratio $setup $l 6)" \
      "$pre" $l "$(col $setup $l new 5)" "$pre" $l "$(col $setup $l old 5)"
  done
done
printf " rounds=%s duration=%s non_2xx=%s loadavg_start=%s loadavg_end=%s\n" "$ROUNDS" "$DURATION" \
  "$bad" "$load_start" "$(cut -d' ' -f1 /proc/loadavg)"
