/* The SVM half's state inside struct hv and struct hv_cpu (hypervisor/hv.h): what only an
 * AMD SVM host has. */
#ifndef BOOT_HYPERVISOR_SVM_SVM_STATE_H
#define BOOT_HYPERVISOR_SVM_SVM_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/svm/host_env.h"
#include "hypervisor/svm/svm.h"
#include "iommu/acpi.h"

/* Per CPU. hv_entry.S knows the first five fields' offsets (checked below). */
struct hv_arch_cpu {
    struct vmcb *vmcb;        /* offset 0 */
    uint64_t vmcb_pa;         /* offset 8 */
    uint8_t *stack_top;       /* offset 16 */
    uint64_t resume;          /* offset 24: APs: where the guest resumes (0: the firmware) */
    uint64_t host_state_pa;   /* offset 32: the host's VMLOAD state (its own TR, FS, GS) */
    uint64_t hsave_pa;
    struct host_cpu_env env;
};

_Static_assert(__builtin_offsetof(struct hv_arch_cpu, vmcb) == CPU_VMCB, "hv_asm_offsets.h: CPU_VMCB");
_Static_assert(__builtin_offsetof(struct hv_arch_cpu, vmcb_pa) == CPU_VMCB_PA, "hv_asm_offsets.h: CPU_VMCB_PA");
_Static_assert(__builtin_offsetof(struct hv_arch_cpu, stack_top) == CPU_STACK_TOP, "hv_asm_offsets.h: CPU_STACK_TOP");
_Static_assert(__builtin_offsetof(struct hv_arch_cpu, resume) == CPU_RESUME, "hv_asm_offsets.h: CPU_RESUME");
_Static_assert(__builtin_offsetof(struct hv_arch_cpu, host_state_pa) == CPU_HOST_STATE_PA,
               "hv_asm_offsets.h: CPU_HOST_STATE_PA");

/* For the whole machine. */
struct hv_arch {
    uint8_t *msrpm;               /* the MSR permission map */
    uint64_t msrpm_pa;
    uint8_t *iopm;                /* the I/O permission map */
    uint64_t iopm_pa;
    bool one_gib_pages;
    uint8_t phys_bits;            /* the CPU's physical-address width */
    uint64_t apic_base;           /* the local APIC's page, emulated for the guest */
    uint16_t pm_base;             /* the chipset's ACPI PM I/O block (0: unknown) */
    struct madt_ioapics ioapics;  /* emulated for the guest: out of the nested tables */
    uint32_t ioapic_select[MADT_MAX_IOAPICS]; /* each one's IOREGSEL as the guest wrote it */
};

#endif
