#include "iommu/domain.h"

enum iommu_status domain_init(struct iommu_domain *d, uint16_t id, struct page_pool *pool, unsigned levels,
                              uint8_t superpages, const struct pt_format *format, struct iova_allocator *iova,
                              const struct platform *write_back)
{
    *d = (struct iommu_domain){.id = id, .iova = iova};
    enum iommu_status s = slpt_init(&d->tables, pool, levels, superpages);
    if (s == IOMMU_OK && format)
        s = slpt_set_format(&d->tables, format);
    if (s == IOMMU_OK && write_back)
        s = slpt_set_write_back(&d->tables, write_back->flush_cache, write_back->flush_cache_wait, write_back->ctx);
    return s;
}

/* Called with the domain's lock held, after a change that removed the translations of
 * [first, last] (when 'removed') and freed the tables on 'freed': invalidates on every unit,
 * then gives the tables back. Every freed table was reached through an entry that
 * translates addresses in [first, last] (it held a removed leaf, or the change walked it
 * for that range), so the page-selective invalidation drops the cached pointers to it too.
 * When an invalidation fails, the domain owes a flush and the tables wait for it. */
static enum iommu_status invalidate(struct iommu_domain *d, struct page_list *freed, bool removed, uint64_t first,
                                    uint64_t last)
{
    enum iommu_status s = IOMMU_OK;
    if (removed || freed->count)
        for (unsigned i = 0; s == IOMMU_OK && i < d->unit_count; i++) {
            s = iommu_unit_invalidate_range(d->units[i], d->id, first, last);
            d->invalidations++;
        }
    if (s == IOMMU_OK) {
        slpt_release_freed(&d->tables, freed);
        return IOMMU_OK;
    }
    d->flush_owed = true;
    page_list_splice(d->tables.pool, &d->owed_tables, freed);
    return s;
}

/* Called with the domain's lock held: the whole-domain flush an earlier failure left owed,
 * and then the tables that waited for it go back. */
static enum iommu_status pay_owed_flush(struct iommu_domain *d)
{
    for (unsigned i = 0; d->flush_owed && i < d->unit_count; i++) {
        enum iommu_status s = iommu_unit_invalidate_domain(d->units[i], d->id);
        d->invalidations++;
        if (s != IOMMU_OK)
            return s;
    }
    d->flush_owed = false;
    slpt_release_freed(&d->tables, &d->owed_tables);
    return IOMMU_OK;
}

enum iommu_status domain_destroy(struct iommu_domain *d)
{
    lock_acquire(&d->lock);
    struct page_list freed = {0};
    d->tables.freed = &freed;
    slpt_destroy(&d->tables);
    d->tables.freed = NULL;
    page_list_splice(d->tables.pool, &d->owed_tables, &freed);
    d->flush_owed = d->owed_tables.count != 0;
    enum iommu_status s = pay_owed_flush(d);
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_add_unit(struct iommu_domain *d, struct iommu_unit *u)
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

/* A map that fails undoes itself, freeing the tables it made, which a unit may have walked
 * meanwhile: they wait for an invalidation of the range. The map's status stands; a failed
 * invalidation leaves a flush owed. Called with the domain's lock held. */
static void map_failed(struct iommu_domain *d, struct page_list *freed, uint64_t iova, uint64_t size)
{
    if (freed->count)
        invalidate(d, freed, false, iova, iova + size - 1);
}

enum iommu_status domain_map(struct iommu_domain *d, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    lock_acquire(&d->lock);
    struct page_list freed = {0};
    d->tables.freed = &freed;
    enum iommu_status s = slpt_map(&d->tables, iova, pa, size, perm);
    d->tables.freed = NULL;
    map_failed(d, &freed, iova, size);
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_map_frames(struct iommu_domain *d, uint64_t iova, const uint64_t *frames, uint64_t count,
                                    unsigned perm)
{
    lock_acquire(&d->lock);
    struct page_list freed = {0};
    d->tables.freed = &freed;
    enum iommu_status s = slpt_map_frames(&d->tables, iova, frames, count, perm);
    d->tables.freed = NULL;
    map_failed(d, &freed, iova, count << PAGE_SHIFT);
    lock_release(&d->lock);
    return s;
}

/* Called with the domain's lock held. */
static enum iommu_status unmap_locked(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
    enum iommu_status s = pay_owed_flush(d);
    if (s != IOMMU_OK)
        return s; /* nothing changed: the tables are as they were */
    struct slpt_unmapped removed;
    struct page_list freed = {0};
    d->tables.freed = &freed;
    s = slpt_unmap(&d->tables, iova, size, &removed);
    d->tables.freed = NULL;
    d->unmaps++;
    /* Nothing removed and nothing freed: nothing to invalidate. */
    enum iommu_status f = removed.bytes ? invalidate(d, &freed, true, removed.first, removed.last)
                                        : invalidate(d, &freed, false, iova, iova + size - 1);
    return s != IOMMU_OK ? s : f;
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
        struct page_list freed = {0};
        d->tables.freed = &freed;
        s = slpt_map_frames(&d->tables, addr, frames, count, perm);
        d->tables.freed = NULL;
        map_failed(d, &freed, addr, count << PAGE_SHIFT);
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

enum iommu_status domain_prepare(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
    lock_acquire(&d->lock);
    struct page_list freed = {0};
    d->tables.freed = &freed;
    enum iommu_status s = slpt_prepare(&d->tables, iova, size);
    d->tables.freed = NULL;
    map_failed(d, &freed, iova, size);
    lock_release(&d->lock);
    return s;
}

enum iommu_status domain_unprepare(struct iommu_domain *d, uint64_t iova, uint64_t size)
{
    lock_acquire(&d->lock);
    struct page_list freed = {0};
    d->tables.freed = &freed;
    slpt_unprepare(&d->tables, iova, size);
    d->tables.freed = NULL;
    enum iommu_status s = invalidate(d, &freed, false, iova, iova + size - 1); /* nothing if none freed */
    lock_release(&d->lock);
    return s;
}
