/* The hypervisor: turns the running firmware into a guest of AMD SVM with nested paging,
 * and serves the DDI hypercalls (docs/hypervisor.md).
 *
 * Everything it owns lives in the reserved region (VMCBs, host-save areas, stacks, the
 * permission maps, the nested page tables, its own page tables, GDT, TSS and IDT) or in
 * the loader image, which is in the region too; the nested page tables map all else one to
 * one for the guest, and leave out the region and the IOMMU's register pages, so a guest
 * access there is a nested page fault the hypervisor turns into #GP. What the guest may
 * and may not reach, and why, is docs/security.md. */
#ifndef BOOT_HV_H
#define BOOT_HV_H

#include <stdbool.h>
#include <stdint.h>

#include "host_env.h"
#include "iommu/acpi.h"
#include "iommu/pci.h"
#include "remap.h"
#include "report.h"
#include "svm.h"
#include "vmexit.h"

#define HV_MAX_CPUS 64
#define HV_STACK_PAGES 4
#define HV_REFUSALS_SHOWN 128

/* Per logical CPU. The assembly (boot/hv_entry.S) knows the first five fields' offsets
 * (checked below). */
struct hv_cpu {
    struct vmcb *vmcb;        /* offset 0 */
    uint64_t vmcb_pa;         /* offset 8 */
    uint8_t *stack_top;       /* offset 16 */
    uint64_t resume;          /* offset 24: APs: where the guest resumes (0: the firmware) */
    uint64_t host_state_pa;   /* offset 32: the host's VMLOAD state (its own TR, FS, GS) */
    uint64_t hsave_pa;
    struct host_cpu_env env;
    unsigned index;
    uint32_t apic_id;
    volatile bool launched;
    bool in_exit;             /* in hv_exit now, since exit_started_ns (for the audit) */
    uint64_t exit_started_ns;
    uint64_t refusal_shown[HV_REFUSALS_SHOWN]; /* kinds and addresses of refusals printed */
    unsigned refusals_shown;
    struct hv_vcpu vcpu;
};

struct hv {
    struct hv_cpu cpu[HV_MAX_CPUS];
    unsigned cpus;
    struct slpt npt;
    uint8_t *msrpm;
    uint64_t msrpm_pa;
    uint64_t npt_top;         /* guest-physical space mapped: [0, npt_top) */
    bool one_gib_pages;
    uint8_t phys_bits;            /* the CPU's physical-address width */
    void *mp;                 /* the firmware's MP services, or NULL */
    uint64_t apic_base;       /* the local APIC's page, emulated for the guest */
    uint64_t region_pa, region_bytes;
    const struct platform *plat;  /* time, for the host's bounded waits */
    uint8_t *iopm;
    uint64_t iopm_pa;
    uint16_t pm_base;             /* the chipset's ACPI PM I/O block (0: unknown) */
    struct madt_ioapics ioapics;  /* emulated for the guest: out of the nested tables */
    uint32_t ioapic_select[MADT_MAX_IOAPICS]; /* each one's IOREGSEL as the guest wrote it */
    const struct pci_inventory *pci;
    /* What the audit checks (docs/security.md): a secret and a canary page in the region,
     * the hash of the hypervisor's code, and each unit's translation registers. */
    uint64_t *canary;
    uint64_t canary_pa, secret;
    const uint8_t *code;
    uint64_t code_bytes, code_hash;
    struct remapping *remap;
    unsigned audits, audits_failed;
    unsigned loader_checks, loader_failed;
};

_Static_assert(__builtin_offsetof(struct hv_cpu, vmcb) == CPU_VMCB, "hv_asm_offsets.h: CPU_VMCB");
_Static_assert(__builtin_offsetof(struct hv_cpu, vmcb_pa) == CPU_VMCB_PA, "hv_asm_offsets.h: CPU_VMCB_PA");
_Static_assert(__builtin_offsetof(struct hv_cpu, stack_top) == CPU_STACK_TOP, "hv_asm_offsets.h: CPU_STACK_TOP");
_Static_assert(__builtin_offsetof(struct hv_cpu, resume) == CPU_RESUME, "hv_asm_offsets.h: CPU_RESUME");
_Static_assert(__builtin_offsetof(struct hv_cpu, host_state_pa) == CPU_HOST_STATE_PA,
               "hv_asm_offsets.h: CPU_HOST_STATE_PA");

/* Checks the CPU (SVM, nested paging), sets up the DDI provider and hypercall server over
 * the remapping, builds the nested page tables and the MSR map. */
bool hv_prepare(struct hv *hv, struct uefi_platform *up, struct remapping *r, const struct pci_inventory *inv,
                const struct dmar_table *dmar, const void *image_base, uint64_t image_bytes, bool fault_injection,
                uint16_t pm_base, const struct madt_ioapics *ioapics, struct checks *c);

/* Runs every application processor as a guest: each resumes at ap_resume (0: straight back
 * to the firmware's AP loop, as if the procedure it was given had returned). False when
 * one could not be launched. */
bool hv_launch_aps(struct hv *hv, uint64_t ap_resume, struct checks *c);

/* Runs the calling CPU (the BSP) as a guest from here on. With resume 0 it returns, in
 * guest mode; otherwise the guest goes on at resume, on the caller's stack, and this never
 * returns. */
void hv_launch_this_cpu(struct hv *hv, unsigned index, uint64_t resume);

/* For the assembly: one exit of the CPU; nonzero stops the guest. */
int hv_exit(struct hv_cpu *cpu, struct guest_regs *regs);
/* For the assembly: the host's own environment on this CPU, before its first VMRUN. */
void hv_host_enter(struct hv_cpu *cpu);
void hv_enter(struct hv_cpu *cpu, uint64_t resume); /* hv_entry.S; see there */
struct hv_cpu *hv_prepare_this_ap(struct hv *hv);    /* for hv_entry.S's AP procedure */

#endif
