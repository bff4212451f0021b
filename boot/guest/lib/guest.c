/* See boot/guest/lib/guest.h. */
#include "guest/lib/guest.h"
#include "common/identity_mmio.h"

static uint64_t tsc_per_us = 1;

uint64_t guest_clock_calibrate(void)
{
    tsc_per_us = tsc_ticks_per_us();
    return tsc_per_us;
}

static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return tsc_read() * 1000 / tsc_per_us;
}

const struct platform guest_platform = {.mmio_read32 = identity_mmio_read32, .mmio_write32 = identity_mmio_write32,
                                        .mmio_write64 = identity_mmio_write64, .now_ns = now_ns};
