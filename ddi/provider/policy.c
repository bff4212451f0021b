/* The provider (ddi/provider/handles.c): What a domain may map (guest RAM alone), and the physical descriptors callers pass. */
#include "provider_internal.h"

/* ---- policy: the one place that says what is allowed ---- */

static bool behind_unit(const struct ddi_device *dev)
{
    return dev->unit < provider.plat.unit_count;
}

/* The domain types a device may use now, as QueryAvailableDomainTypes reports them. */
ULONG available_types(const struct ddi_device *dev)
{
    if (!behind_unit(dev))
        return 0;
    ULONG mask = 1u << DomainTypeTranslate;
    /* PassThrough is the platform's identity domain, which there must be (see
     * program_context), and DMA Guard withdraws it. */
    if (!provider.dma_guard && provider.plat.has_default_context)
        mask |= 1u << DomainTypePassThrough;
    return mask; /* Unmanaged and TranslateS1 are never offered (docs/ddi.md) */
}

ULONG domain_type_bit(const struct ddi_domain *d)
{
    switch (d->kind) {
    case KIND_TRANSLATE:
    case KIND_V1_OS_MANAGED:
        return 1u << DomainTypeTranslate;
    case KIND_PASSTHROUGH:
        return 1u << DomainTypePassThrough;
    default:
        return 1u << DomainTypeUnmanaged;
    }
}

/* Whether [pa, pa + size) lies wholly inside one guest-RAM range: a binary search for the
 * last range starting at or below pa (the ranges are sorted and merged, so RAM that spans
 * two given ranges is one range here). */
static bool in_guest_ram(uint64_t pa, uint64_t size)
{
    if (!size || pa + size < pa)
        return false;
    unsigned lo = 0, hi = provider.ram_count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (provider.ram[mid].base <= pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && pa + size <= provider.ram[lo - 1].end;
}

/* What a domain may map: guest RAM only, deny by default (ddi/provider.h), and never the
 * project's own memory. A page the guest does not own as RAM (the IOMMU's registers, the
 * MSI window, another device's BAR) would let a device undo the isolation. */
bool may_map(uint64_t pa, uint64_t size)
{
    uint64_t end = provider.plat.protected_base + provider.plat.protected_size;
    bool protected_memory = provider.plat.protected_size && pa < end && pa + size > provider.plat.protected_base;
    return !protected_memory && in_guest_ram(pa, size);
}

bool os_managed(const struct ddi_domain *d)
{
    return d->kind == KIND_TRANSLATE || d->kind == KIND_V1_OS_MANAGED;
}

bool perm_valid(ULONG perm)
{
    return perm && !(perm & ~(ULONG)(IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE));
}

static unsigned slpt_perm(ULONG perm)
{
    return (perm & IOMMU_ACCESS_READ ? SLPT_READ : 0) | (perm & IOMMU_ACCESS_WRITE ? SLPT_WRITE : 0);
}

/* ---- physical descriptors ---- */

bool phys_from_mdl(const MDL *mdl, struct phys *out)
{
    if (!mdl || (mdl->ByteOffset & (PAGE_SIZE - 1)) || (mdl->ByteCount & (PAGE_SIZE - 1)) || !mdl->ByteCount)
        return false;
    *out = (struct phys){.frames = (const uint64_t *)MmGetMdlPfnArray(mdl), .pages = mdl->ByteCount / PAGE_SIZE};
    return out->pages <= DDI_MAX_MAP_PAGES;
}

bool phys_from_descriptor(const IOMMU_MAP_PHYSICAL_ADDRESS *d, struct phys *out)
{
    if (!d)
        return false;
    switch (d->MapType) {
    case MapPhysicalAddressTypeMdl:
        return phys_from_mdl(d->Mdl.Mdl, out);
    case MapPhysicalAddressTypeContiguousRange: {
        uint64_t base = (uint64_t)d->ContiguousRange.Base.QuadPart, size = d->ContiguousRange.Size;
        if ((base | size) & (PAGE_SIZE - 1) || !size || size / PAGE_SIZE > DDI_MAX_MAP_PAGES || base + size < base)
            return false;
        *out = (struct phys){.contiguous = true, .base = base, .pages = size / PAGE_SIZE};
        return true;
    }
    case MapPhysicalAddressTypePfn:
        if (!d->PfnArray.PageFrame || !d->PfnArray.NumberOfPages || d->PfnArray.NumberOfPages > DDI_MAX_MAP_PAGES)
            return false;
        *out = (struct phys){.frames = (const uint64_t *)d->PfnArray.PageFrame, .pages = d->PfnArray.NumberOfPages};
        return true;
    default:
        return false;
    }
}

/* Every page of the descriptor, one may_map per run of consecutive frames, so a long list
 * costs a pass over it and a search per run. */
bool phys_may_map(const struct phys *ph)
{
    if (ph->contiguous)
        return may_map(ph->base, ph->pages * PAGE_SIZE);
    for (uint64_t i = 0; i < ph->pages;) {
        /* A frame number too large for an address would wrap round to some other page. */
        if (ph->frames[i] > UINT64_MAX >> PAGE_SHIFT)
            return false;
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        if (!may_map(ph->frames[i] << PAGE_SHIFT, run * PAGE_SIZE))
            return false;
        i += run;
    }
    return true;
}

NTSTATUS status_of(enum iommu_status s)
{
    switch (s) {
    case IOMMU_OK:
        return STATUS_SUCCESS;
    case IOMMU_EEXIST:
        return STATUS_RESOURCE_IN_USE; /* the reference's "STATUS_IN_USE" (section 5.1) */
    case IOMMU_ENOMEM:
        return STATUS_INSUFFICIENT_RESOURCES;
    default:
        return STATUS_UNSUCCESSFUL;
    }
}

/* Whether a live token of d covers any of [base, base + size); with the provider lock held. */
static bool overlaps_token(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    for (unsigned i = 0; i < TOKEN_SLOTS; i++) {
        const struct ddi_token *t = &provider.token[i];
        if (t->in_use && t->domain == (int)domain_index(d) && base < t->pub.LogicalAddressBase + t->pub.Size &&
            t->pub.LogicalAddressBase < base + size)
            return true;
    }
    return false;
}


bool any_mapped(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    for (uint64_t a = base; a < base + size; a += PAGE_SIZE)
        if (slpt_lookup(&d->core.tables, a, NULL, NULL, NULL))
            return true;
    return false;
}

/* A token's range belongs to its token alone: explicit and identity maps may not land in it,
 * and unmaps other than the token's own may not take its pages (docs/ddi.md). With the
 * domain's layout lock held, so no token can appear between this check and the change. */
bool range_has_token(const struct ddi_domain *d, uint64_t base, uint64_t size)
{
    lock_acquire(&provider.lock);
    bool hit = overlaps_token(d, base, size);
    lock_release(&provider.lock);
    return hit;
}

bool phys_has_token(const struct ddi_domain *d, const struct phys *ph)
{
    if (ph->contiguous)
        return range_has_token(d, ph->base, ph->pages * PAGE_SIZE);
    for (uint64_t i = 0; i < ph->pages; i++)
        if (range_has_token(d, ph->frames[i] << PAGE_SHIFT, PAGE_SIZE))
            return true;
    return false;
}

/* Maps ph at iova in the domain (all or nothing). */
enum iommu_status map_phys(struct ddi_domain *d, uint64_t iova, const struct phys *ph, ULONG perm)
{
    if (ph->contiguous)
        return domain_map(&d->core, iova, ph->base, ph->pages * PAGE_SIZE, slpt_perm(perm));
    return domain_map_frames(&d->core, iova, ph->frames, ph->pages, slpt_perm(perm));
}

/* Identity: each run of contiguous frames maps to itself; all or nothing. */
enum iommu_status map_identity(struct ddi_domain *d, const struct phys *ph, ULONG perm)
{
    if (ph->contiguous)
        return domain_map(&d->core, ph->base, ph->base, ph->pages * PAGE_SIZE, slpt_perm(perm));
    for (uint64_t i = 0; i < ph->pages;) {
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        uint64_t pa = ph->frames[i] << PAGE_SHIFT;
        enum iommu_status s = domain_map(&d->core, pa, pa, run * PAGE_SIZE, slpt_perm(perm));
        if (s != IOMMU_OK) {
            for (uint64_t k = 0; k < i;) { /* undo the runs mapped before */
                uint64_t r = 1;
                while (k + r < i && ph->frames[k + r] == ph->frames[k] + r)
                    r++;
                domain_unmap(&d->core, ph->frames[k] << PAGE_SHIFT, r * PAGE_SIZE);
                k += r;
            }
            return s;
        }
        i += run;
    }
    return IOMMU_OK;
}

/* Whether some page P of ph is mapped at logical P to another page (a logical map made
 * there): an identity unmap may not take it (docs/ddi.md). */
bool phys_maps_other(const struct ddi_domain *d, const struct phys *ph)
{
    for (uint64_t i = 0; i < ph->pages; i++) {
        uint64_t p = ph->contiguous ? ph->base + i * PAGE_SIZE : ph->frames[i] << PAGE_SHIFT, pa;
        if (slpt_lookup(&d->core.tables, p, &pa, NULL, NULL) && pa != p)
            return true;
    }
    return false;
}

void unmap_identity(struct ddi_domain *d, const struct phys *ph)
{
    if (ph->contiguous) {
        domain_unmap(&d->core, ph->base, ph->pages * PAGE_SIZE);
        return;
    }
    for (uint64_t i = 0; i < ph->pages;) {
        uint64_t run = 1;
        while (i + run < ph->pages && ph->frames[i + run] == ph->frames[i] + run)
            run++;
        domain_unmap(&d->core, ph->frames[i] << PAGE_SHIFT, run * PAGE_SIZE);
        i += run;
    }
}
