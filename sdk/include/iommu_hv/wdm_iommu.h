/* iommu-hv guest SDK: the Windows DMA IOMMU interface (wdm.h's DMA_IOMMU_INTERFACE_EX, V1-V3,
 * DEVICE_OBJECT and IommuPciDeviceObject, the status codes). The declarations live in
 * ddi/include/ddi/wdm_iommu.h, shared with the hypervisor; the SDK's include path has both
 * sdk/include and ddi/include (docs/guest-sdk.md). */
#include "ddi/wdm_iommu.h"
