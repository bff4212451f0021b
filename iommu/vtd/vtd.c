#include "iommu/vtd.h"
#include "vtd_regs.h"

#include "iommu/poll.h"
#include "iommu/slpt.h"

/* CCMD */
#define CCMD_ICC (1ull << 63)
#define CCMD_GLOBAL (1ull << 61)
#define CCMD_DEVICE (3ull << 61)
/* IOTLB invalidate register (at ECAP.IRO * 16 + 8) and IVA (at ECAP.IRO * 16) */
#define IOTLB_IVT (1ull << 63)
#define IOTLB_GLOBAL (1ull << 60)
#define IOTLB_DOMAIN (2ull << 60)
#define IOTLB_PAGE (3ull << 60)
#define IOTLB_DR (1ull << 49)
#define IOTLB_DW (1ull << 48)
/* Queued invalidation descriptors (lower qword) */
#define QI_CC 0x1ull
#define QI_IOTLB 0x2ull
#define QI_IEC 0x4ull /* interrupt entry cache; granularity bit 4 clear: every entry */
#define QI_WAIT 0x5ull
#define QI_GRAN_GLOBAL (1ull << 4)
#define QI_GRAN_DOMAIN (2ull << 4)
#define QI_GRAN_DEVICE_OR_PAGE (3ull << 4)
#define QI_IOTLB_DR (1ull << 7)
#define QI_IOTLB_DW (1ull << 6)
#define QI_WAIT_SW (1ull << 5) /* status write */
#define QUEUE_ENTRIES 256u     /* IQA.QS = 0: one page */
/* Context entry (legacy mode): low qword present, translation type and the table; high
 * qword address width and domain id. Root entry: present and the context table. */
#define CTX_PRESENT 0x1ull
#define CTX_TT_PASSTHROUGH (2ull << 2)
#define CTX_DID_SHIFT 8
#define ROOT_PRESENT 0x1ull
#define ROOT_CONTEXT_TABLE 0xFFFFFFFFFFFFF000ull /* bits 63:12 */
/* Fault recording register, upper qword */
#define FRCD_F (1ull << 63)
#define FRCD_T_READ (1ull << 62)

static uint32_t rd32(const struct vtd_unit *u, uint32_t off)
{
    return u->plat->mmio_read32(u->plat->ctx, u->unit.register_base + off);
}

static uint64_t rd64(const struct vtd_unit *u, uint32_t off)
{
    return u->plat->mmio_read64(u->plat->ctx, u->unit.register_base + off);
}

static void wr32(const struct vtd_unit *u, uint32_t off, uint32_t v)
{
    u->plat->mmio_write32(u->plat->ctx, u->unit.register_base + off, v);
}

static void wr64(const struct vtd_unit *u, uint32_t off, uint64_t v)
{
    u->plat->mmio_write64(u->plat->ctx, u->unit.register_base + off, v);
}

static void flush(const struct vtd_unit *u, const void *va, size_t len)
{
    if (!u->caps.coherent && u->plat->flush_cache) {
        u->plat->flush_cache(u->plat->ctx, va, len);
        if (u->plat->flush_cache_wait)
            u->plat->flush_cache_wait(u->plat->ctx);
    }
}

static bool poll_expired(struct vtd_unit *u, struct poll_bound *b)
{
    if (!poll_bound_expired(u->plat, b, u->poll_timeout_ns))
        return false;
    u->stats.timeouts++;
    return true;
}

/* Polls a 32-bit (or, when wide, 64-bit) register until (value & mask) == want, within the
 * poll bound. */
static enum iommu_status poll_reg(struct vtd_unit *u, uint32_t off, bool wide, uint64_t mask, uint64_t want)
{
    struct poll_bound b = {0};
    do {
        uint64_t v = wide ? rd64(u, off) : rd32(u, off);
        if ((v & mask) == want)
            return IOMMU_OK;
    } while (!poll_expired(u, &b));
    return IOMMU_ETIMEDOUT;
}

/* Sets or clears one GCMD enable and waits for its GSTS status bit. */
static enum iommu_status gcmd(struct vtd_unit *u, uint32_t cmd, bool on, uint32_t status)
{
    uint32_t persistent = rd32(u, VTD_REG_GSTS) & VTD_GSTS_PERSISTENT;
    wr32(u, VTD_REG_GCMD, on ? persistent | cmd : persistent & ~cmd);
    return poll_reg(u, VTD_REG_GSTS, false, status, on ? status : 0);
}

/* One-shot commands (SRTP, WBF): set with the persistent bits; the status bit tells when
 * it is done (RTPS sets, WBFS clears). */
static enum iommu_status gcmd_oneshot(struct vtd_unit *u, uint32_t cmd, uint32_t status, bool done_when_set)
{
    uint32_t persistent = rd32(u, VTD_REG_GSTS) & VTD_GSTS_PERSISTENT;
    wr32(u, VTD_REG_GCMD, persistent | cmd);
    return poll_reg(u, VTD_REG_GSTS, false, status, done_when_set ? status : 0);
}

static enum iommu_status flush_write_buffer(struct vtd_unit *u)
{
    return u->caps.rwbf ? gcmd_oneshot(u, VTD_GCMD_WBF, VTD_GSTS_WBFS, false) : IOMMU_OK;
}

static const char *const reason_names[] = {
    [0x1] = "root entry not present",
    [0x2] = "context entry not present",
    [0x3] = "invalid context entry",
    [0x4] = "address beyond the address width",
    [0x5] = "write not permitted (entry not present or read-only)",
    [0x6] = "read not permitted (entry not present)",
    [0x7] = "paging entry could not be read",
    [0x8] = "root table could not be read",
    [0x9] = "context table could not be read",
    [0xa] = "reserved bits in root entry",
    [0xb] = "reserved bits in context entry",
    [0xc] = "reserved bits in paging entry",
    [0xd] = "translation type blocked",
};

const char *vtd_fault_reason_name(uint8_t reason)
{
    if (reason < sizeof reason_names / sizeof reason_names[0] && reason_names[reason])
        return reason_names[reason];
    return "other reason";
}

enum iommu_fault_kind vtd_fault_kind(uint8_t reason)
{
    switch (reason) {
    case 0x4:
        return IOMMU_FAULT_ADDRESS_SIZE;
    case 0x5:
    case 0x6:
        return IOMMU_FAULT_TRANSLATION;
    case 0x7:
    case 0x8:
    case 0x9:
        return IOMMU_FAULT_TABLE;
    default:
        return IOMMU_FAULT_OTHER;
    }
}

unsigned vtd_unit_levels(const struct vtd_unit *u)
{
    for (unsigned levels = 5; levels >= 3; levels--)
        if (vtd_unit_supports_levels(u, levels) && 12 + 9 * levels <= u->caps.mgaw_bits)
            return levels;
    /* MGAW below every supported width (MGAW 39 with 3-level is the smallest real case):
     * use the smallest supported depth; IOVAs are still kept below 2^MGAW by the caller. */
    for (unsigned levels = 3; levels <= 5; levels++)
        if (vtd_unit_supports_levels(u, levels))
            return levels;
    return 0;
}

bool vtd_unit_supports_levels(const struct vtd_unit *u, unsigned levels)
{
    return levels >= 3 && levels <= 5 && (u->caps.sagaw >> (levels - 2)) & 1;
}

enum iommu_status vtd_unit_init(struct vtd_unit *u, const struct platform *plat, struct page_pool *pool,
                                uint64_t base, uint16_t segment, unsigned index)
{
    *u = (struct vtd_unit){.unit = {.ops = &vtd_unit_ops, .name = "vtd", .index = index, .register_base = base,
                                    .segment = segment},
                           .plat = plat, .pool = pool, .poll_timeout_ns = VTD_DEFAULT_POLL_TIMEOUT_NS};
    if (!vtd_caps_read(plat, base, &u->caps))
        return IOMMU_ENODEV;
    /* Registers the driver reaches through offsets the unit reports must lie in its
     * register page(s); a unit that says otherwise is not trusted. */
    uint32_t fault_end = u->caps.fault_reg_offset + 16 * u->caps.fault_regs;
    if (vtd_unit_levels(u) == 0 || u->caps.fault_reg_offset < 0x40 || fault_end > 0x1000 ||
        u->caps.iotlb_reg_offset < 0x40 || u->caps.iotlb_reg_offset + 16 > 0x1000 || u->caps.domains == 0)
        return IOMMU_ENODEV;
    u->unit.superpages = u->caps.sllps & (SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G);
    /* The depths whose tables cover no less than the unit's MGAW asks of them (what
     * vtd_unit_levels picks from). */
    for (unsigned levels = 3; levels <= 5; levels++)
        if (vtd_unit_supports_levels(u, levels) && levels <= vtd_unit_levels(u))
            u->unit.table_levels |= (uint8_t)(1u << levels);
    u->unit.domain_ids = u->caps.domains;
    u->unit.write_back = !u->caps.coherent && plat->flush_cache ? plat : NULL;
    u->queued = u->caps.qi;
    u->root = page_pool_alloc(pool, &u->root_pa);
    if (!u->root)
        return IOMMU_ENOMEM;
    if (u->queued) {
        u->queue = page_pool_alloc(pool, &u->queue_pa);
        u->wait_status = page_pool_alloc(pool, &u->wait_status_pa);
        if (!u->queue || !u->wait_status) {
            if (u->queue)
                page_pool_free(pool, u->queue);
            page_pool_free(pool, u->root);
            return IOMMU_ENOMEM;
        }
    }
    flush(u, u->root, PAGE_SIZE);
    return IOMMU_OK;
}

/* ---- invalidation ---- */

/* A wait descriptor that writes seq to the status dword when the unit reaches it. Status
 * write only: with the interrupt flag as well QEMU 7.2 aborts. */
static void put_wait(struct vtd_unit *u, uint64_t *slot, uint32_t seq, uint64_t status_pa)
{
    slot[0] = QI_WAIT | QI_WAIT_SW | (uint64_t)seq << 32;
    slot[1] = status_pa;
    flush(u, slot, 16);
}

/* Where an injected timeout's wait writes instead: the next 8-byte slot of the status page,
 * which nothing polls. */
#define INJECTED_WAIT_STATUS_OFFSET 8

/* Submits descriptors followed by a wait descriptor with status write, and waits for the
 * status. The queue is drained on every submission, so it never fills. */
static enum iommu_status queue_submit(struct vtd_unit *u, const uint64_t (*desc)[2], unsigned n)
{
    uint32_t seq = ++u->wait_sequence;
    uint64_t status_pa = u->wait_status_pa;
    if (u->inject_wait_timeouts) {
        u->inject_wait_timeouts--;
        status_pa += INJECTED_WAIT_STATUS_OFFSET;
    }
    *u->wait_status = 0;
    flush(u, (const void *)u->wait_status, sizeof *u->wait_status);
    for (unsigned i = 0; i <= n; i++) {
        uint64_t *slot = &u->queue[2 * u->queue_tail];
        if (i < n) {
            slot[0] = desc[i][0];
            slot[1] = desc[i][1];
            flush(u, slot, 16);
        } else {
            put_wait(u, slot, seq, status_pa);
        }
        u->queue_tail = (u->queue_tail + 1) % QUEUE_ENTRIES;
    }
    wr64(u, VTD_REG_IQT, (uint64_t)u->queue_tail << 4);
    bool refused = false;
    struct poll_bound b = {0};
    do {
        if (*u->wait_status == seq) {
            u->stats.waits++;
            return refused ? IOMMU_EHW : IOMMU_OK;
        }
        if (rd32(u, VTD_REG_FSTS) & VTD_FSTS_IQE) {
            /* The unit refused the descriptor at IQH and stopped there. Put the closing
             * wait descriptor in its place, acknowledge, and resume with an IQT write
             * (QEMU resumes on nothing else), so the queue drains; the invalidation that
             * was asked for is reported as failed. */
            u->stats.queue_errors++;
            uint32_t head = (uint32_t)(rd64(u, VTD_REG_IQH) >> 4) % QUEUE_ENTRIES;
            put_wait(u, &u->queue[2 * head], seq, status_pa);
            wr32(u, VTD_REG_FSTS, VTD_FSTS_IQE);
            wr64(u, VTD_REG_IQT, (uint64_t)u->queue_tail << 4);
            refused = true;
        }
    } while (!poll_expired(u, &b));
    return IOMMU_ETIMEDOUT;
}

bool vtd_inject_wait_timeouts(struct vtd_unit *u, uint32_t n)
{
    if (!u->queued)
        return false;
    lock_acquire(&u->lock);
    u->inject_wait_timeouts = n;
    lock_release(&u->lock);
    return true;
}

static enum iommu_status invalidate_context(struct vtd_unit *u, bool global, uint16_t sid, uint16_t did)
{
    if (global)
        u->stats.cc_global++;
    else
        u->stats.cc_device++;
    if (u->queued) {
        const uint64_t d[1][2] = {{QI_CC | (global ? QI_GRAN_GLOBAL : QI_GRAN_DEVICE_OR_PAGE |
                                   (uint64_t)did << 16 | (uint64_t)sid << 32), 0}};
        return queue_submit(u, d, 1);
    }
    wr64(u, VTD_REG_CCMD, CCMD_ICC | (global ? CCMD_GLOBAL : CCMD_DEVICE | (uint64_t)sid << 16 | did));
    return poll_reg(u, VTD_REG_CCMD, true, CCMD_ICC, 0);
}

/* kind: IOTLB_GLOBAL, IOTLB_DOMAIN or IOTLB_PAGE; for pages, 2^am pages at addr. */
static enum iommu_status invalidate_iotlb(struct vtd_unit *u, uint64_t kind, uint16_t did, uint64_t addr,
                                          unsigned am)
{
    if (kind == IOTLB_GLOBAL)
        u->stats.iotlb_global++;
    else if (kind == IOTLB_DOMAIN)
        u->stats.iotlb_domain++;
    else
        u->stats.iotlb_page++;
    if (u->queued) {
        uint64_t gran = kind == IOTLB_GLOBAL ? QI_GRAN_GLOBAL : kind == IOTLB_DOMAIN ? QI_GRAN_DOMAIN
                                                                                     : QI_GRAN_DEVICE_OR_PAGE;
        uint64_t drain = (u->caps.drd ? QI_IOTLB_DR : 0) | (u->caps.dwd ? QI_IOTLB_DW : 0);
        const uint64_t d[1][2] = {{QI_IOTLB | gran | drain | (uint64_t)did << 16,
                                   kind == IOTLB_PAGE ? addr | am : 0}};
        return queue_submit(u, d, 1);
    }
    uint32_t iva = u->caps.iotlb_reg_offset;
    if (kind == IOTLB_PAGE)
        wr64(u, iva, addr | am);
    uint64_t drain = (u->caps.drd ? IOTLB_DR : 0) | (u->caps.dwd ? IOTLB_DW : 0);
    wr64(u, iva + 8, IOTLB_IVT | kind | drain | (kind == IOTLB_GLOBAL ? 0 : (uint64_t)did << 32));
    return poll_reg(u, iva + 8, true, IOTLB_IVT, 0);
}

enum iommu_status vtd_flush_domain(struct vtd_unit *u, uint16_t domain_id)
{
    if (!u->enabled)
        return IOMMU_OK; /* nothing cached yet; enabling invalidates globally */
    lock_acquire(&u->lock);
    enum iommu_status s = invalidate_iotlb(u, IOTLB_DOMAIN, domain_id, 0, 0);
    lock_release(&u->lock);
    return s;
}

enum iommu_status vtd_flush_range(struct vtd_unit *u, uint16_t domain_id, uint64_t first, uint64_t last)
{
    if (!u->enabled)
        return IOMMU_OK;
    if (last < first)
        return IOMMU_EINVAL;
    /* The smallest naturally aligned block of 2^am pages holding [first, last]. */
    uint64_t first_page = first >> PAGE_SHIFT, last_page = last >> PAGE_SHIFT;
    unsigned am = 0;
    while ((first_page >> am) != (last_page >> am))
        am++;
    lock_acquire(&u->lock);
    enum iommu_status s;
    if (!u->caps.psi || am > u->caps.mamv)
        s = invalidate_iotlb(u, IOTLB_DOMAIN, domain_id, 0, 0);
    else
        s = invalidate_iotlb(u, IOTLB_PAGE, domain_id, (first_page >> am << am) << PAGE_SHIFT, am);
    lock_release(&u->lock);
    return s;
}

/* ---- context entries ---- */

static uint64_t *context_entry(const struct vtd_unit *u, uint16_t sid, bool create, enum iommu_status *err)
{
    uint64_t *root = &u->root[2 * (sid >> 8)];
    if (!(*root & ROOT_PRESENT)) {
        if (!create)
            return NULL;
        uint64_t pa;
        uint64_t *table = page_pool_alloc(u->pool, &pa);
        if (!table) {
            *err = IOMMU_ENOMEM;
            return NULL;
        }
        flush(u, table, PAGE_SIZE);
        root[1] = 0;
        root[0] = pa | ROOT_PRESENT;
        flush(u, root, 16);
    }
    uint64_t *table = page_pool_va(u->pool, *root & ROOT_CONTEXT_TABLE);
    return &table[2 * (sid & 0xff)];
}

/* The domain id of a context entry, or -1 when it is not present. */
static int context_domain(const uint64_t *e)
{
    return e && (e[0] & CTX_PRESENT) ? (int)((e[1] >> CTX_DID_SHIFT) & 0xffff) : -1;
}

/* The high qword of a context entry: address width (as levels) and domain id. */
static uint64_t context_high(unsigned levels, uint16_t domain_id)
{
    return (uint64_t)(levels - 2) | (uint64_t)domain_id << CTX_DID_SHIFT;
}

int vtd_context_domain(const struct vtd_unit *u, uint16_t sid)
{
    return context_domain(context_entry(u, sid, false, NULL));
}

/* After a context entry changed: the unit may hold the old entry in its context cache and
 * translations of the old domain in its IOTLB (QEMU looks the IOTLB up before the context
 * entry, so a stale IOTLB entry outlives a context-cache invalidation). */
static enum iommu_status after_context_change(struct vtd_unit *u, uint16_t sid, int old_did, uint16_t new_did)
{
    if (!u->enabled)
        return IOMMU_OK;
    enum iommu_status s = flush_write_buffer(u);
    if (s == IOMMU_OK)
        s = invalidate_context(u, false, sid, old_did >= 0 ? (uint16_t)old_did : new_did);
    if (s == IOMMU_OK && old_did >= 0)
        s = invalidate_iotlb(u, IOTLB_DOMAIN, (uint16_t)old_did, 0, 0);
    return s;
}

static enum iommu_status set_context_locked(struct vtd_unit *u, uint16_t sid, const struct iommu_translation *ctx);

enum iommu_status vtd_set_context(struct vtd_unit *u, uint16_t sid, const struct iommu_translation *ctx)
{
    lock_acquire(&u->lock);
    enum iommu_status s = set_context_locked(u, sid, ctx);
    lock_release(&u->lock);
    return s;
}

static enum iommu_status set_context_locked(struct vtd_unit *u, uint16_t sid, const struct iommu_translation *ctx)
{
    if (ctx->domain_id >= u->caps.domains || (u->caps.cm && ctx->domain_id == 0))
        return IOMMU_EINVAL;
    uint64_t lo, hi;
    if (ctx->type == IOMMU_PASSTHROUGH) {
        if (!u->caps.pt)
            return IOMMU_EINVAL;
        /* AW must name a supported depth even for pass-through (QEMU checks it). */
        lo = CTX_TT_PASSTHROUGH | CTX_PRESENT;
        hi = context_high(vtd_unit_levels(u), ctx->domain_id);
    } else {
        if (!vtd_unit_supports_levels(u, ctx->levels) || (ctx->table_pa & (PAGE_SIZE - 1)) ||
            ctx->table_pa >> u->caps.mgaw_bits)
            return IOMMU_EINVAL;
        lo = ctx->table_pa | CTX_PRESENT;
        hi = context_high(ctx->levels, ctx->domain_id);
    }
    enum iommu_status s = IOMMU_OK;
    uint64_t *e = context_entry(u, sid, true, &s);
    if (!e)
        return s;
    int old_did = context_domain(e);
    if (old_did >= 0) {
        /* Present to present: go through not-present so the unit never sees a mix of the
         * old and the new halves. */
        e[0] = 0;
        flush(u, e, 16);
    }
    e[1] = hi;
    flush(u, e, 16);
    e[0] = lo;
    flush(u, e, 16);
    return after_context_change(u, sid, old_did, ctx->domain_id);
}

enum iommu_status vtd_clear_context(struct vtd_unit *u, uint16_t sid)
{
    lock_acquire(&u->lock);
    enum iommu_status s = IOMMU_OK;
    uint64_t *e = context_entry(u, sid, false, NULL);
    int old_did = context_domain(e);
    if (old_did >= 0) {
        e[0] = 0;
        e[1] = 0;
        flush(u, e, 16);
        s = after_context_change(u, sid, old_did, (uint16_t)old_did);
    }
    lock_release(&u->lock);
    return s;
}

/* ---- enable / disable ---- */

enum iommu_status vtd_unit_enable(struct vtd_unit *u)
{
    enum iommu_status s = IOMMU_OK;
    uint32_t gsts = rd32(u, VTD_REG_GSTS);
    if (gsts & VTD_GSTS_TES)
        s = gcmd(u, VTD_GCMD_TE, false, VTD_GSTS_TES); /* firmware left it on: start clean */
    vtd_drain_faults(u); /* anything recorded before we took over goes into the log */
    lock_acquire(&u->lock);
    if (s == IOMMU_OK)
        s = flush_write_buffer(u);
    if (s == IOMMU_OK) {
        wr64(u, VTD_REG_RTADDR, u->root_pa); /* bits 11:10 = 0: legacy mode */
        s = gcmd_oneshot(u, VTD_GCMD_SRTP, VTD_GSTS_RTPS, true);
    }
    if (s == IOMMU_OK && u->queued && !(rd32(u, VTD_REG_GSTS) & VTD_GSTS_QIES)) {
        /* QEMU keeps a stale IQT after the queue was last disabled: start from 0. */
        u->queue_tail = 0;
        wr64(u, VTD_REG_IQT, 0);
        wr64(u, VTD_REG_IQA, u->queue_pa); /* QS = 0: 256 entries; DW = 0: 128-bit */
        s = gcmd(u, VTD_GCMD_QIE, true, VTD_GSTS_QIES);
    }
    if (s == IOMMU_OK)
        s = invalidate_context(u, true, 0, 0);
    if (s == IOMMU_OK)
        s = invalidate_iotlb(u, IOTLB_GLOBAL, 0, 0, 0);
    if (s == IOMMU_OK)
        s = gcmd(u, VTD_GCMD_TE, true, VTD_GSTS_TES);
    u->enabled = s == IOMMU_OK;
    lock_release(&u->lock);
    return s;
}

enum iommu_status vtd_unit_disable(struct vtd_unit *u)
{
    enum iommu_status s = gcmd(u, VTD_GCMD_TE, false, VTD_GSTS_TES);
    if (s == IOMMU_OK)
        u->enabled = false;
    if (s == IOMMU_OK && u->queued && (rd32(u, VTD_REG_GSTS) & VTD_GSTS_QIES))
        s = gcmd(u, VTD_GCMD_QIE, false, VTD_GSTS_QIES);
    return s;
}

enum iommu_status vtd_enable_interrupt_remapping(struct vtd_unit *u)
{
    if (!u->caps.ir || !u->queued || !u->enabled)
        return IOMMU_ENODEV;
    if (!u->irt) {
        u->irt = page_pool_alloc(u->pool, &u->irt_pa); /* zeroed: no entry present */
        if (!u->irt)
            return IOMMU_ENOMEM;
        /* The table is walked like the others (ECAP.C covers it): its zeroes must be in
         * memory, or a unit that does not snoop reads whatever was there as entries. */
        flush(u, u->irt, PAGE_SIZE);
    }
    lock_acquire(&u->lock);
    /* Size field 7: 2^(7+1) = 256 entries, one page; EIME clear (xAPIC format). */
    wr64(u, VTD_REG_IRTA, u->irt_pa | 7u);
    enum iommu_status s = gcmd_oneshot(u, VTD_GCMD_SIRTP, VTD_GSTS_IRTPS, true);
    if (s == IOMMU_OK) {
        const uint64_t d[1][2] = {{QI_IEC, 0}};
        s = queue_submit(u, d, 1);
    }
    if (s == IOMMU_OK)
        s = gcmd(u, VTD_GCMD_IRE, true, VTD_GSTS_IRES);
    u->interrupts_remapped = s == IOMMU_OK;
    lock_release(&u->lock);
    return s;
}

bool vtd_unit_translating(const struct vtd_unit *u, uint32_t *gsts)
{
    *gsts = rd32(u, VTD_REG_GSTS);
    return *gsts & VTD_GSTS_TES;
}

bool vtd_unit_intact(const struct vtd_unit *u, uint32_t *gsts)
{
    uint32_t g = rd32(u, VTD_REG_GSTS);
    *gsts = g;
    bool ok = (g & VTD_GSTS_TES) && (rd64(u, VTD_REG_RTADDR) & ~0xFFFull) == u->root_pa;
    if (u->queued)
        ok = ok && (g & VTD_GSTS_QIES) && (rd64(u, VTD_REG_IQA) & ~0xFFFull) == u->queue_pa;
    if (u->interrupts_remapped)
        ok = ok && (g & VTD_GSTS_IRES) && !(g & VTD_GSTS_CFIS) && (rd64(u, VTD_REG_IRTA) & ~0xFFFull) == u->irt_pa;
    return ok;
}

/* ---- faults ---- */

unsigned vtd_drain_faults(struct vtd_unit *u)
{
    lock_acquire(&u->lock);
    unsigned drained = 0;
    uint32_t fsts = rd32(u, VTD_REG_FSTS);
    if (fsts & VTD_FSTS_PPF) {
        uint32_t n = u->caps.fault_regs;
        uint32_t index = (fsts >> 8) & 0xff;
        /* Records are written in order from FRI; stop at the first one that is not in use. */
        for (uint32_t k = 0; k < n; k++, index = (index + 1) % n) {
            uint32_t off = u->caps.fault_reg_offset + 16 * (index % n);
            uint64_t hi = rd64(u, off + 8);
            if (!(hi & FRCD_F))
                break;
            uint64_t lo = rd64(u, off);
            struct iommu_fault_record f = {
                .sid = (uint16_t)hi,
                .reason = (uint8_t)(hi >> 32),
                .kind = vtd_fault_kind((uint8_t)(hi >> 32)),
                .write = !(hi & FRCD_T_READ),
                .address = lo & ~(uint64_t)(PAGE_SIZE - 1),
            };
            iommu_fault_log_add(&u->unit.faults, &f);
            wr64(u, off + 8, FRCD_F); /* write 1 to clear */
            drained++;
        }
    }
    if (fsts & VTD_FSTS_PFO)
        u->unit.faults.overflows++;
    /* Clearing PFO and writing FSTS at all lets the unit re-evaluate its interrupt state
     * (QEMU keeps FECTL.IP set until FSTS is written). */
    wr32(u, VTD_REG_FSTS, fsts & VTD_FSTS_PFO);
    lock_release(&u->lock);
    return drained;
}

bool vtd_fault_take(struct vtd_unit *u, struct iommu_fault_record *f)
{
    lock_acquire(&u->lock);
    bool any = iommu_fault_log_take(&u->unit.faults, f);
    lock_release(&u->lock);
    return any;
}

/* ---- the unit interface (iommu/unit.h) ---- */

static struct vtd_unit *vtd_of(struct iommu_unit *u)
{
    return (struct vtd_unit *)u; /* the first member */
}

static enum iommu_status ops_set_translation(struct iommu_unit *u, uint16_t sid, const struct iommu_translation *t)
{
    return t ? vtd_set_context(vtd_of(u), sid, t) : vtd_clear_context(vtd_of(u), sid);
}

static enum iommu_status ops_invalidate_range(struct iommu_unit *u, uint16_t domain_id, uint64_t first, uint64_t last)
{
    return vtd_flush_range(vtd_of(u), domain_id, first, last);
}

static enum iommu_status ops_invalidate_domain(struct iommu_unit *u, uint16_t domain_id)
{
    return vtd_flush_domain(vtd_of(u), domain_id);
}

static unsigned ops_drain_faults(struct iommu_unit *u)
{
    return vtd_drain_faults(vtd_of(u));
}

static bool ops_take_fault(struct iommu_unit *u, struct iommu_fault_record *f)
{
    return vtd_fault_take(vtd_of(u), f);
}

static bool ops_intact(const struct iommu_unit *u, uint32_t *status)
{
    return vtd_unit_intact((const struct vtd_unit *)u, status);
}

static bool ops_inject_wait_timeouts(struct iommu_unit *u, uint32_t n)
{
    return vtd_inject_wait_timeouts(vtd_of(u), n);
}

const struct iommu_unit_ops vtd_unit_ops = {
    .set_translation = ops_set_translation,
    .invalidate_range = ops_invalidate_range,
    .invalidate_domain = ops_invalidate_domain,
    .drain_faults = ops_drain_faults,
    .take_fault = ops_take_fault,
    .fault_reason_name = vtd_fault_reason_name,
    .intact = ops_intact,
    .status_name = "GSTS",
    .inject_wait_timeouts = ops_inject_wait_timeouts,
};
