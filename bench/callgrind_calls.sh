#!/bin/sh
# Instructions per cross-core call, by function, under callgrind (see bench/callgrind_calls.c).
#   sh bench/callgrind_calls.sh run TREE OUT [CALLS]   build the driver against TREE/build/libsn.a
#       (TREE: a source tree, e.g. . or build/base-<rev> from bench/groups_base.sh, built with
#       `make`), run CALLS calls (default 20000) under callgrind; OUT.out.1-02 is core 0 (the
#       caller), OUT.out-03 core 1 (the target). NO_SAMPLING=1 in the environment: sampling off.
#   sh bench/callgrind_calls.sh table CALLS OUT...      self Ir per call by function (inlined
#       parts summed), caller and target, one column per OUT.
# Loop functions (sn__loop_turn, sn_mesh_drain, sn_mesh_flush, ...) include idle polling, whose
# amount depends on how valgrind interleaves the threads: compare the call-path functions.
set -e
cmd=$1
shift
case "$cmd" in
run)
    tree=$1 out=$2 calls=${3:-20000}
    root=$(cd "$(dirname "$0")/.." && pwd)
    bin=$out.bin
    cc -O2 -g -D_GNU_SOURCE -I "$tree/include" "$root/bench/callgrind_calls.c" -o "$bin" \
        "$tree/build/libsn.a" -luring -lhwloc -lxxhash -lpthread -lm
    rm -f "$out".out*
    SN_CLOCK=monotonic timeout 600 valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$out.out" "$bin" "$calls" >"$out.log" 2>&1 &
    pid=$!
    sleep 4
    while kill -0 $pid 2>/dev/null; do
        sleep 0.5
        vg=$(pgrep -f "^/usr/bin/valgrind.bin --tool=callgrind.*$out.out" | head -n 1 || true)
        [ -n "$vg" ] && kill -USR2 "$vg" 2>/dev/null || true
    done
    wait $pid
    grep -q "^done $calls" "$out.log"
    ;;
table)
    calls=$1
    shift
    python3 - "$calls" "$@" <<'PY'
import collections, re, subprocess, sys
n = float(sys.argv[1]); outs = sys.argv[2:]
# The loop, idle and start-up work (their amount depends on how the threads interleave).
LOOP = ('sn__loop_turn', 'sn_mesh_drain', 'sn_mesh_flush', 'sn__uring_submit_and_poll',
        'sn__loop_run', 'clone', 'start_thread', 'core_thread', 'sn__core_update_gauges',
        'sn__fiber_gauges', 'sn__copy_pools_in_use', 'sn__copy_pools_capacity', 'sn__sched_run',
        'later_run', 'run_main', 'calls_main', 'sn__pool_grow_get', 'sn_now_ns',
        'clock_gettime@@GLIBC_2.17', 'sched_yield')
def load(f):
    text = subprocess.run(['callgrind_annotate', '--threshold=100', f], capture_output=True,
                          text=True).stdout
    d = collections.Counter(); on = False
    for line in text.splitlines():
        if 'file:function' in line: on = True; continue
        if 'Auto-annotated' in line: break
        m = re.match(r'\s*([\d,]+)\s+\(.*?%\)\s+(\S+)', line)
        if on and m:
            d[m.group(2).split(':')[-1]] += int(m.group(1).replace(',', '')) / n
    return d
for suffix, label in (('.out.1-02', 'caller (core 0)'), ('.out-03', 'target (core 1)')):
    ds = [load(o + suffix) for o in outs]
    print('==', label, 'Ir per call')
    print('%-28s' % 'function' + ''.join('%12s' % o.split('/')[-1][:11] for o in outs))
    keys = sorted(set().union(*ds), key=lambda k: -max(d[k] for d in ds))
    path = [0.0] * len(ds)
    for k in keys:
        if max(d[k] for d in ds) < 0.5 or k in LOOP: continue
        print('%-28s' % k[:28] + ''.join('%12.1f' % d[k] for d in ds))
        for i, d in enumerate(ds): path[i] += d[k]
    print('%-28s' % 'call path (sum)' + ''.join('%12.1f' % p for p in path))
PY
    ;;
*)
    echo "usage: $0 run TREE OUT [CALLS] | table CALLS OUT..." >&2
    exit 2
    ;;
esac
