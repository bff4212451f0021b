/* What the hypervisor does on each #VMEXIT: freestanding, over a VMCB and the guest's
 * general registers, so the same code runs in BOOTX64.EFI and in the host tests.
 *
 *   VMMCALL     a DDI hypercall (ddi/include/ddi/hypercall.h) from guest CPL 0; #UD from
 *               any other privilege level
 *   CPUID       the host's answer, with the hypervisor bit set, SVM hidden, and leaves
 *               0x40000000 (signature "iommu-hv-ddi") and 0x40000001 (ABI version)
 *   MSR         EFER: the guest reads and writes its own view while SVME stays set
 *               underneath (VMMCALL needs it); IA32_APIC_BASE writes: the same value
 *               again is fine, any change (moving the APIC, x2APIC mode) #GP; any other
 *               intercepted MSR: #GP. CPUID hides x2APIC.
 *   VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT: #UD (no nested virtualization)
 *   nested page fault on the local APIC's page (kept out of the nested tables): the access
 *               emulated (boot/mmio_decode.h), except that an INIT or SIPI sent to
 *               another CPU is handed to ops->init_sipi, which emulates it for that vCPU
 *               (QEMU's TCG cannot intercept INIT: a real one would take the CPU out of
 *               guest mode)
 *   HLT         (application processors only) with interrupts off, where the firmware parks
 *               an AP between jobs: the host waits there for an emulated SIPI (a real INIT
 *               would take the CPU out of guest mode), then starts the guest in real mode at
 *               the SIPI vector; with interrupts on, the guest goes on after the HLT
 *   nested page fault elsewhere: recorded (address, access, RIP) and #GP(0) injected
 *   shutdown, and anything unexpected: the guest stops
 * The IOMMU's fault records are collected on every exit. */
#ifndef BOOT_VMEXIT_H
#define BOOT_VMEXIT_H

#include <stdbool.h>
#include <stdint.h>

#include "svm.h"

/* The guest registers the VMCB does not hold, as the exit stub saves them. */
struct guest_regs {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx;
};

struct hv_vcpu;

struct hv_exit_ops {
    void *ctx;
    uint64_t (*hypercall)(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx);
    void (*cpuid)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
    void (*collect_faults)(void *ctx);
    /* The local APIC, whose page the guest reaches only through emulation (0: none), and
     * IA32_APIC_BASE as the guest may see it but not change it. */
    uint64_t apic_base, apic_base_msr;
    uint32_t (*apic_read)(void *ctx, uint32_t offset);
    void (*apic_write)(void *ctx, uint32_t offset, uint32_t value);
    /* Guest code bytes at a linear address (through the guest's page tables); false when
     * they are not in guest memory. */
    bool (*fetch)(void *ctx, const struct vmcb *vmcb, uint64_t linear, uint8_t *buf, unsigned len);
    /* An ICR write with delivery mode INIT or SIPI (ICR high holds the destination). */
    void (*init_sipi)(void *ctx, uint32_t icr_low, uint32_t icr_high);
    /* Waits a while (bounded) for v->sipi_pending; returns whether it came. */
    bool (*wait_for_sipi)(void *ctx, struct hv_vcpu *v);
};

/* Per-CPU state of the exit handler. */
struct hv_vcpu {
    uint64_t guest_efer;  /* EFER as the guest last wrote it */
    uint64_t exits, hypercalls, cpuids, injected;
    uint64_t npf_count, npf_gpa, npf_info, npf_rip; /* the last nested page fault */
    uint64_t apic_accesses, sipis;
    uint64_t stop_code;   /* the exit that stopped the guest */
    /* INIT and SIPI as another CPU's emulated ICR writes leave them for this one. */
    volatile bool init_pending, sipi_pending;
    volatile uint8_t sipi_vector;
};

/* The state a CPU starts in after INIT and a SIPI with this vector: real mode at
 * vector << 12, registers cleared, EFER 0 as the guest sees it (SVME stays set below). */
void hv_sipi_state(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, uint8_t vector);

#define HV_CPUID_SIGNATURE_LEAF 0x40000000u
#define HV_CPUID_VERSION_LEAF 0x40000001u

enum hv_exit_result { HV_RESUME, HV_STOP };

enum hv_exit_result hv_handle_exit(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v,
                                   const struct hv_exit_ops *ops);

#endif
