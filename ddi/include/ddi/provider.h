/* The provider of the wdm DMA IOMMU interface (ddi/provider/) over the IOMMU core.
 *
 * The routines drivers call are reached only through IoGetIommuInterface(Ex), as in Windows.
 * This header is for whoever sets the provider up: the hypervisor, and host tests through
 * the simulated platform (tests/ddi/sim.h). There is one provider per system; its state
 * is static, so it needs no allocation beyond the page pool it is given.
 *
 * Policy lives here and nowhere else: which domain types a device may use (PassThrough is
 * withdrawn while DMA-Guard blocking is on; a device behind no remapping unit gets none), and
 * what a domain may map. That is deny by default: a page may be mapped into a domain (logical
 * and identity maps of V1 and V2, whatever the descriptor, token segments, and reserved
 * regions created with ShouldMap) only when it lies wholly inside one of the platform's
 * guest-RAM ranges (guest_ram below) and outside the project's reserved memory
 * (protected_base/size). Everything else, the IOMMU's registers, the local APIC and MSI
 * window, IOAPIC, PCI ECAM, PCI BARs (no peer-to-peer), the hypervisor's memory, anything
 * past the end of RAM, is refused with STATUS_ACCESS_DENIED before anything changes. With
 * no guest-RAM ranges nothing can be mapped. A device's DMA could otherwise reach the
 * IOMMU's own registers, or another device's, and undo the isolation this project gives. */
#ifndef DDI_PROVIDER_H
#define DDI_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/wdm_iommu.h"
#include "iommu/pci.h"
#include "iommu/ranges.h"
#include "iommu/status.h"
#include "iommu/unit.h"

#define DDI_MAX_DOMAINS 32
#define DDI_MAX_DEVICES 128
#define DDI_MAX_TOKENS 128         /* live at once */
#define DDI_MAX_TOKEN_SEGMENTS 64  /* mapped at once in one token */
/* Bounds on what one call may describe (beyond them the call fails with the code its
 * parameter position gives): 4 GiB of pages per map, 1024 addresses per VA-list flush. */
#define DDI_MAX_MAP_PAGES (1ull << 20)
#define DDI_MAX_FLUSH_VAS 1024u
#define DDI_MAX_RESERVED_REGIONS 64    /* per CreateDomainEx */
#define DDI_MAX_GUEST_RAM_RANGES 64    /* as many as the hypercall server takes (HC_MAX_RAM_RANGES) */

/* The architecture the routines follow where the interface differs (FAULT_INFORMATION's arm,
 * QueryInputMappings, which is ARM64-only). */
enum ddi_arch { DDI_ARCH_X64, DDI_ARCH_ARM64 };

struct ddi_platform {
    struct page_pool *pool;             /* tables and allocator bookkeeping come from here */
    enum ddi_arch arch;                 /* X64 unless set */
    struct iommu_unit *units[16];       /* index = the unit numbers of pci's functions */
    unsigned unit_count;
    const struct pci_inventory *pci;    /* which unit translates each PCI function */
    uint64_t protected_base;            /* memory no domain may map (the project's own) */
    uint64_t protected_size;
    /* Where a device goes when it leaves a domain: the platform's default domain. With
     * has_default_context false it gets no context entry at all (its DMA is blocked). */
    bool has_default_context;
    struct iommu_translation default_context;
    uint16_t first_domain_id;           /* domain ids below this belong to the platform */
    /* Told of every fault ddi_dispatch_faults takes, reported to a handler or not (the
     * hypervisor logs them); may be NULL. */
    void (*fault_seen)(void *ctx, const struct iommu_unit *unit, const struct iommu_fault_record *fault);
    void *fault_ctx;
    /* Guest RAM: the only memory a domain may map (see the top of this file). Physical
     * [base, end) ranges, in any order, overlapping or touching as they come; a partial page
     * at either end of a range is not RAM (the provider rounds each range inwards to whole
     * pages). Only memory the guest owns belongs here: the memory map's RAM without the
     * hypervisor's region and image; never MMIO, BARs or ECAM, whatever the firmware calls
     * them. guest_ram_count is at most DDI_MAX_GUEST_RAM_RANGES (ddi_provider_init refuses
     * more with IOMMU_EINVAL); 0 means nothing can be mapped. The provider keeps its own
     * copy. */
    struct addr_range guest_ram[DDI_MAX_GUEST_RAM_RANGES];
    unsigned guest_ram_count;
};

/* Sets the provider up over the platform (units enabled already). IOMMU_EINVAL for a platform
 * without pool or units, or with more than DDI_MAX_GUEST_RAM_RANGES guest-RAM ranges. */
enum iommu_status ddi_provider_init(const struct ddi_platform *platform);
/* Forgets every object; the tables they used go back to the pool. */
void ddi_provider_reset(void);

/* DMA-Guard blocking: while on, no device may use PassThrough. A change calls every
 * state-change callback registered for AvailableDomainTypes. */
void ddi_set_dma_guard(bool blocking);

/* Fault injection: the next n invalidation waits of every unit time out. False when no
 * unit invalidates through its queue (nothing can be injected then). */
bool ddi_inject_invalidation_timeouts(unsigned n);

/* Drains every unit's fault records and calls the fault handler set with
 * SetDeviceFaultReporting for each fault of a device that has reporting on. Returns how many
 * faults reached a handler. */
unsigned ddi_dispatch_faults(void);

/* Tokens as opaque values, for a caller that must not hand out pointers into the provider
 * (the hypercall server): an id names one token for its life, and once the token is freed
 * it names nothing, even after its slot is used again (within 65,535 reuses). 0 and NULL
 * mean "not a live token". */
uint64_t ddi_token_id(PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN token);
PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN ddi_token_by_id(uint64_t id);

/* What exists, for leak checks. */
struct ddi_counts {
    unsigned domains, devices, tokens, callbacks, mapped_segments;
    unsigned table_pages; /* page-table pages the live domains hold, roots included */
    unsigned faults_recorded, fault_overflows; /* over every unit: records taken, FSTS.PFO seen */
};
struct ddi_counts ddi_provider_counts(void);

#endif
