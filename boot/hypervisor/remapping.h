/* DMA remapping as the hypervisor owns it after the loader set it up (loader/remap_setup.c):
 * the reserved region's page pool, the units, and the default domain every device starts in. */
#ifndef BOOT_HYPERVISOR_REMAPPING_H
#define BOOT_HYPERVISOR_REMAPPING_H

#include <stdint.h>

#include "iommu/page_pool.h"
#include "iommu/slpt.h"
/* The platform's units: SMMUv3 on Arm, VT-d on x86 (one kind per image). */
#if defined(__aarch64__)
#include "iommu/smmuv3.h"
typedef struct smmuv3_unit remap_unit;
#else
#include "iommu/vtd.h"
typedef struct vtd_unit remap_unit;
#endif

#define REMAP_MAX_UNITS 16
#define DEFAULT_DOMAIN_ID 1

struct remapping {
    struct page_pool pool;  /* the whole reserved region */
    uint64_t region_pa;
    uint64_t region_bytes;
    remap_unit unit[REMAP_MAX_UNITS];
    struct iommu_unit *unit_ptr[REMAP_MAX_UNITS]; /* each unit[i] through the unit interface */
    unsigned units;
    unsigned levels;        /* second-level depth every unit supports */
    uint8_t superpages;     /* superpage sizes every unit supports */
    struct slpt default_domain;
    uint64_t identity_bytes;
};

/* One fault as the loader and the hypervisor print it (the unit's name and reason names):
 * "fault: vtd[N] sid BB:DD.F read|write 0xADDR reason R (name)" on x86,
 * "fault: smmu[N] stream 0xSID read|write 0xADDR event 0xT (NAME)" on Arm. */
void remap_print_fault(const struct iommu_unit *u, const struct iommu_fault_record *f);

/* Drains every unit's fault records into its log. */
void remap_drain_faults(struct remapping *r);

#endif
