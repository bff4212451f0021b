/* What code running as the hypervisor's guest (the payloads, the DDI shim) uses: the
 * hypercall instruction, the TSC, the hypervisor's books, and a platform (iommu/platform.h)
 * for driving devices from the guest: identity-mapped MMIO and a clock from the TSC. */
#ifndef BOOT_GUEST_H
#define BOOT_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/hypercall.h"
#include "iommu/platform.h"

static inline uint64_t guest_vmmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    __asm__ volatile("vmmcall" : "+a"(rax) : "c"(rcx), "d"(rdx) : "memory");
    return rax;
}

static inline uint64_t guest_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* HC_STATS; false (and b zeroed) if the hypervisor refused it. */
static inline bool guest_books(struct hc_stats_block *b)
{
    *b = (struct hc_stats_block){0};
    return guest_vmmcall(hc_rax(HC_STATS), (uint64_t)(uintptr_t)b, sizeof *b) == 0;
}

/* Times the TSC against the firmware's Stall (10 ms) and returns its ticks per millisecond;
 * guest_platform's clock counts in those from then on. Call it once, with boot services. */
uint64_t guest_clock_calibrate(void);

extern const struct platform guest_platform;

#endif
