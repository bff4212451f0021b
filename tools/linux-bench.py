#!/usr/bin/env python3
"""linux-bench: what running Debian's Linux under the hypervisor costs, measured in one run.

    tools/linux-bench.py [--build DIR] [--smp N] [--idle S]

Boots the same machine (scripts/run.sh --payload linux, q35, -cpu max, two data disks) four
times, one after another so that no run competes with another for the host's two cores:
without the hypervisor (--bare: the kernel through QEMU's -kernel and OVMF) and with it, each
once powering off right after its checks and once sitting idle for S seconds first. It prints

  LINUX bare|hv init_s=T cpu_s=C idle_cpu_s=I            time to /init from QEMU's start;
                                                         QEMU's CPU time (user+sys); the
                                                         extra CPU time of the idle run
  LINUX ratio init=R idle_cpu=Q                          hv over bare
  LINUX idle_exits_per_s=E kinds=...                     the hypervisor's own exit counts
                                                         (its verdict lines): the idle run
                                                         less the other, over S seconds

Exit counts come from the hypervisor's channel, times from run.sh's watch of the guest's
console (0.2 s resolution), CPU time from the kernel's accounting of the child processes.
Not part of the tests."""
import argparse
import os
import re
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["hypercalls", "CPUID", "MSR", "I/O", "nested page faults", "APIC accesses"]


def run(build, smp, bare, idle):
    name = f"bench-linux-{'bare' if bare else 'hv'}-idle{idle}"
    args = [os.path.join(ROOT, "scripts", "run.sh"), "--no-build", "--payload", "linux", "--smp", str(smp),
            "--run-dir", os.path.join(build, "run", name), "--timeout", str(300 + idle),
            "--payload-timeout", str(200 + idle)]
    if bare:
        args.append("--bare")
    if idle:
        args += ["--cmdline", f"iommu_hv_idle={idle}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, IOMMU_BUILD_DIR=build))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode:
        sys.exit(f"linux-bench: {name} failed:\n" + "\n".join(r.stdout.splitlines()[-5:]))
    m = re.search(r"^run\.sh: Linux's /init started ([0-9.]+) s after QEMU did$", r.stdout, re.M)
    exits = {k: 0 for k in ["exits"] + KINDS}
    for line in re.findall(r"^hv: cpu \d+: (\d+ exits: .*)$", r.stdout, re.M):
        exits["exits"] += int(line.split()[0])
        for k in KINDS:
            km = re.search(r"(\d+) " + re.escape(k), line)
            exits[k] += int(km.group(1)) if km else 0
    return float(m.group(1)) if m else None, cpu, exits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("IOMMU_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--idle", type=int, default=20)
    a = ap.parse_args()
    res = {}
    for bare in (True, False):
        for idle in (0, a.idle):
            res[bare, idle] = run(a.build, a.smp, bare, idle)
    print(f"# linux-bench: --smp {a.smp}, idle {a.idle} s; one run of each, in sequence")
    for bare in (True, False):
        init, cpu, _ = res[bare, 0]
        _, cpu_idle, _ = res[bare, a.idle]
        print(f"LINUX {'bare' if bare else 'hv'} init_s={init:.1f} cpu_s={cpu:.1f} idle_cpu_s={cpu_idle - cpu:.1f}")
    init_ratio = res[False, 0][0] / res[True, 0][0]
    idle_bare = res[True, a.idle][1] - res[True, 0][1]
    idle_hv = res[False, a.idle][1] - res[False, 0][1]
    print(f"LINUX ratio init={init_ratio:.2f} idle_cpu={idle_hv / idle_bare if idle_bare > 0 else float('nan'):.2f}")
    e0, e1 = res[False, 0][2], res[False, a.idle][2]
    kinds = " ".join(f"{k.replace(' ', '_')}={(e1[k] - e0[k]) / a.idle:.1f}" for k in KINDS)
    print(f"LINUX idle_exits_per_s={(e1['exits'] - e0['exits']) / a.idle:.1f} {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
