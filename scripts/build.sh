#!/usr/bin/env bash
# Configures and builds the project in BUILD_DIR (RelWithDebInfo, every core), its log in
# BUILD_DIR/build.log. On failure it prints the log's last 40 lines and "NAME: build failed
# (full log: ...)", and exits 1. What run.sh (both architectures) and fault-inject.sh build with.
#   scripts/build.sh BUILD_DIR NAME
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: scripts/build.sh BUILD_DIR NAME} name=${2:-build.sh}
log=$build/build.log
mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" -j"$(nproc)"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "$name: build failed (full log: $log)" >&2
  exit 1
fi
