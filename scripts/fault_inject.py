#!/usr/bin/env python3
"""The fault-injection runner behind scripts/fault-inject.sh (docs/scenarios.md).

Checks every scenario with scenario-check first (a bad one stops everything before QEMU),
runs each in its own QEMU through scripts/run.sh (-j at a time, each time-bounded), cross-
checks the guest's DMA lines with QEMU's own account of the faults (x86: the vtd_dmar_fault
trace; arm64: the SMMU's translation failures, -d guest_errors, each with the event QEMU
recorded for it, smmuv3_record_event), and reports: a summary table on stdout, JUnit XML,
and results.json; every run's serial log and trace stay in its run directory under
build/fault-inject/ (build/fault-inject-arm64/ with --arch arm64). A scenario whose machine
line says arch=x86_64 (or arm64) runs on that architecture only."""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import xml.sax.saxutils as sx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DMA_LINE = re.compile(r"^dma (\d+): sid 0x([0-9a-f]{4}) (read|write) 0x([0-9a-f]+) len (\d+) expect (ok|fault)"
                      r"(?: reason (\d+))?(?: address 0x([0-9a-f]+))?: (PASS|FAIL), (\d+) report\(s\)$", re.M)
TRACE_FAULT = re.compile(r"vtd_dmar_fault sid 0x([0-9a-f]+) fault (\d+) addr 0x([0-9a-f]+) write (\d)")
# QEMU's SMMUv3: a failed translation is logged (guest_errors) with its address, then the
# event recorded for it is traced with the stream; neither says the direction.
SMMU_FAILED = re.compile(r"translation failed for iova=0x([0-9a-f]+) \((\w+)\)")
SMMU_EVENT = re.compile(r"smmuv3_record_event (\w+) sid=0x([0-9a-f]+)")
SUMMARY = re.compile(r"^scenario (\S+): (\d+) steps, (\d+) failed; faults expected (\d+), reported (\d+)$", re.M)
MACHINE = re.compile(r"^(.*): (\S+), (\d+) steps, machine aw-bits=(\d+) cpus=(\d+) memory=(\d+) edus=(\d+) "
                     r"dma_mask=(0x[0-9a-f]+) arch=(\w+)$")
GUEST_PREFIX = "guest: "  # the guest's lines on the Arm hypervisor's channel


def check_all(build, files):
    r = subprocess.run([os.path.join(build, "scenario-check"), *files], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        return None
    machines = {}
    for line in r.stdout.splitlines():
        m = MACHINE.match(line)
        machines[m.group(1)] = {"name": m.group(2), "steps": int(m.group(3)), "aw": m.group(4), "cpus": m.group(5),
                                "memory": m.group(6), "edus": m.group(7), "dma_mask": m.group(8), "arch": m.group(9)}
    return machines


def dma_steps(serial):
    """The guest's dma lines: (line, sid, write, address, length, expect, reason, first), first
    being where the scenario says the first fault is (its address=), or None."""
    return [(int(m.group(1)), int(m.group(2), 16), m.group(3) == "write", int(m.group(4), 16), int(m.group(5)),
             m.group(6), m.group(7), int(m.group(8), 16) if m.group(8) else None) for m in DMA_LINE.finditer(serial)]


def trace_records(trace, arch):
    """QEMU's fault records in order: (sid, reason, write, address); write is None where QEMU
    does not say (arm64), reason VT-d's number or the SMMU event's name."""
    if arch == "x86_64":
        return [(int(m.group(1), 16), int(m.group(2)), m.group(4) == "1", int(m.group(3), 16))
                for m in TRACE_FAULT.finditer(trace)]
    records, pending = [], []
    for line in trace.splitlines():
        failed = SMMU_FAILED.search(line)
        if failed:
            pending.append(int(failed.group(1), 16))
            continue
        event = SMMU_EVENT.search(line)
        if event and pending:
            records.append((int(event.group(2), 16), event.group(1), None, pending.pop(0)))
    return records


def trace_faults(records, dmas):
    """QEMU records each failed access of a DMA (4 bytes at a time; a length that is not a
    multiple of 4 ends with a 2-byte and a 1-byte access), in address order. Folds them into
    one fault per DMA by the DMA each record falls in, [address, address + length) of the
    same device and direction, not by address arithmetic: records fold while they stay in
    one DMA's range and their address grows. A record in no DMA's range is a stray, folded
    the same way with the ones of the same device and direction that follow it. Returns
    (sid, reason, write, address) per fault: the DMA's own address (its first records may be
    missing when the DMA started in mapped memory), or a stray's first address; and first, the
    address of the fault's first record (where a DMA that faults part way first faulted)."""
    ranges = sorted({(d[1], d[2], d[3], d[4], d[5] == "fault") for d in dmas})
    faults, current = [], None  # current: (the range or stray key, the last address folded in)
    for sid, reason, write, address in records:
        if current and current[0][0] == sid and write in (None, current[0][1]) and address > current[1] and (
                current[0][2] is None or address < current[0][2] + current[0][3]):
            current = (current[0], address)
            continue
        # A new fault: the range that starts here, or else the latest one that holds the address.
        holding = [r for r in ranges if r[0] == sid and write in (None, r[1]) and r[2] <= address < r[2] + r[3]]
        # Where the trace does not say the direction (arm64), a DMA meant to fault comes first.
        key = max(holding, key=lambda r: (r[2] == address, write is None and r[4], r[2])) if holding \
            else (sid, write, None, 0, False)
        faults.append((sid, reason, write, key[2] if key[2] is not None else address, address))
        current = (key, address)
    return faults


def cross_check(serial, trace, arch="x86_64"):
    """Walks the scenario's DMAs and QEMU's faults together, both in the order they happened:
    a DMA the scenario says faulted must be the next fault in the trace, with its source id,
    direction, address and reason; one said to have succeeded must not be; and no fault may
    be left over. The DMAs of one burst (one step, several devices) run at once, so their
    faults may come in any order. A DMA whose scenario line names the first fault's address
    (address=A) must have QEMU's first record of it there: at A when A lies inside the DMA
    (it faults part way, from the first unmapped page), else at the DMA's start. Returns
    (problems, faults in the trace)."""
    steps = dma_steps(serial)
    traced = trace_faults(trace_records(trace, arch), steps)
    # A fault in no DMA's range is reported once, where it is, and does not stand in the
    # way of the DMAs' own faults after it.
    def in_a_dma(f):
        return any(s[1] == f[0] and f[2] in (None, s[2]) and s[3] <= f[3] < s[3] + s[4] for s in steps)
    faults = [f for f in traced if in_a_dma(f)]
    strays = [f for f in traced if not in_a_dma(f)]
    dmas = [(line, sid, write, address, expect, reason, length, first)
            for line, sid, write, address, length, expect, reason, first in steps]
    problems = []
    at = 0

    def matches(fault, dma):
        return fault[0] == dma[1] and fault[2] in (None, dma[2]) and fault[3] == dma[3]

    def matches_dma(d, dma):  # the same device and address, and direction where the trace says it
        return d[1] == dma[1] and d[3] == dma[3] and (arch != "x86_64" or d[2] == dma[2])

    i = 0
    while i < len(dmas):
        group = [d for d in dmas[i:] if d[0] == dmas[i][0]]
        i += len(group)
        window = faults[at:at + len(group)]
        claimed = []
        for dma in group:
            line, sid, write, address, expect, reason, length, first = dma
            mine = next((k for k, f in enumerate(window) if k not in claimed and matches(f, dma)), None)
            if mine is not None and expect == "ok":
                # The trace has no clock shared with the serial log: a fault at this address
                # may belong to a later DMA there that is meant to fault. It is this one's
                # only if the trace has more such faults than DMAs still to come that
                # expect them.
                later = sum(1 for d in dmas[i:] if d[4] == "fault" and matches_dma(d, dma))
                if sum(1 for f in faults[at:] if matches(f, dma)) <= later:
                    mine = None
            if mine is not None:
                claimed.append(mine)
            if expect == "fault" and mine is None:
                problems.append(f"line {line}: no fault for sid 0x{sid:04x} at 0x{address:x} in QEMU's "
                                f"trace (the next one there is {window[0] if window else None})")
            elif expect == "fault" and reason is not None and arch == "x86_64" and window[mine][1] != int(reason):
                problems.append(f"line {line}: QEMU traced reason {window[mine][1]}, the scenario says {reason}")
            elif expect == "fault" and first is not None and window[mine][4] != (
                    first if address < first < address + length else address):
                want = first if address < first < address + length else address
                problems.append(f"line {line}: QEMU's first fault record is at 0x{window[mine][4]:x}, the scenario "
                                f"says 0x{want:x} (address=0x{first:x})")
            elif expect == "ok" and mine is not None:
                problems.append(f"line {line}: expected to succeed, but QEMU traced a fault with reason "
                                f"{window[mine][1]}")
        # Faults claimed by this step come off the front; any unclaimed one among them stays
        # to be claimed by a later step or reported as left over.
        rest = [f for k, f in enumerate(window) if k not in claimed]
        faults[at:at + len(group)] = [f for k, f in enumerate(window) if k in claimed] + rest
        at += len(claimed)
    for sid, reason, write, address, _ in faults[at:] + strays:
        problems.append(f"QEMU traced a fault no DMA accounts for: sid 0x{sid:04x} "
                        f"{'write' if write else 'read' if write is not None else 'access'} 0x{address:x} reason {reason}")
    return problems, len(traced)


def run_one(build, out_dir, path, machine, timeout, arch):
    name = machine["name"]
    run_dir = os.path.join(out_dir, name)
    if arch == "x86_64":
        trace = os.path.join(out_dir, f"{name}.trace")
        args = [os.path.join(ROOT, "scripts", "run.sh"), "--no-build", "--quiet", "--timeout", str(timeout),
                "--scenario", path, "--aw-bits", machine["aw"], "--smp", machine["cpus"], "--memory",
                machine["memory"], "--edus", machine["edus"], "--dma-mask", machine["dma_mask"], "--run-dir", run_dir,
                "--", "-trace", "vtd_dmar_fault", "-D", trace]
    else:  # run.sh --arch arm64 takes the machine from the scenario and logs QEMU's account in qemu.log
        trace = os.path.join(run_dir, "qemu.log")
        args = [os.path.join(ROOT, "scripts", "run.sh"), "--arch", "arm64", "--no-build", "--quiet", "--timeout",
                str(timeout), "--scenario", path, "--run-dir", run_dir]
    start = time.time()
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, IOMMU_BUILD_DIR=build))
    elapsed = time.time() - start
    serial = open(os.path.join(run_dir, "serial.log"), errors="replace").read().replace("\r", "") \
        if os.path.exists(os.path.join(run_dir, "serial.log")) else ""
    hv_log = os.path.join(run_dir, "hv.log")  # the hypervisor's own channel (docs/security.md)
    hv = open(hv_log, errors="replace").read().replace("\r", "") if os.path.exists(hv_log) else ""
    if arch == "arm64":  # one console: the guest's lines are the marked ones
        lines = serial.splitlines()
        hv = "\n".join(line for line in lines if not line.startswith(GUEST_PREFIX))
        serial = "\n".join(line[len(GUEST_PREFIX):] for line in lines if line.startswith(GUEST_PREFIX))
    trace_text = open(trace, errors="replace").read() if os.path.exists(trace) else ""
    problems = []
    if r.returncode != 0:
        problems.append((r.stdout.strip().splitlines() or ["run.sh failed"])[-1])
    problems += [line for line in re.findall(r"^check: FAIL (.*)$", hv + serial, re.M)]
    cross, seen = cross_check(serial, trace_text, arch)
    problems += cross
    s = SUMMARY.search(serial)
    return {"name": name, "file": os.path.relpath(path, ROOT), "steps": machine["steps"],
            "expected": int(s.group(4)) if s else 0, "reported": int(s.group(5)) if s else 0, "seen": seen,
            "dmas": len(DMA_LINE.findall(serial)), "seconds": round(elapsed, 1), "ok": not problems,
            "problems": problems, "serial": os.path.relpath(os.path.join(run_dir, "serial.log"), ROOT),
            "trace": os.path.relpath(trace, ROOT)}


def junit(results, path):
    failures = sum(not r["ok"] for r in results)
    total = sum(r["seconds"] for r in results)
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="fault-inject" tests="{len(results)}" failures="{failures}" time="{total:.1f}">']
    for r in results:
        lines.append(f'  <testcase classname="fault-inject" name={sx.quoteattr(r["name"])} time="{r["seconds"]}">')
        if not r["ok"]:
            msg = "; ".join(r["problems"])
            lines.append(f'    <failure message={sx.quoteattr(msg[:200])}>{sx.escape(msg)}\n'
                         f'serial log: {sx.escape(r["serial"])}\ntrace: {sx.escape(r["trace"])}</failure>')
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(prog="fault-inject.sh")
    ap.add_argument("scenarios", nargs="*", help="scenario files (default: tests/scenarios/*.txt)")
    ap.add_argument("-j", type=int, default=2, help="QEMU runs at a time (default 2)")
    ap.add_argument("--timeout", type=int, default=120, help="bound on each run, seconds (default 120)")
    ap.add_argument("--build", default=os.environ.get("IOMMU_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64",
                    help="the machine: q35 with VT-d (default), or Arm's virt with an SMMUv3")
    ap.add_argument("--out", help="where the runs, junit.xml and results.json go (default BUILD/fault-inject, "
                                  "BUILD/fault-inject-arm64 for arm64)")
    ap.add_argument("--status-in-report", action="store_true",
                    help="exit 0 once every scenario has run and the reports are written, whatever the "
                         "results (for a harness that judges each scenario from results.json)")
    a = ap.parse_args()
    files = a.scenarios or sorted(os.path.join(ROOT, "tests", "scenarios", f)
                                  for f in os.listdir(os.path.join(ROOT, "tests", "scenarios")) if f.endswith(".txt"))
    files = [os.path.abspath(f) for f in files]
    machines = check_all(a.build, files)
    if machines is None:
        print("fault-inject: a scenario is malformed; nothing was run", file=sys.stderr)
        return 2
    names = {}
    for f in files:
        other = names.setdefault(machines[f]["name"], f)
        if other != f:
            print(f"{f}:1: scenario {machines[f]['name']} has the name of {other} (their logs would mix); "
                  "nothing was run", file=sys.stderr)
            return 2
    other = [f for f in files if machines[f]["arch"] not in ("any", a.arch)]
    if other:
        print(f"fault-inject: {len(other)} scenario(s) for {'arm64' if a.arch == 'x86_64' else 'x86_64'} only, not run "
              f"on {a.arch}: {', '.join(machines[f]['name'] for f in other)}")
        files = [f for f in files if f not in other]
    out_dir = os.path.abspath(a.out or os.path.join(a.build, "fault-inject" if a.arch == "x86_64" else "fault-inject-arm64"))
    os.makedirs(out_dir, exist_ok=True)
    for stale in ("junit.xml", "results.json"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.j)) as pool:
        results = list(pool.map(lambda f: run_one(a.build, out_dir, f, machines[f], a.timeout, a.arch), files))
    wall = time.time() - start
    print(f"{'scenario':32} {'steps':>5} {'DMAs':>5} {'faults exp':>10} {'in trace':>8} {'reported':>8} {'time':>6}  result")
    for r in results:
        print(f"{r['name']:32} {r['steps']:5} {r['dmas']:5} {r['expected']:10} {r['seen']:8} {r['reported']:8} "
              f"{r['seconds']:5.1f}s  {'PASS' if r['ok'] else 'FAIL'}")
        for p in r["problems"]:
            print(f"    {p}")
        if not r["ok"]:
            print(f"    logs: {r['serial']}, {r['trace']}")
    failed = sum(not r["ok"] for r in results)
    print(f"fault-inject: {a.arch}: {len(results) - failed} passed, {failed} failed in {wall:.1f} s; faults expected "
          f"{sum(r['expected'] for r in results)}, seen by QEMU {sum(r['seen'] for r in results)}, reported to "
          f"drivers {sum(r['reported'] for r in results)}")
    junit(results, os.path.join(out_dir, "junit.xml"))
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"fault-inject: JUnit XML {os.path.relpath(os.path.join(out_dir, 'junit.xml'), ROOT)}")
    return 0 if a.status_in_report or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
