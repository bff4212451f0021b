/* What the hypervisor does on each #VMEXIT: freestanding, over a VMCB and the guest's
 * general registers, so the same code runs in BOOTX64.EFI and in the host tests.
 *
 *   VMMCALL     a DDI hypercall (ddi/include/ddi/hypercall.h) from guest CPL 0; #UD from
 *               any other privilege level
 *   CPUID       the host's answer, with the hypervisor bit set, SVM hidden, and leaves
 *               0x40000000 (signature "iommu-hv-ddi") and 0x40000001 (ABI version)
 *   MSR         every MSR exits but those hv_msr_passes lists (docs/security.md). EFER:
 *               the guest reads and writes its own view while SVME stays set underneath
 *               (VMMCALL needs it); IA32_APIC_BASE writes: the same value again is fine,
 *               any change (moving the APIC, x2APIC mode) #GP; VM_CR reads show SVM
 *               disabled and locked; any other: #GP, recorded as a refusal. CPUID hides
 *               x2APIC and SVM.
 *   IOIO        the ports hv_port_intercepted lists: the chipset's power, reset and SMI
 *               controls, PCI configuration, DMA engines that bypass the IOMMU, the
 *               hypervisor's channel; each emulated, refused or done for the guest
 *   SMI, INIT   (intercepted so that neither is ever taken in guest mode) the machine stops
 *   VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT: #UD (no nested virtualization)
 *   nested page fault on the local APIC's page (kept out of the nested tables): the access
 *               emulated (boot/hypervisor/svm/mmio_decode.h); an ICR or LVT write with delivery mode
 *               SMI, ExtINT (ICR) or INIT (LVT) is refused; an INIT or SIPI sent to
 *               another CPU is handed to ops->init_sipi, which emulates it for that vCPU
 *               (QEMU's TCG cannot intercept INIT: a real one would take the CPU out of
 *               guest mode)
 *   HLT         (application processors only) with interrupts off, where the firmware parks
 *               an AP between jobs: the host waits there for an emulated SIPI (a real INIT
 *               would take the CPU out of guest mode), then starts the guest in real mode at
 *               the SIPI vector; with interrupts on, the guest goes on after the HLT
 *   nested page fault on an I/O APIC's page (kept out of the nested tables): emulated; a
 *               redirection entry with delivery mode SMI, INIT or a reserved one refused
 *   nested page fault, a write to a chipset function's ECAM page (mapped read-only): the
 *               MOV decoded and the write done unless it is to a register the guest may
 *               not write (refused, as through port 0xCF8)
 *   nested page fault elsewhere: recorded (address, access, RIP) and #GP(0) injected
 *   shutdown, and anything unexpected: the guest stops
 * The IOMMU's fault records are collected on every exit. */
#ifndef BOOT_VMEXIT_H
#define BOOT_VMEXIT_H

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/svm/svm.h"

/* The guest registers the VMCB does not hold, as the exit stub saves them. */
struct guest_regs {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx;
};

struct hv_vcpu;

/* The local APIC's interrupt command register (xAPIC offsets). */
#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310

struct hv_exit_ops {
    void *ctx;
    uint64_t (*hypercall)(void *ctx, uint64_t rax, uint64_t rcx, uint64_t rdx);
    void (*cpuid)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
    void (*collect_faults)(void *ctx);
    /* The local APIC, whose page the guest reaches only through emulation (0: none), and
     * IA32_APIC_BASE as the guest may see it but not change it. */
    uint64_t apic_base, apic_base_msr;
    /* The hypervisor's reserved region, which CPUID leaf 0x40000002 names to the guest. */
    uint64_t region_base, region_bytes;
    uint32_t (*apic_read)(void *ctx, uint32_t offset);
    void (*apic_write)(void *ctx, uint32_t offset, uint32_t value);
    /* Guest code bytes at a linear address, through the guest's page tables: how many of
     * len it could read (it stops at the first byte that is not in guest RAM). */
    unsigned (*fetch)(void *ctx, const struct vmcb *vmcb, uint64_t linear, uint8_t *buf, unsigned len);
    /* An ICR write with delivery mode INIT or SIPI (ICR high holds the destination). */
    void (*init_sipi)(void *ctx, uint32_t icr_low, uint32_t icr_high);
    /* Port I/O done for the guest, on the ports the permission map intercepts. */
    uint32_t (*port_in)(void *ctx, uint16_t port, unsigned size);
    void (*port_out)(void *ctx, uint16_t port, unsigned size, uint32_t value);
    /* A PCI configuration access through CONFIG_ADDRESS / CONFIG_DATA: address is the
     * guest's CONFIG_ADDRESS, byte the offset within the data dword; the host does the pair
     * as one, so that CPUs sharing the one real CONFIG_ADDRESS cannot mix them up. */
    uint32_t (*pci_read)(void *ctx, uint32_t address, unsigned byte, unsigned size);
    void (*pci_write)(void *ctx, uint32_t address, unsigned byte, unsigned size, uint32_t value);
    /* Whether the guest may write this configuration register (boot/hypervisor/svm/svm_host.c knows which
     * functions are the chipset's). */
    bool (*pci_write_allowed)(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, unsigned reg, unsigned size);
    /* The guest powers the machine off or resets it: the hypervisor does it itself, after
     * its verdict. Does not return. */
    void (*machine_off)(void *ctx, struct hv_vcpu *v, bool reset);
    uint16_t pm_base; /* the chipset's ACPI PM I/O block (PM1a_EVT_BLK); 0: not known */
    /* The chipset functions' configuration pages in ECAM are mapped read-only for the
     * guest: whether gpa is in one (and which function), and the write done for the guest
     * when pci_write_allowed lets it through. */
    bool (*config_page)(void *ctx, uint64_t gpa, uint8_t *bus, uint8_t *dev, uint8_t *fn);
    void (*mmio_write)(void *ctx, uint64_t pa, unsigned size, uint64_t value);
    /* The I/O APICs, whose pages the guest reaches only through emulation: which one gpa
     * is in (false: none), and their registers (offset 0 IOREGSEL, 0x10 IOWIN, 0x40 EOI).
     * The host keeps each one's IOREGSEL as the guest wrote it and selects it again under a
     * lock for every window access, so that CPUs cannot slip a register under another's
     * write; ioapic_write returns false, with *select, when hv_ioapic_write_allowed refused. */
    bool (*ioapic_page)(void *ctx, uint64_t gpa, unsigned *ioapic);
    uint32_t (*ioapic_read)(void *ctx, unsigned ioapic, unsigned offset);
    bool (*ioapic_write)(void *ctx, unsigned ioapic, unsigned offset, uint32_t value, uint32_t *select);
};

/* What the handler refused the guest, for the host's log (the last one, and a count). */
enum hv_refusal {
    HV_REFUSED_MSR_READ = 1,
    HV_REFUSED_MSR_WRITE,
    HV_REFUSED_PORT_IN,
    HV_REFUSED_PORT_OUT,
    HV_REFUSED_STRING_IO,
    HV_REFUSED_APIC_ICR,   /* what: the ICR low word */
    HV_REFUSED_APIC_REGISTER, /* an LVT's mode, or a register the guest may not write; what: the offset */
    HV_REFUSED_PCI_CONFIG, /* what: bus << 16 | dev << 11 | fn << 8 | reg */
    HV_REFUSED_SLEEP,      /* value: the PM1a_CNT write */
    HV_REFUSED_IOAPIC_RTE, /* what: the I/O APIC register (IOREGSEL), value: what was written */
};

/* Per-CPU state of the exit handler. */
struct hv_vcpu {
    uint64_t guest_efer;  /* EFER as the guest last wrote it */
    uint64_t exits, hypercalls, cpuids, injected;
    uint64_t npf_count, npf_gpa, npf_info, npf_rip; /* the last nested page fault */
    uint64_t apic_accesses, sipis;
    uint64_t stop_code;   /* the exit that stopped the guest */
    uint64_t msr_exits, io_exits;
    struct { uint16_t port; uint64_t exits; } io_ports[8]; /* where the I/O exits came from: the first ports seen */
    uint64_t refusals;    /* every refusal; the last one: */
    enum hv_refusal refused;
    uint64_t refused_what, refused_value;
    uint32_t pci_address; /* the guest's CONFIG_ADDRESS (port 0xCF8) on this CPU */
    /* INIT and SIPI as another CPU's emulated ICR writes leave them for this one. The
     * sender then counts a kick here and sends this CPU an NMI, which the NMI intercept
     * turns into an exit wherever the guest is (running, halted, in MWAIT): the exit takes
     * every kick counted and the SIPI, and an NMI with no kick counted is the guest's own,
     * given back to it. (A guest NMI that arrives while a kick's NMI is pending merges
     * with it and is lost, as NMIs merge on hardware.) */
    volatile bool init_pending, sipi_pending;
    volatile uint8_t sipi_vector;
    uint32_t kicks;
    uint64_t guest_nmis; /* the guest's own NMIs, passed back to it */
};

/* The state a CPU starts in after INIT and a SIPI with this vector: real mode at
 * vector << 12, registers cleared, EFER 0 as the guest sees it (SVME stays set below). */
void hv_sipi_state(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, uint8_t vector);

/* The MSR permission map's pass-through list: whether the guest reads (write false) or
 * writes msr without an exit. Everything not listed exits (docs/security.md). */
bool hv_msr_passes(uint32_t msr, bool write);
/* Fills the 8 KiB MSR permission map from hv_msr_passes. */
void hv_msrpm_build(uint8_t *msrpm);
/* Whether the guest's accesses to port exit; pm_base as in hv_exit_ops. */
bool hv_port_intercepted(uint16_t port, uint16_t pm_base);
/* Fills the 12 KiB I/O permission map from hv_port_intercepted. */
void hv_iopm_build(uint8_t *iopm, uint16_t pm_base);
/* Whether the guest may write value to the I/O APIC register select (through IOWIN): a
 * redirection entry may not ask for SMI, INIT or a reserved delivery mode. */
bool hv_ioapic_write_allowed(uint32_t select, uint32_t value);

#define HV_CPUID_SIGNATURE_LEAF 0x40000000u
#define HV_CPUID_VERSION_LEAF 0x40000001u
#define HV_CPUID_REGION_LEAF 0x40000002u /* EAX:EBX the region's base, ECX:EDX its size */
#define HV_CPUID_MAX_LEAF HV_CPUID_REGION_LEAF

enum hv_exit_result { HV_RESUME, HV_STOP };

enum hv_exit_result hv_handle_exit(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v,
                                   const struct hv_exit_ops *ops);

#endif
