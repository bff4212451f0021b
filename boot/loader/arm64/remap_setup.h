/* DMA remapping on Arm as the loader sets it up: the reserved region (the SMMUs' static
 * structures, then the page pool for every table), the SMMUv3 units the IORT lists, and the
 * protecting default domain every PCI function starts in: stage-1 tables (pt_arm_stage1)
 * identity-mapping RAM minus the reserved region. */
#ifndef BOOT_LOADER_ARM64_REMAP_SETUP_H
#define BOOT_LOADER_ARM64_REMAP_SETUP_H

#include "common/report.h"
#include "hypervisor/remapping.h"
#include "iommu/iort.h"
#include "iommu/page_pool.h"
#include "iommu/pci.h"
#include "iommu/slpt.h"
#include "iommu/smmuv3.h"
#include "loader/arm64/uefi_arm64.h"

/* The region starts with room for this many SMMUs' static blocks; then the loader image's
 * copy, then the configuration's region_mib for the page pool (main.c). */
#define ARM_REGION_MAX_SMMUS 4

/* bytes of reserved memory from the firmware, 2 MiB aligned (so the default domain's
 * identity map around it keeps its blocks); 0 when there is none. */
uint64_t arm_region_reserve(struct uefi_arm64 *up, uint64_t bytes);
/* Over r->region_pa/region_bytes (reserved by main.c: the SMMUs' static blocks at its
 * start, the pool from pool_pa to its end); input_bits 39 or 48, the stage-1 input width
 * (the configuration's smmu_input_bits). */
bool arm_remap_setup(struct uefi_arm64 *up, const struct iort_table *iort, const struct pci_inventory *inv,
                     uint64_t pool_pa, unsigned input_bits, struct remapping *r, struct checks *c);
/* The units' command and event counts. */
void arm_remap_report(const struct remapping *r);
void arm_edu_demo(struct uefi_arm64 *up, struct remapping *r, const struct pci_inventory *inv, struct checks *c);

#endif
