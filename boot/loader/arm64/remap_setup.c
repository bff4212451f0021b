#include "loader/arm64/remap_setup.h"

#include "iommu/pt_format.h"
#include "loader/identity_map.h"
#include "loader/uefi_memory.h"

#define MAX_RANGES 256

uint64_t arm_region_reserve(struct uefi_arm64 *up, uint64_t bytes)
{
    uint64_t align = 2u << 20, pages = (bytes + align) / PAGE_SIZE, pa = 0;
    if (efi_failed(up->bs->allocate_pages(EFI_ALLOCATE_ANY_PAGES, EFI_RESERVED_MEMORY, pages, &pa)))
        return 0;
    uint64_t start = (pa + align - 1) & ~(align - 1);
    if (start > pa)
        up->bs->free_pages(pa, (start - pa) / PAGE_SIZE);
    uint64_t end = pa + pages * PAGE_SIZE;
    if (end > start + bytes)
        up->bs->free_pages(start + bytes, (end - start - bytes) / PAGE_SIZE);
    return start;
}

static bool bring_up_units(struct uefi_arm64 *up, const struct iort_table *iort, unsigned input_bits,
                           struct remapping *r, struct checks *c)
{
    struct iort_cursor cur = {0};
    struct iort_node n;
    while (iort_next_node(iort, &cur, &n)) {
        if (n.type != IORT_NODE_SMMUV3)
            continue;
        if (r->units == ARM_REGION_MAX_SMMUS) {
            sink_printf(out, "remap: warning: more than %u SMMUs, the rest are left alone\n", ARM_REGION_MAX_SMMUS);
            break;
        }
        struct smmuv3_unit *u = &r->unit[r->units];
        uint64_t static_pa = r->region_pa + (uint64_t)r->units * SMMUV3_STATIC_BYTES;
        enum iommu_status st = smmuv3_unit_init(u, &up->ops, &r->pool, n.base_address, r->units,
                                                (void *)(uintptr_t)static_pa, static_pa);
        if (st == IOMMU_OK)
            st = smmuv3_unit_start(u);
        if (!checkf(c, st == IOMMU_OK, "smmu[%u]: driver initialised, queues on (%s)", r->units,
                    iommu_status_name(st)))
            return false;
        sink_printf(out, "remap: smmu[%u] until enabled: %s\n", r->units,
                    u->aborts_when_disabled ? "untranslated DMA aborted (GBPA.ABORT)"
                                            : "untranslated DMA bypasses (GBPA.ABORT does not hold: QEMU 7.2 has no GBPA)");
        sink_printf(out, "remap: smmu[%u] %u-bit stream ids in a %s stream table, command queue 2^%u, event queue "
                    "2^%u, %s\n", r->units, u->sid_bits, u->caps.two_level ? "2-level" : "linear", u->cmdq_log2,
                    u->eventq_log2, u->caps.coherent ? "coherent" : "not coherent: every table change is written back");
        /* The configured input width: 39 bits keeps the walks to 3 levels (as VT-d's aw-bits=39). */
        if (input_bits == 39)
            u->unit.table_levels &= 1u << 3;
        r->unit_ptr[r->units] = &u->unit;
        r->units++;
    }
    r->levels = iommu_units_common_levels(r->unit_ptr, r->units);
    return checkf(c, r->units > 0 && r->levels, "stage-1 depth common to all %u units: %u levels (%u-bit input addresses)",
                  r->units, r->levels, 12 + 9 * r->levels);
}

static unsigned collect_ram(const struct uefi_arm64 *up, struct addr_range *ranges)
{
    static uint8_t map[64 * 1024];
    uint64_t entries = 0, size = 0;
    unsigned n = 0;
    if (!uefi_arm64_memory_map(up, map, sizeof map, &entries, &size))
        return 0;
    for (uint64_t i = 0; i < entries && n < MAX_RANGES; i++) {
        const struct efi_memory_descriptor *d = (const void *)(map + i * size);
        if (uefi_memory_type_is_ram(d->type) || d->type == EFI_PERSISTENT_MEMORY)
            ranges[n++] = (struct addr_range){d->physical_start, d->physical_start + d->pages * PAGE_SIZE};
    }
    return n;
}

static bool build_default_domain(struct uefi_arm64 *up, struct remapping *r, struct checks *c)
{
    static struct addr_range ranges[MAX_RANGES + 1];
    unsigned n = collect_ram(up, ranges);
    enum iommu_status st = iommu_units_tables_init(&r->default_domain, &r->pool, r->unit_ptr, r->units);
    if (st == IOMMU_OK)
        st = identity_map_without_region(&r->default_domain, ranges, n, MAX_RANGES + 1, r->region_pa, r->region_bytes,
                                         &r->identity_bytes);
    return checkf(c, st == IOMMU_OK,
                  "default domain %u: %lu MiB of RAM identity-mapped in %u %s table pages (%s)", DEFAULT_DOMAIN_ID,
                  r->identity_bytes >> 20, r->default_domain.table_pages, pt_arm_stage1.name, iommu_status_name(st));
}

static bool assign_devices(const struct pci_inventory *inv, struct remapping *r, struct checks *c)
{
    unsigned assigned = 0, failed = 0;
    struct iommu_translation t = {IOMMU_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels};
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->unit < 0 || (unsigned)f->unit >= r->units)
            continue;
        if (smmuv3_set_stream(&r->unit[f->unit], f->stream_id, &t) == IOMMU_OK)
            assigned++;
        else
            failed++;
    }
    return checkf(c, failed == 0 && assigned > 0, "%u PCI functions given a stream table entry in the default domain",
                  assigned);
}

bool arm_remap_setup(struct uefi_arm64 *up, const struct iort_table *iort, const struct pci_inventory *inv,
                     uint64_t pool_pa, unsigned input_bits, struct remapping *r, struct checks *c)
{
    sink_printf(out, "remap: reserved region [0x%lx, 0x%lx)\n", r->region_pa, r->region_pa + r->region_bytes);
    if (!check(c, page_pool_init(&r->pool, (void *)(uintptr_t)pool_pa, pool_pa, r->region_pa + r->region_bytes - pool_pa),
               "page pool over the reserved region, after the SMMUs' static structures") ||
        !bring_up_units(up, iort, input_bits, r, c) || !build_default_domain(up, r, c) || !assign_devices(inv, r, c))
        return false;
    bool all = true;
    for (unsigned i = 0; i < r->units; i++) {
        enum iommu_status st = smmuv3_unit_enable(&r->unit[i]);
        uint32_t ack = 0;
        bool intact = smmuv3_unit_intact(&r->unit[i], &ack);
        all = checkf(c, st == IOMMU_OK && intact, "smmu[%u]: translation enabled, CR0ACK 0x%x (%s)", i, ack,
                     iommu_status_name(st)) && all;
    }
    sink_printf(out, "remap: page pool: %u of %u pages in use\n", r->pool.in_use, r->pool.pages - r->pool.first_usable);
    return all;
}

void arm_remap_report(const struct remapping *r)
{
    for (unsigned i = 0; i < r->units; i++) {
        const struct smmuv3_stats *s = &r->unit[i].stats;
        sink_printf(out, "summary: smmu[%u] %lu commands (%lu CFGI, %lu TLBI, %lu CMD_SYNC), %lu events, %lu lost to "
                    "overflow, %lu command errors, %lu timeouts\n", i, s->commands, s->cfgi, s->tlbi, s->syncs,
                    s->events, r->unit[i].unit.faults.overflows, s->command_errors, s->timeouts);
    }
}
