/* The VT-d unit driver against the software model of a unit (tests/model): enable
 * sequence, context changes, each kind of invalidation, fault draining with overflow, and
 * poll timeouts. The model follows the specification, so a missing or wrong invalidation
 * shows as a stale translation, and any access real hardware would abort or hang on is
 * counted as misuse; every test ends by checking that there was none. */
#include <stdlib.h>
#include <string.h>

#include "vtd_harness.h"
#include "vtd_regs.h" /* the driver's own registers (iommu/vtd/): this is its test */

static void test_enable_queued(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    assert_true(h.unit.queued);
    assert_int_equal(vtd_unit_levels(&h.unit), 3);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    assert_true(h.unit.enabled);
    /* TES, RTPS and QIES, as the probe measured on QEMU */
    assert_int_equal(vtd_model_read32(h.model, VTD_REG_GSTS), 0xc4000000);
    struct vtd_model_stats s = vtd_model_stats(h.model);
    assert_int_equal(s.cc_global, 1);
    assert_int_equal(s.iotlb_global, 1);
    assert_int_equal(s.waits, 2);
    assert_int_equal(h.unit.stats.waits, 2);
    assert_int_equal(vtd_unit_disable(&h.unit), IOMMU_OK);
    assert_int_equal(vtd_model_read32(h.model, VTD_REG_GSTS) & (VTD_GSTS_TES | VTD_GSTS_QIES), 0);
    /* and on again: the queue restarts from a clean tail */
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    assert_int_equal(vtd_model_read32(h.model, VTD_REG_GSTS), 0xc4000000);
    assert_no_misuse();
}

static void test_enable_register_based_4level(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(48);
    cfg.ecap &= ~0x2ull; /* no queued invalidation */
    setup_with(&cfg);
    assert_false(h.unit.queued);
    assert_int_equal(vtd_unit_levels(&h.unit), 4);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    assert_int_equal(vtd_model_read32(h.model, VTD_REG_GSTS), 0xc0000000);
    struct vtd_model_stats s = vtd_model_stats(h.model);
    assert_int_equal(s.cc_global, 1);
    assert_int_equal(s.iotlb_global, 1);
    assert_int_equal(s.waits, 0);
    /* a 4-level domain translates */
    struct slpt t;
    assert_int_equal(slpt_init(&t, &h.pool, 4, h.unit.unit.superpages), IOMMU_OK);
    assert_int_equal(slpt_map(&t, 0x7f0000000000ull, target(1), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    struct iommu_translation ctx = translate(3, &t);
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx), IOMMU_OK);
    expect_translation(EDU_SID, 0x7f0000000123ull, true, target(1) + 0x123);
    expect_fault(EDU_SID, 1ull << 48, false, 4); /* beyond the address width */
    assert_no_misuse();
}

/* Runs the map / unmap / context-change story on whichever invalidation path the unit uses. */
static void mapping_story(void)
{
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    struct slpt a, b;
    assert_int_equal(slpt_init(&a, &h.pool, 3, h.unit.unit.superpages), IOMMU_OK);
    assert_int_equal(slpt_init(&b, &h.pool, 3, h.unit.unit.superpages), IOMMU_OK);
    assert_int_equal(slpt_map(&a, 0x100000, target(0), 2 * PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    assert_int_equal(slpt_map(&b, 0x100000, target(5), PAGE_SIZE, SLPT_READ), IOMMU_OK);
    struct iommu_translation ctx_a = translate(2, &a), ctx_b = translate(1, &b);
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx_a), IOMMU_OK);
    assert_int_equal(vtd_context_domain(&h.unit, EDU_SID), 2);
    expect_translation(EDU_SID, 0x100010, true, target(0) + 0x10);
    expect_translation(EDU_SID, 0x101000, false, target(1));
    expect_fault(NIC_SID, 0x100000, false, 2); /* no context entry */

    /* Unmap: the model still holds both translations in its IOTLB; only the invalidation
     * the driver issues removes the one that was unmapped. */
    struct slpt_unmapped u;
    assert_int_equal(slpt_unmap(&a, 0x101000, PAGE_SIZE, &u), IOMMU_OK);
    expect_translation(EDU_SID, 0x101000, false, target(1)); /* stale, as real hardware may */
    unsigned psi_before = vtd_model_stats(h.model).iotlb_page;
    assert_int_equal(vtd_flush_range(&h.unit, 2, u.first, u.last), IOMMU_OK);
    assert_int_equal(vtd_model_stats(h.model).iotlb_page, psi_before + 1);
    expect_fault(EDU_SID, 0x101000, false, 6);
    expect_translation(EDU_SID, 0x100000, false, target(0)); /* its neighbour survives */

    /* Move the device to domain 1: the context cache and domain 2's IOTLB entries for it
     * must go, or it keeps reaching target(0). */
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx_b), IOMMU_OK);
    expect_translation(EDU_SID, 0x100000, false, target(5));
    expect_fault(EDU_SID, 0x100000, true, 5); /* read-only in domain 1 */
    assert_int_equal(vtd_clear_context(&h.unit, EDU_SID), IOMMU_OK);
    assert_int_equal(vtd_context_domain(&h.unit, EDU_SID), -1);
    expect_fault(EDU_SID, 0x100000, false, 2);
    slpt_destroy(&a);
    slpt_destroy(&b);
    assert_no_misuse();
}

static void test_mapping_story_queued(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    mapping_story();
    assert_true(vtd_model_stats(h.model).waits >= 6);
}

static void test_mapping_story_register_based(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    cfg.ecap &= ~0x2ull;
    setup_with(&cfg);
    mapping_story();
    assert_int_equal(vtd_model_stats(h.model).waits, 0);
}

/* The spec's stricter model (no QEMU shortcuts): domain-selective context invalidation is not
 * global, device-selective matches the DID. */
static void test_mapping_story_strict_model(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    cfg.coarse_context_invalidation = false;
    cfg.silent_iotlb_permission_fault = false;
    cfg.compress_same_sid = false;
    setup_with(&cfg);
    mapping_story();
}

static void test_invalidation_granularity(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39); /* MAMV 18 */
    setup_with(&cfg);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    struct vtd_model_stats s0 = vtd_model_stats(h.model);
    /* 3 pages not aligned to 4: the covering block is 8 pages at 0x100000 (AM 3) */
    assert_int_equal(vtd_flush_range(&h.unit, 7, 0x101000, 0x103fff), IOMMU_OK);
    /* 2^18 pages (1 GiB) aligned: still page-selective; 2^19 pages: domain-selective */
    assert_int_equal(vtd_flush_range(&h.unit, 7, 0x40000000, 0x7fffffff), IOMMU_OK);
    assert_int_equal(vtd_flush_range(&h.unit, 7, 0x40000000, 0xbfffffff), IOMMU_OK);
    /* a small range that straddles a 1 GiB line needs a block of order 19: domain */
    assert_int_equal(vtd_flush_range(&h.unit, 7, 0x3ffff000, 0x40000fff), IOMMU_OK);
    struct vtd_model_stats s1 = vtd_model_stats(h.model);
    assert_int_equal(s1.iotlb_page - s0.iotlb_page, 2);
    assert_int_equal(s1.iotlb_domain - s0.iotlb_domain, 2);
    assert_int_equal(h.unit.stats.iotlb_page, 2);
    assert_int_equal(h.unit.stats.iotlb_domain, 2);
    assert_int_equal(vtd_flush_range(&h.unit, 7, 0x2000, 0x1000), IOMMU_EINVAL);
    assert_no_misuse();
}

static void test_fault_drain_and_overflow(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39); /* one fault recording register */
    setup_with(&cfg);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &h.pool, 3, h.unit.unit.superpages), IOMMU_OK);
    struct iommu_translation ctx = translate(2, &t);
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx), IOMMU_OK);
    assert_int_equal(vtd_set_context(&h.unit, NIC_SID, &ctx), IOMMU_OK);

    expect_fault(EDU_SID, 0x5000, false, 6);    /* recorded */
    expect_fault(EDU_SID, 0x6000, true, 5);     /* same sid while pending: compressed away */
    expect_fault(NIC_SID, 0x7000, true, 5);     /* other sid, no free record: overflow */
    assert_int_equal(vtd_drain_faults(&h.unit), 1);
    struct iommu_fault_record f;
    assert_true(vtd_fault_take(&h.unit, &f));
    assert_int_equal(f.sid, EDU_SID);
    assert_int_equal(f.reason, 6);
    assert_int_equal(f.kind, IOMMU_FAULT_TRANSLATION); /* what it means, for those outside the driver */
    assert_false(f.write);
    assert_int_equal(f.address, 0x5000);
    /* every reason the specification names, by kind */
    for (unsigned r = 0; r < 256; r++)
        assert_int_equal(vtd_fault_kind((uint8_t)r), r == 4 ? IOMMU_FAULT_ADDRESS_SIZE
                                                      : r == 5 || r == 6 ? IOMMU_FAULT_TRANSLATION
                                                      : r >= 7 && r <= 9 ? IOMMU_FAULT_TABLE
                                                                         : IOMMU_FAULT_OTHER);
    assert_false(vtd_fault_take(&h.unit, &f));
    assert_int_equal(h.unit.unit.faults.overflows, 1);
    assert_int_equal(h.unit.unit.faults.recorded, 1);
    /* acknowledged: PPF and PFO clear, the next fault is recorded again */
    assert_int_equal(vtd_model_read32(h.model, VTD_REG_FSTS) & (VTD_FSTS_PPF | VTD_FSTS_PFO), 0);
    expect_fault(NIC_SID, 0x8000, true, 5);
    assert_int_equal(vtd_drain_faults(&h.unit), 1);
    assert_true(vtd_fault_take(&h.unit, &f));
    assert_int_equal(f.sid, NIC_SID);
    assert_true(f.write);
    assert_int_equal(f.address, 0x8000);
    assert_int_equal(vtd_drain_faults(&h.unit), 0);
    slpt_destroy(&t);
    assert_no_misuse();
}

/* A unit with four recording registers: records are drained from FRI onwards, wrapping. */
static void test_fault_drain_several_records(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    cfg.cap = (cfg.cap & ~(0xffull << 40)) | (3ull << 40); /* NFR field 3: four registers */
    cfg.compress_same_sid = false;
    setup_with(&cfg);
    assert_int_equal(h.unit.caps.fault_regs, 4);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &h.pool, 3, h.unit.unit.superpages), IOMMU_OK);
    struct iommu_translation ctx = translate(2, &t);
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx), IOMMU_OK);
    uint64_t next_page = 0x10000;
    for (unsigned round = 0; round < 3; round++) {
        unsigned n = 3; /* 3 per round: the third round starts at FRI 2 and wraps */
        for (unsigned i = 0; i < n; i++)
            expect_fault(EDU_SID, next_page + i * PAGE_SIZE, i & 1, (i & 1) ? 5 : 6);
        assert_int_equal(vtd_drain_faults(&h.unit), n);
        for (unsigned i = 0; i < n; i++) {
            struct iommu_fault_record f;
            assert_true(vtd_fault_take(&h.unit, &f));
            assert_int_equal(f.address, next_page + i * PAGE_SIZE);
            assert_int_equal(f.write, i & 1);
        }
        next_page += 0x10000;
    }
    assert_int_equal(h.unit.unit.faults.recorded, 9);
    assert_int_equal(h.unit.unit.faults.overflows, 0);
    slpt_destroy(&t);
    assert_no_misuse();
}

static void test_fault_log_keeps_newest(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    for (unsigned i = 0; i < IOMMU_FAULT_LOG_SIZE + 6; i++) {
        expect_fault(EDU_SID, (uint64_t)i << PAGE_SHIFT, false, 1); /* no root entry for bus 0 */
        assert_int_equal(vtd_drain_faults(&h.unit), 1);
    }
    assert_int_equal(h.unit.unit.faults.count, IOMMU_FAULT_LOG_SIZE);
    assert_int_equal(h.unit.unit.faults.dropped, 6);
    struct iommu_fault_record f;
    assert_true(vtd_fault_take(&h.unit, &f));
    assert_int_equal(f.address, 6ull << PAGE_SHIFT);
    assert_no_misuse();
}

static uint32_t reg32(void *ctx, uint64_t pa) { return (uint32_t)((uint64_t *)ctx)[(pa & 0x1f) / 8]; }
static uint64_t reg64(void *ctx, uint64_t pa) { return ((uint64_t *)ctx)[(pa & 0x1f) / 8]; }

static void test_poll_timeouts(void **state)
{
    (void)state;
    for (int queued = 1; queued >= 0; queued--) {
        struct vtd_model_config cfg = vtd_model_config_qemu(39);
        if (!queued)
            cfg.ecap &= ~0x2ull;
        setup_with(&cfg);
        h.unit.poll_timeout_ns = 50000000; /* 50 ms of fake time */
        assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
        vtd_model_stall_invalidations(h.model, true);
        uint64_t t0 = h.clock_ns;
        assert_int_equal(vtd_flush_domain(&h.unit, 1), IOMMU_ETIMEDOUT);
        assert_true(h.clock_ns - t0 >= 50000000);
        assert_true(h.clock_ns - t0 < 60000000);
        assert_int_equal(h.unit.stats.timeouts, 1);
        struct slpt t;
        assert_int_equal(slpt_init(&t, &h.pool, 3, h.unit.unit.superpages), IOMMU_OK);
        struct iommu_translation ctx = translate(2, &t);
        /* a new context entry needs no invalidation of an old domain, but the context cache
         * invalidation still times out and is reported */
        assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &ctx), IOMMU_ETIMEDOUT);
        vtd_model_stall_invalidations(h.model, false);
        if (!queued) {
            /* the stalled register command completes when the unit recovers */
            assert_int_equal(vtd_flush_domain(&h.unit, 1), IOMMU_OK);
        }
        slpt_destroy(&t);
        teardown(NULL);
    }
}

static void test_passthrough_and_bad_contexts(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    assert_int_equal(vtd_unit_enable(&h.unit), IOMMU_OK);
    struct iommu_translation pt = {IOMMU_PASSTHROUGH, 4, 0, 0};
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &pt), IOMMU_OK);
    expect_translation(EDU_SID, 0x12345000, true, 0x12345000);
    struct iommu_translation bad_levels = {IOMMU_TRANSLATE, 2, MEM_BASE, 4}; /* SAGAW offers 3 only */
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &bad_levels), IOMMU_EINVAL);
    struct iommu_translation bad_pa = {IOMMU_TRANSLATE, 2, MEM_BASE + 8, 3};
    assert_int_equal(vtd_set_context(&h.unit, EDU_SID, &bad_pa), IOMMU_EINVAL);
    /* refused changes left the pass-through entry in place */
    expect_translation(EDU_SID, 0x12345000, true, 0x12345000);
    assert_no_misuse();
}

static uint32_t ones32(void *ctx, uint64_t pa) { (void)ctx; (void)pa; return 0xffffffffu; }
static uint64_t ones64(void *ctx, uint64_t pa) { (void)ctx; (void)pa; return ~0ull; }

/* Registers that read as all ones (no device decodes the address) or capabilities the
 * driver cannot use: the unit is refused and no table memory is taken. */
static void test_units_refused(void **state)
{
    (void)state;
    struct vtd_model_config cfg = vtd_model_config_qemu(39);
    setup_with(&cfg);
    uint32_t in_use = h.pool.in_use;
    struct platform absent = {.mmio_read32 = ones32, .mmio_read64 = ones64, .now_ns = now_ns};
    struct vtd_unit u;
    assert_int_equal(vtd_unit_init(&u, &absent, &h.pool, 0xfed00000, 0, 1), IOMMU_ENODEV);
    assert_int_equal(h.pool.in_use, in_use);
    teardown(NULL);

    cfg.cap &= ~(0x1full << 8); /* SAGAW 0: no table depth at all */
    struct vtd_model_memory mem = {.read = mem_read, .write = mem_write};
    assert_null(vtd_model_create(&cfg, &mem)); /* the model refuses it too; fake the registers */
    static uint64_t regs[3];
    regs[0] = 0x10;
    regs[1] = cfg.cap;
    regs[2] = cfg.ecap;
    test_pool_init(&h.pool, POOL_BYTES / PAGE_SIZE, MEM_BASE);
    struct platform no_sagaw = {.mmio_read32 = reg32, .mmio_read64 = reg64, .ctx = regs};
    assert_int_equal(vtd_unit_init(&u, &no_sagaw, &h.pool, UNIT_BASE, 0, 1), IOMMU_ENODEV);
    assert_int_equal(h.pool.in_use, 0);
    test_pool_free(&h.pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_enable_queued, teardown),
        cmocka_unit_test_teardown(test_enable_register_based_4level, teardown),
        cmocka_unit_test_teardown(test_mapping_story_queued, teardown),
        cmocka_unit_test_teardown(test_mapping_story_register_based, teardown),
        cmocka_unit_test_teardown(test_mapping_story_strict_model, teardown),
        cmocka_unit_test_teardown(test_invalidation_granularity, teardown),
        cmocka_unit_test_teardown(test_fault_drain_and_overflow, teardown),
        cmocka_unit_test_teardown(test_fault_drain_several_records, teardown),
        cmocka_unit_test_teardown(test_fault_log_keeps_newest, teardown),
        cmocka_unit_test(test_poll_timeouts),
        cmocka_unit_test_teardown(test_passthrough_and_bad_contexts, teardown),
        cmocka_unit_test_teardown(test_units_refused, teardown),
    };
    return cmocka_run_group_tests_name("vtd", tests, NULL, NULL);
}
