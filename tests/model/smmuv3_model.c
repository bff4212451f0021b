/* A software model of one Arm SMMUv3: the non-secure register file, linear and 2-level
 * stream tables, one context descriptor per stream, VMSAv8-64 stage-1 translation with the
 * 4 KiB granule, the configuration cache and TLB, the command queue and the event queue.
 * Written from the SMMUv3 architecture specification; QEMU 7.2's differences are behind the
 * qemu_* flags. See docs/smmuv3-model.md. */
#include "smmuv3_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Register fields ----------------------------------------------------------------- */

#define IDR0_S2P (1u << 0)
#define IDR0_S1P (1u << 1)
#define IDR0_TTF_AA64 (1u << 3)
#define IDR0_HTTU_SHIFT 6
#define IDR0_HYP (1u << 9)
#define IDR0_ATS (1u << 10)
#define IDR0_ASID16 (1u << 12)
#define IDR0_MSI (1u << 13)
#define IDR0_PRI (1u << 16)
#define IDR0_TTENDIAN_SHIFT 21
#define IDR0_STALL_SHIFT 24
#define IDR0_TERM_MODEL (1u << 26)
#define IDR0_ST_LEVEL_SHIFT 27

#define IDR1_SIDSIZE(x) ((x)&0x3Fu)
#define IDR1_SSIDSIZE(x) (((x) >> 6) & 0x1Fu)
#define IDR1_EVENTQS(x) (((x) >> 16) & 0x1Fu)
#define IDR1_CMDQS(x) (((x) >> 21) & 0x1Fu)
#define IDR1_ATTR_PERMS_OVR (1u << 26)

#define IDR3_HAD (1u << 2)
#define IDR3_RIL (1u << 10)

#define IDR5_OAS(x) ((x)&7u)
#define IDR5_GRAN4K (1u << 4)
#define IDR5_GRAN16K (1u << 5)
#define IDR5_GRAN64K (1u << 6)

#define CR0_SMMUEN (1u << 0)
#define CR0_PRIQEN (1u << 1)
#define CR0_EVENTQEN (1u << 2)
#define CR0_CMDQEN (1u << 3)
#define CR0_ACKED (CR0_SMMUEN | CR0_EVENTQEN | CR0_CMDQEN)

#define CR2_RECINVSID (1u << 1)

#define GBPA_UPDATE (1u << 31)
#define GBPA_ABORT (1u << 20)
#define GBPA_FIELDS 0x001F3F1Fu /* ABORT, INSTCFG, PRIVCFG, SHCFG, ALLOCCFG, MTCFG, MemAttr */

#define IRQ_GERROR (1u << 0)
#define IRQ_PRIQ (1u << 1)
#define IRQ_EVENTQ (1u << 2)

#define GERROR_CMDQ_ERR (1u << 0)
#define GERROR_EVENTQ_ABT (1u << 2)
#define GERROR_MSI_CMDQ_ABT (1u << 4)
#define GERROR_MSI_EVENTQ_ABT (1u << 5)
#define GERROR_MSI_GERROR_ABT (1u << 7)
#define GERROR_DEFINED 0x1FDu

#define IRQ_CFG0_ADDR 0x00FFFFFFFFFFFFFCull
#define STRTAB_BASE_WRITABLE (1ull << 62 | 0x00FFFFFFFFFFFFC0ull)
#define STRTAB_ADDR 0x00FFFFFFFFFFFFC0ull
#define Q_BASE_WRITABLE (1ull << 62 | 0x00FFFFFFFFFFFFFFull)
#define Q_ADDR 0x00FFFFFFFFFFFFE0ull
#define Q_OVF (1u << 31)
#define CMDQ_CONS_ERR_SHIFT 24
#define CMDQ_CONS_ERR_MASK (0x7Fu << CMDQ_CONS_ERR_SHIFT)

enum { CERROR_ILL = 1, CERROR_ABT = 2 };

enum {
    CMD_PREFETCH_CONFIG = 0x01,
    CMD_PREFETCH_ADDR = 0x02,
    CMD_CFGI_STE = 0x03,
    CMD_CFGI_STE_RANGE = 0x04,
    CMD_CFGI_CD = 0x05,
    CMD_CFGI_CD_ALL = 0x06,
    CMD_TLBI_NH_ALL = 0x10,
    CMD_TLBI_NH_ASID = 0x11,
    CMD_TLBI_NH_VA = 0x12,
    CMD_TLBI_NH_VAA = 0x13,
    CMD_TLBI_EL3_ALL = 0x18,
    CMD_TLBI_EL3_VA = 0x1A,
    CMD_TLBI_EL2_ALL = 0x20,
    CMD_TLBI_EL2_ASID = 0x21,
    CMD_TLBI_EL2_VA = 0x22,
    CMD_TLBI_EL2_VAA = 0x23,
    CMD_TLBI_S12_VMALL = 0x28,
    CMD_TLBI_S2_IPA = 0x2A,
    CMD_TLBI_NSNH_ALL = 0x30,
    CMD_ATC_INV = 0x40,
    CMD_PRI_RESP = 0x41,
    CMD_RESUME = 0x44,
    CMD_STALL_TERM = 0x45,
    CMD_SYNC = 0x46,
};

#define CMD_SSEC (1ull << 10)
#define CMD_SID(c0) ((uint32_t)((c0) >> 32))

/* STE and CD fields (dword, bit). */
#define STE0_V (1ull << 0)
#define STE0_CONFIG(x) (((x) >> 1) & 7u)
#define STE0_CTXPTR 0x00FFFFFFFFFFFFC0ull
#define STE0_CDMAX(x) ((unsigned)((x) >> 59))
#define STE0_RES0 (7ull << 56)
#define STE1_S1STALLD (1ull << 27)
#define STE1_STRW(x) (((x) >> 30) & 3u)
#define STE1_PRIVCFG(x) (((x) >> 48) & 3u)
#define STE1_RES0 (7ull << 41)

#define CD0_TSZ(x, i) ((unsigned)((x) >> (16 * (i))) & 0x3Fu)
#define CD0_TG(x, i) ((unsigned)((x) >> (16 * (i) + 6)) & 3u)
#define CD0_EPD(x, i) (((x) >> (16 * (i) + 14)) & 1u)
#define CD0_ENDI (1ull << 15)
#define CD0_V (1ull << 31)
#define CD0_IPS(x) ((unsigned)((x) >> 32) & 7u)
#define CD0_AFFD (1ull << 35)
#define CD0_TBI(i) (1ull << (38 + (i)))
#define CD0_PAN (1ull << 40)
#define CD0_AA64 (1ull << 41)
#define CD0_HD (1ull << 42)
#define CD0_HA (1ull << 43)
#define CD0_S (1ull << 44)
#define CD0_R (1ull << 45)
#define CD0_A (1ull << 46)
#define CD0_ASID(x) ((uint16_t)((x) >> 48))
#define CD_TTB_HAD (1ull << 1)
#define CD_TTB_ADDR 0x000FFFFFFFFFFFF0ull
#define CD_TTB_RES0 (0xFFFull << 52 | 3ull << 2)

#define L1STD_SPAN(x) ((unsigned)((x)&0x1Fu))
#define L1STD_L2PTR 0x00FFFFFFFFFFFFC0ull

/* Translation table descriptors. */
#define PTE_VALID (1ull << 0)
#define PTE_TABLE (1ull << 1)
#define PTE_AP1 (1ull << 6) /* EL0 access */
#define PTE_AP2 (1ull << 7) /* read-only */
#define PTE_AF (1ull << 10)
#define PTE_NG (1ull << 11)
#define PTE_APTABLE0 (1ull << 61) /* no EL0 access below */
#define PTE_APTABLE1 (1ull << 62) /* no write below */
#define PTE_OA_SPEC 0x000FFFFFFFFFF000ull /* bits 51:12, 51:48 RES0 with 4K: an address size fault when set */
#define PTE_OA_QEMU 0x0000FFFFFFFFF000ull /* QEMU reads bits 47:12 only */

#define EVT1_PNU (1ull << 33)
#define EVT1_RNW (1ull << 35)
#define EVT1_CLASS_SHIFT 40
enum { CLASS_CD = 0, CLASS_TT = 1, CLASS_IN = 2 };

static const unsigned oas_bits_table[8] = {32, 36, 40, 42, 44, 48, 52, 52};

/* ---- State ----------------------------------------------------------------------------- */

struct cfg_entry { /* configuration cache, by StreamID */
    uint32_t sid;
    bool has_ste, has_cd;
    uint64_t ste[8], cd[8];
};

struct l1_entry { /* cached level-1 stream table descriptors, by index */
    uint32_t index;
    uint64_t desc;
};

struct tlb_entry {
    uint16_t asid;
    bool global;
    uint64_t va; /* canonical, aligned to the entry's size */
    unsigned shift, level;
    uint64_t pa;
    bool ro, user;
};

enum inv_kind { INV_STE, INV_STE_RANGE, INV_CD, INV_CD_ALL, INV_TLB_ALL, INV_TLB_ASID, INV_TLB_VA };

struct inv_op { /* an invalidation consumed but not yet completed by a CMD_SYNC */
    enum inv_kind kind;
    uint32_t sid_lo, sid_hi;
    bool leaf, any_asid;
    uint16_t asid;
    uint64_t va_lo, va_hi; /* [lo, hi) */
    bool by_range;         /* TG != 0: only 4 KiB-granule entries of the range (and level ttl) */
    unsigned ttl;
};

struct dyn {
    void *items;
    size_t len, cap, size;
};

struct smmuv3_model {
    struct smmuv3_model_config cfg;
    struct smmuv3_model_memory mem;
    unsigned sid_bits, oas, cmdqs, eventqs;

    uint32_t cr0, cr0ack, cr1, cr2;
    unsigned cr0_reads_left;
    uint32_t gbpa, gbpa_effective;
    unsigned gbpa_reads_left;
    uint32_t irq_ctrl, irq_ctrlack;
    unsigned irq_reads_left;
    uint32_t gerror, gerrorn;
    uint64_t gerror_irq_cfg0, eventq_irq_cfg0;
    uint32_t gerror_irq_cfg1, gerror_irq_cfg2, eventq_irq_cfg1, eventq_irq_cfg2;
    uint64_t strtab_base;
    uint32_t strtab_base_cfg;
    bool qemu_two_level; /* QEMU: 2-level once FMT = 1 was written */
    unsigned qemu_split;
    uint64_t cmdq_base, eventq_base;
    uint32_t cmdq_prod, cmdq_cons, eventq_prod, eventq_cons;

    bool stalled;
    bool cfgi_all_done, tlbi_all_done; /* since reset, completed: the condition for enabling */

    struct dyn cfgs, l1s, tlb, pending;
    struct smmuv3_model_stats stats;
};

static void misuse(struct smmuv3_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void misuse(struct smmuv3_model *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->stats.last_misuse, sizeof m->stats.last_misuse, fmt, ap);
    va_end(ap);
    m->stats.misuse++;
}

static uint64_t low_mask(unsigned bits)
{
    return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

/* A cache that cannot grow just stays as it is: a miss is always a correct answer. */
static void *dyn_push(struct dyn *d)
{
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        void *p = realloc(d->items, cap * d->size);
        if (!p)
            return NULL;
        d->items = p;
        d->cap = cap;
    }
    void *slot = (char *)d->items + d->len * d->size;
    d->len++;
    memset(slot, 0, d->size);
    return slot;
}

static void *dyn_at(const struct dyn *d, size_t i)
{
    return (char *)d->items + i * d->size;
}

static void dyn_remove(struct dyn *d, size_t i)
{
    d->len--;
    if (i != d->len)
        memcpy(dyn_at(d, i), dyn_at(d, d->len), d->size);
}

/* Memory is little-endian, like every structure the unit reads or writes. */
static bool read_qwords(struct smmuv3_model *m, uint64_t pa, uint64_t *out, size_t n)
{
    uint8_t bytes[64];
    if (n > 8 || !m->mem.read(m->mem.ctx, pa, bytes, n * 8))
        return false;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        for (unsigned b = 0; b < 8; b++)
            out[i] |= (uint64_t)bytes[i * 8 + b] << (8 * b);
    }
    return true;
}

static bool write_qwords(struct smmuv3_model *m, uint64_t pa, const uint64_t *in, size_t n)
{
    uint8_t bytes[32];
    if (n > 4)
        return false;
    for (size_t i = 0; i < n; i++)
        for (unsigned b = 0; b < 8; b++)
            bytes[i * 8 + b] = (uint8_t)(in[i] >> (8 * b));
    return m->mem.write(m->mem.ctx, pa, bytes, n * 8);
}

/* ---- Interrupts and global errors ------------------------------------------------------ */

static void gerror_activate(struct smmuv3_model *m, uint32_t bit);

static void send_msi(struct smmuv3_model *m, uint64_t addr, uint32_t data, uint32_t abort_bit)
{
    uint8_t bytes[4] = {(uint8_t)data, (uint8_t)(data >> 8), (uint8_t)(data >> 16), (uint8_t)(data >> 24)};
    m->stats.msis++;
    if (m->mem.write(m->mem.ctx, addr, bytes, sizeof bytes))
        return;
    if (m->mem.msi) {
        m->mem.msi(m->mem.ctx, addr, data);
        return;
    }
    gerror_activate(m, abort_bit);
}

/* An interrupt source: an MSI when the unit has them and its address is set, else the wired
 * output. */
static void raise_irq(struct smmuv3_model *m, uint64_t cfg0, uint32_t data, uint32_t abort_bit)
{
    uint64_t addr = cfg0 & IRQ_CFG0_ADDR;
    if ((m->cfg.idr[0] & IDR0_MSI) && addr)
        send_msi(m, addr, data, abort_bit);
    else
        m->stats.wired_irqs++;
}

static void gerror_activate(struct smmuv3_model *m, uint32_t bit)
{
    if ((m->gerror ^ m->gerrorn) & bit)
        return; /* already active: not toggled again */
    m->gerror ^= bit;
    m->stats.gerrors++;
    if (m->irq_ctrlack & IRQ_GERROR)
        raise_irq(m, m->gerror_irq_cfg0, m->gerror_irq_cfg1, GERROR_MSI_GERROR_ABT);
}

/* ---- Queues ------------------------------------------------------------------------------ */

static unsigned q_log2(uint64_t base, unsigned max)
{
    unsigned l = (unsigned)(base & 0x1F);
    return l > max ? max : l;
}

static uint32_t q_wrap_mask(unsigned log2)
{
    return (2u << log2) - 1; /* index and wrap bit */
}

static uint32_t q_entries(uint32_t prod, uint32_t cons, unsigned log2)
{
    return (prod - cons) & q_wrap_mask(log2);
}

/* The queue's base as the unit uses it: aligned to the queue's size (at least 32 bytes),
 * or, as QEMU does, only bits 51:6. */
static uint64_t q_base(const struct smmuv3_model *m, uint64_t base, unsigned log2, unsigned entry_bytes, bool qemu)
{
    if (qemu)
        return base & 0x000FFFFFFFFFFFC0ull;
    uint64_t size = (uint64_t)entry_bytes << log2;
    if (size < 32)
        size = 32;
    return base & Q_ADDR & low_mask(m->oas) & ~(size - 1);
}

static void check_q_alignment(struct smmuv3_model *m, const char *name, uint64_t base, unsigned log2,
                              unsigned entry_bytes)
{
    uint64_t size = (uint64_t)entry_bytes << log2;
    if (size < 32)
        size = 32;
    if (base & Q_ADDR & (size - 1))
        misuse(m, "%s base 0x%llx not aligned to the queue size 0x%llx (the unit uses 0x%llx; QEMU uses it as written)",
               name, (unsigned long long)(base & Q_ADDR), (unsigned long long)size,
               (unsigned long long)(base & Q_ADDR & ~(size - 1)));
}

/* ---- Events -------------------------------------------------------------------------------- */

/* Writes one record into the event queue; false when it was not written. */
static bool record_event(struct smmuv3_model *m, const uint64_t rec[4])
{
    if (!(m->cr0ack & CR0_EVENTQEN)) {
        m->stats.events_discarded++;
        return false;
    }
    unsigned log2 = q_log2(m->eventq_base, m->eventqs);
    uint32_t wm = q_wrap_mask(log2);
    uint32_t n = q_entries(m->eventq_prod, m->eventq_cons, log2);
    if (n >= (1u << log2)) {
        m->stats.events_lost++;
        if (m->cfg.qemu_event_queue)
            gerror_activate(m, GERROR_EVENTQ_ABT);
        else if (!((m->eventq_prod ^ m->eventq_cons) & Q_OVF))
            m->eventq_prod ^= Q_OVF; /* overflow condition entered (not again until acknowledged) */
        return false;
    }
    uint64_t base = q_base(m, m->eventq_base, log2, 32, m->cfg.qemu_event_queue);
    uint64_t at = base + (uint64_t)(m->eventq_prod & ((1u << log2) - 1)) * 32;
    if (!write_qwords(m, at, rec, 4)) {
        m->stats.events_lost++;
        gerror_activate(m, GERROR_EVENTQ_ABT);
        return false;
    }
    m->eventq_prod = (m->eventq_prod & Q_OVF) | ((m->eventq_prod + 1) & wm);
    m->stats.events_written++;
    if ((n == 0 || m->cfg.qemu_event_queue) && (m->irq_ctrlack & IRQ_EVENTQ))
        raise_irq(m, m->eventq_irq_cfg0, m->eventq_irq_cfg1, GERROR_MSI_EVENTQ_ABT);
    return true;
}

/* ---- Caches -------------------------------------------------------------------------------- */

static struct cfg_entry *cfg_find(struct smmuv3_model *m, uint32_t sid)
{
    for (size_t i = 0; i < m->cfgs.len; i++) {
        struct cfg_entry *e = dyn_at(&m->cfgs, i);
        if (e->sid == sid)
            return e;
    }
    return NULL;
}

static struct cfg_entry *cfg_get(struct smmuv3_model *m, uint32_t sid)
{
    struct cfg_entry *e = cfg_find(m, sid);
    if (!e && (e = dyn_push(&m->cfgs)) != NULL)
        e->sid = sid;
    return e;
}

static void cfg_drop_empty(struct smmuv3_model *m)
{
    for (size_t i = m->cfgs.len; i-- > 0;) {
        struct cfg_entry *e = dyn_at(&m->cfgs, i);
        if (!e->has_ste && !e->has_cd)
            dyn_remove(&m->cfgs, i);
    }
}

static bool l1_find(struct smmuv3_model *m, uint32_t index, uint64_t *desc)
{
    for (size_t i = 0; i < m->l1s.len; i++) {
        struct l1_entry *e = dyn_at(&m->l1s, i);
        if (e->index == index) {
            *desc = e->desc;
            return true;
        }
    }
    return false;
}

static void l1_insert(struct smmuv3_model *m, uint32_t index, uint64_t desc)
{
    struct l1_entry *e = dyn_push(&m->l1s);
    if (e) {
        e->index = index;
        e->desc = desc;
    }
}

static void l1_invalidate(struct smmuv3_model *m, uint32_t lo, uint32_t hi)
{
    for (size_t i = m->l1s.len; i-- > 0;) {
        struct l1_entry *e = dyn_at(&m->l1s, i);
        if (e->index >= lo && e->index <= hi)
            dyn_remove(&m->l1s, i);
    }
}

/* ---- Stream table ------------------------------------------------------------------------ */

static bool two_level(const struct smmuv3_model *m)
{
    if (m->cfg.qemu_structures)
        return m->qemu_two_level;
    return ((m->cfg.idr[0] >> IDR0_ST_LEVEL_SHIFT) & 3) == 1 && ((m->strtab_base_cfg >> 16) & 3) == 1;
}

static unsigned split(const struct smmuv3_model *m)
{
    if (m->cfg.qemu_structures)
        return m->qemu_split;
    unsigned s = (m->strtab_base_cfg >> 6) & 0x1F;
    return s == 6 || s == 8 || s == 10 ? s : 6;
}

static unsigned strtab_log2size(const struct smmuv3_model *m)
{
    return m->strtab_base_cfg & 0x3F;
}

/* The table's base as the unit uses it: aligned to the table's size (to half of it in QEMU). */
static uint64_t strtab_addr(const struct smmuv3_model *m)
{
    unsigned l = strtab_log2size(m), align_bits;
    if (two_level(m)) {
        int n = (int)l - (int)split(m) - 1 + 3;
        align_bits = (unsigned)(n > 5 ? n : 5) + (m->cfg.qemu_structures ? 0 : 1);
    } else {
        align_bits = l + 5 + (m->cfg.qemu_structures ? 0 : 1);
    }
    return m->strtab_base & STRTAB_ADDR & low_mask(m->oas) & ~low_mask(align_bits);
}

static void check_strtab_alignment(struct smmuv3_model *m)
{
    unsigned l = strtab_log2size(m), align_bits;
    if (two_level(m)) {
        int n = (int)l - (int)split(m) + 3;
        align_bits = (unsigned)(n > 6 ? n : 6);
    } else {
        align_bits = l + 6;
    }
    uint64_t base = m->strtab_base & STRTAB_ADDR;
    if (base & low_mask(align_bits))
        misuse(m, "STRTAB_BASE 0x%llx not aligned to the %s table size 0x%llx (the unit silently uses 0x%llx)",
               (unsigned long long)base, two_level(m) ? "level-1" : "stream", (unsigned long long)1 << align_bits,
               (unsigned long long)strtab_addr(m));
}

struct lookup {
    uint8_t event; /* 0: found */
    uint64_t fetch_addr;
    bool record; /* false: C_BAD_STREAMID not recorded (CR2.RECINVSID = 0) */
};

static struct lookup bad_streamid(struct smmuv3_model *m)
{
    struct lookup r = {SMMUV3_EVT_C_BAD_STREAMID, 0, true};
    if (!m->cfg.qemu_structures && !(m->cr2 & CR2_RECINVSID))
        r.record = false;
    return r;
}

/* Finds the STE for sid in memory (not in the STE cache); in the specification's cache the
 * level-1 descriptor is cached on the way. */
static struct lookup fetch_ste(struct smmuv3_model *m, uint32_t sid, uint64_t ste[8])
{
    struct lookup r = {0, 0, true};
    unsigned l = strtab_log2size(m);
    if (l > m->sid_bits)
        l = m->sid_bits;
    if (l < 32 && sid >> l)
        return bad_streamid(m);
    uint64_t base = strtab_addr(m), ste_addr;
    if (two_level(m)) {
        unsigned s = split(m);
        uint32_t index = s >= 32 ? 0 : sid >> s;
        uint32_t l2_index = sid & (uint32_t)low_mask(s);
        uint64_t l1_addr = base + (uint64_t)index * 8, desc;
        bool cached = !m->cfg.qemu_invalidation && l1_find(m, index, &desc);
        if (!cached) {
            if (!read_qwords(m, l1_addr, &desc, 1)) {
                r.event = SMMUV3_EVT_F_STE_FETCH;
                r.fetch_addr = l1_addr;
                return r;
            }
            if (!m->cfg.qemu_invalidation)
                l1_insert(m, index, desc);
        }
        unsigned span = L1STD_SPAN(desc);
        uint64_t l2;
        if (m->cfg.qemu_structures) {
            if (!span)
                return bad_streamid(m);
            if (l2_index > (1u << span) - 1) {
                r.event = SMMUV3_EVT_C_BAD_STE;
                return r;
            }
            l2 = desc & ~0x1Full;
        } else {
            if (span == 0 || span >= 12 || span > s + 1 || l2_index >= (1u << (span - 1)))
                return bad_streamid(m);
            uint64_t size = 64ull << (span - 1);
            l2 = desc & L1STD_L2PTR & low_mask(m->oas);
            if (l2 & (size - 1))
                misuse(m, "level-2 stream table 0x%llx (L1STD %u) not aligned to its size 0x%llx "
                          "(the unit uses 0x%llx)",
                       (unsigned long long)l2, index, (unsigned long long)size, (unsigned long long)(l2 & ~(size - 1)));
            l2 &= ~(size - 1);
        }
        if (desc & (0xFFull << 56 | 1ull << 5))
            misuse(m, "L1STD %u has reserved bits set: 0x%016llx", index, (unsigned long long)desc);
        ste_addr = l2 + (uint64_t)l2_index * 64;
    } else {
        ste_addr = base + (uint64_t)sid * 64;
    }
    if (!read_qwords(m, ste_addr, ste, 8)) {
        r.event = SMMUV3_EVT_F_STE_FETCH;
        r.fetch_addr = ste_addr;
    }
    return r;
}

/* 0, or C_BAD_STE for an STE the unit finds ILLEGAL (or that the model does not model). */
static uint8_t check_ste(struct smmuv3_model *m, uint32_t sid, const uint64_t ste[8])
{
    if (!(ste[0] & STE0_V))
        return SMMUV3_EVT_C_BAD_STE;
    unsigned config = STE0_CONFIG(ste[0]);
    if (!(config & 4)) {
        if (config)
            misuse(m, "STE %u Config 0x%x is reserved (behaves as abort)", sid, config);
        return 0;
    }
    bool strict = !m->cfg.qemu_structures;
    if (config & 2)
        return SMMUV3_EVT_C_BAD_STE; /* stage 2 on a unit without it */
    if (config == 4) {
        if (ste[1] & STE1_RES0) {
            misuse(m, "STE %u has reserved bits set: dword 1 0x%016llx", sid, (unsigned long long)ste[1]);
            if (strict)
                return SMMUV3_EVT_C_BAD_STE;
        }
        return 0;
    }
    /* Stage 1. */
    unsigned cdmax = STE0_CDMAX(ste[0]), ssid_size = IDR1_SSIDSIZE(m->cfg.idr[1]);
    if ((ste[1] & STE1_S1STALLD) && ((m->cfg.idr[0] >> IDR0_STALL_SHIFT) & 3) != 0)
        return SMMUV3_EVT_C_BAD_STE;
    if (!strict) {
        if (cdmax)
            return SMMUV3_EVT_C_BAD_STE;
    } else if (ssid_size) {
        if (cdmax > ssid_size)
            return SMMUV3_EVT_C_BAD_STE;
        if (cdmax) {
            misuse(m, "STE %u S1CDMax %u: more than one CD is not modelled", sid, cdmax);
            return SMMUV3_EVT_C_BAD_STE;
        }
    }
    unsigned strw = STE1_STRW(ste[1]);
    if (strw) {
        if (!(m->cfg.idr[0] & IDR0_HYP)) {
            misuse(m, "STE %u STRW %u is RES0 on a unit without Hyp", sid, strw);
            if (strict)
                return SMMUV3_EVT_C_BAD_STE;
        } else if (strict) {
            if (strw & 1)
                return SMMUV3_EVT_C_BAD_STE;
            misuse(m, "STE %u StreamWorld EL2 is not modelled", sid);
            return SMMUV3_EVT_C_BAD_STE;
        }
    }
    if ((ste[0] & STE0_CTXPTR) >> m->oas) {
        misuse(m, "STE %u S1ContextPtr 0x%llx beyond the OAS", sid, (unsigned long long)(ste[0] & STE0_CTXPTR));
        if (strict)
            return SMMUV3_EVT_C_BAD_STE;
    }
    if ((ste[0] & STE0_RES0) || (ste[1] & STE1_RES0)) {
        misuse(m, "STE %u has reserved bits set: 0x%016llx 0x%016llx", sid, (unsigned long long)ste[0],
               (unsigned long long)ste[1]);
        if (strict)
            return SMMUV3_EVT_C_BAD_STE;
    }
    return 0;
}

/* A decoded, valid stage-1 configuration. */
struct s1cfg {
    uint16_t asid;
    unsigned eff_ips;
    bool affd, pan, record, priv;
    bool epd[2], tbi[2], had[2];
    unsigned tsz[2];
    uint64_t ttb[2];
};

/* Size of the starting-level table of a 4 KiB-granule walk of a 2^inputsize region. */
static unsigned start_level(unsigned inputsize)
{
    return 4 - (inputsize - 12 + 8) / 9;
}

static uint64_t top_table_bytes(unsigned inputsize)
{
    unsigned lvl = start_level(inputsize);
    return 8ull << (inputsize - (12 + 9 * (3 - lvl)));
}

/* 0, or C_BAD_CD; fills c. */
static uint8_t check_cd(struct smmuv3_model *m, uint32_t sid, const uint64_t ste[8], const uint64_t cd[8],
                        struct s1cfg *c)
{
    bool strict = !m->cfg.qemu_structures;
    uint32_t idr0 = m->cfg.idr[0];
    memset(c, 0, sizeof *c);
    if (!(cd[0] & CD0_V))
        return SMMUV3_EVT_C_BAD_CD;
    if ((idr0 & IDR0_TERM_MODEL) && !(cd[0] & CD0_A))
        return SMMUV3_EVT_C_BAD_CD;
    if ((cd[0] & CD0_S) && ((idr0 >> IDR0_STALL_SHIFT) & 3) == 1)
        return SMMUV3_EVT_C_BAD_CD;
    if (cd[0] & (CD0_HA | CD0_HD))
        return SMMUV3_EVT_C_BAD_CD; /* no HTTU */
    if (!(cd[0] & CD0_AA64))
        return SMMUV3_EVT_C_BAD_CD; /* no VMSAv8-32 tables */
    bool epd0 = CD0_EPD(cd[0], 0), epd1 = CD0_EPD(cd[0], 1);
    if ((cd[0] & CD0_ENDI) && !(epd0 && epd1)) {
        if (((idr0 >> IDR0_TTENDIAN_SHIFT) & 3) == 0)
            misuse(m, "CD of stream %u: big-endian tables are not modelled", sid);
        return SMMUV3_EVT_C_BAD_CD;
    }
    uint16_t asid = CD0_ASID(cd[0]);
    if (!(idr0 & IDR0_ASID16) && (asid >> 8))
        return SMMUV3_EVT_C_BAD_CD;
    unsigned ips = CD0_IPS(cd[0]);
    if (ips == 7)
        misuse(m, "CD of stream %u: IPS 7 is reserved (behaves as 52 bits)", sid);
    unsigned ips_bits = oas_bits_table[ips];
    c->eff_ips = ips_bits < m->oas ? ips_bits : m->oas;
    if (m->cfg.qemu_structures && ips >= 6)
        c->eff_ips = m->oas; /* QEMU's oas2bits() has no 52-bit value */
    for (unsigned i = 0; i < 2; i++) {
        c->epd[i] = i ? epd1 : epd0;
        c->tbi[i] = (cd[0] & CD0_TBI(i)) != 0;
        c->had[i] = (m->cfg.idr[3] & IDR3_HAD) && (cd[1 + i] & CD_TTB_HAD);
        if (c->epd[i])
            continue;
        unsigned tsz = CD0_TSZ(cd[0], i), tg = CD0_TG(cd[0], i);
        if (tsz < 16 || tsz > 39)
            return SMMUV3_EVT_C_BAD_CD;
        /* TG0: 0 4K, 1 64K, 2 16K; TG1: 1 16K, 2 4K, 3 64K. */
        unsigned granule = i == 0 ? (tg == 0 ? 12 : tg == 1 ? 16 : tg == 2 ? 14 : 0)
                                  : (tg == 1 ? 14 : tg == 2 ? 12 : tg == 3 ? 16 : 0);
        uint32_t gran_bit = granule == 12   ? IDR5_GRAN4K
                            : granule == 14 ? IDR5_GRAN16K
                            : granule == 16 ? IDR5_GRAN64K
                                            : 0;
        if (!(m->cfg.idr[5] & gran_bit))
            return SMMUV3_EVT_C_BAD_CD;
        if (granule != 12) {
            misuse(m, "CD of stream %u: TTB%u with the %u KiB granule is not modelled (only 4 KiB)", sid, i,
                   1u << (granule - 10));
            return SMMUV3_EVT_C_BAD_CD;
        }
        uint64_t ttb = cd[1 + i] & CD_TTB_ADDR;
        if ((ttb >> c->eff_ips) || (ttb >> 48))
            return SMMUV3_EVT_C_BAD_CD;
        uint64_t align = top_table_bytes(64 - tsz);
        if (ttb & (align - 1))
            misuse(m, "CD of stream %u: TTB%u 0x%llx not aligned to its table size 0x%llx (the unit uses 0x%llx)",
                   sid, i,
                   (unsigned long long)ttb, (unsigned long long)align, (unsigned long long)(ttb & ~(align - 1)));
        c->tsz[i] = tsz;
        c->ttb[i] = ttb & ~(align - 1);
    }
    if ((cd[1] & CD_TTB_RES0) || (cd[2] & CD_TTB_RES0) || (cd[5] >> 32) || cd[6] || cd[7]) {
        misuse(m, "CD of stream %u has reserved bits set", sid);
        if (strict)
            return SMMUV3_EVT_C_BAD_CD;
    }
    c->asid = asid;
    c->affd = (cd[0] & CD0_AFFD) != 0;
    c->pan = (cd[0] & CD0_PAN) != 0;
    c->record = (cd[0] & CD0_R) != 0;
    /* PCIe without PASID: unprivileged; STE.PRIVCFG overrides when the unit has the override. */
    if (m->cfg.idr[1] & IDR1_ATTR_PERMS_OVR)
        c->priv = STE1_PRIVCFG(ste[1]) == 3;
    return 0;
}

struct config {
    bool abort, bypass;
    uint64_t ste[8], cd[8];
    struct s1cfg s1;
};

/* Finds and validates the configuration of sid, through the configuration cache. */
static struct lookup get_config(struct smmuv3_model *m, uint32_t sid, struct config *c, bool *from_cache)
{
    struct lookup r = {0, 0, true};
    memset(c, 0, sizeof *c);
    *from_cache = false;
    struct cfg_entry *e = cfg_find(m, sid);
    bool ste_cached = e && e->has_ste;
    if (ste_cached) {
        memcpy(c->ste, e->ste, sizeof c->ste);
    } else {
        r = fetch_ste(m, sid, c->ste);
        if (r.event)
            return r;
        if (!m->cfg.qemu_invalidation && (e = cfg_get(m, sid)) != NULL) {
            memcpy(e->ste, c->ste, sizeof e->ste);
            e->has_ste = true;
            m->stats.config_fills++;
        }
    }
    if ((r.event = check_ste(m, sid, c->ste)) != 0)
        return r;
    unsigned config = STE0_CONFIG(c->ste[0]);
    c->abort = !(config & 4);
    c->bypass = config == 4;
    bool cd_cached = false;
    if (!c->abort && !c->bypass) {
        e = cfg_find(m, sid);
        cd_cached = e && e->has_cd;
        if (cd_cached) {
            memcpy(c->cd, e->cd, sizeof c->cd);
        } else {
            uint64_t addr = c->ste[0] & STE0_CTXPTR & low_mask(m->cfg.qemu_structures ? 48 : 56);
            if (!read_qwords(m, addr, c->cd, 8)) {
                r.event = SMMUV3_EVT_F_CD_FETCH;
                r.fetch_addr = addr;
                return r;
            }
            if (!m->cfg.qemu_invalidation && (e = cfg_get(m, sid)) != NULL) {
                memcpy(e->cd, c->cd, sizeof e->cd);
                e->has_cd = true;
            }
        }
        if ((r.event = check_cd(m, sid, c->ste, c->cd, &c->s1)) != 0)
            return r;
    }
    *from_cache = ste_cached && (c->abort || c->bypass || cd_cached);
    /* QEMU caches only a configuration that decoded without error, STE and CD together. */
    if (m->cfg.qemu_invalidation && !ste_cached && (e = cfg_get(m, sid)) != NULL) {
        memcpy(e->ste, c->ste, sizeof e->ste);
        memcpy(e->cd, c->cd, sizeof e->cd);
        e->has_ste = true;
        e->has_cd = !c->abort && !c->bypass;
        m->stats.config_fills++;
    }
    return r;
}

/* ---- Translation ---------------------------------------------------------------------- */

static struct tlb_entry *tlb_lookup(struct smmuv3_model *m, uint16_t asid, uint64_t va)
{
    for (size_t i = 0; i < m->tlb.len; i++) {
        struct tlb_entry *e = dyn_at(&m->tlb, i);
        if ((e->global || e->asid == asid) && va - e->va < (1ull << e->shift))
            return e;
    }
    return NULL;
}

static void tlb_insert(struct smmuv3_model *m, const struct tlb_entry *t)
{
    struct tlb_entry *e = dyn_push(&m->tlb);
    if (e) {
        *e = *t;
        m->stats.tlb_fills++;
    }
}

static bool permitted(const struct smmuv3_model *m, const struct s1cfg *c, bool ro, bool user, bool write)
{
    if (m->cfg.qemu_walk)
        return !(write && ro); /* every request privileged, PAN ignored */
    if (!c->priv && !user)
        return false;
    if (c->priv && c->pan && user)
        return false;
    return !(write && ro);
}

struct walk {
    uint8_t event;
    uint64_t fetch_addr; /* F_WALK_EABT */
    struct tlb_entry t;
    bool cache; /* a valid leaf was found (also for a permission fault) */
};

/* The VMSAv8-64 stage-1 walk of va (canonical) with the 4 KiB granule through TTBi. */
static struct walk walk(struct smmuv3_model *m, const struct s1cfg *c, unsigned i, uint64_t va, bool write)
{
    struct walk w;
    memset(&w, 0, sizeof w);
    bool qemu = m->cfg.qemu_walk;
    unsigned inputsize = 64 - c->tsz[i];
    unsigned level = start_level(inputsize);
    uint64_t table = c->ttb[i];
    bool ro = false, user = true;
    for (;; level++) {
        unsigned shift = 12 + 9 * (3 - level);
        unsigned bits = level == start_level(inputsize) ? inputsize - shift : 9;
        uint64_t pte_addr = table + ((va >> shift) & low_mask(bits)) * 8, pte;
        if (!read_qwords(m, pte_addr, &pte, 1)) {
            w.event = SMMUV3_EVT_F_WALK_EABT;
            w.fetch_addr = pte_addr;
            return w;
        }
        if (!(pte & PTE_VALID) || (level == 3 && !(pte & PTE_TABLE)) || (level == 0 && !(pte & PTE_TABLE) && !qemu)) {
            w.event = SMMUV3_EVT_F_TRANSLATION;
            return w;
        }
        uint64_t oa_mask = (qemu ? PTE_OA_QEMU : PTE_OA_SPEC) & ~low_mask(shift);
        if (level < 3 && (pte & PTE_TABLE)) {
            uint64_t next = pte & (qemu ? PTE_OA_QEMU : PTE_OA_SPEC);
            if (!qemu && (next >> c->eff_ips)) {
                w.event = SMMUV3_EVT_F_ADDR_SIZE;
                return w;
            }
            if (!c->had[i]) {
                if (qemu) {
                    if (write && (pte & PTE_APTABLE1)) {
                        w.event = SMMUV3_EVT_F_PERMISSION;
                        return w;
                    }
                } else {
                    ro |= (pte & PTE_APTABLE1) != 0;
                    user &= !(pte & PTE_APTABLE0);
                }
            }
            table = next;
            continue;
        }
        uint64_t oa = pte & oa_mask;
        if (!qemu && (oa >> c->eff_ips)) {
            w.event = SMMUV3_EVT_F_ADDR_SIZE;
            return w;
        }
        if (!qemu && !(pte & PTE_AF) && !c->affd) {
            w.event = SMMUV3_EVT_F_ACCESS;
            return w;
        }
        ro |= (pte & PTE_AP2) != 0;
        user &= (pte & PTE_AP1) != 0;
        w.t.asid = c->asid;
        w.t.global = !qemu && !(pte & PTE_NG);
        w.t.va = va & ~low_mask(shift);
        w.t.shift = shift;
        w.t.level = level;
        w.t.pa = oa;
        w.t.ro = ro;
        w.t.user = user;
        w.cache = true;
        if (!permitted(m, c, ro, user, write)) {
            w.event = SMMUV3_EVT_F_PERMISSION;
            w.cache = !qemu; /* a valid translation may be cached; QEMU caches only successes */
        }
        return w;
    }
}

static bool translation_fault(uint8_t event)
{
    return event == SMMUV3_EVT_F_TRANSLATION || event == SMMUV3_EVT_F_ADDR_SIZE || event == SMMUV3_EVT_F_ACCESS ||
           event == SMMUV3_EVT_F_PERMISSION;
}

/* A transaction terminated with an event: the record as the unit writes it. */
static struct smmuv3_model_result fail(struct smmuv3_model *m, struct smmuv3_model_result r, uint8_t event,
                                       uint32_t sid, uint64_t iova, bool write, bool priv, uint64_t fetch_addr,
                                       bool record)
{
    r.ok = false;
    r.pa = 0;
    r.event = event;
    if (!record) {
        m->stats.events_suppressed++;
        return r;
    }
    uint64_t rec[4] = {event | (uint64_t)sid << 32, 0, 0, 0};
    if (translation_fault(event) || event == SMMUV3_EVT_F_WALK_EABT) {
        unsigned class = event == SMMUV3_EVT_F_WALK_EABT ? CLASS_TT : m->cfg.qemu_event_queue ? CLASS_CD : CLASS_IN;
        rec[1] = (priv ? EVT1_PNU : 0) | (write ? 0 : EVT1_RNW) | (uint64_t)class << EVT1_CLASS_SHIFT;
        rec[2] = iova;
        if (event == SMMUV3_EVT_F_WALK_EABT)
            rec[3] = fetch_addr & 0x00FFFFFFFFFFFFF8ull;
    } else if (event == SMMUV3_EVT_F_STE_FETCH) {
        rec[3] = fetch_addr & 0x00FFFFFFFFFFFFF8ull;
    } else if (event == SMMUV3_EVT_F_CD_FETCH) {
        if (m->cfg.qemu_event_queue)
            rec[2] = fetch_addr;
        else
            rec[3] = fetch_addr & 0x00FFFFFFFFFFFFF8ull;
    }
    r.recorded = record_event(m, rec);
    return r;
}

struct smmuv3_model_result smmuv3_model_dma(struct smmuv3_model *m, uint32_t sid, uint64_t iova, bool write)
{
    struct smmuv3_model_result r;
    memset(&r, 0, sizeof r);
    if (!(m->cr0ack & CR0_SMMUEN)) {
        if (!m->cfg.qemu_gbpa && (m->gbpa_effective & GBPA_ABORT))
            return r; /* aborted, no event */
        r.ok = true;
        r.pa = iova;
        return r;
    }
    struct config c;
    struct lookup l = get_config(m, sid, &c, &r.config_from_cache);
    if (l.event)
        return fail(m, r, l.event, sid, iova, write, false, l.fetch_addr, l.record);
    if (c.abort)
        return r; /* STE.Config abort: no event */
    if (c.bypass) {
        if (!m->cfg.qemu_walk && (iova >> m->oas))
            return fail(m, r, SMMUV3_EVT_F_ADDR_SIZE, sid, iova, write, false, 0, true);
        r.ok = true;
        r.pa = iova;
        return r;
    }
    const struct s1cfg *s1 = &c.s1;
    /* The region: VA[55] selects TTB0 or TTB1; the bits above the region must all equal it. */
    unsigned i = (iova >> 55) & 1;
    if (s1->epd[i])
        return fail(m, r, SMMUV3_EVT_F_TRANSLATION, sid, iova, write, s1->priv, 0, s1->record);
    unsigned inputsize = 64 - s1->tsz[i];
    unsigned top = s1->tbi[i] ? 56 : 64;
    uint64_t above = (iova & low_mask(top)) >> inputsize, want = i ? low_mask(top - inputsize) : 0;
    if (above != want)
        return fail(m, r, SMMUV3_EVT_F_TRANSLATION, sid, iova, write, s1->priv, 0, s1->record);
    uint64_t va = i ? (iova | ~low_mask(inputsize)) : (iova & low_mask(inputsize));

    struct tlb_entry *t = tlb_lookup(m, s1->asid, va);
    if (t) {
        r.from_cache = true;
        if (!permitted(m, s1, t->ro, t->user, write))
            return fail(m, r, SMMUV3_EVT_F_PERMISSION, sid, iova, write, s1->priv, 0, s1->record);
        r.ok = true;
        r.pa = t->pa + (va - t->va);
        return r;
    }
    struct walk w = walk(m, s1, i, va, write);
    if (w.cache)
        tlb_insert(m, &w.t);
    if (w.event)
        return fail(m, r, w.event, sid, iova, write, s1->priv, w.fetch_addr,
                    w.event == SMMUV3_EVT_F_WALK_EABT || s1->record);
    r.ok = true;
    r.pa = w.t.pa + (va - w.t.va);
    return r;
}

/* ---- Invalidation --------------------------------------------------------------------------- */

static void apply_inv(struct smmuv3_model *m, const struct inv_op *op)
{
    bool qemu = m->cfg.qemu_invalidation;
    switch (op->kind) {
    case INV_STE:
    case INV_STE_RANGE:
        for (size_t i = 0; i < m->cfgs.len; i++) {
            struct cfg_entry *e = dyn_at(&m->cfgs, i);
            if (e->sid >= op->sid_lo && e->sid <= op->sid_hi)
                e->has_ste = e->has_cd = false; /* and the CDs fetched through it */
        }
        if (op->kind == INV_STE_RANGE || !op->leaf || !two_level(m)) {
            unsigned s = split(m);
            l1_invalidate(m, s >= 32 ? 0 : op->sid_lo >> s, s >= 32 ? 0 : op->sid_hi >> s);
        }
        if (op->kind == INV_STE_RANGE && op->sid_lo == 0 && op->sid_hi == UINT32_MAX)
            m->cfgi_all_done = true;
        break;
    case INV_CD:
    case INV_CD_ALL:
        for (size_t i = 0; i < m->cfgs.len; i++) {
            struct cfg_entry *e = dyn_at(&m->cfgs, i);
            if (e->sid == op->sid_lo) {
                e->has_cd = false;
                if (qemu)
                    e->has_ste = false;
            }
        }
        break;
    case INV_TLB_ALL:
        m->tlb.len = 0;
        m->tlbi_all_done = true;
        break;
    case INV_TLB_ASID:
        for (size_t i = m->tlb.len; i-- > 0;) {
            struct tlb_entry *e = dyn_at(&m->tlb, i);
            if (e->asid == op->asid && !e->global)
                dyn_remove(&m->tlb, i);
        }
        break;
    case INV_TLB_VA:
        for (size_t i = m->tlb.len; i-- > 0;) {
            struct tlb_entry *e = dyn_at(&m->tlb, i);
            if (!op->any_asid && !e->global && e->asid != op->asid)
                continue;
            bool hit;
            if (op->by_range && !qemu) {
                /* Only entries of the 4 KiB granule (all of them here) at level ttl, if given. */
                hit = (!op->ttl || e->level == op->ttl) && e->va < op->va_hi && op->va_lo < e->va + (1ull << e->shift);
            } else if (op->by_range) {
                hit = e->va < op->va_hi && op->va_lo < e->va + (1ull << e->shift);
            } else {
                hit = op->va_lo - e->va < (1ull << e->shift);
            }
            if (hit)
                dyn_remove(&m->tlb, i);
        }
        break;
    }
    cfg_drop_empty(m);
}

static void queue_inv(struct smmuv3_model *m, const struct inv_op *op)
{
    struct inv_op *p;
    if (m->cfg.qemu_invalidation || (p = dyn_push(&m->pending)) == NULL) {
        apply_inv(m, op); /* completing early is always allowed */
        return;
    }
    *p = *op;
}

static void complete_pending(struct smmuv3_model *m)
{
    for (size_t i = 0; i < m->pending.len; i++)
        apply_inv(m, dyn_at(&m->pending, i));
    m->pending.len = 0;
}

/* ---- Commands -------------------------------------------------------------------------------- */

/* Reserved fields set: misuse; CERROR_ILL unless the unit ignores them (QEMU). */
static int reserved(struct smmuv3_model *m, uint8_t op, const uint64_t c[2], uint64_t res0, uint64_t res1)
{
    if (!(c[0] & res0) && !(c[1] & res1))
        return 0;
    misuse(m, "command 0x%02x has reserved bits set: 0x%016llx 0x%016llx", op, (unsigned long long)c[0],
           (unsigned long long)c[1]);
    return m->cfg.qemu_commands ? 0 : CERROR_ILL;
}

/* A command the unit does not have: CERROR_ILL, except that QEMU takes it as a no-op. */
static int absent(struct smmuv3_model *m, uint8_t op, const char *why)
{
    if (!m->cfg.qemu_commands)
        return CERROR_ILL;
    misuse(m, "command 0x%02x accepted as a no-op by QEMU, but the unit has no %s (CERROR_ILL)", op, why);
    return 0;
}

static bool sid_in_range(struct smmuv3_model *m, uint32_t sid, uint8_t op)
{
    if (m->sid_bits >= 32 || !(sid >> m->sid_bits))
        return true;
    misuse(m, "command 0x%02x: StreamID 0x%x beyond SIDSIZE (no effect)", op, sid);
    return false;
}

static int tlbi_va(struct smmuv3_model *m, uint8_t op, const uint64_t c[2])
{
    bool ril = (m->cfg.idr[3] & IDR3_RIL) != 0;
    uint64_t res0 = 0xF00ull | 7ull << 17 | 0x7Full << 25, res1 = 0xFEull;
    if (!ril) {
        res0 |= 0x1Full << 12 | 0x1Full << 20;
        res1 |= 0xF00ull;
    }
    if (op == CMD_TLBI_NH_VAA)
        res0 |= 0xFFFFull << 48;
    int err = reserved(m, op, c, res0, res1);
    if (err)
        return err;
    unsigned num = (c[0] >> 12) & 0x1F, scale = (c[0] >> 20) & 0x1F, ttl = (c[1] >> 8) & 3, tg = (c[1] >> 10) & 3;
    struct inv_op inv = {.kind = INV_TLB_VA, .any_asid = op == CMD_TLBI_NH_VAA, .asid = (uint16_t)(c[0] >> 48),
                         .leaf = c[1] & 1};
    /* The address is a VA[63:12]; VA[55] extends into the top byte as in a canonical VA. */
    uint64_t va = c[1] & ~0xFFFull;
    va = (va & low_mask(56)) | ((va >> 55) & 1 ? ~low_mask(56) : 0);
    inv.va_lo = va;
    if (tg && ril) {
        if (!num && !scale && !ttl) {
            if (!m->cfg.qemu_commands)
                return CERROR_ILL;
            misuse(m, "TLBI with TG but no range or TTL is reserved (CERROR_ILL)");
        }
        unsigned granule = tg == 1 ? 12 : tg == 2 ? 14 : 16;
        inv.by_range = true;
        inv.ttl = ttl;
        inv.va_hi = va + ((uint64_t)(num + 1) << scale << granule);
        if (tg != 1 && !m->cfg.qemu_invalidation)
            return 0; /* only entries of that granule are affected: none here */
    }
    queue_inv(m, &inv);
    return 0;
}

static int execute(struct smmuv3_model *m, const uint64_t c[2])
{
    uint8_t op = (uint8_t)c[0];
    uint32_t idr0 = m->cfg.idr[0];
    int err;
    struct inv_op inv;
    memset(&inv, 0, sizeof inv);
    switch (op) {
    case CMD_PREFETCH_CONFIG:
    case CMD_PREFETCH_ADDR:
        if (c[0] & CMD_SSEC)
            return CERROR_ILL;
        if (op == CMD_PREFETCH_CONFIG && (err = reserved(m, op, c, 0x300ull, ~0ull)) != 0)
            return err;
        m->stats.prefetch++;
        /* A prefetch may fill the configuration cache, so later changes need invalidation. */
        if (op == CMD_PREFETCH_CONFIG && !m->cfg.qemu_invalidation && (m->cr0ack & CR0_SMMUEN)) {
            struct config cfg;
            bool cached;
            struct smmuv3_model_stats before = m->stats;
            get_config(m, CMD_SID(c[0]), &cfg, &cached);
            m->stats.misuse = before.misuse; /* reported when a transaction uses it */
            memcpy(m->stats.last_misuse, before.last_misuse, sizeof before.last_misuse);
        }
        return 0;
    case CMD_CFGI_STE:
    case CMD_CFGI_STE_RANGE:
    case CMD_CFGI_CD:
    case CMD_CFGI_CD_ALL: {
        if (c[0] & CMD_SSEC)
            return CERROR_ILL;
        uint64_t res0 = op == CMD_CFGI_CD ? 0x800ull | 0x300ull : 0xFFFFF800ull | 0x300ull;
        uint64_t res1 = op == CMD_CFGI_STE_RANGE ? ~0x1Full : op == CMD_CFGI_CD_ALL ? ~0ull : ~1ull;
        if ((err = reserved(m, op, c, res0, res1)) != 0)
            return err;
        m->stats.cfgi++;
        uint32_t sid = CMD_SID(c[0]);
        if (op == CMD_CFGI_STE_RANGE) {
            unsigned range = c[1] & 0x1F;
            uint64_t mask = low_mask(range + 1);
            inv.kind = INV_STE_RANGE;
            inv.sid_lo = (uint32_t)(sid & ~mask);
            inv.sid_hi = (uint32_t)((sid & ~mask) + mask);
            queue_inv(m, &inv);
            return 0;
        }
        if (!sid_in_range(m, sid, op))
            return 0;
        inv.sid_lo = inv.sid_hi = sid;
        inv.leaf = c[1] & 1;
        if (op == CMD_CFGI_CD) {
            uint32_t ssid = (uint32_t)(c[0] >> 12) & 0xFFFFF;
            if (ssid >> IDR1_SSIDSIZE(m->cfg.idr[1])) {
                misuse(m, "CFGI_CD SubstreamID %u beyond SSIDSIZE (no effect)", ssid);
                if (!m->cfg.qemu_invalidation)
                    return 0;
            }
            inv.kind = INV_CD;
        } else {
            inv.kind = op == CMD_CFGI_STE ? INV_STE : INV_CD_ALL;
        }
        queue_inv(m, &inv);
        return 0;
    }
    case CMD_TLBI_NH_ALL:
    case CMD_TLBI_NH_ASID:
    case CMD_TLBI_NSNH_ALL:
        if ((err = reserved(m, op, c,
                            op == CMD_TLBI_NSNH_ALL  ? ~0xFFull
                            : op == CMD_TLBI_NH_ALL  ? 0xFFFFFF00ull | 0xFFFFull << 48
                                                     : 0xFFFFFF00ull,
                            ~0ull)) != 0)
            return err;
        m->stats.tlbi++;
        inv.kind = op == CMD_TLBI_NH_ASID ? INV_TLB_ASID : INV_TLB_ALL;
        inv.asid = (uint16_t)(c[0] >> 48);
        queue_inv(m, &inv);
        return 0;
    case CMD_TLBI_NH_VA:
    case CMD_TLBI_NH_VAA:
        if ((err = tlbi_va(m, op, c)) != 0)
            return err;
        m->stats.tlbi++;
        return 0;
    case CMD_TLBI_EL2_ALL:
    case CMD_TLBI_EL2_ASID:
    case CMD_TLBI_EL2_VA:
    case CMD_TLBI_EL2_VAA:
        if (!(idr0 & IDR0_HYP) && (err = absent(m, op, "Hyp (IDR0.HYP = 0)")) != 0)
            return err;
        m->stats.tlbi++; /* no EL2 translations are modelled: nothing to remove */
        return 0;
    case CMD_TLBI_EL3_ALL:
    case CMD_TLBI_EL3_VA:
        if ((err = absent(m, op, "EL3 commands on the non-secure queue")) != 0)
            return err;
        m->stats.tlbi++;
        return 0;
    case CMD_TLBI_S12_VMALL:
    case CMD_TLBI_S2_IPA:
        if ((err = absent(m, op, "stage 2 (IDR0.S2P = 0)")) != 0)
            return err;
        m->stats.tlbi++;
        return 0;
    case CMD_ATC_INV:
        return absent(m, op, "ATS (IDR0.ATS = 0)");
    case CMD_PRI_RESP:
        return absent(m, op, "PRI (IDR0.PRI = 0)");
    case CMD_RESUME:
    case CMD_STALL_TERM:
        return absent(m, op, "stall model (IDR0.STALL_MODEL = 1)");
    case CMD_SYNC: {
        unsigned cs = (c[0] >> 12) & 3;
        bool msi = (idr0 & IDR0_MSI) != 0;
        uint64_t res0 = 0xF00ull | 0xFFull << 14 | 0xFull << 28, res1 = 0;
        if (msi)
            res1 = 3ull | 0xFFull << 56; /* without MSIs the MSI fields are IGNORED */
        if ((err = reserved(m, op, c, res0, res1)) != 0)
            return err;
        if (cs == 3) {
            if (!m->cfg.qemu_commands)
                return CERROR_ILL;
            misuse(m, "CMD_SYNC CS 0b11 is reserved (CERROR_ILL); QEMU takes it as SIG_IRQ");
            cs = 1;
        }
        m->stats.syncs++;
        complete_pending(m);
        if (cs == 1) {
            uint64_t addr = c[1] & 0x00FFFFFFFFFFFFFCull;
            if (msi && addr)
                send_msi(m, addr, (uint32_t)(c[0] >> 32), GERROR_MSI_CMDQ_ABT);
            m->stats.wired_irqs++; /* the CMD_SYNC wired interrupt */
        }
        return 0;
    }
    default:
        return CERROR_ILL;
    }
}

static void process_cmdq(struct smmuv3_model *m)
{
    if (!(m->cr0ack & CR0_CMDQEN) || m->stalled || ((m->gerror ^ m->gerrorn) & GERROR_CMDQ_ERR))
        return;
    unsigned log2 = q_log2(m->cmdq_base, m->cmdqs);
    uint32_t wm = q_wrap_mask(log2);
    uint64_t base = q_base(m, m->cmdq_base, log2, 16, m->cfg.qemu_commands);
    while (q_entries(m->cmdq_prod, m->cmdq_cons, log2) != 0) {
        uint64_t c[2];
        int err;
        if (!read_qwords(m, base + (uint64_t)(m->cmdq_cons & ((1u << log2) - 1)) * 16, c, 2))
            err = CERROR_ABT;
        else
            err = execute(m, c);
        if (err) {
            m->cmdq_cons = (m->cmdq_cons & ~CMDQ_CONS_ERR_MASK) | (uint32_t)err << CMDQ_CONS_ERR_SHIFT;
            m->stats.command_errors++;
            gerror_activate(m, GERROR_CMDQ_ERR);
            return; /* CONS stays on the command; nothing more until GERRORN acknowledges */
        }
        m->stats.commands++;
        m->cmdq_cons = (m->cmdq_cons & ~wm) | ((m->cmdq_cons + 1) & wm);
    }
}

void smmuv3_model_stall_commands(struct smmuv3_model *m, bool stall)
{
    m->stalled = stall;
    if (!stall)
        process_cmdq(m);
}

/* ---- Control registers and their acknowledgements ------------------------------------------ */

static void complete_cr0(struct smmuv3_model *m)
{
    uint32_t old = m->cr0ack, now = m->cr0 & CR0_ACKED;
    m->cr0_reads_left = 0;
    m->cr0ack = now;
    uint32_t on = now & ~old;
    if (on & CR0_CMDQEN)
        check_q_alignment(m, "CMDQ", m->cmdq_base, q_log2(m->cmdq_base, m->cmdqs), 16);
    if (on & CR0_EVENTQEN)
        check_q_alignment(m, "EVENTQ", m->eventq_base, q_log2(m->eventq_base, m->eventqs), 32);
    if (on & CR0_SMMUEN) {
        check_strtab_alignment(m);
        if (!m->cfgi_all_done || !m->tlbi_all_done)
            misuse(m, "SMMUEN set before %s completed (CMD_SYNC) since reset: cached state is UNPREDICTABLE",
                   !m->cfgi_all_done ? "CFGI_ALL" : "TLBI_NSNH_ALL");
    }
    process_cmdq(m);
}

static void write_cr0(struct smmuv3_model *m, uint32_t v)
{
    if (v & ~(CR0_ACKED | CR0_PRIQEN))
        misuse(m, "CR0 reserved bits set: 0x%x", v);
    if (m->cr0_reads_left && ((v ^ m->cr0) & (m->cr0 ^ m->cr0ack) & CR0_ACKED)) {
        misuse(m, "CR0 0x%x written while the update to 0x%x was not yet acknowledged in CR0ACK", v, m->cr0);
        complete_cr0(m);
    }
    m->cr0 = v & (CR0_ACKED | CR0_PRIQEN);
    if (m->cfg.ack_delay && (m->cr0 ^ m->cr0ack) & CR0_ACKED)
        m->cr0_reads_left = m->cfg.ack_delay;
    else
        complete_cr0(m);
}

static void complete_irq_ctrl(struct smmuv3_model *m)
{
    m->irq_reads_left = 0;
    m->irq_ctrlack = m->irq_ctrl & (IRQ_GERROR | IRQ_EVENTQ);
}

static void complete_gbpa(struct smmuv3_model *m)
{
    m->gbpa_reads_left = 0;
    m->gbpa &= ~GBPA_UPDATE;
    m->gbpa_effective = m->gbpa;
}

/* A register guarded by an enable: written only while the enable (and its ack) are 0. */
static bool guarded(struct smmuv3_model *m, const char *reg, bool enabled, const char *by)
{
    if (!enabled)
        return false;
    misuse(m, "%s written while %s is 1 (ignored; QEMU takes it)", reg, by);
    return true;
}

static bool cmdq_on(const struct smmuv3_model *m)
{
    return ((m->cr0 | m->cr0ack) & CR0_CMDQEN) != 0;
}

static bool eventq_on(const struct smmuv3_model *m)
{
    return ((m->cr0 | m->cr0ack) & CR0_EVENTQEN) != 0;
}

static bool smmu_on(const struct smmuv3_model *m)
{
    return ((m->cr0 | m->cr0ack) & CR0_SMMUEN) != 0;
}

static void write_strtab_cfg(struct smmuv3_model *m, uint32_t v)
{
    if (guarded(m, "STRTAB_BASE_CFG", smmu_on(m), "SMMUEN"))
        return;
    unsigned fmt = (v >> 16) & 3, sp = (v >> 6) & 0x1F;
    bool st2 = ((m->cfg.idr[0] >> IDR0_ST_LEVEL_SHIFT) & 3) == 1;
    if (v & ~0x307FFu)
        misuse(m, "STRTAB_BASE_CFG reserved bits set: 0x%x", v);
    if (fmt > 1 || (fmt == 1 && !st2))
        misuse(m, "STRTAB_BASE_CFG FMT %u is reserved on this unit (behaves as linear)", fmt);
    else if (fmt == 1 && sp != 6 && sp != 8 && sp != 10)
        misuse(m, "STRTAB_BASE_CFG SPLIT %u is reserved (behaves as 6; QEMU uses it)", sp);
    m->strtab_base_cfg = v & 0x307FFu;
    if (fmt == 1) {
        m->qemu_two_level = true;
        m->qemu_split = sp;
    } else if (m->qemu_two_level && m->cfg.qemu_structures) {
        misuse(m, "STRTAB_BASE_CFG back to linear: QEMU 7.2 keeps using the 2-level format");
    }
}

static void write_prod(struct smmuv3_model *m, uint32_t v)
{
    unsigned log2 = q_log2(m->cmdq_base, m->cmdqs);
    uint32_t wm = q_wrap_mask(log2);
    if (v & ~wm)
        misuse(m, "CMDQ_PROD 0x%x has bits above the wrap bit of a 2^%u-entry queue", v, log2);
    uint32_t now = q_entries(m->cmdq_prod, m->cmdq_cons, log2), next = q_entries(v & wm, m->cmdq_cons, log2);
    bool err = ((m->gerror ^ m->gerrorn) & GERROR_CMDQ_ERR) != 0;
    if (cmdq_on(m)) {
        if (next > (1u << log2))
            misuse(m, "CMDQ_PROD 0x%x is beyond the queue: %u entries after CONS 0x%x in a %u-entry queue", v, next,
                   m->cmdq_cons & wm, 1u << log2);
        else if (next < now && !err)
            misuse(m, "CMDQ_PROD moved backwards from 0x%x to 0x%x", m->cmdq_prod, v & wm);
    }
    m->cmdq_prod = v & wm;
    process_cmdq(m);
}

static void write_eventq_cons(struct smmuv3_model *m, uint32_t v)
{
    unsigned log2 = q_log2(m->eventq_base, m->eventqs);
    uint32_t wm = q_wrap_mask(log2);
    if (v & ~(wm | Q_OVF))
        misuse(m, "EVENTQ_CONS 0x%x has bits above the wrap bit of a 2^%u-entry queue", v, log2);
    uint32_t avail = q_entries(m->eventq_prod, m->eventq_cons, log2);
    uint32_t consumed = q_entries(v & wm, m->eventq_cons, log2);
    if (eventq_on(m) && consumed > avail)
        misuse(m, "EVENTQ_CONS 0x%x passes EVENTQ_PROD 0x%x", v, m->eventq_prod);
    m->eventq_cons = v & (wm | Q_OVF);
}

static void write_gerrorn(struct smmuv3_model *m, uint32_t v)
{
    uint32_t active = m->gerror ^ m->gerrorn, toggled = (m->gerrorn ^ v) & GERROR_DEFINED;
    if (v & ~GERROR_DEFINED)
        misuse(m, "GERRORN reserved bits set: 0x%x", v);
    if (toggled & ~active)
        misuse(m, "GERRORN toggles errors that are not active: 0x%x", toggled & ~active);
    m->gerrorn = v & GERROR_DEFINED;
    if (toggled & active & GERROR_CMDQ_ERR)
        process_cmdq(m); /* the erroneous command (and what follows) is fetched again */
}

/* ---- MMIO ---------------------------------------------------------------------------------- */

static bool is_64bit_reg(uint32_t off)
{
    return off == SMMUV3_GERROR_IRQ_CFG0 || off == SMMUV3_STRTAB_BASE || off == SMMUV3_CMDQ_BASE ||
           off == SMMUV3_EVENTQ_BASE || off == SMMUV3_EVENTQ_IRQ_CFG0;
}

static bool is_32bit_reg(uint32_t off)
{
    switch (off) {
    case SMMUV3_IDR0: case SMMUV3_IDR1: case SMMUV3_IDR2: case SMMUV3_IDR3: case SMMUV3_IDR4: case SMMUV3_IDR5:
    case SMMUV3_IIDR: case SMMUV3_AIDR: case SMMUV3_CR0: case SMMUV3_CR0ACK: case SMMUV3_CR1: case SMMUV3_CR2:
    case SMMUV3_STATUSR: case SMMUV3_GBPA: case SMMUV3_IRQ_CTRL: case SMMUV3_IRQ_CTRLACK: case SMMUV3_GERROR:
    case SMMUV3_GERRORN: case SMMUV3_GERROR_IRQ_CFG1: case SMMUV3_GERROR_IRQ_CFG2: case SMMUV3_STRTAB_BASE_CFG:
    case SMMUV3_CMDQ_PROD: case SMMUV3_CMDQ_CONS: case SMMUV3_EVENTQ_IRQ_CFG1: case SMMUV3_EVENTQ_IRQ_CFG2:
    case SMMUV3_EVENTQ_PROD: case SMMUV3_EVENTQ_CONS:
        return true;
    default:
        return false;
    }
}

/* The register an access at off reaches, or -1 (misuse). Page 1 holds only EVENTQ_PROD/CONS;
 * QEMU aliases the two pages. */
static int64_t resolve(struct smmuv3_model *m, uint32_t off, unsigned width, bool write)
{
    if (off >= SMMUV3_MMIO_SIZE || off % width) {
        misuse(m, "%u-bit %s at 0x%x: %s", width * 8, write ? "write" : "read", off,
               off >= SMMUV3_MMIO_SIZE ? "beyond the two register pages" : "misaligned");
        return -1;
    }
    uint32_t reg = off;
    if (off == 0xA8 || off == 0xAC || (off >= 0x10000 && off != SMMUV3_EVENTQ_PROD && off != SMMUV3_EVENTQ_CONS)) {
        uint32_t alias = off ^ 0x10000;
        misuse(m, "%s at 0x%x: %s", write ? "write" : "read", off,
               off < 0x10000 ? "EVENTQ_PROD/CONS are in page 1 (0x100A8/0x100AC); page 0 is only an optional alias"
                             : "page 1 has only EVENTQ_PROD/CONS");
        if (!m->cfg.qemu_page_alias)
            return -1;
        reg = alias;
    }
    uint32_t base64 = reg & ~7u;
    if (width == 8) {
        if (!is_64bit_reg(reg)) {
            misuse(m, "64-bit %s at 0x%x: not a 64-bit register", write ? "write" : "read", off);
            return -1;
        }
        return reg;
    }
    if (is_32bit_reg(reg) || (is_64bit_reg(base64) && (reg & 3) == 0))
        return reg;
    misuse(m, "%s at 0x%x: no register there", write ? "write" : "read", off);
    return -1;
}

static uint64_t read_reg(struct smmuv3_model *m, uint32_t reg)
{
    switch (reg) {
    case SMMUV3_IDR0: case SMMUV3_IDR1: case SMMUV3_IDR2: case SMMUV3_IDR3: case SMMUV3_IDR4: case SMMUV3_IDR5:
        return m->cfg.idr[reg / 4];
    case SMMUV3_IIDR:
        return m->cfg.iidr;
    case SMMUV3_AIDR:
        return m->cfg.aidr;
    case SMMUV3_CR0:
        return m->cr0;
    case SMMUV3_CR0ACK:
        if (m->cr0_reads_left && --m->cr0_reads_left == 0)
            complete_cr0(m);
        return m->cr0ack;
    case SMMUV3_CR1:
        return m->cr1;
    case SMMUV3_CR2:
        return m->cr2;
    case SMMUV3_STATUSR:
        return 0;
    case SMMUV3_GBPA:
        if (m->cfg.qemu_gbpa)
            return 0;
        if (m->gbpa_reads_left && --m->gbpa_reads_left == 0)
            complete_gbpa(m);
        return m->gbpa;
    case SMMUV3_IRQ_CTRL:
        return m->irq_ctrl;
    case SMMUV3_IRQ_CTRLACK:
        if (m->irq_reads_left && --m->irq_reads_left == 0)
            complete_irq_ctrl(m);
        return m->irq_ctrlack;
    case SMMUV3_GERROR:
        return m->gerror;
    case SMMUV3_GERRORN:
        return m->gerrorn;
    case SMMUV3_GERROR_IRQ_CFG0:
        return m->gerror_irq_cfg0;
    case SMMUV3_GERROR_IRQ_CFG1:
        return m->gerror_irq_cfg1;
    case SMMUV3_GERROR_IRQ_CFG2:
        return m->gerror_irq_cfg2;
    case SMMUV3_STRTAB_BASE:
        return m->strtab_base;
    case SMMUV3_STRTAB_BASE_CFG:
        return m->strtab_base_cfg;
    case SMMUV3_CMDQ_BASE:
        return m->cmdq_base;
    case SMMUV3_CMDQ_PROD:
        return m->cmdq_prod;
    case SMMUV3_CMDQ_CONS:
        return m->cmdq_cons;
    case SMMUV3_EVENTQ_BASE:
        return m->eventq_base;
    case SMMUV3_EVENTQ_PROD:
        return m->eventq_prod;
    case SMMUV3_EVENTQ_CONS:
        return m->eventq_cons;
    case SMMUV3_EVENTQ_IRQ_CFG0:
        return m->eventq_irq_cfg0;
    case SMMUV3_EVENTQ_IRQ_CFG1:
        return m->eventq_irq_cfg1;
    case SMMUV3_EVENTQ_IRQ_CFG2:
        return m->eventq_irq_cfg2;
    default:
        return 0;
    }
}

/* A 64-bit register written in full (mask ~0) or one half (mask of the half). */
static uint64_t merge(uint64_t old, uint64_t v, uint64_t mask)
{
    return (old & ~mask) | (v & mask);
}

static void write_reg(struct smmuv3_model *m, uint32_t reg, uint64_t v, uint64_t mask)
{
    switch (reg) {
    case SMMUV3_CR0:
        write_cr0(m, (uint32_t)v);
        return;
    case SMMUV3_CR1:
        m->cr1 = (uint32_t)v & 0xFFFu;
        return;
    case SMMUV3_CR2:
        m->cr2 = (uint32_t)v & 7u;
        return;
    case SMMUV3_GBPA:
        if (m->cfg.qemu_gbpa)
            return;
        if (!(v & GBPA_UPDATE)) {
            misuse(m, "GBPA 0x%x written without Update (ignored)", (uint32_t)v);
            return;
        }
        if (m->gbpa & GBPA_UPDATE) {
            misuse(m, "GBPA written while an update is in progress (ignored)");
            return;
        }
        m->gbpa = ((uint32_t)v & GBPA_FIELDS) | GBPA_UPDATE;
        if (m->cfg.ack_delay)
            m->gbpa_reads_left = m->cfg.ack_delay;
        else
            complete_gbpa(m);
        return;
    case SMMUV3_IRQ_CTRL:
        if (m->irq_reads_left && (((uint32_t)v ^ m->irq_ctrl) & (m->irq_ctrl ^ m->irq_ctrlack))) {
            misuse(m, "IRQ_CTRL changed before IRQ_CTRLACK acknowledged the previous update");
            complete_irq_ctrl(m);
        }
        m->irq_ctrl = (uint32_t)v & (IRQ_GERROR | IRQ_PRIQ | IRQ_EVENTQ);
        if (m->cfg.ack_delay && ((m->irq_ctrl ^ m->irq_ctrlack) & (IRQ_GERROR | IRQ_EVENTQ)))
            m->irq_reads_left = m->cfg.ack_delay;
        else
            complete_irq_ctrl(m);
        return;
    case SMMUV3_GERRORN:
        write_gerrorn(m, (uint32_t)v);
        return;
    case SMMUV3_GERROR_IRQ_CFG0:
        if (!guarded(m, "GERROR_IRQ_CFG0", (m->irq_ctrl | m->irq_ctrlack) & IRQ_GERROR, "IRQ_CTRL.GERROR_IRQEN"))
            m->gerror_irq_cfg0 = merge(m->gerror_irq_cfg0, v, mask) & IRQ_CFG0_ADDR;
        return;
    case SMMUV3_GERROR_IRQ_CFG1:
        if (!guarded(m, "GERROR_IRQ_CFG1", (m->irq_ctrl | m->irq_ctrlack) & IRQ_GERROR, "IRQ_CTRL.GERROR_IRQEN"))
            m->gerror_irq_cfg1 = (uint32_t)v;
        return;
    case SMMUV3_GERROR_IRQ_CFG2:
        if (!guarded(m, "GERROR_IRQ_CFG2", (m->irq_ctrl | m->irq_ctrlack) & IRQ_GERROR, "IRQ_CTRL.GERROR_IRQEN"))
            m->gerror_irq_cfg2 = (uint32_t)v & 0x3F;
        return;
    case SMMUV3_EVENTQ_IRQ_CFG0:
        if (!guarded(m, "EVENTQ_IRQ_CFG0", (m->irq_ctrl | m->irq_ctrlack) & IRQ_EVENTQ, "IRQ_CTRL.EVENTQ_IRQEN"))
            m->eventq_irq_cfg0 = merge(m->eventq_irq_cfg0, v, mask) & IRQ_CFG0_ADDR;
        return;
    case SMMUV3_EVENTQ_IRQ_CFG1:
        if (!guarded(m, "EVENTQ_IRQ_CFG1", (m->irq_ctrl | m->irq_ctrlack) & IRQ_EVENTQ, "IRQ_CTRL.EVENTQ_IRQEN"))
            m->eventq_irq_cfg1 = (uint32_t)v;
        return;
    case SMMUV3_EVENTQ_IRQ_CFG2:
        if (!guarded(m, "EVENTQ_IRQ_CFG2", (m->irq_ctrl | m->irq_ctrlack) & IRQ_EVENTQ, "IRQ_CTRL.EVENTQ_IRQEN"))
            m->eventq_irq_cfg2 = (uint32_t)v & 0x3F;
        return;
    case SMMUV3_STRTAB_BASE:
        if (guarded(m, "STRTAB_BASE", smmu_on(m), "SMMUEN"))
            return;
        if (v & mask & ~STRTAB_BASE_WRITABLE)
            misuse(m, "STRTAB_BASE reserved bits set: 0x%llx", (unsigned long long)(v & mask));
        m->strtab_base = merge(m->strtab_base, v, mask) & STRTAB_BASE_WRITABLE;
        return;
    case SMMUV3_STRTAB_BASE_CFG:
        write_strtab_cfg(m, (uint32_t)v);
        return;
    case SMMUV3_CMDQ_BASE:
        if (guarded(m, "CMDQ_BASE", cmdq_on(m), "CMDQEN"))
            return;
        if (v & mask & ~Q_BASE_WRITABLE)
            misuse(m, "CMDQ_BASE reserved bits set: 0x%llx", (unsigned long long)(v & mask));
        m->cmdq_base = merge(m->cmdq_base, v, mask) & Q_BASE_WRITABLE;
        return;
    case SMMUV3_CMDQ_PROD:
        write_prod(m, (uint32_t)v);
        return;
    case SMMUV3_CMDQ_CONS:
        if (guarded(m, "CMDQ_CONS", cmdq_on(m), "CMDQEN"))
            return;
        m->cmdq_cons = (m->cmdq_cons & CMDQ_CONS_ERR_MASK) |
                       ((uint32_t)v & q_wrap_mask(q_log2(m->cmdq_base, m->cmdqs)));
        return;
    case SMMUV3_EVENTQ_BASE:
        if (guarded(m, "EVENTQ_BASE", eventq_on(m), "EVENTQEN"))
            return;
        if (v & mask & ~Q_BASE_WRITABLE)
            misuse(m, "EVENTQ_BASE reserved bits set: 0x%llx", (unsigned long long)(v & mask));
        m->eventq_base = merge(m->eventq_base, v, mask) & Q_BASE_WRITABLE;
        return;
    case SMMUV3_EVENTQ_PROD:
        if (guarded(m, "EVENTQ_PROD", eventq_on(m), "EVENTQEN"))
            return;
        m->eventq_prod = (uint32_t)v & (Q_OVF | q_wrap_mask(q_log2(m->eventq_base, m->eventqs)));
        return;
    case SMMUV3_EVENTQ_CONS:
        write_eventq_cons(m, (uint32_t)v);
        return;
    default:
        misuse(m, "write of 0x%llx to the read-only register at 0x%x (ignored)", (unsigned long long)v, reg);
        return;
    }
}

uint32_t smmuv3_model_read32(struct smmuv3_model *m, uint32_t off)
{
    int64_t reg = resolve(m, off, 4, false);
    if (reg < 0)
        return 0;
    if (is_64bit_reg((uint32_t)reg & ~7u) && !is_32bit_reg((uint32_t)reg))
        return (uint32_t)(read_reg(m, (uint32_t)reg & ~7u) >> (reg & 4 ? 32 : 0));
    return (uint32_t)read_reg(m, (uint32_t)reg);
}

uint64_t smmuv3_model_read64(struct smmuv3_model *m, uint32_t off)
{
    int64_t reg = resolve(m, off, 8, false);
    return reg < 0 ? 0 : read_reg(m, (uint32_t)reg);
}

void smmuv3_model_write32(struct smmuv3_model *m, uint32_t off, uint32_t v)
{
    int64_t reg = resolve(m, off, 4, true);
    if (reg < 0)
        return;
    if (is_64bit_reg((uint32_t)reg & ~7u) && !is_32bit_reg((uint32_t)reg)) {
        unsigned shift = reg & 4 ? 32 : 0;
        write_reg(m, (uint32_t)reg & ~7u, (uint64_t)v << shift, 0xFFFFFFFFull << shift);
        return;
    }
    write_reg(m, (uint32_t)reg, v, 0xFFFFFFFFull);
}

void smmuv3_model_write64(struct smmuv3_model *m, uint32_t off, uint64_t v)
{
    int64_t reg = resolve(m, off, 8, true);
    if (reg >= 0)
        write_reg(m, (uint32_t)reg, v, ~0ull);
}

/* ---- Creation -------------------------------------------------------------------------------- */

struct smmuv3_model_config smmuv3_model_config_spec(void)
{
    struct smmuv3_model_config c;
    memset(&c, 0, sizeof c);
    c.idr[0] = 0x0D40101Au;
    c.idr[1] = 0x02730010u;
    c.idr[3] = 0x1404u;
    c.idr[5] = 0x74u;
    c.aidr = 1;
    return c;
}

struct smmuv3_model_config smmuv3_model_config_qemu(void)
{
    struct smmuv3_model_config c = smmuv3_model_config_spec();
    c.qemu_gbpa = c.qemu_page_alias = c.qemu_invalidation = c.qemu_walk = true;
    c.qemu_commands = c.qemu_structures = c.qemu_event_queue = true;
    return c;
}

struct smmuv3_model *smmuv3_model_create(const struct smmuv3_model_config *cfg, const struct smmuv3_model_memory *mem)
{
    uint32_t idr0 = cfg->idr[0], idr1 = cfg->idr[1];
    if (!mem || !mem->read || !mem->write)
        return NULL;
    if ((idr0 & IDR0_S2P) || !(idr0 & IDR0_S1P) || !(idr0 & IDR0_TTF_AA64) || !(cfg->idr[5] & IDR5_GRAN4K))
        return NULL;
    if ((idr0 >> IDR0_HTTU_SHIFT) & 3 || (idr0 & (IDR0_ATS | IDR0_PRI)) || ((idr0 >> IDR0_STALL_SHIFT) & 3) != 1)
        return NULL;
    if (((idr0 >> IDR0_TTENDIAN_SHIFT) & 3) == 3 || ((idr0 >> IDR0_ST_LEVEL_SHIFT) & 3) > 1)
        return NULL;
    if (IDR1_SIDSIZE(idr1) > 32 || IDR1_CMDQS(idr1) > 19 || IDR1_EVENTQS(idr1) > 19 || IDR1_SSIDSIZE(idr1) > 20 ||
        IDR5_OAS(cfg->idr[5]) > 6)
        return NULL;
    struct smmuv3_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->mem = *mem;
    m->sid_bits = IDR1_SIDSIZE(idr1);
    m->cmdqs = IDR1_CMDQS(idr1);
    m->eventqs = IDR1_EVENTQS(idr1);
    m->oas = oas_bits_table[IDR5_OAS(cfg->idr[5])];
    m->gbpa = m->gbpa_effective = cfg->gbpa_reset & GBPA_FIELDS;
    m->cmdq_base = m->cmdqs;
    m->eventq_base = m->eventqs;
    m->cfgs.size = sizeof(struct cfg_entry);
    m->l1s.size = sizeof(struct l1_entry);
    m->tlb.size = sizeof(struct tlb_entry);
    m->pending.size = sizeof(struct inv_op);
    return m;
}

void smmuv3_model_destroy(struct smmuv3_model *m)
{
    if (!m)
        return;
    free(m->cfgs.items);
    free(m->l1s.items);
    free(m->tlb.items);
    free(m->pending.items);
    free(m);
}

struct smmuv3_model_stats smmuv3_model_stats(const struct smmuv3_model *m)
{
    return m->stats;
}
