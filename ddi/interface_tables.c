/* See ddi/include/ddi/interface_tables.h. */
#include "ddi/interface_tables.h"

void ddi_write_interface(PDMA_IOMMU_INTERFACE out, const DMA_IOMMU_INTERFACE_V1 *v)
{
    *out = (DMA_IOMMU_INTERFACE){0}; /* padding after Version included */
    out->Version = DMA_IOMMU_INTERFACE_VERSION_1;
    out->CreateDomain = v->CreateDomain;
    out->DeleteDomain = v->DeleteDomain;
    out->AttachDevice = v->AttachDevice;
    out->DetachDevice = v->DetachDevice;
    out->FlushDomain = v->FlushDomain;
    out->FlushDomainByVaList = v->FlushDomainByVaList;
    out->QueryInputMappings = v->QueryInputMappings;
    out->MapLogicalRange = v->MapLogicalRange;
    out->UnmapLogicalRange = v->UnmapLogicalRange;
    out->MapIdentityRange = v->MapIdentityRange;
    out->UnmapIdentityRange = v->UnmapIdentityRange;
    out->SetDeviceFaultReporting = v->SetDeviceFaultReporting;
    out->ConfigureDomain = v->ConfigureDomain;
}

void ddi_write_interface_ex(PDMA_IOMMU_INTERFACE_EX out, ULONG version, const DMA_IOMMU_INTERFACE_V1 *v1,
                            const DMA_IOMMU_INTERFACE_V2 *v2)
{
    /* A caller built against an older header has a smaller structure: Size, Version, the
     * padding after it, then the one table. */
    out->Size = version == DMA_IOMMU_INTERFACE_EX_VERSION_1 ? DMA_IOMMU_INTERFACE_EX_V1_SIZE
                                                             : DMA_IOMMU_INTERFACE_EX_V2_SIZE;
    out->Version = version;
    *(ULONG *)((UCHAR *)out + offsetof(DMA_IOMMU_INTERFACE_EX, Version) + sizeof(ULONG)) = 0;
    if (version == DMA_IOMMU_INTERFACE_EX_VERSION_1)
        out->V1 = *v1;
    else
        out->V2 = *v2;
}
