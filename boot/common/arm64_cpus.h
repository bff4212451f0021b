/* Arm, from the guest at EL1: each CPU besides the boot CPU started once through PSCI CPU_ON
 * (which the hypervisor serves: the CPU comes up as its guest), where it says it is alive,
 * makes one hypercall, records its exception level and powers off again with CPU_OFF. The
 * loader's guest side does it before the payload, so that every CPU has run as a guest and
 * is off for an OS to start; the Arm self-test checks what each one recorded. */
#ifndef BOOT_COMMON_ARM64_CPUS_H
#define BOOT_COMMON_ARM64_CPUS_H

#include <stdbool.h>
#include <stdint.h>

/* What a started CPU writes (arm64_cpus.S knows the offsets), and what the caller saw. */
struct arm64_cpu_cycle {
    volatile uint64_t alive, status, el; /* written by the CPU: 1; its hypercall's status; CurrentEL >> 2 */
    uint64_t cpu_on;                     /* CPU_ON's status */
    uint64_t affinity;                   /* AFFINITY_INFO afterwards: 1 is off */
};

/* The hypercall the CPU makes: HC_VERSION with no block (ABI version 1), whose answer,
 * STATUS_INFO_LENGTH_MISMATCH, shows the hypervisor's server took it. */
#define ARM64_CPU_CYCLE_CALL 0xC6000100u

/* Starts the CPU with that MPIDR, waits up to a second for it to come up and another for it
 * to be off; true when it came up, ran at EL1 and is off again. */
bool arm64_cpu_cycle(uint64_t mpidr, struct arm64_cpu_cycle *c);

/* An SMC from EL1 (the hypervisor takes it: HCR_EL2.TSC). */
uint64_t arm64_smc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);

#endif
