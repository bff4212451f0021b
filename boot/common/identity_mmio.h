/* Device registers where physical addresses are identity-mapped, as the firmware leaves
 * them (and the hypervisor's nested tables keep them for the guest): the MMIO accessors of
 * a struct platform (iommu/platform.h), for the loader and for guest code alike. */
#ifndef BOOT_IDENTITY_MMIO_H
#define BOOT_IDENTITY_MMIO_H

#include <stdint.h>

static inline uint32_t identity_mmio_read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)pa;
}

static inline uint64_t identity_mmio_read64(void *ctx, uint64_t pa)
{
    (void)ctx;
    return *(volatile uint64_t *)(uintptr_t)pa;
}

static inline void identity_mmio_write32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)pa = v;
}

static inline void identity_mmio_write64(void *ctx, uint64_t pa, uint64_t v)
{
    (void)ctx;
    *(volatile uint64_t *)(uintptr_t)pa = v;
}

#endif
