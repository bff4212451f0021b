/* A DMA domain: one set of second-level tables, an optional logical address allocator,
 * and the units whose IOTLBs may hold its translations.
 *
 * Every change to a domain's tables or allocator happens under the domain's own lock, and
 * an unmap invalidates before the lock is released, so no IOVA is handed out again while a
 * unit may still translate it. Different domains share no lock but the page pool's (held
 * for a few instructions per table page) and a unit's (held for one invalidation).
 *
 * Likewise a table page a change frees (emptied by an unmap or unprepare, made and undone by
 * a failed map or prepare, or any table of a destroyed domain) goes back to the shared pool
 * only after the invalidation covering its removal has completed on every unit: until
 * then a unit may hold a cached pointer to it (paging-structure caches), and another
 * domain must not be able to take it and fill it with its own entries. */
#ifndef IOMMU_DOMAIN_H
#define IOMMU_DOMAIN_H

#include "iova.h"
#include "lock.h"
#include "slpt.h"
#include "unit.h"

#define DOMAIN_MAX_UNITS 16

struct iommu_domain {
    struct iommu_lock lock;
    uint16_t id;
    struct slpt tables;
    struct iova_allocator *iova;            /* NULL: callers give explicit addresses */
    struct iommu_unit *units[DOMAIN_MAX_UNITS];
    unsigned unit_count;
    uint64_t unmaps, invalidations;         /* for the invalidation economy */
    /* An unmap's invalidation did not complete: the units may still hold translations this
     * domain no longer has. The next unmap flushes the whole domain first and fails until
     * that works, so no caller is told a range is gone while it may not be. */
    bool flush_owed;
    /* The table pages freed by changes whose invalidation did not complete: allocated, out
     * of the pool, until the owed flush succeeds. */
    struct page_list owed_tables;
};

/* format: the entries the units walk (their table_format; NULL: VT-d second-level).
 * write_back: the platform whose flush_cache the domain's tables need (iommu_units_write_back
 * of the units it may be attached to), or NULL when they all snoop their table walks. */
enum iommu_status domain_init(struct iommu_domain *d, uint16_t id, struct page_pool *pool, unsigned levels,
                              uint8_t superpages, const struct pt_format *format, struct iova_allocator *iova,
                              const struct platform *write_back);
/* Frees the tables: they go back to the pool once a domain-selective invalidation has
 * completed on every unit of the domain (devices should have left it by then: their
 * context entries changed). If one fails, the status says so and the pages never go back
 * (leaked rather than handed to another domain a unit may still walk them for). */
enum iommu_status domain_destroy(struct iommu_domain *d);

/* The unit caches translations of this domain from now on (a device was attached there). */
enum iommu_status domain_add_unit(struct iommu_domain *d, struct iommu_unit *u);

enum iommu_status domain_map(struct iommu_domain *d, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm);
enum iommu_status domain_map_frames(struct iommu_domain *d, uint64_t iova, const uint64_t *frames, uint64_t count,
                                    unsigned perm);

/* Allocates a logical range of 'count' frames' size in [min, max] and maps the frames there;
 * on any failure the range goes back to the allocator. */
enum iommu_status domain_alloc_map_frames(struct iommu_domain *d, const uint64_t *frames, uint64_t count,
                                          unsigned perm, uint64_t min, uint64_t max, uint64_t *iova);

/* Unmaps and invalidates on every unit of the domain: one invalidation per unit. */
enum iommu_status domain_unmap(struct iommu_domain *d, uint64_t iova, uint64_t size);
/* Unmaps a range domain_alloc_map_frames returned and gives it back to the allocator. */
enum iommu_status domain_unmap_free(struct iommu_domain *d, uint64_t iova, uint64_t count);

/* slpt_prepare and slpt_unprepare on the domain's tables, under its lock: the tables an
 * unprepare (or a failed prepare) frees wait for an invalidation of the range. Use these,
 * not the slpt_ calls, on a domain's tables. */
enum iommu_status domain_prepare(struct iommu_domain *d, uint64_t iova, uint64_t size);
enum iommu_status domain_unprepare(struct iommu_domain *d, uint64_t iova, uint64_t size);

#endif
