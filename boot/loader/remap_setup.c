#include "loader/remap_setup.h"

#include <efilib.h>

#include "iommu/ranges.h"
#include "loader/identity_map.h"

#define MAX_RANGES 512
#define EFI_PERSISTENT_MEMORY 14 /* UEFI 2.5; gnu-efi 3.0.15 has no name for it */

uint64_t remap_reserve_region(uint64_t bytes)
{
    EFI_PHYSICAL_ADDRESS addr = 0xffffffff;
    EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiReservedMemoryType, bytes / PAGE_SIZE,
                                      &addr);
    return EFI_ERROR(st) ? 0 : addr;
}

static bool bring_up_units(struct uefi_platform *up, const struct dmar_table *dmar, struct remapping *r,
                           struct checks *c)
{
    struct dmar_struct s;
    for (uint32_t cur = 0; dmar_next_struct(dmar, &cur, &s);) {
        if (s.type != DMAR_TYPE_DRHD)
            continue;
        if (r->units == REMAP_MAX_UNITS) {
            sink_printf(out, "remap: warning: more than %u units, the rest are left alone\n", REMAP_MAX_UNITS);
            break;
        }
        struct vtd_unit *u = &r->unit[r->units];
        enum iommu_status st = vtd_unit_init(u, &up->ops, &r->pool, s.register_base, s.segment, r->units);
        if (!checkf(c, st == IOMMU_OK, "vtd[%u]: driver initialised (%s)", r->units, iommu_status_name(st)))
            return false;
        sink_printf(out, "remap: vtd[%u] %u-level tables, %s invalidation, superpages%s%s\n", r->units,
                    vtd_unit_levels(u), u->queued ? "queued" : "register-based",
                    u->unit.superpages & SLPT_SUPERPAGE_2M ? " 2M" : "", u->unit.superpages & SLPT_SUPERPAGE_1G ? " 1G" : "");
        r->unit_ptr[r->units] = &u->unit;
        r->units++;
    }
    r->levels = iommu_units_common_levels(r->unit_ptr, r->units);
    r->superpages = iommu_units_common_superpages(r->unit_ptr, r->units);
    return checkf(c, r->units > 0 && r->levels, "second-level depth common to all %u units: %u levels", r->units,
                  r->levels);
}

static unsigned collect_ranges(struct uefi_platform *up, const struct dmar_table *dmar, struct addr_range *ranges)
{
    unsigned n = 0;
    UINTN entries, key, size;
    UINT32 version;
    /* A fresh map: the region and other allocations since start-up are in it. */
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &key, &size, &version);
    for (UINTN i = 0; map && i < entries && n < MAX_RANGES; i++) {
        const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)map + i * size);
        /* Devices reach persistent memory too (the hypercall server's guest RAM does not
         * count it: loader/hv_setup.c). */
        if (uefi_memory_is_ram(d->Type) || d->Type == EFI_PERSISTENT_MEMORY)
            ranges[n++] = (struct addr_range){d->PhysicalStart, d->PhysicalStart + d->NumberOfPages * PAGE_SIZE};
    }
    if (map)
        FreePool(map);
    (void)up;
    struct dmar_struct s;
    for (uint32_t cur = 0; dmar_next_struct(dmar, &cur, &s) && n < MAX_RANGES;) {
        if (s.type == DMAR_TYPE_RMRR && s.limit >= s.base) {
            sink_printf(out, "remap: RMRR [0x%lx, 0x%lx] identity-mapped for its devices\n", s.base, s.limit);
            ranges[n++] = (struct addr_range){s.base, s.limit + 1};
        }
    }
    return n;
}

static bool build_default_domain(struct uefi_platform *up, const struct dmar_table *dmar, struct remapping *r,
                                 struct checks *c)
{
    static struct addr_range ranges[MAX_RANGES + 1];
    unsigned n = collect_ranges(up, dmar, ranges);
    enum iommu_status st = iommu_units_tables_init(&r->default_domain, &r->pool, r->unit_ptr, r->units);
    if (st == IOMMU_OK && r->default_domain.sync)
        sink_printf(out, "remap: a unit does not snoop its table walks (ECAP.C = 0): every table change is written "
                         "back (%s)\n", uefi_platform_write_back_name(up));
    if (st == IOMMU_OK)
        st = identity_map_without_region(&r->default_domain, ranges, n, MAX_RANGES + 1, r->region_pa, r->region_bytes,
                                         &r->identity_bytes);
    return checkf(c, st == IOMMU_OK,
                  "default domain %u: %lu MiB of RAM and RMRRs identity-mapped in %u table pages (%s)",
                  DEFAULT_DOMAIN_ID, r->identity_bytes >> 20, r->default_domain.table_pages, iommu_status_name(st));
}

static bool assign_devices(const struct pci_inventory *inv, struct remapping *r, struct checks *c)
{
    unsigned assigned = 0, failed = 0;
    struct iommu_translation ctx = {IOMMU_TRANSLATE, DEFAULT_DOMAIN_ID, r->default_domain.root_pa, r->levels};
    for (uint32_t i = 0; i < inv->count; i++) {
        const struct pci_function *f = &inv->fn[i];
        if (f->unit < 0 || (unsigned)f->unit >= r->units)
            continue;
        if (vtd_set_context(&r->unit[f->unit], pci_sid(f), &ctx) == IOMMU_OK)
            assigned++;
        else
            failed++;
    }
    return checkf(c, failed == 0, "%u PCI functions given a context entry in the default domain", assigned);
}

bool remap_setup(struct uefi_platform *up, const struct dmar_table *dmar, const struct pci_inventory *inv,
                 uint64_t region_pa, uint64_t region_bytes, uint64_t pool_pa, struct remapping *r,
                 struct checks *c)
{
    r->region_pa = region_pa;
    r->region_bytes = region_bytes;
    if (!check(c, page_pool_init(&r->pool, (void *)(uintptr_t)pool_pa, pool_pa, region_pa + region_bytes - pool_pa),
               "page pool over the reserved region, after the loader's copy") || !bring_up_units(up, dmar, r, c) || !build_default_domain(up, dmar, r, c) ||
        !assign_devices(inv, r, c))
        return false;
    bool all = true;
    for (unsigned i = 0; i < r->units; i++) {
        struct vtd_unit *u = &r->unit[i];
        enum iommu_status st = vtd_unit_enable(u);
        uint32_t gsts;
        bool translating = vtd_unit_translating(u, &gsts);
        all = checkf(c, st == IOMMU_OK && translating, "vtd[%u]: translation enabled, GSTS 0x%08x (%s)", i,
                     gsts, iommu_status_name(st)) && all;
    }
    sink_printf(out, "remap: page pool: %u of %u pages in use\n", r->pool.in_use, r->pool.pages - r->pool.first_usable);
    return all;
}

void remap_check_firmware_dma(struct uefi_platform *up, EFI_HANDLE image, struct checks *c)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_BLOCK_IO *bio = NULL;
    EFI_STATUS st = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    if (!EFI_ERROR(st))
        st = uefi_call_wrapper(BS->HandleProtocol, 3, loaded->DeviceHandle, &BlockIoProtocol, (void **)&bio);
    if (!check(c, !EFI_ERROR(st) && bio, "the boot disk's BlockIo is there"))
        return;
    /* Into the firmware's memory: the loader itself runs in the reserved region, which the
     * default domain leaves out, so a buffer of its own would take the disk's DMA fault. */
    EFI_PHYSICAL_ADDRESS block = 0xffffffff;
    UINT32 size = bio->Media->BlockSize <= PAGE_SIZE ? bio->Media->BlockSize : 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiBootServicesData, 1, &block)))
        size = 0;
    uint64_t t0 = up->ops.now_ns(up->ops.ctx);
    st = size ? uefi_call_wrapper(bio->ReadBlocks, 5, bio, bio->Media->MediaId, 0, size, (void *)(uintptr_t)block)
              : EFI_BAD_BUFFER_SIZE;
    uint64_t ms = (up->ops.now_ns(up->ops.ctx) - t0) / 1000000;
    if (size)
        uefi_call_wrapper(BS->FreePages, 2, block, 1);
    checkf(c, !EFI_ERROR(st) && ms < 2000, "firmware disk read after translation is on: status %lu in %lu ms",
           (uint64_t)st, ms);
}
