/* See boot/guest.h. */
#include <efi.h>
#include <efilib.h>

#include "guest.h"

static uint64_t tsc_per_ms = 1;

uint64_t guest_clock_calibrate(void)
{
    uint64_t t0 = guest_rdtsc();
    uefi_call_wrapper(BS->Stall, 1, 10000);
    tsc_per_ms = (guest_rdtsc() - t0) / 10 + 1;
    return tsc_per_ms;
}

static uint32_t mmio_read32(void *ctx, uint64_t pa)
{
    (void)ctx;
    return *(volatile uint32_t *)(uintptr_t)pa;
}

static void mmio_write32(void *ctx, uint64_t pa, uint32_t v)
{
    (void)ctx;
    *(volatile uint32_t *)(uintptr_t)pa = v;
}

static void mmio_write64(void *ctx, uint64_t pa, uint64_t v)
{
    (void)ctx;
    *(volatile uint64_t *)(uintptr_t)pa = v;
}

static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return guest_rdtsc() / tsc_per_ms * 1000000; /* millisecond steps: plenty for the bounds used */
}

const struct platform guest_platform = {.mmio_read32 = mmio_read32, .mmio_write32 = mmio_write32,
                                        .mmio_write64 = mmio_write64, .now_ns = now_ns};
