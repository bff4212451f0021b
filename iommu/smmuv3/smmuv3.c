#include "iommu/smmuv3.h"

#include "iommu/poll.h"
#include "iommu/pt_format.h"
#include "iommu/slpt.h"
#include "smmuv3_regs.h"

#define CMDQ_LOG2 8u   /* 256 commands: 4 KiB */
#define EVENTQ_LOG2 7u /* 128 events: 4 KiB */
#define L2_SPLIT 6u    /* 64 STEs of 64 bytes: one page per level-2 table */
#define L2_STES (1u << L2_SPLIT)
#define STATIC_CMDQ_OFFSET 0x2000u
#define STATIC_EVENTQ_OFFSET 0x3000u
/* Invalidating more pages than this one by one costs more than the domain's whole ASID. */
#define TLBI_PAGES_MAX 64u

static const struct iommu_unit_ops smmuv3_ops;

static struct smmuv3_unit *smmuv3_of(struct iommu_unit *u)
{
    return (struct smmuv3_unit *)u;
}

static uint32_t rd32(const struct smmuv3_unit *u, uint32_t off)
{
    return u->plat->mmio_read32(u->plat->ctx, u->unit.register_base + off);
}

static void wr32(const struct smmuv3_unit *u, uint32_t off, uint32_t v)
{
    u->plat->mmio_write32(u->plat->ctx, u->unit.register_base + off, v);
}

static uint64_t rd64(const struct smmuv3_unit *u, uint32_t off)
{
    return u->plat->mmio_read64(u->plat->ctx, u->unit.register_base + off);
}

static void wr64(const struct smmuv3_unit *u, uint32_t off, uint64_t v)
{
    u->plat->mmio_write64(u->plat->ctx, u->unit.register_base + off, v);
}

/* Structures the unit reads must be in memory before it is told about them: written back
 * when the unit does not snoop (IDR0.COHACC = 0). */
static void flush(const struct smmuv3_unit *u, const void *va, size_t len)
{
    if (!u->caps.coherent && u->plat->flush_cache) {
        u->plat->flush_cache(u->plat->ctx, va, len);
        if (u->plat->flush_cache_wait)
            u->plat->flush_cache_wait(u->plat->ctx);
    }
}

static bool poll_expired(struct smmuv3_unit *u, struct poll_bound *b)
{
    if (!poll_bound_expired(u->plat, b, u->poll_timeout_ns))
        return false;
    u->stats.timeouts++;
    return true;
}

static enum iommu_status poll_reg32(struct smmuv3_unit *u, uint32_t off, uint32_t mask, uint32_t want)
{
    struct poll_bound b = {0};
    do {
        if ((rd32(u, off) & mask) == want)
            return IOMMU_OK;
    } while (!poll_expired(u, &b));
    return IOMMU_ETIMEDOUT;
}

/* CR0 takes effect when CR0ACK says so. */
static enum iommu_status write_cr0(struct smmuv3_unit *u, uint32_t v)
{
    wr32(u, SMMU_CR0, v);
    return poll_reg32(u, SMMU_CR0ACK, ~0u, v);
}

/* GBPA changes through its Update handshake. */
static enum iommu_status write_gbpa(struct smmuv3_unit *u, uint32_t v)
{
    enum iommu_status s = poll_reg32(u, SMMU_GBPA, GBPA_UPDATE, 0);
    if (s == IOMMU_OK) {
        wr32(u, SMMU_GBPA, v | GBPA_UPDATE);
        s = poll_reg32(u, SMMU_GBPA, GBPA_UPDATE, 0);
    }
    return s;
}

enum iommu_status smmuv3_unit_init(struct smmuv3_unit *u, const struct platform *plat, struct page_pool *pool,
                                   uint64_t register_base, unsigned index, void *static_va, uint64_t static_pa)
{
    if (!static_va || (static_pa & (SMMUV3_STATIC_ALIGN - 1)) || (register_base & 0xffffu))
        return IOMMU_EINVAL;
    struct smmuv3_caps caps;
    if (!smmuv3_caps_read(plat, register_base, &caps))
        return IOMMU_ENODEV;
    if (smmuv3_caps_unusable(&caps))
        return IOMMU_ENODEV;
    *u = (struct smmuv3_unit){.plat = plat, .pool = pool, .caps = caps,
                              .poll_timeout_ns = SMMUV3_DEFAULT_POLL_TIMEOUT_NS};
    u->unit = (struct iommu_unit){.ops = &smmuv3_ops, .name = "smmu", .index = index, .register_base = register_base,
                                  .domain_ids = SMMUV3_MAX_DOMAINS,
                                  /* 4 KiB granule: 3 levels translate 39-bit IOVAs, 4 levels
                                   * 48-bit ones (every SMMUv3 takes 48-bit input addresses) */
                                  .table_levels = (uint8_t)(1u << 3 | 1u << 4),
                                  .superpages = SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G, /* always with 4 KiB */
                                  .table_format = &pt_arm_stage1,
                                  .write_back = caps.coherent ? NULL : plat};
    /* A unit with wider stream IDs gets a table of the first 2^16 (the IORT's and PCI's
     * requester IDs fit): DMA from a stream beyond it is refused (C_BAD_STREAMID). */
    u->sid_bits = caps.sid_bits < 16 ? caps.sid_bits : 16;
    u->cmdq_log2 = caps.cmdq_log2 < CMDQ_LOG2 ? caps.cmdq_log2 : CMDQ_LOG2;
    u->eventq_log2 = caps.eventq_log2 < EVENTQ_LOG2 ? caps.eventq_log2 : EVENTQ_LOG2;
    uint8_t *block = static_va;
    for (unsigned i = 0; i < SMMUV3_STATIC_BYTES; i++)
        block[i] = 0;
    u->l1 = (uint64_t *)block;
    u->l1_pa = static_pa;
    u->cmdq = (uint64_t *)(block + STATIC_CMDQ_OFFSET);
    u->cmdq_pa = static_pa + STATIC_CMDQ_OFFSET;
    u->eventq = (uint64_t *)(block + STATIC_EVENTQ_OFFSET);
    u->eventq_pa = static_pa + STATIC_EVENTQ_OFFSET;
    flush(u, block, SMMUV3_STATIC_BYTES);
    return IOMMU_OK;
}

/* ---- the command queue ---- */

static uint32_t q_index(uint32_t v, unsigned log2)
{
    return v & ((1u << log2) - 1);
}

static uint32_t q_wrap(uint32_t v, unsigned log2)
{
    return v & (1u << log2);
}

/* One more than v, the wrap bit flipping at the end of the queue. */
static uint32_t q_next(uint32_t v, unsigned log2)
{
    return (v + 1) & ((2u << log2) - 1);
}

static bool q_full(uint32_t prod, uint32_t cons, unsigned log2)
{
    return q_index(prod, log2) == q_index(cons, log2) && q_wrap(prod, log2) != q_wrap(cons, log2);
}

/* A refused command: the unit stopped at CMDQ_CONS with an error code. The command there
 * becomes a CMD_SYNC without signalling, which every unit takes, and the error is
 * acknowledged so the queue goes on. */
static void recover_command_error(struct smmuv3_unit *u)
{
    uint32_t cons = rd32(u, SMMU_CMDQ_CONS);
    uint64_t *slot = u->cmdq + 2 * q_index(cons, u->cmdq_log2);
    u->stats.command_errors++;
    if (u->plat->log) {
        char line[128];
        fmt_format(line, sizeof line, "smmu[%u]: command 0x%02x refused (CMDQ_CONS.ERR %u), replaced by CMD_SYNC",
                   u->unit.index, (unsigned)(slot[0] & 0xff), CMDQ_CONS_ERR(cons));
        u->plat->log(u->plat->ctx, line);
    }
    slot[0] = OP_SYNC;
    slot[1] = 0;
    flush(u, slot, CMD_BYTES);
    uint32_t gerror = rd32(u, SMMU_GERROR);
    wr32(u, SMMU_GERRORN, (rd32(u, SMMU_GERRORN) & ~GERROR_CMDQ_ERR) | (gerror & GERROR_CMDQ_ERR));
}

static bool command_error_pending(const struct smmuv3_unit *u)
{
    return ((rd32(u, SMMU_GERROR) ^ rd32(u, SMMU_GERRORN)) & GERROR_CMDQ_ERR) != 0;
}

/* Waits until the unit has consumed everything queued, i.e. CMDQ_CONS (index and wrap bit)
 * equals prod, recovering from refused commands on the way; the poll bound holds whatever
 * the unit does, a unit that refuses every command included. */
static enum iommu_status wait_consumed(struct smmuv3_unit *u, uint32_t prod, bool *refused)
{
    uint32_t mask = (2u << u->cmdq_log2) - 1;
    struct poll_bound b = {0};
    for (;;) {
        if ((rd32(u, SMMU_CMDQ_CONS) & mask) == (prod & mask))
            return IOMMU_OK;
        if (command_error_pending(u)) {
            recover_command_error(u);
            *refused = true;
        }
        if (poll_expired(u, &b))
            return IOMMU_ETIMEDOUT;
    }
}

/* Queues n commands then a CMD_SYNC, and waits until the unit has consumed the sync: every
 * command before it is then complete. A batch longer than the queue is published in parts,
 * each waited for. IOMMU_EHW when the unit refused one of the commands. */
static enum iommu_status submit(struct smmuv3_unit *u, const uint64_t (*cmds)[2], unsigned n)
{
    unsigned log2 = u->cmdq_log2;
    uint32_t mask = (2u << log2) - 1;
    bool refused = false;
    if (!u->started)
        return IOMMU_EINVAL;
    /* An error left from an earlier batch that timed out is that batch's: recovered here
     * (counted and logged), not reported against this one. */
    if (command_error_pending(u))
        recover_command_error(u);
    for (unsigned i = 0; i <= n; i++) {
        uint64_t c0 = i < n ? cmds[i][0] : OP_SYNC, c1 = i < n ? cmds[i][1] : 0;
        if (q_full(u->cmdq_prod, rd32(u, SMMU_CMDQ_CONS), log2)) {
            /* Full: let the unit consume what is queued (it sees only what PROD says),
             * then go on from an empty queue. */
            wr32(u, SMMU_CMDQ_PROD, u->cmdq_prod);
            enum iommu_status s = wait_consumed(u, u->cmdq_prod, &refused);
            if (s != IOMMU_OK)
                return s;
        }
        uint64_t *slot = u->cmdq + 2 * q_index(u->cmdq_prod, log2);
        slot[0] = c0;
        slot[1] = c1;
        flush(u, slot, CMD_BYTES);
        uint8_t op = (uint8_t)c0;
        u->stats.commands++;
        if (op == OP_SYNC)
            u->stats.syncs++;
        else if (op >= OP_CFGI_STE && op <= OP_CFGI_CD_ALL)
            u->stats.cfgi++;
        else if (op >= OP_TLBI_NH_ASID)
            u->stats.tlbi++;
        u->cmdq_prod = q_next(u->cmdq_prod, log2);
    }
    /* The platform's register write orders the queue's memory writes before it. */
    wr32(u, SMMU_CMDQ_PROD, u->cmdq_prod);
    if (u->inject_sync_timeouts) {
        u->inject_sync_timeouts--;
        u->stats.timeouts++;
        return IOMMU_ETIMEDOUT;
    }
    enum iommu_status s = wait_consumed(u, u->cmdq_prod & mask, &refused);
    if (s != IOMMU_OK)
        return s;
    return refused ? IOMMU_EHW : IOMMU_OK;
}

static enum iommu_status submit_one(struct smmuv3_unit *u, uint64_t c0, uint64_t c1)
{
    const uint64_t cmd[1][2] = {{c0, c1}};
    return submit(u, cmd, 1);
}

/* ---- enable ---- */

enum iommu_status smmuv3_unit_start(struct smmuv3_unit *u)
{
    /* Whatever the firmware left on goes off first; until the unit is enabled again, DMA
     * is aborted rather than let through untranslated. */
    u->started = false;
    enum iommu_status s = write_cr0(u, 0);
    if (s == IOMMU_OK)
        s = write_gbpa(u, GBPA_ABORT);
    if (s != IOMMU_OK)
        return s;
    /* QEMU 7.2 has no GBPA (it reads 0): there, DMA bypasses the unit until SMMUEN. */
    u->aborts_when_disabled = (rd32(u, SMMU_GBPA) & GBPA_ABORT) != 0;
    wr32(u, SMMU_IRQ_CTRL, 0); /* events and errors are polled */
    s = poll_reg32(u, SMMU_IRQ_CTRLACK, ~0u, 0);
    if (s != IOMMU_OK)
        return s;
    wr32(u, SMMU_CR1, CR1_WB_INNER_SHAREABLE);
    wr32(u, SMMU_CR2, CR2_RECINVSID);
    uint32_t cfg;
    if (u->caps.two_level)
        cfg = STRTAB_CFG_FMT_2LEVEL | STRTAB_CFG_SPLIT(L2_SPLIT) | STRTAB_CFG_LOG2SIZE(u->sid_bits);
    else
        cfg = STRTAB_CFG_LOG2SIZE(u->sid_bits);
    wr64(u, SMMU_STRTAB_BASE, STRTAB_BASE_RA | (u->l1_pa & STRTAB_BASE_ADDR));
    wr32(u, SMMU_STRTAB_BASE_CFG, cfg);
    wr64(u, SMMU_CMDQ_BASE, Q_BASE_ALLOCATE | (u->cmdq_pa & Q_BASE_ADDR) | u->cmdq_log2);
    wr32(u, SMMU_CMDQ_PROD, 0);
    wr32(u, SMMU_CMDQ_CONS, 0);
    u->cmdq_prod = 0;
    wr64(u, SMMU_EVENTQ_BASE, Q_BASE_ALLOCATE | (u->eventq_pa & Q_BASE_ADDR) | u->eventq_log2);
    wr32(u, SMMU_EVENTQ_PROD, 0);
    wr32(u, SMMU_EVENTQ_CONS, 0);
    u->eventq_cons = 0;
    s = write_cr0(u, CR0_CMDQEN);
    if (s != IOMMU_OK)
        return s;
    u->started = true;
    /* Nothing the unit may have cached from before counts: every configuration, every TLB
     * entry of the non-secure EL1 regime (and EL2's, where the unit has one). */
    uint64_t cmds[3][2] = {{OP_CFGI_STE_RANGE, CMD1_RANGE_ALL}, {OP_TLBI_NSNH_ALL, 0}, {OP_TLBI_EL2_ALL, 0}};
    s = submit(u, (const uint64_t(*)[2])cmds, u->caps.idr0 & IDR0_HYP ? 3 : 2);
    if (s == IOMMU_OK)
        s = write_cr0(u, CR0_CMDQEN | CR0_EVENTQEN);
    return s;
}

enum iommu_status smmuv3_unit_enable(struct smmuv3_unit *u)
{
    if (!u->started) /* tables and queues not programmed: nothing to enable */
        return IOMMU_EINVAL;
    enum iommu_status s = write_cr0(u, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
    u->enabled = s == IOMMU_OK;
    return s;
}

enum iommu_status smmuv3_unit_disable(struct smmuv3_unit *u)
{
    enum iommu_status s = write_cr0(u, CR0_CMDQEN | CR0_EVENTQEN);
    if (s == IOMMU_OK)
        u->enabled = false;
    return s;
}

bool smmuv3_unit_intact(const struct smmuv3_unit *u, uint32_t *cr0ack)
{
    uint32_t ack = rd32(u, SMMU_CR0ACK);
    if (cr0ack)
        *cr0ack = ack;
    return ack == (CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN) &&
           (rd64(u, SMMU_STRTAB_BASE) & STRTAB_BASE_ADDR) == u->l1_pa &&
           (rd64(u, SMMU_CMDQ_BASE) & Q_BASE_ADDR) == u->cmdq_pa;
}

/* ---- stream table and context descriptors ---- */

/* The stream's STE; NULL when it is beyond the table or its level-2 table does not exist. */
static uint64_t *ste_find(const struct smmuv3_unit *u, uint32_t sid)
{
    if (sid >> u->sid_bits)
        return NULL;
    if (!u->caps.two_level)
        return u->l1 + (size_t)sid * STE_DWORDS;
    uint64_t *l2 = u->l2[sid >> L2_SPLIT];
    return l2 ? l2 + (size_t)(sid & (L2_STES - 1)) * STE_DWORDS : NULL;
}

/* The stream's STE, its level-2 table allocated (and hooked into level 1) when it has none;
 * NULL (with *why) when it is beyond the table or the table cannot be made. */
static uint64_t *ste_of(struct smmuv3_unit *u, uint32_t sid, enum iommu_status *why)
{
    if (sid >> u->sid_bits) {
        *why = IOMMU_ERANGE;
        return NULL;
    }
    uint32_t span = sid >> L2_SPLIT;
    if (u->caps.two_level && !u->l2[span]) {
        uint64_t pa;
        uint64_t *t = page_pool_alloc(u->pool, &pa);
        if (!t) {
            *why = IOMMU_ENOMEM;
            return NULL;
        }
        flush(u, t, PAGE_SIZE); /* every STE invalid before level 1 points here */
        u->l2[span] = t;
        u->l1[span] = (pa & L1_DESC_ADDR) | L1_DESC_SPAN(L2_SPLIT + 1);
        flush(u, &u->l1[span], sizeof u->l1[span]);
        /* The unit may cache the level-1 descriptor with the STEs it covers. */
        uint64_t c0 = OP_CFGI_STE_RANGE | CMD_SID(span << L2_SPLIT);
        enum iommu_status s = submit_one(u, c0, L2_SPLIT);
        if (s != IOMMU_OK) {
            *why = s;
            return NULL;
        }
    }
    return ste_find(u, sid);
}

static unsigned input_bits(unsigned levels)
{
    return 12 + 9 * levels;
}

/* The domain's CD, written for tables t (created on first use). */
static enum iommu_status domain_cd(struct smmuv3_unit *u, const struct iommu_translation *t, uint64_t *cd_pa)
{
    if (t->domain_id >= SMMUV3_MAX_DOMAINS || (!u->caps.asid16 && t->domain_id > 0xff) ||
        !(u->unit.table_levels & (1u << t->levels)) || (t->table_pa & 0xfff) || (t->table_pa >> u->caps.oas_bits))
        return IOMMU_EINVAL;
    struct smmuv3_domain_cd *d = &u->domain[t->domain_id];
    uint64_t want[CD_DWORDS] = {
        CD0_T0SZ(64 - input_bits(t->levels)) | CD0_TG0_4K | CD0_IR0_WB | CD0_OR0_WB | CD0_SH0_INNER | CD0_EPD1 |
            CD0_V | CD0_IPS(u->caps.oas_field) | CD0_AA64 | CD0_R | CD0_A | CD0_ASET | CD0_ASID(t->domain_id),
        t->table_pa & CD1_TTB0, 0, CD3_MAIR_NORMAL_WB, 0, 0, 0, 0};
    if (d->cd) {
        bool same = true;
        for (unsigned i = 0; i < CD_DWORDS; i++)
            same = same && d->cd[i] == want[i];
        if (same) {
            *cd_pa = d->cd_pa;
            return IOMMU_OK;
        }
        /* One CD per domain id: while a stream uses it, other tables need another id. */
        if (d->streams)
            return IOMMU_EBUSY;
        /* Unused: the id takes the new tables. No STE points at the CD (each change was
         * followed by its CFGI, so no configuration cache holds it), but the TLB may still
         * hold the old tables' translations under the id's ASID: they go first. */
        enum iommu_status s = submit_one(u, OP_TLBI_NH_ASID | CMD_ASID(t->domain_id), 0);
        if (s != IOMMU_OK)
            return s;
        for (unsigned i = 0; i < CD_DWORDS; i++)
            d->cd[i] = want[i];
        flush(u, d->cd, CD_DWORDS * 8);
        *cd_pa = d->cd_pa;
        return IOMMU_OK;
    }
    uint64_t pa;
    uint64_t *cd = page_pool_alloc(u->pool, &pa);
    if (!cd)
        return IOMMU_ENOMEM;
    for (unsigned i = 0; i < CD_DWORDS; i++)
        cd[i] = want[i];
    flush(u, cd, CD_DWORDS * 8);
    *d = (struct smmuv3_domain_cd){.cd = cd, .cd_pa = pa};
    *cd_pa = pa;
    return IOMMU_OK;
}

int smmuv3_stream_domain(const struct smmuv3_unit *u, uint32_t sid)
{
    const uint64_t *ste = ste_find(u, sid);
    if (!ste || !(ste[0] & STE0_V) || (ste[0] & STE0_CONFIG_MASK) != STE0_CONFIG_S1)
        return -1;
    uint64_t cd_pa = ste[0] & STE0_S1CTXPTR;
    for (unsigned i = 0; i < SMMUV3_MAX_DOMAINS; i++)
        if (u->domain[i].cd && u->domain[i].cd_pa == cd_pa)
            return (int)i;
    return -1;
}

enum iommu_status smmuv3_set_stream(struct smmuv3_unit *u, uint32_t sid, const struct iommu_translation *t)
{
    if (!u->started)
        return IOMMU_EINVAL;
    lock_acquire(&u->lock);
    enum iommu_status s = IOMMU_OK;
    uint64_t *ste = ste_of(u, sid, &s);
    if (!ste)
        goto out;
    uint64_t want[STE_DWORDS] = {0};
    uint64_t cd_pa = 0;
    int new_domain = -1;
    if (!t) {
        want[0] = STE0_V | STE0_CONFIG_ABORT;
    } else if (t->type == IOMMU_PASSTHROUGH) {
        want[0] = STE0_V | STE0_CONFIG_BYPASS;
        want[1] = STE1_SHCFG_INCOMING;
    } else {
        s = domain_cd(u, t, &cd_pa);
        if (s != IOMMU_OK)
            goto out;
        new_domain = t->domain_id;
        want[0] = STE0_V | STE0_CONFIG_S1 | (cd_pa & STE0_S1CTXPTR); /* S1Fmt 0, S1CDMax 0: one CD */
        want[1] = STE1_S1CIR_WB | STE1_S1COR_WB | STE1_S1CSH_INNER;
    }
    int old_domain = smmuv3_stream_domain(u, sid);
    /* The unit reads an STE as a whole only after a CFGI: the double words other than the
     * first (which holds V and Config) go first, then the first, each with its CFGI, so the
     * unit never sees a new Config with old fields. */
    for (unsigned i = 1; i < STE_DWORDS; i++)
        ste[i] = want[i];
    flush(u, ste, STE_DWORDS * 8);
    uint64_t cfgi = OP_CFGI_STE | CMD_SID(sid);
    s = submit_one(u, cfgi, CMD1_LEAF);
    if (s == IOMMU_OK) {
        ste[0] = want[0];
        flush(u, ste, 8);
        s = submit_one(u, cfgi, CMD1_LEAF);
    }
    if (s == IOMMU_OK && old_domain != new_domain) {
        if (old_domain >= 0)
            u->domain[old_domain].streams--;
        if (new_domain >= 0)
            u->domain[new_domain].streams++;
    }
out:
    lock_release(&u->lock);
    return s;
}

/* ---- invalidation ---- */

enum iommu_status smmuv3_flush_domain(struct smmuv3_unit *u, uint16_t domain_id)
{
    if (domain_id >= SMMUV3_MAX_DOMAINS)
        return IOMMU_EINVAL;
    lock_acquire(&u->lock);
    enum iommu_status s = submit_one(u, OP_TLBI_NH_ASID | CMD_ASID(domain_id), 0);
    lock_release(&u->lock);
    return s;
}

enum iommu_status smmuv3_flush_range(struct smmuv3_unit *u, uint16_t domain_id, uint64_t first, uint64_t last)
{
    if (last < first || domain_id >= SMMUV3_MAX_DOMAINS)
        return IOMMU_EINVAL;
    uint64_t pages = (last >> 12) - (first >> 12) + 1;
    if (pages > TLBI_PAGES_MAX)
        return smmuv3_flush_domain(u, domain_id);
    /* Leaf unset: an unmap may have freed tables, and walk-cache entries pointing at them
     * must go too. */
    uint64_t cmds[TLBI_PAGES_MAX][2];
    for (uint64_t i = 0; i < pages; i++) {
        cmds[i][0] = OP_TLBI_NH_VA | CMD_ASID(domain_id);
        cmds[i][1] = ((first >> 12) + i) << 12;
    }
    lock_acquire(&u->lock);
    enum iommu_status s = submit(u, (const uint64_t(*)[2])cmds, (unsigned)pages);
    lock_release(&u->lock);
    return s;
}

/* ---- events ---- */

const char *smmuv3_event_name(uint8_t type)
{
    switch (type) {
    case SMMUV3_EVENT_UUT: return "F_UUT";
    case SMMUV3_EVENT_C_BAD_STREAMID: return "C_BAD_STREAMID";
    case SMMUV3_EVENT_F_STE_FETCH: return "F_STE_FETCH";
    case SMMUV3_EVENT_C_BAD_STE: return "C_BAD_STE";
    case SMMUV3_EVENT_F_STREAM_DISABLED: return "F_STREAM_DISABLED";
    case SMMUV3_EVENT_C_BAD_SUBSTREAMID: return "C_BAD_SUBSTREAMID";
    case SMMUV3_EVENT_F_CD_FETCH: return "F_CD_FETCH";
    case SMMUV3_EVENT_C_BAD_CD: return "C_BAD_CD";
    case SMMUV3_EVENT_F_WALK_EABT: return "F_WALK_EABT";
    case SMMUV3_EVENT_F_TRANSLATION: return "F_TRANSLATION";
    case SMMUV3_EVENT_F_ADDR_SIZE: return "F_ADDR_SIZE";
    case SMMUV3_EVENT_F_ACCESS: return "F_ACCESS";
    case SMMUV3_EVENT_F_PERMISSION: return "F_PERMISSION";
    case SMMUV3_EVENT_F_TLB_CONFLICT: return "F_TLB_CONFLICT";
    case SMMUV3_EVENT_F_CFG_CONFLICT: return "F_CFG_CONFLICT";
    default: return "unknown event";
    }
}

/* What an event means. A translation fault at an address beyond what the stream's CD
 * translates (its T0SZ) is an address-size fault in the unit interface's terms: the SMMU
 * reports an input address outside TxSZ as F_TRANSLATION, where VT-d names the width. */
static enum iommu_fault_kind event_kind(const struct smmuv3_unit *u, uint32_t sid, uint8_t type, uint64_t address)
{
    switch (type) {
    case SMMUV3_EVENT_F_TRANSLATION: {
        int d = smmuv3_stream_domain(u, sid);
        unsigned t0sz = d >= 0 ? (unsigned)(u->domain[d].cd[0] & 0x3F) : 0;
        return t0sz >= 16 && t0sz <= 39 && address >> (64 - t0sz) ? IOMMU_FAULT_ADDRESS_SIZE : IOMMU_FAULT_TRANSLATION;
    }
    case SMMUV3_EVENT_F_ACCESS:
    case SMMUV3_EVENT_F_PERMISSION: return IOMMU_FAULT_TRANSLATION;
    case SMMUV3_EVENT_F_ADDR_SIZE: return IOMMU_FAULT_ADDRESS_SIZE;
    case SMMUV3_EVENT_F_STE_FETCH:
    case SMMUV3_EVENT_F_CD_FETCH:
    case SMMUV3_EVENT_F_WALK_EABT: return IOMMU_FAULT_TABLE;
    default: return IOMMU_FAULT_OTHER;
    }
}

static const char *const gerror_names[9] = {"CMDQ_ERR", "bit 1", "EVENTQ_ABT_ERR", "PRIQ_ABT_ERR", "MSI_CMDQ_ABT_ERR",
                                            "MSI_EVENTQ_ABT_ERR", "MSI_PRIQ_ABT_ERR", "MSI_GERROR_ABT_ERR", "SFM_ERR"};

/* Global errors other than a command error (which the command path handles where it
 * happens): each active one is counted, logged and acknowledged by toggling its GERRORN bit.
 * A lost event write (EVENTQ_ABT_ERR: QEMU reports a full event queue this way, without
 * EVENTQ_PROD.OVFLG) counts as an event queue overflow. */
static void handle_gerrors(struct smmuv3_unit *u)
{
    uint32_t gerror = rd32(u, SMMU_GERROR), gerrorn = rd32(u, SMMU_GERRORN);
    uint32_t active = (gerror ^ gerrorn) & GERROR_ALL & ~GERROR_CMDQ_ERR;
    if (!active)
        return;
    for (unsigned bit = 0; bit < 9; bit++) {
        if (!(active & (1u << bit)))
            continue;
        u->stats.gerrors++;
        if (bit == 2)
            u->unit.faults.overflows++;
        if (u->plat->log) {
            char line[96];
            fmt_format(line, sizeof line, "smmu[%u]: global error %s acknowledged", u->unit.index, gerror_names[bit]);
            u->plat->log(u->plat->ctx, line);
        }
    }
    wr32(u, SMMU_GERRORN, gerrorn ^ active);
}

unsigned smmuv3_drain_events(struct smmuv3_unit *u)
{
    lock_acquire(&u->lock);
    handle_gerrors(u);
    unsigned log2 = u->eventq_log2, n = 0;
    uint32_t prod_reg = rd32(u, SMMU_EVENTQ_PROD), prod = prod_reg;
    /* An overflow: the unit dropped events since the flag last matched ours. */
    if ((prod ^ u->eventq_cons) & EVENTQ_OVFLG)
        u->unit.faults.overflows++;
    uint32_t cons = u->eventq_cons & ((2u << log2) - 1);
    prod &= (2u << log2) - 1;
    /* QEMU records one event per 4 bytes of a faulting transfer (hardware: one per
     * transaction). Consecutive events of one stream, type and direction whose addresses
     * follow each other by 4 bytes within a page are one transfer: one fault record, whose
     * count says how many events it stands for (a transfer started again at its first
     * address is another). */
    uint64_t last_address = 0;
    struct iommu_fault_record *last = NULL;
    /* At most one queue's worth: a unit that moves PROD beyond that is not trusted further. */
    while (cons != prod && n < (1u << log2)) {
        const uint64_t *e = u->eventq + 4 * q_index(cons, log2);
        uint8_t type = EVENT0_TYPE(e[0]);
        uint32_t sid = EVENT0_SID(e[0]);
        /* The translation faults and an external abort on a table walk carry the access's
         * direction and input address; configuration errors do not. */
        bool has_address = (type >= SMMUV3_EVENT_F_TRANSLATION && type <= SMMUV3_EVENT_F_PERMISSION) ||
                           type == SMMUV3_EVENT_F_WALK_EABT;
        struct iommu_fault_record f = {.sid = (uint16_t)sid, .reason = type, .kind = event_kind(u, sid, type, e[2]),
                                       .write = has_address && !(e[1] & EVENT1_RNW),
                                       .address = has_address ? e[2] & ~(uint64_t)(PAGE_SIZE - 1) : 0, .records = 1};
        bool same_transfer = last && has_address && last->sid == f.sid && last->reason == f.reason &&
                             last->write == f.write && last->address == f.address && e[2] == last_address + 4;
        if (same_transfer) {
            last->records++;
            u->stats.events_merged++;
        } else {
            iommu_fault_log_add(&u->unit.faults, &f);
            last = iommu_fault_log_newest(&u->unit.faults);
        }
        last_address = e[2];
        u->stats.events++;
        cons = q_next(cons, log2);
        n++;
    }
    /* Consumed, and the overflow (if any) acknowledged by copying its flag. */
    u->eventq_cons = cons | (prod_reg & EVENTQ_OVFLG);
    wr32(u, SMMU_EVENTQ_CONS, u->eventq_cons);
    lock_release(&u->lock);
    return n;
}

/* ---- the unit interface ---- */

static enum iommu_status ops_set_translation(struct iommu_unit *u, uint16_t sid, const struct iommu_translation *t)
{
    return smmuv3_set_stream(smmuv3_of(u), sid, t);
}

static enum iommu_status ops_invalidate_range(struct iommu_unit *u, uint16_t domain_id, uint64_t first, uint64_t last)
{
    return smmuv3_flush_range(smmuv3_of(u), domain_id, first, last);
}

static enum iommu_status ops_invalidate_domain(struct iommu_unit *u, uint16_t domain_id)
{
    return smmuv3_flush_domain(smmuv3_of(u), domain_id);
}

static unsigned ops_drain_faults(struct iommu_unit *u)
{
    return smmuv3_drain_events(smmuv3_of(u));
}

static bool ops_take_fault(struct iommu_unit *u, struct iommu_fault_record *f)
{
    struct smmuv3_unit *s = smmuv3_of(u);
    lock_acquire(&s->lock);
    bool ok = iommu_fault_log_take(&u->faults, f);
    lock_release(&s->lock);
    return ok;
}

static bool ops_intact(const struct iommu_unit *u, uint32_t *status)
{
    return smmuv3_unit_intact((const struct smmuv3_unit *)u, status);
}

static bool ops_inject_wait_timeouts(struct iommu_unit *u, uint32_t n)
{
    smmuv3_of(u)->inject_sync_timeouts = n;
    return true;
}

static const struct iommu_unit_ops smmuv3_ops = {
    .set_translation = ops_set_translation,
    .invalidate_range = ops_invalidate_range,
    .invalidate_domain = ops_invalidate_domain,
    .drain_faults = ops_drain_faults,
    .take_fault = ops_take_fault,
    .fault_reason_name = smmuv3_event_name,
    .intact = ops_intact,
    .status_name = "CR0ACK",
    .inject_wait_timeouts = ops_inject_wait_timeouts,
};
