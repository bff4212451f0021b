/* The UEFI protocol through which guest code gets the wdm DMA IOMMU interface: installed
 * by DDISHIM.EFI (boot/shim_driver.c), which the loader starts before the firmware becomes
 * the hypervisor's guest. Every routine in the tables it hands out is one hypercall
 * (ddi/shim.c). Reports (faults, state changes) reach the handlers from a 10 ms timer at
 * TPL_CALLBACK, or at once through poll(). Microsoft x64 calling convention throughout. */
#ifndef BOOT_DDI_PROTOCOL_H
#define BOOT_DDI_PROTOCOL_H

#include <efi.h>

#include "ddi/wdm_iommu.h"

#define IOMMU_HV_DDI_PROTOCOL_GUID                                                                                   \
    {                                                                                                                \
        0x6f1c2a44, 0x0d5b, 0x4c9e, { 0x9a, 0x3e, 0x51, 0x7b, 0x2c, 0x88, 0x14, 0xd3 }                              \
    }
#define IOMMU_HV_DDI_PROTOCOL_REVISION 1

struct iommu_hv_ddi_protocol {
    UINT32 revision;
    UINT32 abi_version; /* the hypercall ABI the shim speaks */
    NTSTATUS(NTAPI *get_interface)(ULONG version, PDMA_IOMMU_INTERFACE out);
    NTSTATUS(NTAPI *get_interface_ex)(ULONG version, ULONGLONG flags, PDMA_IOMMU_INTERFACE_EX out);
    UINTN(EFIAPI *poll)(void);       /* deliver waiting reports now; returns handler calls */
    UINT64(EFIAPI *hypercalls)(void); /* made through this shim so far */
};

#endif
