#!/usr/bin/env bash
# Runs fault-injection scenarios (docs/scenarios.md) in QEMU: all of tests/scenarios/ by
# default, two at a time (-j N), each in its own QEMU with a time bound. Prints a summary
# table, writes build/fault-inject/junit.xml, keeps every run's serial log and trace under
# build/fault-inject/, and exits non-zero if any scenario failed.
#   scripts/fault-inject.sh [-j N] [--timeout S] [--no-build] [SCENARIO...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IOMMU_BUILD_DIR:-$root/build}
do_build=1
args=()
for a in "$@"; do
  if [[ $a == --no-build ]]; then do_build=0; else args+=("$a"); fi
done
"$root/scripts/bootstrap.sh"
((!do_build)) || "$root/scripts/build.sh" "$build" fault-inject
exec python3 "$root/scripts/fault_inject.py" --build "$build" "${args[@]}"
