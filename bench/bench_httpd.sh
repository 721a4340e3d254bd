#!/bin/sh
# sn-httpd against nginx (Debian nginx-light), both driven by wrk on loopback, in one run.
#
#   sh bench/bench_httpd.sh            (or: make bench BENCHES=bench_httpd)
#   env: BUILD (build), DURATION seconds per wrk run (3), ROUNDS (5), CONNS (64),
#        HTTPD_OPTS_A (""), HTTPD_OPTS_B ("--idle-poll-us 0"): extra sn-httpd options per setup,
#        SETUPS ("a b"): which setups to run (the summary line reads a),
#        LOADS ("hello pipelined static"): which loads to run
#
# Three loads: "hello" (GET / with keep-alive; nginx answers `return 200 "Hello, world!\n"`),
# "pipelined" (the same, 16 requests per write through bench/wrk_pipeline.lua) and "static"
# (GET of a 4 KiB file, keep-alive). Same wrk threads, connections and duration for both
# servers. Both servers run side by side for the whole setup (the idle one sleeps), and every
# round runs each load on both back to back, alternating who goes first, so the noise of this
# shared machine hits both alike; a ratio is the median of the per-round httpd/nginx ratios.
#
# Two setups (the machine has 2 CPUs and wrk competes with the server):
#   a) server on CPU 0 (sn-httpd --cpuset 0; nginx worker_processes 1 under taskset -c 0),
#      wrk with 1 thread on CPU 1 (taskset -c 1).
#   b) server on both CPUs (sn-httpd --smp 2; nginx worker_processes 2 with
#      worker_cpu_affinity auto), wrk unpinned with 2 threads: the CPUs are shared with the
#      client. sn-httpd runs with --idle-poll-us 0 here (Seastar's "overprovisioned" advice):
#      a reactor that busy-polls before sleeping takes CPU time the client on the same CPUs
#      needs, while nginx never polls.
# For each run it also reads the server's CPU time (utime+stime from /proc/<pid>/stat; for
# nginx the master and every worker) and reports CPU-seconds per million requests, which stays
# fair when the client is the bottleneck; its ratio (httpd's CPU per request over nginx's, the
# median of the per-round ratios) is printed next to the req/s ratio for every load and setup.
# It also prints the part of it spent in the kernel (stime), and k_floor: httpd's kernel CPU
# over nginx's whole CPU per request, the cpu ratio httpd would have if its own code cost
# nothing and the kernel's TCP and io_uring work it asks for stayed (summary:
# kernel_floor_ratio= for hello in setup a, b_kernel_floor_ratio= in setup b). A rough floor:
# the kernel counts user and system time by sampling, and charges loopback work (the peer's
# receive, its wake-up) to whichever process sends. In setup b, where wrk shares the CPUs, it
# also reads wrk's CPU time per request and prints the req/s httpd would reach with its own
# code free, both CPUs busy with wrk's work and httpd's kernel work (summary:
# b_rps_floor_ratio=, over nginx's req/s).
#
# Ends with: summary: httpd_rps=.. nginx_rps=.. ratio=.. pipelined_ratio=.. static_ratio=..
# (setup a, medians), cpu_ratio_vs_nginx=.. pipelined_cpu_ratio_vs_nginx=..
# static_cpu_ratio_vs_nginx=.., then the same with a b_ prefix for setup b, and more keys;
# loadavg_start= and loadavg_end= (1-minute load average) say how busy the machine was.
# Everything it starts is stopped on exit.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
HTTPD_OPTS_A=${HTTPD_OPTS_A:-}
HTTPD_OPTS_B=${HTTPD_OPTS_B---idle-poll-us 0}
SETUPS=${SETUPS:-a b}
HTTPD=$BUILD/bin/sn-httpd
PIPELINE_LUA=$(pwd)/bench/wrk_pipeline.lua
TESTS=${LOADS:-hello pipelined static}

sh .ci/deps.sh --check nginx-light wrk curl || exit 1
if [ ! -x "$HTTPD" ]; then
  make -s BUILD="$BUILD" apps >/dev/null || exit 1
fi
[ "$(nproc)" -ge 2 ] || { echo "bench_httpd: needs 2 CPUs" >&2; exit 1; }
TCK=$(getconf CLK_TCK)

tmp=$(mktemp -d /tmp/bench-httpd.XXXXXX) || exit 1
chmod 755 "$tmp"
httpd_pid=""; nginx_pid=""
cleanup() {
  stop_servers
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/root" "$tmp/nginx"
head -c 3072 /dev/urandom | base64 -w 64 | head -c 4096 > "$tmp/root/small.txt"

# ---- servers -------------------------------------------------------------------------------

stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null
  i=0
  while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

stop_servers() {
  stop_pid "$httpd_pid"; httpd_pid=""
  stop_pid "$nginx_pid"; nginx_pid=""
}

# A port nobody listens on (checked in /proc/net/tcp).
free_port() {
  p=$((20000 + $$ % 20000))
  while awk -v hex="$(printf ':%04X' "$p")" '$2 ~ hex"$" && $4 == "0A" {f=1} END {exit !f}' \
        /proc/net/tcp 2>/dev/null; do
    p=$((p + 1))
  done
  echo "$p"
}

wait_ready() { # port
  i=0
  until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" || [ $i -ge 50 ]; do
    sleep 0.1; i=$((i + 1))
  done
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$1/static/small.txt" >/dev/null 2>&1 # warm-up
}

start_httpd() { # libsn options...
  rm -f "$tmp/httpd.out" # a stale "listening on" line must not be read
  "$HTTPD" --port 0 --root "$tmp/root" "$@" > "$tmp/httpd.out" 2>&1 &
  httpd_pid=$!
  i=0
  while ! grep -qs "listening on" "$tmp/httpd.out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  httpd_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/httpd.out")
  [ -n "$httpd_port" ] || { echo "bench_httpd: sn-httpd did not start:"; cat "$tmp/httpd.out"; exit 1; }
  wait_ready "$httpd_port"
}

start_nginx() { # workers, CPU list for taskset or ""
  nginx_port=$(free_port)
  [ "$nginx_port" = "$httpd_port" ] && nginx_port=$((nginx_port + 1))
  cat > "$tmp/nginx/nginx.conf" <<EOF
worker_processes $1;
$( [ "$1" -gt 1 ] && echo "worker_cpu_affinity auto;" )
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    server {
        listen 127.0.0.1:$nginx_port reuseport;
        location = / { default_type text/plain; return 200 "Hello, world!\n"; }
        location /static/ { alias $tmp/root/; default_type text/plain; }
    }
}
EOF
  if [ -n "$2" ]; then
    taskset -c "$2" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
  else
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
  fi
  nginx_pid=$!
  wait_ready "$nginx_port"
}

# "utime stime" in ticks of a server: the process (all threads) and its children (nginx workers).
cpu_ticks() { # pid
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$1" '
    { sub(/ \(.*\) /, " comm "); split($0, f, " ") }
    f[1] == p || f[4] == p { u += f[14]; s += f[15] } END { print u + 0, s + 0 }'
}

# ---- one measurement -------------------------------------------------------------------------

# run_wrk setup test server round: appends a result line to $tmp/results and prints it.
run_wrk() {
  if [ "$3" = httpd ]; then port=$httpd_port; pid=$httpd_pid; else port=$nginx_port; pid=$nginx_pid; fi
  case $2 in
    hello) url="http://127.0.0.1:$port/"; lua="" ;;
    pipelined) url="http://127.0.0.1:$port/"; lua="-s $PIPELINE_LUA" ;;
    static) url="http://127.0.0.1:$port/static/small.txt"; lua="" ;;
  esac
  t0=$(cpu_ticks "$pid")
  # In a subshell whose only child is wrk: its `times` (2nd line) is wrk's CPU time.
  # shellcheck disable=SC2086
  ($WRK_PIN wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency $lua "$url" \
    ${lua:+-- 16} > "$tmp/wrk.out" 2>&1; times > "$tmp/wrk.times")
  t1=$(cpu_ticks "$pid")
  wrk_s=$(awk 'function s(v) { split(v, a, "m"); return a[1] * 60 + a[2] }
    NR == 2 { print s($1) + s($2) }' "$tmp/wrk.times")
  if ! grep -q "Requests/sec" "$tmp/wrk.out"; then
    echo "bench_httpd: wrk failed against $3:"; sed 's/^/    /' "$tmp/wrk.out"
    exit 1
  fi
  # shellcheck disable=SC2086
  set -- "$1" "$2" "$3" "$4" $t0 $t1 # $5 $6: utime stime before, $7 $8 after
  awk -v setup="$1" -v test="$2" -v srv="$3" -v round="$4" -v ticks=$(($7 + $8 - $5 - $6)) \
    -v sys=$(($8 - $6)) -v wrk_s="${wrk_s:-0}" -v tck="$TCK" '
    function us(v) {
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6
      return v + 0
    }
    $1 == "Latency" && !avg { avg = us($2) }
    $1 == "99%" { p99 = us($2) }
    $2 == "requests" && $3 == "in" { n = $1 }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx/ { bad += $NF }
    END {
      cpu = ticks / tck
      printf "%s %s %s %s %.0f %d %.1f %.1f %.3f %d %.3f %.3f\n", setup, test, srv, round, rps, n,
             avg, p99, n ? cpu / n * 1e6 : 0, bad, n ? sys / tck / n * 1e6 : 0,
             n ? wrk_s / n * 1e6 : 0
    }' "$tmp/wrk.out" >> "$tmp/results"
  tail -n 1 "$tmp/results" | awk '{
    printf "  %-2s %-10s %-6s round %s: %9.0f req/s  latency avg %8.1f us  p99 %9.1f us" \
           "  %6.3f cpu-s/Mreq%s\n", $1, $2, $3, $4, $5, $7, $8, $9, $10 ? "  NON-2XX: " $10 : "" }'
  grep "Socket errors" "$tmp/wrk.out" | sed 's/^/    /'
  return 0
}

# run_setup name: both servers up, then ROUNDS rounds of every load on each.
run_setup() {
  start_httpd $HTTPD_ARGS
  start_nginx "$NGINX_WORKERS" "$NGINX_PIN"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="httpd nginx"; else order="nginx httpd"; fi
    for t in $TESTS; do
      for s in $order; do
        run_wrk "$1" "$t" "$s" "$r"
      done
    done
  done
  stop_servers
}

# ---- reporting ---------------------------------------------------------------------------------

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (!NR) print 0; else if (NR % 2) print v[(NR + 1) / 2];
                                       else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# col setup test server column -> median over rounds
col() { awk -v a="$1" -v b="$2" -v c="$3" -v k="$4" '$1 == a && $2 == b && $3 == c { print $k }' "$tmp/results" | median; }

# ratio setup test column -> median over rounds of httpd/nginx
ratio() {
  awk -v a="$1" -v b="$2" -v k="$3" '$1 == a && $2 == b { v[$3, $4] = $k; r[$4] = 1 }
    END { for (i in r) if (v["nginx", i] > 0) printf "%.3f\n", v["httpd", i] / v["nginx", i] }' \
    "$tmp/results" | median
}

# kernel_floor setup test -> median over rounds of httpd's system CPU over nginx's whole CPU per
# request: the cpu ratio httpd would have if its own code cost nothing, with the kernel work
# (TCP, io_uring) it asks for unchanged (a rough floor: see the top).
kernel_floor() {
  awk -v a="$1" -v b="$2" '$1 == a && $2 == b { s[$3, $4] = $11; t[$3, $4] = $9; r[$4] = 1 }
    END { for (i in r) if (t["nginx", i] > 0) printf "%.3f\n", s["httpd", i] / t["nginx", i] }' \
    "$tmp/results" | median
}

# rps_floor setup test -> median over rounds of the req/s httpd would reach if its own code cost
# nothing, over nginx's req/s: both CPUs doing only wrk's work per request against httpd and
# httpd's kernel work, never idle (setup b, where the server and wrk share the two CPUs).
rps_floor() {
  awk -v a="$1" -v b="$2" '$1 == a && $2 == b { s[$3, $4] = $11; w[$3, $4] = $12; q[$3, $4] = $5
                                                r[$4] = 1 }
    END { for (i in r) if (q["nginx", i] > 0 && s["httpd", i] + w["httpd", i] > 0)
            printf "%.3f\n", 2e6 / (s["httpd", i] + w["httpd", i]) / q["nginx", i] }' \
    "$tmp/results" | median
}

report() {
  echo "setup $1 ($2): medians over $ROUNDS rounds"
  printf "  %-10s %10s %10s %7s %10s %10s %10s %10s %9s %9s %9s %9s %9s %9s\n" test httpd_rps \
    nginx_rps ratio httpd_avg nginx_avg httpd_p99 nginx_p99 httpd_cpu nginx_cpu cpu_ratio \
    httpd_sys nginx_sys k_floor
  for t in $TESTS; do
    printf "  %-10s %10.0f %10.0f %7.3f %8.0fus %8.0fus %8.0fus %8.0fus %9.3f %9.3f %9.3f" "$t" \
      "$(col "$1" $t httpd 5)" "$(col "$1" $t nginx 5)" "$(ratio "$1" $t 5)" \
      "$(col "$1" $t httpd 7)" "$(col "$1" $t nginx 7)" \
      "$(col "$1" $t httpd 8)" "$(col "$1" $t nginx 8)" \
      "$(col "$1" $t httpd 9)" "$(col "$1" $t nginx 9)" "$(ratio "$1" $t 9)"
    printf " %9.3f %9.3f %9.3f\n" "$(col "$1" $t httpd 11)" "$(col "$1" $t nginx 11)" \
      "$(kernel_floor "$1" $t)"
  done
  echo "  (latency: wrk's average and p99; cpu: server CPU-seconds per million requests, sys: the"
  echo "   part in the kernel; ratios: medians of the per-round httpd/nginx ratios; k_floor:"
  echo "   httpd's kernel CPU over nginx's whole CPU, a rough floor of cpu_ratio for its socket work)"
  [ "$1" = b ] || return 0
  for t in $TESTS; do
    printf "  %s: wrk's CPU %s us a request against httpd, %s against nginx; with httpd's own code" \
      "$t" "$(col b $t httpd 12)" "$(col b $t nginx 12)"
    printf " free, at most %s x nginx's req/s (2 CPUs over wrk's CPU + httpd's kernel CPU)\n" \
      "$(rps_floor b $t)"
  done
}

echo "bench_httpd: sn-httpd ($HTTPD) vs $(nginx -v 2>&1 | sed 's/.*: //'), wrk $CONNS" \
  "connections, ${DURATION}s per run, $ROUNDS rounds; 4 KiB static file"
: > "$tmp/results"
load_start=$(cut -d' ' -f1 /proc/loadavg)

for setup in $SETUPS; do
  case $setup in
    a)
      HTTPD_ARGS="--cpuset 0 $HTTPD_OPTS_A"; NGINX_WORKERS=1; NGINX_PIN=0
      WRK_PIN="taskset -c 1"; WRK_THREADS=1
      echo "setup a: server on CPU 0, wrk (1 thread) on CPU 1; sn-httpd $HTTPD_ARGS" ;;
    b)
      HTTPD_ARGS="--smp 2 $HTTPD_OPTS_B"; NGINX_WORKERS=2; NGINX_PIN=""
      WRK_PIN=""; WRK_THREADS=2
      echo "setup b: server on both CPUs, wrk (2 threads) unpinned; sn-httpd $HTTPD_ARGS" ;;
    *) echo "bench_httpd: unknown setup '$setup'" >&2; exit 2 ;;
  esac
  run_setup "$setup"
done

for setup in $SETUPS; do
  case $setup in
    a) report a "server on CPU 0, wrk on CPU 1" ;;
    b) report b "server on both CPUs, wrk unpinned" ;;
  esac
done
bad=$(awk '{ s += $10 } END { print s + 0 }' "$tmp/results")
[ "$bad" = 0 ] || echo "WARNING: $bad non-2xx responses (see the runs above)"

printf "summary: httpd_rps=%.0f nginx_rps=%.0f ratio=%s pipelined_ratio=%s static_ratio=%s" \
  "$(col a hello httpd 5)" "$(col a hello nginx 5)" "$(ratio a hello 5)" \
  "$(ratio a pipelined 5)" "$(ratio a static 5)"
printf " httpd_pipelined_rps=%.0f nginx_pipelined_rps=%.0f httpd_static_rps=%.0f nginx_static_rps=%.0f" \
  "$(col a pipelined httpd 5)" "$(col a pipelined nginx 5)" "$(col a static httpd 5)" \
  "$(col a static nginx 5)"
printf " httpd_cpu_s_per_mreq=%s nginx_cpu_s_per_mreq=%s" "$(col a hello httpd 9)" "$(col a hello nginx 9)"
printf " b_ratio=%s b_pipelined_ratio=%s b_static_ratio=%s b_httpd_cpu_s_per_mreq=%s" \
  "$(ratio b hello 5)" "$(ratio b pipelined 5)" "$(ratio b static 5)" "$(col b hello httpd 9)"
printf " b_nginx_cpu_s_per_mreq=%s" "$(col b hello nginx 9)"
printf " cpu_ratio_vs_nginx=%s pipelined_cpu_ratio_vs_nginx=%s static_cpu_ratio_vs_nginx=%s" \
  "$(ratio a hello 9)" "$(ratio a pipelined 9)" "$(ratio a static 9)"
printf " b_cpu_ratio_vs_nginx=%s b_pipelined_cpu_ratio_vs_nginx=%s b_static_cpu_ratio_vs_nginx=%s" \
  "$(ratio b hello 9)" "$(ratio b pipelined 9)" "$(ratio b static 9)"
printf " kernel_floor_ratio=%s b_kernel_floor_ratio=%s b_rps_floor_ratio=%s" \
  "$(kernel_floor a hello)" "$(kernel_floor b hello)" "$(rps_floor b hello)"
printf " rounds=%s non_2xx=%s loadavg_start=%s loadavg_end=%s\n" "$ROUNDS" "$bad" "$load_start" \
  "$(cut -d' ' -f1 /proc/loadavg)"
