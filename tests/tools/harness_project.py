#!/usr/bin/env python3
"""Builds docs/ddi.md's example conformance test the way that page tells a user to (their own
CMake project, the checkout added with add_subdirectory, linked with iommu_hv::ddi_harness),
in a scratch folder, and runs it. Fails if the example does not build, does not pass, or is
not in the page."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    doc = open(os.path.join(ROOT, "docs", "ddi.md")).read()
    m = re.search(r"A conformance test of your own, with CMocka:\n\n```c\n(.*?)\n```", doc, re.S)
    if not m:
        print("harness_project: docs/ddi.md has no example conformance test")
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        src, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
        shutil.copytree(os.path.join(ROOT, "tests", "harness_project"), src)
        with open(os.path.join(src, "conformance_test.c"), "w") as f:
            f.write(m.group(1) + "\n")
        for cmd in (["cmake", "-S", src, "-B", build, f"-DIOMMU_HV_DIR={ROOT}"],
                    ["cmake", "--build", build, "-j2", "--target", "conformance_test"],
                    [os.path.join(build, "conformance_test")]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"harness_project: {' '.join(cmd[:3])} failed:\n{(r.stdout + r.stderr)[-3000:]}")
                return 1
        print("harness_project: docs/ddi.md's example built against iommu_hv::ddi_harness and passed")
        return 0


if __name__ == "__main__":
    sys.exit(main())
