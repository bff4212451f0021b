/* A software model of one Intel VT-d DMA-remapping unit (legacy mode, second-level
 * translation), written from the VT-d specification as the oracle the project's VT-d driver
 * is tested against. Where the specification leaves a choice it follows QEMU 7.2's
 * intel-iommu as measured (/work/shared/spec/qemu-probe-findings.md); the QEMU quirks that
 * contradict the specification are behind flags in struct vtd_model_config.
 * What is and is not modelled, and every choice made: docs/vtd-model.md. */
#ifndef VTD_MODEL_H
#define VTD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The platform side of the unit: the physical memory it walks and writes, and where its
 * interrupt messages go. */
struct vtd_model_memory {
    void *ctx;
    bool (*read)(void *ctx, uint64_t pa, void *buf, size_t len); /* false: no memory there */
    bool (*write)(void *ctx, uint64_t pa, const void *buf, size_t len);
    /* An interrupt message (fault event or invalidation completion event): the 32-bit data
     * written to the address, as the unit sends it to the APIC. May be NULL; the messages
     * are counted in the stats either way. */
    void (*msi)(void *ctx, uint64_t addr, uint32_t data);
};

struct vtd_model_config {
    uint32_t ver;  /* e.g. 0x10 */
    uint64_t cap;  /* e.g. QEMU default 0x00D2008C22260206; aw-bits=48: 0x00D2008C222F0606 */
    uint64_t ecap; /* e.g. 0xF00F4A (QI=1) or 0xF00F48 (no QI) */
    /* QEMU: a new fault from a SID that already has a pending (F=1) record is dropped
     * silently. Off: it takes the next record or sets PFO, as any other fault. */
    bool compress_same_sid;
    /* QEMU: with QIES=1 a CCMD/IOTLB register invalidation is ignored and ICC/IVT stay set
     * until the next register invalidation made with QIES=0. Off: it is carried out. Either
     * way it counts as misuse (the specification forbids it). */
    bool register_inv_ignored_with_qi;
    /* QEMU: a request the cached (IOTLB) permissions do not allow is dropped without a
     * fault record. Off: it is reported as a write (5) or read (6) fault, from the cached
     * permissions, without walking the tables again. */
    bool silent_iotlb_permission_fault;
    /* QEMU: a domain-selective context-cache invalidation flushes everything (CAIG reports
     * global) and a device-selective one ignores the DID. Off: domain-selective flushes
     * the entries tagged with that DID, device-selective those with that SID (under FM)
     * and that DID. */
    bool coarse_context_invalidation;
};

/* QEMU 7.2 intel-iommu as measured, with every QEMU flag above set: VER 0x10, ECAP
 * 0xF00F4A, CAP 0x00D2008C22260206 for aw_bits 39 and 0x00D2008C222F0606 for 48. */
struct vtd_model_config vtd_model_config_qemu(unsigned aw_bits);

struct vtd_model;

/* NULL when the configuration describes a unit the model cannot hold (CAP.FRO, CAP.NFR or
 * ECAP.IRO placing registers beyond 0xFFF, over the fixed ones or over each other; no
 * SAGAW bit) or the memory lacks read or write. Both arguments are copied. */
struct vtd_model *vtd_model_create(const struct vtd_model_config *cfg, const struct vtd_model_memory *mem);
void vtd_model_destroy(struct vtd_model *m);

/* MMIO at register offset off (0 .. 0xFFF), with the access widths of the hardware.
 * 32-bit registers take 32-bit accesses; 64-bit registers take 64-bit accesses or 32-bit
 * accesses to either half (for CCMD and IOTLB a write of the low half only stores it; the
 * command is issued by the write of the high half or of the whole register). A 64-bit read
 * of two 32-bit registers returns both; a 64-bit write to a 32-bit register and any
 * misaligned or out-of-range access are misuse and are ignored (reads give 0). */
uint32_t vtd_model_read32(struct vtd_model *m, uint32_t off);
uint64_t vtd_model_read64(struct vtd_model *m, uint32_t off);
void vtd_model_write32(struct vtd_model *m, uint32_t off, uint32_t v);
void vtd_model_write64(struct vtd_model *m, uint32_t off, uint64_t v);

struct vtd_model_result {
    bool ok;
    uint64_t pa;             /* when ok */
    uint8_t reason;          /* VT-d fault reason when !ok (0: not a translation fault, see the doc) */
    bool recorded;           /* the fault went into an FRCD (false: compressed, overflowed, FPD, or TE off) */
    bool from_cache;         /* the translation (or the permission fault) came from the IOTLB */
    bool context_from_cache; /* the context entry came from the context cache (no IOTLB hit) */
};

/* One device DMA request of one address: source id (bus<<8 | dev<<3 | fn), IOVA, direction.
 * Translated as the hardware would, caches included; a fault is recorded in the fault
 * recording registers as the hardware would. */
struct vtd_model_result vtd_model_dma(struct vtd_model *m, uint16_t sid, uint64_t iova, bool write);

/* Failure injection: while stalled, CCMD.ICC and IOTLB.IVT stay 1 after a command is issued
 * and queued descriptors are not processed (IQH does not advance, no wait status written).
 * Ending the stall completes the pending register commands and processes the queue. */
void vtd_model_stall_invalidations(struct vtd_model *m, bool stall);

struct vtd_model_stats {
    unsigned cc_global, cc_domain, cc_device;        /* context-cache invalidations done, by the granularity carried out (register or QI) */
    unsigned iotlb_global, iotlb_domain, iotlb_page; /* IOTLB invalidations done, likewise */
    unsigned waits;                                  /* QI wait descriptors processed */
    unsigned faults_recorded, faults_compressed, faults_overflowed;
    unsigned faults_suppressed;      /* qualified faults not recorded because the context entry had FPD=1 */
    unsigned iotlb_permission_drops; /* requests dropped silently on an IOTLB hit (silent_iotlb_permission_fault) */
    unsigned fault_msis, inv_msis;   /* interrupt messages sent: fault events, invalidation completion events */
    unsigned misuse;                 /* accesses real hardware or QEMU would abort or hang on, or the specification forbids */
    char last_misuse[160];           /* description of the last one */
};
struct vtd_model_stats vtd_model_stats(const struct vtd_model *m);

#endif
