#include "iommu/page_pool.h"

static void zero_page(void *va)
{
    uint64_t *q = va;
    for (unsigned i = 0; i < PAGE_SIZE / sizeof *q; i++)
        q[i] = 0;
}

bool page_pool_init(struct page_pool *p, void *va, uint64_t pa, size_t bytes)
{
    if (((uintptr_t)va | pa) & (PAGE_SIZE - 1))
        return false;
    uint64_t pages = bytes / PAGE_SIZE;
    if (pages > UINT32_MAX)
        pages = UINT32_MAX;
    uint64_t meta_pages = (pages * sizeof(struct page_meta) + PAGE_SIZE - 1) / PAGE_SIZE;
    if (pages <= meta_pages)
        return false;
    *p = (struct page_pool){.base_va = va, .base_pa = pa, .pages = (uint32_t)pages,
                            .first_usable = (uint32_t)meta_pages, .meta = va};
    for (uint64_t i = 0; i < pages; i++)
        zero_page(p->base_va + i * PAGE_SIZE);
    /* Thread the free list so that the lowest page is handed out first: dumps and tests
     * are easier to read, and nothing depends on it. No page is known clean yet: the zeroes
     * are in the caches. */
    for (uint64_t i = pages; i-- > meta_pages;) {
        p->meta[i].next = p->free_head;
        p->free_head = (uint32_t)i;
    }
    return true;
}

/* Takes the first free page; *was_clean says whether memory holds its zeroes too. */
static void *take(struct page_pool *p, uint64_t *pa, bool *was_clean)
{
    lock_acquire(&p->lock);
    p->attempts++;
    uint32_t index = p->fail_at && p->attempts == p->fail_at ? 0 : p->free_head;
    if (index) {
        struct page_meta *m = &p->meta[index];
        p->free_head = m->next;
        *was_clean = m->clean;
        *m = (struct page_meta){.allocated = 1};
        p->in_use++;
        p->allocations++;
        if (p->in_use > p->high_water)
            p->high_water = p->in_use;
    }
    lock_release(&p->lock);
    if (!index)
        return NULL;
    *pa = p->base_pa + (uint64_t)index * PAGE_SIZE;
    return p->base_va + (size_t)index * PAGE_SIZE; /* zero already */
}

void *page_pool_alloc(struct page_pool *p, uint64_t *pa)
{
    bool clean;
    return take(p, pa, &clean);
}

void *page_pool_alloc_clean(struct page_pool *p, uint64_t *pa, bool *clean)
{
    return take(p, pa, clean);
}

void page_pool_free(struct page_pool *p, void *va)
{
    struct page_meta *m = page_pool_meta(p, va);
    if (!m || !m->allocated)
        return; /* not ours, or freed twice: keep the pool consistent */
    zero_page(va);
    page_pool_free_zeroed(p, va);
}

static void give_back(struct page_pool *p, void *va, bool clean)
{
    struct page_meta *m = page_pool_meta(p, va);
    if (!m || !m->allocated)
        return;
    lock_acquire(&p->lock);
    *m = (struct page_meta){.clean = clean, .next = p->free_head};
    p->free_head = (uint32_t)(m - p->meta);
    p->in_use--;
    lock_release(&p->lock);
}

void page_pool_free_zeroed(struct page_pool *p, void *va)
{
    give_back(p, va, false);
}

void page_pool_free_clean(struct page_pool *p, void *va)
{
    give_back(p, va, true);
}

void page_list_add(struct page_pool *p, struct page_list *l, void *va)
{
    struct page_meta *m = page_pool_meta(p, va);
    if (!m || !m->allocated)
        return;
    uint32_t index = (uint32_t)(m - p->meta);
    m->next = 0;
    if (l->tail)
        p->meta[l->tail].next = index;
    else
        l->head = index;
    l->tail = index;
    l->count++;
}

void page_list_splice(struct page_pool *p, struct page_list *to, struct page_list *from)
{
    if (!from->count)
        return;
    if (to->tail)
        p->meta[to->tail].next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->count += from->count;
    *from = (struct page_list){0};
}

void page_pool_free_list(struct page_pool *p, struct page_list *l, bool clean)
{
    if (!l->count)
        return;
    lock_acquire(&p->lock);
    for (uint32_t index = l->head; index;) {
        struct page_meta *m = &p->meta[index];
        uint32_t next = m->next;
        *m = (struct page_meta){.clean = clean, .next = p->free_head};
        p->free_head = index;
        p->in_use--;
        index = next;
    }
    lock_release(&p->lock);
    *l = (struct page_list){0};
}

void *page_pool_va(const struct page_pool *p, uint64_t pa)
{
    if (pa < p->base_pa || pa - p->base_pa >= (uint64_t)p->pages * PAGE_SIZE)
        return NULL;
    return p->base_va + (pa - p->base_pa);
}

uint64_t page_pool_pa(const struct page_pool *p, const void *va)
{
    return p->base_pa + (uint64_t)((const uint8_t *)va - p->base_va);
}

struct page_meta *page_pool_meta(const struct page_pool *p, const void *va)
{
    const uint8_t *b = va;
    if (b < p->base_va || b >= p->base_va + (uint64_t)p->pages * PAGE_SIZE)
        return NULL;
    uint64_t index = (uint64_t)(b - p->base_va) / PAGE_SIZE;
    return index < p->first_usable ? NULL : &p->meta[index];
}

bool page_pool_overlaps(const struct page_pool *p, uint64_t pa, uint64_t len)
{
    uint64_t end = p->base_pa + (uint64_t)p->pages * PAGE_SIZE;
    return len && pa < end && pa + len > p->base_pa;
}
