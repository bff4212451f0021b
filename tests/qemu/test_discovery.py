#!/usr/bin/env python3
"""QEMU integration test for discovery: boots BOOTX64.EFI with aw-bits 39 and 48 (two QEMU
instances at once) and checks the loader's report against what QEMU 7.2 provides: one
remapping unit at 0xFED90000, edu 1234:11e8 in its endpoint scope, SAGAW 0x2 or 0x6.
The live DMAR, dumped by the loader, is also decoded with iommu-acpi and cross-checked
against iasl."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
from checks import Checks  # noqa: E402

check = Checks(verbose=True)


def dumped_table(report, signature):
    data = bytearray()
    for m in re.finditer(rf"^dump: {signature} ([0-9a-f]{{4}}):((?: [0-9a-f]{{2}})+)$", report, re.M):
        if int(m.group(1), 16) != len(data):
            return None
        data += bytes(int(x, 16) for x in m.group(2).split())
    return bytes(data)


def check_run(aw, rc, report, tool, crosscheck):
    tag = f"aw-bits={aw}"
    check(rc == 0 and "RESULT: PASS" in report, f"{tag}: run.sh passes and the loader's checks hold")
    units = re.findall(r"^vtd\[(\d+)\]: segment (\d+) register base (0x[0-9a-f]+)", report, re.M)
    check(units == [("0", "0", "0xfed90000")], f"{tag}: exactly one unit, at 0xfed90000 ({units})")
    sagaw = {39: "SAGAW=0x2 (39-bit/3-level)", 48: "SAGAW=0x6 (39-bit/3-level 48-bit/4-level)"}[aw]
    check(f"vtd[0]: CAP ND=6 (65536 domains) {sagaw} MGAW={aw} bits" in report, f"{tag}: {sagaw}, MGAW {aw}")
    check(f"host address width {aw} bits" in report, f"{tag}: DMAR host address width {aw}")
    check(re.search(r"^vtd\[0\]: ECAP .*QI=1 .*PT=1 ", report, re.M) is not None, f"{tag}: ECAP QI and PT")
    edu = re.search(r"^pci: 0000:00:([0-9a-f]{2})\.([0-7]) 1234:11e8 class 00ff00 -> vtd\[0\] \(endpoint scope\)$",
                    report, re.M)
    check(edu is not None, f"{tag}: edu 1234:11e8 found through ECAM and translated by vtd[0] via its endpoint scope")
    check("ecam: segment 0 buses 00-ff at 0xb0000000" in report, f"{tag}: MCFG ECAM window at 0xb0000000")
    check(re.search(r"^memmap: conventional +\d+ pages", report, re.M) is not None, f"{tag}: memory map summary")

    dmar = dumped_table(report, "DMAR")
    check(dmar is not None and len(dmar) >= 48 and dmar[:4] == b"DMAR", f"{tag}: live DMAR dumped")
    if not dmar or not edu:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"qemu-aw{aw}.dmar")
        with open(path, "wb") as f:
            f.write(dmar)
        p = subprocess.run([tool, "--json", path], capture_output=True, text=True)
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
        drhd = [s for s in doc.get("structures", []) if s["type"] == "DRHD"]
        check(doc.get("host_address_width") == aw and len(drhd) == 1 and drhd[0]["register_base"] == 0xFED90000
              and drhd[0]["flags"] == 0, f"{tag}: iommu-acpi decodes the live DMAR: one DRHD at 0xfed90000")
        edu_path = [int(edu.group(1), 16), int(edu.group(2))]
        check(any(sc["type"] == 1 and sc["start_bus"] == 0 and sc["path"] == [edu_path] for sc in drhd[0]["scopes"]),
              f"{tag}: the live DMAR names edu {edu_path} in an endpoint scope")
        if crosscheck:
            p = subprocess.run([sys.executable, crosscheck, "--tool", tool, path], capture_output=True, text=True)
            check(p.returncode == 0, f"{tag}: live DMAR agrees with iasl field for field ({p.stdout.strip().splitlines()[:1]})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    tool = os.path.join(a.build, "iommu-acpi")
    crosscheck = os.path.join(ROOT, "tests", "tools", "iasl_crosscheck.py")
    env = dict(os.environ, IOMMU_BUILD_DIR=a.build)
    procs = {}
    start = time.monotonic()
    for aw in (39, 48):  # the machine has two cores: both QEMU instances at once
        run_dir = os.path.join(a.build, "run", f"test-discovery-aw{aw}")
        procs[aw] = subprocess.Popen(
            [os.path.join(ROOT, "scripts", "run.sh"), "--no-build", "--aw-bits", str(aw),
             "--timeout", str(a.timeout), "--run-dir", run_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for aw, p in procs.items():
        out, _ = p.communicate()
        verdict = out.strip().splitlines()[-1] if out.strip() else "(no output)"
        print(verdict)
        check_run(aw, p.returncode, out, tool, crosscheck if os.path.exists(crosscheck) else None)
    # A machine without the IOMMU: the loader must still list PCI and run.sh must fail.
    p = subprocess.run([os.path.join(ROOT, "scripts", "run.sh"), "--no-build", "--no-iommu", "--timeout",
                        str(a.timeout), "--run-dir", os.path.join(a.build, "run", "test-discovery-no-iommu")],
                       capture_output=True, text=True, env=env)
    print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "(no output)")
    check(p.returncode == 1 and "check: FAIL DMAR table present" in p.stdout
          and re.search(r"^RESULT: FAIL \(1 of \d+ checks failed\)$", p.stdout, re.M)
          and re.search(r"^run\.sh: FAIL no-iommu in ", p.stdout, re.M),
          "no IOMMU: the loader reports the missing DMAR and run.sh exits 1")
    check(re.search(r"^pci: 0000:00:0[0-9a-f]\.0 1234:11e8 class 00ff00 -> none \(not translated\)$", p.stdout, re.M)
          is not None, "no IOMMU: edu is listed as not translated")
    print(f"QEMU discovery runs took {time.monotonic() - start:.1f} s wall clock")
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
