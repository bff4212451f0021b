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
    assert_int_equal(domain_init(d, 5, &h.pool, 3, h.unit.superpages, a), IOMMU_OK);
    assert_int_equal(domain_add_unit(d, &h.unit), IOMMU_OK);
    assert_int_equal(domain_add_unit(d, &h.unit), IOMMU_OK); /* once only */
    assert_int_equal(d->unit_count, 1);
    struct vtd_context ctx = translate(5, &d->tables);
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
    assert_int_equal(domain_init(&d2, 6, &h.pool, 3, h.unit.superpages, NULL), IOMMU_OK);
    assert_int_equal(domain_add_unit(&d2, &h.unit), IOMMU_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_invalidation_economy, teardown),
        cmocka_unit_test_teardown(test_allocated_ranges, teardown),
        cmocka_unit_test_teardown(test_two_domains_in_parallel, teardown),
        cmocka_unit_test_teardown(test_invalidation_timeout_is_owed, teardown),
    };
    return cmocka_run_group_tests_name("domain", tests, NULL, NULL);
}
