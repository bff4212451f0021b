#!/usr/bin/env python3
"""Behaviour of the iommu-acpi command line: output formats, exit codes, error lines."""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

from checks import Checks

check = Checks()


def run(tool, *args):
    p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def all_numbers_are_ints(v):
    if isinstance(v, bool) or isinstance(v, str) or v is None:
        return True
    if isinstance(v, float):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, list):
        return all(all_numbers_are_ints(x) for x in v)
    return all(all_numbers_are_ints(x) for x in v.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--fixtures", required=True)
    a = ap.parse_args()
    tool = a.tool
    files = sorted(glob.glob(os.path.join(a.fixtures, "dmar", "*.dmar")) +
                   glob.glob(os.path.join(a.fixtures, "iort", "*.iort")))
    check(len(files) >= 10, "fixtures found")

    for f in files:
        rc, out, err = run(tool, "--json", f)
        check(rc == 0, f"--json {f} exits 0 (got {rc}: {err.strip()})")
        try:
            doc = json.loads(out)
        except ValueError as e:
            check(False, f"--json {f} is valid JSON: {e}")
            continue
        want = "DMAR" if f.endswith(".dmar") else "IORT"
        check(doc.get("signature") == want, f"{f}: signature {want}")
        check(all_numbers_are_ints(doc), f"{f}: every number is an integer")
        key = "structures" if want == "DMAR" else "nodes"
        check(isinstance(doc.get(key), list) and len(doc[key]) > 0, f"{f}: has {key}")
        offsets = [s["offset"] for s in doc[key]]
        check(offsets == sorted(offsets), f"{f}: {key} in table order")
        rc, text, _ = run(tool, f)
        check(rc == 0 and text.startswith(want), f"text mode for {f}")

    rc, out, _ = run(tool, "--json", *files[:3])
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 3 and all(json.loads(l) for l in lines),
          "several files give one JSON document per line")

    dmar = next(f for f in files if "dell" in f)
    with open(dmar, "rb") as fh:
        good = fh.read()
    with tempfile.TemporaryDirectory() as tmp:
        def write(name, data):
            path = os.path.join(tmp, name)
            with open(path, "wb") as fh:
                fh.write(data)
            return path

        truncated = write("truncated.dmar", good[:100])
        rc, out, err = run(tool, "--json", truncated)
        check(rc == 2 and out == "", "truncated table: exit 2, nothing on stdout")
        check(err.startswith(f"error: {truncated}: offset 0x4: table length 400 exceeds the 100 bytes"),
              f"truncated table: error line names file and offset ({err.strip()})")

        bad_scope = bytearray(good)
        bad_scope[0x41] = 0
        path = write("scope0.dmar", bytes(bad_scope))
        rc, _, err = run(tool, path)
        check(rc == 2 and f"error: {path}: offset 0x41: device scope length 0" in err,
              f"scope length 0 rejected ({err.strip()})")

        badsum = bytearray(good)
        badsum[9] ^= 0x55
        path = write("badsum.dmar", bytes(badsum))
        rc, out, err = run(tool, "--json", path)
        check(rc == 0 and json.loads(out)["checksum_ok"] is False, "wrong checksum still decodes")
        check(err.startswith(f"warning: {path}: offset 0x9: DMAR checksum"), "wrong checksum warns")

        other = write("facp.bin", b"FACP" + bytes(40))
        rc, _, err = run(tool, other)
        check(rc == 2 and "not a DMAR or IORT table" in err, "other signature rejected")

        rc, out, err = run(tool, "--json", truncated, dmar)
        check(rc == 2 and len(out.splitlines()) == 1, "a bad file does not stop the others")

    rc, _, err = run(tool, os.path.join(a.fixtures, "no-such-file"))
    check(rc == 2 and err.startswith("error: ") and "No such file" in err, "missing file")
    rc, _, _ = run(tool, "--bogus")
    check(rc == 1, "unknown option exits 1")
    rc, out, _ = run(tool, "--help")
    check(rc == 0 and "usage:" in out, "--help")

    present = [t for t in ("DMAR", "IORT") if os.path.exists(f"/sys/firmware/acpi/tables/{t}")]
    rc, out, err = run(tool, "--json")
    if present:
        check(rc in (0, 2) and len(out.splitlines()) + err.count("error:") == len(present),
              "no FILE: decodes the tables in /sys/firmware/acpi/tables")
    else:
        check(rc == 1 and "no DMAR or IORT" in err, "no FILE and no sysfs tables: exit 1 with a reason")

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
