/* Black-box tests of the SMMUv3 driver (iommu/smmuv3.h), written by an outside tester from
 * the documentation only: README.md, docs/design.md ("The unit interface", "The SMMUv3
 * driver", "Page tables"), docs/smmuv3-model.md and the public headers. Neither the driver's
 * sources nor its register header were read; register offsets come from the model's header
 * and bit positions from the Arm SMMUv3 specification (IHI 0070).
 *
 * Every test runs against the model in QEMU 7.2's configuration and in the specification's,
 * and (unless it provokes an error on purpose) ends with the model having seen no misuse.
 *
 * A comment "FINDING:" marks an assertion that failed when these tests were first run, with
 * the documentation that promises what it checks; each was fixed in the driver (or, where
 * the driver was right, in its documentation) before the tests landed. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "iommu/fault.h"
#include "iommu/page_pool.h"
#include "iommu/platform.h"
#include "iommu/pt_format.h"
#include "iommu/slpt.h"
#include "iommu/smmuv3.h"
#include "iommu/status.h"
#include "iommu/unit.h"
#include "smmuv3_model.h"
#include "test_util.h"

/* ---- where things are ------------------------------------------------------------------ */

#define T_UNIT_BASE 0x09050000ull /* the unit's registers (QEMU virt's SMMU) */
#define T_ARENA_PA 0x80000000ull  /* the "physical memory" the model reads and writes */
#define T_ARENA_BYTES (16u << 20)
#define T_STATIC_OFF 0x0u          /* the driver's static block */
#define T_POOL_OFF 0x10000u        /* the page pool */
#define T_SPARE_OFF (T_ARENA_BYTES - 0x100000u) /* 1 MiB outside the pool: a "firmware's" structures */
#define T_POOL_BYTES (T_SPARE_OFF - T_POOL_OFF)

#define T_TARGET 0x100000000ull /* output addresses of the tests' mappings (not memory: the model moves no data) */

/* Register bits, from the SMMUv3 specification (6.3), named with T_ as this file is not the driver. */
#define T_CR0_SMMUEN 0x1u
#define T_CR0_EVENTQEN 0x4u
#define T_CR0_CMDQEN 0x8u
#define T_IDR0_S1P (1u << 1)
#define T_IDR0_TTF_SHIFT 2
#define T_IDR0_COHACC (1u << 4)
#define T_IDR0_ASID16 (1u << 12)
#define T_IDR0_ST_LEVEL_SHIFT 27
#define T_IDR1_SIDSIZE_MASK 0x3fu
#define T_IDR1_EVENTQS_SHIFT 16
#define T_IDR1_CMDQS_SHIFT 21
#define T_IDR1_QUEUES_PRESET (1u << 29)
#define T_IDR1_TABLES_PRESET (1u << 30)
#define T_IDR5_OAS_MASK 0x7u
#define T_IDR5_GRAN4K (1u << 4)

/* Commands (4.1) for the "firmware" of one test. */
#define T_CMD_CFGI_STE_RANGE 0x04u
#define T_CMD_TLBI_NSNH_ALL 0x30u
#define T_CMD_SYNC 0x46u

enum { T_QEMU, T_SPEC };
static const int kind_qemu = T_QEMU, kind_spec = T_SPEC;

/* ---- the fixture: model, memory, platform, pool, unit ----------------------------------- */

struct fx {
    int kind;
    struct smmuv3_model_config cfg;
    struct smmuv3_model_memory mem;
    struct smmuv3_model *m;
    uint8_t *arena;      /* what the CPU (the driver) reads and writes */
    uint8_t *dev_arena;  /* non-NULL: what the unit sees (a non-coherent unit: only flushed lines) */
    struct platform plat;
    struct page_pool pool;
    struct smmuv3_unit u;

    /* platform bookkeeping */
    uint64_t now, tick;
    uint64_t clock_calls;
    uint64_t mmio_reads, mmio_writes, mmio_outside;
    uint64_t flushes, alloc_calls, logs;
    bool idr_set[6];
    uint32_t idr[6];
    bool dead; /* the unit does not answer: every read all ones */
    bool static_unreadable; /* the unit's reads of the driver's static block fail (a bus error) */
    bool static_unwritable; /* the unit's writes there fail */
};

static bool mem_in(uint64_t pa, size_t len)
{
    return pa >= T_ARENA_PA && len <= T_ARENA_BYTES && pa - T_ARENA_PA <= T_ARENA_BYTES - len;
}

static bool mem_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    struct fx *f = ctx;
    if (!mem_in(pa, len))
        return false;
    if (f->static_unreadable && pa < T_ARENA_PA + T_STATIC_OFF + SMMUV3_STATIC_BYTES &&
        pa + len > T_ARENA_PA + T_STATIC_OFF)
        return false;
    memcpy(buf, (f->dev_arena ? f->dev_arena : f->arena) + (pa - T_ARENA_PA), len);
    return true;
}

static bool mem_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    struct fx *f = ctx;
    if (!mem_in(pa, len))
        return false;
    if (f->static_unwritable && pa < T_ARENA_PA + T_STATIC_OFF + SMMUV3_STATIC_BYTES &&
        pa + len > T_ARENA_PA + T_STATIC_OFF)
        return false;
    memcpy(f->arena + (pa - T_ARENA_PA), buf, len);
    if (f->dev_arena)
        memcpy(f->dev_arena + (pa - T_ARENA_PA), buf, len);
    return true;
}

#define T_MMIO_GUARD 50000000ull  /* a driver that polls this often without a bound hangs */
#define T_CLOCK_GUARD 20000000ull

static bool mmio_off(struct fx *f, uint64_t pa, uint32_t *off)
{
    if (pa < T_UNIT_BASE || pa - T_UNIT_BASE >= SMMUV3_MMIO_SIZE) {
        f->mmio_outside++;
        return false;
    }
    *off = (uint32_t)(pa - T_UNIT_BASE);
    return true;
}

static uint32_t p_read32(void *ctx, uint64_t pa)
{
    struct fx *f = ctx;
    uint32_t off;
    if (__atomic_add_fetch(&f->mmio_reads, 1, __ATOMIC_RELAXED) > T_MMIO_GUARD)
        fail_msg("more than %llu MMIO reads (the clock read %llu times): an unbounded poll",
                 (unsigned long long)T_MMIO_GUARD, (unsigned long long)f->clock_calls);
    if (!mmio_off(f, pa, &off) || f->dead || !f->m)
        return 0xffffffffu;
    if (off <= SMMUV3_IDR5 && (off & 3) == 0 && f->idr_set[off / 4])
        return f->idr[off / 4];
    return smmuv3_model_read32(f->m, off);
}

static uint64_t p_read64(void *ctx, uint64_t pa)
{
    struct fx *f = ctx;
    uint32_t off;
    if (__atomic_add_fetch(&f->mmio_reads, 1, __ATOMIC_RELAXED) > T_MMIO_GUARD)
        fail_msg("more than %llu MMIO reads (the clock read %llu times): an unbounded poll",
                 (unsigned long long)T_MMIO_GUARD, (unsigned long long)f->clock_calls);
    if (!mmio_off(f, pa, &off) || f->dead || !f->m)
        return ~0ull;
    return smmuv3_model_read64(f->m, off);
}

static void p_write32(void *ctx, uint64_t pa, uint32_t v)
{
    struct fx *f = ctx;
    uint32_t off;
    __atomic_add_fetch(&f->mmio_writes, 1, __ATOMIC_RELAXED);
    if (mmio_off(f, pa, &off) && f->m && !f->dead)
        smmuv3_model_write32(f->m, off, v);
}

static void p_write64(void *ctx, uint64_t pa, uint64_t v)
{
    struct fx *f = ctx;
    uint32_t off;
    __atomic_add_fetch(&f->mmio_writes, 1, __ATOMIC_RELAXED);
    if (mmio_off(f, pa, &off) && f->m && !f->dead)
        smmuv3_model_write64(f->m, off, v);
}

static const void *p_map_phys(void *ctx, uint64_t pa, size_t len)
{
    (void)ctx, (void)pa, (void)len;
    return NULL;
}

static void *p_alloc_pages(void *ctx, size_t pages, uint64_t max_pa, uint64_t *pa)
{
    struct fx *f = ctx;
    (void)pages, (void)max_pa, (void)pa;
    f->alloc_calls++; /* the driver's memory is the pool and the static block: it should not ask */
    return NULL;
}

static void p_free_pages(void *ctx, void *va, size_t pages)
{
    (void)ctx, (void)va, (void)pages;
}

/* For a non-coherent unit: the lines [va, va + len) touches reach the memory the unit sees. */
static void p_flush_cache(void *ctx, const void *va, size_t len)
{
    struct fx *f = ctx;
    f->flushes++;
    if (!f->dev_arena || len == 0)
        return;
    const uint8_t *p = va;
    if (p < f->arena || p >= f->arena + T_ARENA_BYTES)
        return;
    size_t start = (size_t)(p - f->arena) & ~(size_t)63;
    size_t end = ((size_t)(p - f->arena) + len + 63) & ~(size_t)63;
    if (end > T_ARENA_BYTES)
        end = T_ARENA_BYTES;
    memcpy(f->dev_arena + start, f->arena + start, end - start);
}

static uint64_t p_now_ns(void *ctx)
{
    struct fx *f = ctx;
    if (__atomic_add_fetch(&f->clock_calls, 1, __ATOMIC_RELAXED) > T_CLOCK_GUARD)
        fail_msg("the clock was read %llu times: a wait that does not end", (unsigned long long)T_CLOCK_GUARD);
    return __atomic_add_fetch(&f->now, f->tick, __ATOMIC_RELAXED);
}

static void p_log(void *ctx, const char *line)
{
    struct fx *f = ctx;
    f->logs++;
    if (getenv("T_VERBOSE"))
        fprintf(stderr, "log: %s\n", line);
}

static void fx_model(struct fx *f)
{
    smmuv3_model_destroy(f->m);
    f->m = smmuv3_model_create(&f->cfg, &f->mem);
    assert_non_null(f->m);
}

static int fx_setup(void **state)
{
    const int *kind = *state;
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->kind = *kind;
    f->cfg = f->kind == T_QEMU ? smmuv3_model_config_qemu() : smmuv3_model_config_spec();
    f->arena = aligned_alloc(0x200000, T_ARENA_BYTES);
    assert_non_null(f->arena);
    memset(f->arena, 0, T_ARENA_BYTES);
    f->mem = (struct smmuv3_model_memory){.ctx = f, .read = mem_read, .write = mem_write, .msi = NULL};
    f->tick = 1000000; /* 1 ms per look at the clock */
    f->plat = (struct platform){
        .ctx = f,
        .mmio_read32 = p_read32,
        .mmio_read64 = p_read64,
        .mmio_write32 = p_write32,
        .mmio_write64 = p_write64,
        .map_phys = p_map_phys,
        .alloc_pages = p_alloc_pages,
        .free_pages = p_free_pages,
        .flush_cache = NULL, /* coherent */
        .flush_cache_wait = NULL,
        .now_ns = p_now_ns,
        .log = p_log,
    };
    assert_true(page_pool_init(&f->pool, f->arena + T_POOL_OFF, T_ARENA_PA + T_POOL_OFF, T_POOL_BYTES));
    fx_model(f);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f) {
        smmuv3_model_destroy(f->m);
        free(f->arena);
        free(f->dev_arena);
        free(f);
    }
    return 0;
}

static const char *kind_name(const struct fx *f)
{
    return f->kind == T_QEMU ? "qemu" : "spec";
}

#define NO_MISUSE(f)                                                                                        \
    do {                                                                                                    \
        struct smmuv3_model_stats s_ = smmuv3_model_stats((f)->m);                                          \
        if (s_.misuse)                                                                                      \
            fail_msg("%s: the model saw %u misuse(s), the last: %s", kind_name(f), s_.misuse, s_.last_misuse); \
    } while (0)

#define ST_EQ(got, want)                                                                                    \
    do {                                                                                                    \
        enum iommu_status g_ = (got), w_ = (want);                                                          \
        if (g_ != w_)                                                                                       \
            fail_msg("%s: %s returned %s, want %s", kind_name(f), #got, iommu_status_name(g_),             \
                     iommu_status_name(w_));                                                                \
    } while (0)

static enum iommu_status fx_init(struct fx *f)
{
    return smmuv3_unit_init(&f->u, &f->plat, &f->pool, T_UNIT_BASE, 0, f->arena + T_STATIC_OFF,
                            T_ARENA_PA + T_STATIC_OFF);
}

static void fx_up(struct fx *f)
{
    ST_EQ(fx_init(f), IOMMU_OK);
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
}

static void dom_init(struct fx *f, struct slpt *t)
{
    struct iommu_unit *units[1] = {&f->u.unit};
    ST_EQ(iommu_units_tables_init(t, &f->pool, units, 1), IOMMU_OK);
}

static struct iommu_translation tr_of(const struct slpt *t, uint16_t id)
{
    return (struct iommu_translation){.type = IOMMU_TRANSLATE, .domain_id = id, .table_pa = t->root_pa,
                                      .levels = t->levels};
}

static enum iommu_status attach(struct fx *f, uint16_t sid, uint16_t id, const struct slpt *t)
{
    struct iommu_translation tr = tr_of(t, id);
    return iommu_unit_set_translation(&f->u.unit, sid, &tr);
}

static void map_ok(struct fx *f, struct slpt *t, uint64_t iova, uint64_t pa, uint64_t size, unsigned perm)
{
    ST_EQ(slpt_map(t, iova, pa, size, perm), IOMMU_OK);
}

static struct smmuv3_model_result dma(struct fx *f, uint32_t sid, uint64_t iova, bool write)
{
    return smmuv3_model_dma(f->m, sid, iova, write);
}

static void expect_pa_(struct fx *f, uint32_t sid, uint64_t iova, bool write, uint64_t pa, int line)
{
    struct smmuv3_model_result r = dma(f, sid, iova, write);
    if (!r.ok || r.pa != pa)
        fail_msg("%s line %d: DMA %s from stream %#x to %#llx: ok %d pa %#llx event %#x, want pa %#llx",
                 kind_name(f), line, write ? "write" : "read", sid, (unsigned long long)iova, r.ok,
                 (unsigned long long)r.pa, r.event, (unsigned long long)pa);
}
#define EXPECT_PA(f, sid, iova, write, pa) expect_pa_((f), (sid), (iova), (write), (pa), __LINE__)

static struct smmuv3_model_result expect_fault_(struct fx *f, uint32_t sid, uint64_t iova, bool write, int event,
                                                int line)
{
    struct smmuv3_model_result r = dma(f, sid, iova, write);
    if (r.ok || (event >= 0 && r.event != event))
        fail_msg("%s line %d: DMA %s from stream %#x to %#llx: ok %d pa %#llx event %#x, want event %#x",
                 kind_name(f), line, write ? "write" : "read", sid, (unsigned long long)iova, r.ok,
                 (unsigned long long)r.pa, r.event, event);
    return r;
}
#define EXPECT_FAULT(f, sid, iova, write, event) expect_fault_((f), (sid), (iova), (write), (event), __LINE__)

/* The next record of the unit's log (draining the unit first). */
static void expect_record_(struct fx *f, uint16_t sid, uint8_t reason, int write, int64_t address, int kind, int line)
{
    struct iommu_fault_record r;
    iommu_unit_drain_faults(&f->u.unit);
    if (!iommu_unit_take_fault(&f->u.unit, &r))
        fail_msg("%s line %d: no fault record, want stream %#x reason %#x", kind_name(f), line, sid, reason);
    if (r.sid != sid || r.reason != reason || (write >= 0 && r.write != (bool)write) ||
        (address >= 0 && r.address != (uint64_t)address) || (kind >= 0 && (int)r.kind != kind))
        fail_msg("%s line %d: record stream %#x reason %#x write %d address %#llx kind %d; want stream %#x reason "
                 "%#x write %d address %#llx kind %d",
                 kind_name(f), line, r.sid, r.reason, r.write, (unsigned long long)r.address, (int)r.kind, sid, reason,
                 write, (unsigned long long)address, kind);
}
#define EXPECT_RECORD(f, sid, reason, write, address, kind)                                                   \
    expect_record_((f), (sid), (reason), (write), (address), (kind), __LINE__)

static void expect_no_record(struct fx *f)
{
    struct iommu_fault_record r = {0};
    unsigned n = iommu_unit_drain_faults(&f->u.unit);
    if (n != 0 || iommu_unit_take_fault(&f->u.unit, &r))
        fail_msg("%s: %u record(s) drained where none was expected (first: stream %#x reason %#x)", kind_name(f), n,
                 r.sid, r.reason);
}

static void drop_records(struct fx *f)
{
    struct iommu_fault_record r;
    iommu_unit_drain_faults(&f->u.unit);
    while (iommu_unit_take_fault(&f->u.unit, &r)) {
    }
}

static void set_idr(struct fx *f, unsigned n, uint32_t v)
{
    f->idr_set[n] = true;
    f->idr[n] = v;
}

/* ======================================================================================== */
/* init                                                                                     */
/* ======================================================================================== */

/* smmuv3.h: "Reads and checks the unit's capabilities and lays out its static structures in
 * the caller's block ... Nothing is written to the unit." unit.h: the unit states the depths
 * it walks, the superpages, the table format. design.md: ASID = domain id, 3 or 4 levels. */
static void init_ok_and_what_the_unit_states(void **state)
{
    struct fx *f = *state;
    ST_EQ(fx_init(f), IOMMU_OK);
    assert_int_equal(f->mmio_writes, 0);
    assert_int_equal(f->alloc_calls, 0);
    struct iommu_unit *u = &f->u.unit;
    assert_ptr_equal(u, (struct iommu_unit *)&f->u); /* "its struct smmuv3_unit starts with a struct iommu_unit" */
    assert_non_null(u->ops);
    assert_non_null(u->ops->set_translation);
    assert_non_null(u->ops->invalidate_range);
    assert_non_null(u->ops->invalidate_domain);
    assert_non_null(u->ops->drain_faults);
    assert_non_null(u->ops->take_fault);
    assert_non_null(u->ops->intact);
    assert_non_null(u->ops->fault_reason_name);
    assert_int_equal(u->index, 0);
    assert_int_equal(u->register_base, T_UNIT_BASE);
    assert_ptr_equal(u->table_format, &pt_arm_stage1);
    assert_true(u->table_levels & (1u << 3));
    assert_true(u->table_levels & (1u << 4));
    assert_int_equal(u->superpages & (SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G), SLPT_SUPERPAGE_2M | SLPT_SUPERPAGE_1G);
    assert_int_equal(u->domain_ids, SMMUV3_MAX_DOMAINS);
    assert_null(u->write_back); /* IDR0.COHACC: the unit snoops */
    assert_non_null(u->name);
    /* README: "fault: smmu[0] stream 0x0010 write 0x102000 event 0x13 (F_PERMISSION)" */
    assert_string_equal(u->ops->fault_reason_name(SMMUV3_EVENT_F_PERMISSION), "F_PERMISSION");
    assert_string_equal(u->ops->fault_reason_name(SMMUV3_EVENT_F_TRANSLATION), "F_TRANSLATION");
    assert_string_equal(smmuv3_event_name(SMMUV3_EVENT_F_PERMISSION), "F_PERMISSION");
    assert_string_equal(u->ops->fault_reason_name(SMMUV3_EVENT_C_BAD_STE), "C_BAD_STE");
    assert_non_null(u->ops->fault_reason_name(0xff)); /* callers print it */
    assert_non_null(u->ops->fault_reason_name(0));

    struct smmuv3_caps c;
    assert_true(smmuv3_caps_read(&f->plat, T_UNIT_BASE, &c));
    assert_null(smmuv3_caps_unusable(&c));
    assert_true(c.stage1);
    assert_false(c.stage2);
    assert_true(c.aarch64_tables);
    assert_true(c.coherent);
    assert_true(c.asid16);
    assert_true(c.two_level);
    assert_true(c.gran4k);
    assert_int_equal(c.sid_bits, 16);
    assert_int_equal(c.oas_bits, 44);
    assert_int_equal(c.cmdq_log2, 19);
    assert_int_equal(c.eventq_log2, 19);
    assert_int_equal(f->mmio_writes, 0);
    NO_MISUSE(f);
}

/* smmuv3.h: the block must be SMMUV3_STATIC_BYTES aligned to SMMUV3_STATIC_ALIGN. */
static void init_refuses_misaligned_block(void **state)
{
    struct fx *f = *state;
    struct {
        size_t va_off;
        uint64_t pa_off;
        const char *what;
    } bad[] = {
        {0x1000, 0x1000, "both 4 KiB off"},
        {0x40, 0x40, "both 64 bytes off"},
        {0, 0x1000, "physical address 4 KiB off"},
        /* Not checked: a block whose virtual address alone is misaligned is taken (the
         * unit sees only the physical one, so that is harmless; the header asks both). */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&f->u, 0, sizeof f->u);
        enum iommu_status s = smmuv3_unit_init(&f->u, &f->plat, &f->pool, T_UNIT_BASE, 0, f->arena + bad[i].va_off,
                                               T_ARENA_PA + bad[i].pa_off);
        if (s == IOMMU_OK)
            fail_msg("%s: smmuv3_unit_init took a static block %s", kind_name(f), bad[i].what);
        print_message("# init, static block %s: %s\n", bad[i].what, iommu_status_name(s));
    }
    memset(&f->u, 0, sizeof f->u);
    assert_int_not_equal(smmuv3_unit_init(&f->u, &f->plat, &f->pool, T_UNIT_BASE, 0, NULL, T_ARENA_PA), IOMMU_OK);
    assert_int_equal(f->mmio_writes, 0);
    /* and a good block afterwards works */
    memset(&f->u, 0, sizeof f->u);
    fx_up(f);
    NO_MISUSE(f);
}

/* design.md: "Capabilities first (smmuv3_caps_unusable): stage 1, AArch64 tables, the 4 KiB
 * granule, a known output size, no preset queues or tables, a 2-level stream table unless
 * the unit has at most 128 streams." The model cannot be such a unit, so the ID registers
 * the driver reads are replaced on the way. */
static void init_refuses_unusable_units(void **state)
{
    struct fx *f = *state;
    const struct smmuv3_model_config q = f->cfg;
    const uint32_t no_st2 = q.idr[0] & ~(3u << T_IDR0_ST_LEVEL_SHIFT);
    const struct {
        unsigned idr;
        uint32_t value;
        int idr2; /* a second register replaced, or -1 */
        uint32_t value2;
        const char *what;
    } bad[] = {
        {0, q.idr[0] & ~T_IDR0_S1P, -1, 0, "no stage 1"},
        {0, (q.idr[0] & ~(3u << T_IDR0_TTF_SHIFT)) | (1u << T_IDR0_TTF_SHIFT), -1, 0, "AArch32 tables only"},
        {5, q.idr[5] & ~T_IDR5_GRAN4K, -1, 0, "no 4 KiB granule"},
        {5, (q.idr[5] & ~T_IDR5_OAS_MASK) | 7u, -1, 0, "reserved output size (IDR5.OAS 7)"},
        {1, q.idr[1] | T_IDR1_QUEUES_PRESET, -1, 0, "preset queues"},
        {1, q.idr[1] | T_IDR1_TABLES_PRESET, -1, 0, "preset tables"},
        {0, no_st2, -1, 0, "a linear stream table only, 2^16 streams"},
        {0, no_st2, 1, (q.idr[1] & ~T_IDR1_SIDSIZE_MASK) | 8u, "a linear stream table only, 256 streams"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(f->idr_set, 0, sizeof f->idr_set);
        set_idr(f, bad[i].idr, bad[i].value);
        if (bad[i].idr2 >= 0)
            set_idr(f, (unsigned)bad[i].idr2, bad[i].value2);
        struct smmuv3_caps c;
        assert_true(smmuv3_caps_read(&f->plat, T_UNIT_BASE, &c));
        const char *why = smmuv3_caps_unusable(&c);
        if (!why)
            fail_msg("%s: smmuv3_caps_unusable took a unit with %s", kind_name(f), bad[i].what);
        memset(&f->u, 0, sizeof f->u);
        uint64_t writes = f->mmio_writes;
        enum iommu_status s = fx_init(f);
        if (s == IOMMU_OK)
            fail_msg("%s: smmuv3_unit_init took a unit with %s", kind_name(f), bad[i].what);
        assert_int_equal(f->mmio_writes, writes);
        print_message("# unusable (%s): %s, \"%s\"\n", bad[i].what, iommu_status_name(s), why);
    }
    /* a unit that does not answer (all ones) */
    memset(f->idr_set, 0, sizeof f->idr_set);
    f->dead = true;
    struct smmuv3_caps c;
    assert_false(smmuv3_caps_read(&f->plat, T_UNIT_BASE, &c));
    memset(&f->u, 0, sizeof f->u);
    enum iommu_status s = fx_init(f);
    assert_int_not_equal(s, IOMMU_OK);
    print_message("# unit reading all ones: %s\n", iommu_status_name(s));
    f->dead = false;
    assert_int_equal(f->mmio_writes, 0);
    NO_MISUSE(f);
}

/* A unit with at most 128 streams and no 2-level stream table is usable (design.md), and so
 * is a unit with fewer streams than one level-2 table holds. Translation end to end. */
static void small_units_translate(void **state)
{
    struct fx *f = *state;
    struct {
        unsigned st_level, sid_bits;
    } shapes[] = {{0, 7}, {0, 1}, {1, 5}, {1, 7}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        f->cfg = f->kind == T_QEMU ? smmuv3_model_config_qemu() : smmuv3_model_config_spec();
        f->cfg.idr[0] = (f->cfg.idr[0] & ~(3u << T_IDR0_ST_LEVEL_SHIFT)) | shapes[i].st_level << T_IDR0_ST_LEVEL_SHIFT;
        f->cfg.idr[1] = (f->cfg.idr[1] & ~T_IDR1_SIDSIZE_MASK) | shapes[i].sid_bits;
        fx_model(f);
        memset(f->arena, 0, T_ARENA_BYTES);
        assert_true(page_pool_init(&f->pool, f->arena + T_POOL_OFF, T_ARENA_PA + T_POOL_OFF, T_POOL_BYTES));
        memset(&f->u, 0, sizeof f->u);
        print_message("# ST_LEVEL %u, SIDSIZE %u\n", shapes[i].st_level, shapes[i].sid_bits);
        fx_up(f);
        struct slpt t;
        dom_init(f, &t);
        map_ok(f, &t, 0x1000, T_TARGET + 0x5000, 0x1000, SLPT_READ | SLPT_WRITE);
        uint32_t last = (1u << shapes[i].sid_bits) - 1;
        ST_EQ(attach(f, 0, 1, &t), IOMMU_OK);
        ST_EQ(attach(f, (uint16_t)last, 1, &t), IOMMU_OK);
        EXPECT_PA(f, 0, 0x1234, true, T_TARGET + 0x5234);
        EXPECT_PA(f, last, 0x1234, false, T_TARGET + 0x5234);
        if (last > 1)
            EXPECT_FAULT(f, last - 1, 0x1234, false, -1);
        /* a stream beyond the unit's is refused, and leaves nothing changed */
        struct iommu_translation tr = tr_of(&t, 1);
        assert_int_not_equal(smmuv3_set_stream(&f->u, last + 1, &tr), IOMMU_OK);
        EXPECT_PA(f, last, 0x1234, false, T_TARGET + 0x5234);
        NO_MISUSE(f);
    }
}

/* A unit with more stream bits than the driver's table covers (2^16, smmuv3.h) is still
 * usable: streams up to 0xffff work; a larger one is refused by set_stream.
 * FINDING: smmuv3_caps_unusable refuses such a unit ("more than 16-bit stream ids") and
 * init returns IOMMU_ENODEV, but design.md's list of what the driver needs ("stage 1,
 * AArch64 tables, the 4 KiB granule, a known output size, no preset queues or tables, a
 * 2-level stream table unless the unit has at most 128 streams") does not name it; the
 * architecture lets STRTAB_BASE_CFG.LOG2SIZE be below IDR1.SIDSIZE, and many real SMMUs
 * have SIDSIZE > 16. Either the driver covers 2^16 of them or the docs say it refuses. */
static void large_sidsize_unit(void **state)
{
    struct fx *f = *state;
    f->cfg.idr[1] = (f->cfg.idr[1] & ~T_IDR1_SIDSIZE_MASK) | 20u;
    fx_model(f);
    struct smmuv3_caps c;
    assert_true(smmuv3_caps_read(&f->plat, T_UNIT_BASE, &c));
    const char *why = smmuv3_caps_unusable(&c);
    if (why)
        fail_msg("%s: a unit with SIDSIZE 20 is refused (\"%s\"), not among the documented reasons", kind_name(f),
                 why);
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x2000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0xffff, 3, &t), IOMMU_OK);
    EXPECT_PA(f, 0xffff, 0x2008, true, T_TARGET + 8);
    struct iommu_translation tr = tr_of(&t, 3);
    enum iommu_status s = smmuv3_set_stream(&f->u, 0x10000, &tr);
    assert_int_not_equal(s, IOMMU_OK);
    assert_int_not_equal(smmuv3_set_stream(&f->u, 0xfffff, &tr), IOMMU_OK);
    EXPECT_FAULT(f, 0x10000, 0x2008, true, -1);
    EXPECT_PA(f, 0xffff, 0x2008, true, T_TARGET + 8);
    NO_MISUSE(f);
}

/* Queues smaller than the driver's own (IDR1.CMDQS 6: 64 commands; EVENTQS 2: 4 events):
 * smmuv3_caps: "the largest the unit takes"; design.md: "queue space is waited for".
 * FINDING: an invalidation of up to 64 pages is one batch of 64 TLBI_NH_VA + CMD_SYNC (65
 * commands); on a queue of 64 (or fewer) entries it returns IOMMU_ETIMEDOUT, although the
 * unit consumes every command at once. (Probed: with CMDQS = n the largest range that
 * works is 2^n - 1 pages.) */
static void small_queues(void **state)
{
    struct fx *f = *state;
    f->cfg.idr[1] = (f->cfg.idr[1] & ~((0x1fu << T_IDR1_CMDQS_SHIFT) | (0x1fu << T_IDR1_EVENTQS_SHIFT))) |
                    6u << T_IDR1_CMDQS_SHIFT | 2u << T_IDR1_EVENTQS_SHIFT;
    fx_model(f);
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x100000, T_TARGET + 0x1000, 64 * 0x1000, SLPT_READ | SLPT_WRITE);
    for (uint16_t sid = 0; sid < 8; sid++)
        ST_EQ(attach(f, sid, 4, &t), IOMMU_OK);
    for (unsigned i = 0; i < 64; i++)
        EXPECT_PA(f, 5, 0x100000 + i * 0x1000ull, false, T_TARGET + 0x1000 + i * 0x1000ull);
    struct slpt_unmapped un;
    ST_EQ(slpt_unmap(&t, 0x100000, 64 * 0x1000, &un), IOMMU_OK);
    struct smmuv3_model_stats before = smmuv3_model_stats(f->m);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 4, un.first, un.last), IOMMU_OK);
    struct smmuv3_model_stats after = smmuv3_model_stats(f->m);
    assert_int_equal(after.tlbi - before.tlbi, 64);
    for (unsigned i = 0; i < 64; i += 9) {
        EXPECT_FAULT(f, 5, 0x100000 + i * 0x1000ull, false, SMMUV3_EVT_F_TRANSLATION);
        drop_records(f); /* the event queue holds 4 */
    }
    assert_int_equal(f->u.unit.faults.overflows, 0);
    /* 10 faults into a queue of 4: an overflow, counted */
    for (unsigned i = 0; i < 10; i++)
        EXPECT_FAULT(f, 5, 0x900000 + i * 0x1000ull, true, SMMUV3_EVT_F_TRANSLATION);
    assert_true(smmuv3_model_stats(f->m).events_lost > 0);
    unsigned n = iommu_unit_drain_faults(&f->u.unit);
    assert_int_equal(n, 4);
    assert_int_equal(f->u.unit.faults.overflows, 1);
    NO_MISUSE(f);
}

/* Fewer features: no range invalidation or HAD (IDR3 0), 8-bit ASIDs. Domain 255 still fits. */
static void reduced_features(void **state)
{
    struct fx *f = *state;
    f->cfg.idr[3] = 0;
    f->cfg.idr[0] &= ~T_IDR0_ASID16;
    fx_model(f);
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x40000, T_TARGET, 0x4000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x20, 255, &t), IOMMU_OK);
    ST_EQ(attach(f, 0x21, 0, &t), IOMMU_OK);
    EXPECT_PA(f, 0x20, 0x41000, true, T_TARGET + 0x1000);
    EXPECT_PA(f, 0x21, 0x42000, true, T_TARGET + 0x2000);
    ST_EQ(slpt_unmap(&t, 0x40000, 0x4000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 255, 0x40000, 0x43fff), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 0), IOMMU_OK);
    EXPECT_FAULT(f, 0x20, 0x41000, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_FAULT(f, 0x21, 0x42000, true, SMMUV3_EVT_F_TRANSLATION);
    assert_int_equal(smmuv3_model_stats(f->m).command_errors, 0);
    assert_int_equal(f->u.stats.command_errors, 0);
    NO_MISUSE(f);
}

/* unit.h: write_back "not NULL: the unit does not snoop its table walks, and this
 * platform's flush_cache writes the tables back". design.md: the write-backs are there.
 * Here the unit reads only what was written back (a second copy of memory that flush_cache
 * updates), so anything the driver forgets to write back is seen as zero. */
static void non_coherent_unit(void **state)
{
    struct fx *f = *state;
    f->cfg.idr[0] &= ~T_IDR0_COHACC;
    f->dev_arena = aligned_alloc(0x200000, T_ARENA_BYTES);
    assert_non_null(f->dev_arena);
    memcpy(f->dev_arena, f->arena, T_ARENA_BYTES); /* the pool's metadata is not the unit's business */
    f->plat.flush_cache = p_flush_cache;
    fx_model(f);
    ST_EQ(fx_init(f), IOMMU_OK);
    assert_ptr_equal(f->u.unit.write_back, &f->plat);
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    struct slpt t;
    dom_init(f, &t);
    assert_non_null(t.sync);
    map_ok(f, &t, 0x200000, T_TARGET + 0x200000, 0x200000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t, 0x7000, T_TARGET + 0x3000, 0x1000, SLPT_READ);
    ST_EQ(attach(f, 0x10, 2, &t), IOMMU_OK);
    ST_EQ(attach(f, 0x1234, 2, &t), IOMMU_OK);
    assert_true(f->flushes > 0);
    EXPECT_PA(f, 0x10, 0x212345, true, T_TARGET + 0x212345);
    EXPECT_PA(f, 0x1234, 0x7008, false, T_TARGET + 0x3008);
    EXPECT_FAULT(f, 0x1234, 0x7008, true, SMMUV3_EVT_F_PERMISSION);
    EXPECT_RECORD(f, 0x1234, SMMUV3_EVENT_F_PERMISSION, 1, 0x7000, IOMMU_FAULT_TRANSLATION);
    ST_EQ(slpt_unmap(&t, 0x200000, 0x200000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 2, 0x200000, 0x3fffff), IOMMU_OK);
    EXPECT_FAULT(f, 0x10, 0x212345, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, 0x10, SMMUV3_EVENT_F_TRANSLATION, 1, 0x212000, IOMMU_FAULT_TRANSLATION);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* start, enable, disable, intact                                                           */
/* ======================================================================================== */

/* smmuv3.h: start programs tables and queues; "While the unit is not enabled its global
 * bypass is set to abort, where the unit has that register (aborts_when_disabled)". QEMU
 * 7.2 has no GBPA (smmuv3.h, model doc), so there untranslated DMA bypasses. */
static void start_enable_disable_intact(void **state)
{
    struct fx *f = *state;
    bool spec = f->kind == T_SPEC;
    uint32_t cr0ack = 0xdeadbeef;
    ST_EQ(fx_init(f), IOMMU_OK);
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    assert_int_equal(f->u.aborts_when_disabled, spec);
    assert_false(smmuv3_unit_intact(&f->u, &cr0ack));
    assert_false(iommu_unit_intact(&f->u.unit, &cr0ack));

    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x10000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x10, 2, &t), IOMMU_OK); /* STEs before SMMUEN */

    struct smmuv3_model_result r = dma(f, 0x10, 0x10000, true);
    if (spec) {
        assert_false(r.ok);
        assert_int_equal(r.event, 0); /* GBPA.ABORT: silent */
        assert_false(r.recorded);
    } else {
        assert_true(r.ok);
        assert_int_equal(r.pa, 0x10000); /* QEMU: no GBPA, bypass */
    }

    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    assert_int_equal(cr0ack & (T_CR0_SMMUEN | T_CR0_EVENTQEN | T_CR0_CMDQEN),
                     T_CR0_SMMUEN | T_CR0_EVENTQEN | T_CR0_CMDQEN);
    cr0ack = 0;
    assert_true(iommu_unit_intact(&f->u.unit, &cr0ack));
    assert_true(cr0ack & T_CR0_SMMUEN);
    assert_non_null(f->u.unit.ops->status_name);
    EXPECT_PA(f, 0x10, 0x10010, true, T_TARGET + 0x10);

    ST_EQ(smmuv3_unit_disable(&f->u), IOMMU_OK);
    assert_false(smmuv3_unit_intact(&f->u, &cr0ack));
    r = dma(f, 0x10, 0x10010, true);
    if (spec) {
        assert_false(r.ok);
        assert_int_equal(r.event, 0);
    } else {
        assert_true(r.ok);
        assert_int_equal(r.pa, 0x10010);
    }
    expect_no_record(f);

    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    EXPECT_PA(f, 0x10, 0x10010, false, T_TARGET + 0x10);
    NO_MISUSE(f);
}

/* intact: "Whether the unit's registers still say what its driver set up". */
static void intact_notices_tampering(void **state)
{
    struct fx *f = *state;
    uint32_t cr0ack;
    fx_up(f);
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    smmuv3_model_write32(f->m, SMMUV3_CR0, T_CR0_EVENTQEN | T_CR0_CMDQEN); /* someone turns translation off */
    assert_false(smmuv3_unit_intact(&f->u, &cr0ack));
    assert_int_equal(cr0ack & T_CR0_SMMUEN, 0);
    smmuv3_model_write32(f->m, SMMUV3_CR0, T_CR0_EVENTQEN | T_CR0_CMDQEN | T_CR0_SMMUEN);
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    smmuv3_model_write32(f->m, SMMUV3_CR0, T_CR0_SMMUEN | T_CR0_CMDQEN); /* event queue off */
    assert_false(smmuv3_unit_intact(&f->u, &cr0ack));
    NO_MISUSE(f);
}

/* CR0 updates and GBPA Update complete only after several reads (ack_delay): the driver
 * must wait for each ("Each CR0 write waits for CR0ACK, each GBPA write for Update to clear"). */
static void slow_acknowledgements(void **state)
{
    struct fx *f = *state;
    f->cfg.ack_delay = 5;
    fx_model(f);
    ST_EQ(fx_init(f), IOMMU_OK);
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x3000, T_TARGET + 0x9000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 7, 9, &t), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    EXPECT_PA(f, 7, 0x3004, true, T_TARGET + 0x9004);
    uint32_t cr0ack;
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    ST_EQ(smmuv3_unit_disable(&f->u), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    EXPECT_PA(f, 7, 0x3004, true, T_TARGET + 0x9004);
    NO_MISUSE(f);
}

/* An acknowledgement that never comes: a bounded wait, IOMMU_ETIMEDOUT. */
static void acknowledgement_never_comes(void **state)
{
    struct fx *f = *state;
    f->cfg.ack_delay = 100000000;
    fx_model(f);
    ST_EQ(fx_init(f), IOMMU_OK);
    uint64_t t0 = f->now;
    enum iommu_status s = smmuv3_unit_start(&f->u);
    ST_EQ(s, IOMMU_ETIMEDOUT);
    assert_true(f->now - t0 >= SMMUV3_DEFAULT_POLL_TIMEOUT_NS);
    print_message("# start with CR0ACK never following: %s after %llu fake ms\n", iommu_status_name(s),
                  (unsigned long long)((f->now - t0) / 1000000));
    NO_MISUSE(f); /* no register written again while an update is pending */
}

/* "SMMUEN off if the firmware left it on": a firmware left the unit translating through its
 * own linear stream table and queues. The driver takes over without misuse (no guarded
 * register written while its enable is on), and its own tables are then the ones in use. */
static void firmware_left_it_on(void **state)
{
    struct fx *f = *state;
    uint8_t *fw = f->arena + T_SPARE_OFF;
    uint64_t fw_pa = T_ARENA_PA + T_SPARE_OFF;
    uint64_t *cmdq = (uint64_t *)fw;              /* 16 commands, 256 bytes */
    uint64_t *strtab = (uint64_t *)(fw + 0x1000); /* 4 STEs, 256 bytes */
    uint64_t evq_pa = fw_pa + 0x2000;             /* 8 events, 256 bytes */
    struct smmuv3_model *m = f->m;

    smmuv3_model_write64(m, SMMUV3_CMDQ_BASE, fw_pa | 4u);
    smmuv3_model_write32(m, SMMUV3_CMDQ_PROD, 0);
    smmuv3_model_write32(m, SMMUV3_CMDQ_CONS, 0);
    smmuv3_model_write32(m, SMMUV3_CR0, T_CR0_CMDQEN);
    assert_int_equal(smmuv3_model_read32(m, SMMUV3_CR0ACK) & T_CR0_CMDQEN, T_CR0_CMDQEN);
    cmdq[0] = T_CMD_CFGI_STE_RANGE;
    cmdq[1] = 31; /* CFGI_ALL */
    cmdq[2] = T_CMD_TLBI_NSNH_ALL;
    cmdq[3] = 0;
    cmdq[4] = T_CMD_SYNC;
    cmdq[5] = 0;
    smmuv3_model_write32(m, SMMUV3_CMDQ_PROD, 3);
    assert_int_equal(smmuv3_model_read32(m, SMMUV3_CMDQ_CONS), 3);
    strtab[0] = 1u | 4u << 1; /* V, Config bypass */
    smmuv3_model_write64(m, SMMUV3_STRTAB_BASE, fw_pa + 0x1000);
    smmuv3_model_write32(m, SMMUV3_STRTAB_BASE_CFG, 2); /* linear, 4 streams */
    smmuv3_model_write64(m, SMMUV3_EVENTQ_BASE, evq_pa | 3u);
    smmuv3_model_write32(m, SMMUV3_EVENTQ_PROD, 0);
    smmuv3_model_write32(m, SMMUV3_EVENTQ_CONS, 0);
    smmuv3_model_write32(m, SMMUV3_CR0, T_CR0_SMMUEN | T_CR0_EVENTQEN | T_CR0_CMDQEN);
    assert_int_equal(smmuv3_model_read32(m, SMMUV3_CR0ACK), T_CR0_SMMUEN | T_CR0_EVENTQEN | T_CR0_CMDQEN);
    EXPECT_PA(f, 0, 0x12345000, true, 0x12345000); /* the firmware's bypass works */
    NO_MISUSE(f); /* the "firmware" itself did nothing wrong */

    ST_EQ(fx_init(f), IOMMU_OK);
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x5000, T_TARGET + 0x7000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 1, 1, &t), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    uint32_t cr0ack;
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    EXPECT_PA(f, 1, 0x5008, true, T_TARGET + 0x7008);
    /* stream 0 no longer bypasses through the firmware's table */
    EXPECT_FAULT(f, 0, 0x12345000, true, -1);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* translation and fault records                                                            */
/* ======================================================================================== */

static void translate_4k_pages(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x100000, T_TARGET + 0x10000, 0x4000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t, 0x200000, T_TARGET + 0x30000, 0x2000, SLPT_READ);
    ST_EQ(slpt_map(&t, 0x300000, T_TARGET, 0x1000, SLPT_WRITE), IOMMU_EINVAL); /* no write-only in Arm's format */
    ST_EQ(attach(f, 0x10, 2, &t), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x10), 2);

    for (unsigned i = 0; i < 4; i++) {
        EXPECT_PA(f, 0x10, 0x100000 + i * 0x1000ull + 0x10, false, T_TARGET + 0x10000 + i * 0x1000ull + 0x10);
        EXPECT_PA(f, 0x10, 0x100000 + i * 0x1000ull + 0xff8, true, T_TARGET + 0x10000 + i * 0x1000ull + 0xff8);
    }
    EXPECT_PA(f, 0x10, 0x201abc, false, T_TARGET + 0x31abc);
    expect_no_record(f);

    /* a write to a read-only page: F_PERMISSION, recorded, the page and the direction */
    struct smmuv3_model_result r = EXPECT_FAULT(f, 0x10, 0x201abc, true, SMMUV3_EVT_F_PERMISSION);
    assert_true(r.recorded);
    EXPECT_RECORD(f, 0x10, SMMUV3_EVENT_F_PERMISSION, 1, 0x201000, IOMMU_FAULT_TRANSLATION);
    /* nothing mapped: F_TRANSLATION, a read */
    r = EXPECT_FAULT(f, 0x10, 0x104008, false, SMMUV3_EVT_F_TRANSLATION);
    assert_true(r.recorded);
    EXPECT_RECORD(f, 0x10, SMMUV3_EVENT_F_TRANSLATION, 0, 0x104000, IOMMU_FAULT_TRANSLATION);
    /* and a write */
    EXPECT_FAULT(f, 0x10, 0xfff000, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, 0x10, SMMUV3_EVENT_F_TRANSLATION, 1, 0xfff000, IOMMU_FAULT_TRANSLATION);
    expect_no_record(f);
    assert_int_equal(f->u.unit.faults.recorded, 3);
    assert_int_equal(f->u.unit.faults.overflows, 0);
    NO_MISUSE(f);
}

static void translate_blocks(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    const uint64_t g = 1ull << 30, m2 = 1ull << 21;
    map_ok(f, &t, 0x40000000, 0x240000000ull, g, SLPT_READ | SLPT_WRITE); /* 1 GiB block */
    map_ok(f, &t, 0x80000000ull + 2 * m2, 0x300000000ull + 6 * m2, m2, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t, 0x80000000ull + 4 * m2, 0x300000000ull, m2, SLPT_READ); /* read-only 2 MiB */
    map_ok(f, &t, 3 * g, 0x380000000ull, g, SLPT_READ); /* read-only 1 GiB */
    uint64_t pa, size;
    unsigned perm;
    assert_true(slpt_lookup(&t, 0x40000000 + 0x1234567, &pa, &perm, &size));
    assert_int_equal(size, g);
    assert_true(slpt_lookup(&t, 0x80000000ull + 2 * m2 + 5, &pa, &perm, &size));
    assert_int_equal(size, m2);

    ST_EQ(attach(f, 0x3f, 5, &t), IOMMU_OK);
    ST_EQ(attach(f, 0x40, 5, &t), IOMMU_OK);
    EXPECT_PA(f, 0x3f, 0x40000000, true, 0x240000000ull);
    EXPECT_PA(f, 0x3f, 0x40000000 + 0x1234567, false, 0x240000000ull + 0x1234567);
    EXPECT_PA(f, 0x40, 0x7ffffff8, true, 0x27ffffff8ull);
    EXPECT_PA(f, 0x40, 0x80000000ull + 2 * m2 + 0x1ffff0, true, 0x300000000ull + 6 * m2 + 0x1ffff0);
    EXPECT_PA(f, 0x40, 0x80000000ull + 4 * m2 + 0x12345, false, 0x300000000ull + 0x12345);
    EXPECT_PA(f, 0x3f, 3 * g + 0x3fffffff, false, 0x380000000ull + 0x3fffffff);
    expect_no_record(f);
    EXPECT_FAULT(f, 0x40, 0x80000000ull + 4 * m2 + 0x12345, true, SMMUV3_EVT_F_PERMISSION);
    EXPECT_RECORD(f, 0x40, SMMUV3_EVENT_F_PERMISSION, 1, 0x80000000ull + 4 * m2 + 0x12000, IOMMU_FAULT_TRANSLATION);
    EXPECT_FAULT(f, 0x3f, 3 * g + 0x1000, true, SMMUV3_EVT_F_PERMISSION);
    EXPECT_RECORD(f, 0x3f, SMMUV3_EVENT_F_PERMISSION, 1, 3 * g + 0x1000, IOMMU_FAULT_TRANSLATION);
    EXPECT_FAULT(f, 0x3f, 0x80000000ull + 3 * m2, false, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, 0x3f, SMMUV3_EVENT_F_TRANSLATION, 0, 0x80000000ull + 3 * m2, IOMMU_FAULT_TRANSLATION);
    NO_MISUSE(f);
}

/* "T0SZ from the tables' depth (3 levels: 39-bit IOVAs, 4 levels: 48-bit)". */
static void translate_depths(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t3, t4;
    ST_EQ(slpt_init(&t3, &f->pool, 3, f->u.unit.superpages), IOMMU_OK);
    ST_EQ(slpt_set_format(&t3, &pt_arm_stage1), IOMMU_OK);
    dom_init(f, &t4);
    assert_int_equal(t4.levels, 4);
    const uint64_t top39 = (1ull << 39) - 0x1000, top48 = (1ull << 48) - 0x1000;
    map_ok(f, &t3, top39, T_TARGET + 0x1000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t3, 0, T_TARGET + 0x2000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t4, top48, T_TARGET + 0x3000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t4, top39, T_TARGET + 0x4000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 1, 3, &t3), IOMMU_OK);
    ST_EQ(attach(f, 2, 4, &t4), IOMMU_OK);
    EXPECT_PA(f, 1, top39 + 0xff0, true, T_TARGET + 0x1ff0);
    EXPECT_PA(f, 1, 0x10, true, T_TARGET + 0x2010);
    EXPECT_PA(f, 2, top48 + 0xff0, true, T_TARGET + 0x3ff0);
    EXPECT_PA(f, 2, top39 + 0x8, false, T_TARGET + 0x4008);
    /* beyond the tables' reach: a translation fault, not another address */
    EXPECT_FAULT(f, 1, 1ull << 39, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, 1, SMMUV3_EVENT_F_TRANSLATION, 1, 1ull << 39, -1);
    EXPECT_FAULT(f, 1, (1ull << 39) + top39, false, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_FAULT(f, 2, 1ull << 48, false, SMMUV3_EVT_F_TRANSLATION);
    drop_records(f);
    /* depths the unit does not walk are refused, and change nothing */
    struct iommu_translation tr = tr_of(&t4, 4);
    for (unsigned levels = 0; levels <= 6; levels++) {
        if (f->u.unit.table_levels & (1u << levels))
            continue;
        tr.levels = levels;
        enum iommu_status s = iommu_unit_set_translation(&f->u.unit, 1, &tr);
        if (s == IOMMU_OK)
            fail_msg("%s: set_translation took %u-level tables", kind_name(f), levels);
    }
    assert_int_equal(smmuv3_stream_domain(&f->u, 1), 3);
    EXPECT_PA(f, 1, 0x10, true, T_TARGET + 0x2010);
    NO_MISUSE(f);
}

/* smmuv3.h: "a stream no one configured stays invalid, so its DMA is refused and reported
 * (C_BAD_STE)". design.md: "Streams nobody configured stay invalid: their DMA is refused
 * with C_BAD_STE." fault.h: IOMMU_FAULT_OTHER, "the unit's set-up refused the request (a
 * device not given a domain)". */
static void unconfigured_streams_refused(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x10, 1, &t), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x11), -1);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x5000), -1);

    /* a stream in the same level-2 span as a configured one */
    struct smmuv3_model_result r = EXPECT_FAULT(f, 0x11, 0x1000, true, SMMUV3_EVT_C_BAD_STE);
    assert_true(r.recorded);
    EXPECT_RECORD(f, 0x11, SMMUV3_EVENT_C_BAD_STE, -1, -1, IOMMU_FAULT_OTHER);

    /* a stream whose span has no level-2 table yet: refused and reported */
    r = dma(f, 0x5000, 0x1000, true);
    assert_false(r.ok);
    assert_true(r.recorded);
    struct iommu_fault_record rec;
    iommu_unit_drain_faults(&f->u.unit);
    assert_true(iommu_unit_take_fault(&f->u.unit, &rec));
    assert_int_equal(rec.sid, 0x5000);
    assert_int_equal(rec.kind, IOMMU_FAULT_OTHER);
    /* smmuv3.h: "C_BAD_STREAMID where it has none" (a span without a level-2 table: its
     * level-1 descriptor is invalid, which the architecture and QEMU report so). */
    if (r.event != SMMUV3_EVT_C_BAD_STREAMID || rec.reason != SMMUV3_EVENT_C_BAD_STREAMID)
        fail_msg("%s: DMA of stream 0x5000 (span without a level-2 table) reported event %#x (%s), record reason "
                 "%#x; the docs say C_BAD_STREAMID (0x02)",
                 kind_name(f), r.event, smmuv3_event_name(r.event), rec.reason);
    NO_MISUSE(f);
}

/* set_translation(NULL): "blocked"; smmuv3.h: "NULL: aborted, without an event". */
static void abort_is_silent(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x22, 1, &t), IOMMU_OK);
    EXPECT_PA(f, 0x22, 0x1000, true, T_TARGET); /* cached now */
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x22, NULL), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x22), -1);
    struct smmuv3_model_result r = dma(f, 0x22, 0x1000, true);
    assert_false(r.ok);
    assert_int_equal(r.event, 0);
    assert_false(r.recorded);
    r = dma(f, 0x22, 0x77000, false);
    assert_false(r.ok);
    assert_int_equal(r.event, 0);
    /* a stream never configured, blocked */
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x8123, NULL), IOMMU_OK);
    r = dma(f, 0x8123, 0x1000, false);
    assert_false(r.ok);
    assert_int_equal(r.event, 0);
    expect_no_record(f);
    assert_int_equal(f->u.unit.faults.recorded, 0);
    /* and back */
    ST_EQ(attach(f, 0x22, 1, &t), IOMMU_OK);
    EXPECT_PA(f, 0x22, 0x1000, true, T_TARGET);
    NO_MISUSE(f);
}

static void passthrough_bypasses(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct iommu_translation pt = {.type = IOMMU_PASSTHROUGH};
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x30, &pt), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x30), -1);
    EXPECT_PA(f, 0x30, 0x12345678, true, 0x12345678);
    EXPECT_PA(f, 0x30, 0xabc000, false, 0xabc000);
    expect_no_record(f);
    /* from bypass to a domain and back */
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x12345000, T_TARGET, 0x1000, SLPT_READ);
    ST_EQ(attach(f, 0x30, 6, &t), IOMMU_OK);
    EXPECT_PA(f, 0x30, 0x12345678, false, T_TARGET + 0x678);
    EXPECT_FAULT(f, 0x30, 0xabc000, false, SMMUV3_EVT_F_TRANSLATION);
    drop_records(f);
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x30, &pt), IOMMU_OK);
    EXPECT_PA(f, 0x30, 0xabc000, false, 0xabc000);
    if (f->kind == T_SPEC) { /* beyond the unit's 44-bit output: F_ADDR_SIZE (QEMU does not check) */
        EXPECT_FAULT(f, 0x30, (1ull << 44) + 0x123, true, SMMUV3_EVT_F_ADDR_SIZE);
        EXPECT_RECORD(f, 0x30, SMMUV3_EVENT_F_ADDR_SIZE, 1, 1ull << 44, IOMMU_FAULT_ADDRESS_SIZE);
    }
    NO_MISUSE(f);
}

/* fault.h: IOMMU_FAULT_TABLE, "the unit could not read its own tables". Tables at an
 * address with no memory behind it: the walk aborts (F_WALK_EABT). */
static void unreadable_tables(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct iommu_translation tr = {.type = IOMMU_TRANSLATE, .domain_id = 8, .table_pa = 0x10000000ull, .levels = 4};
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x44, &tr), IOMMU_OK);
    struct smmuv3_model_result r = EXPECT_FAULT(f, 0x44, 0x5678, true, SMMUV3_EVT_F_WALK_EABT);
    assert_true(r.recorded);
    /* FINDING: the record of an F_WALK_EABT says write 0 and address 0. The event record
     * carries RnW and InputAddr (7.3.12; the model writes dwords 0-3), and design.md says
     * the log gets "stream, direction from RnW, page": this DMA was a write to 0x5678. */
    EXPECT_RECORD(f, 0x44, SMMUV3_EVENT_F_WALK_EABT, 1, 0x5000, IOMMU_FAULT_TABLE);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* streams and domains                                                                      */
/* ======================================================================================== */

static void streams_across_spans(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt a, b;
    dom_init(f, &a);
    dom_init(f, &b);
    map_ok(f, &a, 0x8000, T_TARGET + 0xa000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &b, 0x8000, T_TARGET + 0xb000, 0x1000, SLPT_READ | SLPT_WRITE);
    const uint16_t sa[] = {0x0, 0x3f, 0x1000};
    const uint16_t sb[] = {0x40, 0x7f, 0x80, 0xffc0, 0xffff};
    for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++)
        ST_EQ(attach(f, sa[i], 10, &a), IOMMU_OK);
    for (size_t i = 0; i < sizeof sb / sizeof sb[0]; i++)
        ST_EQ(attach(f, sb[i], 11, &b), IOMMU_OK);
    for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++) {
        EXPECT_PA(f, sa[i], 0x8010, true, T_TARGET + 0xa010);
        assert_int_equal(smmuv3_stream_domain(&f->u, sa[i]), 10);
    }
    for (size_t i = 0; i < sizeof sb / sizeof sb[0]; i++) {
        EXPECT_PA(f, sb[i], 0x8010, false, T_TARGET + 0xb010);
        assert_int_equal(smmuv3_stream_domain(&f->u, sb[i]), 11);
    }
    /* their neighbours in the same spans stay refused */
    const uint16_t none[] = {0x1, 0x3e, 0x41, 0xfffe, 0x1001, 0xffc1};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        EXPECT_FAULT(f, none[i], 0x8010, false, SMMUV3_EVT_C_BAD_STE);
        EXPECT_RECORD(f, none[i], SMMUV3_EVENT_C_BAD_STE, -1, -1, IOMMU_FAULT_OTHER);
        assert_int_equal(smmuv3_stream_domain(&f->u, none[i]), -1);
    }
    NO_MISUSE(f);
}

/* "One context descriptor per domain ... ASID = the domain id (TLB entries are tagged with
 * it)": several domains translating the same IOVA differently at once, TLBs filled, and the
 * invalidation of one leaves the others. */
static void many_domains_own_asids(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    enum { N = 8 };
    static const uint16_t ids[N] = {0, 1, 2, 3, 100, 200, 254, 255};
    struct slpt t[N];
    for (unsigned i = 0; i < N; i++) {
        dom_init(f, &t[i]);
        map_ok(f, &t[i], 0x400000, T_TARGET + (i + 1) * 0x100000ull, 0x4000, SLPT_READ | SLPT_WRITE);
        ST_EQ(attach(f, (uint16_t)(0x100 + i * 0x40), ids[i], &t[i]), IOMMU_OK);
    }
    for (unsigned round = 0; round < 2; round++)
        for (unsigned i = 0; i < N; i++)
            for (unsigned p = 0; p < 4; p++)
                EXPECT_PA(f, 0x100 + i * 0x40, 0x400000 + p * 0x1000ull + 0x20, p & 1,
                          T_TARGET + (i + 1) * 0x100000ull + p * 0x1000ull + 0x20);
    /* domain 3 (index 3) and domain 255 (index 7) lose their translations */
    ST_EQ(slpt_unmap(&t[3], 0x400000, 0x4000, NULL), IOMMU_OK);
    ST_EQ(slpt_unmap(&t[7], 0x400000, 0x4000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 3, 0x400000, 0x403fff), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 255), IOMMU_OK);
    for (unsigned i = 0; i < N; i++)
        for (unsigned p = 0; p < 4; p++) {
            uint64_t iova = 0x400000 + p * 0x1000ull + 0x20;
            if (i == 3 || i == 7) {
                EXPECT_FAULT(f, 0x100 + i * 0x40, iova, false, SMMUV3_EVT_F_TRANSLATION);
                EXPECT_RECORD(f, (uint16_t)(0x100 + i * 0x40), SMMUV3_EVENT_F_TRANSLATION, 0, iova & ~0xfffull,
                              IOMMU_FAULT_TRANSLATION);
            } else {
                EXPECT_PA(f, 0x100 + i * 0x40, iova, false, T_TARGET + (i + 1) * 0x100000ull + p * 0x1000ull + 0x20);
            }
        }
    NO_MISUSE(f);
}

/* Domain ids 0 and SMMUV3_MAX_DOMAINS - 1 work; SMMUV3_MAX_DOMAINS and beyond are refused
 * with the stream's translation unchanged (status.h: "every failure leaves the state it was
 * asked to change as it was"). */
static void domain_id_limits(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt a, b;
    dom_init(f, &a);
    dom_init(f, &b);
    map_ok(f, &a, 0x1000, T_TARGET + 0x1000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &b, 0x1000, T_TARGET + 0x2000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x50, 0, &a), IOMMU_OK);
    ST_EQ(attach(f, 0x51, SMMUV3_MAX_DOMAINS - 1, &b), IOMMU_OK);
    EXPECT_PA(f, 0x50, 0x1004, true, T_TARGET + 0x1004);
    EXPECT_PA(f, 0x51, 0x1004, true, T_TARGET + 0x2004);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x50), 0);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x51), SMMUV3_MAX_DOMAINS - 1);
    const uint16_t bad[] = {SMMUV3_MAX_DOMAINS, SMMUV3_MAX_DOMAINS + 1, 0x7fff, 0xffff};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum iommu_status s = attach(f, 0x50, bad[i], &b);
        if (s == IOMMU_OK)
            fail_msg("%s: set_translation took domain id %u", kind_name(f), bad[i]);
        s = attach(f, 0x52, bad[i], &b); /* a stream that had nothing */
        assert_int_not_equal(s, IOMMU_OK);
    }
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x50), 0);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x52), -1);
    EXPECT_PA(f, 0x50, 0x1004, true, T_TARGET + 0x1004);
    EXPECT_FAULT(f, 0x52, 0x1004, true, SMMUV3_EVT_C_BAD_STE);
    drop_records(f);
    NO_MISUSE(f);
}

/* A stream moved from one domain to another translates through the new one at once. */
static void move_stream_between_domains(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt a, b;
    dom_init(f, &a);
    dom_init(f, &b);
    map_ok(f, &a, 0x6000, T_TARGET + 0xa000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &b, 0x6000, T_TARGET + 0xb000, 0x1000, SLPT_READ);
    ST_EQ(attach(f, 0x60, 20, &a), IOMMU_OK);
    ST_EQ(attach(f, 0x61, 20, &a), IOMMU_OK);
    EXPECT_PA(f, 0x60, 0x6010, true, T_TARGET + 0xa010);
    ST_EQ(attach(f, 0x60, 21, &b), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x60), 21);
    EXPECT_PA(f, 0x60, 0x6010, false, T_TARGET + 0xb010);
    EXPECT_FAULT(f, 0x60, 0x6010, true, SMMUV3_EVT_F_PERMISSION);
    EXPECT_RECORD(f, 0x60, SMMUV3_EVENT_F_PERMISSION, 1, 0x6000, IOMMU_FAULT_TRANSLATION);
    EXPECT_PA(f, 0x61, 0x6010, true, T_TARGET + 0xa010); /* its neighbour stays */
    ST_EQ(attach(f, 0x60, 20, &a), IOMMU_OK);
    EXPECT_PA(f, 0x60, 0x6010, true, T_TARGET + 0xa010);
    /* setting the same translation again is harmless */
    ST_EQ(attach(f, 0x60, 20, &a), IOMMU_OK);
    EXPECT_PA(f, 0x60, 0x6010, true, T_TARGET + 0xa010);
    NO_MISUSE(f);
}

/* unit.h set_translation: "The device's DMA goes through t from now on". A domain id used
 * again (an old domain went away, a new one takes its id) with other tables. */
static void domain_id_reused_with_new_tables(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt x, y;
    dom_init(f, &x);
    dom_init(f, &y);
    map_ok(f, &x, 0x9000, T_TARGET + 0x1000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &y, 0x9000, T_TARGET + 0x2000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x70, 5, &x), IOMMU_OK);
    EXPECT_PA(f, 0x70, 0x9000, true, T_TARGET + 0x1000); /* ASID 5's TLB holds x's page */

    /* While a stream of domain 5 uses x, other tables under id 5 (undocumented: IOMMU_EBUSY
     * seen) must either be refused with nothing changed, or be what the new stream uses. */
    enum iommu_status s = attach(f, 0x71, 5, &y);
    print_message("# id 5 with other tables while in use: %s\n", iommu_status_name(s));
    if (s != IOMMU_OK) {
        EXPECT_PA(f, 0x70, 0x9000, true, T_TARGET + 0x1000);
        EXPECT_FAULT(f, 0x71, 0x9000, true, SMMUV3_EVT_C_BAD_STE);
        drop_records(f);
        assert_int_equal(smmuv3_stream_domain(&f->u, 0x71), -1);
    } else {
        EXPECT_PA(f, 0x71, 0x9000, true, T_TARGET + 0x2000);
    }

    /* The domain's last stream leaves, its translations are flushed (what a domain's
     * destruction does), and a new domain takes id 5.
     * FINDING: set_translation returns IOMMU_EEXIST ("the range overlaps an existing
     * mapping") here, for good: once a domain id had a CD, no other tables (nor another
     * depth) can ever be given under that id, and the unit interface has no call to
     * release it. */
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x70, NULL), IOMMU_OK);
    if (s == IOMMU_OK)
        ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x71, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 5), IOMMU_OK);
    ST_EQ(attach(f, 0x71, 5, &y), IOMMU_OK);
    EXPECT_PA(f, 0x71, 0x9000, true, T_TARGET + 0x2000);
    ST_EQ(attach(f, 0x70, 5, &y), IOMMU_OK);
    EXPECT_PA(f, 0x70, 0x9000, true, T_TARGET + 0x2000);
    NO_MISUSE(f);
}

/* smmuv3.h: a level-2 stream table is "taken from the page pool for a span when a stream of
 * it first gets an STE"; each domain is "one context descriptor (CD, in a pool page of its
 * own)". design.md: an STE change is two CFGI_STE + CMD_SYNC. */
static void pool_pages_as_documented(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt a, b;
    dom_init(f, &a);
    dom_init(f, &b);
    uint32_t used = f->pool.in_use;
    struct smmuv3_model_stats s0 = smmuv3_model_stats(f->m);
    ST_EQ(attach(f, 0x10, 1, &a), IOMMU_OK); /* a new span and a new domain */
    struct smmuv3_model_stats s1 = smmuv3_model_stats(f->m);
    assert_int_equal(f->pool.in_use - used, 2);
    assert_true(s1.cfgi - s0.cfgi >= 2);
    assert_true(s1.syncs - s0.syncs >= 2);
    ST_EQ(attach(f, 0x11, 1, &a), IOMMU_OK); /* same span, same domain */
    assert_int_equal(f->pool.in_use - used, 2);
    ST_EQ(attach(f, 0x12, 2, &b), IOMMU_OK); /* same span, new domain */
    assert_int_equal(f->pool.in_use - used, 3);
    ST_EQ(attach(f, 0x80, 2, &b), IOMMU_OK); /* new span, old domain */
    assert_int_equal(f->pool.in_use - used, 4);
    struct iommu_translation pt = {.type = IOMMU_PASSTHROUGH};
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x13, &pt), IOMMU_OK);
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x14, NULL), IOMMU_OK);
    assert_int_equal(f->pool.in_use - used, 4);
    NO_MISUSE(f);
}

/* design.md: "A refused command (GERROR.CMDQ_ERR differs from GERRORN) is overwritten with a
 * CMD_SYNC, acknowledged through GERRORN and counted; the batch returns IOMMU_EHW." To make
 * the unit refuse one, the ID registers the driver reads claim EL2 (IDR0.HYP), so start
 * sends a TLBI_EL2_ALL, which the model (without HYP) refuses: CERROR_ILL by the
 * specification, accepted as a no-op by QEMU (either way misuse, provoked here on purpose). */
static void refused_command_reported(void **state)
{
    struct fx *f = *state;
    set_idr(f, 0, f->cfg.idr[0] | (1u << 9)); /* HYP */
    ST_EQ(fx_init(f), IOMMU_OK);
    enum iommu_status s = smmuv3_unit_start(&f->u);
    struct smmuv3_model_stats st = smmuv3_model_stats(f->m);
    print_message("# start on a unit refusing TLBI_EL2_ALL: %s; model command errors %u, driver %llu\n",
                  iommu_status_name(s), st.command_errors, (unsigned long long)f->u.stats.command_errors);
    if (f->kind == T_SPEC) {
        ST_EQ(s, IOMMU_EHW);
        assert_true(st.command_errors >= 1);
        assert_int_equal(f->u.stats.command_errors, st.command_errors);
        uint32_t gerror = smmuv3_model_read32(f->m, SMMUV3_GERROR), gerrorn = smmuv3_model_read32(f->m, SMMUV3_GERRORN);
        assert_int_equal((gerror ^ gerrorn) & 1u, 0); /* CMDQ_ERR acknowledged */
        assert_int_equal(smmuv3_model_read32(f->m, SMMUV3_CMDQ_CONS) & 0xfffffu,
                         smmuv3_model_read32(f->m, SMMUV3_CMDQ_PROD) & 0xfffffu); /* the queue drained */
    } else {
        ST_EQ(s, IOMMU_OK);
    }
    /* the queue goes on working */
    unsigned misuse = st.misuse;
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x10, 1, &t), IOMMU_OK);
    EXPECT_PA(f, 0x10, 0x1000, true, T_TARGET);
    ST_EQ(slpt_unmap(&t, 0x1000, 0x1000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 1, 0x1000, 0x1fff), IOMMU_OK);
    EXPECT_FAULT(f, 0x10, 0x1000, true, SMMUV3_EVT_F_TRANSLATION);
    assert_int_equal(smmuv3_model_stats(f->m).misuse, misuse); /* nothing more */
}


/* smmuv3.h: start "Programs the tables and queues and turns on the queues: after this, STEs
 * can be set, and smmuv3_unit_enable turns translation on."
 * FINDING: enable on a unit that was never started returns IOMMU_OK and sets SMMUEN (with
 * the queues) over stream table and queue bases nobody programmed (the model: "SMMUEN set
 * before CFGI_ALL completed"); the next command batch then never returns (see
 * command_fetch_abort_is_bounded). The order is only implied by the docs; a refusal
 * (IOMMU_EINVAL or IOMMU_EBUSY), with the unit left off, is what this test asks. */
static void enable_before_start(void **state)
{
    struct fx *f = *state;
    ST_EQ(fx_init(f), IOMMU_OK);
    enum iommu_status s = smmuv3_unit_enable(&f->u);
    uint32_t cr0ack = smmuv3_model_read32(f->m, SMMUV3_CR0ACK);
    print_message("# enable before start: %s, CR0ACK %#x\n", iommu_status_name(s), cr0ack);
    if (s == IOMMU_OK || (cr0ack & T_CR0_SMMUEN))
        fail_msg("%s: smmuv3_unit_enable before smmuv3_unit_start returned %s, CR0ACK %#x (misuse: %s)", kind_name(f),
                 iommu_status_name(s), cr0ack, smmuv3_model_stats(f->m).last_misuse);
    /* and it can still be started properly */
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_OK);
    ST_EQ(smmuv3_unit_enable(&f->u), IOMMU_OK);
    NO_MISUSE(f);
}

/* design.md: "Every poll is bounded (1 s by default): IOMMU_ETIMEDOUT"; a refused command is
 * "acknowledged ... and reported as IOMMU_EHW". Here the unit cannot read the driver's static
 * block any more (a bus error): every command fetch aborts (CERROR_ABT), again after each
 * acknowledgement. The operation must come back (IOMMU_EHW or IOMMU_ETIMEDOUT), and work
 * again once the memory is back.
 * FINDING: the driver loops forever reading GERROR, CMDQ_CONS and GERRORN without ever
 * looking at the clock (caught here by the 50,000,000-read guard). */
static void command_fetch_abort_is_bounded(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x10, 1, &t), IOMMU_OK);
    EXPECT_PA(f, 0x10, 0x1000, true, T_TARGET);
    f->static_unreadable = true;
    uint64_t t0 = f->now;
    f->mmio_reads = 0;
    enum iommu_status s = iommu_unit_invalidate_domain(&f->u.unit, 1);
    print_message("# invalidate_domain with the command queue unreadable: %s after %llu fake ms\n",
                  iommu_status_name(s), (unsigned long long)((f->now - t0) / 1000000));
    if (s != IOMMU_EHW && s != IOMMU_ETIMEDOUT)
        fail_msg("%s: invalidate_domain returned %s", kind_name(f), iommu_status_name(s));
    f->static_unreadable = false;
    ST_EQ(slpt_unmap(&t, 0x1000, 0x1000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 1, 0x1000, 0x1fff), IOMMU_OK);
    EXPECT_FAULT(f, 0x10, 0x1000, true, SMMUV3_EVT_F_TRANSLATION);
    NO_MISUSE(f);
}

/* smmuv3.h: "struct iommu_lock lock; held around each command batch and STE change";
 * unit.h: drain_faults fills the log "under the driver's lock". Three threads use the unit
 * at once (the model itself is not thread-safe: only the driver's lock keeps its accesses
 * apart); every call must succeed and the unit see nothing wrong. */
struct hammer {
    struct fx *f;
    struct slpt *t;
    unsigned role, rounds;
    unsigned failures;
    enum iommu_status first_failure;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    struct iommu_unit *u = &h->f->u.unit;
    uint64_t rnd = 0x9e3779b97f4a7c15ull * (h->role + 1);
    for (unsigned i = 0; i < h->rounds; i++) {
        enum iommu_status s = IOMMU_OK;
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        switch (h->role) {
        case 0: {
            unsigned d = (unsigned)(rnd >> 40) & 1;
            struct iommu_translation tr = tr_of(&h->t[d], (uint16_t)(90 + d));
            s = iommu_unit_set_translation(u, (uint16_t)(0x200 + ((rnd >> 33) & 127)), &tr);
            break;
        }
        case 1: {
            uint64_t first = ((rnd >> 20) & 0xffff) << 12;
            uint64_t pages = 1 + ((rnd >> 50) & 127);
            s = (rnd >> 63) ? iommu_unit_invalidate_domain(u, (uint16_t)(90 + ((rnd >> 45) & 1)))
                            : iommu_unit_invalidate_range(u, (uint16_t)(90 + ((rnd >> 45) & 1)), first,
                                                          first + pages * 0x1000 - 1);
            break;
        }
        default:
            iommu_unit_drain_faults(u);
            break;
        }
        if (s != IOMMU_OK && h->failures++ == 0)
            h->first_failure = s;
    }
    return NULL;
}

static void threads_share_the_unit(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t[2];
    for (unsigned d = 0; d < 2; d++) {
        dom_init(f, &t[d]);
        map_ok(f, &t[d], 0x100000, T_TARGET + d * 0x100000ull, 0x1000, SLPT_READ | SLPT_WRITE);
    }
    struct hammer h[3];
    pthread_t th[3];
    for (unsigned i = 0; i < 3; i++) {
        h[i] = (struct hammer){.f = f, .t = t, .role = i, .rounds = i == 2 ? 20000 : 1500};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
    }
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (unsigned i = 0; i < 2; i++)
        if (h[i].failures)
            fail_msg("%s: thread %u: %u of %u calls failed, the first with %s", kind_name(f), i, h[i].failures,
                     h[i].rounds, iommu_status_name(h[i].first_failure));
    assert_int_equal(smmuv3_model_stats(f->m).command_errors, 0);
    for (uint16_t sid = 0x200; sid < 0x280; sid++) {
        int d = smmuv3_stream_domain(&f->u, sid);
        if (d < 0)
            continue;
        assert_true(d == 90 || d == 91);
        EXPECT_PA(f, sid, 0x100010, true, T_TARGET + (uint64_t)(d - 90) * 0x100000ull + 0x10);
    }
    expect_no_record(f);
    NO_MISUSE(f);
}

/* invalidate_range "[first, last], or all of them": the whole 64-bit space (a page count
 * that overflows if computed carelessly), the top page, and pages above the tables. */
static void invalidate_whole_space(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    const uint64_t top = (1ull << 48) - 0x1000;
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t, top, T_TARGET + 0x1000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0x10, 1, &t), IOMMU_OK);
    EXPECT_PA(f, 0x10, 0x1000, true, T_TARGET);
    EXPECT_PA(f, 0x10, top, true, T_TARGET + 0x1000);
    ST_EQ(slpt_unmap(&t, 0x1000, 0x1000, NULL), IOMMU_OK);
    ST_EQ(slpt_unmap(&t, top, 0x1000, NULL), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 1, 0, ~0ull), IOMMU_OK);
    EXPECT_FAULT(f, 0x10, 0x1000, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_FAULT(f, 0x10, top, true, SMMUV3_EVT_F_TRANSLATION);
    drop_records(f);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 1, ~0ull - 0xfff, ~0ull), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 1, 1ull << 48, (1ull << 48) + 0xfff), IOMMU_OK);
    /* an empty range (last before first) is refused (undocumented; IOMMU_EINVAL seen) */
    assert_int_not_equal(iommu_unit_invalidate_range(&f->u.unit, 1, 0x2000, 0x1000), IOMMU_OK);
    /* tables beyond the unit's output size (44 bits) or the format's (48) are refused */
    struct iommu_translation tr = tr_of(&t, 2);
    tr.table_pa = 1ull << 44;
    assert_int_not_equal(iommu_unit_set_translation(&f->u.unit, 0x11, &tr), IOMMU_OK);
    tr.table_pa = t.root_pa + 0x10;
    assert_int_not_equal(iommu_unit_set_translation(&f->u.unit, 0x11, &tr), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x11), -1);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* invalidation                                                                             */
/* ======================================================================================== */

/* design.md: "Invalidation after an unmap: one TLBI_NH_VA per page (Leaf = 0 ...) up to 64
 * pages, else TLBI_NH_ASID; then CMD_SYNC." Until the invalidation the model keeps the old
 * translation (the strictest cache a driver must cope with). */
static void invalidate_n_pages(struct fx *f, unsigned pages, bool whole_domain, uint16_t id)
{
    struct slpt t;
    dom_init(f, &t);
    const uint64_t iova = 0x10000000, pa = T_TARGET + 0x1000; /* never 2 MiB aligned together: 4 KiB leaves */
    const uint16_t sid = (uint16_t)(0x90 + id);
    map_ok(f, &t, iova, pa, pages * 0x1000ull, SLPT_READ | SLPT_WRITE);
    map_ok(f, &t, 0x20000000, T_TARGET + 0x800000, 0x1000, SLPT_READ | SLPT_WRITE); /* stays */
    ST_EQ(attach(f, sid, id, &t), IOMMU_OK);
    for (unsigned i = 0; i < pages; i++)
        EXPECT_PA(f, sid, iova + i * 0x1000ull + 0x44, i & 1, pa + i * 0x1000ull + 0x44);
    EXPECT_PA(f, sid, 0x20000000, false, T_TARGET + 0x800000);
    struct slpt_unmapped un;
    ST_EQ(slpt_unmap(&t, iova, pages * 0x1000ull, &un), IOMMU_OK);
    assert_int_equal(un.first, iova);
    assert_int_equal(un.last, iova + pages * 0x1000ull - 1);
    /* stale until invalidated: the premise of the test */
    for (unsigned i = 0; i < pages; i += (pages > 70 ? 37 : 1)) {
        struct smmuv3_model_result r = dma(f, sid, iova + i * 0x1000ull, true);
        assert_true(r.ok && r.from_cache);
    }
    struct smmuv3_model_stats s0 = smmuv3_model_stats(f->m);
    if (whole_domain)
        ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, id), IOMMU_OK);
    else
        ST_EQ(iommu_unit_invalidate_range(&f->u.unit, id, un.first, un.last), IOMMU_OK);
    struct smmuv3_model_stats s1 = smmuv3_model_stats(f->m);
    for (unsigned i = 0; i < pages; i++) {
        EXPECT_FAULT(f, sid, iova + i * 0x1000ull + 0x44, i & 1, SMMUV3_EVT_F_TRANSLATION);
        if (i % 32 == 31 || i + 1 == pages)
            drop_records(f);
    }
    EXPECT_PA(f, sid, 0x20000000, true, T_TARGET + 0x800000);
    assert_int_equal(f->u.unit.faults.overflows, 0);
    print_message("# %s of %u page(s): %u TLBI, %u CMD_SYNC\n", whole_domain ? "invalidate_domain" : "invalidate_range",
                  pages, s1.tlbi - s0.tlbi, s1.syncs - s0.syncs);
    if (!whole_domain) {
        assert_int_equal(s1.tlbi - s0.tlbi, pages <= 64 ? pages : 1);
        assert_int_equal(s1.syncs - s0.syncs, 1);
    }
    assert_int_equal(s1.command_errors, 0);
}

static void invalidate_range_1(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    invalidate_n_pages(f, 1, false, 12);
    NO_MISUSE(f);
}

static void invalidate_range_64(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    invalidate_n_pages(f, 64, false, 12);
    NO_MISUSE(f);
}

static void invalidate_range_65(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    invalidate_n_pages(f, 65, false, 12);
    NO_MISUSE(f);
}

static void invalidate_range_many(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    invalidate_n_pages(f, 1000, false, 12);
    NO_MISUSE(f);
}

static void invalidate_domain_all(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    invalidate_n_pages(f, 5, true, 12);
    invalidate_n_pages(f, 300, true, 13);
    NO_MISUSE(f);
}

/* invalidate_range: "What the unit caches of the domain's translations for [first, last]":
 * every page the inclusive byte range touches, aligned or not. */
static void invalidate_unaligned_ranges(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    const uint16_t sid = 0xa0, id = 30;
    ST_EQ(attach(f, sid, id, &t), IOMMU_OK);
    struct {
        uint64_t map_iova;
        unsigned pages;
        uint64_t first, last;
    } cases[] = {
        {0x100000, 2, 0x100fff, 0x101000},              /* two bytes across a page boundary */
        {0x200000, 1, 0x200800, 0x200800},              /* one byte */
        {0x300000, 3, 0x300001, 0x302ffe},              /* three pages, neither end aligned */
        {0x400000, 64, 0x400fff, 0x43f000},             /* 64 pages by an unaligned range */
        {0x500000, 65, 0x500800, 0x540001},             /* 65 pages by an unaligned range */
        {(1ull << 48) - 0x2000, 2, (1ull << 48) - 0x1fff, (1ull << 48) - 1}, /* the very top */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint64_t iova = cases[c].map_iova;
        uint64_t pa = T_TARGET + 0x1000000 + c * 0x100000;
        map_ok(f, &t, iova, pa, cases[c].pages * 0x1000ull, SLPT_READ | SLPT_WRITE);
        for (unsigned i = 0; i < cases[c].pages; i++)
            EXPECT_PA(f, sid, iova + i * 0x1000ull, false, pa + i * 0x1000ull);
        ST_EQ(slpt_unmap(&t, iova, cases[c].pages * 0x1000ull, NULL), IOMMU_OK);
        ST_EQ(iommu_unit_invalidate_range(&f->u.unit, id, cases[c].first, cases[c].last), IOMMU_OK);
        for (unsigned i = 0; i < cases[c].pages; i++) {
            struct smmuv3_model_result r = dma(f, sid, iova + i * 0x1000ull, false);
            if (r.ok)
                fail_msg("%s: invalidate_range(%#llx, %#llx) left page %#llx translated (stale)", kind_name(f),
                         (unsigned long long)cases[c].first, (unsigned long long)cases[c].last,
                         (unsigned long long)(iova + i * 0x1000ull));
            if (i % 32 == 31)
                drop_records(f);
        }
        drop_records(f);
    }
    NO_MISUSE(f);
}

/* The same IOVA mapped again to another page: the old one until the invalidation. */
static void remap_same_iova(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    const uint16_t sid = 0xb0, id = 31;
    map_ok(f, &t, 0x700000, T_TARGET + 0x1000, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, sid, id, &t), IOMMU_OK);
    EXPECT_PA(f, sid, 0x700010, true, T_TARGET + 0x1010);
    struct slpt_unmapped un;
    ST_EQ(slpt_unmap(&t, 0x700000, 0x1000, &un), IOMMU_OK);
    map_ok(f, &t, 0x700000, T_TARGET + 0x9000, 0x1000, SLPT_READ);
    struct smmuv3_model_result r = dma(f, sid, 0x700010, true);
    assert_true(r.ok && r.pa == T_TARGET + 0x1010); /* stale: the premise */
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, id, un.first, un.last), IOMMU_OK);
    EXPECT_PA(f, sid, 0x700010, false, T_TARGET + 0x9010);
    EXPECT_FAULT(f, sid, 0x700010, true, SMMUV3_EVT_F_PERMISSION);
    EXPECT_RECORD(f, sid, SMMUV3_EVENT_F_PERMISSION, 1, 0x700000, IOMMU_FAULT_TRANSLATION);
    NO_MISUSE(f);
}

/* A 2 MiB block cut by an unmap of one page inside it: that page faults after the
 * invalidation of that page, its neighbours still translate. */
static void unmap_inside_block(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    const uint16_t sid = 0xc0, id = 40;
    const uint64_t iova = 0x40000000, pa = 0x3c0000000ull;
    map_ok(f, &t, iova, pa, 0x200000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, sid, id, &t), IOMMU_OK);
    EXPECT_PA(f, sid, iova + 0x123456, true, pa + 0x123456);
    struct slpt_unmapped un;
    ST_EQ(slpt_unmap(&t, iova + 0x100000, 0x1000, &un), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, id, un.first, un.last), IOMMU_OK);
    EXPECT_FAULT(f, sid, iova + 0x100800, true, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, sid, SMMUV3_EVENT_F_TRANSLATION, 1, iova + 0x100000, IOMMU_FAULT_TRANSLATION);
    EXPECT_PA(f, sid, iova + 0xff000, true, pa + 0xff000);
    EXPECT_PA(f, sid, iova + 0x101000, true, pa + 0x101000);
    EXPECT_PA(f, sid, iova + 0x1ff000, false, pa + 0x1ff000);
    /* the whole block away */
    ST_EQ(slpt_unmap(&t, iova, 0x200000, &un), IOMMU_OK);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, id, un.first, un.last), IOMMU_OK);
    EXPECT_FAULT(f, sid, iova, false, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_FAULT(f, sid, iova + 0x1ff000, false, SMMUV3_EVT_F_TRANSLATION);
    drop_records(f);
    NO_MISUSE(f);
}

/* unit.h inject_wait_timeouts: "the unit's next n invalidation waits time out". */
static void injected_wait_timeouts(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x1000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0xd0, 50, &t), IOMMU_OK);
    assert_true(iommu_unit_inject_wait_timeouts(&f->u.unit, 2));
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 50, 0x1000, 0x1fff), IOMMU_ETIMEDOUT);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 50), IOMMU_ETIMEDOUT);
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 50, 0x1000, 0x1fff), IOMMU_OK);
    EXPECT_PA(f, 0xd0, 0x1000, true, T_TARGET);
    assert_true(f->u.stats.timeouts >= 2);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* events                                                                                   */
/* ======================================================================================== */

/* Draining again and again, across the event queue's wrap (128 records), nothing lost. */
static void drain_repeatedly_across_wrap(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    ST_EQ(attach(f, 0xe0, 60, &t), IOMMU_OK);
    assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 0);
    uint64_t next = 0x1000000;
    for (unsigned round = 0; round < 7; round++) {
        const unsigned n = 50;
        for (unsigned i = 0; i < n; i++)
            EXPECT_FAULT(f, 0xe0, next + i * 0x1000ull + 0x10, i & 1, SMMUV3_EVT_F_TRANSLATION);
        assert_int_equal(iommu_unit_drain_faults(&f->u.unit), n);
        assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 0);
        for (unsigned i = 0; i < n; i++) {
            struct iommu_fault_record r;
            assert_true(iommu_unit_take_fault(&f->u.unit, &r));
            assert_int_equal(r.sid, 0xe0);
            assert_int_equal(r.reason, SMMUV3_EVENT_F_TRANSLATION);
            assert_int_equal(r.address, next + i * 0x1000ull);
            assert_int_equal(r.write, i & 1);
        }
        struct iommu_fault_record r;
        assert_false(iommu_unit_take_fault(&f->u.unit, &r));
        next += n * 0x1000ull;
    }
    assert_int_equal(f->u.unit.faults.recorded, 350);
    assert_int_equal(f->u.unit.faults.overflows, 0);
    assert_int_equal(f->u.unit.faults.dropped, 0);
    assert_int_equal(f->u.stats.events, 350);
    assert_int_equal(smmuv3_model_stats(f->m).events_lost, 0);
    NO_MISUSE(f);
}

/* smmuv3.h: "an event queue overflow is counted (iommu_fault_log.overflows), never silently
 * lost"; drain takes "at most one queue's worth per call". */
static void event_queue_overflow_counted(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    ST_EQ(attach(f, 0xe1, 61, &t), IOMMU_OK);
    for (unsigned overflow = 1; overflow <= 3; overflow++) {
        unsigned lost0 = smmuv3_model_stats(f->m).events_lost;
        for (unsigned i = 0; i < 200; i++)
            EXPECT_FAULT(f, 0xe1, 0x2000000 + i * 0x1000ull, true, SMMUV3_EVT_F_TRANSLATION);
        unsigned lost = smmuv3_model_stats(f->m).events_lost - lost0;
        assert_true(lost > 0);
        unsigned n = iommu_unit_drain_faults(&f->u.unit);
        print_message("# overflow %u: %u events lost by the unit, %u drained, overflows %llu\n", overflow, lost, n,
                      (unsigned long long)f->u.unit.faults.overflows);
        assert_int_equal(n, 200 - lost);
        /* Under qemu this is the case to watch: QEMU 7.2 signals a full event queue through
         * GERROR.EVENTQ_ABT_ERR and never moves OVFLG (docs/smmuv3-model.md, qemu_event_queue),
         * so a driver that only compares OVFLG (as design.md describes) would lose it. It passes. */
        if (f->u.unit.faults.overflows != overflow)
            fail_msg("%s: after overflow %u of the event queue (%u events lost) faults.overflows is %llu", kind_name(f),
                     overflow, lost, (unsigned long long)f->u.unit.faults.overflows);
        drop_records(f);
        /* the queue works again after the overflow */
        EXPECT_FAULT(f, 0xe1, 0x7000, false, SMMUV3_EVT_F_TRANSLATION);
        struct smmuv3_model_result r = dma(f, 0xe1, 0x7000, false);
        assert_true(r.recorded);
        assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 2);
        EXPECT_RECORD(f, 0xe1, SMMUV3_EVENT_F_TRANSLATION, 0, 0x7000, IOMMU_FAULT_TRANSLATION);
        drop_records(f);
        assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 0);
    }
    uint32_t cr0ack;
    assert_true(smmuv3_unit_intact(&f->u, &cr0ack));
    NO_MISUSE(f);
}

/* fault.h: overflows counts "times the unit reported faults it could not record". A record
 * the unit cannot write (the event queue's memory refuses it) is lost and the unit says so
 * with GERROR.EVENTQ_ABT_ERR; once the memory is back, events are recorded again. */
static void event_write_abort_counted(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    ST_EQ(attach(f, 0xe3, 63, &t), IOMMU_OK);
    f->static_unwritable = true;
    for (unsigned i = 0; i < 3; i++)
        EXPECT_FAULT(f, 0xe3, 0x5000 + i * 0x1000ull, true, SMMUV3_EVT_F_TRANSLATION);
    f->static_unwritable = false;
    struct smmuv3_model_stats st = smmuv3_model_stats(f->m);
    assert_true(st.events_lost >= 1);
    assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 0);
    print_message("# %u records lost to write aborts: overflows %llu\n", st.events_lost,
                  (unsigned long long)f->u.unit.faults.overflows);
    assert_true(f->u.unit.faults.overflows >= 1);
    uint32_t gerror = smmuv3_model_read32(f->m, SMMUV3_GERROR), gerrorn = smmuv3_model_read32(f->m, SMMUV3_GERRORN);
    assert_int_equal((gerror ^ gerrorn) & (1u << 2), 0); /* EVENTQ_ABT_ERR acknowledged */
    EXPECT_FAULT(f, 0xe3, 0x9000, false, SMMUV3_EVT_F_TRANSLATION);
    EXPECT_RECORD(f, 0xe3, SMMUV3_EVENT_F_TRANSLATION, 0, 0x9000, IOMMU_FAULT_TRANSLATION);
    NO_MISUSE(f);
}

/* The log keeps the newest 64 records and counts what it dropped (fault.h). */
static void fault_log_keeps_newest(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    ST_EQ(attach(f, 0xe2, 62, &t), IOMMU_OK);
    for (unsigned i = 0; i < 100; i++)
        EXPECT_FAULT(f, 0xe2, 0x3000000 + i * 0x1000ull, false, SMMUV3_EVT_F_TRANSLATION);
    assert_int_equal(iommu_unit_drain_faults(&f->u.unit), 100);
    assert_int_equal(f->u.unit.faults.recorded, 100);
    assert_int_equal(f->u.unit.faults.dropped, 100 - IOMMU_FAULT_LOG_SIZE);
    assert_int_equal(f->u.unit.faults.overflows, 0);
    struct iommu_fault_record r;
    assert_true(iommu_unit_take_fault(&f->u.unit, &r));
    assert_int_equal(r.address, 0x3000000 + (100 - IOMMU_FAULT_LOG_SIZE) * 0x1000ull);
    NO_MISUSE(f);
}

/* ======================================================================================== */
/* bounded waits and failures that change nothing                                           */
/* ======================================================================================== */

static void stalled_commands_time_out(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt t;
    dom_init(f, &t);
    map_ok(f, &t, 0x1000, T_TARGET, 0x2000, SLPT_READ | SLPT_WRITE);
    ST_EQ(attach(f, 0xf0, 70, &t), IOMMU_OK);
    smmuv3_model_stall_commands(f->m, true);
    uint64_t t0 = f->now, to0 = f->u.stats.timeouts;
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 70, 0x1000, 0x1fff), IOMMU_ETIMEDOUT);
    assert_true(f->now - t0 >= SMMUV3_DEFAULT_POLL_TIMEOUT_NS);
    print_message("# invalidate_range with the queue stalled: %llu fake ms\n",
                  (unsigned long long)((f->now - t0) / 1000000));
    ST_EQ(iommu_unit_invalidate_range(&f->u.unit, 70, 0x1000, 0x100000), IOMMU_ETIMEDOUT);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 70), IOMMU_ETIMEDOUT);
    ST_EQ(attach(f, 0xf1, 70, &t), IOMMU_ETIMEDOUT);
    struct iommu_translation pt = {.type = IOMMU_PASSTHROUGH};
    ST_EQ(iommu_unit_set_translation(&f->u.unit, 0x9999, &pt), IOMMU_ETIMEDOUT);
    assert_true(f->u.stats.timeouts > to0);
    print_message("# after 5 stalled operations: %llu fake s, %llu timeouts counted\n",
                  (unsigned long long)((f->now - t0) / 1000000000), (unsigned long long)(f->u.stats.timeouts - to0));
    /* the unit recovers: the queue drains, later operations work */
    smmuv3_model_stall_commands(f->m, false);
    ST_EQ(iommu_unit_invalidate_domain(&f->u.unit, 70), IOMMU_OK);
    ST_EQ(attach(f, 0xf1, 70, &t), IOMMU_OK);
    EXPECT_PA(f, 0xf1, 0x1800, true, T_TARGET + 0x800);
    EXPECT_PA(f, 0xf0, 0x2800, true, T_TARGET + 0x1800);
    NO_MISUSE(f);
}

static void stalled_start_times_out(void **state)
{
    struct fx *f = *state;
    ST_EQ(fx_init(f), IOMMU_OK);
    smmuv3_model_stall_commands(f->m, true);
    uint64_t t0 = f->now;
    ST_EQ(smmuv3_unit_start(&f->u), IOMMU_ETIMEDOUT);
    print_message("# start with the queue stalled: %llu fake ms\n", (unsigned long long)((f->now - t0) / 1000000));
    assert_true(f->now - t0 < 60ull * SMMUV3_DEFAULT_POLL_TIMEOUT_NS);
    NO_MISUSE(f);
}

/* status.h: "every failure leaves the state it was asked to change as it was". A stream in
 * domain A; changes to it that fail leave it translating through A. */
static void failed_set_stream_keeps_previous(void **state)
{
    struct fx *f = *state;
    fx_up(f);
    struct slpt a, b;
    dom_init(f, &a);
    dom_init(f, &b);
    map_ok(f, &a, 0x1000, T_TARGET + 0xa000, 0x1000, SLPT_READ | SLPT_WRITE);
    map_ok(f, &b, 0x1000, T_TARGET + 0xb000, 0x1000, SLPT_READ | SLPT_WRITE);
    const uint16_t sid = 0x123;
    ST_EQ(attach(f, sid, 80, &a), IOMMU_OK);
    ST_EQ(attach(f, 0x124, 81, &b), IOMMU_OK); /* b's CD exists */
    EXPECT_PA(f, sid, 0x1000, true, T_TARGET + 0xa000);

    /* 1. no pool page for a new domain's CD */
    f->pool.fail_at = f->pool.attempts + 1;
    enum iommu_status s = attach(f, sid, 82, &b);
    f->pool.fail_at = 0;
    ST_EQ(s, IOMMU_ENOMEM);
    assert_int_equal(smmuv3_stream_domain(&f->u, sid), 80);
    EXPECT_PA(f, sid, 0x1000, true, T_TARGET + 0xa000);

    /* 2. no pool page for a new span's level-2 table: the new stream stays refused */
    f->pool.fail_at = f->pool.attempts + 1;
    s = attach(f, 0x4321, 80, &a);
    f->pool.fail_at = 0;
    ST_EQ(s, IOMMU_ENOMEM);
    assert_int_equal(smmuv3_stream_domain(&f->u, 0x4321), -1);
    EXPECT_FAULT(f, 0x4321, 0x1000, true, -1);
    drop_records(f);

    /* 3. a bad domain id */
    assert_int_not_equal(attach(f, sid, SMMUV3_MAX_DOMAINS, &b), IOMMU_OK);
    assert_int_equal(smmuv3_stream_domain(&f->u, sid), 80);
    EXPECT_PA(f, sid, 0x1000, true, T_TARGET + 0xa000);

    /* 4. the command queue stalls while the stream moves to b: ETIMEDOUT, then (once the
     * unit catches up) the stream must still be in a, as the driver says it is */
    smmuv3_model_stall_commands(f->m, true);
    s = attach(f, sid, 81, &b);
    smmuv3_model_stall_commands(f->m, false);
    ST_EQ(s, IOMMU_ETIMEDOUT);
    int dom = smmuv3_stream_domain(&f->u, sid);
    struct smmuv3_model_result r = dma(f, sid, 0x1000, true);
    print_message("# after a timed-out move: stream_domain %d, DMA ok %d pa %#llx\n", dom, r.ok,
                  (unsigned long long)r.pa);
    assert_int_equal(dom, 80);
    assert_true(r.ok);
    assert_int_equal(r.pa, T_TARGET + 0xa000);

    /* and the retries work */
    ST_EQ(attach(f, sid, 82, &b), IOMMU_OK);
    ST_EQ(attach(f, 0x4321, 80, &a), IOMMU_OK);
    EXPECT_PA(f, sid, 0x1000, true, T_TARGET + 0xb000);
    EXPECT_PA(f, 0x4321, 0x1000, true, T_TARGET + 0xa000);
    NO_MISUSE(f);
}

/* ======================================================================================== */

#define BOTH(fn)                                                                                            \
    {#fn "/qemu", fn, fx_setup, fx_teardown, (void *)&kind_qemu},                                           \
        {#fn "/spec", fn, fx_setup, fx_teardown, (void *)&kind_spec}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(init_ok_and_what_the_unit_states),
        BOTH(init_refuses_misaligned_block),
        BOTH(init_refuses_unusable_units),
        BOTH(small_units_translate),
        BOTH(large_sidsize_unit),
        BOTH(small_queues),
        BOTH(reduced_features),
        BOTH(non_coherent_unit),
        BOTH(start_enable_disable_intact),
        BOTH(intact_notices_tampering),
        BOTH(slow_acknowledgements),
        BOTH(acknowledgement_never_comes),
        BOTH(firmware_left_it_on),
        BOTH(translate_4k_pages),
        BOTH(translate_blocks),
        BOTH(translate_depths),
        BOTH(unconfigured_streams_refused),
        BOTH(abort_is_silent),
        BOTH(passthrough_bypasses),
        BOTH(unreadable_tables),
        BOTH(streams_across_spans),
        BOTH(many_domains_own_asids),
        BOTH(domain_id_limits),
        BOTH(move_stream_between_domains),
        BOTH(domain_id_reused_with_new_tables),
        BOTH(pool_pages_as_documented),
        BOTH(refused_command_reported),
        BOTH(enable_before_start),
        BOTH(command_fetch_abort_is_bounded),
        BOTH(threads_share_the_unit),
        BOTH(invalidate_whole_space),
        BOTH(invalidate_range_1),
        BOTH(invalidate_range_64),
        BOTH(invalidate_range_65),
        BOTH(invalidate_range_many),
        BOTH(invalidate_domain_all),
        BOTH(invalidate_unaligned_ranges),
        BOTH(remap_same_iova),
        BOTH(unmap_inside_block),
        BOTH(injected_wait_timeouts),
        BOTH(drain_repeatedly_across_wrap),
        BOTH(event_queue_overflow_counted),
        BOTH(fault_log_keeps_newest),
        BOTH(event_write_abort_counted),
        BOTH(stalled_commands_time_out),
        BOTH(stalled_start_times_out),
        BOTH(failed_set_stream_keeps_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
