#!/usr/bin/env python3
"""The fault-injection runner's cross-check (scripts/fault_inject.py) on made-up serial logs
and QEMU traces: it must fold QEMU's per-access fault records into one fault per DMA, and
catch every way the guest's claims and QEMU's trace can disagree."""
import importlib.util
import os
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("fault_inject", os.path.join(ROOT, "scripts", "fault_inject.py"))
fi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fi)


def trace_of(*dmas):
    """QEMU's records for faulting DMAs (sid, reason, write, address, length): one per 4 bytes."""
    return "".join(f"vtd_dmar_fault sid 0x{sid:x} fault {reason} addr 0x{address + k:x} write {int(write)}\n"
                   for sid, reason, write, address, length in dmas for k in range(0, length, 4))


def dma(line, address, expect, write=True, reason=None, sid=0x18, length=64, first=None):
    why = f" reason {reason}" if reason is not None else ""
    why += f" address 0x{first:x}" if first is not None else ""
    return (f"dma {line}: sid 0x{sid:04x} {'write' if write else 'read'} 0x{address:x} len {length} expect {expect}"
            f"{why}: PASS, 0 report(s)\n")


def smmu_trace_of(*dmas):
    """QEMU's SMMUv3 account of faulting DMAs (sid, event name, address, length), one per 4
    bytes: the failed translation (guest_errors, with the address), then the event recorded
    for it (the trace, with the stream); neither says the direction."""
    return "".join(f"smmuv3-iommu-memory-region-16-2 translation failed for iova=0x{address + k:x} ({name})\n"
                   f"smmuv3_record_event {name} sid=0x{sid:x}\n"
                   for sid, name, address, length in dmas for k in range(0, length, 4))


def record(address, reason=5, write=True, sid=0x18):
    return f"vtd_dmar_fault sid 0x{sid:x} fault {reason} addr 0x{address:x} write {int(write)}\n"


class CrossCheck(unittest.TestCase):
    def test_folds_each_dma_into_one_fault(self):
        t = trace_of((0x18, 5, True, 0x1000, 64), (0x18, 5, True, 0x1000, 64), (0x20, 6, False, 0x2000, 8))
        steps = fi.dma_steps(dma(7, 0x1000, "fault") + dma(8, 0x1000, "fault") +
                             dma(9, 0x2000, "fault", write=False, sid=0x20, length=8))
        self.assertEqual(fi.trace_faults(fi.trace_records(t, "x86_64"), steps),
                         [(0x18, 5, True, 0x1000, 0x1000), (0x18, 5, True, 0x1000, 0x1000),
                          (0x20, 6, False, 0x2000, 0x2000)])

    def test_a_length_that_is_not_a_multiple_of_4(self):
        # 7 bytes: QEMU's accesses are 4, 2 and 1 bytes, at +0, +4 and +6: one fault, no stray
        serial = dma(9, 0x1000, "fault", reason=5, length=7)
        self.assertEqual(fi.cross_check(serial, record(0x1000) + record(0x1004) + record(0x1006)), ([], 1))

    def test_adjacent_faulting_dmas_stay_two(self):
        serial = dma(9, 0x1000, "fault", reason=5) + dma(10, 0x1040, "fault", reason=5)
        trace = trace_of((0x18, 5, True, 0x1000, 64), (0x18, 5, True, 0x1040, 64))
        self.assertEqual(fi.cross_check(serial, trace), ([], 2))

    def test_a_dma_that_faults_part_way(self):
        # The first page was mapped: the records start at the next page, inside the DMA.
        serial = dma(9, 0xff0, "fault", reason=5, length=64)
        self.assertEqual(fi.cross_check(serial, trace_of((0x18, 5, True, 0x1000, 48))), ([], 1))

    def test_a_partly_faulting_dma_names_its_first_unmapped_page(self):
        # A write from 0xf80 to 0x1080 whose first page is mapped: QEMU's first record is at
        # the second page's first byte, which the scenario names (address=0x1000).
        serial = dma(9, 0xf80, "fault", reason=5, length=0x100, first=0x1000)
        self.assertEqual(fi.dma_steps(serial)[0][7], 0x1000)
        self.assertEqual(fi.trace_faults(fi.trace_records(trace_of((0x18, 5, True, 0x1000, 0x80)), "x86_64"), fi.dma_steps(serial)),
                         [(0x18, 5, True, 0xf80, 0x1000)])
        self.assertEqual(fi.cross_check(serial, trace_of((0x18, 5, True, 0x1000, 0x80))), ([], 1))
        # QEMU faulted from the DMA's first byte: the first page moved nothing.
        problems, _ = fi.cross_check(serial, trace_of((0x18, 5, True, 0xf80, 0x100)))
        self.assertEqual(problems, ["line 9: QEMU's first fault record is at 0xf80, the scenario says 0x1000 "
                                    "(address=0x1000)"])
        # The fault began a page later than the scenario says.
        serial = dma(9, 0xf80, "fault", reason=6, write=False, length=0x1100, first=0x1000)
        problems, _ = fi.cross_check(serial, trace_of((0x18, 6, False, 0x2000, 0x80)))
        self.assertEqual(problems, ["line 9: QEMU's first fault record is at 0x2000, the scenario says 0x1000 "
                                    "(address=0x1000)"])
        # A DMA that faults from its start: address= is its page, and the first record its start.
        serial = dma(9, 0x3010, "fault", reason=5, first=0x3000)
        self.assertEqual(fi.cross_check(serial, trace_of((0x18, 5, True, 0x3010, 64))), ([], 1))
        problems, _ = fi.cross_check(serial, trace_of((0x18, 5, True, 0x3020, 48)))
        self.assertEqual(len(problems), 1)

    def test_a_stray_is_one_problem(self):
        serial = dma(9, 0x1000, "fault", reason=5) + dma(11, 0x3000, "fault", reason=5)
        trace = trace_of((0x18, 5, True, 0x1000, 64), (0x18, 5, True, 0x8000, 256), (0x18, 5, True, 0x3000, 64))
        problems, _ = fi.cross_check(serial, trace)
        self.assertEqual(problems, ["QEMU traced a fault no DMA accounts for: sid 0x0018 write 0x8000 reason 5"])

    def test_agreeing_run(self):
        serial = dma(7, 0x1000, "ok") + dma(9, 0x1000, "fault", reason=5) + dma(11, 0x1000, "fault", reason=5)
        problems, seen = fi.cross_check(serial, trace_of((0x18, 5, True, 0x1000, 64), (0x18, 5, True, 0x1000, 64)))
        self.assertEqual(problems, [])
        self.assertEqual(seen, 2)

    def test_fault_missing_from_trace(self):
        problems, _ = fi.cross_check(dma(9, 0x1000, "fault", reason=5), "")
        self.assertEqual(len(problems), 1)
        self.assertIn("line 9: no fault for sid 0x0018 at 0x1000", problems[0])

    def test_wrong_reason(self):
        problems, _ = fi.cross_check(dma(9, 0x1000, "fault", reason=6), trace_of((0x18, 5, True, 0x1000, 64)))
        self.assertEqual(problems, ["line 9: QEMU traced reason 5, the scenario says 6"])

    def test_ok_dma_that_faulted(self):
        problems, _ = fi.cross_check(dma(7, 0x1000, "ok"), trace_of((0x18, 5, True, 0x1000, 64)))
        self.assertEqual(problems, ["line 7: expected to succeed, but QEMU traced a fault with reason 5"])

    def test_ok_dma_before_a_fault_at_the_same_address(self):
        # Two faults in the trace, two DMAs meant to fault: the ok DMA before them had none.
        serial = dma(7, 0x1000, "ok") + dma(9, 0x1000, "fault") + dma(10, 0x1000, "fault")
        problems, _ = fi.cross_check(serial, trace_of((0x18, 5, True, 0x1000, 64), (0x18, 5, True, 0x1000, 64)))
        self.assertEqual(problems, [])
        # Three faults for two such DMAs: the ok one faulted too.
        trace = trace_of(*[(0x18, 5, True, 0x1000, 64)] * 3)
        problems, _ = fi.cross_check(serial, trace)
        self.assertEqual(problems, ["line 7: expected to succeed, but QEMU traced a fault with reason 5"])

    def test_other_device_or_direction_is_not_a_match(self):
        problems, _ = fi.cross_check(dma(9, 0x1000, "fault"), trace_of((0x20, 5, True, 0x1000, 64)))
        self.assertEqual(len(problems), 2)  # not found, and the other device's fault left over
        problems, _ = fi.cross_check(dma(9, 0x1000, "fault", write=False), trace_of((0x18, 5, True, 0x1000, 64)))
        self.assertEqual(len(problems), 2)

    def test_leftover_fault(self):
        problems, _ = fi.cross_check(dma(7, 0x3000, "ok"), trace_of((0x18, 6, False, 0x9000, 16)))
        self.assertEqual(problems, ["QEMU traced a fault no DMA accounts for: sid 0x0018 read 0x9000 reason 6"])

    def test_arm64_records_pair_the_address_with_the_stream(self):
        trace = ("Taking exception 5 [IRQ] on CPU 0\n" + smmu_trace_of((0x10, "SMMU_EVT_F_TRANSLATION", 0x2000, 8))
                 + "smmuv3_record_event SMMU_EVT_C_BAD_STE sid=0x20\n")  # no translation: no address, left out
        self.assertEqual(fi.trace_records(trace, "arm64"),
                         [(0x10, "SMMU_EVT_F_TRANSLATION", None, 0x2000), (0x10, "SMMU_EVT_F_TRANSLATION", None, 0x2004)])

    def test_arm64_a_fault_goes_to_the_dma_meant_to_fault(self):
        # The trace does not say the direction: the read at the same address before it, which
        # is to succeed, must not take the write's fault; reason numbers are VT-d's, not checked.
        serial = dma(10, 0x0, "ok", write=False, sid=0x10) + dma(13, 0x0, "fault", reason=5, sid=0x10, length=256)
        trace = smmu_trace_of((0x10, "SMMU_EVT_F_TRANSLATION", 0x0, 256))
        self.assertEqual(fi.cross_check(serial, trace, "arm64"), ([], 1))
        problems, _ = fi.cross_check(dma(10, 0x0, "ok", write=False, sid=0x10),
                                     smmu_trace_of((0x10, "SMMU_EVT_F_TRANSLATION", 0x0, 64)), "arm64")
        self.assertEqual(len(problems), 1)
        self.assertIn("line 10: expected to succeed", problems[0])
        problems, _ = fi.cross_check(dma(13, 0x0, "fault", sid=0x10), "", "arm64")
        self.assertIn("line 13: no fault for sid 0x0010 at 0x0", problems[0])

    def test_burst_faults_in_either_order(self):
        serial = dma(12, 0xc000, "fault", sid=0x18) + dma(12, 0xc000, "fault", sid=0x20) + dma(14, 0xd000, "fault")
        trace = trace_of((0x20, 5, True, 0xc000, 64), (0x18, 5, True, 0xc000, 64), (0x18, 5, True, 0xd000, 64))
        self.assertEqual(fi.cross_check(serial, trace), ([], 3))
        # but a step's faults do not come from a later step
        serial = dma(12, 0xc000, "fault") + dma(14, 0xd000, "fault")
        trace = trace_of((0x18, 5, True, 0xd000, 64), (0x18, 5, True, 0xc000, 64))
        problems, _ = fi.cross_check(serial, trace)
        self.assertEqual(len(problems), 2)
        self.assertIn("line 12: no fault for sid", problems[0])
        self.assertIn("no DMA accounts for: sid 0x0018 write 0xc000", problems[1])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
