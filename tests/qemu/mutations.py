#!/usr/bin/env python3
"""Shows that each attack class's QEMU test catches its hole: for every protection of
docs/security.md, a copy of the tree with that one protection removed (a mutation) is built,
the hostile payload runs on it, and the class's check (tests/qemu/qemu_checks.py) must FAIL.
A baseline run of the unmutated copy must PASS every class first.

The Arm protections are checked the same way with their own tests: class "arm64" is
`scripts/run.sh --arch arm64` (its RESULT line and QEMU's trace), "arm64-selftest" the Arm
self-test on two CPUs with its checks (tests/qemu/arm64_checks.py hypervisor, isolation,
hvc_exits), "arm64-hostile" the Arm attacker on two CPUs (arm64_checks.py hostile),
"arm64-scenario:NAME" one scenario through `scripts/fault-inject.sh --arch
arm64`, and a class "ctest:NAME" is that host test (the SMMUv3 driver's unit tests on the
model, the EL2 trap handler's).

Not part of scripts/test.sh (one build and one boot per mutation, about 5 minutes); run it
after changing a protection or the hostile payload:

    tests/qemu/mutations.py [--build DIR] [NAME...]

Prints one line per mutation and exits non-zero if a mutation survived (its class passed)."""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The attack classes, and lines_whole: the hypervisor's lines stay whole while two CPUs print.
CLASSES = ["msr", "host-state", "ddi-map", "smi", "init", "pci-config", "ports", "hypercall", "toctou", "dma",
           "nmi", "flood", "lines_whole"]

# name: (class whose test must fail, CPUs, [(file, text, replacement)])
MUTATIONS = {
    "msr-svm-block-passes": ("msr", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "bool hv_msr_passes(uint32_t msr, bool write)\n{\n",
        "bool hv_msr_passes(uint32_t msr, bool write)\n{\n    if ((msr >> 16) == 0xC001u)\n        return true;\n")]),
    "host-on-firmware-tables": ("host-state", 1, [(
        "boot/hypervisor/svm/host_env.c",
        "void host_env_enter(struct host_cpu_env *c)\n{\n",
        "void host_env_enter(struct host_cpu_env *c)\n{\n"
        "    __asm__ volatile(\"vmsave %%rax\" : : \"a\"(c->host_state_pa) : \"memory\");\n    if (c)\n        return;\n")]),
    "ddi-maps-all-but-region": ("ddi-map", 1, [(
        "ddi/provider/policy.c",
        "    return !protected_memory && in_guest_ram(pa, size);",
        "    return !protected_memory || in_guest_ram(pa, size);")]),
    "smi-forwarded": ("smi", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "        return mode == DM_FIXED || mode == DM_LOWEST || mode == DM_NMI;",
        "        return mode != DM_INIT && mode != DM_SIPI;"), (
        "boot/hypervisor/svm/svm_launch.c",
        "SVM_INTERCEPT1_SMI | SVM_INTERCEPT1_INIT |",
        "SVM_INTERCEPT1_INIT |")]),
    "interrupt-remapping-off": ("init", 2, [(
        "boot/hypervisor/svm/svm_launch.c",
        "        enum iommu_status st = vtd_enable_interrupt_remapping(&r->unit[i]);",
        "        enum iommu_status st = IOMMU_OK;")]),
    "apic-window-mapped": ("init", 2, [(
        "boot/hypervisor/svm/svm_launch.c",
        "    n = ranges_remove(ranges, n, cap, hv->arch.apic_base, hv->arch.apic_base + APIC_WINDOW_BYTES);",
        "    n = ranges_remove(ranges, n, cap, hv->arch.apic_base, hv->arch.apic_base + PAGE_SIZE);")]),
    "apic-offset-0-written": ("init", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "    return offset == 0x080 || offset == 0x0B0",
        "    return offset == 0x000 || offset == 0x080 || offset == 0x0B0")]),
    "cmos-shutdown-byte-writable": ("ports", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "        refused = cmos.index == CMOS_SHUTDOWN_STATUS;",
        "        refused = false;")]),
    "ioapic-entries-unfiltered": ("init", 2, [(
        "boot/hypervisor/svm/vmexit.c",
        "bool hv_ioapic_write_allowed(uint32_t select, uint32_t value)\n{\n",
        "bool hv_ioapic_write_allowed(uint32_t select, uint32_t value)\n{\n    if (select)\n        return true;\n")]),
    "chipset-config-writable": ("pci-config", 1, [(
        "boot/hypervisor/svm/svm_host.c",
        "    return !(svm_chipset_function(bus, dev, fn) && reg >= 0x40);",
        "    return bus || dev || fn || reg || true;")]),
    "config-data-passed-when-disabled": ("pci-config", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "    if (!(a & 0x80000000u) || byte + size > 4) {",
        "    if (!(a & 0x80000000u))\n        return IO_PASS;\n    if (byte + size > 4) {")]),
    "channel-port-open": ("ports", 1, [(
        "boot/hypervisor/svm/vmexit.c",
        "    return port == PORT_HV_CHANNEL || in_range(port, 0x00, 0x10)",
        "    return in_range(port, 0x00, 0x10)")]),
    "cpu-hotplug-open": ("ports", 2, [(
        "boot/hypervisor/svm/vmexit.c",
        "    return in_range(port, PORT_CPU_HOTPLUG, 32) || in_range(port, PORT_MEMORY_HOTPLUG, 24);",
        "    return in_range(port, PORT_MEMORY_HOTPLUG, 24);")]),
    "channel-unlocked": ("lines_whole", 2, [(
        "boot/hypervisor/hv_channel.c",
        "    hv_channel_lock();\n    hv_channel_write_unlocked(s, n);\n    hv_channel_unlock();",
        "    hv_channel_write_unlocked(s, n);")]),
    "refusal-lines-unlimited": ("flood", 1, [(
        "boot/hypervisor/core.c",
        "    return count % 1000 == 0;\n",
        "    return count || true;\n")]),
    "nmi-left-pending": ("nmi", 1, [(
        "boot/hypervisor/svm/svm_host.c",
        "    if ((uint32_t)cpu->arch.vmcb->control.exit_code == SVM_EXIT_NMI)\n        host_take_nmi();\n",
        "")]),
    "hypercall-blocks-anywhere": ("hypercall", 1, [(
        "ddi/hc_server.c",
        "    if (!len || gpa + len < gpa)\n        return false;\n",
        "    if (len)\n        return gpa < (64ull << 30);\n")]),
    "region-in-default-domain": ("dma", 1, [(
        "boot/loader/identity_map.c",
        "    n = ranges_remove(ranges, n, capacity, region_pa, region_pa + region_bytes);\n",
        "    ranges[n++] = (struct addr_range){region_pa, region_pa + region_bytes};\n")]),
    "arm-region-in-default-domain": ("arm64", 0, [(
        "boot/loader/identity_map.c",
        "    n = ranges_remove(ranges, n, capacity, region_pa, region_pa + region_bytes);\n",
        "    ranges[n++] = (struct addr_range){region_pa, region_pa + region_bytes};\n")]),
    "arm-unmap-without-tlbi": ("arm64", 0, [(
        "iommu/smmuv3/smmuv3.c",
        "enum iommu_status s = submit(u, (const uint64_t(*)[2])cmds, (unsigned)pages);",
        "enum iommu_status s = submit(u, (const uint64_t(*)[2])cmds, 0);")]),
    "smmuv3-ste-without-cfgi": ("ctest:unit.smmuv3", 0, [(
        "iommu/smmuv3/smmuv3.c",
        "        ste[0] = want[0];\n        flush(u, ste, 8);\n        s = submit_one(u, cfgi, CMD1_LEAF);\n",
        "        ste[0] = want[0];\n        flush(u, ste, 8);\n")]),
    "el2-stage2-maps-region": ("arm64-selftest", 0, [(
        "boot/hypervisor/el2/el2.c",
        "    n = ranges_remove(ranges, n, cap, r->region_pa, r->region_pa + r->region_bytes);\n", "")]),
    "el2-stage2-maps-smmu": ("arm64-selftest", 0, [(
        "boot/hypervisor/el2/el2.c",
        "        n = ranges_remove(ranges, n, cap, r->unit_ptr[i]->register_base,\n"
        "                          r->unit_ptr[i]->register_base + SMMUV3_REGISTER_BYTES);\n", "        (void)i;\n")]),
    "el2-smc-not-trapped": ("arm64-selftest", 0, [(
        "boot/hypervisor/el2/el2.c",
        "#define GUEST_HCR (HCR_VM | HCR_TWI | HCR_TSC | HCR_RW | HCR_APK | HCR_API)",
        "#define GUEST_HCR (HCR_VM | HCR_TWI | HCR_RW | HCR_APK | HCR_API)")]),
    "el2-abort-stepped-over": ("arm64-selftest", 0, [(
        "boot/hypervisor/el2/el2_trap.c",
        "    inject(f, v, ops, EC_DABT_SAME, EC_DABT_LOWER, (iss & ISS_WNR) | DFSC_SYNC_EXTERNAL, s->far);",
        "    f->elr += 4;")]),
    "el2-guest-lines-unmarked": ("arm64-selftest", 0, [(
        "boot/hypervisor/el2/hv_channel_pl011.c",
        "        if (!guest_line_open)\n            serial_write(HV_CHANNEL_GUEST_PREFIX, sizeof HV_CHANNEL_GUEST_PREFIX - 1);\n",
        "")]),
    "el2-its-reachable": ("arm64-hostile", 0, [(
        "boot/hypervisor/el2/el2.c", "    hv->arch.its_count = s->its_count < 4 ? s->its_count : 4;",
        "    hv->arch.its_count = 0;")]),
    "el2-cpu-on-any-entry": ("arm64-hostile", 0, [(
        "boot/hypervisor/el2/el2.c", "    if (!hc_in_guest_ram(entry, 4))\n        return PSCI_INVALID_ADDRESS;\n", "")]),
    "el2-guest-bytes-unfiltered": ("arm64-hostile", 0, [(
        "boot/hypervisor/el2/hv_channel_pl011.c", "        if (ch == '\\n' || ch == '\\t' || (ch >= 0x20 && ch < 0x7f))",
        "        if (ch != '\\r')")]),
    "arm-ddi-maps-all-but-region": ("arm64-hostile", 0, [(
        "ddi/provider/policy.c",
        "    return !protected_memory && in_guest_ram(pa, size);",
        "    return !protected_memory || in_guest_ram(pa, size);")]),
    "el2-smc-passes-everything": ("ctest:unit.el2_trap", 0, [(
        "boot/hypervisor/el2/el2_trap.c",
        "    return fn == PSCI_VERSION || fn == PSCI_AFFINITY_INFO",
        "    return fn || fn == PSCI_VERSION || fn == PSCI_AFFINITY_INFO")]),
    "el2-console-settings-writable": ("ctest:unit.el2_trap", 0, [(
        "boot/hypervisor/el2/el2_trap.c",
        "        if (offset == PL011_DR || offset == PL011_IMSC || offset == PL011_ICR)",
        "        if (offset < 0x1000)")]),
    "smmuv3-transfer-not-merged": ("ctest:unit.smmuv3", 0, [(
        "iommu/smmuv3/smmuv3.c", "        if (same_transfer) {", "        if (same_transfer && false) {")]),
    "ddi-tables-vtd-on-smmu": ("arm64-scenario:read-only", 0, [(
        "ddi/provider/interface.c", "    provider.table_format = platform->units[0]->table_format;",
        "    provider.table_format = NULL;")]),
    "smmuv3-overflow-uncounted": ("ctest:unit.smmuv3", 0, [(
        "iommu/smmuv3/smmuv3.c",
        "    if ((prod ^ u->eventq_cons) & EVENTQ_OVFLG)\n        u->unit.faults.overflows++;\n",
        "")]),
}
TARGETS = ["bootx64", "selftest", "faultinj", "hostile", "ddishim", "bootaa64", "ddishim_aarch64", "faultinj_aarch64",
           "hostile_aarch64", "test_smmuv3", "test_el2_trap", "scenario-check"]


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_tree(dst):
    files = sh(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT).stdout.split("\n")
    for f in filter(None, files):
        src = os.path.join(ROOT, f)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, f))


def build(src, build_dir):
    r = sh(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2), "--target", *TARGETS])
    if r.returncode:
        sys.stdout.write(r.stdout[-3000:] + r.stderr[-3000:])
    return r.returncode == 0


def run_hostile(src, build_dir, cpus):
    machine = "hostile" if cpus == 1 else "hostile-smp2"
    run_dir = os.path.join(build_dir, "run", f"test-{machine}")
    r = sh([os.path.join(src, "scripts", "run.sh"), "--no-build", "--timeout", "150", "--aw-bits", "39", "--smp",
            str(cpus), "--payload", "hostile", "--run-dir", run_dir], env=dict(os.environ, IOMMU_BUILD_DIR=build_dir))
    with open(os.path.join(build_dir, "run", f"test-{machine}.out"), "w") as f:
        f.write(r.stdout + r.stderr)
    return machine


def run_arm64(src, build_dir):
    run_dir = os.path.join(build_dir, "run", "test-arm64")
    r = sh([os.path.join(src, "scripts", "run.sh"), "--arch", "arm64", "--no-build", "--quiet", "--run-dir", run_dir],
           env=dict(os.environ, IOMMU_BUILD_DIR=build_dir))
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:]


def run_arm64_selftest(src, build_dir):
    run_dir = os.path.join(build_dir, "run", "test-arm64-selftest")
    r = sh([os.path.join(src, "scripts", "run.sh"), "--arch", "arm64", "--payload", "selftest", "--smp", "2",
            "--no-build", "--quiet", "--timeout", "60", "--run-dir", run_dir], env=dict(os.environ, IOMMU_BUILD_DIR=build_dir))
    details = (r.stdout + r.stderr).strip().splitlines()[-1:]
    ok = r.returncode == 0
    for check_name in ("hypervisor", "isolation", "hvc_exits"):
        c = sh([sys.executable, os.path.join(HERE, "arm64_checks.py"), check_name, os.path.join(run_dir, "serial.log")])
        ok = ok and c.returncode == 0
        if c.returncode:
            details.append(f"{check_name}: " + " ".join(c.stdout.strip().splitlines()[-2:]))
    return ok, details


def run_arm64_hostile(src, build_dir):
    run_dir = os.path.join(build_dir, "run", "test-arm64-hostile")
    r = sh([os.path.join(src, "scripts", "run.sh"), "--arch", "arm64", "--payload", "hostile", "--smp", "2",
            "--no-build", "--quiet", "--timeout", "60", "--run-dir", run_dir], env=dict(os.environ, IOMMU_BUILD_DIR=build_dir))
    c = sh([sys.executable, os.path.join(HERE, "arm64_checks.py"), "hostile", os.path.join(run_dir, "serial.log")])
    return r.returncode == 0 and c.returncode == 0, ((r.stdout + r.stderr).strip().splitlines()[-1:] +
                                                    c.stdout.strip().splitlines()[:3])


def run_arm64_scenario(src, build_dir, name):
    r = sh([os.path.join(src, "scripts", "fault-inject.sh"), "--arch", "arm64", "--no-build",
            os.path.join(src, "tests", "scenarios", name + ".txt")], env=dict(os.environ, IOMMU_BUILD_DIR=build_dir))
    problems = [line.strip() for line in r.stdout.splitlines() if line.startswith("    ") and "logs:" not in line]
    return r.returncode == 0, problems[:2] or r.stdout.strip().splitlines()[-2:-1]


def run_class(src, build_dir, cls):
    if cls == "arm64":
        return run_arm64(src, build_dir)
    if cls == "arm64-selftest":
        return run_arm64_selftest(src, build_dir)
    if cls == "arm64-hostile":
        return run_arm64_hostile(src, build_dir)
    if cls.startswith("arm64-scenario:"):
        return run_arm64_scenario(src, build_dir, cls.split(":", 1)[1])
    return run_ctest(build_dir, cls[6:])


def run_ctest(build_dir, name):
    r = sh(["ctest", "-R", "^" + name.replace(".", "\\.") + "$", "--output-on-failure"], cwd=build_dir)
    failed = [line.strip() for line in r.stdout.splitlines() if "FAILED" in line and "test_" in line]
    return r.returncode == 0, failed[:3] or r.stdout.strip().splitlines()[-1:]


def check(build_dir, machine, cls):
    r = sh([sys.executable, os.path.join(HERE, "qemu_checks.py"), "check", cls, "--machine", machine,
            "--build", build_dir])
    return r.returncode == 0, r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "mutations"))
    ap.add_argument("names", nargs="*", help=f"mutations (default: all of {', '.join(MUTATIONS)})")
    a = ap.parse_args()
    names = a.names or list(MUTATIONS)
    src, build_dir = os.path.join(a.build, "src"), os.path.join(a.build, "build")
    shutil.rmtree(a.build, ignore_errors=True)
    copy_tree(src)
    r = sh(["cmake", "-S", src, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
    if r.returncode or not build(src, build_dir):
        print(r.stdout[-2000:] + r.stderr[-2000:])
        return 1
    survived = 0
    for cpus in (1, 2):
        machine = run_hostile(src, build_dir, cpus)
        failing = [cls for cls in CLASSES if not check(build_dir, machine, cls)[0]]
        print(f"baseline {machine}: {len(CLASSES) - len(failing)} of {len(CLASSES)} classes pass"
              + (f"; failing: {failing}" if failing else ""))
        survived += bool(failing)
    for cls in sorted({MUTATIONS[n][0] for n in names if MUTATIONS[n][0].startswith(("arm64", "ctest:"))}):
        ok = run_class(src, build_dir, cls)[0]
        print(f"baseline {cls}: {'passes' if ok else 'FAILS'}")
        survived += not ok
    for name in names:
        cls, cpus, edits = MUTATIONS[name]
        saved = {}
        for path, old, new in edits:
            full = os.path.join(src, path)
            if full not in saved:
                saved[full] = open(full).read()
            text = open(full).read()
            if text.count(old) != 1:
                print(f"{name}: the text to mutate is not in {path} exactly once: update this script")
                return 2
            with open(full, "w") as f:
                f.write(text.replace(old, new))
        machine = "-"
        if not build(src, build_dir):
            ok, detail = False, "the mutated tree did not build"
        elif cls.startswith(("arm64", "ctest:")):
            ok, detail = run_class(src, build_dir, cls)
        else:
            machine = run_hostile(src, build_dir, cpus)
            ok, detail = check(build_dir, machine, cls)
        survived += ok
        print(f"{name}: class {cls} on {machine}: "
              f"{'SURVIVED (the test passed)' if ok else 'caught'}: {detail}")
        for full, text in saved.items():
            with open(full, "w") as f:
                f.write(text)
    build(src, build_dir)
    print(f"mutations: {len(names) - survived} of {len(names)} caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
