#!/usr/bin/env bash
# scripts/run.sh --arch arm64: builds the project, boots BOOTAA64.EFI under
# qemu-system-aarch64 (virt with an SMMUv3, EL2, edk2's QEMU_EFI.fd, edu) and prints the
# report (the PL011 console, serial.log): the loader's, then the hypervisor's, with the
# guest's lines marked "guest: " (the hypervisor keeps the one UART and passes the guest's
# bytes on). The firmware runs at EL1 under the EL2 hypervisor, with the payload: by default
# the demonstration scenario tests/scenarios/stale-translation.txt run by FAULTINJ.EFI. The
# boot disk is a virtio disk with iommu_platform=on, so the firmware's own disk DMA goes
# through the SMMU. Exits 0 only if the hypervisor's RESULT line says PASS, QEMU powered off
# within the time bound, and QEMU's own smmuv3 trace agrees with the report
# (scripts/smmu_trace_check.py: the SMMU enabled, translated DMA, the same events as the
# fault lines).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IOMMU_BUILD_DIR:-$root/build}

usage() {
  cat <<USAGE
usage: scripts/run.sh --arch arm64 [--scenario FILE | --payload selftest|FILE.efi] [--smp N]
                      [--edus N] [--dma-mask M] [--region-mib N] [--memory MiB] [--timeout SECONDS]
                      [--run-dir DIR] [--no-build] [--quiet] [-- QEMU-ARGS...]
  --scenario FILE a fault-injection scenario (docs/scenarios.md) run by FAULTINJ.EFI as the
                  guest, with fault injection allowed (default:
                  tests/scenarios/stale-translation.txt); its machine line sets --aw-bits,
                  --smp, --memory, --edus and --dma-mask unless they are given
  --payload P     or instead: selftest (the Arm self-test, built into the loader: EL1,
                  hypercalls, isolation probes, every CPU started by PSCI CPU_ON), hostile
                  (HOSTILE.EFI, the attacker of docs/security.md), or an EFI application run
                  as the guest
  --aw-bits N     the SMMU's stage-1 input width: 39 (3-level tables, as VT-d's aw-bits=39)
                  or 48 (4-level; the default without a scenario)
  --smp N         CPUs (default 2, or the scenario's if more); the hypervisor starts each one
                  the guest starts (PSCI CPU_ON) as a guest, and before the payload the
                  loader's guest side starts each once (a hypercall, then CPU_OFF)
  --edus N        edu devices (default 1, at most 2)
  --dma-mask M    edu's dma_mask (default 0xffffffffffffffff)
  --region-mib N  room for the hypervisor's tables in its reserved region (default 16)
  --memory MiB    RAM (default 1024)
  --timeout S     wall-clock bound on the QEMU run (default 120)
  --run-dir DIR   where the ESP and the logs (serial.log; qemu.log with QEMU's smmuv3
                  trace and its exception log, -d int) go (default build/run/arm64)
  --no-build      use the existing build
  --quiet         print only the final verdict line
  -- ARGS         passed to qemu-system-aarch64 as they are
USAGE
}

memory="" timeout_s="" run_dir="" do_build=1 quiet=0 payload="" scenario="" smp="" edus="" dma_mask="" region_mib="" aw_bits=""
qemu_extra=()
while (($#)); do
  case $1 in
    --scenario) scenario=${2:?--scenario needs a file}; payload=faultinject; shift 2 ;;
    --payload) payload=${2:?--payload needs a value}; shift 2 ;;
    --smp) smp=${2:?--smp needs a value}; shift 2 ;;
    --aw-bits) aw_bits=${2:?--aw-bits needs a value}; shift 2 ;;
    --edus) edus=${2:?--edus needs a value}; shift 2 ;;
    --dma-mask) dma_mask=${2:?--dma-mask needs a value}; shift 2 ;;
    --region-mib) region_mib=${2:?--region-mib needs a value}; shift 2 ;;
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
[[ -n $payload ]] || payload=faultinject
[[ $payload != faultinject ]] || scenario=${scenario:-$root/tests/scenarios/stale-translation.txt}
[[ $payload != faultinject || -f $scenario ]] || { echo "run.sh: --scenario $scenario: no such file" >&2; exit 2; }
[[ $payload == faultinject || $payload == selftest || $payload == hostile || -f $payload ]] ||
  { echo "run.sh: --payload $payload: no such file" >&2; exit 2; }

"$root/scripts/bootstrap.sh"
((!do_build)) || "$root/scripts/build.sh" "$build" run.sh
efi=$build/BOOTAA64.EFI
for f in "$efi" "$build/aarch64/DDISHIM.EFI" "$build/aarch64/FAULTINJ.EFI"; do
  [[ -f $f ]] || { echo "run.sh: $f is missing; run without --no-build" >&2; exit 1; }
done
if [[ $payload == faultinject ]]; then
  # A malformed scenario stops here, with FILE:LINE; a good one names its machine.
  [[ -x $build/scenario-check ]] || { echo "run.sh: $build/scenario-check is missing; run without --no-build" >&2; exit 1; }
  machine_line=$("$build/scenario-check" "$scenario") || exit 2
  [[ $machine_line =~ machine\ aw-bits=([0-9]+)\ cpus=([0-9]+)\ memory=([0-9]+)\ edus=([0-9]+)\ dma_mask=(0x[0-9a-fA-F]+) ]] ||
    { echo "run.sh: scenario-check said: $machine_line" >&2; exit 2; }
  # At least 2 CPUs: the loader's guest side starts each other CPU once as a guest.
  aw_bits=${aw_bits:-${BASH_REMATCH[1]}} smp=${smp:-$((BASH_REMATCH[2] > 2 ? BASH_REMATCH[2] : 2))} memory=${memory:-$((BASH_REMATCH[3] > 1024 ? BASH_REMATCH[3] : 1024))}
  edus=${edus:-${BASH_REMATCH[4]}} dma_mask=${dma_mask:-${BASH_REMATCH[5]}}
fi
smp=${smp:-2} memory=${memory:-1024} timeout_s=${timeout_s:-120} edus=${edus:-1} dma_mask=${dma_mask:-0xffffffffffffffff}
[[ $memory =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ && $smp =~ ^[1-8]$ ]] ||
  { echo "run.sh: --memory and --timeout take whole numbers, --smp 1 to 8" >&2; exit 2; }
[[ $edus =~ ^[12]$ ]] || { echo "run.sh: --edus is 1 or 2" >&2; exit 2; }
aw_bits=${aw_bits:-48}
case $aw_bits in 39|48) ;; *) echo "run.sh: --aw-bits must be 39 or 48" >&2; exit 2 ;; esac
[[ $dma_mask =~ ^0x[0-9a-fA-F]+$ ]] || { echo "run.sh: --dma-mask is a hex number" >&2; exit 2; }
firmware=/usr/share/qemu-efi-aarch64/QEMU_EFI.fd

run_dir=${run_dir:-$build/run/arm64}
rm -rf "$run_dir"
mkdir -p "$run_dir/esp/EFI/BOOT"
cp "$efi" "$run_dir/esp/EFI/BOOT/BOOTAA64.EFI"
cp "$build/aarch64/DDISHIM.EFI" "$run_dir/esp/EFI/BOOT/DDISHIM.EFI"
# The loader's configuration (docs/hypervisor.md), as on x86.
config=""
case $payload in
  selftest) config+="payload = selftest"$'\n' ;;
  hostile)
    [[ -f $build/aarch64/HOSTILE.EFI ]] || { echo "run.sh: $build/aarch64/HOSTILE.EFI is missing" >&2; exit 1; }
    cp "$build/aarch64/HOSTILE.EFI" "$run_dir/esp/EFI/BOOT/HOSTILE.EFI"
    config+="payload = hostile"$'\n' ;;
  faultinject)
    cp "$build/aarch64/FAULTINJ.EFI" "$run_dir/esp/EFI/BOOT/FAULTINJ.EFI"
    cp "$scenario" "$run_dir/esp/EFI/BOOT/SCENARIO.TXT"
    config+="payload = faultinject"$'\n'"fault_injection = on"$'\n' ;;
  *)
    cp "$payload" "$run_dir/esp/EFI/BOOT/PAYLOAD.EFI"
    config+="payload = \\EFI\\BOOT\\PAYLOAD.EFI"$'\n' ;;
esac
[[ -z $region_mib ]] || config+="region_mib = $region_mib"$'\n'
config+="smmu_input_bits = $aw_bits"$'\n'
printf '%s' "$config" >"$run_dir/esp/EFI/BOOT/IOMMUHV.CFG"
serial_log=$run_dir/serial.log
qemu_log=$run_dir/qemu.log
# -nic none: the virt machine's default NIC is a virtio device without iommu_platform, whose
# DMA would bypass the SMMU (QEMU's virtio devices do unless asked).
qemu_cmd=(qemu-system-aarch64
  -machine virt,virtualization=on,iommu=smmuv3,gic-version=3 -cpu max -smp "$smp" -m "$memory"
  -display none -monitor none -no-reboot -nic none
  -bios "$firmware"
  -drive "if=none,id=esp,format=raw,file=fat:rw:$run_dir/esp"
  -device virtio-blk-pci,drive=esp,iommu_platform=on,disable-legacy=on
  -device "edu,dma_mask=$dma_mask"
  -serial "file:$serial_log"
  -trace 'smmuv3_*' -d int,guest_errors -D "$qemu_log"
  "${qemu_extra[@]}")
((edus == 1)) || qemu_cmd+=(-device "edu,dma_mask=$dma_mask")
start=$(date +%s.%N)
qemu_rc=0
timeout --kill-after=5 "$timeout_s" "${qemu_cmd[@]}" </dev/null >"$run_dir/qemu.out" 2>&1 || qemu_rc=$?
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
report=$(sed -n '/^=== iommu-hv loader/,$p' "$serial_log" 2>/dev/null | tr -d '\r' | grep -v '^dump: ' || true)
((quiet)) || printf '%s\n' "$report"

what="payload=${payload##*/}"
[[ $payload != faultinject ]] || what="scenario=${scenario##*/}"
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
  echo "run.sh: $verdict arch=arm64 $what in ${elapsed} s${why:+: $why} (logs: $serial_log, $qemu_log)"; } >"$run_dir/output.txt"
tail -n 1 "$run_dir/output.txt"
[[ $verdict == PASS ]]
