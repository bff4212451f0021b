/* The EL2 half's state inside struct hv and struct hv_cpu (hypervisor/hv.h): what only an
 * Arm host at EL2 has, and the trap handler's per-CPU record. */
#ifndef BOOT_HYPERVISOR_EL2_EL2_STATE_H
#define BOOT_HYPERVISOR_EL2_EL2_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* What the trap handler refused the guest (struct hv_vcpu's refused). */
enum hv_refusal {
    HV_REFUSED_ABORT = 1,  /* a data or instruction abort on a page stage 2 leaves out; what: the IPA */
    HV_REFUSED_SMC,        /* an SMC the policy refuses; what: the function ID */
    HV_REFUSED_HVC,        /* an HVC that is no call of this ABI; what: the function ID */
    HV_REFUSED_CONSOLE,    /* a console register the guest may not write; what: the offset */
    HV_REFUSED_TRAP,       /* an exception class the handler does not serve; what: ESR_EL2 */
};

/* Per CPU: the trap handler's counts, and the refusal the log shows last. */
struct hv_vcpu {
    uint64_t exits, hypercalls, smcs, psci_cpu_on, aborts, console_accesses, wfx, injected;
    uint64_t refusals;
    enum hv_refusal refused;
    uint64_t refused_what, refused_value;
    uint32_t kicks;
};

/* Per CPU. el2_vectors.S knows the first two fields' offsets (checked in el2.c). */
struct hv_arch_cpu {
    uint8_t *stack_top;       /* offset 0: SP_EL2 at every trap */
    uint64_t mpidr;           /* offset 8: the CPU's MPIDR_EL1 (affinity fields) */
    uint64_t guest_entry;     /* where PSCI CPU_ON asked this CPU to start, at EL1 */
    uint64_t guest_context;   /* and its x0 there */
    volatile bool starting;   /* between the CPU_ON and the CPU's first guest instruction */
};

/* For the whole machine: the values every CPU's EL2 registers get, and what stage 2 leaves
 * out that the trap handler emulates. */
struct hv_arch {
    uint64_t hcr, vtcr, vttbr, cptr, cnthctl;
    uint64_t console_base;        /* the PL011 the hypervisor keeps; guest accesses emulated */
    uint64_t its_base[4];         /* the GIC ITSs: disabled, their control frames out of stage 2 */
    unsigned its_count;
    uint64_t ipa_top;             /* stage 2 maps [0, ipa_top) less the holes */
    uint64_t psci_version;
};

#endif
