/* Domains on the VT-d model: the invalidation economy (one invalidation per unmap of one
 * range, whatever its size), allocator-backed maps that give their range back on failure,
 * and concurrent changes to two domains under their own locks. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/domain.h"
#include "vtd_harness.h"

static struct iova_node iova_mem[8192];

static void start(struct iommu_domain *d, struct iova_allocator *a)
{
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    if (a)
        assert_true(iova_init(a, 39, iova_mem, sizeof iova_mem));
    assert_int_equal(domain_init(d, 5, &h.pool, 3, h.unit.unit.superpages, NULL, a, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(d, &h.unit.unit), IOMMU_OK);
    assert_int_equal(domain_add_unit(d, &h.unit.unit), IOMMU_OK); /* once only */
    assert_int_equal(d->unit_count, 1);
    struct iommu_translation ctx = translate(5, &d->tables);
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx), IOMMU_OK);
}

static unsigned iotlb_invalidations(void)
{
    struct vtd_model_stats s = vtd_model_stats(h.model);
    return s.iotlb_page + s.iotlb_domain + s.iotlb_global;
}

static void test_invalidation_economy(void **state)
{
    (void)state;
    struct iommu_domain d;
    start(&d, NULL);
    static uint64_t frames[2048];
    for (unsigned i = 0; i < 2048; i++)
        frames[i] = (target(0) >> PAGE_SHIFT) + i % 64; /* 8 MiB of IOVA over 64 target pages */
    assert_int_equal(domain_map_frames(&d, 0x40000000, frames, 2048, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    expect_translation(EDU_SID, 0x40000000 + (70u << PAGE_SHIFT), true, target(6));
    unsigned before = iotlb_invalidations();
    assert_int_equal(domain_unmap(&d, 0x40000000, 2048u << PAGE_SHIFT), IOMMU_OK);
    assert_int_equal(iotlb_invalidations() - before, 1); /* 2048 pages, one invalidation */
    expect_fault(EDU_SID, 0x40000000 + (70u << PAGE_SHIFT), true, 5);
    /* Unmapping nothing invalidates nothing. */
    before = iotlb_invalidations();
    assert_int_equal(domain_unmap(&d, 0x80000000, 1u << 20), IOMMU_OK);
    assert_int_equal(iotlb_invalidations(), before);
    assert_int_equal(d.invalidations, 1);
    assert_int_equal(d.unmaps, 2);
    domain_destroy(&d);
    assert_no_misuse();
}

static void test_allocated_ranges(void **state)
{
    (void)state;
    struct iommu_domain d;
    struct iova_allocator a;
    start(&d, &a);
    uint64_t frames[3] = {target(1) >> PAGE_SHIFT, target(2) >> PAGE_SHIFT, target(3) >> PAGE_SHIFT};
    uint64_t iova, iova2;
    assert_int_equal(domain_alloc_map_frames(&d, frames, 3, SLPT_READ, 0, UINT64_MAX, &iova), IOMMU_OK);
    assert_int_equal(iova, 0); /* lowest first; 12 KiB takes a 16 KiB block */
    expect_translation(EDU_SID, iova + 2 * PAGE_SIZE + 8, false, target(3) + 8);
    /* A map that fails gives its range back: the retry gets the same address (M15). */
    h.pool.fail_at = h.pool.attempts + 1;
    assert_int_equal(domain_alloc_map_frames(&d, frames, 1, SLPT_READ, 1ull << 30, UINT64_MAX, &iova2),
                     IOMMU_ENOMEM);
    h.pool.fail_at = 0;
    assert_int_equal(domain_alloc_map_frames(&d, frames, 1, SLPT_READ, 1ull << 30, UINT64_MAX, &iova2), IOMMU_OK);
    assert_int_equal(iova2, 1ull << 30);
    /* Unmap and free: it faults, and the address comes back for the next request. */
    assert_int_equal(domain_unmap_free(&d, iova, 3), IOMMU_OK);
    expect_fault(EDU_SID, iova, false, 6);
    assert_int_equal(domain_unmap_free(&d, iova, 3), IOMMU_EINVAL); /* twice */
    assert_int_equal(domain_alloc_map_frames(&d, frames, 2, SLPT_READ, 0, UINT64_MAX, &iova), IOMMU_OK);
    assert_int_equal(iova, 0);
    assert_int_equal(domain_map_frames(&d, 0, frames, 1, SLPT_READ), IOMMU_EEXIST);
    domain_destroy(&d);
    assert_no_misuse();
}

/* Two threads, two domains on the same unit and pool: each maps and unmaps its own ranges
 * thousands of times. The locks keep the shared pool and the unit consistent. */
struct worker {
    struct iommu_domain *d;
    uint64_t base;
    unsigned rounds;
    enum iommu_status status;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (unsigned i = 0; i < w->rounds && w->status == IOMMU_OK; i++) {
        uint64_t iova = w->base + (uint64_t)(i % 512) * (2ull << 20);
        w->status = domain_map(w->d, iova, target(i % 16), 4 * PAGE_SIZE, SLPT_READ | SLPT_WRITE);
        if (w->status == IOMMU_OK)
            w->status = domain_unmap(w->d, iova, 4 * PAGE_SIZE);
    }
    return NULL;
}

static void test_two_domains_in_parallel(void **state)
{
    (void)state;
    struct iommu_domain d1;
    start(&d1, NULL);
    struct iommu_domain d2;
    assert_int_equal(domain_init(&d2, 6, &h.pool, 3, h.unit.unit.superpages, NULL, NULL, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(&d2, &h.unit.unit), IOMMU_OK);
    uint32_t pages_before = h.pool.in_use;
    struct worker w[2] = {{&d1, 1ull << 32, 5000, IOMMU_OK}, {&d2, 1ull << 33, 5000, IOMMU_OK}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(w[0].status, IOMMU_OK);
    assert_int_equal(w[1].status, IOMMU_OK);
    assert_int_equal(h.pool.in_use, pages_before); /* every table page came back */
    assert_int_equal(d1.invalidations + d2.invalidations, 10000);
    assert_int_equal(h.unit.stats.iotlb_page, 10000);
    domain_destroy(&d2);
    domain_destroy(&d1);
    assert_no_misuse();
}

/* An injected invalidation timeout: the unmap fails with the time-out, the next unmap first
 * owes the whole domain a flush and changes nothing while that fails too, and the queue
 * stays in step for the waits after. */
static void test_invalidation_timeout_is_owed(void **state)
{
    (void)state;
    struct iommu_domain d;
    start(&d, NULL);
    h.unit.poll_timeout_ns = 50000000; /* 50 ms of fake time */
    assert_int_equal(domain_map(&d, 0x100000, target(0), 2 * PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    expect_translation(EDU_SID, 0x101000, true, target(1)); /* cached in the model's IOTLB */
    assert_true(vtd_inject_wait_timeouts(&h.unit, 1));
    assert_int_equal(domain_unmap(&d, 0x100000, PAGE_SIZE), IOMMU_ETIMEDOUT);
    assert_int_equal(h.unit.stats.timeouts, 1);
    assert_true(d.flush_owed);
    assert_true(vtd_inject_wait_timeouts(&h.unit, 1));
    assert_int_equal(domain_unmap(&d, 0x101000, PAGE_SIZE), IOMMU_ETIMEDOUT);
    assert_int_equal(h.unit.stats.timeouts, 2);
    uint64_t pa;
    assert_true(slpt_lookup(&d.tables, 0x101000, &pa, NULL, NULL)); /* the owed flush failed first */
    unsigned domain_flushes = vtd_model_stats(h.model).iotlb_domain;
    assert_int_equal(domain_unmap(&d, 0x101000, PAGE_SIZE), IOMMU_OK);
    assert_int_equal(vtd_model_stats(h.model).iotlb_domain, domain_flushes + 1);
    assert_false(d.flush_owed);
    expect_fault(EDU_SID, 0x101000, true, 5);
    assert_int_equal(vtd_flush_domain(&h.unit, 5), IOMMU_OK);
    assert_int_equal(h.unit.stats.timeouts, 2);
    domain_destroy(&d);
    assert_no_misuse();
    teardown(NULL);

    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    cfg.ecap &= ~0x2ull; /* register-based invalidation: nothing to inject into */
    setup_with(&cfg);
    assert_false(vtd_inject_wait_timeouts(&h.unit, 1));
    assert_int_equal(h.unit.inject_wait_timeouts, 0);
}

/* ---- Tables a change frees stay out of the pool until the units have forgotten them ----
 *
 * The model caches translations (its IOTLB) but not paging-structure entries; the VT-d
 * specification lets a unit cache those too, until invalidated. So these tests watch the
 * boundary instead: at the moment the invalidation is issued (a write to the unit's
 * registers), the tables the change emptied must still be allocated, and a second domain
 * taking tables then must not get them. */

static struct {
    unsigned calls;
    const void *watch[3];
    unsigned watched;
    bool all_allocated;            /* at the first register write */
    struct iommu_domain *other;    /* maps at the first register write, if set */
    uint64_t other_iova;
    enum iommu_status other_status;
    const void *other_tables[2];
} seen;

static bool allocated(const void *page)
{
    const struct page_meta *m = page_pool_meta(&h.pool, page);
    return m && m->allocated;
}

static const void *page_of(const void *p)
{
    return (const void *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
}

/* The two tables below the root that translate iova (3 levels): the 2M-level, the 4K-level. */
static void tables_of(const struct slpt *t, uint64_t iova, const void *out[2])
{
    out[0] = page_pool_va(t->pool, t->root[(iova >> 30) & 511] & SLPTE_ADDR);
    out[1] = page_of(slpt_leaf_entry(t, iova));
}

static void on_register_write(uint32_t offset)
{
    (void)offset;
    if (seen.calls++)
        return;
    seen.all_allocated = true;
    for (unsigned i = 0; i < seen.watched; i++)
        seen.all_allocated = seen.all_allocated && allocated(seen.watch[i]);
    if (seen.other) {
        seen.other_status = domain_map(seen.other, seen.other_iova, target(9), PAGE_SIZE, SLPT_READ);
        if (seen.other_status == IOMMU_OK)
            tables_of(&seen.other->tables, seen.other_iova, seen.other_tables);
    }
}

static void watch(const void *const *pages, unsigned n)
{
    memset(&seen, 0, sizeof seen);
    for (unsigned i = 0; i < n; i++)
        seen.watch[i] = pages[i];
    seen.watched = n;
}

static bool got_watched(const void *const *pages, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned k = 0; k < seen.watched; k++)
            if (pages[i] == seen.watch[k])
                return true;
    return false;
}

static void test_emptied_tables_wait_for_invalidation(void **state)
{
    (void)state;
    struct iommu_domain d, d2;
    start(&d, NULL);
    assert_int_equal(domain_init(&d2, 6, &h.pool, 3, h.unit.unit.superpages, NULL, NULL, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(&d2, &h.unit.unit), IOMMU_OK);
    assert_int_equal(domain_map(&d, 0x40000000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    expect_translation(EDU_SID, 0x40000000, true, target(0));
    const void *tables[2];
    tables_of(&d.tables, 0x40000000, tables);
    uint32_t in_use = h.pool.in_use;
    watch(tables, 2);
    seen.other = &d2;
    seen.other_iova = 0x80000000;
    h.mmio_write_hook = on_register_write;
    assert_int_equal(domain_unmap(&d, 0x40000000, PAGE_SIZE), IOMMU_OK);
    h.mmio_write_hook = NULL;
    assert_true(seen.calls > 0);
    assert_true(seen.all_allocated);            /* still the domain's when the unit was told */
    assert_int_equal(seen.other_status, IOMMU_OK);
    assert_false(got_watched(seen.other_tables, 2)); /* the other domain got other pages */
    assert_false(allocated(tables[0]));         /* and back in the pool once it was done */
    assert_false(allocated(tables[1]));
    assert_int_equal(h.pool.in_use, in_use); /* two tables gone, two for the other domain */
    expect_fault(EDU_SID, 0x40000000, true, 5);

    /* A map that fails frees the tables it made: they wait for an invalidation too. */
    const void *next = h.pool.base_va + (size_t)h.pool.free_head * PAGE_SIZE; /* the 2M-level table */
    watch(&next, 1);
    h.pool.fail_at = h.pool.attempts + 2; /* the 4K-level table */
    h.mmio_write_hook = on_register_write;
    assert_int_equal(domain_map(&d, 0xc0000000, target(1), PAGE_SIZE, SLPT_READ), IOMMU_ENOMEM);
    h.mmio_write_hook = NULL;
    h.pool.fail_at = 0;
    assert_true(seen.calls > 0);
    assert_true(seen.all_allocated);
    assert_false(allocated(next));
    assert_int_equal(h.pool.in_use, in_use);
    domain_destroy(&d2);
    domain_destroy(&d);
    assert_no_misuse();
}

/* An invalidation that times out: the tables stay out of the pool, through an owed flush
 * that fails too, until one succeeds. */
static void test_failed_invalidation_keeps_tables(void **state)
{
    (void)state;
    struct iommu_domain d, d2;
    start(&d, NULL);
    h.unit.poll_timeout_ns = 50000000;
    assert_int_equal(domain_init(&d2, 6, &h.pool, 3, h.unit.unit.superpages, NULL, NULL, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(&d2, &h.unit.unit), IOMMU_OK);
    assert_int_equal(domain_map(&d, 0x40000000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    expect_translation(EDU_SID, 0x40000000, true, target(0));
    const void *tables[2];
    tables_of(&d.tables, 0x40000000, tables);
    uint32_t in_use = h.pool.in_use;
    watch(tables, 2);
    assert_true(vtd_inject_wait_timeouts(&h.unit, 1));
    assert_int_equal(domain_unmap(&d, 0x40000000, PAGE_SIZE), IOMMU_ETIMEDOUT);
    assert_true(d.flush_owed);
    assert_true(allocated(tables[0]));
    assert_true(allocated(tables[1]));
    assert_int_equal(h.pool.in_use, in_use);
    /* Another domain takes tables now: not these. */
    const void *other[2];
    assert_int_equal(domain_map(&d2, 0x80000000, target(9), PAGE_SIZE, SLPT_READ), IOMMU_OK);
    tables_of(&d2.tables, 0x80000000, other);
    assert_false(got_watched(other, 2));
    /* The owed flush fails: still out. */
    assert_true(vtd_inject_wait_timeouts(&h.unit, 1));
    assert_int_equal(domain_unmap(&d, 0x80000000, PAGE_SIZE), IOMMU_ETIMEDOUT);
    assert_true(allocated(tables[0]));
    assert_true(allocated(tables[1]));
    /* It succeeds: back in the pool. */
    assert_int_equal(domain_unmap(&d, 0x80000000, PAGE_SIZE), IOMMU_OK);
    assert_false(d.flush_owed);
    assert_false(allocated(tables[0]));
    assert_false(allocated(tables[1]));
    assert_int_equal(h.pool.in_use, in_use); /* two back, two taken by d2 */
    domain_destroy(&d2);
    domain_destroy(&d);
    assert_no_misuse();
}

/* Destroying a domain frees every table: after the units have forgotten the domain, and
 * not at all while they may not have. */
static void test_destroy_waits_for_invalidation(void **state)
{
    (void)state;
    struct iommu_domain d;
    start(&d, NULL);
    h.unit.poll_timeout_ns = 50000000;
    assert_int_equal(domain_map(&d, 0x40000000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    expect_translation(EDU_SID, 0x40000000, true, target(0));
    const void *tables[3] = {d.tables.root};
    tables_of(&d.tables, 0x40000000, tables + 1);
    uint32_t in_use = h.pool.in_use;
    watch(tables, 3);
    h.mmio_write_hook = on_register_write;
    domain_destroy(&d);
    h.mmio_write_hook = NULL;
    assert_true(seen.calls > 0);
    assert_true(seen.all_allocated);
    assert_int_equal(h.pool.in_use, in_use - 3);

    /* The invalidation times out: the tables never go back. */
    struct iommu_domain e;
    assert_int_equal(domain_init(&e, 7, &h.pool, 3, h.unit.unit.superpages, NULL, NULL, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(&e, &h.unit.unit), IOMMU_OK);
    assert_int_equal(domain_map(&e, 0x40000000, target(0), PAGE_SIZE, SLPT_READ), IOMMU_OK);
    in_use = h.pool.in_use;
    assert_true(vtd_inject_wait_timeouts(&h.unit, 1));
    domain_destroy(&e);
    assert_int_equal(h.pool.in_use, in_use);
    assert_no_misuse();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_invalidation_economy, teardown),
        cmocka_unit_test_teardown(test_allocated_ranges, teardown),
        cmocka_unit_test_teardown(test_two_domains_in_parallel, teardown),
        cmocka_unit_test_teardown(test_invalidation_timeout_is_owed, teardown),
        cmocka_unit_test_teardown(test_emptied_tables_wait_for_invalidation, teardown),
        cmocka_unit_test_teardown(test_failed_invalidation_keeps_tables, teardown),
        cmocka_unit_test_teardown(test_destroy_waits_for_invalidation, teardown),
    };
    return cmocka_run_group_tests_name("domain", tests, NULL, NULL);
}
