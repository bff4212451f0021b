#!/usr/bin/env python3
"""Checks of the arm64 boot's report (build/run/arm64/serial.log, written by
`scripts/run.sh --arch arm64`, the test qemu.arm64.run), each its own CTest test:

  iort_quirk   the IORT's overlapping root-complex ID ranges (QEMU writes the number of IDs
               where the specification means that number minus one) are named and resolved:
               the loader's warning, then every PCI function on bus 0 mapped to the SMMU
  stream_ids   each PCI function's stream ID is its requester ID (the RC's mapping is
               0..0xff -> 0 at the SMMU), and edu's is the one the demo used
  firmware_dma the firmware's own disk read went through the default domain once the SMMU
               translated, and nothing faulted outside the demo
  readme_example  README.md's arm64 example is what run.sh printed (output.txt beside the
               serial log): addresses, times and paths may differ

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
    demo = next((re.search(r"\(stream 0x([0-9a-f]+)\)", line) for line in log if line.startswith("demo: edu at ")), None)
    edu = next((re.search(r"stream 0x([0-9a-f]+)", line) for line in log
                if line.startswith("pci: ") and " 1234:11e8 " in line), None)
    if not seen:
        problems.append("no PCI function with a stream ID")
    if not demo or not edu or int(demo.group(1), 16) != int(edu.group(1), 16):
        problems.append("the demo's edu stream is not the one the PCI list gives")
    return problems


def check_firmware_dma(log):
    problems = []
    text = "\n".join(log)
    if not re.search(r"^check: PASS firmware disk read after translation is on: status 0x0", text, re.M):
        problems.append("no passing firmware disk read after translation")
    before_demo = text.split("--- edu demo ---")[0]
    if "fault: " in before_demo:
        problems.append("a fault before the demo: " + re.search(r"^fault: .*$", before_demo, re.M).group(0))
    if not re.search(r"^check: PASS smmu\[0\]: translation enabled, CR0ACK 0xd ", text, re.M):
        problems.append("smmu[0] not enabled with its queues (CR0ACK 0xd)")
    return problems


def normalize(line):
    """Addresses (RAM and the region move with the firmware's allocations), times, log paths,
    and how many accesses QEMU translated (the firmware's disk reads count)."""
    line = re.sub(r"\(logs: [^)]*\)", "(logs: ...)", line)
    line = re.sub(r"\d+ translated DMA accesses \(\d+ for", "N translated DMA accesses (N for", line)
    line = re.sub(r" in \d+(?:\.\d+)? (m?s)\b", r" in N \1", line)
    return re.sub(r"0x[0-9a-f]{7,}", "ADDR", line)


def check_readme_example(log, output_path):
    examples = qemu_checks.readme_examples("arm64")
    out = [normalize(line) for line in lines(output_path)]
    qemu_checks.normalize = normalize  # example_found normalizes the README's side with it
    missing = [m for m in (qemu_checks.example_found(e, out) for e in examples) if m is not None]
    if not examples:
        return ["README.md has no arm64 example"]
    return [f"not in run.sh's output: {m}" for m in missing]


CHECKS = {"iort_quirk": check_iort_quirk, "stream_ids": check_stream_ids, "firmware_dma": check_firmware_dma,
          "readme_example": None}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        print(__doc__)
        return 2
    if sys.argv[1] == "readme_example":
        problems = check_readme_example(None, os.path.join(os.path.dirname(sys.argv[2]), "output.txt"))
    else:
        problems = CHECKS[sys.argv[1]](lines(sys.argv[2]))
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"PASS: {sys.argv[1]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
