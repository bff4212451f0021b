#include "iommu/iova.h"

#include <stddef.h>

/* ---- treap keyed by address ---- */

static uint32_t priority_of(uint64_t addr)
{
    /* A fixed mix of the key: balanced in expectation, and the same run to run. */
    uint64_t z = addr + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31));
}

static struct iova_node *merge(struct iova_node *l, struct iova_node *r)
{
    if (!l)
        return r;
    if (!r)
        return l;
    if (l->priority > r->priority) {
        l->right = merge(l->right, r);
        return l;
    }
    r->left = merge(l, r->left);
    return r;
}

/* Splits into keys < key and keys >= key. */
static void split(struct iova_node *t, uint64_t key, struct iova_node **lo, struct iova_node **hi)
{
    if (!t) {
        *lo = *hi = NULL;
    } else if (t->addr < key) {
        split(t->right, key, &t->right, hi);
        *lo = t;
    } else {
        split(t->left, key, lo, &t->left);
        *hi = t;
    }
}

/* The node with the smallest address >= key. */
static struct iova_node *lower_bound(struct iova_node *t, uint64_t key)
{
    struct iova_node *best = NULL;
    while (t) {
        if (t->addr >= key) {
            best = t;
            t = t->left;
        } else {
            t = t->right;
        }
    }
    return best;
}

/* ---- free blocks ---- */

static uint64_t block(unsigned order)
{
    return 1ull << order;
}

static void put_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    struct iova_node *n = a->spare;
    a->spare = n->right;
    a->spare_count--;
    *n = (struct iova_node){.addr = addr, .priority = priority_of(addr)};
    struct iova_node *lo, *hi;
    split(a->free_blocks[order], addr, &lo, &hi);
    a->free_blocks[order] = merge(merge(lo, n), hi);
    a->nonempty |= 1ull << order;
    a->free_bytes += block(order);
}

/* Removes the free block of this order at exactly addr; false if there is none. */
static bool take_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    struct iova_node *lo, *mid, *hi;
    split(a->free_blocks[order], addr, &lo, &mid);
    split(mid, addr + 1, &mid, &hi);
    a->free_blocks[order] = merge(lo, hi);
    if (!a->free_blocks[order])
        a->nonempty &= ~(1ull << order);
    if (!mid)
        return false;
    mid->right = a->spare;
    a->spare = mid;
    a->spare_count++;
    a->free_bytes -= block(order);
    return true;
}

/* The first free block of this order that ends after 'from'. */
static struct iova_node *first_ending_after(const struct iova_allocator *a, unsigned order, uint64_t from)
{
    uint64_t key = from >= block(order) ? from - block(order) + 1 : 0;
    return lower_bound(a->free_blocks[order], key);
}

static uint64_t space_last(const struct iova_allocator *a)
{
    return block(a->width) - 1;
}

bool iova_init(struct iova_allocator *a, unsigned width, struct iova_node *nodes, uint32_t count)
{
    if (width <= IOVA_MIN_ORDER || width > 63 || count < 2 * width)
        return false;
    *a = (struct iova_allocator){.width = width};
    for (uint32_t i = 0; i < count; i++) {
        nodes[i].right = a->spare;
        a->spare = &nodes[i];
    }
    a->spare_count = count;
    put_free(a, width, 0);
    return true;
}

static unsigned order_of(uint64_t size)
{
    unsigned order = IOVA_MIN_ORDER;
    while (order < 63 && block(order) < size)
        order++;
    return order;
}

uint64_t iova_block_size(uint64_t size)
{
    return block(order_of(size));
}

enum iommu_status iova_alloc(struct iova_allocator *a, uint64_t size, uint64_t min, uint64_t max, uint64_t *addr)
{
    unsigned k = order_of(size);
    if (!size || k > a->width || (k == 63 && size > block(63)))
        return IOMMU_EINVAL;
    if (min > space_last(a) || max < min)
        return min > space_last(a) ? IOMMU_ERANGE : IOMMU_EWINDOW;
    uint64_t hi = max < space_last(a) ? max : space_last(a);
    uint64_t start = (min + block(k) - 1) & ~(block(k) - 1);
    if (start < min || start > hi || hi - start < block(k) - 1)
        return IOMMU_EWINDOW;

    /* The lowest aligned 2^k piece at or after 'start' of any free block of order >= k. */
    uint64_t best = 0;
    unsigned best_order = 0;
    struct iova_node *best_node = NULL;
    for (uint64_t orders = a->nonempty >> k << k; orders; orders &= orders - 1) {
        unsigned j = (unsigned)__builtin_ctzll(orders);
        struct iova_node *n = first_ending_after(a, j, start);
        if (!n)
            continue;
        uint64_t c = n->addr > start ? n->addr : start;
        if (c <= hi && hi - c >= block(k) - 1 && (!best_node || c < best)) {
            best = c;
            best_order = j;
            best_node = n;
        }
    }
    if (!best_node || a->spare_count + 1 < best_order - k)
        return IOMMU_ENOMEM;

    /* Split the block down to 2^k around 'best', returning the other halves. */
    uint64_t cur = best_node->addr;
    take_free(a, best_order, cur);
    for (unsigned j = best_order; j > k; j--) {
        uint64_t half = block(j - 1);
        if (best >= cur + half) {
            put_free(a, j - 1, cur);
            cur += half;
        } else {
            put_free(a, j - 1, cur + half);
        }
    }
    *addr = best;
    return IOMMU_OK;
}

bool iova_any_free(const struct iova_allocator *a, uint64_t base, uint64_t size)
{
    for (uint64_t orders = a->nonempty; orders; orders &= orders - 1) {
        unsigned j = (unsigned)__builtin_ctzll(orders);
        const struct iova_node *n = first_ending_after(a, j, base);
        if (n && n->addr < base + size)
            return true;
    }
    return false;
}

/* Returns one aligned block to the free space, joining it with its free buddies. */
static void release_block(struct iova_allocator *a, uint64_t addr, unsigned k)
{
    while (k < a->width && take_free(a, k, addr ^ block(k))) {
        addr &= ~block(k);
        k++;
    }
    put_free(a, k, addr);
}

enum iommu_status iova_free(struct iova_allocator *a, uint64_t addr, uint64_t size)
{
    unsigned k = order_of(size);
    if (!size || k > a->width || (addr & (block(k) - 1)) || addr > space_last(a) - (block(k) - 1) ||
        iova_any_free(a, addr, block(k)))
        return IOMMU_EINVAL;
    if (a->spare_count < 1)
        return IOMMU_ENOMEM;
    release_block(a, addr, k);
    return IOMMU_OK;
}

/* Bytes of [base, end) that are free, counting the overlap of every free block. */
static uint64_t free_within(const struct iova_node *t, unsigned order, uint64_t base, uint64_t end)
{
    if (!t)
        return 0;
    uint64_t lo = t->addr > base ? t->addr : base;
    uint64_t t_end = t->addr + block(order);
    uint64_t hi = t_end < end ? t_end : end;
    uint64_t here = lo < hi ? hi - lo : 0;
    uint64_t sum = here;
    if (t->addr > base)
        sum += free_within(t->left, order, base, end);
    if (t->addr < end)
        sum += free_within(t->right, order, base, end);
    return sum;
}

static bool range_ok(const struct iova_allocator *a, uint64_t base, uint64_t size)
{
    return size && !((base | size) & (block(IOVA_MIN_ORDER) - 1)) && base <= space_last(a) &&
           size - 1 <= space_last(a) - base;
}

enum iommu_status iova_reserve(struct iova_allocator *a, uint64_t base, uint64_t size)
{
    if (!range_ok(a, base, size))
        return IOMMU_EINVAL;
    uint64_t end = base + size, free = 0;
    for (unsigned j = IOVA_MIN_ORDER; j <= a->width; j++)
        free += free_within(a->free_blocks[j], j, base, end);
    if (free != size)
        return IOMMU_EEXIST;
    /* Only blocks cut by one of the two ends need splitting; each cut costs at most one
     * node per order, so this is the most the loop below can use. */
    if (a->spare_count < 2 * a->width)
        return IOMMU_ENOMEM;
    for (;;) {
        bool changed = false;
        for (uint64_t orders = a->nonempty; orders; orders &= orders - 1) {
            unsigned j = (unsigned)__builtin_ctzll(orders);
            struct iova_node *n = first_ending_after(a, j, base);
            if (!n || n->addr >= end)
                continue;
            uint64_t b = n->addr;
            take_free(a, j, b);
            if (b < base || b + block(j) > end) { /* cut by an end: split in two and look again */
                put_free(a, j - 1, b);
                put_free(a, j - 1, b + block(j - 1));
            }
            changed = true;
            break;
        }
        if (!changed)
            return IOMMU_OK;
    }
}

enum iommu_status iova_unreserve(struct iova_allocator *a, uint64_t base, uint64_t size)
{
    if (!range_ok(a, base, size) || iova_any_free(a, base, size))
        return IOMMU_EINVAL;
    if (a->spare_count < 2 * a->width)
        return IOMMU_ENOMEM;
    /* The range as maximal aligned blocks, each given back with its buddies joined. */
    for (uint64_t cur = base, end = base + size; cur < end;) {
        unsigned k = cur ? (unsigned)__builtin_ctzll(cur) : a->width;
        while (block(k) > end - cur)
            k--;
        release_block(a, cur, k);
        cur += block(k);
    }
    return IOMMU_OK;
}
