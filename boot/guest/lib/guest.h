/* What code running as the hypervisor's guest (the payloads, the DDI shim) uses: the
 * hypercall instruction, the hypervisor's books, and a platform (iommu/platform.h) for
 * driving devices from the guest: identity-mapped MMIO and a clock from the TSC. */
#ifndef BOOT_GUEST_H
#define BOOT_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/hypercall.h"
#include "iommu/platform.h"

#if defined(__aarch64__)
/* The hypercall instruction on Arm (docs/hypercall.md): X0 the call's SMCCC function ID,
 * X1 the block's address, X2 its size; X0 the status back. */
static inline uint64_t guest_hvc(enum hc_call call, uint64_t x1, uint64_t x2)
{
    register uint64_t x0 __asm__("x0") = hc_smccc_function(call);
    register uint64_t r1 __asm__("x1") = x1, r2 __asm__("x2") = x2;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(r1), "+r"(r2) : : "x3", "memory");
    return x0;
}
#else
#include "common/tsc.h"

static inline uint64_t guest_vmmcall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    __asm__ volatile("vmmcall" : "+a"(rax) : "c"(rcx), "d"(rdx) : "memory");
    return rax;
}

/* HC_STATS; false (and b zeroed) if the hypervisor refused it. */
static inline bool guest_books(struct hc_stats_block *b)
{
    *b = (struct hc_stats_block){0};
    return guest_vmmcall(hc_rax(HC_STATS), (uint64_t)(uintptr_t)b, sizeof *b) == 0;
}

/* Measures the TSC (tsc_ticks_per_us) and returns its ticks per microsecond;
 * guest_platform's clock counts in those from then on. Call it once, with boot services. */
uint64_t guest_clock_calibrate(void);

extern const struct platform guest_platform;
#endif

#endif
