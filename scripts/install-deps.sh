#!/bin/sh
# Install slabnotify's build, test and benchmark dependencies on Debian 12.
# Installs only what is missing; does nothing when everything is there.
# Usage: scripts/install-deps.sh [--ci]   (--ci adds the real-program test peers)
set -eu
PKGS="build-essential cmake pkg-config liburcu-dev libcriterion-dev \
libunwind-dev libdw-dev systemtap-sdt-dev libmicrohttpd-dev libncurses-dev \
libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev valgrind \
prometheus tmux gdb curl"
if [ "${1:-}" = "--ci" ]; then
  PKGS="$PKGS python3 perl sqlite3 git g++"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "slabnotify: installing missing packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "slabnotify: not root and no sudo; install:$missing" >&2; exit 1; fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
