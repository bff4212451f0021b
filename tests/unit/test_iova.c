/* The logical address allocator: the DDI's rules for the buddy allocator (natural alignment,
 * lowest address first, inclusive windows, reserved regions) and a random-sequence property
 * test against an independent record of what is allocated. */
#include <stdlib.h>
#include <string.h>

#include "iommu/iova.h"
#include "test_util.h"

#define NODES 65536u
static struct iova_node nodes[NODES]; /* bookkeeping memory, sized in nodes */

static void test_alignment_and_low_first(void **state)
{
    (void)state;
    struct iova_allocator a;
    assert_true(iova_init(&a, 39, nodes, sizeof nodes));
    uint64_t addr;
    /* M11: 12 KiB comes back aligned to 16 KiB; small blocks ascend from the bottom */
    assert_int_equal(iova_alloc(&a, 12 * 1024, 0, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 0);
    assert_int_equal(iova_block_size(12 * 1024), 16 * 1024);
    uint64_t prev = addr;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(iova_alloc(&a, 4096, 0, UINT64_MAX, &addr), IOMMU_OK);
        assert_true(addr > prev || i == 0);
        assert_true(addr < 0x10000);
        prev = addr;
    }
    assert_int_equal(iova_alloc(&a, 1 << 20, 0, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 1 << 20); /* first 1 MiB-aligned block not cut into */
    assert_int_equal(iova_alloc(&a, (1ull << 39), 0, UINT64_MAX, &addr), IOMMU_ENOMEM);
    assert_int_equal(iova_alloc(&a, (1ull << 39) + 1, 0, UINT64_MAX, &addr), IOMMU_EINVAL);
    assert_int_equal(iova_alloc(&a, 0, 0, UINT64_MAX, &addr), IOMMU_EINVAL);
}

static void test_windows(void **state)
{
    (void)state;
    struct iova_allocator a;
    assert_true(iova_init(&a, 32, nodes, sizeof nodes));
    uint64_t addr = 0xdead;
    /* M9: inclusive bounds */
    assert_int_equal(iova_alloc(&a, 4096, 0x5000, 0x5fff, &addr), IOMMU_OK);
    assert_int_equal(addr, 0x5000);
    assert_int_equal(iova_alloc(&a, 16384, 0x1000, 0x10fff, &addr), IOMMU_OK);
    assert_int_equal(addr, 0x8000); /* 0x4000 would hold 0x5000, which is taken */
    /* M10: a window too small or misaligned for the block, or outside the space */
    addr = 0xdead;
    assert_int_equal(iova_alloc(&a, 16384, 0x1000, 0x4fff, &addr), IOMMU_EWINDOW);
    assert_int_equal(iova_alloc(&a, 4096, 0x6000, 0x5000, &addr), IOMMU_EWINDOW);
    assert_int_equal(iova_alloc(&a, 4096, 1ull << 32, UINT64_MAX, &addr), IOMMU_ERANGE);
    assert_int_equal(addr, 0xdead); /* M13: written only on success */
    /* M12: never beyond 2^width, a max beyond it is clamped */
    assert_int_equal(iova_alloc(&a, 1u << 30, 3u << 30, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 3u << 30);
    assert_int_equal(iova_alloc(&a, 1u << 30, 3u << 30, UINT64_MAX, &addr), IOMMU_ENOMEM);
    /* a window with free space but no free aligned block: nothing */
    assert_int_equal(iova_alloc(&a, 8192, 0x5000, 0x6fff, &addr), IOMMU_EWINDOW);
    assert_int_equal(iova_alloc(&a, 8192, 0x4000, 0x5fff, &addr), IOMMU_ENOMEM);
}

static void test_reserve_and_free_errors(void **state)
{
    (void)state;
    struct iova_allocator a;
    assert_true(iova_init(&a, 32, nodes, sizeof nodes));
    uint64_t full = a.free_bytes, addr;
    assert_int_equal(iova_reserve(&a, 0x3000, 0x5000), IOMMU_OK); /* [0x3000, 0x8000): not a power of two */
    assert_int_equal(a.free_bytes, full - 0x5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(iova_alloc(&a, 4096, 0, UINT64_MAX, &addr), IOMMU_OK);
        assert_int_equal(addr, (uint64_t)i * 0x1000);
    }
    assert_int_equal(iova_alloc(&a, 4096, 0, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 0x8000); /* skips the reserved range */
    assert_int_equal(iova_reserve(&a, 0x7000, 0x2000), IOMMU_EEXIST); /* overlaps what is taken */
    assert_int_equal(iova_reserve(&a, 0x7001, 0x1000), IOMMU_EINVAL);
    assert_int_equal(iova_free(&a, 0x1000, 4096), IOMMU_OK);
    assert_int_equal(iova_free(&a, 0x1000, 4096), IOMMU_EINVAL); /* twice */
    assert_int_equal(iova_free(&a, 0x1000, 8192), IOMMU_EINVAL); /* misaligned for its size */
    assert_int_equal(iova_free(&a, 0x4000, 4096), IOMMU_EINVAL); /* reserved, never handed out */
    assert_int_equal(iova_free(&a, 0x8000, 8192), IOMMU_EINVAL); /* handed out as 4 KiB */
    assert_int_equal(iova_unreserve(&a, 0x3000, 0x5000), IOMMU_OK);
    assert_int_equal(iova_unreserve(&a, 0x3000, 0x5000), IOMMU_EINVAL); /* free already */
    assert_int_equal(iova_alloc(&a, 4096, 0x3000, 0x7fff, &addr), IOMMU_OK);
    assert_int_equal(addr, 0x3000);
}

/* ---- property test ---- */

struct held {
    uint64_t addr, size;
};

static bool overlaps_any(const struct held *h, unsigned n, uint64_t addr, uint64_t size)
{
    for (unsigned i = 0; i < n; i++)
        if (addr < h[i].addr + h[i].size && h[i].addr < addr + size)
            return true;
    return false;
}

static uint64_t rng = 0x1234;
static uint64_t rnd(void)
{
    return test_rand(&rng);
}

/* In-order walk of one order's tree, checked against its address-ordered list. */
static const struct iova_node *check_in_order(const struct iova_node *t, const struct iova_node *expect)
{
    if (!t)
        return expect;
    expect = check_in_order(t->left, expect);
    assert_ptr_equal(t, expect); /* the list visits the free blocks in the tree's order */
    expect = check_in_order(t->right, t->next);
    return expect;
}

/* Each order's address-ordered list: strictly increasing, linked both ways, headed by the
 * lowest block, and holding exactly the tree's blocks. */
static void check_free_lists(const struct iova_allocator *a)
{
    for (unsigned j = IOVA_MIN_ORDER; j <= a->width; j++) {
        const struct iova_node *head = a->lowest[j];
        assert_int_equal(head != NULL, (a->nonempty >> j) & 1);
        if (!head)
            continue;
        assert_null(head->prev);
        assert_int_equal(a->lowest_addr[j], head->addr);
        for (const struct iova_node *n = head; n->next; n = n->next) {
            assert_ptr_equal(n->next->prev, n);
            assert_true(n->next->addr > n->addr);
        }
        assert_null(check_in_order(a->free_blocks[j], head));
    }
}

static void property_run(unsigned width, unsigned steps)
{
    struct iova_allocator a;
    assert_true(iova_init(&a, width, nodes, sizeof nodes));
    const uint32_t spare_at_start = a.spare_count;
    const uint64_t space = 1ull << width;
    static struct held held[4096];
    unsigned n = 0, allocs = 0, frees = 0, windowed = 0, no_space = 0, lowest_checked = 0;
    /* a reserved region, as a domain creation would make */
    struct held reserved = {space / 4 + 0x3000, 0x25000};
    assert_int_equal(iova_reserve(&a, reserved.addr, reserved.size), IOMMU_OK);
    held[n++] = reserved;
    uint64_t held_bytes = reserved.size;

    for (unsigned step = 0; step < steps; step++) {
        if (n < 2 || (n < 4000 && rnd() % 100 < 55)) {
            uint64_t size = 4096ull << (rnd() % 9);
            size -= rnd() % 2 ? 0 : (rnd() % (size / 2) & ~0xfffull); /* not always a power of two */
            uint64_t min = 0, max = UINT64_MAX;
            if (rnd() % 3 == 0) {
                min = rnd() % (space / 8);
                max = min + (rnd() % (space / 16)) + size * (rnd() % 4);
                windowed++;
            }
            uint64_t addr;
            enum iommu_status s = iova_alloc(&a, size, min, max, &addr);
            uint64_t bsize = iova_block_size(size);
            if (s == IOMMU_OK) {
                assert_true((addr & (bsize - 1)) == 0);
                assert_true(addr >= min && addr + bsize - 1 <= max && addr + bsize <= space);
                assert_false(overlaps_any(held, n, addr, bsize));
                /* lowest first: every aligned block below it in the window is taken in part */
                uint64_t start = (min + bsize - 1) & ~(bsize - 1);
                if ((addr - start) / bsize < 2048) {
                    for (uint64_t c = start; c < addr; c += bsize)
                        assert_true(overlaps_any(held, n, c, bsize));
                    lowest_checked++;
                }
                held[n++] = (struct held){addr, bsize};
                held_bytes += bsize;
                allocs++;
            } else if (s == IOMMU_ENOMEM) {
                /* nothing fits: check the candidates when there are few */
                uint64_t start = (min + bsize - 1) & ~(bsize - 1);
                uint64_t hi = max < space - 1 ? max : space - 1;
                if (hi > start && (hi - start) / bsize < 2048)
                    for (uint64_t c = start; c + bsize - 1 <= hi; c += bsize)
                        assert_true(overlaps_any(held, n, c, bsize));
                no_space++;
            } else {
                assert_true(s == IOMMU_EWINDOW || s == IOMMU_ERANGE);
            }
        } else {
            unsigned i = 1 + (unsigned)(rnd() % (n - 1)); /* never the reserved region */
            assert_int_equal(iova_free(&a, held[i].addr, held[i].size), IOMMU_OK);
            held_bytes -= held[i].size;
            held[i] = held[--n];
            frees++;
        }
        assert_int_equal(a.free_bytes, space - held_bytes);
        if (step % 16 == 0)
            check_free_lists(&a);
    }
    check_free_lists(&a);
    /* Release everything: one free block of the whole space again, and the lowest address
     * comes back. */
    while (n > 1) {
        n--;
        assert_int_equal(iova_free(&a, held[n].addr, held[n].size), IOMMU_OK);
    }
    assert_int_equal(iova_unreserve(&a, reserved.addr, reserved.size), IOMMU_OK);
    assert_int_equal(a.free_bytes, space);
    assert_int_equal(a.nonempty, 1ull << width);
    assert_int_equal(a.allocated.used, 0);
    assert_int_equal(a.spare_count, spare_at_start);
    uint64_t addr;
    assert_int_equal(iova_alloc(&a, 4096, 0, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 0);
    print_message("width %u: %u allocations (%u in windows, %u checked lowest), %u frees, %u refused for space\n",
                  width, allocs, windowed, lowest_checked, frees, no_space);
    assert_true(allocs > steps / 3 && frees > steps / 4 && lowest_checked > steps / 10);
}

static void test_random_39(void **state)
{
    (void)state;
    property_run(39, 20000);
}

static void test_random_small_space(void **state)
{
    (void)state;
    property_run(24, 20000); /* 16 MiB: the space fills and refusals happen */
}

static void test_out_of_nodes(void **state)
{
    (void)state;
    static struct iova_node few[128];
    struct iova_allocator a;
    assert_false(iova_init(&a, 48, few, 40 * sizeof few[0]));
    assert_true(iova_init(&a, 39, few, sizeof few));
    uint64_t addr, ok = 0;
    enum iommu_status s;
    /* scattered 4 KiB blocks each leave a trail of free buddies: nodes run out */
    while ((s = iova_alloc(&a, 4096, ok * 0x200000, UINT64_MAX, &addr)) == IOMMU_OK)
        ok++;
    assert_int_equal(s, IOMMU_ENOMEM);
    assert_true(ok > 0);
    uint64_t free_before = a.free_bytes;
    assert_int_equal(iova_reserve(&a, 1ull << 30, 1ull << 20), a.spare_count < 78 ? IOMMU_ENOMEM : IOMMU_OK);
    if (a.free_bytes == free_before)
        assert_true(a.spare_count < 78);
    /* the record of allocated blocks fills too: 3/4 of its slots */
    static uint64_t mem[4096];
    assert_true(iova_init(&a, 39, mem, sizeof mem));
    uint32_t handed = 0;
    while (iova_alloc(&a, 4096, 0, UINT64_MAX, &addr) == IOMMU_OK)
        handed++;
    assert_int_equal(handed, a.allocated.max);
    assert_int_equal(iova_free(&a, 0x5000, 4096), IOMMU_OK);
    assert_int_equal(iova_alloc(&a, 4096, 0, UINT64_MAX, &addr), IOMMU_OK);
    assert_int_equal(addr, 0x5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_low_first),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_reserve_and_free_errors),
        cmocka_unit_test(test_random_39),
        cmocka_unit_test(test_random_small_space),
        cmocka_unit_test(test_out_of_nodes),
    };
    return cmocka_run_group_tests_name("iova", tests, NULL, NULL);
}
