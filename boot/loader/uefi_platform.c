#include "loader/uefi_platform.h"
#include "loader/uefi_memory.h"

#include <efilib.h>

#include "common/cpuid.h"
#include "common/identity_mmio.h"
#include "common/report.h"
#include "common/serial.h"
#include "common/tsc.h"

#define PAGE_SIZE 4096u

/* Firmware tables are trusted to lie in memory only after checking: a corrupt XSDT entry
 * must give an error, not a page fault. A range is mappable when descriptors of the
 * memory map cover it without a gap. */
static const void *map_phys(void *ctx, uint64_t pa, size_t len)
{
    struct uefi_platform *up = ctx;
    if (len == 0 || pa + len < pa)
        return NULL;
    uint64_t cur = pa, end = pa + len;
    while (cur < end) {
        bool advanced = false;
        for (UINTN i = 0; i < up->memory_map_entries; i++) {
            const EFI_MEMORY_DESCRIPTOR *d = uefi_memory_descriptor(up, i);
            uint64_t d_end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
            if (cur >= d->PhysicalStart && cur < d_end) {
                cur = d_end;
                advanced = true;
                break;
            }
        }
        if (!advanced)
            return NULL;
    }
    return (const void *)(uintptr_t)pa;
}

static void *alloc_pages(void *ctx, size_t pages, uint64_t max_pa, uint64_t *pa)
{
    (void)ctx;
    EFI_PHYSICAL_ADDRESS addr = max_pa - 1;
    EFI_STATUS st = uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, pages, &addr);
    if (EFI_ERROR(st))
        return NULL;
    void *va = (void *)(uintptr_t)addr;
    SetMem(va, pages * PAGE_SIZE, 0);
    *pa = addr;
    return va;
}

static void free_pages(void *ctx, void *va, size_t pages)
{
    (void)ctx;
    uefi_call_wrapper(BS->FreePages, 2, (EFI_PHYSICAL_ADDRESS)(uintptr_t)va, pages);
}

/* For units whose table walks do not snoop (ECAP.C = 0): each line is written back to
 * memory. CLWB writes a line back and keeps it cached (the engine reads its tables again
 * at once), CLFLUSHOPT evicts it; both start write-backs that proceed in parallel, and
 * SFENCE (flush_cache_wait) waits for them. CLFLUSH, where neither exists, is ordered
 * against every other CLFLUSH, and MFENCE completes it at once. Measured on this project's
 * machine (tools/iommu-bench's write-back limit, 6 dirty lines): CLWB+SFENCE 171 ns,
 * CLFLUSHOPT+SFENCE 222 ns, CLFLUSH+MFENCE 412 ns. */
#define CACHE_LINE 64u

static void write_back_clwb(void *ctx, const void *va, size_t len)
{
    (void)ctx;
    for (uintptr_t p = (uintptr_t)va & ~(uintptr_t)(CACHE_LINE - 1); p < (uintptr_t)va + len; p += CACHE_LINE)
        __asm__ volatile("clwb (%0)" : : "r"(p) : "memory");
}

static void write_back_clflushopt(void *ctx, const void *va, size_t len)
{
    (void)ctx;
    for (uintptr_t p = (uintptr_t)va & ~(uintptr_t)(CACHE_LINE - 1); p < (uintptr_t)va + len; p += CACHE_LINE)
        __asm__ volatile("clflushopt (%0)" : : "r"(p) : "memory");
}

static void write_back_wait(void *ctx)
{
    (void)ctx;
    __asm__ volatile("sfence" : : : "memory");
}

static void write_back_clflush(void *ctx, const void *va, size_t len)
{
    (void)ctx;
    for (uintptr_t p = (uintptr_t)va & ~(uintptr_t)(CACHE_LINE - 1); p < (uintptr_t)va + len; p += CACHE_LINE)
        __asm__ volatile("clflush (%0)" : : "r"(p) : "memory");
    __asm__ volatile("mfence" : : : "memory");
}

const char *uefi_platform_write_back_name(const struct uefi_platform *up)
{
    return up->ops.flush_cache == write_back_clwb         ? "CLWB, then SFENCE"
           : up->ops.flush_cache == write_back_clflushopt ? "CLFLUSHOPT, then SFENCE"
                                                          : "CLFLUSH and MFENCE";
}

static uint64_t now_ns(void *ctx)
{
    struct uefi_platform *up = ctx;
    return tsc_read() * 1000 / up->tsc_per_us;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    sink_printf(out, "%s\n", line);
}

bool uefi_platform_init(struct uefi_platform *up)
{
    up->ops = (struct platform){
        .ctx = up,
        .mmio_read32 = identity_mmio_read32,
        .mmio_read64 = identity_mmio_read64,
        .mmio_write32 = identity_mmio_write32,
        .mmio_write64 = identity_mmio_write64,
        .map_phys = map_phys,
        .alloc_pages = alloc_pages,
        .free_pages = free_pages,
        .flush_cache = write_back_clflush,
        .now_ns = now_ns,
        .log = log_line,
    };
    uint32_t r[4];
    cpuid(0, 0, r);
    if (r[0] >= 7) {
        cpuid(7, 0, r);
        bool clwb = r[1] >> 24 & 1, clflushopt = r[1] >> 23 & 1;
        if (clwb || clflushopt) {
            up->ops.flush_cache = clwb ? write_back_clwb : write_back_clflushopt;
            up->ops.flush_cache_wait = write_back_wait;
        }
    }
    UINTN key;
    up->memory_map = LibMemoryMap(&up->memory_map_entries, &key, &up->descriptor_size,
                                  &up->descriptor_version);
    /* Boot services are still up, so the firmware's Stall is the reference clock. */
    up->tsc_per_us = tsc_ticks_per_us();
    return up->memory_map != NULL;
}

bool uefi_memory_is_ram(UINT32 type)
{
    return uefi_memory_type_is_ram(type);
}
