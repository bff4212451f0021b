#!/usr/bin/env python3
"""Cross-check `iommu-acpi --json` against an independent decoder, `iasl -d`.

Usage: iasl_crosscheck.py [--expect-reject] --tool PATH_TO_iommu-acpi FILE...

Each FILE is a raw ACPI DMAR or IORT table. The script disassembles it with iasl (Debian
acpica-tools 20200925), rebuilds from iasl's field listing the JSON object that
docs/iommu-acpi.md specifies, and checks that every value it could rebuild is present and equal
in the tool's JSON. Values iasl does not show are not checked. With --expect-reject every FILE
must instead be rejected by the tool (exit status 2 and an `error:` line on stderr).

iasl lists each field as `[HexOffset DecimalOffset ByteLength] Name : Value`. Values are looked up
by table offset and byte length rather than by name, because iasl calls several different fields
"Reserved" and sometimes prints fields that do not exist (see IORT_OPTIONAL). An integer field is
printed as its little-endian value, so any byte range inside it can be extracted exactly. The
table's own bytes are read only to count the DMAR structures after the point where iasl gave up.

Exit status: 0 every FILE passed, 1 at least one failed, 2 usage error or iasl missing.
"""

import argparse
import json
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FIELD_RE = re.compile(r"^\[([0-9A-Fa-f]+)h\s+\d+\s+(\d+)\]\s*(.*?) : (.*)$")
# iasl gave up on the current subtable: "**** Unknown IORT node type 0x6" (it goes on with the
# next IORT node but stops a DMAR), "Invalid zero length subtable", "**** ACPI table terminates in
# the middle of a data structure" (it stops). "/**** ACPI subtable terminates early" is only a
# note that a subtable is shorter than iasl's layout, which the spec allows for some IORT nodes.
GAVE_UP_RE = re.compile(r"^(\*\*\*\*|Invalid )")
UNDECODED = "undecoded"  # stands for such a line in the parsed listing
# A quoted string; the Signature line adds a bracketed description after it.
STRING_RE = re.compile(r'^"(.*)"(?:\s+\[[^"\]]*\])?$')
PCI_PATH_RE = re.compile(r"^([0-9A-Fa-f]{2}),([0-9A-Fa-f]{2})$")
IASL_TIMEOUT = 20  # seconds; a normal run takes milliseconds
IASL_FILE_LIMIT = 16 << 20  # bytes; the listing of a 64 KiB table is a few MiB
TOOL_TIMEOUT = 20  # seconds


@dataclass
class Field:
    offset: int  # from the start of the table
    length: int
    name: str
    value: str  # the text after " : "

    def integer(self):
        """The value of an integer field, or None for strings, byte lists and the like."""
        token = (self.value.split() or [""])[0]
        if len(token) == 2 * self.length and re.fullmatch(r"[0-9A-Fa-f]+", token):
            return int(token, 16)
        return None

    def string(self):
        match = STRING_RE.match(self.value)
        return match.group(1) if match else None


class Fields:
    """The fields iasl printed for one part of the table, looked up by offset from `base`."""

    def __init__(self, base):
        self.base = base
        self.fields = []

    def integer(self, rel, size):
        """Bytes rel..rel+size-1 as a little-endian integer, taken from whichever integer field
        iasl printed over them; None when no such field exists or two such fields disagree."""
        start = self.base + rel
        values = set()
        for field in self.fields:
            value = field.integer()
            inside = field.offset <= start and start + size <= field.offset + field.length
            if value is not None and inside:
                values.add((value >> 8 * (start - field.offset)) & ((1 << 8 * size) - 1))
        return values.pop() if len(values) == 1 else None

    def string(self, rel):
        for field in self.fields:
            if field.offset == self.base + rel and field.string() is not None:
                return field.string()
        return None


@dataclass
class Unit:
    """One DMAR structure or IORT node: its own fields, its sub-entries (DMAR device scopes,
    IORT ID mappings) and whether iasl said it could not decode it."""

    body: Fields
    subs: list
    undecoded: bool = False


def parse_dsl(text):
    """Split iasl's listing into field records and 'gave up' markers, in order."""
    items = []
    for line in text.splitlines():
        match = FIELD_RE.match(line)
        if match:
            offset, length, name, value = match.groups()
            items.append(Field(int(offset, 16), int(length), name, value.strip()))
        elif GAVE_UP_RE.match(line.strip()):
            items.append(UNDECODED)
    return items


def split_units(items, is_unit_start, is_sub_start):
    """Group the field stream into the table header and its units (structures or nodes)."""
    header = Fields(0)
    units = []
    current = header
    for item in items:
        if item is UNDECODED:
            if units:
                units[-1].undecoded = True
            continue
        if is_unit_start(item):
            units.append(Unit(Fields(item.offset), []))
            current = units[-1].body
        elif units and is_sub_start(item):
            units[-1].subs.append(Fields(item.offset))
            current = units[-1].subs[-1]
        current.fields.append(item)
    return header, units


def put(obj, key, value):
    """Set obj[key] only when iasl provided the value, so that it gets compared."""
    if value is not None:
        obj[key] = value


def printable(text):
    """The string, or None when it holds bytes whose JSON form the spec leaves open."""
    if text is not None and all(" " <= ch <= "~" for ch in text):
        return text
    return None


def table_header(header, ascii_repaired):
    obj = {}
    put(obj, "signature", header.string(0))
    put(obj, "length", header.integer(4, 4))
    put(obj, "revision", header.integer(8, 1))
    checksum = [f for f in header.fields if f.offset == 9]
    if checksum:
        obj["checksum_ok"] = "Incorrect checksum" not in checksum[0].value
    # iasl shows a non-ASCII byte in these names as a space (and warns), so only an ASCII
    # name can be compared. iasl also stops at the first NUL.
    if not ascii_repaired:
        put(obj, "oem_id", printable(header.string(10)))
        put(obj, "oem_table_id", printable(header.string(16)))
    return obj


def count_raw_dmar_structures(data, start, end):
    """Count the DMAR structures from `start` to the table end by their length fields. Used only
    for the part iasl gave up on, to know how many tool structures are left unchecked."""
    count = 0
    while start + 4 <= end:
        _, length = struct.unpack_from("<HH", data, start)
        if length < 4:
            break
        count += 1
        start += length
    return count


DMAR_TYPES = {0: "DRHD", 1: "RMRR", 2: "ATSR", 3: "RHSA", 4: "ANDD"}
# (JSON key, offset in the structure, byte length); the structure header is type (0) and length (2).
DMAR_LAYOUT = {
    0: [("flags", 4, 1), ("size", 5, 1), ("segment", 6, 2), ("register_base", 8, 8)],
    1: [("segment", 6, 2), ("base", 8, 8), ("limit", 16, 8)],
    2: [("flags", 4, 1), ("segment", 6, 2)],
    3: [("register_base", 8, 8), ("proximity_domain", 16, 4)],
    4: [("device_number", 7, 1)],
}
DMAR_WITH_SCOPES = {0, 1, 2}


def dmar_scope(scope):
    obj = {"offset": scope.base}
    put(obj, "type", scope.integer(0, 1))
    length = scope.integer(1, 1)
    put(obj, "length", length)
    # iasl prints bytes 2-3 as one 16-bit "Reserved"; its low byte is byte 2, the tool's flags.
    put(obj, "flags", scope.integer(2, 1))
    put(obj, "enumeration_id", scope.integer(4, 1))
    put(obj, "start_bus", scope.integer(5, 1))
    # The path is (device, function) pairs from byte 6 to the end; with an odd length it is not
    # clear whether the tool drops the stray byte or rejects the table, so it is not checked.
    if length is not None and length % 2 == 0:
        path = []
        for rel in range(6, length, 2):
            hop = [f for f in scope.fields if f.offset == scope.base + rel and f.length == 2]
            match = PCI_PATH_RE.match(hop[0].value) if hop else None
            if not match:
                break
            path.append([int(match.group(1), 16), int(match.group(2), 16)])
        else:
            obj["path"] = path
    return obj


def dmar_structure(unit):
    """The JSON object for one structure, or None when iasl did not decode it."""
    body = unit.body
    stype = body.integer(0, 2)
    if unit.undecoded or stype not in DMAR_TYPES:
        return None
    length = body.integer(2, 2)
    obj = {"offset": body.base, "type": DMAR_TYPES[stype]}
    put(obj, "length", length)
    for key, rel, size in DMAR_LAYOUT[stype]:
        put(obj, key, body.integer(rel, size))
    if stype == 4 and length is not None:
        # iasl prints up to the first NUL even past the structure; the spec cuts at its end.
        name = body.string(8)
        if name is not None:
            put(obj, "object_name", printable(name[: max(length - 8, 0)]))
    if stype in DMAR_WITH_SCOPES:
        obj["scopes"] = [dmar_scope(scope) for scope in unit.subs]
    return obj


def convert_dmar(items, data, ascii_repaired):
    header, units = split_units(
        items,
        lambda f: f.name == "Subtable Type",
        lambda f: f.name == "Device Scope Type",
    )
    obj = table_header(header, ascii_repaired)
    width = header.integer(36, 1)
    put(obj, "host_address_width", None if width is None else width + 1)
    put(obj, "flags", header.integer(37, 1))
    structures = [dmar_structure(unit) for unit in units]
    # iasl stops at the first structure type it does not know (SATC, SIDP) or cannot decode:
    # count what follows from the raw bytes so that the lists must still have the same length.
    end = min(obj.get("length", len(data)), len(data))
    resume = 48
    if units:
        last = units[-1].body
        resume = last.base + (last.integer(2, 2) or 0)
    structures += [None] * count_raw_dmar_structures(data, resume, end)
    obj["structures"] = structures
    return obj


IORT_TYPES = {0: "ITS", 1: "NC", 2: "RC", 3: "SMMUv1v2", 4: "SMMUv3", 5: "PMCG"}
# (JSON key, offset in the node, byte length) of the fields every node of the type has.
IORT_MANDATORY = {
    0: [],
    1: [
        ("node_flags", 16, 4),
        ("cache_coherency", 20, 4),
        ("allocation_hints", 24, 1),
        ("memory_flags", 27, 1),
        ("memory_address_limit", 28, 1),
    ],
    2: [
        ("cache_coherency", 16, 4),
        ("allocation_hints", 20, 1),
        ("memory_flags", 23, 1),
        ("ats_attribute", 24, 4),
        ("segment", 28, 4),
    ],
    3: [("base_address", 16, 8), ("span", 24, 8), ("model", 32, 4), ("flags", 36, 4)],
    4: [
        ("base_address", 16, 8),
        ("flags", 24, 4),
        ("vatos_address", 32, 8),
        ("model", 40, 4),
        ("event_gsiv", 44, 4),
        ("pri_gsiv", 48, 4),
        ("gerr_gsiv", 52, 4),
        ("sync_gsiv", 56, 4),
    ],
    5: [("page0_base_address", 16, 8), ("overflow_gsiv", 24, 4), ("node_reference", 28, 4)],
}
# Fields later IORT revisions appended: "where present" in the spec. iasl 20200925 prints its
# fixed layout whatever the node's size, e.g. an SMMUv3 "Proximity Domain" that is really the
# first ID mapping, so the spec's rule decides which of them exist. The RC PASID capabilities
# (bytes 33-34) and flags (36-39) are not named by this iasl; the PASID bytes are read from the
# 3-byte "Reserved" it prints at 33, and the flags are not printed at all.
IORT_OPTIONAL = {
    2: [("memory_address_limit", 32, 1), ("pasid_capabilities", 33, 2), ("flags", 36, 4)],
    4: [("proximity_domain", 60, 4), ("device_id_mapping_index", 64, 4)],
    5: [("page1_base_address", 32, 8)],
}
NC_NAME_OFFSET = 29


def iort_interrupts(body, length, count_rel, offset_rel):
    """An SMMUv1/v2 interrupt array: iasl prints each entry as one 8-byte value."""
    count, start = body.integer(count_rel, 4), body.integer(offset_rel, 4)
    # An array that does not fit in the node makes the tool reject the table; checking the
    # bound first also keeps a corrupt count from making this loop run for ever.
    if count is None or start is None or start + 8 * count > length:
        return None
    entries = []
    for i in range(count):
        gsiv, flags = body.integer(start + 8 * i, 4), body.integer(start + 8 * i + 4, 4)
        if gsiv is None or flags is None:
            return None
        entries.append({"gsiv": gsiv, "flags": flags})
    return entries


def iort_node(unit):
    """The JSON object for one node, or None when iasl did not decode it."""
    body = unit.body
    ntype, length = body.integer(0, 1), body.integer(1, 2)
    if unit.undecoded or ntype not in IORT_TYPES or length is None:
        return None
    obj = {"offset": body.base, "type": IORT_TYPES[ntype], "length": length}
    put(obj, "revision", body.integer(3, 1))
    put(obj, "identifier", body.integer(4, 4))
    mappings = []
    for sub in unit.subs:
        mapping = {}
        for key, rel in (("input_base", 0), ("id_count", 4), ("output_base", 8),
                         ("output_reference", 12), ("flags", 16)):
            put(mapping, key, sub.integer(rel, 4))
        mappings.append(mapping)
    obj["id_mappings"] = mappings

    for key, rel, size in IORT_MANDATORY[ntype]:
        put(obj, key, body.integer(rel, size))
    mapping_count, mapping_offset = body.integer(8, 4), body.integer(12, 4)
    fixed_end = mapping_offset if mapping_count else length
    if fixed_end is not None:
        for key, rel, size in IORT_OPTIONAL.get(ntype, []):
            if rel + size <= fixed_end:
                put(obj, key, body.integer(rel, size))

    if ntype == 0:
        count = body.integer(16, 4)
        if count is not None and 20 + 4 * count <= length:  # bounded as the interrupt arrays
            ids = [body.integer(20 + 4 * i, 4) for i in range(count)]
            if None not in ids:
                obj["its_ids"] = ids
    elif ntype == 1:
        # The spec does not say where a name without a NUL in the fixed part ends, so only a
        # name iasl saw terminated inside it is compared.
        name = body.string(NC_NAME_OFFSET)
        if name is not None and fixed_end is not None and NC_NAME_OFFSET + len(name) < fixed_end:
            put(obj, "object_name", printable(name))
    elif ntype == 3:
        # iasl prints the global interrupts where the node's Global Interrupt Offset points.
        glob = body.integer(40, 4)
        if glob is not None:
            keys = ("nsg_irpt", "nsg_irpt_flags", "nsg_cfg_irpt", "nsg_cfg_irpt_flags")
            for i, key in enumerate(keys):
                put(obj, key, body.integer(glob + 4 * i, 4))
        put(obj, "context_interrupts", iort_interrupts(body, length, 44, 48))
        put(obj, "pmu_interrupts", iort_interrupts(body, length, 52, 56))
    return obj


def convert_iort(items, ascii_repaired):
    header, units = split_units(
        items,
        lambda f: f.name == "Type" and f.length == 1,
        lambda f: f.name == "Input base",
    )
    obj = table_header(header, ascii_repaired)
    node_count = header.integer(36, 4)
    put(obj, "node_count", node_count)
    put(obj, "node_offset", header.integer(40, 4))
    nodes = [iort_node(unit) for unit in units]
    # iasl prints the header of every node, even one it cannot decode (RMR), and walks the nodes
    # to the table end; when it stops early, the nodes it never reached stay unchecked.
    if node_count is not None and len(nodes) < node_count:
        nodes += [None] * (node_count - len(nodes))
    obj["nodes"] = nodes
    return obj


def run_iasl(directory):
    """Run `iasl -d t.dat` in directory. Returns (None, its messages) or (why it failed, None).

    iasl 20200925 loops for ever, printing, on some malformed files (bytes after the table are
    enough), so it gets a time limit and every file it writes is capped. Its banner goes to
    stdout, its messages to stderr."""
    log_path = Path(directory, "iasl.log")

    def cap_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (IASL_FILE_LIMIT, IASL_FILE_LIMIT))

    with open(log_path, "wb") as log:
        try:
            run = subprocess.run(["iasl", "-d", "t.dat"], cwd=directory, stdout=subprocess.DEVNULL,
                                 stderr=log, timeout=IASL_TIMEOUT, preexec_fn=cap_file_size)
        except subprocess.TimeoutExpired:
            return f"iasl -d did not finish within {IASL_TIMEOUT} s", None
    with open(log_path, "rb") as log:
        messages = log.read(64 * 1024).decode("latin-1")
    if run.returncode == -signal.SIGXFSZ:
        return f"iasl -d ran away (over {IASL_FILE_LIMIT >> 20} MiB of output)", None
    if run.returncode != 0 or not Path(directory, "t.dsl").exists():
        last = ([line for line in messages.splitlines() if line.strip()] or ["no message"])[-1]
        return f"iasl -d failed (exit {run.returncode}): {last}", None
    return None, messages


def iasl_expectation(data):
    """Disassemble the table with iasl and rebuild the spec's JSON from it. Returns
    (object, None) or (None, reason)."""
    with tempfile.TemporaryDirectory(prefix="iasl-crosscheck-") as tmp:
        Path(tmp, "t.dat").write_bytes(data)
        failure, messages = run_iasl(tmp)
        if failure:
            return None, failure
        # latin-1 keeps every byte iasl copied into a string as one character.
        items = parse_dsl(Path(tmp, "t.dsl").read_text(encoding="latin-1"))
    ascii_repaired = "invalid ASCII character" in messages
    signature = next((f.string() for f in items if isinstance(f, Field) and f.offset == 0), None)
    if signature == "DMAR":
        return convert_dmar(items, data, ascii_repaired), None
    if signature == "IORT":
        return convert_iort(items, ascii_repaired), None
    return None, f"not a DMAR or IORT table (iasl signature {signature!r})"


class Comparison:
    def __init__(self):
        self.compared = 0
        self.unchecked = 0
        self.mismatches = []

    def mismatch(self, path, expected, actual):
        self.mismatches.append(f"{path} iasl={expected} tool={actual}")

    def compare(self, expected, actual, path):
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                self.mismatch(path or "(document)", "object", json.dumps(actual))
                return
            for key, value in expected.items():
                child = f"{path}.{key}" if path else key
                if key in actual:
                    self.compare(value, actual[key], child)
                else:
                    self.mismatch(child, json.dumps(value), "<missing>")
        elif isinstance(expected, list):
            if not isinstance(actual, list):
                self.mismatch(path, "array", json.dumps(actual))
                return
            if len(expected) != len(actual):
                self.mismatch(f"len({path})", len(expected), len(actual))
            for i, (exp, act) in enumerate(zip(expected, actual)):
                if exp is None:  # a structure iasl could not decode
                    self.unchecked += 1
                else:
                    self.compare(exp, act, f"{path}[{i}]")
        else:
            self.compared += 1
            # type() keeps JSON true from equalling 1.
            if type(expected) is not type(actual) or expected != actual:
                self.mismatch(path, json.dumps(expected), json.dumps(actual))


def run_tool(tool, path):
    """Returns (exit status, stdout, stderr); a tool that hangs is killed, with status None."""
    try:
        run = subprocess.run([tool, "--json", path], capture_output=True, text=True,
                             errors="replace", timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "", f"(killed after {TOOL_TIMEOUT} s)"
    return run.returncode, run.stdout, run.stderr


def describe(status):
    return "timed out" if status is None else f"exited {status}"


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def check_file(tool, path):
    """Returns (passed, report lines)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return False, [f"FAIL {path}: cannot read: {exc.strerror}"]
    expected, reason = iasl_expectation(data)
    if expected is None:
        return False, [f"FAIL {path}: {reason}"]

    status, stdout, stderr = run_tool(tool, path)
    if status != 0:
        detail = (error_lines(stderr) or stderr.strip().splitlines() or [""])[0]
        return False, [f"FAIL {path}: tool {describe(status)}: {detail}"]
    documents = [line for line in stdout.splitlines() if line.strip()]
    if len(documents) != 1:
        return False, [f"FAIL {path}: tool printed {len(documents)} JSON lines, expected 1"]
    try:
        actual = json.loads(documents[0])
    except json.JSONDecodeError as exc:
        return False, [f"FAIL {path}: tool output is not JSON: {exc}"]

    comparison = Comparison()
    comparison.compare(expected, actual, "")
    if comparison.mismatches:
        return False, [f"FAIL {path}: {m}" for m in comparison.mismatches]
    return True, [f"PASS {path} ({comparison.compared} fields compared, "
                  f"{comparison.unchecked} structures not decodable by iasl)"]


def check_rejected(tool, path):
    status, _, stderr = run_tool(tool, path)
    errors = error_lines(stderr)
    if status == 2 and errors:
        return True, [f"PASS {path} (rejected: {errors[0]})"]
    return False, [f"FAIL {path}: expected rejection (exit 2, error: on stderr), "
                   f"tool {describe(status)}{'' if errors else ' without an error: line'}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", required=True, help="path to the iommu-acpi binary")
    parser.add_argument("--expect-reject", action="store_true",
                        help="every FILE must be rejected by the tool (exit 2, error: on stderr)")
    parser.add_argument("files", metavar="FILE", nargs="+", help="raw DMAR or IORT table")
    args = parser.parse_args()  # exits 2 on a usage error

    if shutil.which("iasl") is None:
        print("iasl_crosscheck: iasl not found in PATH (Debian package acpica-tools)",
              file=sys.stderr)
        return 2
    if shutil.which(args.tool) is None:
        print(f"iasl_crosscheck: tool {args.tool} not found or not executable", file=sys.stderr)
        return 2

    check = check_rejected if args.expect_reject else check_file
    passed = failed = 0
    for path in args.files:
        ok, lines = check(args.tool, path)
        print("\n".join(lines))
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
