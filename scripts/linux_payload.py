#!/usr/bin/env python3
"""Builds what `scripts/run.sh --payload linux` boots: Debian's own kernel (its EFI-stub image)
and a small initramfs whose /init checks the guest's view of the hypervisor
(tests/linux/linux_checks.c), plus two data disks for its DMA checks.

    scripts/linux_payload.py --out DIR

Fetches Debian's kernel package (the one linux-image-amd64 depends on) and busybox-static with
`apt-get download` (Debian's archive, nothing else), unpacks them into DIR, and writes
  DIR/vmlinuz.efi       the kernel
  DIR/initrd.img        gzip'd newc cpio: /init, busybox, linux-checks, the modules below
  DIR/disk-virtio.img   data disks: a header with a seed, then xorshift64 words from it
  DIR/disk-ahci.img     (linux-checks reads them back through DMA and compares)
  DIR/version           the kernel's version
The downloads are kept and reused; the rest is rebuilt when missing or older than its inputs.
Runs at once take turns (a lock file in DIR).

The kernel command line run.sh passes sets what /init does: iommu_hv_disks=N (data disks to
find), iommu_hv_bare=1 (no hypervisor: only CPUs and disks are checked), iommu_hv_idle=S
(seconds to sit idle after the checks, for measuring an idle guest)."""
import argparse
import fcntl
import gzip
import os
import shutil
import stat
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECKS_SOURCE = os.path.join(ROOT, "tests", "linux", "linux_checks.c")
# The drivers of the data disks' controllers (AHCI and virtio-blk on PCI); their
# dependencies are added from each module's own .modinfo.
MODULES = ["ahci", "sd_mod", "virtio_pci", "virtio_blk"]
DISK_BYTES = 8 << 20
DISK_MAGIC = b"iommu-hv data disk\n"

INIT = r"""#!/bin/busybox sh
# /init of scripts/linux_payload.py: mounts, loads the disk drivers, runs the checks, powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "linux: /init started, uptime $(cut -d' ' -f1 /proc/uptime) s, $(nproc) CPU(s) online"
while read -r m; do insmod "/lib/modules/$m" || echo "linux: insmod $m failed"; done </lib/modules/load-order
/bin/linux-checks "${iommu_hv_disks:-0}" "$([ "${iommu_hv_bare:-0}" = 1 ] && echo bare)"
if [ "${iommu_hv_idle:-0}" != 0 ]; then
  echo "linux: idle for ${iommu_hv_idle} s"
  sleep "${iommu_hv_idle}"
  echo "linux: idle done"
fi
echo "linux: powering off"
poweroff -f
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def fetch(debs):
    """Downloads the kernel and busybox-static packages into debs (once)."""
    os.makedirs(debs, exist_ok=True)
    have = os.listdir(debs)
    if any(f.startswith("linux-image-") for f in have) and any(f.startswith("busybox-static") for f in have):
        return
    def resolve():
        out = sh(["apt-cache", "depends", "linux-image-amd64"])
        names = [l.split()[-1] for l in out.splitlines() if "Depends: linux-image-" in l]
        if not names:
            raise SystemExit("linux_payload: apt-cache knows no linux-image-amd64 (run apt-get update)")
        return names[0]
    try:
        kernel = resolve()
        sh(["apt-get", "download", kernel, "busybox-static"], cwd=debs)
    except (subprocess.CalledProcessError, SystemExit):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        kernel = resolve()
        sh(["apt-get", "download", kernel, "busybox-static"], cwd=debs)


def unpack(debs, tree):
    if os.path.isdir(tree):
        return
    os.makedirs(tree)
    for f in sorted(os.listdir(debs)):
        if f.endswith(".deb"):
            sh(["dpkg-deb", "-x", os.path.join(debs, f), tree])


def modinfo_depends(path):
    """The depends= field of a module's .modinfo section (a 64-bit little-endian ELF)."""
    data = open(path, "rb").read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_off = sections[shstrndx][4]
    for name, _type, _flags, _addr, off, size in sections:
        end = data.index(b"\0", names_off + name)
        if data[names_off + name:end] == b".modinfo":
            for field in data[off:off + size].split(b"\0"):
                if field.startswith(b"depends="):
                    return [d for d in field[8:].decode().split(",") if d]
    return []


def module_order(moddir):
    """The modules to load, each after its dependencies: paths relative to moddir."""
    paths = {}
    for base, _dirs, files in os.walk(moddir):
        for f in files:
            if f.endswith(".ko"):
                paths[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(base, f), moddir)
    order = []

    def add(name):
        name = name.replace("-", "_")
        if name in order:
            return
        if name not in paths:
            raise SystemExit(f"linux_payload: module {name} is not in the kernel package")
        for dep in modinfo_depends(os.path.join(moddir, paths[name])):
            add(dep)
        order.append(name)

    for m in MODULES:
        add(m)
    return [paths[m] for m in order]


class Cpio:
    """A newc archive, as the kernel unpacks an initramfs."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def add(self, name, mode, data=b"", rdev=(0, 0)):
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        self.out += b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def end(self):
        self.add("TRAILER!!!", 0)
        return bytes(self.out)


def build_initrd(tree, version, checks_bin, out):
    c = Cpio()
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"]:
        c.add(d, stat.S_IFDIR | 0o755)
    c.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    c.add("init", stat.S_IFREG | 0o755, INIT.encode())
    c.add("bin/busybox", stat.S_IFREG | 0o755, open(os.path.join(tree, "bin", "busybox"), "rb").read())
    c.add("bin/linux-checks", stat.S_IFREG | 0o755, open(checks_bin, "rb").read())
    moddir = os.path.join(tree, "lib", "modules", version)
    order = module_order(moddir)
    made = set()
    for rel in order:
        parts = os.path.dirname(rel).split("/")
        for i in range(1, len(parts) + 1):
            d = "lib/modules/" + "/".join(parts[:i])
            if d not in made:
                made.add(d)
                c.add(d, stat.S_IFDIR | 0o755)
        c.add("lib/modules/" + rel, stat.S_IFREG | 0o644, open(os.path.join(moddir, rel), "rb").read())
    c.add("lib/modules/load-order", stat.S_IFREG | 0o644, "".join(r + "\n" for r in order).encode())
    with open(out + ".tmp", "wb") as f:
        f.write(gzip.compress(c.end(), compresslevel=6, mtime=0))
    os.replace(out + ".tmp", out)
    return order


def write_disk(path, seed):
    if os.path.exists(path) and os.path.getsize(path) == DISK_BYTES:
        return
    words = (DISK_BYTES - 32) // 8
    x, out = seed, bytearray(DISK_MAGIC.ljust(24, b"\0") + struct.pack("<Q", seed))
    mask = (1 << 64) - 1
    buf = []
    for _ in range(words):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        buf.append(x)
    out += struct.pack(f"<{words}Q", *buf)
    with open(path + ".tmp", "wb") as f:
        f.write(out)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    # Two runs at once (run.sh two at a time) build in turn: the second finds it done.
    lock = open(os.path.join(out, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    debs, tree = os.path.join(out, "debs"), os.path.join(out, "tree")
    fetch(debs)
    unpack(debs, tree)
    versions = sorted(os.listdir(os.path.join(tree, "lib", "modules")))
    if len(versions) != 1:
        raise SystemExit(f"linux_payload: expected one kernel in the package, found {versions}")
    version = versions[0]
    kernel = os.path.join(out, "vmlinuz.efi")
    if not os.path.exists(kernel):
        shutil.copyfile(os.path.join(tree, "boot", f"vmlinuz-{version}"), kernel)
    checks_bin = os.path.join(out, "linux-checks")
    if not os.path.exists(checks_bin) or os.path.getmtime(checks_bin) < os.path.getmtime(CHECKS_SOURCE):
        sh(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(ROOT, "iommu", "include"),
            "-o", checks_bin + ".tmp", CHECKS_SOURCE])
        os.replace(checks_bin + ".tmp", checks_bin)
    initrd = os.path.join(out, "initrd.img")
    inputs = [checks_bin, os.path.abspath(__file__)]
    if not os.path.exists(initrd) or any(os.path.getmtime(initrd) < os.path.getmtime(i) for i in inputs):
        build_initrd(tree, version, checks_bin, initrd)
    write_disk(os.path.join(out, "disk-virtio.img"), 0x1D15C0DE0001)
    write_disk(os.path.join(out, "disk-ahci.img"), 0x1D15C0DE0002)
    with open(os.path.join(out, "version"), "w") as f:
        f.write(version + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
