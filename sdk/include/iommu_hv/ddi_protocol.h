/* iommu-hv guest SDK: the UEFI protocol through which guest code (your payload) gets the wdm
 * DMA IOMMU interface. DDISHIM.EFI installs it before the firmware becomes the hypervisor's
 * guest; LocateProtocol it by IOMMU_HV_DDI_PROTOCOL_GUID. Every routine in the tables it
 * hands out is one hypercall. Fault reports and state changes reach your handlers from the
 * shim's 10 ms timer at TPL_CALLBACK, or at once when you call poll().
 *
 * Calling convention: every function pointer here is Microsoft x64 (ms_abi), fixed by this
 * header (IOMMU_HV_API, and NTAPI from the wdm header), so it is right whether or not you
 * compile with -DGNU_EFI_USE_MS_ABI. Call them directly, not through uefi_call_wrapper.
 *
 * Freestanding: needs only <stdint.h>; include it after <efi.h> (gnu-efi) if you use both.
 * See docs/guest-sdk.md. */
#ifndef IOMMU_HV_DDI_PROTOCOL_H
#define IOMMU_HV_DDI_PROTOCOL_H

#include <stdint.h>

#include "iommu_hv/wdm_iommu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define IOMMU_HV_API __attribute__((ms_abi))
#else
#define IOMMU_HV_API
#endif

/* An EFI_GUID initializer: EFI_GUID guid = IOMMU_HV_DDI_PROTOCOL_GUID; */
#define IOMMU_HV_DDI_PROTOCOL_GUID                                                                                   \
    {                                                                                                                \
        0x6f1c2a44, 0x0d5b, 0x4c9e, { 0x9a, 0x3e, 0x51, 0x7b, 0x2c, 0x88, 0x14, 0xd3 }                              \
    }
#define IOMMU_HV_DDI_PROTOCOL_REVISION 1

struct iommu_hv_ddi_protocol {
    uint32_t revision;    /* IOMMU_HV_DDI_PROTOCOL_REVISION */
    uint32_t abi_version; /* the hypercall ABI the shim speaks (iommu_hv/hypercall.h) */
    /* IoGetIommuInterface: version 1 fills the V1 table (DMA_IOMMU_INTERFACE). */
    NTSTATUS(NTAPI *get_interface)(ULONG version, PDMA_IOMMU_INTERFACE out);
    /* IoGetIommuInterfaceEx: version 1, 2 or 3 (DMA_IOMMU_INTERFACE_EX); flags 0. */
    NTSTATUS(NTAPI *get_interface_ex)(ULONG version, ULONGLONG flags, PDMA_IOMMU_INTERFACE_EX out);
    uint64_t(IOMMU_HV_API *poll)(void);       /* deliver waiting reports now; returns handler calls */
    uint64_t(IOMMU_HV_API *hypercalls)(void); /* hypercalls made through this shim so far */
};

#endif
