#!/bin/sh
# bench/ab_common.sh: what the side-by-side scripts (bench_echo_ab.sh, bench_httpd_ab.sh)
# share. Sourced, never run (the name does not match bench_*.sh, so `make bench` does not run
# it). Before sourcing, set AB_NAME (for messages and the temporary folder's name). Defines:
#   tmp       a fresh temporary folder, removed on exit;
#   cleanup   stops every server ab_start started (installed for EXIT, INT and TERM);
#   ab_start NAME BINARY ARGS...
#             runs `BINARY --port 0 ARGS...` in the background with its output in
#             $tmp/NAME.out, waits (up to 5 s) for its "listening on 127.0.0.1:PORT" line and
#             sets port_NAME and pid_NAME; exits with the server's output if it does not start.
#             A server started again under the same name (the next setup) never has the old
#             output's port read for it.
tmp=$(mktemp -d "/tmp/$AB_NAME.XXXXXX") || exit 1
pids=""
cleanup() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  pids=""
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ab_start() {
  name=$1 bin=$2
  shift 2
  rm -f "$tmp/$name.out"
  "$bin" --port 0 "$@" > "$tmp/$name.out" 2>&1 &
  pids="$pids $!"
  eval "pid_$name=$!"
  i=0
  while ! grep -qs "listening on" "$tmp/$name.out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.out")
  [ -n "$p" ] || { echo "$AB_NAME: $bin did not start:"; cat "$tmp/$name.out"; exit 1; }
  eval "port_$name=$p"
}
