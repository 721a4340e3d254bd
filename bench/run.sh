#!/bin/sh
# Runs each benchmark binary or script given (as `make bench` does: sh bench/run.sh <binaries
# and bench/bench_*.sh scripts...>), streams its output with a progress line
# ([n/N] name, start time, seconds into the run, load average), and appends everything to
# bench/results/<YYYY-MM-DD>-run.txt (UTC date) so the figures stay with the tree. Each
# benchmark's block (start line, output, exit line) is appended in one go once it finishes, so
# concurrent runs do not interleave inside a block. At the end it repeats every `summary:`
# line, then writes the report bench/results/<YYYY-MM-DD>.md with bench/report.sh.
# Exit status is non-zero when any benchmark failed or printed no summary line.
#
# Environment:
#   SN_BENCH_QUICK=1  short runs (a smoke test of the whole chain, figures not for quoting):
#                     fewer rounds and samples for the binaries (see quick_args), and
#                     DURATION/ROUNDS (bench_httpd.sh), KV_BENCH_SECS/KV_BENCH_ROUNDS
#                     (bench_kv.sh) default to 1; SN_BENCH_QUICK stays exported for scripts.
#                     Output goes to bench/results/<date>-quick-run.txt and <date>-quick.md.
#   SN_BENCH_DATA     set by this script to bench/results/<date>[-quick]-data: benchmarks that know
#                     the convention (bench/bench_data.h) write their plot data there.
#   SN_BENCH_NO_REPORT=1  skip the report at the end.
# A script bench/bench_X.sh is skipped when a binary bench_X_client is also given: that binary,
# run without arguments, runs the script itself (bench_kv_client -> bench_kv.sh).
if [ $# -eq 0 ]; then
  echo "usage: sh bench/run.sh <bench binaries...>" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/results
day=$(date -u +%F)
# Quick runs go to files of their own, so they never mix with the day's real figures.
[ -n "${SN_BENCH_QUICK:-}" ] && day="$day-quick"
out="$dir/$day-run.txt"
SN_BENCH_DATA="$dir/$day-data"
export SN_BENCH_DATA
mkdir -p "$dir" "$SN_BENCH_DATA" || exit 1
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp" "$tmp.rc"' EXIT
trap 'exit 130' INT TERM

# Arguments of a binary in quick mode (all accept these; see each file's usage line).
quick_args() {
  [ -n "${SN_BENCH_QUICK:-}" ] || return 0
  case $1 in
    bench_ring) echo "-r 1 -n 1000000 -s 20000" ;;
    bench_submit) echo "-r 1 -n 20000 -c 200000 -w 50" ;;
    bench_wake) echo "-r 1 -n 100" ;;
    bench_partition) echo "-r 1" ;;
    bench_mesh_scale) echo "-r 1 -m 256" ;;
    bench_conn_balance) echo "-r 1 -s 800 -l 64" ;;
    bench_pipeline) echo "-s 16 -r 1" ;;
    bench_echo) echo "--secs 1 --rounds 1" ;;
    bench_fiber) echo "-r 1 -s 1000000 -j 100000 -n 10000 -i 20000" ;;
  esac
}
if [ -n "${SN_BENCH_QUICK:-}" ]; then
  export SN_BENCH_QUICK DURATION="${DURATION:-1}" ROUNDS="${ROUNDS:-1}" \
    KV_BENCH_SECS="${KV_BENCH_SECS:-1}" KV_BENCH_ROUNDS="${KV_BENCH_ROUNDS:-1}"
fi

list=""
for b in "$@"; do
  case $b in
    *.sh)
      skip=""
      for c in "$@"; do
        [ "$(basename "$c")" = "$(basename "$b" .sh)_client" ] && skip=$c
      done
      if [ -n "$skip" ]; then
        echo "(skipping $b: $skip runs it)"
        continue
      fi ;;
  esac
  list="$list $b"
done
set -- $list

t0=$(date +%s)
{
  echo "=== bench run $(date -u '+%F %T') UTC on $(uname -n): kernel $(uname -r), $(nproc) CPUs"
  echo "=== cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "=== compiler: $(${CC:-cc} --version 2>/dev/null | head -n 1)"
  echo "=== load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
  echo "=== build: ${BUILD:-build}${SN_BENCH_QUICK:+ (quick mode: SN_BENCH_QUICK=$SN_BENCH_QUICK)}"
} | tee -a "$out"
total=$#; i=0; failed=""; summaries=""
for b in "$@"; do
  i=$((i + 1))
  name=$(basename "$b")
  start=$(date +%s)
  args=$(quick_args "$name")
  head="[$i/$total] $name (started $(date -u +%T) UTC, +$((start - t0)) s into the run,"
  head="$head load $(cut -d ' ' -f 1-3 /proc/loadavg)${args:+, args: $args})"
  echo "$head"
  runner=""
  case $b in *.sh) runner=sh ;; esac # scripts (bench/bench_*.sh) need no exec bit
  # shellcheck disable=SC2086 # args are words
  { $runner "$b" $args; echo $? > "$tmp.rc"; } 2>&1 | tee "$tmp"
  rc=$(cat "$tmp.rc")
  tail="[$i/$total] $name: exit $rc after $(( $(date +%s) - start )) s"
  echo "$tail"
  { echo "$head"; cat "$tmp"; echo "$tail"; } >> "$out"
  s=$(grep "^summary:" "$tmp" | tail -n 1)
  [ "$rc" = 0 ] && [ -n "$s" ] || failed="$failed $name"
  summaries="$summaries$name: ${s:-no summary line}
"
done
{
  echo "=== summaries ($total benchmarks in $(( $(date +%s) - t0 )) s)"
  printf '%s' "$summaries"
  [ -n "$failed" ] && echo "failed:$failed"
} | tee -a "$out"
echo "raw output appended to $out"
if [ -z "${SN_BENCH_NO_REPORT:-}" ]; then
  sh "$here/report.sh" "$out" || echo "bench/run.sh: the report failed (rerun: make bench-report)"
fi
[ -z "$failed" ]
