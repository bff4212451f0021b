/* A VT-d unit driver on the software model of a unit (tests/model), with test memory and a
 * fake clock: the set-up the driver and domain tests share. */
#ifndef VTD_HARNESS_H
#define VTD_HARNESS_H

#include "iommu/slpt.h"
#include "iommu/vtd.h"
#include "test_util.h"
#include "vtd_model.h"

#define UNIT_BASE 0xfed90000ull
#define MEM_BASE 0x10000000ull
#define MEM_BYTES (4u << 20)
#define POOL_BYTES (1u << 20) /* the first MiB of memory: tables; the rest: DMA targets */
#define EDU_SID 0x0018
#define NIC_SID 0x0010

struct harness {
    uint8_t *mem;
    struct vtd_model *model;
    struct platform plat;
    uint64_t clock_ns;
    struct page_pool pool;
    struct vtd_unit unit;
    /* When set, called with the register offset before each write to the unit's registers
     * reaches the model: how a test sees the moment an invalidation is issued. */
    void (*mmio_write_hook)(uint32_t offset);
};

extern struct harness h;

/* Test memory, a model with cfg at UNIT_BASE, a pool over the first MiB, the driver's unit. */
void setup_with(const struct vtd_model_config *cfg);
int teardown(void **state);
bool mem_read(void *ctx, uint64_t pa, void *buf, size_t len);
bool mem_write(void *ctx, uint64_t pa, const void *buf, size_t len);
/* Time moves 1 us per look at the clock. */
uint64_t now_ns(void *ctx);

void assert_no_misuse(void);
/* A DMA target page in the test memory, past the pool. */
uint64_t target(unsigned n);
struct iommu_translation translate(uint16_t did, const struct slpt *t);
void expect_translation(uint16_t sid, uint64_t iova, bool write, uint64_t pa);
void expect_fault(uint16_t sid, uint64_t iova, bool write, uint8_t reason);

#endif
