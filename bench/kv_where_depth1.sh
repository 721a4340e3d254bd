#!/bin/sh
# bench/kv_where_depth1.sh: where the CPU goes when a one-request-in-flight client shares the
# machine with the server (setup b of bench_kv.sh: sn-kv --smp 2 or memcached -t 2 on both
# CPUs, bench_kv_client unpinned, 64 connections, depth 1, get/set 90/10: the get90d1 row).
# A diagnosis, not a race: `make bench` does not run it (the name does not match bench_*.sh).
#
# For each server it runs the client for SECS + 2 s and records the scheduler (`perf sched
# record`) over SECS s in the middle, then prints, per CPU, how long the client, the server's
# threads, other tasks and the idle task ran, and splits the client's time per request into
# its CPU, its wait for a CPU (runnable: a server thread or another task held the CPU it
# wanted) and its sleep (waiting for answers). The three add up to 1 / rate: which one is
# large says what holds the rate back. A server whose threads poll, pinned one per CPU,
# always holds the CPU the client is on for part of the time; one whose threads sleep leaves
# CPUs idle and the client waiting for answers instead.
#
# Needs perf (Debian: linux-perf) and root or kernel.perf_event_paranoid <= 0 for sched
# tracepoints. Environment: SECS (default 2), KV_ARGS (extra sn-kv options), BUILD.
# Ends with `summary: kv_ops_per_s= kv_client_us= kv_client_wait_us= kv_client_sleep_us=
# kv_server_us= kv_idle_share= mc_...` (us per request; the idle share of the two CPUs).
set -u
BENCH_NAME=kv_where_depth1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/kv_common.sh"
SECS=${SECS:-2}
KV_ARGS=${KV_ARGS:-}
sh "$ROOT/.ci/deps.sh" --check linux-perf || fail "perf is not installed (sh .ci/deps.sh bench)"
command -v perf >/dev/null 2>&1 || fail "perf is not on PATH"
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs"
TMP=$(mktemp -d)
trap 'stop_started; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

KPORT=$("$CLIENT" --free-port)
MPORT=$("$CLIENT" --free-port)
"$KV" --smp 2 --port "$KPORT" -m 256 -c 4096 -q --lax-keys $KV_ARGS &
KPID=$!
memcached $MCUSER -t 2 -m 256 -c 4096 -l 127.0.0.1 -p "$MPORT" -U 0 &
MPID=$!
PIDS="$KPID $MPID"
for p in "$KPORT" "$MPORT"; do
    "$CLIENT" --port "$p" --wait-port || fail "the server on port $p did not start"
    "$CLIENT" --port "$p" --preload --keys "$KEYS" --value-size "$VSIZE" --conns 4 \
        --depth 64 >/dev/null || fail "preload of port $p failed"
done

# per_cpu SCHED_FILE SERVER_PID CLIENT_PID: "cpu client_ms server_ms other_ms idle_ms" lines,
# then "wait runnable_ms sleeping_ms": the client's time off a CPU, waiting for one or asleep.
per_cpu() {
    perf sched timehist --state -i "$1" 2>/dev/null | awk -v s="$2" -v c="$3" '
        NR > 3 && $2 ~ /^\[/ {
            cpu = $2; gsub(/[\[\]]/, "", cpu); cpu += 0
            task = $3; pid = task; sub(/.*\[/, "", pid); sub(/\].*/, "", pid); sub(/.*\//, "", pid)
            who = task ~ /^<idle>/ ? "idle" : pid == s ? "server" : pid == c ? "client" : "other"
            ms[cpu, who] += $6; cpus[cpu] = 1
            # The wait before a run follows the end state of the run before: R (preempted)
            # is all waiting for a CPU; S (asleep) waited for a CPU only from the wake-up on.
            if (who == "client") {
                if (prev == "R") runnable += $4
                else { runnable += $5; asleep += $4 - $5 }
                prev = $7
            }
        }
        END {
            for (k in cpus) printf "%d %.1f %.1f %.1f %.1f\n", k, ms[k, "client"],
                ms[k, "server"], ms[k, "other"], ms[k, "idle"]
            printf "wait %.1f %.1f\n", runnable, asleep
        }' | sort -n
}

# measure NAME PORT SERVER_PID: prints the per-CPU table and the client's split, sets R_SUMMARY
# (the summary's fields for this server, without its prefix).
measure() {
    "$CLIENT" --port "$2" --keys "$KEYS" --value-size "$VSIZE" --secs $((SECS + 2)) \
        --conns 64 --depth 1 --get-pct 90 >"$TMP/$1.out" 2>&1 &
    cpid=$!
    PIDS="$PIDS $cpid"
    sleep 1 # the client's warm-up, not a synchronisation: the record covers a steady state
    perf sched record -q -o "$TMP/$1.sched" -- sleep "$SECS" >/dev/null 2>&1 ||
        fail "perf sched record failed (root or kernel.perf_event_paranoid <= 0 needed)"
    wait "$cpid" || fail "client failed against $1: $(cat "$TMP/$1.out")"
    PIDS="$KPID $MPID" # the client is reaped: its pid may be reused
    out=$(cat "$TMP/$1.out")
    [ "$(field errors "$out")" = 0 ] && [ "$(field misses "$out")" = 0 ] ||
        fail "wrong answers from $1: $out"
    ops=$(field ops_per_s "$out")
    per_cpu "$TMP/$1.sched" "$3" "$cpid" >"$TMP/$1.cpu"
    echo "$1: $ops requests/s; per CPU over ${SECS} s (ms): cpu client server other idle"
    grep -v '^wait' "$TMP/$1.cpu" | sed 's/^/    /'
    R_SUMMARY=$(awk -v ops="$ops" -v secs="$SECS" '
        /^wait/ { wait = $2; sleep = $3; next }
        { client += $2; server += $3; idle += $5; all += $2 + $3 + $4 + $5 }
        END {
            n = ops * secs / 1000 # thousands of requests in the record: ms / n = us a request
            if (client <= 0 || n <= 0) exit 1
            printf "ops_per_s=%s client_us=%.2f client_wait_us=%.2f client_sleep_us=%.2f", ops,
                client / n, wait / n, sleep / n
            printf " server_us=%.2f idle_share=%.3f\n", server / n, (all > 0 ? idle / all : 0)
        }' "$TMP/$1.cpu") || fail "no scheduler record of the client against $1"
    echo "    per request: client on a CPU $(field client_us "$R_SUMMARY") us, waiting for one" \
        "$(field client_wait_us "$R_SUMMARY") us, asleep $(field client_sleep_us "$R_SUMMARY")" \
        "us; server $(field server_us "$R_SUMMARY") us on both CPUs"
}

measure sn-kv "$KPORT" "$KPID"
K=$(printf '%s' "$R_SUMMARY" | sed 's/\([a-z_]*=\)/kv_\1/g')
measure memcached "$MPORT" "$MPID"
M=$(printf '%s' "$R_SUMMARY" | sed 's/\([a-z_]*=\)/mc_\1/g')
echo "summary: $K $M"
