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

/* Treap insert: down to where the node's priority puts it, then the subtree there is split
 * around its key to become its children. */
static void insert_node(struct iova_node **link, struct iova_node *n)
{
    while (*link && (*link)->priority > n->priority)
        link = n->addr < (*link)->addr ? &(*link)->left : &(*link)->right;
    split(*link, n->addr, &n->left, &n->right);
    *link = n;
}

/* Treap delete of the node with this key: its children are merged in its place. */
static struct iova_node *remove_node(struct iova_node **link, uint64_t addr)
{
    while (*link && (*link)->addr != addr)
        link = addr < (*link)->addr ? &(*link)->left : &(*link)->right;
    struct iova_node *n = *link;
    if (n)
        *link = merge(n->left, n->right);
    return n;
}

static struct iova_node *new_node(struct iova_allocator *a, uint64_t addr, unsigned order)
{
    struct iova_node *n = a->spare;
    a->spare = n->right;
    a->spare_count--;
    *n = (struct iova_node){.addr = addr, .priority = priority_of(addr), .order = (uint8_t)order};
    return n;
}

static void drop_node(struct iova_allocator *a, struct iova_node *n)
{
    n->right = a->spare;
    a->spare = n;
    a->spare_count++;
}

static struct iova_node *leftmost(struct iova_node *t)
{
    while (t && t->left)
        t = t->left;
    return t;
}

static void put_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    struct iova_node *n = new_node(a, addr, order);
    insert_node(&a->free_blocks[order], n);
    if (!a->lowest[order] || addr < a->lowest[order]->addr)
        a->lowest[order] = n;
    a->nonempty |= 1ull << order;
    a->free_bytes += block(order);
}

/* Removes the free block of this order at exactly addr; false if there is none. */
static bool take_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    struct iova_node *n = remove_node(&a->free_blocks[order], addr);
    if (!n)
        return false;
    if (n == a->lowest[order])
        a->lowest[order] = leftmost(a->free_blocks[order]);
    if (!a->free_blocks[order])
        a->nonempty &= ~(1ull << order);
    drop_node(a, n);
    a->free_bytes -= block(order);
    return true;
}

/* The first free block of this order that ends after 'from'. */
static struct iova_node *first_ending_after(const struct iova_allocator *a, unsigned order, uint64_t from)
{
    struct iova_node *low = a->lowest[order];
    if (!low || low->addr + (block(order) - 1) >= from)
        return low; /* the usual case: no window, or the lowest already qualifies */
    return lower_bound(a->free_blocks[order], from - block(order) + 1);
}

static uint64_t space_last(const struct iova_allocator *a)
{
    return block(a->width) - 1;
}

/* ---- the record of allocated blocks: open addressing, linear probing ---- */

static uint32_t record_home(const struct iova_allocator *a, uint64_t addr)
{
    return (uint32_t)(((addr >> IOVA_MIN_ORDER) * 0x9e3779b97f4a7c15ull) >> a->record_shift);
}

/* The slot holding addr's record, or -1. */
static int64_t record_find(const struct iova_allocator *a, uint64_t addr)
{
    uint32_t mask = a->record_slots - 1;
    for (uint32_t i = record_home(a, addr);; i = (i + 1) & mask) {
        uint64_t r = a->records[i];
        if (!r)
            return -1;
        if ((r & ~(uint64_t)(block(IOVA_MIN_ORDER) - 1)) == addr)
            return i;
    }
}

static void record_insert(struct iova_allocator *a, uint64_t addr, unsigned order)
{
    uint32_t mask = a->record_slots - 1, i = record_home(a, addr);
    while (a->records[i])
        i = (i + 1) & mask;
    a->records[i] = addr | order; /* order >= 12 > 0: a record is never 0 */
    a->records_used++;
}

/* Removes the record in slot i, shifting later members of its probe run back so that no
 * lookup stops early at the hole. */
static void record_remove(struct iova_allocator *a, uint32_t i)
{
    uint32_t mask = a->record_slots - 1;
    for (uint32_t j = (i + 1) & mask; a->records[j]; j = (j + 1) & mask) {
        uint32_t home = record_home(a, a->records[j] & ~(uint64_t)(block(IOVA_MIN_ORDER) - 1));
        /* j's record may move to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            a->records[i] = a->records[j];
            i = j;
        }
    }
    a->records[i] = 0;
    a->records_used--;
}

bool iova_init(struct iova_allocator *a, unsigned width, void *mem, size_t bytes)
{
    if (width <= IOVA_MIN_ORDER || width > 63 || ((uintptr_t)mem & 7))
        return false;
    uint32_t slots = 16;
    while ((uint64_t)slots * 2 * sizeof(uint64_t) <= bytes / 4 && slots < (1u << 30))
        slots *= 2;
    size_t record_bytes = (size_t)slots * sizeof(uint64_t);
    if (bytes < record_bytes || (bytes - record_bytes) / sizeof(struct iova_node) < 2 * width)
        return false;
    uint32_t count = (uint32_t)((bytes - record_bytes) / sizeof(struct iova_node));
    *a = (struct iova_allocator){.width = width, .records = mem, .record_slots = slots,
                                 .records_max = slots / 4 * 3};
    for (uint32_t shift = 64; (1u << (64 - shift)) < slots; shift--)
        a->record_shift = shift - 1;
    for (uint32_t i = 0; i < slots; i++)
        a->records[i] = 0;
    struct iova_node *nodes = (struct iova_node *)((uint8_t *)mem + record_bytes);
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
    /* one node per split-off half, less the block's own; one record */
    if (!best_node || a->spare_count + 1 < best_order - k || a->records_used == a->records_max)
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
    record_insert(a, best, k);
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
    int64_t slot = size ? record_find(a, addr) : -1;
    if (slot < 0 || (a->records[slot] & (block(IOVA_MIN_ORDER) - 1)) != k)
        return IOMMU_EINVAL;
    if (a->spare_count < 1)
        return IOMMU_ENOMEM;
    record_remove(a, (uint32_t)slot);
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
