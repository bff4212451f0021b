#include "iommu/domain.h"

enum iommu_status domain_init(struct iommu_domain *d, uint16_t id, struct page_pool *pool, unsigned levels,
                              uint8_t superpages, struct iova_allocator *iova)
{
    *d = (struct iommu_domain){.id = id, .iova = iova};
    return slpt_init(&d->tables, pool, levels, superpages);
}

void domain_destroy(struct iommu_domain *d)
{
    lock_acquire(&d->lock);
    slpt_destroy(&d->tables);
    lock_release(&d->lock);
}

enum iommu_status domain_add_unit(struct iommu_domain *d, struct vtd_unit *u)
{
    lock_acquire(&d->lock);
    enum iommu_status s = IOMMU_OK;
    bool known = false;
    for (unsigned i = 0; i < d->unit_count; i++)
        known = known || d->units[i] == u;
    if (!known && d->unit_count == DOMAIN_MAX_UNITS)
        s = IOMMU_EBUSY;
    else if (!known)
        d->units[d->unit_count++] = u;
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_map(struct iommu_domain *d, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    lock_acquire(&d->lock);
    enum iommu_status s = slpt_map(&d->tables, iova, pa, size, perm);
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_map_frames(struct iommu_domain *d, uint64_t iova, const uint64_t *frames, uint64_t count,
                                    unsigned perm)
{
    lock_acquire(&d->lock);
    enum iommu_status s = slpt_map_frames(&d->tables, iova, frames, count, perm);
    lock_release(&d->lock);
    return s;
}

/* Called with the domain's lock held. */
static enum iommu_status unmap_locked(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
    for (unsigned i = 0; d->flush_owed && i < d->unit_count; i++) {
        enum iommu_status s = vtd_flush_domain(d->units[i], d->id);
        d->invalidations++;
        if (s != IOMMU_OK)
            return s; /* nothing changed: the tables are as they were */
    }
    d->flush_owed = false;
    struct slpt_unmapped removed;
    enum iommu_status s = slpt_unmap(&d->tables, iova, size, &removed);
    d->unmaps++;
    for (unsigned i = 0; s == IOMMU_OK && removed.bytes && i < d->unit_count; i++) {
        s = vtd_flush_range(d->units[i], d->id, removed.first, removed.last);
        d->invalidations++;
        d->flush_owed = s != IOMMU_OK;
    }
    return s;
}

enum iommu_status domain_unmap(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
    lock_acquire(&d->lock);
    enum iommu_status s = unmap_locked(d, iova, size);
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_alloc_map_frames(struct iommu_domain *d, const uint64_t *frames, uint64_t count,
                                          unsigned perm, uint64_t min, uint64_t max, uint64_t *iova)
{
    if (!d->iova)
        return IOMMU_EINVAL;
    if (!count || count > UINT64_MAX >> PAGE_SHIFT)
        return IOMMU_EINVAL;
    lock_acquire(&d->lock);
    uint64_t addr;
    enum iommu_status s = iova_alloc(d->iova, count << PAGE_SHIFT, min, max, &addr);
    if (s == IOMMU_OK) {
        s = slpt_map_frames(&d->tables, addr, frames, count, perm);
        if (s == IOMMU_OK)
            *iova = addr;
        else
            iova_free(d->iova, addr, count << PAGE_SHIFT); /* a retry may use it again */
    }
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_unmap_free(struct iommu_domain *d, uint64_t iova, uint64_t count)
{
    if (!d->iova || !count || count > UINT64_MAX >> PAGE_SHIFT)
        return IOMMU_EINVAL;
    lock_acquire(&d->lock);
    /* The range must be one the allocator handed out; the invalidation completes before the
     * range can be handed out again. */
    enum iommu_status s = unmap_locked(d, iova, count << PAGE_SHIFT);
    if (s == IOMMU_OK)
        s = iova_free(d->iova, iova, count << PAGE_SHIFT);
    lock_release(&d->lock);
    return s;
}
