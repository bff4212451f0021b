/* The SMMUv3 unit driver (iommu/smmuv3/) against the software model of an SMMUv3
 * (tests/model/smmuv3_model.c), with QEMU 7.2's behaviour and with the specification's:
 * start and enable, stream table entries (translate, bypass, abort, none), each event, the
 * invalidations a change needs (a missing one shows as a stale translation in the model's
 * caches), command errors, event queue overflow and poll timeouts. The model counts every
 * access real hardware or QEMU would get wrong; each test ends by checking there was none. */
#include <stdlib.h>
#include <string.h>

#include "iommu/pt_format.h"
#include "iommu/slpt.h"
#include "iommu/smmuv3.h"
#include "smmuv3_model.h"
#include "smmuv3_regs.h" /* the driver's own registers (iommu/smmuv3/): this is its test */
#include "test_util.h"

#define UNIT_BASE 0x09050000ull
#define MEM_BASE 0x40000000ull
#define MEM_BYTES (4u << 20)
#define POOL_BYTES (1u << 20)           /* tables and CDs */
#define STATIC_OFFSET POOL_BYTES        /* the driver's static block, 8 KiB aligned */
#define TARGETS_OFFSET (2u << 20)       /* DMA targets */
#define EDU_SID 0x10u
#define DISK_SID 0x08u

static struct {
    uint8_t *mem;
    struct smmuv3_model *model;
    struct platform plat;
    uint64_t clock_ns;
    struct page_pool pool;
    struct smmuv3_unit unit;
    unsigned log_lines;
    /* When set, the device DMAs at this IOVA after every command batch the driver issues:
     * traffic while the driver changes things, which makes the unit fetch what it is given
     * in between (a missing invalidation then shows). */
    bool traffic;
    uint64_t traffic_iova;
} h;

static bool mem_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    (void)ctx;
    if (pa < MEM_BASE || pa - MEM_BASE > MEM_BYTES || len > MEM_BYTES - (pa - MEM_BASE))
        return false;
    memcpy(buf, h.mem + (pa - MEM_BASE), len);
    return true;
}

static bool mem_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    (void)ctx;
    if (pa < MEM_BASE || pa - MEM_BASE > MEM_BYTES || len > MEM_BYTES - (pa - MEM_BASE))
        return false;
    memcpy(h.mem + (pa - MEM_BASE), buf, len);
    return true;
}

static uint32_t off(uint64_t pa)
{
    assert_true(pa >= UNIT_BASE && pa < UNIT_BASE + SMMUV3_REGISTER_BYTES);
    return (uint32_t)(pa - UNIT_BASE);
}
static uint32_t rd32(void *ctx, uint64_t pa) { (void)ctx; return smmuv3_model_read32(h.model, off(pa)); }
static uint64_t rd64(void *ctx, uint64_t pa) { (void)ctx; return smmuv3_model_read64(h.model, off(pa)); }
static void wr32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    smmuv3_model_write32(h.model, off(pa), v);
    if (h.traffic && off(pa) == SMMU_CMDQ_PROD)
        smmuv3_model_dma(h.model, EDU_SID, h.traffic_iova, false);
}
static void wr64(void *ctx, uint64_t pa, uint64_t v) { (void)ctx; smmuv3_model_write64(h.model, off(pa), v); }

/* Time moves 1 us per look at the clock: a 1 s poll bound ends after a million polls. */
static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return h.clock_ns += 1000;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
    h.log_lines++;
}

static void setup_with(const struct smmuv3_model_config *cfg)
{
    h.mem = aligned_alloc(PAGE_SIZE, MEM_BYTES);
    assert_non_null(h.mem);
    memset(h.mem, 0, MEM_BYTES);
    struct smmuv3_model_memory mem = {.read = mem_read, .write = mem_write};
    h.model = smmuv3_model_create(cfg, &mem);
    assert_non_null(h.model);
    h.plat = (struct platform){.mmio_read32 = rd32, .mmio_read64 = rd64, .mmio_write32 = wr32,
                               .mmio_write64 = wr64, .now_ns = now_ns, .log = log_line};
    assert_true(page_pool_init(&h.pool, h.mem, MEM_BASE, POOL_BYTES));
    assert_int_equal(smmuv3_unit_init(&h.unit, &h.plat, &h.pool, UNIT_BASE, 0, h.mem + STATIC_OFFSET,
                                      MEM_BASE + STATIC_OFFSET), IOMMU_OK);
}

static void setup_started(const struct smmuv3_model_config *cfg)
{
    setup_with(cfg);
    assert_int_equal(smmuv3_unit_start(&h.unit), IOMMU_OK);
}

static int teardown(void **state)
{
    (void)state;
    smmuv3_model_destroy(h.model);
    free(h.mem);
    memset(&h, 0, sizeof h);
    return 0;
}

static void assert_no_misuse(void)
{
    struct smmuv3_model_stats s = smmuv3_model_stats(h.model);
    if (s.misuse)
        fail_msg("model saw %u misuse(s), last: %s", s.misuse, s.last_misuse);
}

static uint64_t target(unsigned n)
{
    return MEM_BASE + TARGETS_OFFSET + (uint64_t)n * PAGE_SIZE;
}

/* A domain's tables in the unit's format, over the test pool. */
static void tables(struct slpt *t)
{
    struct iommu_unit *u = &h.unit.unit;
    assert_int_equal(iommu_units_tables_init(t, &h.pool, &u, 1), IOMMU_OK);
    assert_string_equal(t->fmt.name, pt_arm_stage1.name);
}

static struct iommu_translation translate(uint16_t domain_id, const struct slpt *t)
{
    return (struct iommu_translation){IOMMU_TRANSLATE, domain_id, t->root_pa, t->levels};
}

static void expect_pa(uint32_t sid, uint64_t iova, bool write, uint64_t pa)
{
    struct smmuv3_model_result r = smmuv3_model_dma(h.model, sid, iova, write);
    if (!r.ok)
        fail_msg("sid 0x%x %s 0x%llx: event 0x%x, want pa 0x%llx", sid, write ? "write" : "read",
                 (unsigned long long)iova, r.event, (unsigned long long)pa);
    assert_int_equal(r.pa, pa);
}

/* The DMA faults with this event, and the driver's drain gives exactly that record. */
static void expect_event(uint32_t sid, uint64_t iova, bool write, uint8_t event)
{
    struct smmuv3_model_result r = smmuv3_model_dma(h.model, sid, iova, write);
    assert_false(r.ok);
    assert_int_equal(r.event, event);
    assert_true(r.recorded);
    assert_int_equal(smmuv3_drain_events(&h.unit), 1);
    struct iommu_fault_record f;
    assert_true(h.unit.unit.ops->take_fault(&h.unit.unit, &f));
    assert_int_equal(f.sid, sid);
    assert_int_equal(f.reason, event);
    if (event >= SMMUV3_EVENT_F_TRANSLATION && event <= SMMUV3_EVENT_F_PERMISSION) {
        assert_int_equal(f.write, write);
        assert_int_equal(f.address, iova & ~(uint64_t)(PAGE_SIZE - 1));
    }
    assert_false(h.unit.unit.ops->take_fault(&h.unit.unit, &f));
}

static void test_start_and_enable(bool spec)
{
    struct smmuv3_model_config cfg = spec ? smmuv3_model_config_spec() : smmuv3_model_config_qemu();
    setup_started(&cfg);
    assert_int_equal(smmuv3_model_read32(h.model, SMMU_CR0ACK), CR0_CMDQEN | CR0_EVENTQEN);
    /* The specification's unit holds GBPA.ABORT: DMA is refused until SMMUEN; QEMU has no GBPA. */
    assert_int_equal(h.unit.aborts_when_disabled, spec);
    struct smmuv3_model_result r = smmuv3_model_dma(h.model, EDU_SID, 0x1000, false);
    assert_int_equal(r.ok, !spec);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    uint32_t ack = 0;
    assert_true(smmuv3_unit_intact(&h.unit, &ack));
    assert_int_equal(ack, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
    /* Enabled, with no STE for the stream: refused and reported. */
    r = smmuv3_model_dma(h.model, EDU_SID, 0x1000, false);
    assert_false(r.ok);
    assert_int_equal(smmuv3_model_stats(h.model).syncs, 1); /* the start's invalidate-all batch */
    assert_int_equal(smmuv3_unit_disable(&h.unit), IOMMU_OK);
    assert_false(smmuv3_unit_intact(&h.unit, NULL));
    assert_no_misuse();
}

static void test_start_qemu(void **state)
{
    (void)state;
    test_start_and_enable(false);
}

static void test_start_spec(void **state)
{
    (void)state;
    test_start_and_enable(true);
}

static void test_translate_and_events(bool spec)
{
    struct smmuv3_model_config cfg = spec ? smmuv3_model_config_spec() : smmuv3_model_config_qemu();
    setup_started(&cfg);
    struct slpt t;
    tables(&t);
    assert_int_equal(slpt_map(&t, 0x100000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    assert_int_equal(slpt_map(&t, 0x101000, target(1), PAGE_SIZE, SLPT_READ), IOMMU_OK);
    struct iommu_translation tr = translate(2, &t);
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tr), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&h.unit, EDU_SID), 2);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    expect_pa(EDU_SID, 0x100010, true, target(0) + 0x10);
    expect_pa(EDU_SID, 0x101ff0, false, target(1) + 0xff0);
    expect_event(EDU_SID, 0x101000, true, SMMUV3_EVENT_F_PERMISSION);
    expect_event(EDU_SID, 0x200000, false, SMMUV3_EVENT_F_TRANSLATION);
    expect_event(EDU_SID, 0x201008, true, SMMUV3_EVENT_F_TRANSLATION);
    /* A stream without an STE (its level-2 table exists: the same span) is refused, reported. */
    expect_event(EDU_SID + 1, 0x100000, false, SMMUV3_EVENT_C_BAD_STE);
    /* Bypass, then abort (silent: no event). */
    struct iommu_translation bypass = {.type = IOMMU_PASSTHROUGH};
    assert_int_equal(smmuv3_set_stream(&h.unit, DISK_SID, &bypass), IOMMU_OK);
    expect_pa(DISK_SID, target(3), true, target(3));
    assert_int_equal(smmuv3_set_stream(&h.unit, DISK_SID, NULL), IOMMU_OK);
    struct smmuv3_model_result r = smmuv3_model_dma(h.model, DISK_SID, target(3), true);
    assert_false(r.ok);
    assert_int_equal(r.event, 0);
    assert_int_equal(smmuv3_drain_events(&h.unit), 0);
    assert_int_equal(smmuv3_stream_domain(&h.unit, DISK_SID), -1);
    slpt_destroy(&t);
    assert_no_misuse();
}

/* QEMU records an event per 4 bytes of a faulting transfer: the drain gives one record per
 * transfer (consecutive events of the stream, type and direction, 4 bytes apart in a page),
 * counting them; a transfer started again, another direction or another page is another. A
 * translation fault beyond the CD's input range is an address-size fault. */
static void test_one_record_per_transfer(void **state)
{
    (void)state;
    struct smmuv3_model_config cfg = smmuv3_model_config_qemu();
    setup_started(&cfg);
    struct slpt t;
    assert_int_equal(slpt_init(&t, &h.pool, 3, 0), IOMMU_OK); /* 39-bit input addresses */
    assert_int_equal(slpt_set_format(&t, &pt_arm_stage1), IOMMU_OK);
    assert_int_equal(slpt_map(&t, 0x100000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    struct iommu_translation tr = translate(2, &t);
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tr), IOMMU_OK);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    for (unsigned round = 0; round < 2; round++) /* the same 64-byte write twice */
        for (uint64_t a = 0x200000; a < 0x200040; a += 4)
            assert_false(smmuv3_model_dma(h.model, EDU_SID, a, true).ok);
    for (uint64_t a = 0x200040; a < 0x200050; a += 4) /* then a read, on from there */
        assert_false(smmuv3_model_dma(h.model, EDU_SID, a, false).ok);
    assert_false(smmuv3_model_dma(h.model, EDU_SID, 0x201000, false).ok); /* the next page */
    assert_false(smmuv3_model_dma(h.model, EDU_SID, 1ull << 40, true).ok); /* beyond 39 bits */
    assert_int_equal(smmuv3_drain_events(&h.unit), 16 + 16 + 4 + 1 + 1);
    struct { bool write; uint64_t address; uint32_t records; enum iommu_fault_kind kind; } want[] = {
        {true, 0x200000, 16, IOMMU_FAULT_TRANSLATION}, {true, 0x200000, 16, IOMMU_FAULT_TRANSLATION},
        {false, 0x200000, 4, IOMMU_FAULT_TRANSLATION}, {false, 0x201000, 1, IOMMU_FAULT_TRANSLATION},
        {true, 1ull << 40, 1, IOMMU_FAULT_ADDRESS_SIZE}};
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct iommu_fault_record f;
        assert_true(h.unit.unit.ops->take_fault(&h.unit.unit, &f));
        assert_int_equal(f.reason, SMMUV3_EVENT_F_TRANSLATION);
        assert_int_equal(f.write, want[i].write);
        assert_int_equal(f.address, want[i].address);
        assert_int_equal(f.records, want[i].records);
        assert_int_equal(f.kind, want[i].kind);
    }
    struct iommu_fault_record f;
    assert_false(h.unit.unit.ops->take_fault(&h.unit.unit, &f));
    assert_int_equal(h.unit.stats.events, 38);
    assert_int_equal(h.unit.stats.events_merged, 15 + 15 + 3);
    slpt_destroy(&t);
    assert_no_misuse();
}

static void test_translate_qemu(void **state)
{
    (void)state;
    test_translate_and_events(false);
}

static void test_translate_spec(void **state)
{
    (void)state;
    test_translate_and_events(true);
}

/* An unmap needs its TLBI: the model's TLB keeps the translation without it (the test shows
 * that first), and the driver's flush removes it. */
static void test_unmap_needs_tlbi(void **state)
{
    (void)state;
    struct smmuv3_model_config cfg = smmuv3_model_config_spec();
    setup_started(&cfg);
    struct slpt t;
    tables(&t);
    assert_int_equal(slpt_map(&t, 0x100000, target(0), 2 * PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    struct iommu_translation tr = translate(3, &t);
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tr), IOMMU_OK);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    expect_pa(EDU_SID, 0x100000, true, target(0));
    expect_pa(EDU_SID, 0x101000, true, target(1));
    struct slpt_unmapped un;
    assert_int_equal(slpt_unmap(&t, 0x100000, PAGE_SIZE, &un), IOMMU_OK);
    struct smmuv3_model_result r = smmuv3_model_dma(h.model, EDU_SID, 0x100000, true);
    assert_true(r.ok && r.from_cache); /* stale */
    unsigned tlbi = smmuv3_model_stats(h.model).tlbi;
    assert_int_equal(smmuv3_flush_range(&h.unit, 3, un.first, un.last), IOMMU_OK);
    assert_int_equal(smmuv3_model_stats(h.model).tlbi, tlbi + 1);
    expect_event(EDU_SID, 0x100000, true, SMMUV3_EVENT_F_TRANSLATION);
    expect_pa(EDU_SID, 0x101000, true, target(1)); /* the neighbour stays */
    /* A large range is one TLBI by ASID. */
    tlbi = smmuv3_model_stats(h.model).tlbi;
    assert_int_equal(smmuv3_flush_range(&h.unit, 3, 0, (1ull << 30) - 1), IOMMU_OK);
    assert_int_equal(smmuv3_model_stats(h.model).tlbi, tlbi + 1);
    slpt_destroy(&t);
    assert_no_misuse();
}

/* Moving a stream to another domain: its STE's CFGI makes the unit use the new CD (and so
 * the new tables and ASID) at once; a domain id keeps its CD while streams use it. */
static void test_move_stream(void **state)
{
    (void)state;
    struct smmuv3_model_config cfg = smmuv3_model_config_spec();
    setup_started(&cfg);
    struct slpt a, b;
    tables(&a);
    tables(&b);
    assert_int_equal(slpt_map(&a, 0x100000, target(0), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    assert_int_equal(slpt_map(&b, 0x100000, target(1), PAGE_SIZE, SLPT_READ | SLPT_WRITE), IOMMU_OK);
    struct iommu_translation ta = translate(4, &a), tb = translate(5, &b);
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &ta), IOMMU_OK);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    expect_pa(EDU_SID, 0x100000, true, target(0));
    /* The device keeps reading while its STE changes. */
    h.traffic = true;
    h.traffic_iova = 0x100000;
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tb), IOMMU_OK);
    h.traffic = false;
    expect_pa(EDU_SID, 0x100000, true, target(1));
    assert_int_equal(smmuv3_stream_domain(&h.unit, EDU_SID), 5);
    /* Domain 5 is in use with b's tables: other tables under the same id are refused. */
    struct iommu_translation wrong = translate(5, &a);
    assert_int_equal(smmuv3_set_stream(&h.unit, DISK_SID, &wrong), IOMMU_EBUSY);
    expect_pa(EDU_SID, 0x100000, true, target(1));
    /* Bad arguments change nothing. */
    struct iommu_translation bad = translate(SMMUV3_MAX_DOMAINS, &a);
    assert_int_equal(smmuv3_set_stream(&h.unit, DISK_SID, &bad), IOMMU_EINVAL);
    assert_int_equal(smmuv3_set_stream(&h.unit, 1u << 16, &ta), IOMMU_ERANGE);
    slpt_destroy(&a);
    slpt_destroy(&b);
    assert_no_misuse();
}

/* More faults than the event queue holds before a drain: the loss is counted. */
static void test_event_overflow(bool spec)
{
    struct smmuv3_model_config cfg = spec ? smmuv3_model_config_spec() : smmuv3_model_config_qemu();
    setup_started(&cfg);
    struct slpt t;
    tables(&t);
    struct iommu_translation tr = translate(2, &t);
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tr), IOMMU_OK);
    assert_int_equal(smmuv3_unit_enable(&h.unit), IOMMU_OK);
    unsigned queue = 1u << h.unit.eventq_log2;
    for (unsigned i = 0; i < queue + 5; i++)
        assert_false(smmuv3_model_dma(h.model, EDU_SID, 0x100000 + (uint64_t)i * PAGE_SIZE, true).ok);
    assert_true(smmuv3_model_stats(h.model).events_lost >= 5);
    unsigned drained = smmuv3_drain_events(&h.unit);
    assert_true(drained >= queue - 1 && drained <= queue);
    assert_int_equal(h.unit.unit.faults.overflows, 1);
    struct iommu_fault_record f;
    while (h.unit.unit.ops->take_fault(&h.unit.unit, &f))
        assert_int_equal(f.reason, SMMUV3_EVENT_F_TRANSLATION);
    /* Acknowledged: the next fault is recorded again, without another overflow. */
    expect_event(EDU_SID, 0x900000, false, SMMUV3_EVENT_F_TRANSLATION);
    assert_int_equal(h.unit.unit.faults.overflows, 1);
    slpt_destroy(&t);
    assert_no_misuse();
}

static void test_overflow_qemu(void **state)
{
    (void)state;
    test_event_overflow(false);
}

static void test_overflow_spec(void **state)
{
    (void)state;
    test_event_overflow(true);
}

/* A unit that stops consuming commands: the driver's wait ends with IOMMU_ETIMEDOUT at its
 * bound, and the STE it was changing is not counted as changed. */
static void test_command_timeout(void **state)
{
    (void)state;
    struct smmuv3_model_config cfg = smmuv3_model_config_spec();
    setup_started(&cfg);
    struct slpt t;
    tables(&t);
    struct iommu_translation tr = translate(2, &t);
    smmuv3_model_stall_commands(h.model, true);
    uint64_t before = h.clock_ns;
    assert_int_equal(smmuv3_set_stream(&h.unit, EDU_SID, &tr), IOMMU_ETIMEDOUT);
    assert_true(h.clock_ns - before >= h.unit.poll_timeout_ns);
    assert_true(h.unit.stats.timeouts >= 1);
    smmuv3_model_stall_commands(h.model, false);
    slpt_destroy(&t);
}

/* A command the unit refuses: the driver replaces it, acknowledges the error, reports
 * IOMMU_EHW, and the queue goes on (the next command completes). */
static void test_command_error(void **state)
{
    (void)state;
    struct smmuv3_model_config cfg = smmuv3_model_config_spec();
    setup_started(&cfg);
    /* An illegal opcode, queued by hand where the driver's next command would go. */
    uint64_t *slot = h.unit.cmdq + 2 * (h.unit.cmdq_prod & ((1u << h.unit.cmdq_log2) - 1));
    slot[0] = 0xff;
    slot[1] = 0;
    h.unit.cmdq_prod = (h.unit.cmdq_prod + 1) & ((2u << h.unit.cmdq_log2) - 1);
    assert_int_equal(smmuv3_flush_domain(&h.unit, 2), IOMMU_EHW);
    assert_int_equal(h.unit.stats.command_errors, 1);
    assert_int_equal(smmuv3_model_stats(h.model).command_errors, 1);
    assert_int_equal((smmuv3_model_read32(h.model, SMMU_GERROR) ^ smmuv3_model_read32(h.model, SMMU_GERRORN)) &
                         GERROR_CMDQ_ERR, 0);
    assert_int_equal(smmuv3_flush_domain(&h.unit, 2), IOMMU_OK);
    assert_true(h.log_lines >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_start_qemu, teardown),
        cmocka_unit_test_teardown(test_start_spec, teardown),
        cmocka_unit_test_teardown(test_translate_qemu, teardown),
        cmocka_unit_test_teardown(test_translate_spec, teardown),
        cmocka_unit_test_teardown(test_unmap_needs_tlbi, teardown),
        cmocka_unit_test_teardown(test_move_stream, teardown),
        cmocka_unit_test_teardown(test_overflow_qemu, teardown),
        cmocka_unit_test_teardown(test_overflow_spec, teardown),
        cmocka_unit_test_teardown(test_command_timeout, teardown),
        cmocka_unit_test_teardown(test_command_error, teardown),
        cmocka_unit_test_teardown(test_one_record_per_transfer, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
