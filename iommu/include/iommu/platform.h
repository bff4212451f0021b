/* The platform interface: everything the freestanding IOMMU code needs from its host.
 *
 * boot/ implements it for UEFI (identity-mapped physical memory, firmware page allocator,
 * the TSC calibrated against the ACPI PM timer); the host tests implement it over ordinary
 * memory and a software model of the hardware. Nothing in iommu/ touches hardware or
 * firmware except through these calls, which is what lets the same sources run in both. */
#ifndef IOMMU_PLATFORM_H
#define IOMMU_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

struct platform {
    void *ctx;

    /* Device registers (VT-d units, PCI ECAM). Accesses are exactly the width named:
     * some QEMU registers abort on the wrong width. */
    uint32_t (*mmio_read32)(void *ctx, uint64_t pa);
    uint64_t (*mmio_read64)(void *ctx, uint64_t pa);
    void (*mmio_write32)(void *ctx, uint64_t pa, uint32_t value);
    void (*mmio_write64)(void *ctx, uint64_t pa, uint64_t value);

    /* A readable view of len bytes of physical memory (firmware tables), or NULL when
     * that range is not memory the platform can show. */
    const void *(*map_phys)(void *ctx, uint64_t pa, size_t len);

    /* Zeroed, 4 KiB-aligned pages below max_pa for tables the hardware walks; returns the
     * virtual address and stores the physical one, or NULL when none are left. */
    void *(*alloc_pages)(void *ctx, size_t pages, uint64_t max_pa, uint64_t *pa);
    void (*free_pages)(void *ctx, void *va, size_t pages);

    /* Writes [va, va + len) back to memory, for units whose table walks do not snoop the
     * CPU caches (ECAP.C = 0). NULL when the platform's memory is coherent. */
    void (*flush_cache)(void *ctx, const void *va, size_t len);
    /* Optional: when set, flush_cache may only start the write-backs (CLWB or CLFLUSHOPT
     * without a fence) and this waits until every one started so far is in memory. Users
     * call it before anything that needs the write-back done (a pointer to the memory, a
     * command to the unit). */
    void (*flush_cache_wait)(void *ctx);

    /* Monotonic time for poll-loop bounds. */
    uint64_t (*now_ns)(void *ctx);

    /* One line of diagnostic output, without its newline. */
    void (*log)(void *ctx, const char *line);
};

#endif
