/* DMA remapping under the firmware: the project's reserved region, its units, and the
 * default domain every device starts in. */
#ifndef BOOT_REMAP_H
#define BOOT_REMAP_H

#include <efi.h>

#include "iommu/dmar.h"
#include "iommu/pci.h"
#include "iommu/slpt.h"
#include "iommu/vtd.h"
#include "report.h"
#include "uefi_platform.h"

#define REMAP_MAX_UNITS 16
#define DEFAULT_DOMAIN_ID 1

struct remapping {
    struct page_pool pool;  /* the whole reserved region */
    uint64_t region_pa;
    uint64_t region_bytes;
    struct vtd_unit unit[REMAP_MAX_UNITS];
    struct vtd_unit *unit_ptr[REMAP_MAX_UNITS];
    unsigned units;
    unsigned levels;        /* second-level depth every unit supports */
    uint8_t superpages;     /* superpage sizes every unit supports */
    struct slpt default_domain;
    uint64_t identity_bytes;
};

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

/* One fault as the loader and the hypervisor print it:
 * "fault: vtd[N] sid BB:DD.F read|write 0xADDR reason R (name)". */
void remap_print_fault(const struct vtd_unit *u, const struct vtd_fault *f);

/* Drains every unit's fault records into its log. */
void remap_drain_faults(struct remapping *r);

#endif
