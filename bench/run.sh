#!/bin/sh
# Runs each benchmark binary or script given (as `make bench` does: sh bench/run.sh <binaries
# and bench/bench_*.sh scripts...>),
# streams its output with a progress header, and appends everything to
# bench/results/<YYYY-MM-DD>-run.txt (UTC date) so the figures stay with the tree.
# At the end it repeats every binary's `summary:` line. Exit status is non-zero when any
# benchmark failed or printed no summary line.
if [ $# -eq 0 ]; then
  echo "usage: sh bench/run.sh <bench binaries...>" >&2
  exit 2
fi
dir=$(dirname "$0")/results
mkdir -p "$dir" || exit 1
out="$dir/$(date -u +%F)-run.txt"
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp" "$tmp.rc"' EXIT
trap 'exit 130' INT TERM
{
  echo "=== bench run $(date -u '+%F %T') UTC on $(uname -n): kernel $(uname -r), $(nproc) CPUs"
  echo "=== compiler: $(${CC:-cc} --version 2>/dev/null | head -n 1)"
} | tee -a "$out"
total=$#; i=0; failed=""; summaries=""
for b in "$@"; do
  i=$((i + 1))
  name=$(basename "$b")
  echo "[$i/$total] $name (started $(date -u +%T) UTC)" | tee -a "$out"
  start=$(date +%s)
  runner=""
  case $b in *.sh) runner=sh ;; esac # scripts (bench/bench_*.sh) need no exec bit
  { $runner "$b"; echo $? > "$tmp.rc"; } 2>&1 | tee "$tmp"
  cat "$tmp" >> "$out"
  rc=$(cat "$tmp.rc")
  echo "[$i/$total] $name: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$out"
  s=$(grep "^summary:" "$tmp" | tail -n 1)
  [ "$rc" = 0 ] && [ -n "$s" ] || failed="$failed $name"
  summaries="$summaries$name: ${s:-no summary line}
"
done
echo "=== summaries" | tee -a "$out"
printf '%s' "$summaries" | tee -a "$out"
[ -n "$failed" ] && echo "failed:$failed" | tee -a "$out"
echo "results appended to $out"
[ -z "$failed" ]
