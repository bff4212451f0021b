/* DMA remapping on Arm shown with QEMU's edu device: DMA through a domain of its own,
 * events for unmapped and read-only IOVAs, the stale translation QEMU's SMMU keeps after an
 * unmap until the TLBI removes it, and the reserved region out of the device's reach. A
 * faulting edu transfer is 4 bytes long: QEMU's SMMU records one event per 4 bytes. */
#include "common/edu.h"
#include "iommu/pt_format.h"
#include "loader/arm64/remap_setup.h"
#include "loader/expected_faults.h"

#define DEMO_DOMAIN_ID 2
#define IOVA_SRC 0x100000u
#define IOVA_DST 0x101000u
#define IOVA_RO 0x102000u
#define IOVA_UNMAPPED_READ 0x200000u
#define IOVA_UNMAPPED_WRITE 0x201000u
#define XFER 256u
#define FAULT_XFER 4u

struct demo {
    const struct platform *plat;
    struct remapping *r;
    struct smmuv3_unit *unit;
    const struct pci_function *fn;
    uint64_t bar;
    unsigned dmas;
    struct fault_count faults;
};

static bool demo_dma(struct demo *d, uint64_t iova, uint32_t len, bool to_ram)
{
    d->dmas++;
    return edu_dma(d->plat, d->bar, iova, len, to_ram);
}

/* Whether the DMA left exactly the expected event (want_type 0: none) from edu's stream. */
static bool events_after_dma(struct demo *d, uint64_t iova, bool write, uint8_t want_type)
{
    return expect_faults(d->r->unit_ptr, d->r->units, remap_print_fault, &d->unit->unit, d->fn->stream_id,
                         want_type, write, iova, &d->faults);
}

static bool find_edu(struct demo *d, const struct pci_inventory *inv)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->vendor != EDU_VENDOR || f->device != EDU_DEVICE || f->unit < 0 || (unsigned)f->unit >= d->r->units)
            continue;
        uint64_t bar = pci_memory_bar(d->plat, f, 0);
        if (!bar)
            continue;
        edu_enable(d->plat, f->config_pa);
        d->fn = f;
        d->bar = bar;
        d->unit = &d->r->unit[f->unit];
        return d->plat->mmio_read32(d->plat->ctx, bar + EDU_ID) == 0x010000ed;
    }
    return false;
}

static uint8_t *buffer(struct uefi_arm64 *up, uint64_t *pa)
{
    return up->ops.alloc_pages(up->ops.ctx, 1, ~0ull, pa);
}

void arm_edu_demo(struct uefi_arm64 *up, struct remapping *r, const struct pci_inventory *inv, struct checks *c)
{
    struct demo d = {.plat = &up->ops, .r = r};
    if (!check(c, find_edu(&d, inv), "edu 1234:11e8 found, translated by an SMMU, ID register 0x010000ed"))
        return;
    struct smmuv3_unit *u = d.unit;
    sink_printf(out, "demo: edu at %02x:%02x.%x (stream 0x%04x) on smmu[%u], BAR0 0x%lx\n", d.fn->bus, d.fn->dev,
                d.fn->fn, d.fn->stream_id, u->unit.index, d.bar);
    uint64_t src_pa = 0, dst_pa = 0, ro_pa = 0, plain_pa = 0, canary_pa = 0;
    uint8_t *src = buffer(up, &src_pa), *dst = buffer(up, &dst_pa), *ro = buffer(up, &ro_pa);
    uint8_t *plain = buffer(up, &plain_pa);
    uint8_t *canary = page_pool_alloc(&r->pool, &canary_pa); /* inside the reserved region */
    if (!check(c, src && dst && ro && plain && canary, "demo buffers allocated"))
        return;

    /* 1. A domain of its own: its own CD and ASID, real stage-1 tables. A map needs no
     * command (the unit caches no absent translation); a stream's move does. */
    static struct slpt domain;
    uint64_t commands_before = u->stats.commands;
    enum iommu_status st = iommu_units_tables_init(&domain, &r->pool, r->unit_ptr, r->units);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_SRC, src_pa, PAGE_SIZE, SLPT_READ);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_DST, dst_pa, PAGE_SIZE, SLPT_READ | SLPT_WRITE);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_RO, ro_pa, PAGE_SIZE, SLPT_READ);
    uint64_t map_commands = u->stats.commands - commands_before;
    struct iommu_translation t = {IOMMU_TRANSLATE, DEMO_DOMAIN_ID, domain.root_pa, r->levels};
    commands_before = u->stats.commands;
    if (st == IOMMU_OK)
        st = smmuv3_set_stream(u, d.fn->stream_id, &t);
    uint64_t move_commands = u->stats.commands - commands_before;
    if (!checkf(c, st == IOMMU_OK && smmuv3_stream_domain(u, d.fn->stream_id) == DEMO_DOMAIN_ID,
                "edu moved to domain %u (ASID %u): %u-level %s tables, IOVA 0x%x -> 0x%lx (R), 0x%x -> 0x%lx (RW), "
                "0x%x -> 0x%lx (R)", DEMO_DOMAIN_ID, DEMO_DOMAIN_ID, r->levels, pt_arm_stage1.name, IOVA_SRC, src_pa,
                IOVA_DST, dst_pa, IOVA_RO, ro_pa))
        return;
    events_after_dma(&d, 0, false, 0); /* start with empty logs */
    d.faults = (struct fault_count){0};

    /* 2. DMA through the tables: RAM -> device from IOVA_SRC, device -> RAM to IOVA_DST. */
    edu_pattern_fill(src, 0x11, XFER);
    edu_pattern_fill(dst, 0xee, XFER);
    bool ok = demo_dma(&d, IOVA_SRC, XFER, false) && demo_dma(&d, IOVA_DST, XFER, true);
    checkf(c, ok && edu_pattern_holds(dst, 0x11, XFER) && events_after_dma(&d, 0, false, 0),
           "DMA through domain %u: %u bytes read at IOVA 0x%x and written at IOVA 0x%x arrived at 0x%lx",
           DEMO_DOMAIN_ID, XFER, IOVA_SRC, IOVA_DST, dst_pa);

    /* 3. Unmapped IOVAs: a read and a write, each an F_TRANSLATION event. */
    ok = demo_dma(&d, IOVA_UNMAPPED_READ, FAULT_XFER, false);
    checkf(c, ok && events_after_dma(&d, IOVA_UNMAPPED_READ, false, SMMUV3_EVENT_F_TRANSLATION),
           "DMA read from unmapped IOVA 0x%x: F_TRANSLATION event, stream 0x%04x", IOVA_UNMAPPED_READ,
           d.fn->stream_id);
    ok = demo_dma(&d, IOVA_UNMAPPED_WRITE, FAULT_XFER, true);
    checkf(c, ok && events_after_dma(&d, IOVA_UNMAPPED_WRITE, true, SMMUV3_EVENT_F_TRANSLATION),
           "DMA write to unmapped IOVA 0x%x: F_TRANSLATION event, stream 0x%04x", IOVA_UNMAPPED_WRITE,
           d.fn->stream_id);

    /* 4. A write through a read-only mapping. */
    edu_pattern_fill(ro, 0x5a, XFER);
    ok = demo_dma(&d, IOVA_RO, FAULT_XFER, true);
    checkf(c, ok && events_after_dma(&d, IOVA_RO, true, SMMUV3_EVENT_F_PERMISSION) && edu_pattern_holds(ro, 0x5a, XFER),
           "DMA write through read-only IOVA 0x%x: F_PERMISSION event, memory unchanged", IOVA_RO);

    /* 5. Unmap without the TLBI: QEMU's SMMU still holds the translation (the DMA lands);
     * after the TLBI and its CMD_SYNC the same DMA faults. That is what the unmap's
     * invalidation is for, shown on the device. */
    struct slpt_unmapped un;
    struct page_list emptied = {0}; /* tables the unmap empties: the unit may walk them until the TLBI */
    domain.freed = &emptied;
    st = slpt_unmap(&domain, IOVA_DST, PAGE_SIZE, &un);
    edu_pattern_fill(src, 0x44, XFER);
    ok = st == IOMMU_OK && demo_dma(&d, IOVA_SRC, XFER, false) && demo_dma(&d, IOVA_DST, XFER, true);
    checkf(c, ok && edu_pattern_holds(dst, 0x44, XFER) && events_after_dma(&d, 0, false, 0),
           "unmap of IOVA 0x%x without its TLBI: the SMMU's stale translation still lets the DMA through", IOVA_DST);
    uint64_t tlbi_before = u->stats.tlbi, sync_before = u->stats.syncs;
    commands_before = u->stats.commands;
    st = smmuv3_flush_range(u, DEMO_DOMAIN_ID, un.first, un.last);
    uint64_t unmap_commands = u->stats.commands - commands_before;
    domain.freed = NULL;
    if (st == IOMMU_OK)
        slpt_release_freed(&domain, &emptied);
    edu_pattern_fill(dst, 0x77, XFER);
    ok = st == IOMMU_OK && demo_dma(&d, IOVA_DST, FAULT_XFER, true);
    checkf(c, ok && events_after_dma(&d, IOVA_DST, true, SMMUV3_EVENT_F_TRANSLATION) && edu_pattern_holds(dst, 0x77, XFER),
           "after the unmap's TLBI (%lu TLBI, %lu CMD_SYNC): DMA write to IOVA 0x%x faults, memory unchanged",
           u->stats.tlbi - tlbi_before, u->stats.syncs - sync_before, IOVA_DST);

    /* 6. Back in the default domain: RAM is reachable one to one, the reserved region is not. */
    struct iommu_translation def = {IOMMU_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels};
    st = smmuv3_set_stream(u, d.fn->stream_id, &def);
    edu_pattern_fill(plain, 0x33, XFER);
    ok = st == IOMMU_OK && demo_dma(&d, plain_pa, XFER, false);
    edu_pattern_fill(plain, 0x99, XFER);
    ok = ok && demo_dma(&d, plain_pa, XFER, true);
    checkf(c, ok && edu_pattern_holds(plain, 0x33, XFER) && events_after_dma(&d, 0, false, 0),
           "edu back in the default domain: RAM at 0x%lx read and written one to one", plain_pa);
    edu_pattern_fill(canary, 0xc3, XFER);
    ok = demo_dma(&d, canary_pa, FAULT_XFER, true);
    checkf(c, ok && events_after_dma(&d, canary_pa, true, SMMUV3_EVENT_F_TRANSLATION) && edu_pattern_holds(canary, 0xc3, XFER),
           "DMA write into the project's reserved region at 0x%lx: F_TRANSLATION event, memory unchanged", canary_pa);

    sink_printf(out, "summary: %u edu DMAs, %u faults expected, %u recorded, %u unexpected, %lu lost to overflow\n",
                d.dmas, d.faults.expected, d.faults.seen, d.faults.unexpected, u->unit.faults.overflows);
    sink_printf(out, "summary: smmu[%u] commands per operation: 3 maps %lu, a stream's move to a new domain %lu "
                "(CFGI_STE and CMD_SYNC before and after its first double word), a 1-page unmap %lu (TLBI_NH_VA, "
                "CMD_SYNC); events per faulting 4-byte transfer: 1\n", u->unit.index, map_commands, move_commands,
                unmap_commands);
    checkf(c, d.faults.seen == d.faults.expected && d.faults.unexpected == 0 && u->stats.timeouts == 0 &&
                  u->unit.faults.overflows == 0,
           "every expected event and no other, none lost, no command timed out");
    slpt_destroy(&domain);
    page_pool_free(&r->pool, canary);
}
