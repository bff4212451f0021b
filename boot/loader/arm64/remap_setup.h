/* DMA remapping on Arm as the loader sets it up: the reserved region (the SMMUs' static
 * structures, then the page pool for every table), the SMMUv3 units the IORT lists, and the
 * protecting default domain every PCI function starts in: stage-1 tables (pt_arm_stage1)
 * identity-mapping RAM minus the reserved region. */
#ifndef BOOT_LOADER_ARM64_REMAP_SETUP_H
#define BOOT_LOADER_ARM64_REMAP_SETUP_H

#include "common/report.h"
#include "iommu/iort.h"
#include "iommu/page_pool.h"
#include "iommu/pci.h"
#include "iommu/slpt.h"
#include "iommu/smmuv3.h"
#include "loader/arm64/uefi_arm64.h"

#define ARM_REMAP_MAX_UNITS 4
#define ARM_REGION_BYTES (16u << 20)
#define ARM_DEFAULT_DOMAIN_ID 1

struct arm_remapping {
    uint64_t region_pa, region_bytes;
    struct page_pool pool;
    struct smmuv3_unit unit[ARM_REMAP_MAX_UNITS];
    struct iommu_unit *unit_ptr[ARM_REMAP_MAX_UNITS];
    unsigned units;
    unsigned levels;
    struct slpt default_domain;
    uint64_t identity_bytes;
};

bool arm_remap_setup(struct uefi_arm64 *up, const struct iort_table *iort, const struct pci_inventory *inv,
                     struct arm_remapping *r, struct checks *c);
/* "fault: smmu[N] stream 0xSID read|write 0xADDR event 0xT (NAME)" */
void arm_remap_print_fault(const struct iommu_unit *u, const struct iommu_fault_record *f);
/* The units' command and event counts. */
void arm_remap_report(const struct arm_remapping *r);
void arm_edu_demo(struct uefi_arm64 *up, struct arm_remapping *r, const struct pci_inventory *inv, struct checks *c);

#endif
