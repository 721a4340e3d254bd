#!/bin/sh
# bench_httpd_lat: sn-httpd's keep-alive GET / latency at moderate, open-loop load, for several
# batch settings (or binaries) side by side in one run: what batched sleeps (--io-batch-us)
# cost a response when the load does not fill the batches. wrk is closed-loop (a late answer
# delays the next request, so waits hide themselves); bench_httpd_lat_client sends on a fixed
# Poisson schedule and measures from the scheduled time.
#
#   sh bench/bench_httpd_lat.sh       (or: build/bench/bench_httpd_lat_client, no arguments)
#   env: BUILD (build), SETUP (a: server on CPU 0, client on CPU 1; b: server --smp 2
#        --idle-poll-us 0, client unpinned), ROUNDS (3), SECS per run (2), CONNS (64),
#        PCTS ("25 60": loads in percent of the saturation rate), SAT (req/s; default:
#        measured with wrk -c$CONNS against the first configuration),
#        CONFIGS (';'-separated "label:binary:options", binary empty = $BUILD/bin/sn-httpd;
#        default "b0::--io-batch-us 0;b200::--io-batch-us 200;b400::--io-batch-us 400")
#
# All servers run for the whole benchmark (the idle ones sleep); every round runs each load on
# each configuration, in an order that rotates per round, so the noise of a shared machine hits
# all alike. Figures are medians over the rounds of each run's percentiles.
# The peer of every configuration is the first one (by default batching off): each row also
# gives its mean latency over the first configuration's at the same load (vs_first).
# Ends with: summary: sat_rps=.. then p50_us_<label>_<pct>=.. p99_us_<label>_<pct>=..
# mean_us_<label>_<pct>=.. mean_ratio_<label>_<pct>=.. for each, then loadavg_start=
# loadavg_end=.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SETUP=${SETUP:-a}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-2}
CONNS=${CONNS:-64}
PCTS=${PCTS:-25 60}
SAT=${SAT:-}
CONFIGS=${CONFIGS:-b0::--io-batch-us 0;b200::--io-batch-us 200;b400::--io-batch-us 400}
CLIENT=$BUILD/bench/bench_httpd_lat_client
[ -x "$CLIENT" ] && [ -x "$BUILD/bin/sn-httpd" ] || { echo "bench_httpd_lat: build first (make all)" >&2; exit 1; }
sh .ci/deps.sh --check wrk curl || exit 1

AB_NAME=bench_httpd_lat
. bench/ab_common.sh

case $SETUP in
  a) SERVER_ARGS="--cpuset 0"; PIN="taskset -c 1"; WRK="taskset -c 1 wrk -t1" ;;
  b) SERVER_ARGS="--smp 2 --idle-poll-us 0"; PIN=""; WRK="wrk -t2" ;;
  *) echo "bench_httpd_lat: SETUP is a or b" >&2; exit 2 ;;
esac

# batch_metrics port -> "batched_sleeps batch_timeouts requests" of an sn-httpd (its /metrics)
batch_metrics() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^sn_batched_sleeps_total/ { b += $2 }
    /^sn_batch_timeouts_total/ { t += $2 } /^httpd_requests_total/ { n += $2 }
    END { print b + 0, t + 0, n + 0 }'
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
labels=""
num=0
IFS_SAVE=$IFS
IFS=';'
for cfg in $CONFIGS; do
  IFS=$IFS_SAVE
  label=${cfg%%:*}; rest=${cfg#*:}; bin=${rest%%:*}; opts=${rest#*:}
  [ -n "$bin" ] || bin=$BUILD/bin/sn-httpd
  # shellcheck disable=SC2086
  ab_start "s$num" "$bin" $SERVER_ARGS $opts
  eval "label_$num=$label"
  labels="$labels $num"
  echo "config $label: $bin $SERVER_ARGS $opts (port $(eval echo \$port_s$num))"
  num=$((num + 1))
  IFS=';'
done
IFS=$IFS_SAVE
n=$num

for k in $labels; do # warm-up
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$(eval echo \$port_s$k)/" > /dev/null 2>&1
done
if [ -z "$SAT" ]; then
  # shellcheck disable=SC2086
  SAT=$($WRK -c"$CONNS" -d2s "http://127.0.0.1:$port_s0/" | awk '$1 == "Requests/sec:" { printf "%.0f", $2 }')
fi
[ "${SAT:-0}" -gt 0 ] 2>/dev/null || { echo "bench_httpd_lat: no saturation rate (wrk failed?)" >&2; exit 1; }
echo "bench_httpd_lat: setup $SETUP, saturation $SAT req/s (wrk -c$CONNS, config $label_0)," \
  "$CONNS connections, ${SECS}s per run, $ROUNDS rounds, loads: $PCTS %"

: > "$tmp/results"
for r in $(seq 1 "$ROUNDS"); do
  for pct in $PCTS; do
    rate=$((SAT * pct / 100))
    j=0
    while [ $j -lt "$n" ]; do
      k=$(((j + r) % n))
      port=$(eval echo \$port_s$k)
      label=$(eval echo \$label_$k)
      m0=$(batch_metrics "$port")
      # shellcheck disable=SC2086
      line=$($PIN "$CLIENT" --port "$port" --rate "$rate" --conns "$CONNS" --secs "$SECS") ||
        { echo "bench_httpd_lat: client failed against $label"; exit 1; }
      line="$line $(echo "$m0 $(batch_metrics "$port")" | awk '{
        printf "batched_per_kreq=%.1f timeouts_per_kreq=%.1f", ($4 - $1) / ($6 - $3 + 1e-9) * 1000,
               ($5 - $2) / ($6 - $3 + 1e-9) * 1000 }')"
      echo "  round $r ${pct}% $label: $line"
      echo "$label $pct $line" >> "$tmp/results"
      j=$((j + 1))
    done
  done
done

# med label pct key -> median over rounds
med() {
  awk -v l="$1" -v p="$2" -v k="$3" '$1 == l && $2 == p {
      for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' \
    "$tmp/results" | sort -g | awk '{ v[NR] = $1 } END { if (!NR) print 0;
      else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "medians over $ROUNDS rounds (us, from the scheduled send time):"
printf "  %-8s %5s %9s %9s %9s %9s %9s %9s %9s %9s\n" config load rate p50 p99 p999 mean \
  vs_first batch/kreq tmo/kreq
sum="summary: setup=$SETUP sat_rps=$SAT"
for pct in $PCTS; do
  first_mean=$(med "$label_0" "$pct" mean_us)
  for k in $labels; do
    label=$(eval echo \$label_$k)
    p50=$(med "$label" "$pct" p50_us); p99=$(med "$label" "$pct" p99_us)
    mean=$(med "$label" "$pct" mean_us)
    ratio=$(awk -v a="$mean" -v b="$first_mean" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    printf "  %-8s %4s%% %9s %9s %9s %9s %9s %9s %9s %9s\n" "$label" "$pct" \
      "$(med "$label" "$pct" rate)" "$p50" "$p99" "$(med "$label" "$pct" p999_us)" "$mean" \
      "$ratio" "$(med "$label" "$pct" batched_per_kreq)" "$(med "$label" "$pct" timeouts_per_kreq)"
    sum="$sum p50_us_${label}_$pct=$p50 p99_us_${label}_$pct=$p99 mean_us_${label}_$pct=$mean"
    sum="$sum mean_ratio_${label}_$pct=$ratio"
  done
done
echo "$sum rounds=$ROUNDS loadavg_start=$load_start loadavg_end=$(cut -d' ' -f1 /proc/loadavg)"
