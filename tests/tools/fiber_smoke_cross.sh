#!/bin/sh
# Builds tests/tools/fiber_smoke.c with core/*.c only (no reactor, so no liburing or hwloc
# for the target) for AArch64 and runs it under qemu-user: the check of the AArch64 context
# switch on an x86-64 machine. Optional, not part of `make test`; needs Debian's
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user.
#   sh tests/tools/fiber_smoke_cross.sh [out_dir]
set -eu
cd "$(dirname "$0")/../.."
out=${1:-build-aarch64}
mkdir -p "$out"
aarch64-linux-gnu-gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -I. -D_GNU_SOURCE \
    -pthread -o "$out/fiber_smoke" tests/tools/fiber_smoke.c core/*.c
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/fiber_smoke"
