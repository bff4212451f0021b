/* Logical (IO virtual) address allocator: a buddy allocator over a domain's address space,
 * as the DDI's IommuDmaLogicalAllocatorBuddy promises (docs: power-of-two, naturally aligned
 * blocks of at least 4 KiB, low addresses first, optional inclusive [min, max] windows,
 * ranges reserved at domain creation).
 *
 * Free blocks are kept per order in treaps keyed by address, so that "the lowest free block
 * of order >= k that has an aligned 2^k piece inside [min, max]" and "is my buddy free" are
 * O(log n) searches; a bitmask of non-empty orders skips the empty ones, and the lowest free
 * block of each order is kept at hand for the common unbounded request. Each order's free
 * blocks are also threaded in address order, so that when the lowest is taken the next
 * lowest is one pointer away, and a half split off the lowest block (always lower than every
 * free block of its order) goes to the front without a search. The blocks handed out
 * are recorded in a hash table, so a free names exactly one of them in O(1), and the free
 * blocks are in one too, so that "is my buddy free" costs O(1) as well. The tree nodes and the
 * tables come from one area of memory the caller provides: each operation first checks that
 * enough is left for it, so none fails half-done.
 *
 * Locking: none inside; the domain's lock covers it. */
#ifndef IOMMU_IOVA_H
#define IOMMU_IOVA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define IOVA_MIN_ORDER 12u /* 4 KiB */

struct iova_node {
    uint64_t addr;
    struct iova_node *left, *right;
    struct iova_node *prev, *next; /* the free blocks of its order in address order */
    uint32_t priority;
    uint8_t order;      /* for the record of allocated blocks */
};

/* An open-addressing set of blocks, keyed by address: address | order, 0 when empty. */
struct iova_table {
    uint64_t *slots;
    uint32_t mask;      /* slots - 1; slots is a power of two */
    uint32_t shift;     /* 64 - log2(slots), for the hash */
    uint32_t used, max; /* max: three quarters of the slots */
};

struct iova_allocator {
    unsigned width;                    /* addresses below 2^width; 13 to 63 */
    struct iova_node *free_blocks[64]; /* per order */
    struct iova_node *lowest[64];      /* per order: the free block with the lowest address, the
                                          head of its address-ordered list */
    uint64_t lowest_addr[64];          /* its address, kept together for a cache-friendly scan */
    uint64_t nonempty;                 /* bit k: a free block of order k exists */
    struct iova_table allocated;       /* the blocks handed out */
    struct iova_table free_set;        /* the free blocks, for O(1) buddy checks */
    struct iova_node *spare;
    uint32_t spare_count;
    uint64_t free_bytes;
};

/* An allocator over [0, 2^width) keeping its bookkeeping in [mem, mem + bytes) (8-byte
 * aligned). A quarter goes to the record of allocated blocks and a quarter to the set of free
 * blocks (three quarters of their slots usable), the rest to tree nodes. False if width is out
 * of range or the memory is too small to work with. */
bool iova_init(struct iova_allocator *a, unsigned width, void *mem, size_t bytes);

/* The size rounded up to the block the allocator hands out: a power of two >= 4 KiB. */
uint64_t iova_block_size(uint64_t size);

/* Allocates the lowest naturally aligned block of iova_block_size(size) bytes that lies in
 * [min, max] (both inclusive; pass 0 and UINT64_MAX for no bounds).
 *   IOMMU_EINVAL   size 0 or larger than the address space
 *   IOMMU_ERANGE   the window lies entirely outside the address space
 *   IOMMU_EWINDOW  the window cannot hold an aligned block of that size
 *   IOMMU_ENOMEM   no free block fits (or no spare nodes) */
enum iommu_status iova_alloc(struct iova_allocator *a, uint64_t size, uint64_t min, uint64_t max, uint64_t *addr);

/* Frees a block iova_alloc returned (size as asked or as rounded). IOMMU_EINVAL unless addr
 * is a block it handed out with that size and has not been freed since. */
enum iommu_status iova_free(struct iova_allocator *a, uint64_t addr, uint64_t size);

/* Takes [base, base + size) (page aligned, any length) out of the free space, for ranges a
 * domain reserves at creation. IOMMU_EEXIST when part of it is not free. */
enum iommu_status iova_reserve(struct iova_allocator *a, uint64_t base, uint64_t size);
/* Gives a reserved range back. */
enum iommu_status iova_unreserve(struct iova_allocator *a, uint64_t base, uint64_t size);

/* True when any part of [base, base + size) is free. */
bool iova_any_free(const struct iova_allocator *a, uint64_t base, uint64_t size);

#endif
