/* The hypervisor: turns the running firmware into a guest of AMD SVM with nested paging,
 * and serves the DDI hypercalls (docs/hypervisor.md). Its state, and the calls between its
 * halves and the loader: the architecture-neutral half (hypervisor/core.c: the audit, the
 * verdict, refusals, the DDI over the remapping) and the architecture's half
 * (hypervisor/arch.h; AMD SVM in hypervisor/svm/). The loader (loader/hv_setup.c) makes
 * the firmware calls and hands over a struct hv_setup; nothing here calls the firmware.
 *
 * Everything it owns lives in the reserved region (VMCBs, host-save areas, stacks, the
 * permission maps, the nested page tables, its own page tables, GDT, TSS and IDT) or in
 * the loader image, which is in the region too; the nested page tables map all else one to
 * one for the guest, and leave out the region and the IOMMU's register pages, so a guest
 * access there is a nested page fault the hypervisor turns into #GP. What the guest may
 * and may not reach, and why, is docs/security.md. */
#ifndef BOOT_HYPERVISOR_HV_H
#define BOOT_HYPERVISOR_HV_H

#include <stdbool.h>
#include <stdint.h>

#include "common/report.h"
#include "ddi/hc_server.h"
#include "hypervisor/remapping.h"
/* The architecture's state: struct hv_arch, hv_arch_cpu, and the exit handler's per-CPU
 * record struct hv_vcpu (exits, kicks, refusals: what the neutral half reads). */
#if defined(__aarch64__)
#include "hypervisor/el2/el2_state.h"
#else
#include "hypervisor/svm/svm_state.h"
#include "hypervisor/svm/vmexit.h"
#endif
#include "iommu/acpi.h"
#include "iommu/dmar.h"
#include "iommu/pci.h"

#define HV_MAX_CPUS 64
#define HV_STACK_PAGES 4
#define HV_REFUSALS_SHOWN 128

/* Per logical CPU. The architecture's part comes first: the assembly knows the offsets of
 * its first fields (hypervisor/svm/svm_state.h checks them). */
struct hv_cpu {
    struct hv_arch_cpu arch;
    unsigned index;
    uint32_t apic_id;         /* the firmware's processor id (x86: the local APIC id) */
    volatile bool launched;
    bool in_exit;             /* in hv_exit now, since exit_started_ns (for the audit) */
    uint64_t exit_started_ns;
    uint64_t refusal_shown[HV_REFUSALS_SHOWN]; /* kinds and addresses of refusals printed */
    unsigned refusals_shown;
    struct hv_vcpu vcpu;      /* the exit handler's per-CPU state and counts */
};

_Static_assert(__builtin_offsetof(struct hv_cpu, arch) == 0, "the assembly finds struct hv_arch_cpu at offset 0");

struct hv {
    struct hv_cpu cpu[HV_MAX_CPUS];
    unsigned cpus;
    struct hv_arch arch;
    struct slpt npt;          /* the guest's second-stage tables */
    uint64_t npt_top;         /* guest-physical space mapped: [0, npt_top) */
    void *mp;                 /* the firmware's MP services, or NULL (the loader's) */
    uint64_t region_pa, region_bytes;
    const struct platform *plat;  /* time, for the host's bounded waits */
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

/* What the loader found out with the firmware's help, for the hypervisor's preparation. */
struct hv_setup {
    const struct platform *plat;        /* time, for the host's bounded waits */
    struct remapping *remap;
    const struct pci_inventory *pci;
    const struct dmar_table *dmar;
    uint64_t image_base, image_end;     /* the loader image, page-aligned: the hypervisor's code */
    uint64_t top;                       /* the end of the highest range in the memory map */
    struct hc_ram_range ram[HC_MAX_RAM_RANGES]; /* guest RAM: without the region and the image */
    unsigned ram_count;
    bool fault_injection;               /* the guest may make the hypervisor fail (HC_INJECT) */
    uint16_t pm_base;                   /* the chipset's ACPI PM I/O block (0: unknown) */
    const struct madt_ioapics *ioapics;
    uint64_t console_base;              /* Arm: the PL011 the hypervisor keeps (its channel) */
    uint64_t its_base[4];               /* Arm: the GIC ITSs, withheld from the guest */
    unsigned its_count;
};

/* The one hypervisor, for the host's callbacks (set by hv_init). */
extern struct hv *the_hv;

/* ---- the architecture-neutral half (hypervisor/core.c) ---- */

/* The neutral fields from what the loader found (the remapping, the region, the platform,
 * the PCI functions); first, before hv_arch_prepare. */
void hv_init(struct hv *hv, const struct hv_setup *s);
/* The DDI provider and the hypercall server over the remapping, for s's guest RAM. */
bool hv_start_ddi(const struct hv_setup *s, struct checks *c);
/* The audit's secret, canary page and code hash (docs/security.md). */
bool hv_prepare_audit(struct hv *hv, struct checks *c);
/* pages contiguous pages of the region, or NULL. */
void *hv_region_pages(struct remapping *r, unsigned pages, uint64_t *pa);
/* The machine's end, on the channel: a last audit, then the RESULT line. */
void hv_verdict(const char *how, bool payload_ok);
/* Whether this refusal gets a line: the first of each kind, address and value (up to
 * HV_REFUSALS_SHOWN), then every 1000th (count). */
bool hv_refusal_shown(struct hv_cpu *cpu, uint64_t key, uint64_t count);
/* The line for the CPU's last refusal, when hv_refusal_shown says so. */
void hv_log_refusal(struct hv_cpu *cpu);

#if defined(__aarch64__)
/* ---- the EL2 half's launch (hypervisor/el2/el2.c) ---- */

/* Demotes the calling CPU (the boot CPU, at EL2 in the firmware's translation) to EL1: the
 * firmware's EL2 translation and vectors become its EL1 ones, stage 2 goes on, and the
 * guest goes on at entry(arg) on the stack stack. Never returns. */
_Noreturn void hv_launch_el1(struct hv *hv, unsigned index, uint64_t entry, uint64_t arg, uint64_t stack);
#else
/* ---- the SVM half's launch (hypervisor/svm/svm_launch.c) ---- */

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

#endif
