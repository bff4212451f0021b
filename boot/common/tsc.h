/* The time-stamp counter: read it, and measure its rate against the firmware's Stall (boot
 * services must be up). The loader and guest code time their poll bounds with it. */
#ifndef BOOT_TSC_H
#define BOOT_TSC_H

#include <stdint.h>

static inline uint64_t tsc_read(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* TSC ticks per microsecond over a 10 ms Stall; at least 1. */
uint64_t tsc_ticks_per_us(void);

#endif
