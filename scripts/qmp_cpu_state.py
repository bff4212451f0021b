#!/usr/bin/env python3
"""Asks a running QEMU, through its QMP socket, where each CPU is, and prints one line per CPU:
   cpu N: RIP 0x..., CPL c, interrupts on|off[, halted][, in NAME at +0xOFF]
scripts/run.sh calls it when a payload has not returned in time, before stopping QEMU, so a
hang names the code it is stuck in. Arguments: SOCKET [NAME=BASE:BYTES ...], the extents to
name (the payload image, the hypervisor's region: from the loader's lines). Prints nothing and
exits 1 when QEMU does not answer within 5 s. A hung CPU still takes the firmware's timer
interrupts, so one look may find it in the handler: it looks 7 times, 50 ms apart, and
reports for each CPU the place it was found most often (the first such sample)."""
import collections
import json
import re
import socket
import sys
import time


SAMPLES = 7


def ask(sock_path):
    """Yields QEMU's `info registers -a` SAMPLES times."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock_path)
    f = s.makefile("rw")

    def reply():
        while True:  # events may come before the answer
            line = f.readline()
            if not line:
                raise OSError("QMP closed")
            m = json.loads(line)
            if "event" not in m:
                return m

    reply()  # the greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    for i in range(SAMPLES):
        f.write(json.dumps({"execute": "human-monitor-command",
                            "arguments": {"command-line": "info registers -a"}}) + "\n")
        f.flush()
        yield reply().get("return", "")
        time.sleep(0.05)


def main():
    try:
        samples = [t.replace("\r", "") for t in ask(sys.argv[1])]
    except (OSError, ValueError):
        return 1
    if not samples:
        return 1
    extents = []
    for arg in sys.argv[2:]:
        name, _, span = arg.rpartition("=")
        base, _, size = span.partition(":")
        extents.append((name, int(base, 0), int(size, 0)))
    # "CPU#0" opens each CPU's block; RIP, RFL, CPL and HLT are on one line of it (EIP and
    # EFL outside long mode). Each CPU's lines by sample, then the most frequent one.
    lines = collections.defaultdict(list)
    for text in samples:
        for cpu, block in re.findall(r"^CPU#(\d+)\n(.*?)(?=^CPU#|\Z)", text, re.M | re.S):
            m = re.search(r"[RE]IP=([0-9a-f]+) [RE]FL=([0-9a-f]+) .*?CPL=(\d).*?HLT=(\d)", block)
            if not m:
                continue
            rip, rfl, cpl, hlt = int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4)
            where = f"cpu {cpu}: RIP 0x{rip:x}, CPL {cpl}, interrupts {'on' if rfl & 0x200 else 'off'}"
            where += ", halted" if hlt == "1" else ""
            for name, base, size in extents:
                if base <= rip < base + size:
                    where += f", in {name} at +0x{rip - base:x}"
                    break
            lines[int(cpu)].append(where)
    for cpu in sorted(lines):
        counts = collections.Counter(lines[cpu])
        print(max(lines[cpu], key=lambda l: counts[l]))  # the first of the most frequent
    return 0


if __name__ == "__main__":
    sys.exit(main())
