#!/usr/bin/env python3
"""Checks of the arm64 boot's report (serial.log, written by `scripts/run.sh --arch arm64`:
the tests qemu.arm64.run, with the demonstration scenario, and qemu.arm64.selftest, with the
Arm self-test on two CPUs), each its own CTest test:

  iort_quirk   the IORT's overlapping root-complex ID ranges (QEMU writes the number of IDs
               where the specification means that number minus one) are named and resolved:
               the loader's warning, then every PCI function on bus 0 mapped to the SMMU
  stream_ids   each PCI function's stream ID is its requester ID (the RC's mapping is
               0..0xff -> 0 at the SMMU), and edu's is the one the demo used
  firmware_dma the firmware's own disk read went through the default domain once the SMMU
               translated, and nothing faulted outside the demo
  readme_example  README.md's arm64 example is what run.sh printed (output.txt beside the
               serial log): addresses, times and paths may differ
  hypervisor   the EL2 hypervisor started (stage 2, PSCI), the firmware went on at EL1 with
               the self-test, every CPU the MADT lists ran as a guest, and the verdict is the
               hypervisor's own line (no guest line can pass for it: the guest's start
               "guest: ")
  hvc_exits    QEMU's own log (-d int, qemu.log beside the serial log): every HVC the
               guest's CPUs made is an exception QEMU took from EL1 to EL2, as many as the
               self-test counted (plus its HC_GUEST_EXIT), no exception reached EL2 from
               EL2 after the launch, and the firmware's interrupts reached it at EL1
  hostile      the Arm attacker's run (qemu.arm64.hostile): every class refused with the audit
               intact, every audit passed, no forged line unmarked
  every_cpu    every CPU of the MADT ran as a guest: the boot CPU demoted, the others
               started through the hypervisor by PSCI CPU_ON and off again by CPU_OFF
  isolation    each probe of the region, the canary, the hypervisor's code and the SMMU's
               registers was a stage-2 abort the hypervisor refused and logged, and the
               guest saw it as an abort at that address

usage: arm64_checks.py CHECK SERIAL_LOG
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_checks  # noqa: E402  (the README example parser the x86 checks use)


def lines(path):
    return open(path, errors="replace").read().replace("\r", "").splitlines()


def check_iort_quirk(log):
    warned = any(re.search(r"warning: iort: .*RC node ID mappings 0 and 1 overlap at ID 0x100: count 0x100 is the "
                           r"number of IDs", line) for line in log)
    pci = [line for line in log if line.startswith("pci: 0000:00:")]
    to_smmu = [line for line in pci if re.search(r"-> smmu\[0\] stream 0x[0-9a-f]+ \(IORT ID mapping\)", line)]
    problems = []
    if not warned:
        problems.append("no warning naming the IORT count quirk")
    if not pci or len(to_smmu) != len(pci):
        problems.append(f"{len(to_smmu)} of {len(pci)} bus-0 functions mapped to smmu[0]")
    return problems


def check_stream_ids(log):
    problems = []
    seen = 0
    for line in log:
        m = re.match(r"pci: 0000:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) .* stream 0x([0-9a-f]+) ", line)
        if m:
            seen += 1
            rid = int(m.group(1), 16) << 8 | int(m.group(2), 16) << 3 | int(m.group(3))
            if int(m.group(4), 16) != rid:
                problems.append(f"{line}: stream is not the requester ID 0x{rid:x}")
    # The stream edu's DMA used: the demo's line, or a scenario's dma lines (the guest's).
    used = [m for m in (re.search(r"\(stream 0x([0-9a-f]+)\)", line) for line in log if line.startswith("demo: edu at "))
            if m] or [m for m in (re.match(r"^guest: dma \d+: sid 0x([0-9a-f]+) ", line) for line in log) if m]
    edu = next((re.search(r"stream 0x([0-9a-f]+)", line) for line in log
                if line.startswith("pci: ") and " 1234:11e8 " in line), None)
    if not seen:
        problems.append("no PCI function with a stream ID")
    if not used or not edu or any(int(m.group(1), 16) != int(edu.group(1), 16) for m in used):
        problems.append("the stream edu's DMA used is not the one the PCI list gives")
    return problems


def check_firmware_dma(log):
    problems = []
    text = "\n".join(log)
    if not re.search(r"^check: PASS firmware disk read after translation is on: status 0x0", text, re.M):
        problems.append("no passing firmware disk read after translation")
    before_demo = text.split("--- edu demo ---")[0].split("--- hypervisor ---")[0]
    if "fault: " in before_demo:
        problems.append("a fault before the demo: " + re.search(r"^fault: .*$", before_demo, re.M).group(0))
    if not re.search(r"^check: PASS smmu\[0\]: translation enabled, CR0ACK 0xd ", text, re.M):
        problems.append("smmu[0] not enabled with its queues (CR0ACK 0xd)")
    return problems


def normalize(line):
    """Addresses (RAM and the region move with the firmware's allocations), times, log paths,
    how many accesses QEMU translated (the firmware's disk reads count), and the exit counts."""
    line = re.sub(r"\(logs: [^)]*\)", "(logs: ...)", line)
    line = re.sub(r"\d+ translated DMA accesses \(\d+ for", "N translated DMA accesses (N for", line)
    line = re.sub(r" in \d+(?:\.\d+)? (m?s)\b", r" in N \1", line)
    if re.match(r"(?:guest: )?hv: cpu \d+: \d+ exits|guest: faultinj: \d+ hypercalls", line):  # timers vary
        line = re.sub(r"\d+", "N", line)
    return re.sub(r"0x[0-9a-f]{7,}", "ADDR", line)


def check_readme_example(log, output_path):
    examples = qemu_checks.readme_examples("arm64")
    out = [normalize(line) for line in lines(output_path)]
    qemu_checks.normalize = normalize  # example_found normalizes the README's side with it
    missing = [m for m in (qemu_checks.example_found(e, out) for e in examples) if m is not None]
    if not examples:
        return ["README.md has no arm64 example"]
    return [f"not in run.sh's output: {m}" for m in missing]


def check_hypervisor(log):
    problems = []
    text = "\n".join(log)
    for pattern in (r"CPU at EL2 with stage 2: PARange \d+ .*", r"stage 2: \[0, \d+ GiB\) in \d+ pages of .*",
                    r"PSCI \d+\.\d+ from the firmware, over SMC: .*", r"MADT: (\d+) CPUs \(GICC entries\).*",
                    r"IORT rewritten for the guest without its SMMUs: .*",
                    r"cpu 0 goes on as a guest at EL1: the self-test reports from here"):
        if not re.search(r"^check: PASS " + pattern + "$", text, re.M):
            problems.append(f"no passing check line /{pattern}/")
    cpus = re.search(r"^check: PASS MADT: (\d+) CPUs", text, re.M)
    started = re.findall(r"^hv: cpu (\d+) \(mpidr 0x[0-9a-f]+\) starts as a guest at 0x[0-9a-f]+ \(PSCI CPU_ON\)$",
                         text, re.M)
    if not cpus or int(cpus.group(1)) < 2 or len(set(started)) != int(cpus.group(1)) - 1:
        problems.append(f"{len(set(started))} CPUs started as guests by CPU_ON, MADT: {cpus.group(1) if cpus else '?'}")
    if not re.search(r"^guest: check: PASS guest: the firmware runs at EL1$", text, re.M):
        problems.append("the guest did not say it runs at EL1")
    if not re.search(r"^guest: RESULT: PASS ", text, re.M):
        problems.append("the self-test's own RESULT is not PASS")
    verdicts = [line for line in log if "RESULT:" in line]
    own = [line for line in verdicts if line.startswith("RESULT: ")]
    if len(own) != 1 or not own[0].startswith("RESULT: PASS ") or "payload ok" not in own[0]:
        problems.append(f"the hypervisor's verdict: {own}")
    if any(not line.startswith(("RESULT: ", "guest: ")) for line in verdicts):
        problems.append("a RESULT line that is neither the hypervisor's nor marked as the guest's")
    return problems


def check_every_cpu(log):
    """Every CPU the MADT lists ran as a guest: the boot CPU from the demotion, every other
    one started through the hypervisor (PSCI CPU_ON) and off again by CPU_OFF, which is where
    the hypervisor lets a CPU go."""
    text = "\n".join(log)
    cpus = re.search(r"^check: PASS MADT: (\d+) CPUs", text, re.M)
    if not cpus or int(cpus.group(1)) < 2:
        return [f"the machine has {cpus.group(1) if cpus else 'no listed'} CPUs: this needs 2 or more"]
    started = set(re.findall(r"^hv: cpu (\d+) \(mpidr 0x[0-9a-f]+\) starts as a guest at 0x[0-9a-f]+ \(PSCI CPU_ON\)$",
                             text, re.M))
    off = set(re.findall(r"^hv: cpu (\d+) leaves the guest: PSCI CPU_OFF$", text, re.M))
    want = {str(i) for i in range(1, int(cpus.group(1)))}
    problems = []
    if started != want:
        problems.append(f"CPUs started as guests: {sorted(started)}, want {sorted(want)}")
    if off != want:
        problems.append(f"CPUs that left by CPU_OFF: {sorted(off)}, want {sorted(want)}")
    if not re.search(r"^check: PASS cpu 0 goes on as a guest at EL1", text, re.M):
        problems.append("the boot CPU did not go on as a guest")
    return problems


HOSTILE_CLASSES = ("memory", "console", "hypercall", "psci", "cpus", "dma", "gic")


def check_hostile(log):
    """The Arm attacker (boot/guest/hostile/hostile_arm64.c, two CPUs): every class ran and
    was refused as documented with the hypervisor's audit intact, every audit of the run
    passed, and no line the guest forged passes for the hypervisor's: the log is split the
    way Python splits lines (at form feeds, separators and the like too), and the one
    unmarked RESULT line is the hypervisor's PASS."""
    problems = []
    text = "\n".join(log)
    for cls in HOSTILE_CLASSES:
        if not re.search(rf"^guest: check: PASS class {cls}: .*; audit: all intact$", text, re.M):
            problems.append(f"class {cls} did not pass")
    failed = [line for line in log if re.match(r"^hv: audit \d+ .*: FAIL$", line)]
    if failed:
        problems.append(f"{len(failed)} audits failed, the first: {failed[0]}")
    unmarked = [line for line in log if "RESULT:" in line and not line.startswith("guest: ")]
    if len(unmarked) != 1 or not re.match(r"^RESULT: PASS \(\d+ loader checks, 0 failed; payload ok; \d+ audits, 0 failed\)$",
                                          unmarked[0]):
        problems.append(f"unmarked RESULT lines: {unmarked[:3]}")
    forged = sum(1 for line in log if line.startswith("guest: ") and "RESULT: PASS (forged" in line)
    if forged < 10:
        problems.append(f"the console class forged {forged} lines, fewer than it writes")
    return problems


def guest_hvc_count(log):
    """The HVCs the guest says it made, and how many more QEMU may see: the self-test counts
    all of its own and its CPUs'; a payload's run counts the payload's and the DDI shim's
    calls up to its summary line, one per CPU the loader's guest side started, and the
    shim's 10 ms timer may poll a few times more before the exit. Both end with
    HC_GUEST_EXIT. None when the log has no count."""
    for line in log:
        m = re.match(r"^guest: selftest: (\d+) HVCs made on this CPU and (\d+) on the others", line)
        if m:
            return int(m.group(1)) + int(m.group(2)) + 1, 0
    for line in log:
        m = re.match(r"^guest: faultinj: (\d+) hypercalls made, (\d+) more through the DDI shim$", line)
        if m:
            cycled = sum(1 for x in log if re.match(r"^guest: cpu with mpidr 0x[0-9a-f]+ ran as a guest", x))
            return int(m.group(1)) + int(m.group(2)) + cycled + 1, 30
    return None


def check_hvc_exits(log, qemu_log_path):
    count = guest_hvc_count(log)
    if not count:
        return ["no count of HVCs from the guest"]
    expected, slack = count
    entries = re.findall(r"^Taking exception (\d+) \[([^\]]*)\].*\n(?:\.\.\.from (EL\d) to (EL\d))?",
                         open(qemu_log_path, errors="replace").read(), re.M)
    hvc = [e for e in entries if e[1] == "Hypervisor Call"]
    hvc_to_el2 = [e for e in hvc if e[2] == "EL1" and e[3] == "EL2"]
    problems = []
    if not expected <= len(hvc_to_el2) <= expected + slack or len(hvc) != len(hvc_to_el2):
        problems.append(f"QEMU took {len(hvc)} HVC exceptions, {len(hvc_to_el2)} from EL1 to EL2; the guest made "
                        f"{expected}" + (f" (and its shim's timer up to {slack} more)" if slack else ""))
    # The firmware takes its interrupts at EL2 until the launch; after the first exception
    # from the guest, one from EL2 to EL2 would be the hypervisor faulting.
    launch = next((i for i, e in enumerate(entries) if e[2] in ("EL0", "EL1") and e[3] == "EL2"), len(entries))
    in_el2 = [e for e in entries[launch:] if e[2] == "EL2" and e[3] == "EL2"]
    irqs_el1 = [e for e in entries[launch:] if e[1] == "IRQ" and e[2] == "EL1" and e[3] == "EL1"]
    if not irqs_el1:
        problems.append("no IRQ reached the guest at EL1 after the launch (the firmware's timer)")
    if in_el2:
        problems.append(f"{len(in_el2)} exceptions taken in EL2 itself: {in_el2[0][1]}")
    print(f"hvc_exits: QEMU took {len(hvc_to_el2)} HVC exceptions from EL1 to EL2 "
          f"({sum(1 for e in entries if e[3] == 'EL2')} exceptions to EL2 in all); the guest counted {expected}; "
          f"{len(irqs_el1)} IRQs taken by the guest at EL1")
    return problems


def check_isolation(log):
    problems = []
    text = "\n".join(log)
    for pattern in (r"guest: the audit's canary at 0x[0-9a-f]+: read and write abort",
                    r"guest: the region \[0x[0-9a-f]+, 0x[0-9a-f]+\) and the hypervisor's code in it at 0x[0-9a-f]+: "
                    r"reads and writes abort",
                    r"guest: a branch to the hypervisor's code takes an instruction abort",
                    r"guest: the SMMU's registers at 0x[0-9a-f]+: a read and a write abort"):
        if not re.search(r"^guest: check: PASS " + pattern + "$", text, re.M):
            problems.append(f"the guest's check /{pattern}/ did not pass")
    refused = re.findall(r"^hv: cpu 0: guest (read of|write to|fetch from) (0x[0-9a-f]+) at pc 0x[0-9a-f]+ refused: "
                         r"abort injected", text, re.M)
    kinds = {k for k, _ in refused}
    if len(refused) < 8 or kinds != {"read of", "write to", "fetch from"}:
        problems.append(f"the hypervisor logged {len(refused)} refused accesses ({sorted(kinds)}), not the 8 probes")
    return problems


CHECKS = {"iort_quirk": check_iort_quirk, "stream_ids": check_stream_ids, "firmware_dma": check_firmware_dma,
          "hypervisor": check_hypervisor, "isolation": check_isolation, "every_cpu": check_every_cpu,
          "hostile": check_hostile, "hvc_exits": None,
          "readme_example": None}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        print(__doc__)
        return 2
    if sys.argv[1] == "readme_example":
        problems = check_readme_example(None, os.path.join(os.path.dirname(sys.argv[2]), "output.txt"))
    elif sys.argv[1] == "hvc_exits":
        problems = check_hvc_exits(lines(sys.argv[2]), os.path.join(os.path.dirname(sys.argv[2]), "qemu.log"))
    else:
        problems = CHECKS[sys.argv[1]](lines(sys.argv[2]))
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"PASS: {sys.argv[1]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
