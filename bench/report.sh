#!/bin/sh
# bench/report.sh: the benchmark report, bench/results/<date>.md, from a raw run file.
#
#   sh bench/report.sh [bench/results/<YYYY-MM-DD>-run.txt]   (default: the newest one)
#   (a quick run's <date>-quick-run.txt gives <date>-quick.md and <date>-quick-*.png)
#   make bench-report                                         (the same, no rerun)
#
# bench/run.sh appends one block per benchmark to the day's -run.txt ("[n/N] name (started
# ...)", its output, "[n/N] name: exit RC after S s"); the report takes the LAST block of each
# benchmark in that file (bench_kv.sh and bench_kv_client count as one), so a full `make bench`
# followed by `make bench BENCHES=bench_ring` reports the newer ring figures with the rest.
# Per benchmark: when and how it ran, its output (tables) verbatim, its summary line as a
# table, and plots written next to the report as bench/results/<date>-<name>.png:
#   - series written through bench/bench_data.h into bench/results/<date>-data/ (SN_BENCH_DATA):
#     latency quantiles (`# block quantile ns`, e.g. bench_submit's round trips) as one
#     percentile chart per benchmark, any other series as column 1 against the others;
#   - bench_ring: throughput against message size, from its "throughput (Mmsg/s)" table
#     (only the 16-byte summary figures when the table is missing);
#   - bench_pipeline: words/s against cores, from its summary line;
#   - bench_kv, bench_httpd, bench_echo: ours/peer ratios per workload and setup, and their
#     throughput, from their summary lines;
#   - any other benchmark whose summary has *ratio* keys: those ratios as bars.
# Plots need gnuplot (Debian gnuplot-nox, installed on demand through .ci/deps.sh when root);
# without it the report is written without them and says so. Nothing here measures anything:
# every figure comes from the run file or the data directory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
res=$here/results
# Default: the newest real run; the newest quick run (SN_BENCH_QUICK) only when there is none.
run=${1:-$(ls "$res"/*-run.txt 2>/dev/null | grep -v -- '-quick-run\.txt$' | sort | tail -n 1)}
run=${run:-$(ls "$res"/*-quick-run.txt 2>/dev/null | sort | tail -n 1)}
if [ -z "$run" ] || [ ! -f "$run" ]; then
  echo "bench/report.sh: no raw run file (bench/results/<date>-run.txt); run make bench" >&2
  exit 1
fi
res=$(cd "$(dirname "$run")" && pwd)
day=$(basename "$run" -run.txt)
md=$res/$day.md
data=$res/$day-data
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# ---- split the run file: one .out (output) and one .meta per benchmark, last block wins ----
# Output lines belong to the block whose exit line follows them, after the last marker line
# (start, exit, ===): also right for old files where concurrent runs interleaved start lines.
mkdir -p "$work/sec"
awk -v dir="$work/sec" '
function key(n) { sub(/\.sh$/, "", n); sub(/_client$/, "", n); return n }
/^=== bench run / { hdr = $0; buf = ""; inhdr = 1; next }
/^=== / { if (inhdr) hdr = hdr "\n" $0; buf = ""; next }
/^\[[0-9]+\/[0-9]+\] [^ ]+ \(started / {
  inhdr = 0; n = $2; started[key(n)] = $0; buf = ""; next
}
/^\[[0-9]+\/[0-9]+\] [^ ]+: exit / {
  inhdr = 0; n = $2; sub(/:$/, "", n); k = key(n)
  f = dir "/" k ".out"; printf "%s", buf > f; close(f)
  f = dir "/" k ".meta"
  print "name=" n > f
  print "start=" started[k] > f
  print "exit=" $0 > f
  close(f)
  if (!(k in seen)) { seen[k] = 1; order = order k "\n" }
  buf = ""; next
}
{ inhdr = 0; buf = buf $0 "\n" }
END { printf "%s", order > (dir "/order"); printf "%s\n", hdr > (dir "/machine") }
' "$run"
if [ ! -s "$work/sec/order" ]; then
  echo "bench/report.sh: no finished benchmark in $run" >&2
  exit 1
fi
# Report order: the issue's headline figures first, then the rest as they ran.
order=""
for k in bench_submit bench_ring bench_wake bench_partition bench_pipeline bench_kv \
         bench_httpd bench_echo $(cat "$work/sec/order"); do
  [ -f "$work/sec/$k.out" ] || continue
  case " $order " in *" $k "*) continue ;; esac
  order="$order $k"
done

# ---- gnuplot ----------------------------------------------------------------------------
gp=""
if ! command -v gnuplot >/dev/null 2>&1; then
  sh "$here/../.ci/deps.sh" --check gnuplot-nox || echo "bench/report.sh: no plots without gnuplot" >&2
fi
command -v gnuplot >/dev/null 2>&1 && gp=gnuplot
for f in "$res/$day"-*.png; do # the previous report's plots (a real day's not its quick ones)
  case $f in "$res/$day"-quick-*) ;; *) rm -f "$f" ;; esac
done
plots="" # "file|caption" lines of the current benchmark

# plot NAME CAPTION: runs the gnuplot commands on stdin into <date>-NAME.png.
plot() {
  png="$day-$1.png"
  [ -n "$gp" ] || return 0
  { printf "set terminal pngcairo noenhanced size 900,520 font ',10'\nset output '%s'\n" "$res/$png"
    printf "set grid\nset key top left\nset datafile missing '?'\n"
    cat; } > "$work/plot.gp"
  if gnuplot "$work/plot.gp" 2> "$work/gp.err"; then
    plots="$plots$png|$2
"
  else
    echo "bench/report.sh: gnuplot failed for $png: $(head -n 3 "$work/gp.err")" >&2
    rm -f "$res/$png"
  fi
}

# summary KEY FIELD: a value from the benchmark's summary line ("" when absent).
summary() {
  grep '^summary:' "$work/sec/$1.out" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
val() { v=$(summary "$1" "$2"); echo "${v:-?}"; }

# Side-channel series of one benchmark: quantile series in one chart, others one chart each.
plot_data() {
  bn=$1; qs=""
  for f in "$data/$bn"-*.dat; do
    [ -f "$f" ] || continue
    series=$(basename "$f" .dat); series=${series#"$bn"-}
    cols=$(head -n 1 "$f" | sed 's/^# *//')
    if [ "$cols" = "block quantile ns" ]; then
      qs="$qs${qs:+, }'$f' using (-log10(1-\$2)):3 with lines lw 1.5 title '$series'"
      continue
    fi
    set -- $cols
    [ $# -ge 2 ] || continue
    x=$1; shift; i=2; lines=""
    for c in "$@"; do
      lines="$lines${lines:+, }'$f' using 1:$i with linespoints title '$c'"
      i=$((i + 1))
    done
    plot "$bn-$series" "$bn: $series (from $(basename "$f"))" <<EOF
set title '$bn: $series'
set xlabel '$x'
plot $lines
EOF
  done
  [ -n "$qs" ] || return 0
  plot "$bn-latency" "$bn: latency distribution, one line per round (from $day-data/$bn-*.dat)" <<EOF
set title '$bn: latency by percentile (one line per round and series, from SN_BENCH_DATA)'
set xlabel 'percentile'
set ylabel 'ns'
set logscale y
set xrange [0:*]
set xtics ('0%%' 0, '50%%' 0.30103, '90%%' 1, '99%%' 2, '99.9%%' 3, '99.99%%' 4, '99.999%%' 5)
plot $qs
EOF
}

plot_ring() {
  awk -v dir="$work" '
  /^throughput \(Mmsg\/s\)/ { on = 1; next }
  on && NF == 0 { on = 0 }
  on && NF >= 5 {
    name = $1; for (i = 2; i <= NF - 4; i++) name = name " " $i
    if (!(name in idx)) { idx[name] = ++n; print name > (dir "/ring.names") }
    s = $(NF - 3); sub(/B$/, "", s)
    print s, $(NF - 2), $(NF - 1), $NF > (dir "/ring-" idx[name] ".dat")
  }' "$work/sec/bench_ring.out"
  if [ -s "$work/ring.names" ]; then
    i=1; lines=""
    while IFS= read -r name; do
      lines="$lines${lines:+, }'$work/ring-$i.dat' using 1:2:3:4 with yerrorlines lw 1.5 title '$name'"
      i=$((i + 1))
    done < "$work/ring.names"
    plot ring-throughput "bench_ring: one-way throughput against message size (median of rounds, bars min..max)" <<EOF
set title 'bench_ring: SPSC throughput, CPU 0 -> CPU 1'
set xlabel 'message size (bytes)'
set ylabel 'million messages/s'
set logscale x 2
set xtics (8, 16, 32)
set xrange [6:40]
set yrange [0:*]
set key top right
plot $lines
EOF
  else
    printf '16 %s %s\n' "$(val bench_ring ring_mps)" "$(val bench_ring ck_mps)" > "$work/ring.dat"
    ring_note="The throughput table was not in the output; the plot shows the 16-byte summary figures only."
    plot ring-throughput "bench_ring: 16-byte throughput from the summary line (no per-size table in this run)" <<EOF
set title 'bench_ring: 16-byte throughput (summary line)'
set style data histograms
set style fill solid 0.8 border -1
set ylabel 'messages/s'
set yrange [0:*]
plot '$work/ring.dat' using 2:xtic(1) title 'libsn ring (best mode)', '' using 3 title 'ck_ring'
EOF
  fi
}

plot_pipeline() {
  b=bench_pipeline
  { echo "1 $(val $b words_per_s_1)"; echo "2 $(val $b words_per_s_2)"
    echo "4 $(val $b words_per_s_4_oversubscribed)"; } > "$work/pipe.dat"
  ref=$(val $b reference_words_per_s); w1=$(val $b words_per_s_1)
  extra=""
  [ "$ref" != "?" ] && extra="$extra, $ref with lines dt 2 lw 1.5 title 'reference word count, 1 thread ($ref)'"
  [ "$w1" != "?" ] && extra="$extra, $w1 * (x < $(nproc) ? x : $(nproc)) with lines dt 3 title 'linear scaling from 1 core, up to $(nproc) CPUs'"
  plot pipeline-scaling "bench_pipeline: word-count throughput against reactor cores (summary line; $(nproc) CPUs, so 4 is oversubscribed)" <<EOF
set title 'bench_pipeline: scaling (4 cores = oversubscribed on this machine)'
set xlabel 'reactor cores (--smp)'
set ylabel 'words/s'
set xrange [0.5:4.5]
set xtics (1, 2, 4)
set yrange [0:*]
plot '$work/pipe.dat' using 1:2 with linespoints lw 2 pt 7 title 'libsn pipeline'$extra
EOF
}

# peer_plot NAME OURS PEER: ratio bars ($work/ratio.dat: workload a b) and
# throughput bars ($work/abs.dat: workload ours peer), side by side.
peer_plot() {
  plot "$1-vs-$3" "$1 against $3: ours/peer per workload (left, 1 = parity) and absolute throughput (right), from the summary line" <<EOF
set terminal pngcairo noenhanced size 1100,480 font ',10'
set output '$res/$day-$1-vs-$3.png'
set multiplot layout 1,2
set key below horizontal reverse Left width 3
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set title '$2 / $3 (median of per-round ratios)'
set ylabel 'ratio'
plot '$work/ratio.dat' using 2:xtic(1) title 'setup a', '' using 3 title 'setup b', 1 with lines dt 2 lc rgb 'black' notitle
set title 'throughput'
set ylabel '$4'
plot '$work/abs.dat' using 2:xtic(1) title '$2', '' using 3 title '$3'
unset multiplot
EOF
}

plot_kv() {
  b=bench_kv
  { echo "get90 $(val $b ratio) $(val $b b_ratio)"
    echo "get50 $(val $b a_get50_ratio) $(val $b b_get50_ratio)"
    echo "mget16 $(val $b a_mget16_ratio) $(val $b b_mget16_ratio)"
    echo "get90d1 ? $(val $b b_depth1_ratio)"
    echo "get90d1u ? $(val $b b_depth1_uring_ratio)"
    echo "memcaslap ? $(val $b b_memcaslap_ratio)"; } > "$work/ratio.dat"
  { echo "get90(a) $(val $b kv_ops) $(val $b memcached_ops)"
    echo "get90(b) $(val $b b_kv_ops) $(val $b b_memcached_ops)"; } > "$work/abs.dat"
  peer_plot kv sn-kv memcached 'ops/s (setup b shown too)'
}

plot_httpd() {
  b=bench_httpd
  { echo "hello $(val $b ratio) $(val $b b_ratio)"
    echo "pipelined $(val $b pipelined_ratio) $(val $b b_pipelined_ratio)"
    echo "static $(val $b static_ratio) $(val $b b_static_ratio)"; } > "$work/ratio.dat"
  { echo "hello $(val $b httpd_rps) $(val $b nginx_rps)"
    echo "pipelined $(val $b httpd_pipelined_rps) $(val $b nginx_pipelined_rps)"
    echo "static $(val $b httpd_static_rps) $(val $b nginx_static_rps)"; } > "$work/abs.dat"
  peer_plot httpd sn-httpd nginx 'requests/s (setup a)'
}

plot_echo() {
  b=bench_echo
  { echo "64KiB $(val $b ratio_vs_iperf3) $(val $b b_ratio)"
    echo "64KiB-vs-bidir $(val $b ratio_vs_iperf3_bidir) ?"; } > "$work/ratio.dat"
  { echo "64KiB(a) $(val $b echo_64k_mbps) $(val $b iperf3_mbps)"
    echo "64KiB(b) $(val $b b_echo_64k_mbps) $(val $b b_iperf3_mbps)"; } > "$work/abs.dat"
  peer_plot echo sn-echo iperf3 'MB/s one direction (setup b shown too)'
}

# Any *ratio* keys of the summary line as bars (benchmarks without a dedicated chart).
plot_ratios() {
  grep '^summary:' "$work/sec/$1.out" | tail -n 1 | tr ' ' '\n' |
    awk -F= '$1 ~ /ratio/ && $2 ~ /^[0-9.eE+-]+$/ { print $1, $2 }' > "$work/r.dat"
  [ "$(wc -l < "$work/r.dat")" -ge 2 ] || return 0 # one bar says nothing the table does not
  plot "$1-ratios" "$1: the ratios of its summary line (1 = parity with the peer)" <<EOF
set title '$1: summary ratios'
set style data histograms
set style fill solid 0.8 border -1
set yrange [0:*]
set xtics rotate by -20
set key off
plot '$work/r.dat' using 2:xtic(1), 1 with lines dt 2 lc rgb 'black'
EOF
}

# ---- the markdown -------------------------------------------------------------------------
md_section() {
  k=$1; meta=$work/sec/$k.meta
  get() { sed -n "s/^$1=//p" "$meta"; }
  # plots first: the plot helpers use plain (global) variables
  plots=""; ring_note=""
  case $k in
    bench_ring) plot_ring ;;
    bench_pipeline) plot_pipeline ;;
    bench_kv) plot_kv ;;
    bench_httpd) plot_httpd ;;
    bench_echo) plot_echo ;;
    *) [ -n "$(ls "$data/$k"-*.dat 2>/dev/null)" ] || plot_ratios "$k" ;;
  esac
  plot_data "$k"
  name=$(get name); start=$(get start); ex=$(get exit)
  when=$(echo "$start" | sed -n 's/.*(started \([0-9:]*\) UTC.*/\1/p')
  load=$(echo "$start" | sed -n 's/.*load \([0-9. ]*\)[,)].*/\1/p')
  args=$(echo "$start" | sed -n 's/.*args: \(.*\))$/\1/p')
  rc=$(echo "$ex" | sed -n 's/.*exit \([0-9]*\) after.*/\1/p')
  secs=$(echo "$ex" | sed -n 's/.*after \([0-9]*\) s$/\1/p')
  echo "## $k"
  echo
  line="\`$name${args:+ $args}\`: run started ${when:-?} UTC, exit ${rc:-?} after ${secs:-?} s"
  [ -n "$load" ] && line="$line, load average at start $load"
  echo "$line."
  [ "${rc:-1}" = 0 ] || echo "**This benchmark failed (exit ${rc:-?}); its figures may be partial.**"
  [ -n "$ring_note" ] && echo "$ring_note"
  echo
  printf '%s' "$plots" | while IFS='|' read -r png cap; do
    printf '![%s](%s)\n\n' "$cap" "$png"
  done
  echo '```text'
  grep -v '^summary:' "$work/sec/$k.out"
  echo '```'
  echo
  s=$(grep '^summary:' "$work/sec/$k.out" | tail -n 1)
  if [ -z "$s" ]; then
    echo "No summary line."
  else
    echo "| summary key | value |"
    echo "|---|---|"
    echo "${s#summary: }" | tr ' ' '\n' | awk -F= 'NF >= 2 { v = substr($0, length($1) + 2); print "| " $1 " | " v " |" }'
  fi
  echo
}

machine() {
  m=$work/sec/machine
  field() { sed -n "s/^=== $1: //p" "$m" | head -n 1; }
  first=$(head -n 1 "$m")
  echo "| | |"
  echo "|---|---|"
  echo "| run | $(echo "$first" | sed 's/^=== bench run //') |"
  echo "| CPUs (nproc) | $(echo "$first" | sed -n 's/.*, \([0-9]*\) CPUs$/\1/p') |"
  cpu=$(field cpu)
  echo "| model | ${cpu:-$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) (read when the report was written)} |"
  echo "| kernel | $(echo "$first" | sed -n 's/.*kernel \([^,]*\),.*/\1/p') |"
  echo "| compiler | $(field compiler) |"
  echo "| load average at start | $(field 'load average at start') |"
  echo "| build | $(field build) |"
}

{
  echo "# Benchmark report, $day"
  echo
  echo "Written by \`bench/report.sh\` at $(date -u '+%F %T') UTC from \`bench/results/$(basename "$run")\`:"
  echo "for each benchmark, the last run of it in that file. Rerun everything with \`make bench\`"
  echo "(\`SN_BENCH_QUICK=1\` for a short smoke run), one benchmark with"
  echo "\`make bench BENCHES=bench_ring\`; rewrite this report without rerunning with \`make bench-report\`."
  echo "Every benchmark runs its peer in the same run, interleaved in rounds; ratios are medians"
  echo "of per-round ratios. The machine is a shared VM: compare figures within one run."
  echo
  case $day in *-quick)
    echo "**Quick run (SN_BENCH_QUICK): short runs to test the chain, not figures to quote.**"
    echo ;;
  esac
  echo "## Machine (latest run in the file)"
  echo
  machine
  echo
  [ -n "$gp" ] || { echo "gnuplot is not installed (apt-get install gnuplot-nox): no plots."; echo; }
  echo "Benchmarks:$(for k in $order; do printf ' [%s](#%s)' "$k" "$k"; done)"
  echo
  for k in $order; do md_section "$k"; done
} > "$md.tmp" && mv "$md.tmp" "$md"
echo "report: $md"
