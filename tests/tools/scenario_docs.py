#!/usr/bin/env python3
"""The scenario format's documentation stays true: the example in docs/scenarios.md passes
scenario-check, and a broken copy of it is refused with FILE:LINE and exit status 2."""
import os
import re
import subprocess
import sys
import tempfile

checker, docs = sys.argv[1], sys.argv[2]
text = open(docs).read()
m = re.search(r"## Example\n\n```\n(.*?)```", text, re.S)
if not m:
    sys.exit("docs/scenarios.md has no example")
with tempfile.TemporaryDirectory() as d:
    good = os.path.join(d, "example.txt")
    bad = os.path.join(d, "broken.txt")
    open(good, "w").write(m.group(1))
    lines = m.group(1).splitlines()
    lines[-1] = "expect-reports count=many"  # the last line, broken
    open(bad, "w").write("\n".join(lines) + "\n")
    r = subprocess.run([checker, good], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.startswith(good + ": "):
        sys.exit(f"the documented example was refused: {r.stderr.strip()}")
    r = subprocess.run([checker, bad], capture_output=True, text=True)
    want = f"{bad}:{len(lines)}: the value is a number"
    if r.returncode != 2 or not r.stderr.startswith(want):
        sys.exit(f"a broken example gave {r.returncode} {r.stderr.strip()!r}, not {want!r}")
print("ok: the documented example passes, a broken copy is refused with its line")
