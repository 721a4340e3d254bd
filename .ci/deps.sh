#!/bin/sh
# Installs the Debian packages libsn needs when any is missing. Quiet when all are present.
# Not root: prints the exact command to run instead and fails.
# Extra packages (benchmark and test peers) can be named as arguments.
set -e
[ "$1" = "--check" ] && shift
PKGS="build-essential pkg-config liburing-dev libhwloc-dev libxxhash-dev libcriterion-dev libck-dev libmemcached-dev curl libmemcached-tools clang libclang-rt-14-dev nutcracker memcached python3 python3-pymemcache python3-pylibmc $*"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "libsn: missing Debian packages:$missing" >&2
  echo "run:   sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "libsn: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq $missing >/dev/null
