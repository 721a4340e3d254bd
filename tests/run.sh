#!/bin/sh
# Runs each test given, prints its output, and ends with one line "tests: N passed, N failed"
# summed over all Criterion/shim syntheses. A test is a binary (Criterion or the TSan shim) or
# a check script (tests/tools/check_*.sh, run with sh; it counts as one test that passes when
# it exits 0). Exit status is non-zero when any of them failed.
passed=0; failed=0; bad=""
for t in "$@"; do
  echo "== $t"
  case $t in
    *.sh) out=$(sh "$t" 2>&1); rc=$? ;;
    *) out=$("$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | tail -n 40
  # Criterion: "Synthesis: Tested: 5 | Passing: 5 | Failing: 0 | Crashing: 0"
  line=$(printf '%s\n' "$out" | sed -n 's/\x1b\[[0-9;]*m//g; s/.*Synthesis: Tested: \([0-9]*\) | Passing: \([0-9]*\) | Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\2 \3 \4/p' | tail -n 1)
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    failed=$((failed + $(echo "$line" | awk '{print $2 + $3}')))
  elif [ $rc -eq 0 ]; then
    case $t in *.sh) passed=$((passed + 1)) ;; esac
  fi
  if [ $rc -ne 0 ]; then bad="$bad $t"; [ -z "$line" ] && failed=$((failed + 1)); fi
done
[ -n "$bad" ] && echo "failing binaries:$bad"
echo "tests: $passed passed, $failed failed"
[ -z "$bad" ]
