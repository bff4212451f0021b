/* What code running as the hypervisor's guest (the payloads, the DDI shim) uses: the
 * hypercall instruction, the hypervisor's books, and a platform (iommu/platform.h) for
 * driving devices from the guest: identity-mapped MMIO and a clock from the TSC. */
#ifndef BOOT_GUEST_H
#define BOOT_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ddi/hypercall.h"
#include "iommu/platform.h"

#include "common/tsc.h"

/* The hypercall instruction, with the ABI's calls in their x86 form (RAX = hc_rax(call),
 * RCX the block's address, RDX its size; docs/hypercall.md): VMMCALL on x86; on Arm, HVC
 * with X0 = the call's SMCCC function ID (hc_smccc_from_rax), X1 and X2. The status back. */
static inline uint64_t guest_hypercall(uint64_t rax, uint64_t rcx, uint64_t rdx)
{
#if defined(__aarch64__)
    register uint64_t x0 __asm__("x0") = hc_smccc_from_rax(rax);
    register uint64_t x1 __asm__("x1") = rcx, x2 __asm__("x2") = rdx;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2) : : "x3", "memory");
    return x0;
#else
    __asm__ volatile("vmmcall" : "+a"(rax) : "c"(rcx), "d"(rdx) : "memory");
    return rax;
#endif
}

/* In a spin-wait. */
static inline void guest_relax(void)
{
#if defined(__aarch64__)
    __asm__ volatile("yield");
#else
    __asm__ volatile("pause");
#endif
}

/* HC_STATS; false (and b zeroed) if the hypervisor refused it. */
static inline bool guest_books(struct hc_stats_block *b)
{
    *b = (struct hc_stats_block){0};
    return guest_hypercall(hc_rax(HC_STATS), (uint64_t)(uintptr_t)b, sizeof *b) == 0;
}

/* Measures the TSC (tsc_ticks_per_us) and returns its ticks per microsecond;
 * guest_platform's clock counts in those from then on. Call it once, with boot services. */
uint64_t guest_clock_calibrate(void);

extern const struct platform guest_platform;

#endif
