#!/bin/sh
# Regenerates tests/ketama/table.inc from libmemcached (Debian: apt-get install libmemcached-dev).
# Run from anywhere; only needed when the table's keys or server lists change.
set -e
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -Wall -o "$out/gen_ketama_table" tests/ketama/gen_ketama_table.c $(pkg-config --cflags --libs libmemcached)
"$out/gen_ketama_table" > "$out/table.inc"
mv "$out/table.inc" tests/ketama/table.inc
echo "wrote tests/ketama/table.inc"
