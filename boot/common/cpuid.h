/* CPUID, for the loader, the hypervisor and the guest payloads alike. */
#ifndef BOOT_CPUID_H
#define BOOT_CPUID_H

#include <stdint.h>

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
}

#endif
