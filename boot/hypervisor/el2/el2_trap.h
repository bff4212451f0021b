/* What the hypervisor does on each trap from the guest at EL1 or EL0 (Arm): freestanding,
 * over the saved registers and the syndrome, so the same code runs in BOOTAA64.EFI and in
 * the host tests (tests/unit/test_el2_trap.c). What the guest may do and why is
 * docs/security.md; in short:
 *
 *   HVC       a call of the hypercall ABI (docs/hypercall.md: X0 = hc_smccc_function(call))
 *             goes to the server; any other function ID returns NOT_SUPPORTED (-1) in X0
 *   SMC       (HCR_EL2.TSC) the PSCI policy: PSCI_VERSION, AFFINITY_INFO and
 *             MIGRATE_INFO_TYPE passed to the firmware's PSCI; CPU_ON started by the
 *             hypervisor (the CPU comes up at EL2 in the hypervisor, which starts it as a
 *             guest at the entry point the guest gave); CPU_OFF passed (the CPU leaves the
 *             guest by powering off); SYSTEM_OFF and SYSTEM_RESET end the machine after the
 *             verdict; PSCI_FEATURES answered for these; everything else, CPU_SUSPEND and
 *             every non-PSCI call included, NOT_SUPPORTED (-1)
 *   data abort on the console's page (left out of stage 2): the PL011 emulated, every
 *             register read from the device, DR writes passed on (the channel marks the
 *             guest's lines), IMSC and ICR passed, every other write ignored and counted
 *   data or instruction abort elsewhere (a page stage 2 leaves out: the region, the SMMU's
 *             registers, anything past the IPA space): refused, a synchronous external
 *             abort injected at the guest's EL1 vector
 *   WFI       (HCR_EL2.TWI) waited for the guest (ops->wait), then stepped over: an idle
 *             CPU still exits, which the audit's liveness check counts
 *   anything else: refused, an Undefined Instruction injected */
#ifndef BOOT_HYPERVISOR_EL2_EL2_TRAP_H
#define BOOT_HYPERVISOR_EL2_EL2_TRAP_H

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/el2/el2_state.h"

/* The guest's general registers and return state, as el2_vectors.S saves them. */
struct el2_frame {
    uint64_t x[31];
    uint64_t elr, spsr;
    uint64_t pad;
};
#define EL2_FRAME_BYTES 272
_Static_assert(sizeof(struct el2_frame) == EL2_FRAME_BYTES, "el2_vectors.S: EL2_FRAME_BYTES");

/* ESR_EL2, FAR_EL2 and HPFAR_EL2 of the trap. */
struct el2_syndrome {
    uint64_t esr, far, hpfar;
};

/* Exception classes (ESR_ELx.EC). */
#define EC_UNKNOWN 0x00u
#define EC_WFX 0x01u
#define EC_HVC64 0x16u
#define EC_SMC64 0x17u
#define EC_IABT_LOWER 0x20u
#define EC_IABT_SAME 0x21u
#define EC_DABT_LOWER 0x24u
#define EC_DABT_SAME 0x25u

/* PSCI 0.2 function IDs (DEN 0022); SMC64 forms are 0xC4... */
#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_SUSPEND 0x84000001u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON 0x84000003u
#define PSCI_AFFINITY_INFO 0x84000004u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_FEATURES 0x8400000Au
#define PSCI_SMC64 0x40000000u
#define PSCI_NOT_SUPPORTED ((uint64_t)-1)
#define PSCI_INVALID_PARAMETERS ((uint64_t)-2)
#define PSCI_INVALID_ADDRESS ((uint64_t)-9)

/* The PL011's registers the emulation names. */
#define PL011_DR 0x00u
#define PL011_IMSC 0x38u
#define PL011_ICR 0x44u

struct el2_trap_ops {
    void *ctx;
    uint64_t (*hypercall)(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx);
    /* A PSCI call the policy passes on, made by the hypervisor (SMC from EL2). */
    uint64_t (*psci)(void *ctx, uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
    /* PSCI CPU_ON for the guest: start the CPU with that MPIDR as a guest at entry with x0 =
     * context; a PSCI status. */
    uint64_t (*cpu_on)(void *ctx, uint64_t mpidr, uint64_t entry, uint64_t context);
    /* CPU_OFF: this CPU leaves; does not return when it worked. */
    uint64_t (*cpu_off)(void *ctx);
    /* SYSTEM_OFF or SYSTEM_RESET: the verdict, then the machine ends. Does not return. */
    void (*machine_off)(void *ctx, bool reset);
    /* The hypervisor's console (a PL011 page left out of stage 2; 0: none). */
    uint64_t console_base;
    uint32_t (*console_read)(void *ctx, unsigned offset);
    void (*console_write)(void *ctx, unsigned offset, uint32_t value);
    /* A WFI of the guest's, done by the host. */
    void (*wait)(void *ctx);
    /* The guest's exception vector base (VBAR_EL1), and the EL1 registers an injected
     * exception sets: ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1. */
    uint64_t (*vbar_el1)(void *ctx);
    void (*set_el1_exception)(void *ctx, uint64_t esr, uint64_t far, uint64_t elr, uint64_t spsr);
};

enum el2_trap_result { EL2_RESUME, EL2_STOP };

enum el2_trap_result el2_handle_trap(struct el2_frame *f, const struct el2_syndrome *s, struct hv_vcpu *v,
                                     const struct el2_trap_ops *ops);

/* The intermediate physical address of a stage-2 abort: HPFAR_EL2's page, FAR's offset. */
static inline uint64_t el2_fault_ipa(const struct el2_syndrome *s)
{
    return (s->hpfar >> 4 & 0xFFFFFFFFFFull) << 12 | (s->far & 0xFFF);
}

#endif
