#!/usr/bin/env bash
# Builds everything and runs every test: the host unit and tool tests, the same tests again
# under AddressSanitizer and UndefinedBehaviorSanitizer, the threaded tests under
# ThreadSanitizer, and the QEMU integration tests.
# Ends with one line "N passed, M failed" (N and M count CTest tests across both builds)
# and exits non-zero if any test failed or did not run.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IOMMU_BUILD_DIR:-$root/build}
asan=$build/asan
jobs=$(nproc)

"$root/scripts/bootstrap.sh" || exit 1

fail_build() {
  tail -n 40 "$2" >&2
  echo "test.sh: $1 failed (full log: $2)" >&2
  echo "0 passed, 1 failed"
  exit 1
}

mkdir -p "$build" "$asan"
echo "== build (host tools, unit tests, BOOTX64.EFI)"
{ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
  cmake --build "$build" -j"$jobs"; } >"$build/build.log" 2>&1 || fail_build "build" "$build/build.log"
echo "== build with AddressSanitizer and UndefinedBehaviorSanitizer"
{ cmake -S "$root" -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DIOMMU_SANITIZE=ON -DIOMMU_BUILD_EFI=OFF &&
  cmake --build "$asan" -j"$jobs"; } >"$asan/build.log" 2>&1 || fail_build "sanitizer build" "$asan/build.log"

tsan=$build/tsan
mkdir -p "$tsan"
echo "== build of the threaded tests with ThreadSanitizer"
{ cmake -S "$root" -B "$tsan" -DCMAKE_BUILD_TYPE=Debug -DIOMMU_TSAN=ON -DIOMMU_BUILD_EFI=OFF &&
  cmake --build "$tsan" -j"$jobs" --target test_domain test_ddi_threads test_ddi_threads_hypercalls; } >"$tsan/build.log" 2>&1 || fail_build "ThreadSanitizer build" "$tsan/build.log"

total_pass=0 total_fail=0
# Runs ctest in a build directory and adds its counts. A test that was skipped or not run
# counts as failed: a missing tool must not pass silently.
run_ctest() {
  local label=$1 dir=$2
  shift 2
  echo "== $label"
  local log=$dir/ctest.log
  (cd "$dir" && ctest --output-on-failure "$@") >"$log" 2>&1
  grep -E '^ *[0-9]+/[0-9]+ Test +#' "$log" | sed 's/^ */  /'
  local pass fail
  pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.* Passed' "$log")
  fail=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$log")
  fail=$((fail - pass))
  if ! grep -qE '^ *[0-9]+/[0-9]+ Test +#' "$log"; then
    echo "  no tests ran (see $log)"
    fail=$((fail + 1))
  fi
  if ((fail)); then
    sed -n '/The following tests FAILED/,$p; /Output from these tests/,/^$/p' "$log"
    grep -B2 -A30 -E '\*\*\*Failed|\*\*\*Skipped|Not Run|\*\*\*Timeout|\*\*\*Exception' "$log" | head -n 120
  fi
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
}

start=$SECONDS
run_ctest "host tests" "$build" -LE qemu -j"$jobs"
run_ctest "host tests under ASan+UBSan" "$asan" -j"$jobs"
run_ctest "threaded tests under ThreadSanitizer" "$tsan" -R '^(unit\.domain|ddi\.ddi_threads|ddi\.ddi_threads_hypercalls)$'
run_ctest "QEMU integration tests (logs under $build/run/)" "$build" -L qemu
echo "== done in $((SECONDS - start)) s"
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
