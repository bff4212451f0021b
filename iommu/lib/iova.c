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

/* ---- sets of blocks keyed by address: open addressing, linear probing ---- */

#define ORDER_BITS (block(IOVA_MIN_ORDER) - 1) /* a block's order sits below its address */

static uint32_t table_home(const struct iova_table *t, uint64_t addr)
{
    return (uint32_t)(((addr >> IOVA_MIN_ORDER) * 0x9e3779b97f4a7c15ull) >> t->shift);
}

/* The slot holding the block at addr, or -1. */
static int64_t table_find(const struct iova_table *t, uint64_t addr)
{
    for (uint32_t i = table_home(t, addr);; i = (i + 1) & t->mask) {
        uint64_t r = t->slots[i];
        if (!r)
            return -1;
        if ((r & ~ORDER_BITS) == addr)
            return i;
    }
}

static void table_insert(struct iova_table *t, uint64_t addr, unsigned order)
{
    uint32_t i = table_home(t, addr);
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = addr | order; /* order >= 12 > 0: never 0 */
    t->used++;
}

/* Empties slot i, shifting later members of its probe run back so that no lookup stops
 * early at the hole. */
static void table_remove(struct iova_table *t, uint32_t i)
{
    for (uint32_t j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        uint32_t home = table_home(t, t->slots[j] & ~ORDER_BITS);
        /* j's entry may move to i unless its home lies cyclically in (i, j] */
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = 0;
    t->used--;
}

/* Carves a table of 'slots' (a power of two) from *mem. */
static void table_init(struct iova_table *t, uint64_t **mem, uint32_t slots)
{
    *t = (struct iova_table){.slots = *mem, .mask = slots - 1, .max = slots / 4 * 3, .shift = 64};
    while ((1ull << (64 - t->shift)) < slots)
        t->shift--;
    for (uint32_t i = 0; i < slots; i++)
        t->slots[i] = 0;
    *mem += slots;
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

static void set_lowest(struct iova_allocator *a, unsigned order, struct iova_node *n)
{
    a->lowest[order] = n;
    a->lowest_addr[order] = n ? n->addr : 0;
}

/* The node with the largest address < key. */
static struct iova_node *predecessor(struct iova_node *t, uint64_t key)
{
    struct iova_node *best = NULL;
    while (t) {
        if (t->addr < key) {
            best = t;
            t = t->right;
        } else {
            t = t->left;
        }
    }
    return best;
}

static void put_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    struct iova_node *n = new_node(a, addr, order);
    if (!(a->nonempty & (1ull << order)) || addr < a->lowest_addr[order]) {
        /* the new lowest: the front of the list (always so for a half split off) */
        n->prev = NULL;
        n->next = a->lowest[order];
        if (n->next)
            n->next->prev = n;
        set_lowest(a, order, n);
    } else {
        struct iova_node *p = predecessor(a->free_blocks[order], addr);
        n->prev = p;
        n->next = p->next;
        if (n->next)
            n->next->prev = n;
        p->next = n;
    }
    insert_node(&a->free_blocks[order], n);
    table_insert(&a->free_set, addr, order);
    a->nonempty |= 1ull << order;
    a->free_bytes += block(order);
}

/* Removes the free block of this order at exactly addr; false if there is none. */
static bool take_free(struct iova_allocator *a, unsigned order, uint64_t addr)
{
    int64_t slot = table_find(&a->free_set, addr);
    if (slot < 0 || (a->free_set.slots[slot] & ORDER_BITS) != order)
        return false; /* the common answer for a buddy, found without a tree walk */
    table_remove(&a->free_set, (uint32_t)slot);
    struct iova_node *n = remove_node(&a->free_blocks[order], addr);
    if (n->next)
        n->next->prev = n->prev;
    if (n->prev)
        n->prev->next = n->next;
    else
        set_lowest(a, order, n->next); /* the next lowest, one pointer away */
    if (!a->free_blocks[order])
        a->nonempty &= ~(1ull << order);
    drop_node(a, n);
    a->free_bytes -= block(order);
    return true;
}

/* The first free block of this order that ends after 'from'. */
static struct iova_node *first_ending_after(const struct iova_allocator *a, unsigned order, uint64_t from)
{
    if (a->lowest_addr[order] + (block(order) - 1) >= from)
        return a->lowest[order]; /* the usual case: no window, or the lowest already qualifies */
    return lower_bound(a->free_blocks[order], from - block(order) + 1);
}

static uint64_t space_last(const struct iova_allocator *a)
{
    return block(a->width) - 1;
}

bool iova_init(struct iova_allocator *a, unsigned width, void *mem, size_t bytes)
{
    if (width <= IOVA_MIN_ORDER || width > 63 || ((uintptr_t)mem & 7))
        return false;
    uint32_t slots = 16;
    while ((uint64_t)slots * 2 * sizeof(uint64_t) <= bytes / 4 && slots < (1u << 30))
        slots *= 2;
    size_t table_bytes = 2 * (size_t)slots * sizeof(uint64_t);
    if (bytes < table_bytes || (bytes - table_bytes) / sizeof(struct iova_node) < 2 * width)
        return false;
    uint32_t count = (uint32_t)((bytes - table_bytes) / sizeof(struct iova_node));
    if (count > slots / 4 * 3)
        count = slots / 4 * 3; /* every node may hold a free block: the free set must hold them all */
    *a = (struct iova_allocator){.width = width};
    uint64_t *cursor = mem;
    table_init(&a->allocated, &cursor, slots);
    table_init(&a->free_set, &cursor, slots);
    struct iova_node *nodes = (struct iova_node *)cursor;
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
        uint64_t low = a->lowest_addr[j];
        if (best_node && low >= best && low >= start)
            continue; /* cannot beat the best so far */
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
    if (!best_node || a->spare_count + 1 < best_order - k || a->allocated.used == a->allocated.max)
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
    table_insert(&a->allocated, best, k);
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
    int64_t slot = size ? table_find(&a->allocated, addr) : -1;
    if (slot < 0 || (a->allocated.slots[slot] & ORDER_BITS) != k)
        return IOMMU_EINVAL;
    if (a->spare_count < 1)
        return IOMMU_ENOMEM;
    table_remove(&a->allocated, (uint32_t)slot);
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
