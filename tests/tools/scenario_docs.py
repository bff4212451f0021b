#!/usr/bin/env python3
"""The scenario format's documentation stays true and whole: the example in docs/scenarios.md
passes scenario-check, a broken copy of it is refused with FILE:LINE and exit status 2, and
every step and option the parser (boot/scenario/scenario.c) takes is documented there, so a scenario
can be written from the docs alone."""
import os
import re
import subprocess
import sys
import tempfile

checker, docs, parser = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(docs).read()
source = open(parser).read()
steps = re.findall(r'\[STEP_\w+\] = \{"([a-z-]+)", \d, \d, \{[^}]*\}, -?\d, "([a-z ]*)"', source)
if len(steps) < 20:
    sys.exit(f"found only {len(steps)} steps in {parser}; has its table changed shape?")
missing = [f"step {verb}" for verb, _ in steps if f"`{verb} " not in text and f"`{verb}`" not in text]
# status= is documented once, for every DDI step.
missing += [] if "`status=S`" in text else ["status=S"]
missing += [f"option {key}= of {verb}" for verb, keys in steps for key in keys.split() if key != "status"
            and not re.search(rf"`{re.escape(verb)}\b[^`]*\b{key}=", text)]
if missing:
    sys.exit("docs/scenarios.md does not document: " + ", ".join(missing))
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
