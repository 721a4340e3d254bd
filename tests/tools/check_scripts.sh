#!/bin/sh
# One convention for the tree's shell scripts (bench/bench_*.sh, .ci/*, tests/tools/*.sh, ...):
# each starts with a #! line naming its shell and carries the executable bit, so it can be run
# directly; and every caller in the tree (the Makefile, bench/run.sh, bench_kv_client, the
# docs) runs it through `sh` (or bash for .ci/run), so nothing depends on that bit being kept
# (an archive or a copy without modes still works). This check keeps the first half true.
#
# Ends with "check_scripts: ok" and exit 0, or names each script that breaks it and exits 1.
set -eu
cd "$(dirname "$0")/../.."
bad=0
for f in $(find . -path ./.git -prune -o -path './build*' -prune -o -type f \
    \( -name '*.sh' -o -path ./.ci/run \) -print | sort); do
    case $(head -n 1 "$f") in
    '#!/bin/sh' | '#!/usr/bin/env bash' | '#!/bin/bash') ;;
    *) echo "check_scripts: $f does not start with #!/bin/sh (or bash)"; bad=1 ;;
    esac
    [ -x "$f" ] || { echo "check_scripts: $f is not executable (chmod +x $f)"; bad=1; }
done
[ "$bad" = 0 ] || exit 1
echo "check_scripts: ok"
