/* What a remapping unit's fault means, whatever the unit: the record the domain core and
 * the DDI read, so that no one outside a unit's driver decodes its fault reasons. */
#ifndef IOMMU_FAULT_H
#define IOMMU_FAULT_H

enum iommu_fault_kind {
    IOMMU_FAULT_TRANSLATION,  /* no translation, or one that does not allow the access */
    IOMMU_FAULT_ADDRESS_SIZE, /* an address beyond what the domain's tables translate */
    IOMMU_FAULT_TABLE,        /* the unit could not read its own tables (a platform error) */
    IOMMU_FAULT_OTHER,        /* the unit's set-up refused the request (a device not given a domain) */
};

#endif
