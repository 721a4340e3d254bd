#!/bin/sh
# Builds bench_submit as the tree was before issue 16's groups (the parent of the commit that
# added reactor/smp_service.c; BASE=<rev> picks another revision) into
# build/base-<hash>/build/, once, and prints the binary's path on stdout (the build's output
# goes to stderr). bench_groups runs it beside the current bench_submit: calls/s with groups
# in the build over calls/s without, in the same run.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
first=$(git log --format=%H --diff-filter=A -- reactor/smp_service.c | tail -n 1)
[ -n "${BASE:-}$first" ] || { echo "groups_base.sh: no base revision" >&2; exit 1; }
rev=$(git rev-parse --short "${BASE:-$first^}")
dir=$root/build/base-$rev
bin=$dir/build/bench/bench_submit
if [ ! -x "$bin" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  git archive "$rev" | tar -x -C "$dir"
  nice make -C "$dir" -j2 DEPS_CHECK=0 BENCHES=bench_submit benches >&2
fi
echo "$bin"
