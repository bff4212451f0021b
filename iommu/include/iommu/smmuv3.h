/* Driver for one Arm SMMUv3 (stage-1 translation, which is all QEMU 7.2 emulates), behind
 * the unit interface (iommu/unit.h): its struct smmuv3_unit starts with a struct iommu_unit.
 *
 * The unit's stream table is two-level with 64 stream table entries (STEs, one 4 KiB page)
 * per level-2 table, taken from the page pool for a span when a stream of it first gets an
 * STE; a stream no one configured stays invalid, so its DMA is refused and reported
 * (C_BAD_STE where its span has a level-2 table, C_BAD_STREAMID where it has none or the
 * stream is beyond the table, which covers at most 2^16 streams). Each domain is one context descriptor (CD, in a pool page of its own) whose
 * ASID is the domain id: streams of a domain share it, and TLB entries are tagged with it.
 * The level-1 table and the command and event queues must be aligned to their own sizes
 * (QEMU silently drops the low address bits otherwise), so the caller hands the driver one
 * block of SMMUV3_STATIC_BYTES aligned to SMMUV3_STATIC_ALIGN for them.
 *
 * Every change is followed by the invalidation it needs (CFGI_STE for an STE, TLBI_NH_VA or
 * TLBI_NH_ASID for a domain's translations) and a CMD_SYNC whose completion is polled within
 * poll_timeout_ns. A command the unit refuses (CMDQ_CONS.ERR, GERROR.CMDQ_ERR) is replaced
 * by a harmless CMD_SYNC, acknowledged, counted and reported as IOMMU_EHW. Events are
 * drained by polling the event queue into the unit's neutral fault log (reason: the event
 * type; kind: F_TRANSLATION, F_ACCESS and F_PERMISSION are IOMMU_FAULT_TRANSLATION,
 * F_ADDR_SIZE IOMMU_FAULT_ADDRESS_SIZE, F_STE_FETCH, F_CD_FETCH and F_WALK_EABT
 * IOMMU_FAULT_TABLE, the rest IOMMU_FAULT_OTHER; direction and page for the translation faults
 * and F_WALK_EABT). Lost events are counted (iommu_fault_log.overflows), never silently: an
 * event queue overflow (EVENTQ_PROD.OVFLG) and a failed event write (GERROR.EVENTQ_ABT_ERR,
 * which is also how QEMU 7.2 reports a full queue) count one each. Other global errors are
 * counted, logged and acknowledged when events are drained.
 *
 * Statuses: IOMMU_EINVAL for a malformed argument (a misaligned static block or register
 * base, a domain id at or above SMMUV3_MAX_DOMAINS, tables of a depth the unit does not walk
 * or not page aligned or beyond its output size, last < first) and for any call before
 * smmuv3_unit_start; IOMMU_ERANGE for a stream beyond the table; IOMMU_ENODEV from init for a
 * unit that does not answer or that smmuv3_caps_unusable refuses; IOMMU_EBUSY for other
 * tables under a domain id a stream still uses; IOMMU_ENOMEM when the pool is empty;
 * IOMMU_ETIMEDOUT and IOMMU_EHW as above. A call that fails leaves every stream's
 * translation as it was. */
#ifndef IOMMU_SMMUV3_H
#define IOMMU_SMMUV3_H

#include <stdbool.h>
#include <stdint.h>

#include "fmt.h"
#include "lock.h"
#include "page_pool.h"
#include "platform.h"
#include "status.h"
#include "unit.h"

#define SMMUV3_DEFAULT_POLL_TIMEOUT_NS 1000000000ull /* 1 s: QEMU completes at once */
#define SMMUV3_REGISTER_BYTES 0x20000u               /* register pages 0 and 1 */

/* The unit's static structures: the level-1 stream table (up to 2^16 streams / 64 per
 * level-2 table * 8 bytes = 8 KiB), the command queue (256 commands * 16 bytes) and the
 * event queue (128 events * 32 bytes). */
#define SMMUV3_STATIC_BYTES 0x4000u
#define SMMUV3_STATIC_ALIGN 0x2000u
#define SMMUV3_MAX_DOMAINS 256u

/* Event record types (the reason of the fault records the driver gives out). */
enum smmuv3_event {
    SMMUV3_EVENT_UUT = 0x01,
    SMMUV3_EVENT_C_BAD_STREAMID = 0x02,
    SMMUV3_EVENT_F_STE_FETCH = 0x03,
    SMMUV3_EVENT_C_BAD_STE = 0x04,
    SMMUV3_EVENT_F_STREAM_DISABLED = 0x06,
    SMMUV3_EVENT_C_BAD_SUBSTREAMID = 0x08,
    SMMUV3_EVENT_F_CD_FETCH = 0x09,
    SMMUV3_EVENT_C_BAD_CD = 0x0a,
    SMMUV3_EVENT_F_WALK_EABT = 0x0b,
    SMMUV3_EVENT_F_TRANSLATION = 0x10,
    SMMUV3_EVENT_F_ADDR_SIZE = 0x11,
    SMMUV3_EVENT_F_ACCESS = 0x12,
    SMMUV3_EVENT_F_PERMISSION = 0x13,
    SMMUV3_EVENT_F_TLB_CONFLICT = 0x20,
    SMMUV3_EVENT_F_CFG_CONFLICT = 0x21,
};

struct smmuv3_caps {
    uint32_t idr0, idr1, idr3, idr5, iidr, aidr;
    bool stage1, stage2, aarch64_tables, coherent, asid16, two_level, gran4k;
    unsigned sid_bits, cmdq_log2, eventq_log2; /* the largest the unit takes */
    unsigned oas_bits;                         /* output address size */
    uint8_t oas_field;                         /* IDR5.OAS, for the CD's IPS */
};

/* Reads the ID registers; false when the unit does not answer (all ones). */
bool smmuv3_caps_read(const struct platform *p, uint64_t base, struct smmuv3_caps *c);
/* "PREFIXname value (meaning)" lines. */
void smmuv3_caps_report(const struct smmuv3_caps *c, const char *prefix, const struct sink *out);
/* Why this driver cannot use the unit, or NULL when it can. */
const char *smmuv3_caps_unusable(const struct smmuv3_caps *c);

struct smmuv3_stats {
    uint64_t commands, cfgi, tlbi, syncs; /* commands queued, by kind */
    uint64_t events;                      /* event records drained */
    uint64_t events_merged;               /* of them, merged into the record of their transfer */
    uint64_t command_errors, gerrors, timeouts;
};

struct smmuv3_domain_cd {
    uint64_t *cd;      /* NULL: no CD for this domain id yet */
    uint64_t cd_pa;
    unsigned streams;  /* STEs pointing at it */
};

struct smmuv3_unit {
    struct iommu_unit unit; /* first: the interface the domain core and the DDI use */
    struct iommu_lock lock; /* held around each command batch and STE change */
    const struct platform *plat;
    struct page_pool *pool;
    struct smmuv3_caps caps;
    bool started;           /* smmuv3_unit_start done: commands can be queued */
    bool enabled;
    bool aborts_when_disabled; /* GBPA.ABORT took (QEMU 7.2 has no GBPA: untranslated DMA bypasses) */
    unsigned sid_bits;      /* streams the table covers: 2^sid_bits */
    uint64_t *l1;           /* level-1 stream table */
    uint64_t l1_pa;
    uint64_t *l2[1024];     /* level-2 tables by span, NULL until used */
    uint64_t *cmdq;
    uint64_t cmdq_pa;
    uint32_t cmdq_prod;     /* next slot, with the wrap bit above the index */
    unsigned cmdq_log2;
    uint64_t *eventq;
    uint64_t eventq_pa;
    unsigned eventq_log2;
    uint32_t eventq_cons;
    uint64_t poll_timeout_ns;
    uint32_t inject_sync_timeouts; /* fault injection: the next n syncs report a timeout */
    struct smmuv3_domain_cd domain[SMMUV3_MAX_DOMAINS];
    struct smmuv3_stats stats;
};

/* Reads and checks the unit's capabilities and lays out its static structures in the
 * caller's block (static_va/static_pa: SMMUV3_STATIC_BYTES aligned to SMMUV3_STATIC_ALIGN,
 * memory only the hypervisor owns; the unit sees static_pa, which must be aligned). Nothing
 * is written to the unit. */
enum iommu_status smmuv3_unit_init(struct smmuv3_unit *u, const struct platform *plat, struct page_pool *pool,
                                   uint64_t register_base, unsigned index, void *static_va, uint64_t static_pa);
/* Programs the tables and queues and turns on the queues: after this, STEs can be set,
 * and smmuv3_unit_enable turns translation on. While the unit is not enabled its global
 * bypass is set to abort, where the unit has that register (aborts_when_disabled). */
enum iommu_status smmuv3_unit_start(struct smmuv3_unit *u);
enum iommu_status smmuv3_unit_enable(struct smmuv3_unit *u);
enum iommu_status smmuv3_unit_disable(struct smmuv3_unit *u);

/* The stream's DMA goes through t (NULL: aborted, without an event). A domain id's CD holds
 * one set of tables while streams use it; once none does, the id may take other tables (its
 * ASID's TLB entries are invalidated first). */
enum iommu_status smmuv3_set_stream(struct smmuv3_unit *u, uint32_t sid, const struct iommu_translation *t);
/* The domain id whose CD the stream's STE points at, -1 for abort or bypass or none. */
int smmuv3_stream_domain(const struct smmuv3_unit *u, uint32_t sid);

enum iommu_status smmuv3_flush_range(struct smmuv3_unit *u, uint16_t domain_id, uint64_t first, uint64_t last);
enum iommu_status smmuv3_flush_domain(struct smmuv3_unit *u, uint16_t domain_id);

unsigned smmuv3_drain_events(struct smmuv3_unit *u);
const char *smmuv3_event_name(uint8_t type);

/* Whether CR0ACK says translation and both queues are on, and the stream table and command
 * queue bases are the driver's. */
bool smmuv3_unit_intact(const struct smmuv3_unit *u, uint32_t *cr0ack);

#endif
