/* A software model of one Arm SMMUv3 (non-secure programming interface, stage 1 only),
 * written from the Arm SMMUv3 architecture specification (IHI 0070) as the oracle the
 * project's SMMUv3 driver is tested against. Where the specification leaves a choice the
 * model takes the strictest one a correct driver must cope with; the places where QEMU 7.2's
 * arm-smmuv3 behaves otherwise are behind the qemu_* flags of struct smmuv3_model_config.
 * What is and is not modelled, every choice, and QEMU's quirks with its source lines:
 * docs/smmuv3-model.md. */
#ifndef SMMUV3_MODEL_H
#define SMMUV3_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Register offsets (page 0, and page 1 at 0x10000). */
enum {
    SMMUV3_IDR0 = 0x00,
    SMMUV3_IDR1 = 0x04,
    SMMUV3_IDR2 = 0x08,
    SMMUV3_IDR3 = 0x0C,
    SMMUV3_IDR4 = 0x10,
    SMMUV3_IDR5 = 0x14,
    SMMUV3_IIDR = 0x18,
    SMMUV3_AIDR = 0x1C,
    SMMUV3_CR0 = 0x20,
    SMMUV3_CR0ACK = 0x24,
    SMMUV3_CR1 = 0x28,
    SMMUV3_CR2 = 0x2C,
    SMMUV3_STATUSR = 0x40,
    SMMUV3_GBPA = 0x44,
    SMMUV3_IRQ_CTRL = 0x50,
    SMMUV3_IRQ_CTRLACK = 0x54,
    SMMUV3_GERROR = 0x60,
    SMMUV3_GERRORN = 0x64,
    SMMUV3_GERROR_IRQ_CFG0 = 0x68, /* 64-bit */
    SMMUV3_GERROR_IRQ_CFG1 = 0x70,
    SMMUV3_GERROR_IRQ_CFG2 = 0x74,
    SMMUV3_STRTAB_BASE = 0x80, /* 64-bit */
    SMMUV3_STRTAB_BASE_CFG = 0x88,
    SMMUV3_CMDQ_BASE = 0x90, /* 64-bit */
    SMMUV3_CMDQ_PROD = 0x98,
    SMMUV3_CMDQ_CONS = 0x9C,
    SMMUV3_EVENTQ_BASE = 0xA0, /* 64-bit */
    SMMUV3_EVENTQ_IRQ_CFG0 = 0xB0, /* 64-bit */
    SMMUV3_EVENTQ_IRQ_CFG1 = 0xB8,
    SMMUV3_EVENTQ_IRQ_CFG2 = 0xBC,
    SMMUV3_EVENTQ_PROD = 0x100A8, /* page 1 */
    SMMUV3_EVENTQ_CONS = 0x100AC, /* page 1 */
    SMMUV3_MMIO_SIZE = 0x20000,
};

/* Event record types (event record bits 7:0). */
enum {
    SMMUV3_EVT_C_BAD_STREAMID = 0x02,
    SMMUV3_EVT_F_STE_FETCH = 0x03,
    SMMUV3_EVT_C_BAD_STE = 0x04,
    SMMUV3_EVT_F_CD_FETCH = 0x09,
    SMMUV3_EVT_C_BAD_CD = 0x0A,
    SMMUV3_EVT_F_WALK_EABT = 0x0B,
    SMMUV3_EVT_F_TRANSLATION = 0x10,
    SMMUV3_EVT_F_ADDR_SIZE = 0x11,
    SMMUV3_EVT_F_ACCESS = 0x12,
    SMMUV3_EVT_F_PERMISSION = 0x13,
};

/* The platform side of the unit: the physical memory it reads its tables and queues from
 * and writes events to, and where its MSIs go. */
struct smmuv3_model_memory {
    void *ctx;
    bool (*read)(void *ctx, uint64_t pa, void *buf, size_t len); /* false: no memory there (an abort) */
    bool (*write)(void *ctx, uint64_t pa, const void *buf, size_t len);
    /* An MSI (32-bit data to an address) is a memory write: it goes through 'write', so a
     * driver polling a CMD_SYNC completion word sees it. When 'write' refuses the address
     * (an interrupt controller's doorbell, not memory) it goes here instead; when this is
     * NULL too, the MSI aborts (GERROR.MSI_*_ABT_ERR). Only with IDR0.MSI = 1. */
    void (*msi)(void *ctx, uint64_t addr, uint32_t data);
};

struct smmuv3_model_config {
    uint32_t idr[6]; /* IDR0..IDR5 as read; they also decide what the model accepts */
    uint32_t iidr, aidr;
    uint32_t gbpa_reset; /* GBPA after reset: ABORT (bit 20) set is a default-deny unit */
    /* Register reads of CR0ACK, IRQ_CTRLACK or GBPA before an update of CR0, IRQ_CTRL or
     * GBPA completes (the old value stays in effect until then); 0: at once. */
    unsigned ack_delay;

    /* QEMU 7.2 where it differs from the specification (false: the specification). */
    /* No GBPA register (RAZ/WI): SMMUEN = 0 always bypasses. */
    bool qemu_gbpa;
    /* Page 1 aliases page 0: EVENTQ_PROD/CONS also at 0xA8/0xAC, page-0 registers at
     * 0x1xxxx (still misuse). */
    bool qemu_page_alias;
    /* CFGI/TLBI take effect when consumed (no CMD_SYNC needed); the configuration cache
     * holds only fully valid STE+CD pairs, no L1STDs, and CFGI_CD/CFGI_CD_ALL drop the STE
     * too; CMD_PREFETCH_CONFIG does nothing. */
    bool qemu_invalidation;
    /* No Access flag or Address Size faults; AP[1], PAN and nG ignored (every request
     * privileged, every TLB entry tagged with the ASID); level-0 blocks accepted; APTable
     * not in the cached permissions; only successful walks cached. */
    bool qemu_walk;
    /* Reserved command fields and CS = 0b11 unchecked; commands of absent features (EL2,
     * EL3, stage 2, ATS, PRI, stall) accepted as no-ops; TLBI range encodings unchecked;
     * the queue base used as written (each still misuse). */
    bool qemu_commands;
    /* STE/CD reserved bits unchecked; S1CDMax != 0 is C_BAD_STE; Span means 2^Span STEs
     * and a SID past it is C_BAD_STE; SPLIT used as written; 2-level format sticky;
     * CR2.RECINVSID ignored; the stream table aligned to half its size. */
    bool qemu_structures;
    /* A full event queue toggles GERROR.EVENTQ_ABT_ERR (no OVFLG); CLASS 0 in stage-1
     * fault records; F_CD_FETCH's address in the InputAddr field; an event IRQ for every
     * record; the queue base used as written. */
    bool qemu_event_queue;
};

/* QEMU 7.2's arm-smmuv3 (smmuv3_init_regs): IDR0 0x0D40101A (S1P, TTF AArch64, COHACC,
 * ASID16, TTENDIAN LE, STALL_MODEL 1, TERM_MODEL, 2-level stream table), IDR1 0x02730010
 * (SIDSIZE 16, EVENTQS 19, CMDQS 19), IDR3 0x1404 (HAD, RIL, BBML 2), IDR5 0x74 (OAS 44,
 * 4K/16K/64K), IIDR 0, AIDR 1 (v3.1), GBPA resetting to 0 (bypass), ack_delay 0, every
 * qemu_* flag set. */
struct smmuv3_model_config smmuv3_model_config_qemu(void);
/* The same ID registers with every qemu_* flag clear: the specification's behaviour. */
struct smmuv3_model_config smmuv3_model_config_spec(void);

struct smmuv3_model;

/* NULL when the configuration describes a unit the model cannot be (stage 2, no stage 1,
 * no AArch64 tables, no 4 KiB granule, queue sizes or SIDSIZE beyond the architecture) or
 * the memory lacks read or write. Both arguments are copied. */
struct smmuv3_model *smmuv3_model_create(const struct smmuv3_model_config *cfg, const struct smmuv3_model_memory *mem);
void smmuv3_model_destroy(struct smmuv3_model *m);

/* MMIO at offset off (0 .. 0x1FFFF) from the unit's base. 32-bit registers take aligned
 * 32-bit accesses; 64-bit registers take aligned 64-bit accesses or 32-bit accesses to
 * either half. Anything else (64-bit access to 32-bit registers, misaligned, unknown or
 * reserved offsets, writes to read-only registers) is misuse: reads give 0, writes are
 * ignored. Writing CMDQ_PROD consumes commands at once (unless stalled). */
uint32_t smmuv3_model_read32(struct smmuv3_model *m, uint32_t off);
uint64_t smmuv3_model_read64(struct smmuv3_model *m, uint32_t off);
void smmuv3_model_write32(struct smmuv3_model *m, uint32_t off, uint32_t v);
void smmuv3_model_write64(struct smmuv3_model *m, uint32_t off, uint64_t v);

struct smmuv3_model_result {
    bool ok;
    uint64_t pa;            /* when ok */
    uint8_t event;          /* when !ok: the event type (also when not recorded); 0: aborted silently
                               (STE Config abort, GBPA.ABORT) */
    bool recorded;          /* the event was written into the event queue */
    bool from_cache;        /* the translation (or the permission fault) came from the TLB */
    bool config_from_cache; /* the STE (and CD) came from the configuration cache */
};

/* One untranslated device transaction (PCIe without PASID: unprivileged data, no
 * SubstreamID) of one address from stream sid, translated as the unit would, caches
 * included; an event is recorded in the event queue as the unit would. */
struct smmuv3_model_result smmuv3_model_dma(struct smmuv3_model *m, uint32_t sid, uint64_t iova, bool write);

/* Failure injection: while stalled, commands are not consumed (CMDQ_CONS stays, CMD_SYNC
 * does not complete). Ending the stall consumes what is queued. */
void smmuv3_model_stall_commands(struct smmuv3_model *m, bool stall);

struct smmuv3_model_stats {
    unsigned commands;                  /* commands consumed (errors excluded) */
    unsigned cfgi, tlbi, syncs, prefetch; /* by class */
    unsigned command_errors;            /* CMDQ_CONS.ERR set (CERROR_ILL, CERROR_ABT) */
    unsigned events_written;            /* records written to the event queue */
    unsigned events_lost;               /* dropped because the queue was full (overflow) or its write aborted */
    unsigned events_discarded;          /* dropped because EVENTQEN was 0 */
    unsigned events_suppressed;         /* not recorded because of CD.R = 0 or CR2.RECINVSID = 0 */
    unsigned gerrors;                   /* GERROR bits activated */
    unsigned msis;                      /* MSIs sent (CMD_SYNC, event queue, GERROR) */
    unsigned wired_irqs;                /* wired interrupts raised (event queue, GERROR, CMD_SYNC) */
    unsigned tlb_fills, config_fills;   /* cache insertions */
    unsigned misuse;                    /* what real hardware or QEMU would get wrong, UNPREDICTABLE, or not modelled */
    char last_misuse[160];              /* description of the last one */
};
struct smmuv3_model_stats smmuv3_model_stats(const struct smmuv3_model *m);

#endif
