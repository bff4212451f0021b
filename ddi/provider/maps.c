/* The provider (ddi/provider/handles.c): Logical and identity mappings. */
#include "provider_internal.h"

/* ---- logical and identity mappings ---- */

/* Maps ph at iova unless a token holds any of it; with the layout lock held. */
static NTSTATUS map_unclaimed(struct ddi_domain *d, uint64_t iova, const struct phys *ph, ULONG perm)
{
    if (range_has_token(d, iova, ph->pages * PAGE_SIZE))
        return STATUS_RESOURCE_IN_USE;
    enum iommu_status s = map_phys(d, iova, ph, perm);
    return s == IOMMU_EINVAL || s == IOMMU_ERANGE ? STATUS_INVALID_PARAMETER_4 : status_of(s);
}

NTSTATUS NTAPI provider_MapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl, ULONGLONG LogicalAddress)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1;
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!phys_from_mdl(Mdl, &ph))
        st = STATUS_INVALID_PARAMETER_3; /* M1 */
    else if (LogicalAddress & (PAGE_SIZE - 1) || LogicalAddress >= slpt_iova_limit(&d->core.tables))
        st = STATUS_INVALID_PARAMETER_4; /* M2 */
    else if (d->has_allocator)
        st = STATUS_NOT_SUPPORTED; /* the buddy allocator takes no explicit addresses (M6) */
    else if (!phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    else {
        lock_acquire(&d->layout_lock);
        st = map_unclaimed(d, LogicalAddress, &ph, Permissions);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

NTSTATUS NTAPI provider_MapLogicalRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                          PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap,
                                          PIOMMU_DMA_LOGICAL_ADDRESS ExplicitLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS MinLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS MaxLogicalAddress,
                                          PIOMMU_DMA_LOGICAL_ADDRESS LogicalAddressOut)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    struct phys ph;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* M3 */
    else if (!perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!phys_from_descriptor(PhysicalAddressToMap, &ph))
        st = STATUS_INVALID_PARAMETER_3; /* M4 */
    else if (!LogicalAddressOut)
        st = STATUS_INVALID_PARAMETER_7;
    else if (d->has_allocator && ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* M6, documented code */
    else if (!d->has_allocator && !ExplicitLogicalAddress)
        st = STATUS_NOT_SUPPORTED; /* M5 */
    else if (!d->has_allocator && ((*ExplicitLogicalAddress & (PAGE_SIZE - 1)) ||
                                   *ExplicitLogicalAddress >= slpt_iova_limit(&d->core.tables)))
        st = STATUS_INVALID_PARAMETER_4; /* M7, documented code; M8: Min/Max ignored */
    if (NT_SUCCESS(st) && !phys_may_map(&ph))
        st = STATUS_ACCESS_DENIED;
    if (!NT_SUCCESS(st)) {
        domain_put(d);
        return st;
    }
    uint64_t iova = 0, size = ph.pages * PAGE_SIZE;
    lock_acquire(&d->layout_lock);
    if (d->has_allocator) {
        uint64_t min = MinLogicalAddress ? *MinLogicalAddress : 0;
        uint64_t max = MaxLogicalAddress ? *MaxLogicalAddress : UINT64_MAX;
        enum iommu_status s = iova_alloc(&d->iova, size, min, max, &iova);
        st = s == IOMMU_OK ? STATUS_SUCCESS
           : s == IOMMU_EINVAL ? STATUS_INVALID_PARAMETER_3
           : s == IOMMU_ENOMEM ? STATUS_INSUFFICIENT_RESOURCES
                               : STATUS_INVALID_PARAMETER_MIX; /* M10, documented code */
    } else
        iova = *ExplicitLogicalAddress;
    if (NT_SUCCESS(st)) {
        st = map_unclaimed(d, iova, &ph, Permissions);
        if (!NT_SUCCESS(st) && d->has_allocator)
            iova_free(&d->iova, iova, size); /* M15 */
    }
    lock_release(&d->layout_lock);
    if (NT_SUCCESS(st))
        *LogicalAddressOut = iova; /* M13: only on success */
    domain_put(d);
    return st;
}

/* After an unmap of [base, base + size) on a domain with an allocator (layout lock held):
 * every allocation the unmap covered whole goes back (M17). A range the allocator gave is its
 * block's head, mapped from the start of the block, the rest of the block never mapped; so an
 * allocation was covered whole when its block starts inside the unmapped range and nothing
 * of the block is mapped now. One whose start lies outside, or whose pages go on past the
 * end, stays allocated (docs/ddi.md, M18). No token's block can start inside: the unmap was
 * refused if a token covered any of the range.
 *
 * The blocks handed out are the allocator's record, an open-addressed table whose slots hold
 * address | order, 0 when empty (iommu/iova.h): read here, freed through iova_free. A free
 * moves later members of its probe run back into the slot it empties, never past it, so the
 * slot is looked at again and the walk still sees every member once at least. */
static void free_covered_allocations(struct ddi_domain *d, uint64_t base, uint64_t size)
{
    const struct iova_table *held = &d->iova.allocated;
    const uint64_t order_bits = PAGE_SIZE - 1, end = base + size;
    for (uint32_t i = 0; i <= held->mask;) {
        uint64_t r = held->slots[i], addr = r & ~order_bits;
        uint64_t block = r ? 1ull << (r & order_bits) : 0;
        if (r && addr >= base && addr < end && (addr + block <= end || !any_mapped(d, end, addr + block - end)) &&
            iova_free(&d->iova, addr, block) == IOMMU_OK)
            continue; /* slot i may hold another block now */
        i++;
    }
}

NTSTATUS NTAPI provider_UnmapLogicalRange(PIOMMU_DMA_DOMAIN Domain, ULONGLONG LogicalAddress, ULONGLONG NumberOfPages)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* M16 */
    else if (LogicalAddress & (PAGE_SIZE - 1) || LogicalAddress >= slpt_iova_limit(&d->core.tables))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!NumberOfPages || NumberOfPages > DDI_MAX_MAP_PAGES ||
             NumberOfPages > (slpt_iova_limit(&d->core.tables) - LogicalAddress) / PAGE_SIZE)
        st = STATUS_INVALID_PARAMETER_3;
    else {
        uint64_t size = NumberOfPages * PAGE_SIZE;
        lock_acquire(&d->layout_lock);
        st = range_has_token(d, LogicalAddress, size)
                 ? STATUS_RESOURCE_IN_USE
                 : status_of(domain_unmap(&d->core, LogicalAddress, size)); /* M17 */
        if (NT_SUCCESS(st) && d->has_allocator)
            free_covered_allocations(d, LogicalAddress, size);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

/* Identity maps, V1 (MDL) and Ex (descriptor): bad_descriptor is the status for a descriptor
 * that cannot be used, which differs between map and unmap. */
static NTSTATUS identity(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, bool map, bool have_phys, const struct phys *ph,
                         NTSTATUS bad_descriptor)
{
    struct ddi_domain *d = domain_get(Domain);
    if (!d)
        return STATUS_INVALID_PARAMETER_1;
    NTSTATUS st = STATUS_SUCCESS;
    if (d->kind == KIND_PASSTHROUGH)
        st = STATUS_SUCCESS; /* I1: nothing to do */
    else if (!os_managed(d))
        st = STATUS_INVALID_PARAMETER_1; /* I2 */
    else if (map && !perm_valid(Permissions))
        st = STATUS_INVALID_PARAMETER_2;
    else if (!have_phys)
        st = bad_descriptor; /* I3 */
    else if (d->has_allocator)
        st = STATUS_NOT_SUPPORTED; /* I4 */
    else if (map && !phys_may_map(ph))
        st = STATUS_ACCESS_DENIED;
    else {
        lock_acquire(&d->layout_lock);
        if (phys_has_token(d, ph) || (!map && phys_maps_other(d, ph)))
            st = STATUS_RESOURCE_IN_USE;
        else if (map) {
            enum iommu_status s = map_identity(d, ph, Permissions);
            st = s == IOMMU_EINVAL || s == IOMMU_ERANGE ? bad_descriptor : status_of(s); /* I5 */
        } else
            unmap_identity(d, ph);
        lock_release(&d->layout_lock);
    }
    domain_put(d);
    return st;
}

NTSTATUS NTAPI provider_MapIdentityRange(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions, PMDL Mdl)
{
    struct phys ph;
    bool ok = phys_from_mdl(Mdl, &ph);
    return identity(Domain, Permissions, true, ok, &ph, STATUS_INVALID_PARAMETER_3);
}

NTSTATUS NTAPI provider_UnmapIdentityRange(PIOMMU_DMA_DOMAIN Domain, PMDL Mdl)
{
    struct phys ph;
    bool ok = phys_from_mdl(Mdl, &ph);
    return identity(Domain, 0, false, ok, &ph, STATUS_INVALID_PARAMETER_2);
}

NTSTATUS NTAPI provider_MapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, ULONG Permissions,
                                           PIOMMU_MAP_PHYSICAL_ADDRESS PhysicalAddressToMap)
{
    struct phys ph;
    bool ok = phys_from_descriptor(PhysicalAddressToMap, &ph);
    return identity(Domain, Permissions, true, ok, &ph, STATUS_INVALID_PARAMETER_3);
}

NTSTATUS NTAPI provider_UnmapIdentityRangeEx(PIOMMU_DMA_DOMAIN Domain, PIOMMU_MAP_PHYSICAL_ADDRESS MappedPhysicalAddress)
{
    struct phys ph;
    bool ok = phys_from_descriptor(MappedPhysicalAddress, &ph);
    return identity(Domain, 0, false, ok, &ph, STATUS_INVALID_PARAMETER_2);
}
