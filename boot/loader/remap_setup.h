/* The loader's half of DMA remapping: reserving the region, bringing up the units under
 * the firmware, the default domain every device starts in (hypervisor/remapping.h holds
 * what the hypervisor keeps of it). */
#ifndef BOOT_LOADER_REMAP_SETUP_H
#define BOOT_LOADER_REMAP_SETUP_H

#include <efi.h>

#include "common/report.h"
#include "hypervisor/remapping.h"
#include "iommu/dmar.h"
#include "iommu/pci.h"
#include "loader/uefi_platform.h"

/* Over the reserved region (everything the hypervisor will own, allocated already; its
 * page pool starts at pool_pa, after the loader's own copy), brings up every DRHD,
 * identity-maps RAM and RMRRs except the region into the default domain, gives every PCI
 * function a context entry in it and turns translation on. Returns false (after reporting
 * why) when remapping is not on. */
bool remap_setup(struct uefi_platform *up, const struct dmar_table *dmar, const struct pci_inventory *inv,
                 uint64_t region_pa, uint64_t region_bytes, uint64_t pool_pa, struct remapping *r,
                 struct checks *c);

/* The reserved region: below 4 GiB (every unit can address it), as EfiReservedMemoryType so
 * that nothing after the firmware takes it. 0 when there is none. */
uint64_t remap_reserve_region(uint64_t bytes);

/* The firmware's own DMA after translation is on: a read from the disk the loader came
 * from must succeed at once (a device without a context entry times out after about 31 s). */
void remap_check_firmware_dma(struct uefi_platform *up, EFI_HANDLE image, struct checks *c);

#endif
