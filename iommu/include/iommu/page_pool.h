/* A bounded pool of 4 KiB pages for the tables the hardware walks (root, context and
 * second-level tables, invalidation queues).
 *
 * The pool manages one physically contiguous region, the memory the project reserves for
 * itself: that region is what the default domain leaves out of its identity map, so no
 * device can reach a table. Free pages are kept on a list threaded through the pages
 * themselves; each page has a small metadata record (the number of non-zero entries when
 * it holds a table) so that "this table became empty" costs O(1).
 *
 * Free pages are kept zeroed, so an allocation costs no store into the page, not 512: a
 * table freed because it became empty is zero already (page_pool_free_zeroed), anything
 * else is zeroed when it is freed. The free list is threaded through the metadata records,
 * not the pages, so a free page is never written while it sits in the pool.
 *
 * For units whose table walks do not snoop the CPU's caches (ECAP.C = 0), the pool also
 * knows which free pages are clean: zero in memory too, not only in the caches. Such a
 * page needs no write-back when it becomes a table (page_pool_alloc_clean says which it
 * is); any other is written back whole by its user, once, and stays clean for as long as
 * its users write back every change they make to it and return it with
 * page_pool_free_clean. */
#ifndef IOMMU_PAGE_POOL_H
#define IOMMU_PAGE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#define PAGE_SHIFT 12u
#define PAGE_SIZE (1u << PAGE_SHIFT)

struct page_meta {
    uint16_t entries; /* non-zero entries, for pages holding a table */
    uint16_t pins;    /* pre-populated ranges holding it: kept while non-zero, even empty */
    uint8_t allocated;
    uint8_t clean;    /* free and zero in memory, beyond the CPU's caches */
    uint32_t next;    /* free: the index of the next free page, 0 for none */
};


struct page_pool {
    struct iommu_lock lock; /* held inside alloc and free only: domains share one pool */
    uint8_t *base_va;
    uint64_t base_pa;
    uint32_t pages;        /* pages in the region, metadata included */
    uint32_t first_usable; /* pages before this hold the metadata array */
    uint32_t in_use;
    uint32_t high_water;
    uint64_t allocations;  /* successful allocations so far */
    uint64_t fail_at;      /* when non-zero, the allocation with this 1-based number fails
                              (failure injection for tests); counted across failures too */
    uint64_t attempts;
    struct page_meta *meta;
    uint32_t free_head;    /* index of the first free page, 0 for none (page 0 holds metadata) */
};

/* Takes over [va, va + bytes) whose physical address is pa; both page aligned. Returns
 * false when the region cannot hold its own metadata and at least one page. */
bool page_pool_init(struct page_pool *p, void *va, uint64_t pa, size_t bytes);

/* A zeroed page, or NULL when the pool is empty (or failure injection says so). Zero as the
 * CPU sees it; what memory holds is unknown. */
void *page_pool_alloc(struct page_pool *p, uint64_t *pa);
/* As page_pool_alloc, and *clean says whether memory holds the page's zeroes too (the page
 * last came back with page_pool_free_clean). If not, a user whose device does not snoop
 * writes it back whole: once, as long as it is kept clean from then on. */
void *page_pool_alloc_clean(struct page_pool *p, uint64_t *pa, bool *clean);
void page_pool_free(struct page_pool *p, void *va);
/* For pages the caller knows to be all zeroes (an empty table). */
void page_pool_free_zeroed(struct page_pool *p, void *va);
/* For pages the caller knows to be all zeroes in memory too: every store into the page
 * since it was taken with page_pool_alloc_clean (or since it was last written back whole)
 * has been written back. The next page_pool_alloc_clean writes nothing back. */
void page_pool_free_clean(struct page_pool *p, void *va);

/* Allocated pages waiting to be given back, linked through their metadata (the pages
 * themselves are not written): for tables a unit may still walk until an invalidation
 * completes. Zero-initialised means empty. Only their owner touches the list; the pages
 * stay allocated, and counted in in_use, while on it. */
struct page_list {
    uint32_t head, tail; /* page indexes, 0 for none */
    uint32_t count;
};

/* Puts an allocated page on the list. */
void page_list_add(struct page_pool *p, struct page_list *l, void *va);
/* Moves every page of 'from' onto 'to'; 'from' is left empty. */
void page_list_splice(struct page_pool *p, struct page_list *to, struct page_list *from);
/* Gives every page of the list back, under one hold of the pool's lock: pages the caller
 * knows to be all zeroes (as page_pool_free_zeroed), or zeroes in memory too when clean (as
 * page_pool_free_clean). The list is left empty. */
void page_pool_free_list(struct page_pool *p, struct page_list *l, bool clean);

/* Translation within the region; page_pool_va returns NULL outside it. */
void *page_pool_va(const struct page_pool *p, uint64_t pa);
uint64_t page_pool_pa(const struct page_pool *p, const void *va);
struct page_meta *page_pool_meta(const struct page_pool *p, const void *va);

static inline uint32_t page_pool_free_pages(const struct page_pool *p)
{
    return p->pages - p->first_usable - p->in_use;
}

/* True when [pa, pa + len) overlaps the region (metadata pages included). */
bool page_pool_overlaps(const struct page_pool *p, uint64_t pa, uint64_t len);

#endif
