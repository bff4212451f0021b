/* Arm VMSAv8-64 stage-1 descriptors with the 4 KiB granule (Arm ARM D8.3), as an SMMUv3
 * walks them for a context descriptor. The engine's level n is the architecture's level
 * 4 - n: 3 levels (39-bit IOVAs) start at its level 1, 4 levels (48-bit) at its level 0,
 * where the engine never places a leaf (it places none above 1 GiB). 5 levels have no
 * Arm counterpart with this granule; the SMMUv3 driver offers 3 and 4.
 *
 * - Bit 0 valid; bits 1:0 = 0b11 a table above the last level and a page at it, 0b01 a
 *   block (2 MiB, 1 GiB). So the leaf test above the last level is bits 1:0 == 0b01, not
 *   the x86 page-size bit: bit 7 here is AP[2].
 * - A table descriptor is its address and 0b11, nothing else: NSTable, APTable, UXNTable
 *   and PXNTable stay 0, so the leaves alone decide.
 * - Every leaf: AttrIndx (bits 4:2) 0, which the context descriptor's MAIR makes Normal
 *   write-back memory (the SMMUv3 driver sets MAIR attr0 = 0xFF); SH (bits 9:8) 0b11, inner
 *   shareable, as the CPUs map RAM, so DMA is coherent with them; AF (bit 10), because
 *   nothing here would take and handle an Access flag fault and the SMMU need not have
 *   hardware AF updates; nG (bit 11), so every TLB entry is tagged with the domain's ASID
 *   and an invalidation by ASID removes it; UXN (54) and PXN (53), because DMA never
 *   fetches instructions.
 * - Permissions in AP[2:1] (bits 7:6): 0b01 read/write, 0b11 read-only. AP[1] is set in
 *   both because the SMMU takes a transaction without a privilege attribute (PCIe DMA) as
 *   unprivileged, EL0 in the architecture's terms, which AP[1] = 0 would refuse. A valid
 *   leaf is always readable, so a write-only mapping cannot be written: refused.
 * - Output address in bits 47:12 (48-bit OA): bits 51:48 are never set, and a map of a
 *   physical address at or above 2^48 is refused.
 *
 * What QEMU 7.2's walker (hw/arm/smmu-common.c, smmu_ptw_64) checks is less than the
 * architecture: a descriptor's valid bit and type (0b01 at the last level is a translation
 * fault), a table's APTable on writes unless HAD, and a leaf's AP[2] on writes; it takes
 * every access as privileged, so AP[1] makes no difference there, and it raises no Access
 * flag fault (AF = 0 translates: later QEMU versions fault unless CD.AFFD), takes the
 * address from bits 47:12 with no Address size fault, and does not interpret SH, AttrIndx,
 * nG or XN (its IOTLB is keyed by ASID whatever nG says). The bits above are what a real
 * SMMU needs, and QEMU accepts them. */
#include "iommu/pt_format.h"

#include "iommu/slpt.h"

#define ARM_VALID 0x1ull
#define ARM_TABLE_OR_PAGE 0x2ull /* bit 1: table above the last level, page at it */
#define ARM_TYPE_MASK 0x3ull
#define ARM_BLOCK (ARM_VALID)
#define ARM_PAGE (ARM_VALID | ARM_TABLE_OR_PAGE)
#define ARM_TABLE (ARM_VALID | ARM_TABLE_OR_PAGE)
#define ARM_ATTR_INDX(n) ((uint64_t)(n) << 2)
#define ARM_AP_RW_ANY 0x40ull  /* AP[2:1] = 0b01: read/write, at EL0 too */
#define ARM_AP_RO_ANY 0xc0ull  /* AP[2:1] = 0b11: read-only, at EL0 too */
#define ARM_SH_INNER 0x300ull  /* SH[1:0] = 0b11 */
#define ARM_AF (1ull << 10)
#define ARM_NG (1ull << 11)
#define ARM_PXN (1ull << 53)
#define ARM_UXN (1ull << 54)
#define ARM_OA_48 0x0000fffffffff000ull

/* What every leaf carries besides its type, permissions and address. */
#define ARM_LEAF_ATTRS (ARM_ATTR_INDX(0) | ARM_SH_INNER | ARM_AF | ARM_NG | ARM_PXN | ARM_UXN)

const struct pt_format pt_arm_stage1 = {
    .name = "Arm VMSAv8-64 stage 1",
    .perm = {[SLPT_READ] = ARM_AP_RO_ANY, [SLPT_READ | SLPT_WRITE] = ARM_AP_RW_ANY},
    .perms = 1u << SLPT_READ | 1u << (SLPT_READ | SLPT_WRITE),
    .page = ARM_PAGE | ARM_LEAF_ATTRS,
    .block = ARM_BLOCK | ARM_LEAF_ATTRS,
    .leaf_mask = ARM_TYPE_MASK,
    .leaf_value = ARM_BLOCK,
    .table = ARM_TABLE,
    .address = ARM_OA_48,
};

/* Stage 2 (Arm ARM D8.3, the stage-2 descriptor attributes), for the tables an EL2
 * hypervisor translates its guest's intermediate physical addresses with (VTTBR_EL2). The
 * same descriptor types and address field as stage 1 (so the engine's Arm layout), but:
 * - MemAttr (bits 5:2) 0b1111, Normal write-back, and no MAIR: with HCR_EL2.FWB = 0 the
 *   stage-1 attributes and these combine and the stronger wins, so the guest's own Device
 *   mappings of MMIO stay Device;
 * - S2AP (bits 7:6) is a plain read bit (6) and write bit (7): 0b01 read-only, 0b10
 *   write-only, 0b11 read/write. Every permission set can be expressed;
 * - SH inner shareable and AF as in stage 1; no nG (stage 2 has no ASIDs: its TLB entries
 *   are tagged with the VMID), and XN (bits 54:53) 0: the guest executes from its RAM.
 * The output address is 48 bits, as in stage 1. */
#define ARM_S2_MEMATTR_NORMAL_WB (0xfull << 2)
#define ARM_S2AP_R 0x40ull
#define ARM_S2AP_W 0x80ull
#define ARM_S2_LEAF_ATTRS (ARM_S2_MEMATTR_NORMAL_WB | ARM_SH_INNER | ARM_AF)

const struct pt_format pt_arm_stage2 = {
    .name = "Arm VMSAv8-64 stage 2",
    .perm = {[SLPT_READ] = ARM_S2AP_R, [SLPT_WRITE] = ARM_S2AP_W, [SLPT_READ | SLPT_WRITE] = ARM_S2AP_R | ARM_S2AP_W},
    .perms = 1u << SLPT_READ | 1u << SLPT_WRITE | 1u << (SLPT_READ | SLPT_WRITE),
    .page = ARM_PAGE | ARM_S2_LEAF_ATTRS,
    .block = ARM_BLOCK | ARM_S2_LEAF_ATTRS,
    .leaf_mask = ARM_TYPE_MASK,
    .leaf_value = ARM_BLOCK,
    .table = ARM_TABLE,
    .address = ARM_OA_48,
};
