/* A software model of one Intel VT-d DMA-remapping unit: legacy-mode root and context
 * tables, second-level translation, the context cache and IOTLB, register-based and queued
 * invalidation, primary fault logging. Written from the VT-d specification; the choices
 * it leaves open follow QEMU 7.2 as measured. See docs/vtd-model.md. */
#include "vtd_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets (fixed part of the register file). */
enum {
    REG_VER = 0x00,
    REG_CAP = 0x08,
    REG_ECAP = 0x10,
    REG_GCMD = 0x18,
    REG_GSTS = 0x1C,
    REG_RTADDR = 0x20,
    REG_CCMD = 0x28,
    REG_FSTS = 0x34,
    REG_FECTL = 0x38,
    REG_FEDATA = 0x3C,
    REG_FEADDR = 0x40,
    REG_FEUADDR = 0x44,
    REG_IQH = 0x80,
    REG_IQT = 0x88,
    REG_IQA = 0x90,
    REG_ICS = 0x9C,
    REG_IECTL = 0xA0,
    REG_IEDATA = 0xA4,
    REG_IEADDR = 0xA8,
    REG_IEUADDR = 0xAC,
    REG_FIXED_END = 0xB0, /* IVA/IOTLB and the fault records must lie above this */
    REG_FILE_SIZE = 0x1000,
};

/* GCMD commands and the GSTS status bits at the same positions. */
#define GCMD_TE (1u << 31)
#define GCMD_SRTP (1u << 30)
#define GCMD_QIE (1u << 26)
#define GCMD_IRE (1u << 25)
#define GCMD_SIRTP (1u << 24)
#define GSTS_TES GCMD_TE
#define GSTS_RTPS GCMD_SRTP
#define GSTS_QIES GCMD_QIE
#define GSTS_IRES GCMD_IRE
#define GSTS_IRTPS GCMD_SIRTP

#define RTADDR_TTM (3ull << 10) /* translation table mode: 0 legacy */
#define RTADDR_MASK (~0x3FFull)

#define CCMD_ICC (1ull << 63)
#define CCMD_CAIG_SHIFT 59
#define CCMD_CAIG_MASK (3ull << CCMD_CAIG_SHIFT)
#define CCMD_WRITABLE 0xE0000003FFFFFFFFull /* ICC, CIRG, FM, SID, DID */

#define IOTLB_IVT (1ull << 63)
#define IOTLB_IAIG_SHIFT 57
#define IOTLB_IAIG_MASK (3ull << IOTLB_IAIG_SHIFT)
#define IOTLB_WRITABLE 0xB003FFFF00000000ull /* IVT, IIRG, DR, DW, DID */
#define IVA_WRITABLE (~0xF80ull)             /* ADDR, IH, AM */

#define FSTS_PFO (1u << 0)
#define FSTS_PPF (1u << 1)
#define FSTS_IQE (1u << 4)
#define FSTS_FRI_SHIFT 8
#define FSTS_FRI_MASK (0xFFu << FSTS_FRI_SHIFT)

#define CTL_IM (1u << 31) /* FECTL and IECTL */
#define CTL_IP (1u << 30)
#define ICS_IWC (1u << 0)

#define IQ_OFFSET_MASK 0x7FFF0ull /* IQH/IQT: descriptor index in bits 18:4 */
#define IQA_DW (1ull << 11)
#define IQA_QS_MASK 7ull
#define IQA_WRITABLE (~0x7F8ull)

#define FRCD_F (1ull << 63)
#define FRCD_T_READ (1ull << 62)

/* Second-level paging entries. */
#define SL_R (1ull << 0)
#define SL_W (1ull << 1)
#define SL_PS (1ull << 7)
#define SL_SNP (1ull << 11)
#define SL_TM (1ull << 62)
#define SL_ADDR_MASK 0x000FFFFFFFFFF000ull /* bits 51:12; 61:52 and 63 are ignored */

/* The interrupt address range: requests there are interrupts, not DMA. */
#define INTERRUPT_RANGE_BASE 0xFEE00000ull
#define INTERRUPT_RANGE_LAST 0xFEEFFFFFull

enum fault_reason {
    FR_ROOT_NOT_PRESENT = 0x1,
    FR_CONTEXT_NOT_PRESENT = 0x2,
    FR_CONTEXT_INVALID = 0x3,
    FR_BEYOND_AGAW = 0x4,
    FR_WRITE = 0x5,
    FR_READ = 0x6,
    FR_PAGING_ENTRY_ACCESS = 0x7,
    FR_ROOT_TABLE_ACCESS = 0x8,
    FR_CONTEXT_TABLE_ACCESS = 0x9,
    FR_ROOT_RESERVED = 0xA,
    FR_CONTEXT_RESERVED = 0xB,
    FR_PAGING_ENTRY_RESERVED = 0xC,
    FR_INTERRUPT_ADDRESS = 0xE,
};

enum granularity { GRAN_FAILED = 0, GRAN_GLOBAL = 1, GRAN_DOMAIN = 2, GRAN_SELECTIVE = 3 };

enum descriptor_type {
    DESC_NONE = 0, /* no descriptor processed since QI was enabled */
    DESC_CONTEXT = 0x1,
    DESC_IOTLB = 0x2,
    DESC_DEVICE_IOTLB = 0x3,
    DESC_IEC = 0x4,
    DESC_WAIT = 0x5,
};

#define DESC_CONTEXT_LO_RESERVED 0xFFFC00000000FFC0ull
#define DESC_IOTLB_LO_RESERVED 0xFFFFFFFF0000FF00ull
#define DESC_IOTLB_HI_RESERVED 0xF80ull
#define DESC_WAIT_LO_RESERVED 0xFFFFFF80ull
#define DESC_WAIT_IF (1ull << 4)
#define DESC_WAIT_SW (1ull << 5)

struct context_cache_entry {
    bool valid;
    uint64_t lo, hi;
};

struct iotlb_entry {
    uint16_t sid, did;
    uint64_t iova;       /* aligned to the page size */
    unsigned page_shift; /* 12, 21, 30, ... */
    uint64_t pa;
    uint64_t perm; /* SL_R | SL_W, ANDed over the walk */
    bool fpd;      /* of the context entry it was filled through */
};

struct fault_record {
    uint64_t lo, hi;
};

struct vtd_model {
    struct vtd_model_config cfg;
    struct vtd_model_memory mem;

    /* Decoded CAP/ECAP. */
    unsigned mgaw;     /* bits; also used as the host address width */
    unsigned sagaw;    /* bit n: context AW n supported */
    unsigned sllps;    /* bit n: superpages at level n + 2 */
    unsigned mamv;
    unsigned did_bits;
    unsigned fault_records;
    uint32_t frcd_off, iva_off;

    /* Registers. PPF is not stored: it is computed from the records' F bits. */
    uint32_t gsts;
    uint64_t rtaddr, root_table;
    uint64_t ccmd, iva, iotlb;
    uint32_t fsts, fectl, fedata, feaddr, feuaddr;
    uint32_t ics, iectl, iedata, ieaddr, ieuaddr;
    uint64_t iqh, iqt, iqa;

    uint64_t iq_base; /* latched from IQA when QI is enabled */
    uint32_t iq_entries;
    enum descriptor_type last_descriptor;

    bool stalled;
    bool ccmd_pending, iotlb_pending; /* issued while stalled, completed when the stall ends */

    struct fault_record *records;
    unsigned next_record;

    struct context_cache_entry *context_cache; /* indexed by SID */
    struct iotlb_entry *iotlb_entries;
    size_t iotlb_len, iotlb_cap;

    struct vtd_model_stats stats;
};

static uint64_t bits_above(unsigned width)
{
    return width >= 64 ? 0 : ~0ull << width;
}

static uint64_t merge(uint64_t old, uint64_t v, uint64_t written)
{
    return (old & ~written) | (v & written);
}

static bool more_than_one_bit(uint32_t x)
{
    return (x & (x - 1)) != 0;
}

static void misuse(struct vtd_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void misuse(struct vtd_model *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->stats.last_misuse, sizeof m->stats.last_misuse, fmt, ap);
    va_end(ap);
    m->stats.misuse++;
}

/* Memory is little-endian, like the structures the unit reads. */
static bool read_qwords(struct vtd_model *m, uint64_t pa, uint64_t *out, size_t n)
{
    uint8_t bytes[16];
    if (n > 2 || !m->mem.read(m->mem.ctx, pa, bytes, n * 8))
        return false;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        for (unsigned b = 0; b < 8; b++)
            out[i] |= (uint64_t)bytes[i * 8 + b] << (8 * b);
    }
    return true;
}

static bool write_dword(struct vtd_model *m, uint64_t pa, uint32_t v)
{
    uint8_t bytes[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return m->mem.write(m->mem.ctx, pa, bytes, sizeof bytes);
}

static void send_msi(struct vtd_model *m, uint32_t addr_lo, uint32_t addr_hi, uint32_t data)
{
    if (m->mem.msi)
        m->mem.msi(m->mem.ctx, (uint64_t)addr_hi << 32 | addr_lo, data);
}

/* ---- Fault recording and events ---------------------------------------------------- */

static uint32_t fsts_value(const struct vtd_model *m)
{
    for (unsigned i = 0; i < m->fault_records; i++)
        if (m->records[i].hi & FRCD_F)
            return m->fsts | FSTS_PPF;
    return m->fsts;
}

/* An unmasked pending fault event is sent at once and IP clears; a masked one waits in IP
 * until software clears IM. */
static void deliver_fault_event(struct vtd_model *m)
{
    if ((m->fectl & CTL_IP) && !(m->fectl & CTL_IM)) {
        send_msi(m, m->feaddr, m->feuaddr, m->fedata);
        m->stats.fault_msis++;
        m->fectl &= ~CTL_IP;
    }
}

/* A new fault condition raises an event only when software has serviced the earlier ones:
 * none of PPF, PFO, IQE was set before it. */
static void fault_event(struct vtd_model *m, uint32_t fsts_before)
{
    if (fsts_before & (FSTS_PPF | FSTS_PFO | FSTS_IQE))
        return;
    m->fectl |= CTL_IP;
    deliver_fault_event(m);
}

static void deliver_inv_event(struct vtd_model *m)
{
    if ((m->iectl & CTL_IP) && !(m->iectl & CTL_IM)) {
        send_msi(m, m->ieaddr, m->ieuaddr, m->iedata);
        m->stats.inv_msis++;
        m->iectl &= ~CTL_IP;
    }
}

static bool record_fault(struct vtd_model *m, uint16_t sid, uint64_t addr, bool write, uint8_t reason)
{
    uint32_t before = fsts_value(m);
    if (before & FSTS_PFO) {
        m->stats.faults_overflowed++;
        return false;
    }
    if (m->cfg.compress_same_sid) {
        for (unsigned i = 0; i < m->fault_records; i++) {
            if ((m->records[i].hi & FRCD_F) && (uint16_t)m->records[i].hi == sid) {
                m->stats.faults_compressed++;
                return false;
            }
        }
    }
    struct fault_record *r = &m->records[m->next_record];
    if (r->hi & FRCD_F) {
        /* No event: an occupied record means PPF is already set. */
        m->fsts |= FSTS_PFO;
        m->stats.faults_overflowed++;
        return false;
    }
    r->lo = addr & ~0xFFFull;
    r->hi = FRCD_F | (write ? 0 : FRCD_T_READ) | (uint64_t)reason << 32 | sid;
    if (!(before & FSTS_PPF))
        m->fsts = (m->fsts & ~FSTS_FRI_MASK) | m->next_record << FSTS_FRI_SHIFT;
    m->next_record = (m->next_record + 1) % m->fault_records;
    m->stats.faults_recorded++;
    fault_event(m, before);
    return true;
}

/* Faults the context entry's FPD may suppress. The others (root entry, table access,
 * context reserved bits) are found before a trustworthy context entry exists. */
static bool fault_is_qualified(uint8_t reason)
{
    switch (reason) {
    case FR_CONTEXT_NOT_PRESENT:
    case FR_CONTEXT_INVALID:
    case FR_BEYOND_AGAW:
    case FR_WRITE:
    case FR_READ:
    case FR_PAGING_ENTRY_ACCESS:
    case FR_PAGING_ENTRY_RESERVED:
    case FR_INTERRUPT_ADDRESS:
        return true;
    default:
        return false;
    }
}

static struct vtd_model_result fault(struct vtd_model *m, struct vtd_model_result r, uint16_t sid, uint64_t iova,
                                     bool write, uint8_t reason, bool fpd)
{
    r.ok = false;
    r.reason = reason;
    if (fpd && fault_is_qualified(reason))
        m->stats.faults_suppressed++;
    else
        r.recorded = record_fault(m, sid, iova, write, reason);
    return r;
}

static void iq_error(struct vtd_model *m)
{
    uint32_t before = fsts_value(m);
    m->fsts |= FSTS_IQE;
    fault_event(m, before);
}

/* ---- Caches and their invalidation ------------------------------------------------- */

static uint16_t context_did(uint64_t hi)
{
    return (uint16_t)(hi >> 8);
}

static enum granularity context_invalidate(struct vtd_model *m, enum granularity g, uint16_t did, uint16_t sid,
                                           unsigned fm)
{
    if (g != GRAN_GLOBAL && g != GRAN_DOMAIN && g != GRAN_SELECTIVE)
        return GRAN_FAILED;
    if (g == GRAN_DOMAIN && m->cfg.coarse_context_invalidation)
        g = GRAN_GLOBAL;
    /* FM masks the low bits of the function number: 1 bit 2, 2 bits 2:1, 3 bits 2:0. */
    static const uint16_t fm_sid_mask[4] = {0xFFFF, 0xFFFB, 0xFFF9, 0xFFF8};
    uint16_t sid_mask = fm_sid_mask[fm & 3];
    bool match_did = !m->cfg.coarse_context_invalidation;
    for (unsigned s = 0; s <= 0xFFFF; s++) {
        struct context_cache_entry *e = &m->context_cache[s];
        bool hit = g == GRAN_GLOBAL ||
                   (g == GRAN_DOMAIN && context_did(e->hi) == did) ||
                   (g == GRAN_SELECTIVE && (s & sid_mask) == (sid & sid_mask) &&
                    (!match_did || context_did(e->hi) == did));
        if (hit)
            e->valid = false;
    }
    if (g == GRAN_GLOBAL)
        m->stats.cc_global++;
    else if (g == GRAN_DOMAIN)
        m->stats.cc_domain++;
    else
        m->stats.cc_device++;
    return g;
}

/* Page-selective: every entry of the domain that overlaps the 2^am pages at addr (the low
 * am bits of the page number ignored), superpages that cover the range included. */
static enum granularity iotlb_invalidate(struct vtd_model *m, enum granularity g, uint16_t did, uint64_t addr,
                                         unsigned am)
{
    if (g == GRAN_SELECTIVE && am > m->mamv)
        return GRAN_FAILED;
    if (g == GRAN_SELECTIVE && !((m->cfg.cap >> 39) & 1))
        g = GRAN_DOMAIN; /* no PSI support: the domain is flushed instead, as IAIG reports */
    if (g != GRAN_GLOBAL && g != GRAN_DOMAIN && g != GRAN_SELECTIVE)
        return GRAN_FAILED;
    uint64_t range_mask = bits_above(12 + am);
    uint64_t first = addr & range_mask, last = first + ~range_mask;
    size_t kept = 0;
    for (size_t i = 0; i < m->iotlb_len; i++) {
        const struct iotlb_entry *e = &m->iotlb_entries[i];
        uint64_t e_last = e->iova + ~bits_above(e->page_shift);
        bool hit = g == GRAN_GLOBAL || (e->did == did && (g == GRAN_DOMAIN || (e->iova <= last && first <= e_last)));
        if (!hit)
            m->iotlb_entries[kept++] = *e;
    }
    m->iotlb_len = kept;
    if (g == GRAN_GLOBAL)
        m->stats.iotlb_global++;
    else if (g == GRAN_DOMAIN)
        m->stats.iotlb_domain++;
    else
        m->stats.iotlb_page++;
    return g;
}

/* The oldest matching entry wins when a table change left overlapping ones. */
static const struct iotlb_entry *iotlb_lookup(const struct vtd_model *m, uint16_t sid, uint64_t iova)
{
    for (size_t i = 0; i < m->iotlb_len; i++) {
        const struct iotlb_entry *e = &m->iotlb_entries[i];
        if (e->sid == sid && (iova & bits_above(e->page_shift)) == e->iova)
            return e;
    }
    return NULL;
}

/* Never evicts: a stale entry stays until software invalidates it, which is the strictest
 * behaviour a correct driver must cope with. A failed allocation just leaves it uncached. */
static void iotlb_insert(struct vtd_model *m, const struct iotlb_entry *e)
{
    if (m->iotlb_len == m->iotlb_cap) {
        size_t cap = m->iotlb_cap ? 2 * m->iotlb_cap : 64;
        struct iotlb_entry *grown = realloc(m->iotlb_entries, cap * sizeof *grown);
        if (!grown)
            return;
        m->iotlb_entries = grown;
        m->iotlb_cap = cap;
    }
    m->iotlb_entries[m->iotlb_len++] = *e;
}

/* ---- Translation ------------------------------------------------------------------- */

/* Reads and checks the context entry for sid, in the order of the specification's fault
 * conditions (root present, root reserved, context present, context reserved, AW, TT).
 * Returns 0 or a fault reason; *lo is the context entry's low qword once it was read (its
 * FPD applies to the qualified faults found from then on), else 0. */
static uint8_t fetch_context(struct vtd_model *m, uint16_t sid, uint64_t *lo, uint64_t *hi)
{
    *lo = *hi = 0;
    if (!(m->gsts & GSTS_RTPS))
        return FR_ROOT_NOT_PRESENT; /* no root table latched: no root entry is present */
    uint64_t root[2];
    if (!read_qwords(m, m->root_table + (uint64_t)(sid >> 8) * 16, root, 2))
        return FR_ROOT_TABLE_ACCESS;
    if (!(root[0] & 1))
        return FR_ROOT_NOT_PRESENT;
    if (root[1] || (root[0] & (0xFFEull | bits_above(m->mgaw))))
        return FR_ROOT_RESERVED;
    uint64_t ctx[2];
    if (!read_qwords(m, (root[0] & ~0xFFFull) + (uint64_t)(sid & 0xFF) * 16, ctx, 2))
        return FR_CONTEXT_TABLE_ACCESS;
    *lo = ctx[0];
    *hi = ctx[1];
    if (!(ctx[0] & 1))
        return FR_CONTEXT_NOT_PRESENT;
    uint64_t lo_reserved = 0xFF0ull | bits_above(m->mgaw);
    uint64_t hi_reserved = 0xFFFFFFFFFF000080ull | ((bits_above(m->did_bits) << 8) & 0xFFFF00ull);
    if ((ctx[0] & lo_reserved) || (ctx[1] & hi_reserved))
        return FR_CONTEXT_RESERVED;
    unsigned aw = ctx[1] & 7;
    if (aw > 3 || !((m->sagaw >> aw) & 1))
        return FR_CONTEXT_INVALID;
    unsigned tt = (ctx[0] >> 2) & 3;
    bool dt = (m->cfg.ecap >> 2) & 1, pt = (m->cfg.ecap >> 6) & 1;
    if (tt == 3 || (tt == 1 && !dt) || (tt == 2 && !pt))
        return FR_CONTEXT_INVALID;
    return 0;
}

static uint64_t paging_entry_reserved(const struct vtd_model *m, unsigned level, uint64_t entry)
{
    uint64_t reserved = SL_ADDR_MASK & bits_above(m->mgaw);
    if (!((m->cfg.ecap >> 7) & 1))
        reserved |= SL_SNP;
    if (!((m->cfg.ecap >> 2) & 1))
        reserved |= SL_TM;
    if (level >= 2) {
        if (!((m->sllps >> (level - 2)) & 1))
            reserved |= SL_PS;
        else if (entry & SL_PS)
            reserved |= ~bits_above(12 + 9 * (level - 1)) & ~0xFFFull; /* superpage offset bits */
    }
    return reserved;
}

/* The second-level walk. At every level the entry must grant the access (R for a read, W
 * for a write), checked before its reserved bits, so a non-present entry gives 5 or 6.
 * Returns 0 and the leaf as an IOTLB entry (without sid, did, fpd), or a fault reason. */
static uint8_t walk(struct vtd_model *m, uint64_t ctx_lo, uint64_t ctx_hi, uint64_t iova, bool write,
                    struct iotlb_entry *leaf)
{
    unsigned aw = ctx_hi & 7, levels = aw + 2;
    unsigned agaw = 30 + 9 * aw;
    if (iova & bits_above(agaw < m->mgaw ? agaw : m->mgaw))
        return FR_BEYOND_AGAW;
    uint64_t need = write ? SL_W : SL_R;
    uint64_t table = ctx_lo & ~0xFFFull, perm = SL_R | SL_W;
    for (unsigned level = levels;; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t entry;
        if (!read_qwords(m, table + ((iova >> shift) & 0x1FF) * 8, &entry, 1))
            return level == levels ? FR_CONTEXT_INVALID : FR_PAGING_ENTRY_ACCESS;
        if (!(entry & need))
            return write ? FR_WRITE : FR_READ;
        perm &= entry;
        if (entry & paging_entry_reserved(m, level, entry))
            return FR_PAGING_ENTRY_RESERVED;
        if (level == 1 || (entry & SL_PS)) {
            leaf->page_shift = shift;
            leaf->iova = iova & bits_above(shift);
            leaf->pa = entry & SL_ADDR_MASK & bits_above(shift);
            leaf->perm = perm & (SL_R | SL_W);
            return 0;
        }
        table = entry & SL_ADDR_MASK;
    }
}

static bool in_interrupt_range(uint64_t a)
{
    return a >= INTERRUPT_RANGE_BASE && a <= INTERRUPT_RANGE_LAST;
}

/* The request's output address through a leaf, checked against the interrupt range. */
static struct vtd_model_result through_leaf(struct vtd_model *m, struct vtd_model_result r, uint16_t sid,
                                            uint64_t iova, bool write, const struct iotlb_entry *leaf)
{
    uint64_t pa = leaf->pa | (iova & ~bits_above(leaf->page_shift));
    if (in_interrupt_range(pa))
        return fault(m, r, sid, iova, write, FR_INTERRUPT_ADDRESS, leaf->fpd);
    r.ok = true;
    r.pa = pa;
    return r;
}

struct vtd_model_result vtd_model_dma(struct vtd_model *m, uint16_t sid, uint64_t iova, bool write)
{
    struct vtd_model_result r = {0};
    if (in_interrupt_range(iova)) {
        misuse(m, "DMA from SID 0x%04x to IOVA 0x%llx: that is the interrupt address range, not modelled", sid,
               (unsigned long long)iova);
        return r;
    }
    if (!(m->gsts & GSTS_TES)) {
        r.ok = true;
        r.pa = iova;
        return r;
    }

    const struct iotlb_entry *cached = iotlb_lookup(m, sid, iova);
    if (cached) {
        r.from_cache = true;
        if (!(cached->perm & (write ? SL_W : SL_R))) {
            if (!m->cfg.silent_iotlb_permission_fault)
                return fault(m, r, sid, iova, write, write ? FR_WRITE : FR_READ, cached->fpd);
            r.reason = write ? FR_WRITE : FR_READ;
            m->stats.iotlb_permission_drops++;
            return r;
        }
        return through_leaf(m, r, sid, iova, write, cached);
    }

    struct context_cache_entry *cc = &m->context_cache[sid];
    if (cc->valid) {
        r.context_from_cache = true;
    } else {
        uint64_t lo, hi;
        uint8_t reason = fetch_context(m, sid, &lo, &hi);
        if (reason)
            return fault(m, r, sid, iova, write, reason, (lo >> 1) & 1);
        *cc = (struct context_cache_entry){.valid = true, .lo = lo, .hi = hi};
    }
    bool fpd = (cc->lo >> 1) & 1;

    if (((cc->lo >> 2) & 3) == 2) { /* pass-through: identity, not cached in the IOTLB */
        r.ok = true;
        r.pa = iova;
        return r;
    }
    struct iotlb_entry leaf = {.sid = sid, .did = context_did(cc->hi), .fpd = fpd};
    uint8_t reason = walk(m, cc->lo, cc->hi, iova, write, &leaf);
    if (reason)
        return fault(m, r, sid, iova, write, reason, fpd);
    iotlb_insert(m, &leaf);
    return through_leaf(m, r, sid, iova, write, &leaf);
}

/* ---- Register-based invalidation --------------------------------------------------- */

static void ccmd_complete(struct vtd_model *m)
{
    enum granularity g = (enum granularity)((m->ccmd >> 61) & 3);
    enum granularity done =
        context_invalidate(m, g, (uint16_t)m->ccmd, (uint16_t)(m->ccmd >> 16), (unsigned)(m->ccmd >> 32) & 3);
    m->ccmd = (m->ccmd & ~(CCMD_ICC | CCMD_CAIG_MASK)) | (uint64_t)done << CCMD_CAIG_SHIFT;
    m->ccmd_pending = false;
}

static void iotlb_complete(struct vtd_model *m)
{
    enum granularity g = (enum granularity)((m->iotlb >> 60) & 3);
    enum granularity done =
        iotlb_invalidate(m, g, (uint16_t)(m->iotlb >> 32), m->iva & ~0xFFFull, (unsigned)(m->iva & 0x3F));
    m->iotlb = (m->iotlb & ~(IOTLB_IVT | IOTLB_IAIG_MASK)) | (uint64_t)done << IOTLB_IAIG_SHIFT;
    m->iotlb_pending = false;
}

/* Returns whether a register command just issued should be carried out now. */
static bool register_invalidation_proceeds(struct vtd_model *m, const char *reg, bool *pending)
{
    if (m->gsts & GSTS_QIES) {
        misuse(m, "%s invalidation with queued invalidation enabled%s", reg,
               m->cfg.register_inv_ignored_with_qi ? ": ignored, the busy bit stays set (QEMU)" : "");
        if (m->cfg.register_inv_ignored_with_qi)
            return false;
    }
    if (m->stalled) {
        *pending = true;
        return false;
    }
    return true;
}

/* ---- Queued invalidation ----------------------------------------------------------- */

static bool process_wait(struct vtd_model *m, uint64_t lo, uint64_t hi)
{
    if ((lo & DESC_WAIT_LO_RESERVED) || (hi & 3))
        return false;
    bool sw = lo & DESC_WAIT_SW, irq = lo & DESC_WAIT_IF;
    if (!sw && !irq)
        return false; /* QEMU 7.2 rejects a wait with neither (FN alone included) */
    if (sw && irq)
        misuse(m, "invalidation wait descriptor with both SW and IF (QEMU 7.2 aborts)");
    if (sw && !write_dword(m, hi, (uint32_t)(lo >> 32)))
        return false;
    if (irq && !(m->ics & ICS_IWC)) {
        m->ics |= ICS_IWC;
        m->iectl |= CTL_IP;
        deliver_inv_event(m);
    }
    m->stats.waits++;
    return true;
}

/* Returns false for an invalid descriptor (IQE). */
static bool process_descriptor(struct vtd_model *m, uint64_t lo, uint64_t hi)
{
    enum granularity g = (enum granularity)((lo >> 4) & 3);
    switch (lo & 0xF) {
    case DESC_CONTEXT:
        if (hi || (lo & DESC_CONTEXT_LO_RESERVED))
            return false;
        if (context_invalidate(m, g, (uint16_t)(lo >> 16), (uint16_t)(lo >> 32), (unsigned)(lo >> 48) & 3) ==
            GRAN_FAILED)
            return false;
        break;
    case DESC_IOTLB:
        if ((lo & DESC_IOTLB_LO_RESERVED) || (hi & DESC_IOTLB_HI_RESERVED))
            return false;
        if (iotlb_invalidate(m, g, (uint16_t)(lo >> 16), hi & ~0xFFFull, (unsigned)(hi & 0x3F)) == GRAN_FAILED)
            return false;
        break;
    case DESC_DEVICE_IOTLB:
        if (!((m->cfg.ecap >> 2) & 1))
            return false; /* no device-TLB support (ECAP.DT=0) */
        break;            /* no device TLB is modelled */
    case DESC_IEC:
        break; /* no interrupt entry cache is modelled */
    case DESC_WAIT:
        if (!process_wait(m, lo, hi))
            return false;
        break;
    default:
        return false;
    }
    m->last_descriptor = (enum descriptor_type)(lo & 0xF);
    return true;
}

static void process_queue(struct vtd_model *m)
{
    if (!(m->gsts & GSTS_QIES) || m->stalled || (m->fsts & FSTS_IQE))
        return;
    if ((m->iqt >> 4) >= m->iq_entries) {
        iq_error(m);
        return;
    }
    while (m->iqh != m->iqt) {
        uint64_t desc[2];
        if (!read_qwords(m, m->iq_base + m->iqh, desc, 2) || !process_descriptor(m, desc[0], desc[1])) {
            iq_error(m); /* the head stays on the descriptor that failed */
            return;
        }
        m->iqh = (((m->iqh >> 4) + 1) % m->iq_entries) << 4;
    }
}

static void qie_change(struct vtd_model *m, bool enable)
{
    if (!((m->cfg.ecap >> 1) & 1)) {
        misuse(m, "GCMD.QIE changed but ECAP.QI is 0: ignored");
        return;
    }
    if (enable) {
        m->iq_base = m->iqa & ~0xFFFull;
        m->iq_entries = 1u << ((m->iqa & IQA_QS_MASK) + 8);
        m->last_descriptor = DESC_NONE;
        m->gsts |= GSTS_QIES;
        if (m->iqt != m->iqh) {
            misuse(m, "queued invalidation enabled with IQT 0x%llx != IQH 0x%llx: the descriptors in between are "
                      "processed at once",
                   (unsigned long long)m->iqt, (unsigned long long)m->iqh);
            process_queue(m);
        }
        return;
    }
    /* As QEMU: the queue must be empty and its last descriptor a wait. */
    if (m->iqh != m->iqt || (m->last_descriptor != DESC_NONE && m->last_descriptor != DESC_WAIT)) {
        misuse(m, "queued invalidation disable refused: %s; QIES stays set",
               m->iqh != m->iqt ? "the queue is not empty" : "the last descriptor was not a wait");
        return;
    }
    m->gsts &= ~GSTS_QIES;
    m->iqh = 0; /* IQT keeps its value, as in QEMU */
}

/* ---- GCMD -------------------------------------------------------------------------- */

/* Enable/disable commands act on a change from GSTS, one-shot commands whenever set; the
 * specification allows one command per write. Processing order as QEMU: TE, SRTP, QIE,
 * SIRTP, IRE. */
static void gcmd_write(struct vtd_model *m, uint32_t v)
{
    uint32_t changed = (m->gsts ^ v) & (GCMD_TE | GCMD_QIE | GCMD_IRE);
    uint32_t oneshot = v & (GCMD_SRTP | GCMD_SIRTP);
    if (more_than_one_bit(changed | oneshot))
        misuse(m, "GCMD write 0x%08x with GSTS 0x%08x issues several commands at once", v, m->gsts);
    bool ir = (m->cfg.ecap >> 3) & 1;

    if (changed & GCMD_TE) {
        if ((v & GCMD_TE) && !(m->gsts & GSTS_RTPS))
            misuse(m, "translation enabled without a root table pointer set: every DMA faults (reason 1)");
        m->gsts ^= GSTS_TES;
    }
    if (oneshot & GCMD_SRTP) {
        if (m->rtaddr & RTADDR_TTM)
            misuse(m, "RTADDR translation table mode %llu: only legacy mode (0) is modelled",
                   (unsigned long long)((m->rtaddr & RTADDR_TTM) >> 10));
        m->root_table = m->rtaddr & ~0xFFFull;
        m->gsts |= GSTS_RTPS;
    }
    if (changed & GCMD_QIE)
        qie_change(m, v & GCMD_QIE);
    if ((oneshot & GCMD_SIRTP) && ir)
        m->gsts |= GSTS_IRTPS;
    if ((changed & GCMD_IRE) && ir)
        m->gsts ^= GSTS_IRES;
}

/* ---- Register file ----------------------------------------------------------------- */

static const char *reg32_name(uint32_t off)
{
    switch (off) {
    case REG_VER: return "VER";
    case REG_GCMD: return "GCMD";
    case REG_GSTS: return "GSTS";
    case REG_FSTS: return "FSTS";
    case REG_FECTL: return "FECTL";
    case REG_FEDATA: return "FEDATA";
    case REG_FEADDR: return "FEADDR";
    case REG_FEUADDR: return "FEUADDR";
    case REG_ICS: return "ICS";
    case REG_IECTL: return "IECTL";
    case REG_IEDATA: return "IEDATA";
    case REG_IEADDR: return "IEADDR";
    case REG_IEUADDR: return "IEUADDR";
    default: return NULL;
    }
}

static bool is_reg64(const struct vtd_model *m, uint32_t off)
{
    switch (off) {
    case REG_CAP:
    case REG_ECAP:
    case REG_RTADDR:
    case REG_CCMD:
    case REG_IQH:
    case REG_IQT:
    case REG_IQA:
        return true;
    default:
        return off == m->iva_off || off == m->iva_off + 8 ||
               (off >= m->frcd_off && off < m->frcd_off + 16 * m->fault_records);
    }
}

static uint64_t reg64_read(const struct vtd_model *m, uint32_t off)
{
    switch (off) {
    case REG_CAP: return m->cfg.cap;
    case REG_ECAP: return m->cfg.ecap;
    case REG_RTADDR: return m->rtaddr;
    case REG_CCMD: return m->ccmd;
    case REG_IQH: return m->iqh;
    case REG_IQT: return m->iqt;
    case REG_IQA: return m->iqa;
    default:
        break;
    }
    if (off == m->iva_off)
        return m->iva;
    if (off == m->iva_off + 8)
        return m->iotlb;
    const struct fault_record *r = &m->records[(off - m->frcd_off) / 16];
    return (off & 8) ? r->hi : r->lo;
}

/* A write of the bits in 'written' (one half or both) of a 64-bit register. */
static void reg64_write(struct vtd_model *m, uint32_t off, uint64_t v, uint64_t written)
{
    bool high = written >> 32, low = (uint32_t)written;
    switch (off) {
    case REG_RTADDR:
        m->rtaddr = merge(m->rtaddr, v, written) & RTADDR_MASK;
        return;
    case REG_CCMD:
        if (m->ccmd_pending) {
            misuse(m, "CCMD written while the previous command is still in progress (ICC=1): ignored");
            return;
        }
        m->ccmd = (merge(m->ccmd, v, written) & CCMD_WRITABLE) | (m->ccmd & CCMD_CAIG_MASK);
        if (high && (m->ccmd & CCMD_ICC) && register_invalidation_proceeds(m, "CCMD context-cache", &m->ccmd_pending))
            ccmd_complete(m);
        return;
    case REG_IQT:
        m->iqt = merge(m->iqt, v, written) & IQ_OFFSET_MASK;
        if (low)
            process_queue(m);
        return;
    case REG_IQA:
        m->iqa = merge(m->iqa, v, written) & IQA_WRITABLE;
        if (m->iqa & IQA_DW) {
            misuse(m, "IQA.DW=1: 256-bit descriptors exist only in scalable mode, not modelled; DW kept 0");
            m->iqa &= ~IQA_DW;
        }
        return;
    default:
        break;
    }
    if (off == m->iva_off) {
        m->iva = merge(m->iva, v, written) & IVA_WRITABLE;
    } else if (off == m->iva_off + 8) {
        if (m->iotlb_pending) {
            misuse(m, "IOTLB register written while the previous command is still in progress (IVT=1): ignored");
            return;
        }
        m->iotlb = (merge(m->iotlb, v, written) & IOTLB_WRITABLE) | (m->iotlb & IOTLB_IAIG_MASK);
        if (high && (m->iotlb & IOTLB_IVT) && register_invalidation_proceeds(m, "IOTLB register", &m->iotlb_pending))
            iotlb_complete(m);
    } else if (off >= m->frcd_off && off < m->frcd_off + 16 * m->fault_records) {
        /* F (bit 63 of the high qword) is write-1-to-clear; the rest is read-only. */
        if ((off & 8) && (written & v & FRCD_F))
            m->records[(off - m->frcd_off) / 16].hi &= ~FRCD_F;
    }
    /* CAP, ECAP and IQH are read-only. */
}

static uint32_t reg32_read(const struct vtd_model *m, uint32_t off)
{
    switch (off) {
    case REG_VER: return m->cfg.ver;
    case REG_GSTS: return m->gsts;
    case REG_FSTS: return fsts_value(m);
    case REG_FECTL: return m->fectl;
    case REG_FEDATA: return m->fedata;
    case REG_FEADDR: return m->feaddr;
    case REG_FEUADDR: return m->feuaddr;
    case REG_ICS: return m->ics;
    case REG_IECTL: return m->iectl;
    case REG_IEDATA: return m->iedata;
    case REG_IEADDR: return m->ieaddr;
    case REG_IEUADDR: return m->ieuaddr;
    default: return 0; /* GCMD is write-only; other offsets are not modelled */
    }
}

static void reg32_write(struct vtd_model *m, uint32_t off, uint32_t v)
{
    /* With EIM the data and upper address registers widen to 32 bits (x2APIC format). */
    bool eim = (m->cfg.ecap >> 4) & 1;
    uint32_t data_mask = eim ? 0xFFFFFFFFu : 0xFFFFu;
    uint32_t upper_mask = eim ? 0xFFFFFFFFu : 0;
    switch (off) {
    case REG_GCMD:
        gcmd_write(m, v);
        break;
    case REG_FSTS:
        m->fsts &= ~(v & (FSTS_PFO | FSTS_IQE));
        /* As QEMU: IP is re-evaluated on FSTS writes only. */
        if (!(fsts_value(m) & (FSTS_PFO | FSTS_PPF | FSTS_IQE)))
            m->fectl &= ~CTL_IP;
        break;
    case REG_FECTL:
        m->fectl = (m->fectl & CTL_IP) | (v & CTL_IM);
        deliver_fault_event(m);
        break;
    case REG_FEDATA: m->fedata = v & data_mask; break;
    case REG_FEADDR: m->feaddr = v & ~3u; break;
    case REG_FEUADDR: m->feuaddr = v & upper_mask; break;
    case REG_ICS:
        if (v & ICS_IWC) {
            m->ics &= ~ICS_IWC;
            m->iectl &= ~CTL_IP;
        }
        break;
    case REG_IECTL:
        m->iectl = (m->iectl & CTL_IP) | (v & CTL_IM);
        deliver_inv_event(m);
        break;
    case REG_IEDATA: m->iedata = v & data_mask; break;
    case REG_IEADDR: m->ieaddr = v & ~3u; break;
    case REG_IEUADDR: m->ieuaddr = v & upper_mask; break;
    default:
        break; /* read-only or not modelled */
    }
}

static bool access_ok(struct vtd_model *m, uint32_t off, unsigned size, const char *what)
{
    if (off % size == 0 && off <= REG_FILE_SIZE - size)
        return true;
    misuse(m, "%s at offset 0x%x: misaligned or outside the register file, ignored", what, off);
    return false;
}

uint32_t vtd_model_read32(struct vtd_model *m, uint32_t off)
{
    if (!access_ok(m, off, 4, "32-bit read"))
        return 0;
    uint32_t base = off & ~7u;
    if (is_reg64(m, base))
        return (uint32_t)(reg64_read(m, base) >> (off & 4 ? 32 : 0));
    return reg32_read(m, off);
}

uint64_t vtd_model_read64(struct vtd_model *m, uint32_t off)
{
    if (!access_ok(m, off, 8, "64-bit read"))
        return 0;
    if (is_reg64(m, off))
        return reg64_read(m, off);
    return reg32_read(m, off) | (uint64_t)reg32_read(m, off + 4) << 32;
}

void vtd_model_write32(struct vtd_model *m, uint32_t off, uint32_t v)
{
    if (!access_ok(m, off, 4, "32-bit write"))
        return;
    uint32_t base = off & ~7u;
    if (is_reg64(m, base)) {
        unsigned shift = off & 4 ? 32 : 0;
        reg64_write(m, base, (uint64_t)v << shift, 0xFFFFFFFFull << shift);
        return;
    }
    reg32_write(m, off, v);
}

void vtd_model_write64(struct vtd_model *m, uint32_t off, uint64_t v)
{
    if (!access_ok(m, off, 8, "64-bit write"))
        return;
    if (is_reg64(m, off)) {
        reg64_write(m, off, v, ~0ull);
        return;
    }
    const char *name = reg32_name(off) ? reg32_name(off) : reg32_name(off + 4);
    if (name)
        misuse(m, "64-bit write at 0x%x to the 32-bit register %s, ignored (QEMU aborts on FECTL, IECTL, IEADDR)",
               off, name);
}

/* ---- Life cycle -------------------------------------------------------------------- */

void vtd_model_stall_invalidations(struct vtd_model *m, bool stall)
{
    m->stalled = stall;
    if (stall)
        return;
    if (m->ccmd_pending)
        ccmd_complete(m);
    if (m->iotlb_pending)
        iotlb_complete(m);
    process_queue(m);
}

struct vtd_model_stats vtd_model_stats(const struct vtd_model *m)
{
    return m->stats;
}

struct vtd_model_config vtd_model_config_qemu(unsigned aw_bits)
{
    return (struct vtd_model_config){
        .ver = 0x10,
        .cap = aw_bits == 48 ? 0x00D2008C222F0606ull : 0x00D2008C22260206ull,
        .ecap = 0xF00F4Aull,
        .compress_same_sid = true,
        .register_inv_ignored_with_qi = true,
        .silent_iotlb_permission_fault = true,
        .coarse_context_invalidation = true,
    };
}

struct vtd_model *vtd_model_create(const struct vtd_model_config *cfg, const struct vtd_model_memory *mem)
{
    if (!cfg || !mem || !mem->read || !mem->write)
        return NULL;
    uint32_t frcd_off = (uint32_t)((cfg->cap >> 24) & 0x3FF) * 16;
    unsigned fault_records = (unsigned)((cfg->cap >> 40) & 0xFF) + 1;
    uint32_t iva_off = (uint32_t)((cfg->ecap >> 8) & 0x3FF) * 16;
    unsigned sagaw = (cfg->cap >> 8) & 0x1F;
    bool frcd_fits = frcd_off >= REG_FIXED_END && frcd_off + 16 * fault_records <= REG_FILE_SIZE;
    bool iva_fits = iva_off >= REG_FIXED_END && iva_off + 16 <= REG_FILE_SIZE;
    bool apart = iva_off + 16 <= frcd_off || frcd_off + 16 * fault_records <= iva_off;
    if (!frcd_fits || !iva_fits || !apart || !(sagaw & 0xF))
        return NULL;

    struct vtd_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->records = calloc(fault_records, sizeof *m->records);
    m->context_cache = calloc(0x10000, sizeof *m->context_cache);
    if (!m->records || !m->context_cache) {
        vtd_model_destroy(m);
        return NULL;
    }
    m->cfg = *cfg;
    m->mem = *mem;
    m->mgaw = (unsigned)((cfg->cap >> 16) & 0x3F) + 1;
    m->sagaw = sagaw;
    m->sllps = (cfg->cap >> 34) & 0xF;
    m->mamv = (cfg->cap >> 48) & 0x3F;
    unsigned nd = cfg->cap & 7;
    m->did_bits = nd <= 6 ? 4 + 2 * nd : 16;
    m->fault_records = fault_records;
    m->frcd_off = frcd_off;
    m->iva_off = iva_off;
    m->fectl = CTL_IM;
    m->iectl = CTL_IM;
    return m;
}

void vtd_model_destroy(struct vtd_model *m)
{
    if (!m)
        return;
    free(m->records);
    free(m->context_cache);
    free(m->iotlb_entries);
    free(m);
}
