#include "loader/edu_demo.h"

#include <efilib.h>

#include "common/edu.h"
#include "iommu/slpt.h"
#include "loader/expected_faults.h"

#define DEMO_DOMAIN_ID 2
#define IOVA_SRC 0x100000u
#define IOVA_DST 0x101000u
#define IOVA_RO 0x102000u
#define IOVA_UNMAPPED_READ 0x200000u
#define IOVA_UNMAPPED_WRITE 0x201000u
#define XFER 256u

struct edu {
    const struct platform *plat;
    uint64_t bar;
    uint16_t sid;
    const struct pci_function *fn;
    struct vtd_unit *unit;
    unsigned dmas;
};

struct demo {
    struct edu edu;
    struct remapping *r;
    struct checks *c;
    struct fault_count faults;
};

static bool demo_dma(struct edu *e, uint64_t iova, uint32_t len, bool to_ram)
{
    e->dmas++;
    return edu_dma(e->plat, e->bar, iova, len, to_ram);
}

/* Whether the DMA left exactly the expected fault (or, with want_reason 0, none). */
static bool faults_after_dma(struct demo *d, uint64_t iova, bool write, uint8_t want_reason)
{
    return expect_faults(d->r->unit_ptr, d->r->units, remap_print_fault, &d->edu.unit->unit, d->edu.sid, want_reason,
                         write, iova, &d->faults);
}

static bool find_edu(struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv, struct edu *e)
{
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->vendor != EDU_VENDOR || f->device != EDU_DEVICE || f->unit < 0 || (unsigned)f->unit >= r->units)
            continue;
        const struct platform *p = &up->ops;
        uint64_t bar = pci_memory_bar(p, f, 0);
        if (!bar) /* an I/O BAR or none: not edu as QEMU builds it */
            continue;
        uint32_t cmd = p->mmio_read32(p->ctx, f->config_pa + 0x04);
        if ((cmd & 0x6) != 0x6) /* memory space and bus mastering; status bits written as 0 */
            p->mmio_write32(p->ctx, f->config_pa + 0x04, (cmd & 0xffff) | 0x6);
        *e = (struct edu){.plat = p, .bar = bar, .sid = pci_sid(f), .fn = f, .unit = &r->unit[f->unit]};
        return p->mmio_read32(p->ctx, e->bar + EDU_ID) == 0x010000ed;
    }
    return false;
}

static uint8_t *alloc_buffer(uint64_t *pa)
{
    EFI_PHYSICAL_ADDRESS addr = 0xffffffff;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, 1, &addr)))
        return NULL;
    *pa = addr;
    return (uint8_t *)(uintptr_t)addr;
}

void edu_demo(struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv, struct checks *c)
{
    struct demo d = {.r = r, .c = c};
    if (!check(c, find_edu(up, r, inv, &d.edu), "edu 1234:11e8 found, translated by a unit, ID register 0x010000ed"))
        return;
    struct vtd_unit *u = d.edu.unit;
    const struct pci_function *ef = d.edu.fn;
    sink_printf(out, "demo: edu at %02x:%02x.%x (sid 0x%04x) on vtd[%u], BAR0 0x%lx\n", ef->bus, ef->dev, ef->fn,
                d.edu.sid, u->unit.index, d.edu.bar);

    uint64_t src_pa = 0, dst_pa = 0, ro_pa = 0, plain_pa = 0, canary_pa = 0;
    uint8_t *src = alloc_buffer(&src_pa), *dst = alloc_buffer(&dst_pa), *ro = alloc_buffer(&ro_pa);
    uint8_t *plain = alloc_buffer(&plain_pa);
    uint8_t *canary = page_pool_alloc(&r->pool, &canary_pa); /* inside the reserved region */
    if (!check(c, src && dst && ro && plain && canary, "demo buffers allocated"))
        return;

    /* A translated domain of its own, with real second-level tables. */
    static struct slpt domain;
    enum iommu_status st = iommu_units_tables_init(&domain, &r->pool, r->unit_ptr, r->units);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_SRC, src_pa, PAGE_SIZE, SLPT_READ);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_DST, dst_pa, PAGE_SIZE, SLPT_READ | SLPT_WRITE);
    if (st == IOMMU_OK)
        st = slpt_map(&domain, IOVA_RO, ro_pa, PAGE_SIZE, SLPT_READ);
    struct iommu_translation ctx = {IOMMU_TRANSLATE, DEMO_DOMAIN_ID, domain.root_pa, r->levels};
    if (st == IOMMU_OK)
        st = vtd_set_context(u, d.edu.sid, &ctx);
    if (!checkf(c, st == IOMMU_OK && vtd_context_domain(u, d.edu.sid) == DEMO_DOMAIN_ID,
                "edu moved to domain %u: %u-level tables, IOVA 0x%x -> 0x%lx (R), 0x%x -> 0x%lx (RW), 0x%x -> 0x%lx (R)",
                DEMO_DOMAIN_ID, r->levels, IOVA_SRC, src_pa, IOVA_DST, dst_pa, IOVA_RO, ro_pa))
        return;
    remap_drain_faults(r);
    for (unsigned i = 0; i < r->units; i++) { /* start the demo with empty logs */
        struct iommu_fault_record f;
        while (vtd_fault_take(&r->unit[i], &f))
            remap_print_fault(&r->unit[i].unit, &f);
    }

    /* 2. DMA through the tables: RAM -> device from IOVA_SRC, device -> RAM to IOVA_DST. */
    edu_pattern_fill(src, 0x11, XFER);
    edu_pattern_fill(dst, 0xee, XFER);
    bool ok = demo_dma(&d.edu, IOVA_SRC, XFER, false) && demo_dma(&d.edu, IOVA_DST, XFER, true);
    checkf(c, ok && edu_pattern_holds(dst, 0x11, XFER) && faults_after_dma(&d, 0, false, 0),
           "DMA through domain %u: %u bytes read at IOVA 0x%x and written at IOVA 0x%x arrived at 0x%lx", DEMO_DOMAIN_ID,
           XFER, IOVA_SRC, IOVA_DST, dst_pa);

    /* 3. Unmapped IOVAs: a read and a write, each recorded with its reason. */
    ok = demo_dma(&d.edu, IOVA_UNMAPPED_READ, XFER, false);
    checkf(c, ok && faults_after_dma(&d, IOVA_UNMAPPED_READ, false, 6),
           "DMA read from unmapped IOVA 0x%x: fault recorded, reason 6, sid 0x%04x", IOVA_UNMAPPED_READ, d.edu.sid);
    ok = demo_dma(&d.edu, IOVA_UNMAPPED_WRITE, XFER, true);
    checkf(c, ok && faults_after_dma(&d, IOVA_UNMAPPED_WRITE, true, 5),
           "DMA write to unmapped IOVA 0x%x: fault recorded, reason 5, sid 0x%04x", IOVA_UNMAPPED_WRITE, d.edu.sid);

    /* 4. A write through a read-only mapping (never used before: a permission failure on
     * a cached translation is dropped without a record). */
    edu_pattern_fill(ro, 0x5a, XFER);
    ok = demo_dma(&d.edu, IOVA_RO, XFER, true);
    checkf(c, ok && faults_after_dma(&d, IOVA_RO, true, 5) && edu_pattern_holds(ro, 0x5a, XFER),
           "DMA write through read-only IOVA 0x%x: fault recorded, reason 5, memory unchanged", IOVA_RO);

    /* 5. Unmap, then DMA to the same IOVA. QEMU keeps using a cached translation until it
     * is invalidated, so the fault proves that the invalidation happened. */
    edu_pattern_fill(dst, 0x77, XFER);
    struct slpt_unmapped un;
    uint64_t psi_before = u->stats.iotlb_page, dsi_before = u->stats.iotlb_domain;
    struct page_list emptied = {0}; /* tables the unmap empties: the unit may walk them until the flush */
    domain.freed = &emptied;
    st = slpt_unmap(&domain, IOVA_DST, PAGE_SIZE, &un);
    if (st == IOMMU_OK)
        st = vtd_flush_range(u, DEMO_DOMAIN_ID, un.first, un.last);
    domain.freed = NULL;
    if (st == IOMMU_OK)
        slpt_release_freed(&domain, &emptied);
    ok = st == IOMMU_OK && demo_dma(&d.edu, IOVA_DST, XFER, true);
    checkf(c, ok && faults_after_dma(&d, IOVA_DST, true, 5) && edu_pattern_holds(dst, 0x77, XFER),
           "unmap of IOVA 0x%x (%lu page-selective, %lu domain-selective invalidation), then DMA write: fault, "
           "memory unchanged", IOVA_DST, u->stats.iotlb_page - psi_before, u->stats.iotlb_domain - dsi_before);

    /* 6. Back in the default domain: RAM is reachable, the project's region is not. */
    struct iommu_translation def = {IOMMU_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels};
    st = vtd_set_context(u, d.edu.sid, &def);
    edu_pattern_fill(plain, 0x33, XFER);
    ok = st == IOMMU_OK && demo_dma(&d.edu, plain_pa, XFER, false);
    edu_pattern_fill(plain, 0x99, XFER);
    ok = ok && demo_dma(&d.edu, plain_pa, XFER, true);
    checkf(c, ok && edu_pattern_holds(plain, 0x33, XFER) && faults_after_dma(&d, 0, false, 0),
           "edu back in the default domain: RAM at 0x%lx read and written one to one", plain_pa);
    edu_pattern_fill(canary, 0xc3, XFER);
    ok = demo_dma(&d.edu, canary_pa, XFER, true);
    checkf(c, ok && faults_after_dma(&d, canary_pa, true, 5) && edu_pattern_holds(canary, 0xc3, XFER),
           "DMA write into the project's reserved region at 0x%lx: fault recorded, memory unchanged", canary_pa);

    /* 7. Summary */
    const struct vtd_stats *s = &u->stats;
    sink_printf(out, "summary: %u edu DMAs, %u faults expected, %u recorded, %u unexpected, %lu lost to overflow\n",
                d.edu.dmas, d.faults.expected, d.faults.seen, d.faults.unexpected, u->unit.faults.overflows);
    sink_printf(out, "summary: vtd[%u] invalidations: context global %lu device %lu, IOTLB global %lu domain %lu "
                "page %lu, %lu queue waits, %lu timeouts\n", u->unit.index, s->cc_global, s->cc_device, s->iotlb_global,
                s->iotlb_domain, s->iotlb_page, s->waits, s->timeouts);
    checkf(c, d.faults.seen == d.faults.expected && d.faults.unexpected == 0 && s->timeouts == 0,
           "every expected fault and no other, no invalidation timed out");
    slpt_destroy(&domain);
    page_pool_free(&r->pool, canary);
}
