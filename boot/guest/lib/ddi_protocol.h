/* The DDI protocol's header is public now, in the guest SDK: sdk/include/iommu_hv/ddi_protocol.h
 * (docs/guest-sdk.md). This forwards to it so the loader's own payloads keep building. */
#ifndef BOOT_DDI_PROTOCOL_H
#define BOOT_DDI_PROTOCOL_H

#include <efi.h>

#include "iommu_hv/ddi_protocol.h"

#endif
