#include "vtd_harness.h"

#include <stdlib.h>
#include <string.h>

struct harness h;

bool mem_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
    (void)ctx;
    if (pa < MEM_BASE || pa - MEM_BASE > MEM_BYTES || len > MEM_BYTES - (pa - MEM_BASE))
        return false;
    memcpy(buf, h.mem + (pa - MEM_BASE), len);
    return true;
}

bool mem_write(void *ctx, uint64_t pa, const void *buf, size_t len)
{
    (void)ctx;
    if (pa < MEM_BASE || pa - MEM_BASE > MEM_BYTES || len > MEM_BYTES - (pa - MEM_BASE))
        return false;
    memcpy(h.mem + (pa - MEM_BASE), buf, len);
    return true;
}

static uint32_t off(uint64_t pa)
{
    assert_true(pa >= UNIT_BASE && pa < UNIT_BASE + 0x1000);
    return (uint32_t)(pa - UNIT_BASE);
}
static uint32_t rd32(void *ctx, uint64_t pa) { (void)ctx; return vtd_model_read32(h.model, off(pa)); }
static uint64_t rd64(void *ctx, uint64_t pa) { (void)ctx; return vtd_model_read64(h.model, off(pa)); }
static void wr32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    if (h.mmio_write_hook)
        h.mmio_write_hook(off(pa));
    vtd_model_write32(h.model, off(pa), v);
}
static void wr64(void *ctx, uint64_t pa, uint64_t v)
{
    (void)ctx;
    if (h.mmio_write_hook)
        h.mmio_write_hook(off(pa));
    vtd_model_write64(h.model, off(pa), v);
}

/* Time moves 1 us per look at the clock, so a poll bound of 1 s ends after a million
 * polls without the test waiting for real. */
uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return __atomic_add_fetch(&h.clock_ns, 1000, __ATOMIC_RELAXED);
}

void setup_with(const struct vtd_model_config *cfg)
{
    h.mem = aligned_alloc(PAGE_SIZE, MEM_BYTES);
    assert_non_null(h.mem);
    memset(h.mem, 0, MEM_BYTES);
    struct vtd_model_memory mem = {.read = mem_read, .write = mem_write};
    h.model = vtd_model_create(cfg, &mem);
    assert_non_null(h.model);
    h.plat = (struct platform){.mmio_read32 = rd32, .mmio_read64 = rd64, .mmio_write32 = wr32,
                               .mmio_write64 = wr64, .now_ns = now_ns};
    assert_true(page_pool_init(&h.pool, h.mem, MEM_BASE, POOL_BYTES));
    assert_int_equal(vtd_unit_init(&h.unit, &h.plat, &h.pool, UNIT_BASE, 0, 0), IOMMU_OK);
}

int teardown(void **state)
{
    (void)state;
    vtd_model_destroy(h.model);
    free(h.mem);
    memset(&h, 0, sizeof h);
    return 0;
}

void assert_no_misuse(void)
{
    struct vtd_model_stats s = vtd_model_stats(h.model);
    if (s.misuse)
        fail_msg("the driver did %u things hardware would abort or hang on; last: %s", s.misuse, s.last_misuse);
}

/* A DMA target page in the test memory, past the pool. */
uint64_t target(unsigned n)
{
    return MEM_BASE + POOL_BYTES + (uint64_t)n * PAGE_SIZE;
}

struct iommu_translation translate(uint16_t did, const struct slpt *t)
{
    return (struct iommu_translation){IOMMU_TRANSLATE, did, t->root_pa, t->levels};
}

void expect_translation(uint16_t sid, uint64_t iova, bool write, uint64_t pa)
{
    struct vtd_model_result r = vtd_model_dma(h.model, sid, iova, write);
    if (!r.ok || r.pa != pa)
        fail_msg("sid 0x%x iova 0x%lx: %s 0x%lx (reason %u), want 0x%lx", sid, (unsigned long)iova,
                 r.ok ? "translated to" : "faulted,", (unsigned long)r.pa, r.reason, (unsigned long)pa);
}

void expect_fault(uint16_t sid, uint64_t iova, bool write, uint8_t reason)
{
    struct vtd_model_result r = vtd_model_dma(h.model, sid, iova, write);
    if (r.ok || r.reason != reason)
        fail_msg("sid 0x%x iova 0x%lx: %s (reason %u), want fault %u", sid, (unsigned long)iova,
                 r.ok ? "translated" : "faulted", r.reason, reason);
}

