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
#include "vtd_cap.h"

/* Register offsets (VT-d specification 11.4). */
#define VTD_REG_GCMD 0x18u
#define VTD_REG_GSTS 0x1cu
#define VTD_REG_RTADDR 0x20u
#define VTD_REG_CCMD 0x28u
#define VTD_REG_FSTS 0x34u
#define VTD_REG_FECTL 0x38u
#define VTD_REG_IQH 0x80u
#define VTD_REG_IQT 0x88u
#define VTD_REG_IQA 0x90u
#define VTD_REG_ICS 0x9cu
#define VTD_REG_IRTA 0xb8u

#define VTD_GCMD_TE (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_GCMD_WBF (1u << 27)
#define VTD_GCMD_QIE (1u << 26)
#define VTD_GCMD_IRE (1u << 25)
#define VTD_GCMD_SIRTP (1u << 24)
#define VTD_GSTS_TES (1u << 31)
#define VTD_GSTS_RTPS (1u << 30)
#define VTD_GSTS_WBFS (1u << 27)
#define VTD_GSTS_QIES (1u << 26)
#define VTD_GSTS_IRES (1u << 25)
#define VTD_GSTS_IRTPS (1u << 24)
#define VTD_GSTS_CFIS (1u << 23)
/* GSTS bits that stand for enables; GCMD writes carry them so nothing is switched off by
 * accident (the one-shot SRTP, SFL, WBF and SIRTP bits are left out). */
#define VTD_GSTS_PERSISTENT 0x96ffffffu

#define VTD_FSTS_PFO (1u << 0)
#define VTD_FSTS_PPF (1u << 1)
#define VTD_FSTS_IQE (1u << 4)

#define VTD_FAULT_LOG_SIZE 64
#define VTD_DEFAULT_POLL_TIMEOUT_NS 1000000000ull /* 1 s: QEMU completes at once, hardware in microseconds */

struct vtd_fault {
    uint16_t sid;
    uint8_t reason;     /* the VT-d fault reason, for the log */
    enum iommu_fault_kind kind; /* what it means (vtd_fault_kind) */
    bool write;
    uint64_t address;   /* the faulting page (the unit records page granularity) */
};

struct vtd_fault_log {
    struct vtd_fault entry[VTD_FAULT_LOG_SIZE];
    uint32_t first;     /* oldest entry */
    uint32_t count;
    uint64_t recorded;  /* fault records drained from the unit */
    uint64_t overflows; /* times the unit reported lost faults (FSTS.PFO) */
    uint64_t dropped;   /* records lost because the log was full */
};

struct vtd_stats {
    uint64_t cc_global, cc_device;
    uint64_t iotlb_global, iotlb_domain, iotlb_page;
    uint64_t waits;        /* queue wait descriptors completed */
    uint64_t timeouts;
    uint64_t queue_errors; /* FSTS.IQE seen */
};

enum vtd_translation {
    VTD_TRANSLATE,   /* through second-level tables */
    VTD_PASSTHROUGH, /* untranslated (needs ECAP.PT) */
};

struct vtd_context {
    enum vtd_translation type;
    uint16_t domain_id;
    uint64_t table_pa;   /* second-level root, for VTD_TRANSLATE */
    unsigned levels;     /* of that table: 3, 4 or 5 */
};

struct vtd_unit {
    struct iommu_lock lock;  /* held around each invalidation and context change */
    const struct platform *plat;
    struct page_pool *pool;
    uint64_t base;
    uint16_t segment;
    unsigned index;
    struct vtd_caps caps;
    uint8_t superpages;  /* SLPT_SUPERPAGE_* the unit supports */
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
    struct vtd_fault_log faults;
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

/* For domains that may span units: the widest depth every unit supports (and that none of
 * their MGAWs falls short of), and the superpage sizes all of them support; 0 if none. */
unsigned vtd_common_levels(struct vtd_unit *const *units, unsigned count);
uint8_t vtd_common_superpages(struct vtd_unit *const *units, unsigned count);
/* The platform whose flush_cache the tables of domains on these units need: the units'
 * (they share one) when any of them does not snoop its table walks (ECAP.C = 0) and the
 * platform can write back; NULL when none is needed. */
const struct platform *vtd_tables_write_back(struct vtd_unit *const *units, unsigned count);
struct slpt;
/* Empty second-level tables for a domain on these units: their common depth and superpage
 * sizes, and the write-back vtd_tables_write_back asks for. IOMMU_ENODEV when the units
 * share no depth. */
enum iommu_status vtd_tables_init(struct slpt *t, struct page_pool *pool, struct vtd_unit *const *units,
                                  unsigned count);

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

/* Whether the unit's registers still say what the driver set up: translation on with its
 * root table, its invalidation queue, its interrupt remapping table and compatibility
 * format blocked. *gsts gets the status register as read. */
bool vtd_unit_intact(const struct vtd_unit *u, uint32_t *gsts);

/* Points the device 'sid' at a domain and invalidates what the unit may have cached for it
 * (context cache for the device, IOTLB of the domain it had). */
enum iommu_status vtd_set_context(struct vtd_unit *u, uint16_t sid, const struct vtd_context *ctx);
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
bool vtd_fault_take(struct vtd_unit *u, struct vtd_fault *f);

const char *vtd_fault_reason_name(uint8_t reason);
/* What a fault reason means, for those outside the driver (iommu/fault.h). */
enum iommu_fault_kind vtd_fault_kind(uint8_t reason);

#endif
