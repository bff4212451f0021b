#!/usr/bin/env python3
"""Checks an arm64 run's report against QEMU's own smmuv3 trace (scripts/run_arm64.sh).

The trace is QEMU's account of what its SMMU did, independent of the loader: it must show
the SMMU enabled (a CR0 write with SMMUEN), DMA translated for the edu device's stream
(smmuv3_translate_success), and exactly the events the loader reports. Each of the loader's
"fault: smmu[N] stream 0xSID read|write 0xADDR event 0xT (NAME)" lines is one event record
it drained, and QEMU traces each record it writes (smmuv3_record_event SMMU_EVT_NAME
sid=0xSID): the two multisets of (stream, event name) must be equal.

usage: smmu_trace_check.py SERIAL_LOG QEMU_LOG   (prints one line; exit 1 on disagreement)
"""
import collections
import re
import sys

SMMU_CR0 = 0x20
CR0_SMMUEN = 0x1


def main():
    serial = open(sys.argv[1], errors="replace").read().replace("\r", "")
    trace = open(sys.argv[2], errors="replace").read()
    problems = []

    enables = [m for m in re.finditer(r"smmuv3_write_mmio addr: 0x([0-9a-f]+) val:0x([0-9a-f]+)", trace)
               if int(m.group(1), 16) == SMMU_CR0 and int(m.group(2), 16) & CR0_SMMUEN]
    if not enables:
        problems.append("no CR0 write with SMMUEN in the trace")

    # edu's stream: the demo's, or (a scenario's run has no demo) the PCI list's first edu.
    # The demo's DMA must be there, and fault; a scenario's may do neither (its own
    # cross-check, scripts/fault_inject.py, holds each DMA to what the scenario says).
    demo = re.search(r"^demo: edu at .* \(stream 0x([0-9a-f]+)\)", serial, re.M)
    edu = demo or re.search(r"^pci: .* 1234:11e8 .*stream 0x([0-9a-f]+)", serial, re.M)
    edu_sid = int(edu.group(1), 16) if edu else None
    translated = collections.Counter(int(m.group(1), 16)
                                     for m in re.finditer(r"smmuv3_translate_success \S+ sid=0x([0-9a-f]+)", trace))
    if edu_sid is None:
        problems.append("the report names no edu stream")
    elif demo and not translated[edu_sid]:
        problems.append(f"no translated DMA for edu's stream 0x{edu_sid:x} in the trace")

    # A fault line may stand for several of QEMU's events: one per 4 bytes of a transfer,
    # which the driver merges (", N events of one transfer").
    loader = collections.Counter()
    for m in re.finditer(r"^fault: smmu\[\d+\] stream 0x([0-9a-f]+) (?:read|write) 0x[0-9a-f]+ event 0x[0-9a-f]+ "
                         r"\((\w+)\)(?:, (\d+) events of one transfer)?$", serial, re.M):
        loader[(int(m.group(1), 16), m.group(2))] += int(m.group(3) or 1)
    qemu = collections.Counter(
        (int(m.group(2), 16), m.group(1))
        for m in re.finditer(r"smmuv3_record_event SMMU_EVT_(\w+) sid=0x([0-9a-f]+)", trace))
    if not loader and re.search(r"^demo: edu at ", serial, re.M):  # the demo faults on purpose
        problems.append("the report has no fault lines")
    if loader != qemu:
        problems.append("events differ: report " + describe(loader) + ", QEMU " + describe(qemu))
    if problems:
        print("; ".join(problems))
        return 1
    print(f"trace-check: SMMU enabled {len(enables)} time(s); {sum(translated.values())} translated DMA accesses "
          f"({translated[edu_sid]} for edu's stream 0x{edu_sid:x}); {sum(qemu.values())} events, the same as the "
          f"report's fault lines: {describe(qemu)}")
    return 0


def describe(counter):
    return ", ".join(f"{n}x {name} sid 0x{sid:x}" for (sid, name), n in sorted(counter.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
