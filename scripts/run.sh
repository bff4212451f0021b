#!/usr/bin/env bash
# Builds the project, boots BOOTX64.EFI under QEMU (q35, OVMF, intel-iommu, edu) and prints
# the hypervisor's report (its own channel, QEMU's debug console: hv.log), then the guest's
# console (COM1: serial.log), where the payload reports: by default the demonstration
# scenario tests/scenarios/stale-translation.txt. Exits 0 only if the hypervisor's RESULT
# line says PASS and QEMU powered off within the time bound; nothing the guest prints can
# make it pass (docs/security.md). If the firmware's exception handler prints its banner on
# COM1 ("!!!! X64 Exception Type - ..."), the run stops a second later and fails naming it;
# if the payload has not returned --payload-timeout seconds after it started, the run stops
# and fails naming where each CPU was (QEMU's monitor).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${IOMMU_BUILD_DIR:-$root/build}

usage() {
  cat <<USAGE
usage: scripts/run.sh [--arch x86_64|arm64] [--aw-bits 39|48] [--smp N] [--payload selftest|shell|hostile|linux|FILE.efi]
                      [--cmdline TEXT] [--bare] [--scenario FILE] [--edus N] [--dma-mask M]
                      [--region-mib N] [--memory MiB] [--timeout SECONDS]
                      [--payload-timeout SECONDS]
                      [--run-dir DIR] [--no-build] [--quiet] [-- QEMU-ARGS...]
  --arch A       x86_64 (default) or arm64: the Arm loader on qemu-system-aarch64's virt
                  machine with an SMMUv3 (scripts/run.sh --arch arm64 --help for its options)
  --aw-bits N     IOMMU address width: 39 (3-level tables, QEMU's default) or 48 (adds 4-level)
  --smp N         logical CPUs (default 1); the hypervisor runs each as a guest
  --scenario FILE what the firmware runs as the hypervisor's guest: a fault-injection
                  scenario (docs/scenarios.md), with fault injection allowed (default:
                  tests/scenarios/stale-translation.txt); its machine line sets --aw-bits,
                  --smp, --memory, --edus and --dma-mask unless they are given;
                  scripts/fault-inject.sh runs them by the set
  --payload P     or instead: selftest (the guest's self-test of the hypervisor), shell
                  (the firmware's UEFI shell, which runs a command from startup.nsh and
                  powers off), hostile (the attacker of docs/security.md), linux (Debian's
                  kernel with an initramfs that checks the guest's view and powers off:
                  scripts/linux_payload.py fetches and builds it, with two data disks, one
                  virtio with iommu_platform=on and one AHCI), or an EFI image from the host,
                  copied to the boot disk
  --cmdline TEXT  the payload's command line (its LoadOptions; for linux, added to the
                  kernel's), printable ASCII without '#'
  --bare          linux only: boot the kernel without the project (QEMU's -kernel through
                  OVMF, the same machine otherwise), to compare boot times
  --edus N        edu devices (default 1, at most 2)
  --dma-mask M    edu's dma_mask (default 0xffffffffffffffff)
  --region-mib N  the hypervisor's reserved region, 4 to 1024 MiB (default 16)
  --no-iommu      leave out -device intel-iommu (the loader then reports FAIL: no DMAR)
  --memory MiB    guest RAM (default 512)
  --timeout S     wall-clock bound on the QEMU run (default 120); a firmware exception
                  dump on COM1 ends the run (FAIL) a second after its banner
  --payload-timeout S  bound on the payload, from the hypervisor's "cpu 0 goes on as a
                  guest" line to its RESULT line (default 30; 0: only --timeout); a payload
                  that has not returned by then fails the run, which names the code each
                  CPU was running (RIP, and the offset in the payload image if it is there)
  --run-dir DIR   where the ESP, firmware variables and the logs (hv.log, serial.log) go
                  (default build/run/aw<N>)
  --no-build      use the existing build
  --quiet         print only the final verdict line
  -- ARGS         passed to qemu-system-x86_64 as they are, e.g. -- -trace vtd_dmar_fault -D log
USAGE
}

# Empty: not given (a scenario's machine line or the default decides).
aw_bits="" smp="" payload="" scenario="" edus="" dma_mask="" region_mib="" iommu=1 memory="" timeout_s="" payload_timeout_s="" run_dir="" cmdline="" bare=0 do_build=1 quiet=0
demo_scenario=$root/tests/scenarios/stale-translation.txt
qemu_extra=()
# --arch arm64 (anywhere before --) hands the whole run to scripts/run_arm64.sh.
for arg in "$@"; do
  [[ $arg != -- ]] || break
  if [[ $arg == --arch ]]; then
    args=()
    while (($#)); do
      if [[ $1 == --arch ]]; then
        case ${2:-} in
          arm64) ;;
          x86_64) ;;
          *) echo "run.sh: --arch is x86_64 (the default) or arm64" >&2; exit 2 ;;
        esac
        arch=$2; shift 2; continue
      fi
      args+=("$1"); shift
    done
    [[ $arch == arm64 ]] && exec "$root/scripts/run_arm64.sh" "${args[@]}"
    set -- "${args[@]}"
    break
  fi
done
while (($#)); do
  case $1 in
    --aw-bits) aw_bits=${2:?--aw-bits needs a value}; shift 2 ;;
    --smp) smp=${2:?--smp needs a value}; shift 2 ;;
    --payload) payload=${2:?--payload needs a value}; shift 2 ;;
    --region-mib) region_mib=${2:?--region-mib needs a value}; shift 2 ;;
    --scenario) scenario=${2:?--scenario needs a file}; payload=faultinject; shift 2 ;;
    --edus) edus=${2:?--edus needs a value}; shift 2 ;;
    --dma-mask) dma_mask=${2:?--dma-mask needs a value}; shift 2 ;;
    --no-iommu) iommu=0; shift ;;
    --memory) memory=${2:?--memory needs a value}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    --payload-timeout) payload_timeout_s=${2:?--payload-timeout needs a value}; shift 2 ;;
    --cmdline) cmdline=${2?--cmdline needs a value}; shift 2 ;;
    --bare) bare=1; shift ;;
    --run-dir) run_dir=${2:?--run-dir needs a value}; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; qemu_extra=("$@"); break ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -n $payload ]] || { payload=faultinject; scenario=${scenario:-$demo_scenario}; }
[[ $payload != faultinject ]] || [[ -f $scenario ]] || { echo "run.sh: --scenario $scenario: no such file" >&2; exit 2; }

"$root/scripts/bootstrap.sh"

((!do_build)) || "$root/scripts/build.sh" "$build" run.sh
efi=$build/BOOTX64.EFI
selftest=$build/SELFTEST.EFI
shim=$build/DDISHIM.EFI
if [[ $payload == faultinject ]]; then
  # A malformed scenario stops here, with FILE:LINE; a good one names its machine.
  [[ -x $build/scenario-check ]] || { echo "run.sh: $build/scenario-check is missing; run without --no-build" >&2; exit 1; }
  machine_line=$("$build/scenario-check" "$scenario") || exit 2
  [[ $machine_line =~ machine\ aw-bits=([0-9]+)\ cpus=([0-9]+)\ memory=([0-9]+)\ edus=([0-9]+)\ dma_mask=(0x[0-9a-f]+) ]] ||
    { echo "run.sh: scenario-check said: $machine_line" >&2; exit 2; }
  aw_bits=${aw_bits:-${BASH_REMATCH[1]}} smp=${smp:-${BASH_REMATCH[2]}} memory=${memory:-${BASH_REMATCH[3]}}
  edus=${edus:-${BASH_REMATCH[4]}} dma_mask=${dma_mask:-${BASH_REMATCH[5]}}
fi
aw_bits=${aw_bits:-39} smp=${smp:-1} memory=${memory:-512} edus=${edus:-1} dma_mask=${dma_mask:-0xffffffffffffffff}
# Linux boots for tens of seconds under TCG: longer bounds unless given.
if [[ $payload == linux ]]; then timeout_s=${timeout_s:-300} payload_timeout_s=${payload_timeout_s:-180}; fi
timeout_s=${timeout_s:-120} payload_timeout_s=${payload_timeout_s:-30}
((!bare)) || [[ $payload == linux ]] || { echo "run.sh: --bare is for --payload linux" >&2; exit 2; }
[[ $cmdline =~ ^[\ -\"\$-~]*$ ]] || { echo "run.sh: --cmdline is printable ASCII without '#'" >&2; exit 2; }
case $aw_bits in 39|48) ;; *) echo "run.sh: --aw-bits must be 39 or 48 (QEMU 7.2 accepts no other)" >&2; exit 2 ;; esac
[[ $memory =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ && $payload_timeout_s =~ ^[0-9]+$ && $smp =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --memory, --timeout, --payload-timeout and --smp take whole numbers" >&2; exit 2; }
[[ $edus =~ ^[12]$ ]] || { echo "run.sh: --edus is 1 or 2" >&2; exit 2; }
[[ $dma_mask =~ ^0x[0-9a-fA-F]+$ ]] || { echo "run.sh: --dma-mask is a hex number" >&2; exit 2; }
case $payload in
  selftest|shell|faultinject|hostile|linux) ;;
  *) [[ -f $payload ]] || { echo "run.sh: --payload $payload: no such file" >&2; exit 2; } ;;
esac
faultinj=$build/FAULTINJ.EFI
hostile=$build/HOSTILE.EFI
for f in "$efi" "$selftest" "$shim" "$faultinj" "$hostile"; do
  [[ -f $f ]] || { echo "run.sh: $f is missing; run without --no-build" >&2; exit 1; }
done
linux=$build/linux
if [[ $payload == linux ]]; then
  # Fetched once with apt-get download, then reused (scripts/linux_payload.py).
  python3 "$root/scripts/linux_payload.py" --out "$linux" ||
    { echo "run.sh: could not build the Linux payload (scripts/linux_payload.py)" >&2; exit 1; }
fi

machine=aw$aw_bits
((smp == 1)) || machine+=-smp$smp
((iommu)) || machine=no-iommu
[[ $payload != linux ]] || machine=linux-$machine
((!bare)) || machine+=-bare
run_dir=${run_dir:-$build/run/$machine}
rm -rf "$run_dir"
mkdir -p "$run_dir/esp/EFI/BOOT"
cp "$efi" "$run_dir/esp/EFI/BOOT/BOOTX64.EFI"
cp "$selftest" "$run_dir/esp/EFI/BOOT/SELFTEST.EFI"
cp "$shim" "$run_dir/esp/EFI/BOOT/DDISHIM.EFI"
# The loader's configuration (docs/hypervisor.md), written only when asked for.
config=""
case $payload in
  selftest) ;;
  faultinject)
    cp "$faultinj" "$run_dir/esp/EFI/BOOT/FAULTINJ.EFI"
    cp "$scenario" "$run_dir/esp/EFI/BOOT/SCENARIO.TXT"
    config+="payload = faultinject"$'\n'"fault_injection = on"$'\n' ;;
  hostile)
    cp "$hostile" "$run_dir/esp/EFI/BOOT/HOSTILE.EFI"
    config+="payload = hostile"$'\n' ;;
  linux)
    cp "$linux/vmlinuz.efi" "$run_dir/esp/EFI/BOOT/PAYLOAD.EFI"
    cp "$linux/initrd.img" "$run_dir/esp/EFI/BOOT/INITRD.IMG"
    cp "$linux/disk-virtio.img" "$linux/disk-ahci.img" "$run_dir/"
    # panic=-1: a panic resets at once, and the run ends then rather than at its time bound.
    linux_cmdline="console=ttyS0 quiet panic=-1 iommu_hv_disks=2${cmdline:+ $cmdline}"
    ((!bare)) || linux_cmdline+=" iommu_hv_bare=1"
    config+="payload = \\EFI\\BOOT\\PAYLOAD.EFI"$'\n'"payload_options = initrd=\\EFI\\BOOT\\INITRD.IMG $linux_cmdline"$'\n' ;;
  shell)
    config+="payload = shell"$'\n'
    # The shell runs startup.nsh from the first file system, then the command powers off.
    printf '%s\r\n' "echo iommu-hv: the UEFI shell ran this command as the hypervisor's guest" "reset -s" \
      >"$run_dir/esp/startup.nsh" ;;
  *)
    cp "$payload" "$run_dir/esp/EFI/BOOT/PAYLOAD.EFI"
    config+="payload = \\EFI\\BOOT\\PAYLOAD.EFI"$'\n'
    [[ -z $cmdline ]] || config+="payload_options = $cmdline"$'\n' ;;
esac
[[ -z $region_mib ]] || config+="region_mib = $region_mib"$'\n'
[[ -z $config ]] || printf '%s' "$config" >"$run_dir/esp/EFI/BOOT/IOMMUHV.CFG"
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run_dir/vars.fd"
serial_log=$run_dir/serial.log
hv_log=$run_dir/hv.log
qemu_log=$run_dir/qemu.log
qmp_socket=$run_dir/qmp.sock
# A Unix socket's path has at most 107 bytes; a deep run directory gets one in /tmp instead.
((${#qmp_socket} < 100)) || qmp_socket=$(mktemp -u /tmp/iommu-hv-qmp.XXXXXX)

qemu_cmd=(qemu-system-x86_64
  -machine q35 -cpu max -smp "$smp" -m "$memory" -display none -monitor none -no-reboot
  -serial "file:$serial_log" -debugcon "file:$hv_log" -qmp "unix:$qmp_socket,server=on,wait=off"
  -device "edu,dma_mask=$dma_mask"
  -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
  -drive "if=pflash,format=raw,file=$run_dir/vars.fd"
  -drive "format=raw,file=fat:rw:$run_dir/esp")
((edus == 1)) || qemu_cmd+=(-device "edu,dma_mask=$dma_mask")
if ((iommu)); then
  qemu_cmd+=(-device "intel-iommu,aw-bits=$aw_bits")
fi
if [[ $payload == linux ]]; then
  # Two data disks for the guest's DMA checks: virtio-blk translated by the IOMMU
  # (iommu_platform=on needs the modern device) and a disk on the chipset's AHCI.
  qemu_cmd+=(-drive "if=none,id=vdisk,format=raw,file=$run_dir/disk-virtio.img"
    -device virtio-blk-pci,drive=vdisk,disable-legacy=on,iommu_platform=on
    -drive "if=none,id=adisk,format=raw,file=$run_dir/disk-ahci.img" -device ide-hd,drive=adisk,bus=ide.1)
  if ((bare)); then
    qemu_cmd+=(-kernel "$linux/vmlinuz.efi" -initrd "$linux/initrd.img" -append "$linux_cmdline")
  fi
fi
qemu_cmd+=("${qemu_extra[@]}")
printf '%q ' "${qemu_cmd[@]}" >"$run_dir/command"
echo >>"$run_dir/command"

# QEMU runs in the background under timeout(1) while this watches the guest's console for the
# firmware's exception banner ("!!!! X64 Exception Type - 06(#UD - Invalid Opcode) ..."):
# OVMF's handler prints it and a register dump on COM1, then loops forever, so the run stops
# a second after the banner (time for the dump) instead of at the time bound. It also watches
# the hypervisor's channel: from the loader's "cpu 0 goes on as a guest" line the payload has
# --payload-timeout seconds to return (the hypervisor's RESULT line); if it has not, QEMU's
# monitor says where each CPU is, and the run stops. The trap makes sure no QEMU outlives
# this script, however it ends.
exception_re='!!!! .*Exception'
exception="" hang="" cpu_state="" payload_began="" init_at=""
case $payload in
  selftest|faultinject|hostile) payload_image=${payload^^}.EFI; [[ $payload != faultinject ]] || payload_image=FAULTINJ.EFI ;;
  shell) payload_image="the UEFI shell" ;;
  *) payload_image=${payload##*/} ;;
esac
start=$(date +%s.%N)
timeout -k 5 "$timeout_s" "${qemu_cmd[@]}" >"$qemu_log" 2>&1 &
qemu_pid=$!
stop_qemu() {
  # timeout(1) passes TERM on to QEMU, which then exits; KILL both if it does not within 5 s.
  kill -TERM "$qemu_pid" 2>/dev/null || return 0
  for _ in {1..50}; do kill -0 "$qemu_pid" 2>/dev/null || return 0; sleep 0.1; done
  pkill -KILL -P "$qemu_pid" 2>/dev/null; kill -KILL "$qemu_pid" 2>/dev/null; return 0
}
trap 'stop_qemu' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
while kill -0 "$qemu_pid" 2>/dev/null; do
  if grep -aq -- "$exception_re" "$serial_log" 2>/dev/null; then
    sleep 1
    exception=$(grep -ao -m1 -- "$exception_re.*" "$serial_log" | tr -d '\r' | sed 's/[[:space:]]*$//')
    stop_qemu
    break
  fi
  if [[ $payload == linux && -z $init_at ]] && grep -aq 'linux: /init started' "$serial_log" 2>/dev/null; then
    init_at=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  fi
  if ((payload_timeout_s && !bare)) && [[ -f $hv_log ]]; then
    if [[ -z $payload_began ]] && grep -aq '^check: PASS cpu 0 goes on as a guest' "$hv_log"; then
      payload_began=$(date +%s)
    fi
    if [[ -n $payload_began ]] && (($(date +%s) - payload_began >= payload_timeout_s)) &&
       ! grep -aq '^RESULT:' "$hv_log"; then
      hang="the payload did not return within ${payload_timeout_s} s of its start"
      # Where it hangs, named by the extents the loader printed: the payload image's (its
      # check line) and the hypervisor's region (the default domain's line).
      extents=()
      extent=$(grep -aom1 'payload[^(]* loaded at 0x[0-9a-f]*, [0-9]* bytes' "$hv_log" |
               sed -E 's/.* at (0x[0-9a-f]+), ([0-9]+) bytes/\1:\2/' || true)
      [[ -z $extent ]] || extents+=("$payload_image=$extent")
      extent=$(grep -aom1 '^remap: reserved region \[0x[0-9a-f]*, 0x[0-9a-f]*)' "$hv_log" |
               sed -E 's/.*\[(0x[0-9a-f]+), (0x[0-9a-f]+)\)/\1 \2/' || true)
      [[ -z $extent ]] || extents+=("the hypervisor's region=${extent% *}:$((${extent#* } - ${extent% *}))")
      cpu_state=$(python3 "$root/scripts/qmp_cpu_state.py" "$qmp_socket" "${extents[@]}" || true)
      stop_qemu
      break
    fi
  fi
  sleep 0.2
done
set +e
wait "$qemu_pid"
qemu_rc=$?
set -e
trap - EXIT INT TERM
rm -f "$qmp_socket"
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

# The hypervisor's report starts at the loader's banner; the guest's console after the
# loader's pointer to the channel (what precedes it is firmware output).
report=$( [[ -f $hv_log ]] && tr -d '\r' <"$hv_log" | sed -n '/^=== iommu-hv/,$p')
if ((bare)); then # no loader: the kernel's console from its first line
  guest=$( [[ -f $serial_log ]] && tr -d '\r' <"$serial_log" | sed -n '/linux: \/init started/,$p' |
           sed '1s/.*linux: \/init started/linux: \/init started/')
else
  guest=$( [[ -f $serial_log ]] && tr -d '\r' <"$serial_log" | sed -n '/^iommu-hv: the loader/,$p' | sed 1d)
fi
if ((!quiet)); then
  printf '%s\n' "$report"
  printf -- '--- guest console (COM1) ---\n%s\n' "$guest"
  if [[ -n $exception ]]; then
    # The firmware's dump: from its banner to its "Find image" line (at most 40 lines).
    printf -- '--- the firmware'"'"'s exception dump (COM1) ---\n'
    tr -d '\r' <"$serial_log" | awk -v re="$exception_re" '
      !n && $0 ~ re { $0 = substr($0, index($0, "!!!! ")); n = 1 }
      n { print; if (++n > 41 || /^!!!! Find image/) exit }'
  fi
  if [[ -n $hang ]]; then
    [[ -n $cpu_state ]] || cpu_state="QEMU's monitor did not answer"
    printf -- '--- where the CPUs were when the payload timed out (QEMU'"'"'s monitor) ---\n%s\n' "$cpu_state"
  fi
fi

verdict=FAIL why=""
if [[ -n $exception ]]; then
  why="the guest took an exception in the firmware's handler: $exception"
elif [[ -n $hang ]]; then
  nl=$'\n'
  why="$hang${cpu_state:+ (${cpu_state//$nl/; })}"
elif ((qemu_rc == 124 || qemu_rc == 137)); then
  why="QEMU did not finish within ${timeout_s} s"
elif ((qemu_rc != 0)); then
  why="QEMU exited with status $qemu_rc (see $qemu_log)"
elif ((bare)); then
  linux_result=$(grep -m1 '^linux-checks: [0-9]* passed, [0-9]* failed' <<<"$guest" || true)
  if [[ $linux_result == *", 0 failed" ]]; then verdict=PASS; else why="Linux's checks: ${linux_result:-no result line}"; fi
elif [[ -z $report ]]; then
  why="the loader printed nothing (did OVMF boot the ESP?)"
elif [[ $payload == shell ]] && ! grep -q "^iommu-hv: the UEFI shell ran this command" <<<"$guest"; then
  why="the shell's command did not run"
elif [[ $payload == linux ]] && ! grep -q '^linux-checks: [0-9]* passed, 0 failed' <<<"$guest"; then
  # The hypervisor judges its boundary; whether Linux booted whole and its disks' data
  # arrived is what Linux itself saw.
  why="Linux's checks: $(grep -m1 '^linux-checks: [0-9]* passed' <<<"$guest" || echo "no result line on COM1") (the hypervisor: $(grep -m1 '^RESULT:' <<<"$report" || echo "no RESULT"))"
elif grep -q '^RESULT: PASS' <<<"$report"; then
  verdict=PASS
else
  why=$(grep '^RESULT:' <<<"$report" || echo "no RESULT line from the hypervisor: the machine stopped early")
fi
label="aw-bits=$aw_bits"
((smp == 1)) || label+=" smp=$smp"
[[ $payload == selftest || $payload == faultinject ]] || label+=" payload=${payload##*/}"
[[ -z $scenario ]] || label+=" scenario=$(basename "$scenario")"
((iommu)) || label=no-iommu
((!bare)) || label+=" bare"
[[ -z $init_at ]] || echo "run.sh: Linux's /init started ${init_at} s after QEMU did"
echo "run.sh: $verdict $label in ${elapsed} s${why:+: $why} (logs: $hv_log, $serial_log)"
[[ $verdict == PASS ]]
