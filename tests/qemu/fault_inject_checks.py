#!/usr/bin/env python3
"""CTest's view of the fault-injection runs (scripts/fault_inject.py, docs/scenarios.md).

  run       the fixture: every scenario of tests/scenarios/, two QEMUs at a time; it fails
            only when the runner could not run them all or write its reports
  list      the scenario files, one stem per line (CTest makes one test of each); with
            --arch arm64, those whose machine line does not say arch=x86_64
With --arch arm64 (run, list, scenario) the machine is Arm's virt with an SMMUv3.
  scenario  one scenario's verdict from the fixture's results.json, with its problems
  must-fail the scenarios under tests/scenarios/must-fail/, whose expectations are wrong on
            purpose: each must fail, with the problems its "# must-fail:" lines name; and a
            malformed scenario must stop the runner before QEMU, naming FILE:LINE"""
import argparse
import glob
import re
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "scripts", "fault_inject.py")
SCENARIOS = os.path.join(ROOT, "tests", "scenarios")


def runner(build, *args):
    return subprocess.run([sys.executable, RUNNER, "--build", build, *args], capture_output=True, text=True)


def cmd_run(a):
    r = runner(a.build, "--status-in-report", "--arch", a.arch)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    return r.returncode if r.returncode else 0 if os.path.exists(results_path(a.build, a.arch)) else 1


def results_path(build, arch="x86_64"):
    return os.path.join(build, "fault-inject" if arch == "x86_64" else "fault-inject-arm64", "results.json")


def scenario_arch(path):
    m = re.search(r"^machine\b.*\barch=(\w+)", open(path).read(), re.M)
    return m.group(1) if m else "any"


def cmd_list(a):
    for path in sorted(glob.glob(os.path.join(SCENARIOS, "*.txt"))):
        if scenario_arch(path) in ("any", a.arch):
            print(os.path.splitext(os.path.basename(path))[0])
    return 0


def cmd_scenario(a):
    try:
        with open(results_path(a.build, a.arch)) as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        print(f"no results from the fault-injection run: {e}")
        return 1
    want = os.path.join("tests", "scenarios", a.name + ".txt")
    r = next((r for r in results if r["file"] == want), None)
    if r is None:
        print(f"{want} is not in {results_path(a.build, a.arch)}")
        return 1
    print(f"{r['name']}: {r['steps']} steps, {r['dmas']} DMAs, faults expected {r['expected']}, seen by QEMU "
          f"{r['seen']}, reported {r['reported']}, {r['seconds']} s: {'PASS' if r['ok'] else 'FAIL'}")
    for p in r["problems"]:
        print(f"  {p}")
    print(f"serial log: {r['serial']}\ntrace: {r['trace']}")
    return 0 if r["ok"] else 1


def cmd_must_fail(a):
    bad = 0
    files = sorted(glob.glob(os.path.join(SCENARIOS, "must-fail", "*.txt")))
    out = os.path.join(a.build, "fault-inject-must-fail")
    r = runner(a.build, "--out", out, *files)
    print(r.stdout.strip())
    if r.returncode != 1:
        print(f"the runner exited {r.returncode}, want 1 (scenarios failed)")
        bad += 1
    with open(os.path.join(out, "results.json")) as f:
        results = {x["file"]: x for x in json.load(f)}
    for path in files:
        rel = os.path.relpath(path, ROOT)
        res = results.get(rel)
        wanted = [line.split("must-fail:", 1)[1].strip() for line in open(path) if line.startswith("# must-fail:")]
        if res is None or res["ok"]:
            print(f"{rel}: passed, but its expectations are wrong on purpose")
            bad += 1
            continue
        for w in wanted:
            if not any(w in p for p in res["problems"]):
                print(f"{rel}: no problem says \"{w}\" (problems: {res['problems']})")
                bad += 1
    # A malformed scenario: refused before any QEMU starts, with FILE:LINE.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as t:
        t.write("scenario broken\ndomain d translate\nmap d nothing iova=0x1000 perm=rw\n")
    r = runner(a.build, "--out", out, t.name)
    os.unlink(t.name)
    if r.returncode != 2 or f"{t.name}:3: not a buffer declared before" not in r.stderr:
        print(f"a malformed scenario: exit {r.returncode}, stderr {r.stderr!r}; want 2 and {t.name}:3")
        bad += 1
    print("must-fail: " + ("every wrong expectation was caught" if not bad else f"{bad} problem(s)"))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["run", "list", "scenario", "must-fail"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    return {"run": cmd_run, "list": cmd_list, "scenario": cmd_scenario, "must-fail": cmd_must_fail}[a.command](a)


if __name__ == "__main__":
    sys.exit(main())
