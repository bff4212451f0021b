#!/usr/bin/env bash
# scripts/run.sh --arch arm64: builds the project, boots BOOTAA64.EFI under
# qemu-system-aarch64 (virt with an SMMUv3, EL2, edk2's QEMU_EFI.fd, edu) and prints the
# loader's report (the PL011 console: serial.log). The boot disk is a virtio disk with
# iommu_platform=on, so the firmware's own disk DMA goes through the SMMU. Exits 0 only if the
# report's RESULT line says PASS, QEMU powered off within the time bound, and QEMU's own
# smmuv3 trace agrees with the report (scripts/smmu_trace_check.py: the SMMU enabled,
# translated DMA, and the same events as the loader's fault lines).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IOMMU_BUILD_DIR:-$root/build}

usage() {
  cat <<USAGE
usage: scripts/run.sh --arch arm64 [--memory MiB] [--timeout SECONDS] [--run-dir DIR]
                      [--no-build] [--quiet] [-- QEMU-ARGS...]
  --memory MiB    RAM (default 1024)
  --timeout S     wall-clock bound on the QEMU run (default 120)
  --run-dir DIR   where the ESP and the logs (serial.log, qemu.log with QEMU's smmuv3
                  trace) go (default build/run/arm64)
  --no-build      use the existing build
  --quiet         print only the final verdict line
  -- ARGS         passed to qemu-system-aarch64 as they are
The x86 options (--payload, --scenario, --smp, --aw-bits, ...) need the EL2 hypervisor,
which the Arm loader does not have yet (docs/design.md).
USAGE
}

memory="" timeout_s="" run_dir="" do_build=1 quiet=0
qemu_extra=()
while (($#)); do
  case $1 in
    --memory) memory=${2:?--memory needs a value}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    --run-dir) run_dir=${2:?--run-dir needs a value}; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; qemu_extra=("$@"); break ;;
    *) echo "run.sh --arch arm64: $1 is not an arm64 option" >&2; usage >&2; exit 2 ;;
  esac
done
memory=${memory:-1024} timeout_s=${timeout_s:-120}
[[ $memory =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ ]] || { echo "run.sh: --memory and --timeout take whole numbers" >&2; exit 2; }

"$root/scripts/bootstrap.sh"
if ((do_build)); then
  build_log=$build/build.log
  mkdir -p "$build"
  if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
         cmake --build "$build" -j"$(nproc)"; } >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "run.sh: build failed (full log: $build_log)" >&2
    exit 1
  fi
fi
efi=$build/BOOTAA64.EFI
[[ -f $efi ]] || { echo "run.sh: $efi is missing; run without --no-build" >&2; exit 1; }
firmware=/usr/share/qemu-efi-aarch64/QEMU_EFI.fd

run_dir=${run_dir:-$build/run/arm64}
rm -rf "$run_dir"
mkdir -p "$run_dir/esp/EFI/BOOT"
cp "$efi" "$run_dir/esp/EFI/BOOT/BOOTAA64.EFI"
serial_log=$run_dir/serial.log
qemu_log=$run_dir/qemu.log
# -nic none: the virt machine's default NIC is a virtio device without iommu_platform, whose
# DMA would bypass the SMMU (QEMU's virtio devices do unless asked).
qemu_cmd=(qemu-system-aarch64
  -machine virt,virtualization=on,iommu=smmuv3,gic-version=3 -cpu max -smp 2 -m "$memory"
  -display none -monitor none -no-reboot -nic none
  -bios "$firmware"
  -drive "if=none,id=esp,format=raw,file=fat:rw:$run_dir/esp"
  -device virtio-blk-pci,drive=esp,iommu_platform=on,disable-legacy=on
  -device edu,dma_mask=0xffffffffffffffff
  -serial "file:$serial_log"
  -trace 'smmuv3_*' -d int -D "$qemu_log"
  "${qemu_extra[@]}")
start=$(date +%s.%N)
qemu_rc=0
timeout --kill-after=5 "$timeout_s" "${qemu_cmd[@]}" </dev/null >"$run_dir/qemu.out" 2>&1 || qemu_rc=$?
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
report=$(sed -n '/^=== iommu-hv loader/,$p' "$serial_log" 2>/dev/null | tr -d '\r' | grep -v '^dump: ' || true)
((quiet)) || printf '%s\n' "$report"

verdict=FAIL why=""
trace_check=""
if ((qemu_rc == 124 || qemu_rc == 137)); then
  why="QEMU did not finish within ${timeout_s} s"
elif ((qemu_rc != 0)); then
  why="QEMU exited with status $qemu_rc ($(tail -n 2 "$run_dir/qemu.out" | tr '\n' ' '))"
elif [[ -z $report ]]; then
  why="the loader printed nothing (did the firmware boot the ESP?)"
elif ! grep -q '^RESULT: PASS' <<<"$report"; then
  why=$(grep '^RESULT:' <<<"$report" || echo "no RESULT line: the machine stopped early")
elif ! trace_check=$(python3 "$root/scripts/smmu_trace_check.py" "$serial_log" "$qemu_log"); then
  why="QEMU's smmuv3 trace disagrees with the report: $trace_check"
else
  verdict=PASS
fi
((quiet)) || [[ -z $trace_check ]] || printf '%s\n' "$trace_check"
# What a user sees is kept too, for tests/qemu/arm64_checks.py (the README's example).
{ printf '%s\n' "$report"; [[ -z $trace_check ]] || printf '%s\n' "$trace_check"
  echo "run.sh: $verdict arch=arm64 in ${elapsed} s${why:+: $why} (logs: $serial_log, $qemu_log)"; } >"$run_dir/output.txt"
tail -n 1 "$run_dir/output.txt"
[[ $verdict == PASS ]]
