/* The CPU's constant-rate counter: the time-stamp counter on x86, read and measured against
 * the firmware's Stall (boot services must be up; tsc.c); the generic timer's virtual count on
 * Arm, whose rate CNTFRQ_EL0 gives. The loader and guest code time their poll bounds with it. */
#ifndef BOOT_TSC_H
#define BOOT_TSC_H

#include <stdint.h>

#if defined(__aarch64__)
static inline uint64_t tsc_read(void)
{
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
    return v;
}

/* The counter's rate in Hz (CNTFRQ_EL0, as the firmware set it; 0 if it did not). */
static inline uint64_t tsc_hz(void)
{
    uint64_t hz;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    return hz;
}

/* Counter ticks per microsecond (QEMU's virt: 62.5 MHz, so 62); at least 1. */
static inline uint64_t tsc_ticks_per_us(void)
{
    uint64_t hz = tsc_hz();
    return hz >= 1000000 ? hz / 1000000 : 1;
}
#else
static inline uint64_t tsc_read(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* TSC ticks per microsecond over a 10 ms Stall; at least 1. */
uint64_t tsc_ticks_per_us(void);
#endif

#endif
