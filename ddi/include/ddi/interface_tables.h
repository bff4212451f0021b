/* Writing DMA_IOMMU_INTERFACE and DMA_IOMMU_INTERFACE_EX from a set of routines: shared by
 * the provider (its own routines) and the guest shim (its hypercall routines), so both hand
 * drivers the same layout and write no byte beyond the version asked for (rule A2). The
 * checks of the retrieval routines' arguments are the provider's alone. */
#ifndef DDI_INTERFACE_TABLES_H
#define DDI_INTERFACE_TABLES_H

#include "ddi/wdm_iommu.h"

/* The legacy table (IoGetIommuInterface version 1). */
void ddi_write_interface(PDMA_IOMMU_INTERFACE out, const DMA_IOMMU_INTERFACE_V1 *v1);

/* The Ex table for version 1 or 2: Size, Version and that version's routines only. */
void ddi_write_interface_ex(PDMA_IOMMU_INTERFACE_EX out, ULONG version, const DMA_IOMMU_INTERFACE_V1 *v1,
                            const DMA_IOMMU_INTERFACE_V2 *v2);

#endif
