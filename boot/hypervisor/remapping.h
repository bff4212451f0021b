/* DMA remapping as the hypervisor owns it after the loader set it up (loader/remap_setup.c):
 * the reserved region's page pool, the units, and the default domain every device starts in. */
#ifndef BOOT_HYPERVISOR_REMAPPING_H
#define BOOT_HYPERVISOR_REMAPPING_H

#include <stdint.h>

#include "iommu/page_pool.h"
#include "iommu/slpt.h"
#include "iommu/vtd.h"

#define REMAP_MAX_UNITS 16
#define DEFAULT_DOMAIN_ID 1

struct remapping {
    struct page_pool pool;  /* the whole reserved region */
    uint64_t region_pa;
    uint64_t region_bytes;
    struct vtd_unit unit[REMAP_MAX_UNITS];
    struct iommu_unit *unit_ptr[REMAP_MAX_UNITS]; /* each unit[i] through the unit interface */
    unsigned units;
    unsigned levels;        /* second-level depth every unit supports */
    uint8_t superpages;     /* superpage sizes every unit supports */
    struct slpt default_domain;
    uint64_t identity_bytes;
};

/* One fault as the loader and the hypervisor print it:
 * "fault: vtd[N] sid BB:DD.F read|write 0xADDR reason R (name)" (the unit's name and
 * reason names). */
void remap_print_fault(const struct iommu_unit *u, const struct iommu_fault_record *f);

/* Drains every unit's fault records into its log. */
void remap_drain_faults(struct remapping *r);

#endif
