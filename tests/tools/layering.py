#!/usr/bin/env python3
"""The tree against docs/design.md's layer table: who may include whom, where VT-d's
registers may be named, and that the hypervisor's objects call nothing outside themselves.

  layering.py ROOT [--hypervisor-objects OBJ|OBJ|...]

1. Every #include "X/..." in a part's folder must name a part its row allows; <efi.h> and
   <efilib.h> count as the part "efi".
2. Each unit driver's registers and bits (every macro its private header defines:
   iommu/vtd/vtd_regs.h, iommu/smmuv3/smmuv3_regs.h) appear only in the folders the
   table's "VT-d registers" and "SMMUv3 registers" lines list.
3. With --hypervisor-objects: every symbol the hypervisor's objects (BOOTX64.EFI's
   freestanding half) leave undefined is defined by one of them, or is one of the few the
   compiler itself emits (memcpy, memset, memmove, memcmp) or the linker defines: a firmware
   call, or a call into the loader, is an undefined symbol here.
Prints each violation with its file and line; exits 1 when there is any."""
import os
import re
import subprocess
import sys

# The unit drivers' private register headers, by the label of their line in the table.
REGISTER_HEADERS = {"VT-d": "iommu/vtd/vtd_regs.h", "SMMUv3": "iommu/smmuv3/smmuv3_regs.h"}
COMPILER_EMITTED = {"memcpy", "memset", "memmove", "memcmp"}
# What the linker and gnu-efi's linker script define: the GOT, and the image's code bounds
# (the audit hashes the code between them).
LINKER_DEFINED = {"_GLOBAL_OFFSET_TABLE_", "_text", "_etext"}


def read_table(root):
    """The rows of docs/design.md's layer table (after its "<!-- layers" marker)."""
    text = open(os.path.join(root, "docs", "design.md")).read()
    start = text.index("<!-- layers")
    rows, register_folders, exceptions = {}, {}, set()
    for line in text[start:].splitlines()[1:]:
        label = line.split(" registers:", 1)[0]
        if label in REGISTER_HEADERS and line.startswith(label + " registers:"):
            register_folders[label] = line.split(":", 1)[1].split()
            continue
        if line.startswith("Exception:"):
            path, include = line.split(":", 1)[1].split()[:2]
            exceptions.add((path, include))
            continue
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if cells[0] in ("part", "---") or set(cells[0]) <= set("-"):
            continue
        part, folder, included_as, allowed = cells[0], cells[1], cells[2], cells[3]
        rows[part] = (folder.rstrip("/") + "/", included_as, set(allowed.replace(",", " ").split()))
    return rows, register_folders, exceptions


def part_of_file(rows, path):
    best = None
    for part, (folder, _, _) in rows.items():
        if path.startswith(folder) and (best is None or len(folder) > len(rows[best][0])):
            best = part
    return best


def part_of_include(rows, name):
    best = None
    for part, (_, included_as, _) in rows.items():
        if included_as != "-" and name.startswith(included_as) and \
                (best is None or len(included_as) > len(rows[best][1])):
            best = part
    return best


def check_includes(root, rows, exceptions, files):
    bad = []
    for path in files:
        part = part_of_file(rows, path)
        if part is None:
            continue
        allowed = rows[part][2] | {part}
        for n, line in enumerate(open(os.path.join(root, path), errors="replace"), 1):
            m = re.match(r'\s*#\s*include\s+([<"])([^>"]+)[>"]', line)
            if not m:
                continue
            name = m.group(2)
            if m.group(1) == "<":
                target = "efi" if name.startswith("efi") else None
            else:
                target = part_of_include(rows, name)
            if target is not None and target not in allowed and (path, name) not in exceptions:
                bad.append(f"{path}:{n}: {part} includes {name} ({target}), which docs/design.md does not allow")
    return bad


def check_register_names(root, register_folders, files):
    bad = []
    for label, header in REGISTER_HEADERS.items():
        if label not in register_folders:
            bad.append(f"docs/design.md: no \"{label} registers:\" line")
            continue
        names = re.findall(r"^#define\s+(\w+)", open(os.path.join(root, header)).read(), re.M)
        names = [n for n in names if not n.endswith("_H")]
        if not names:
            bad.append(f"{header} defines no register names")
            continue
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        for path in files:
            if any(path.startswith(f) for f in register_folders[label]):
                continue
            for n, line in enumerate(open(os.path.join(root, path), errors="replace"), 1):
                m = pattern.search(line)
                if m:
                    bad.append(f"{path}:{n}: {label} register name {m.group(1)} outside the {label} driver")
    return bad


def check_hypervisor_objects(objects):
    if not objects:
        return ["no hypervisor objects given"]
    defined, undefined = set(), {}
    for obj in objects:
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                undefined.setdefault(parts[1], obj)
            elif len(parts) == 3 and parts[1] not in "Uw":
                defined.add(parts[2])
    return [f"{os.path.basename(obj)}: calls {sym}, which the hypervisor does not define "
            f"(a firmware or loader function?)"
            for sym, obj in sorted(undefined.items()) if sym not in defined and sym not in COMPILER_EMITTED | LINKER_DEFINED]


def main():
    root = os.path.abspath(sys.argv[1])
    objects = None
    if "--hypervisor-objects" in sys.argv:
        objects = [o for o in sys.argv[sys.argv.index("--hypervisor-objects") + 1].split("|") if o]
    rows, register_folders, exceptions = read_table(root)
    files = subprocess.run(["git", "ls-files", "*.c", "*.h", "*.S"], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()
    if not files:  # not a git checkout: walk it
        files = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                 for f in fs if f.endswith((".c", ".h", ".S")) and "/build" not in d]
    bad = check_includes(root, rows, exceptions, files) + check_register_names(root, register_folders, files)
    if objects is not None:
        bad += check_hypervisor_objects(objects)
    for b in bad:
        print(b)
    print(f"layering: {len(rows)} parts, {len(files)} files, {len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
