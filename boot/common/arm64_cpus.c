/* See arm64_cpus.h. */
#include "common/arm64_cpus.h"

#include "common/tsc.h"

#define PSCI_CPU_ON64 0xC4000003u
#define PSCI_AFFINITY_INFO64 0xC4000004u
#define AFFINITY_OFF 1u

extern void arm64_cpu_cycle_entry(void);

bool arm64_cpu_cycle(uint64_t mpidr, struct arm64_cpu_cycle *c)
{
    uint64_t hz = tsc_hz();
    c->alive = c->status = c->el = 0;
    c->affinity = 0;
    __asm__ volatile("dsb sy" ::: "memory");
    c->cpu_on = arm64_smc(PSCI_CPU_ON64, mpidr, (uint64_t)(uintptr_t)arm64_cpu_cycle_entry, (uint64_t)(uintptr_t)c);
    uint64_t t0 = tsc_read();
    while (!c->cpu_on && !c->alive && tsc_read() - t0 < hz)
        ;
    t0 = tsc_read();
    while (c->alive && (c->affinity = arm64_smc(PSCI_AFFINITY_INFO64, mpidr, 0, 0)) != AFFINITY_OFF &&
           tsc_read() - t0 < hz)
        ;
    return !c->cpu_on && c->alive && c->el == 1 && c->affinity == AFFINITY_OFF;
}
