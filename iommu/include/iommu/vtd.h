/* Driver for one VT-d DMA-remapping unit, legacy (non-scalable) mode.
 *
 * It owns the unit's root and context tables and its invalidation queue, all taken from
 * the project's page pool. Invalidation goes through the queue when ECAP.QI is set and
 * through the registers otherwise, never both (QEMU ignores register invalidations while
 * the queue is on and leaves their busy bits set forever). Every poll is bounded by
 * poll_timeout_ns and a timeout is returned as IOMMU_ETIMEDOUT.
 *
 * Faults are drained from the fault recording registers into a per-unit log that callers
 * read with vtd_fault_take. The unit's fault interrupt stays masked: faults are drained by
 * polling (vtd_drain_faults), from wherever the caller finds convenient. */
#ifndef IOMMU_VTD_H
#define IOMMU_VTD_H

#include <stdbool.h>
#include <stdint.h>

#include "fault.h"
#include "lock.h"
#include "page_pool.h"
#include "platform.h"
#include "status.h"
#include "unit.h"
#include "vtd_cap.h"

#define VTD_DEFAULT_POLL_TIMEOUT_NS 1000000000ull /* 1 s: QEMU completes at once, hardware in microseconds */


struct vtd_stats {
    uint64_t cc_global, cc_device;
    uint64_t iotlb_global, iotlb_domain, iotlb_page;
    uint64_t waits;        /* queue wait descriptors completed */
    uint64_t timeouts;
    uint64_t queue_errors; /* FSTS.IQE seen */
};

struct vtd_unit {
    struct iommu_unit unit;  /* first: the interface the domain core and the DDI use; it holds
                              * the register base and the segment */
    struct iommu_lock lock;  /* held around each invalidation and context change */
    const struct platform *plat;
    struct page_pool *pool;
    struct vtd_caps caps;
    bool queued;         /* invalidation through the queue */
    bool enabled;        /* translation on */
    uint64_t *root;
    uint64_t root_pa;
    uint64_t *queue;     /* 256 descriptors of 16 bytes */
    uint64_t queue_pa;
    uint32_t queue_tail;
    volatile uint32_t *wait_status;
    uint64_t wait_status_pa;
    uint32_t wait_sequence;
    uint64_t poll_timeout_ns;
    /* Fault injection: this many of the next queued waits time out. Their wait descriptor
     * writes its status beside the status dword, so the poll really runs out its bound
     * while the unit still does the invalidation: the path a unit that stops answering
     * takes, and the queue stays in step for the waits after. */
    uint32_t inject_wait_timeouts;
    /* Interrupt remapping: the table (all entries not present until the hypervisor grants
     * one) and whether it is on. */
    uint64_t *irt;
    uint64_t irt_pa;
    bool interrupts_remapped;
    struct vtd_stats stats;
};

/* Reads and checks the unit's capabilities and takes its root table (and queue) from the
 * pool. Nothing is written to the unit. */
enum iommu_status vtd_unit_init(struct vtd_unit *u, const struct platform *plat, struct page_pool *pool,
                                uint64_t base, uint16_t segment, unsigned index);

/* Second-level depth to use for a domain on this unit: the widest the unit supports
 * (SAGAW) that does not exceed its MGAW; 0 if none. */
unsigned vtd_unit_levels(const struct vtd_unit *u);
bool vtd_unit_supports_levels(const struct vtd_unit *u, unsigned levels);

/* Fault injection: the next n queued invalidation waits of the unit time out (see
 * inject_wait_timeouts). False, with nothing changed, when the unit does not invalidate
 * through the queue. */
bool vtd_inject_wait_timeouts(struct vtd_unit *u, uint32_t n);

/* Root table pointer, queued invalidation, global invalidation, then translation on. */
enum iommu_status vtd_unit_enable(struct vtd_unit *u);
/* Translation off (then queued invalidation off). */
enum iommu_status vtd_unit_disable(struct vtd_unit *u);

/* Interrupt remapping on, with a table of VTD_IRT_ENTRIES entries from the pool, none of
 * them present, and compatibility-format interrupts blocked (GSTS.CFIS stays clear): a
 * device's interrupt message then reaches a CPU only through an entry the hypervisor
 * wrote. Needs ECAP.IR and queued invalidation (the entry cache has no register
 * interface); IOMMU_ENODEV without them. */
#define VTD_IRT_ENTRIES 256u
enum iommu_status vtd_enable_interrupt_remapping(struct vtd_unit *u);

/* Whether the unit says translation is on (GSTS.TES); *gsts gets the status register. */
bool vtd_unit_translating(const struct vtd_unit *u, uint32_t *gsts);

/* Whether the unit's registers still say what the driver set up: translation on with its
 * root table, its invalidation queue, its interrupt remapping table and compatibility
 * format blocked. *gsts gets the status register as read. */
bool vtd_unit_intact(const struct vtd_unit *u, uint32_t *gsts);

/* Points the device 'sid' at a domain and invalidates what the unit may have cached for it
 * (context cache for the device, IOTLB of the domain it had). */
enum iommu_status vtd_set_context(struct vtd_unit *u, uint16_t sid, const struct iommu_translation *ctx);
enum iommu_status vtd_clear_context(struct vtd_unit *u, uint16_t sid);
/* The domain id the device's context entry holds, or -1 when it has none. */
int vtd_context_domain(const struct vtd_unit *u, uint16_t sid);

/* IOTLB invalidation after an unmap of [first, last] in a domain: one page-selective
 * invalidation when a naturally aligned block within CAP.MAMV covers the range, a
 * domain-selective one otherwise. */
enum iommu_status vtd_flush_range(struct vtd_unit *u, uint16_t domain_id, uint64_t first, uint64_t last);
enum iommu_status vtd_flush_domain(struct vtd_unit *u, uint16_t domain_id);

/* Moves every pending fault record into the log and acknowledges it; returns how many. */
unsigned vtd_drain_faults(struct vtd_unit *u);
/* Takes the oldest fault from the log. */
bool vtd_fault_take(struct vtd_unit *u, struct iommu_fault_record *f);

const char *vtd_fault_reason_name(uint8_t reason);
/* What a fault reason means, for those outside the driver (iommu/fault.h). */
enum iommu_fault_kind vtd_fault_kind(uint8_t reason);

/* The unit interface over VT-d (iommu/unit.h); vtd_unit_init sets it. */
extern const struct iommu_unit_ops vtd_unit_ops;

#endif
