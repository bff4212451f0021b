#!/usr/bin/env python3
"""Builds a payload the way docs/guest-sdk.md tells a driver writer to: that page's CMake
project, verbatim but for the checkout's path, with the SDK's sample driver as mydriver.c, in
a scratch folder. Fails if the project does not build or MYDRIVER.EFI is not a PE32+ EFI
application."""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    doc = open(os.path.join(ROOT, "docs", "guest-sdk.md")).read()
    m = re.search(r"```cmake\n(.*?iommu_hv_add_payload.*?)\n```", doc, re.S)
    if not m:
        print("sdk_project: docs/guest-sdk.md has no CMake project")
        return 1
    project = m.group(1).replace("/path/to/iommu-hv", ROOT)
    with tempfile.TemporaryDirectory() as scratch:
        src, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
        os.makedirs(src)
        with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
            f.write(project + "\n")
        shutil.copy(os.path.join(ROOT, "sdk", "sample", "edu_dma.c"), os.path.join(src, "mydriver.c"))
        for cmd in (["cmake", "-S", src, "-B", build], ["cmake", "--build", build]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"sdk_project: {' '.join(cmd[:2])} failed:\n{(r.stdout + r.stderr)[-3000:]}")
                return 1
        image = open(os.path.join(build, "MYDRIVER.EFI"), "rb").read()
        pe = struct.unpack_from("<I", image, 0x3C)[0]
        ok = image[:2] == b"MZ" and image[pe:pe + 4] == b"PE\0\0" and \
            struct.unpack_from("<H", image, pe + 24)[0] == 0x20B and struct.unpack_from("<H", image, pe + 24 + 68)[0] == 10
        print(f"sdk_project: docs/guest-sdk.md's project built MYDRIVER.EFI ({len(image)} bytes): "
              f"{'a PE32+ EFI application' if ok else 'NOT a PE32+ EFI application'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
