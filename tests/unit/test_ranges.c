/* Range arithmetic for identity maps, and the identity map itself. */
#include <string.h>

#include "iommu/ranges.h"
#include "test_util.h"

static void test_merge(void **state)
{
    (void)state;
    struct addr_range r[] = {
        {0x100000, 0x200000}, {0x0, 0xa0000}, {0x1ff000, 0x300000}, /* overlaps the first */
        {0x300000, 0x300800},                                       /* touches, rounds out */
        {0x5000, 0x5000},                                           /* empty */
        {0x9fe00, 0xa1001},                                         /* unaligned, inside/over */
        {0x800000, 0x900000},
    };
    unsigned n = ranges_merge(r, 7);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].base, 0);
    assert_int_equal(r[0].end, 0xa2000);
    assert_int_equal(r[1].base, 0x100000);
    assert_int_equal(r[1].end, 0x301000);
    assert_int_equal(r[2].base, 0x800000);
}

static void test_remove(void **state)
{
    (void)state;
    struct addr_range r[4] = {{0x0, 0x100000}, {0x200000, 0x400000}, {0x500000, 0x600000}};
    unsigned n = ranges_remove(r, 3, 4, 0x300000, 0x301000); /* splits the middle one */
    assert_int_equal(n, 4);
    assert_int_equal(r[1].end, 0x300000);
    assert_int_equal(r[2].base, 0x301000);
    assert_int_equal(r[2].end, 0x400000);
    assert_int_equal(ranges_remove(r, n, 4, 0x10000, 0x20000), 5); /* no room for a split */
    n = ranges_remove(r, n, 4, 0x0, 0x250000); /* removes the first, trims the next */
    assert_int_equal(n, 3);
    assert_int_equal(r[0].base, 0x250000);
    n = ranges_remove(r, n, 4, 0x380000, 0x700000); /* trims, removes the last */
    assert_int_equal(n, 2);
    assert_int_equal(r[1].end, 0x380000);
}

static void test_identity_map(void **state)
{
    (void)state;
    struct page_pool pool;
    test_pool_init(&pool, 32, 0x1000000);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &pool, 3, SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), IOMMU_OK);
    /* RAM 0..512 MiB less a reserved hole of 1 MiB at 16 MiB; an RMRR above RAM */
    struct addr_range r[4] = {{0, 512u << 20}, {0xfd000000, 0xfd004000}};
    unsigned n = ranges_merge(r, 2);
    n = ranges_remove(r, n, 4, 16u << 20, 17u << 20);
    assert_int_equal(n, 3);
    uint32_t before = t.table_pages;
    assert_int_equal(ranges_identity_map(&t, r, n, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    uint64_t pa, leaf;
    assert_true(slpt_lookup(&t, 0x12345678, &pa, NULL, &leaf));
    assert_int_equal(pa, 0x12345678);
    assert_int_equal(leaf, 2u << 20);
    assert_false(slpt_lookup(&t, (16u << 20) + 0x8000, NULL, NULL, NULL)); /* the hole */
    assert_true(slpt_lookup(&t, 17u << 20, NULL, NULL, NULL));
    assert_true(slpt_lookup(&t, 0xfd003000, NULL, NULL, NULL));
    assert_false(slpt_lookup(&t, 0xfd004000, NULL, NULL, NULL));
    /* A failure part way leaves nothing mapped. */
    slpt_unmap(&t, 0, 1ull << 39, NULL);
    assert_int_equal(t.table_pages, before);
    pool.fail_at = pool.attempts + 3;
    assert_int_equal(ranges_identity_map(&t, r, n, SLPT_READ), IOMMU_ENOMEM);
    assert_int_equal(t.table_pages, before);
    assert_false(slpt_lookup(&t, 0, NULL, NULL, NULL));
    slpt_destroy(&t);
    test_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_identity_map),
    };
    return cmocka_run_group_tests_name("ranges", tests, NULL, NULL);
}
