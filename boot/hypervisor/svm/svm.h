/* AMD SVM: the VMCB and the constants the hypervisor uses (AMD64 APM vol. 2, appendix B and
 * chapter 15). Freestanding; the layout is checked below against the manual's offsets.
 *
 * Under QEMU's TCG (docs/hypervisor.md): no next-RIP (the VMCB's nrip stays 0, so the
 * hypervisor knows instruction lengths), no clean bits, ASID 0 refused, nested page entries
 * need the user bit at every level, VMMCALL raises #UD unless the guest's EFER.SVME is set,
 * and #VMEXIT leaves GIF clear. */
#ifndef BOOT_SVM_H
#define BOOT_SVM_H

#include <stdint.h>

#include "hypervisor/svm/hv_asm_offsets.h"
#include "common/x86_tables.h"

struct vmcb_segment {
    uint16_t selector;
    uint16_t attrib; /* descriptor bits 8-15 and 20-23, packed: type S DPL P, AVL L DB G */
    uint32_t limit;
    uint64_t base;
};

struct vmcb_control {
    uint16_t intercept_cr_read, intercept_cr_write;
    uint16_t intercept_dr_read, intercept_dr_write;
    uint32_t intercept_exceptions;
    uint32_t intercept_misc1;      /* SVM_INTERCEPT1_* */
    uint32_t intercept_misc2;      /* SVM_INTERCEPT2_* */
    uint32_t intercept_misc3;
    uint8_t reserved_1[36];
    uint16_t pause_filter_threshold, pause_filter_count;
    uint64_t iopm_base_pa;
    uint64_t msrpm_base_pa;
    uint64_t tsc_offset;
    uint32_t asid;
    uint8_t tlb_control;
    uint8_t reserved_2[3];
    uint64_t vintr;
    uint64_t interrupt_shadow;
    uint64_t exit_code;
    uint64_t exit_info_1;
    uint64_t exit_info_2;
    uint64_t exit_int_info;
    uint64_t np_enable;
    uint64_t avic_apic_bar;
    uint64_t ghcb_pa;
    uint64_t event_inject;
    uint64_t n_cr3;
    uint64_t lbr_virtualization;
    uint32_t clean_bits, reserved_3;
    uint64_t next_rip;
    uint8_t instruction_bytes_count;
    uint8_t instruction_bytes[15];
    uint8_t reserved_4[800];
};

struct vmcb_save {
    struct vmcb_segment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
    uint8_t reserved_1[43];
    uint8_t cpl;
    uint32_t reserved_2;
    uint64_t efer;
    uint8_t reserved_3[112];
    uint64_t cr4, cr3, cr0, dr7, dr6, rflags, rip;
    uint8_t reserved_4[88];
    uint64_t rsp;
    uint64_t s_cet, ssp, isst_addr;
    uint64_t rax;
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t cr2;
    uint8_t reserved_5[32];
    uint64_t g_pat;
    uint64_t dbgctl, br_from, br_to, last_excp_from, last_excp_to;
    uint8_t reserved_6[2408];
};

struct vmcb {
    struct vmcb_control control;
    struct vmcb_save save;
};

/* A segment register as the VMCB holds it (attributes packed: descriptor bits 8-15 and
 * 20-23), from the descriptor it selects in the GDT gdt points to; all zero for the null
 * selector or one past the GDT's limit. */
static inline void svm_segment_from_gdt(struct vmcb_segment *s, uint16_t selector, const struct x86_descriptor_pointer *gdt)
{
    s->selector = selector;
    if (!(selector & ~7u) || (selector | 7u) > gdt->limit) {
        s->attrib = 0, s->limit = 0, s->base = 0;
        return;
    }
    uint64_t d = *(const uint64_t *)(uintptr_t)(gdt->base + (selector & ~7u));
    s->attrib = (uint16_t)(((d >> 40) & 0xFF) | ((d >> 52) & 0xF) << 8);
    uint32_t limit = (uint32_t)((d & 0xFFFF) | ((d >> 48) & 0xF) << 16);
    s->limit = (d & (1ull << 55)) ? limit << 12 | 0xFFF : limit;
    s->base = (uint32_t)(((d >> 16) & 0xFFFFFF) | ((d >> 56) & 0xFF) << 24);
}

_Static_assert(__builtin_offsetof(struct vmcb, save) == VMCB_SAVE, "hv_asm_offsets.h: VMCB_SAVE");
_Static_assert(__builtin_offsetof(struct vmcb, save.rflags) == VMCB_RFLAGS, "hv_asm_offsets.h: VMCB_RFLAGS");
_Static_assert(__builtin_offsetof(struct vmcb, save.rip) == VMCB_RIP, "hv_asm_offsets.h: VMCB_RIP");
_Static_assert(__builtin_offsetof(struct vmcb, save.rsp) == VMCB_RSP, "hv_asm_offsets.h: VMCB_RSP");
_Static_assert(__builtin_offsetof(struct vmcb, save.rax) == VMCB_RAX, "hv_asm_offsets.h: VMCB_RAX");
_Static_assert(__builtin_offsetof(struct vmcb_control, iopm_base_pa) == 0x40, "vmcb iopm");
_Static_assert(__builtin_offsetof(struct vmcb_control, asid) == 0x58, "vmcb asid");
_Static_assert(__builtin_offsetof(struct vmcb_control, exit_code) == 0x70, "vmcb exit code");
_Static_assert(__builtin_offsetof(struct vmcb_control, np_enable) == 0x90, "vmcb np");
_Static_assert(__builtin_offsetof(struct vmcb_control, event_inject) == 0xA8, "vmcb event inject");
_Static_assert(__builtin_offsetof(struct vmcb_control, n_cr3) == 0xB0, "vmcb ncr3");
_Static_assert(__builtin_offsetof(struct vmcb_control, next_rip) == 0xC8, "vmcb nrip");
_Static_assert(sizeof(struct vmcb_control) == 0x400, "vmcb control area");
_Static_assert(__builtin_offsetof(struct vmcb_save, cpl) == 0xCB, "vmcb cpl");
_Static_assert(__builtin_offsetof(struct vmcb_save, efer) == 0xD0, "vmcb efer");
_Static_assert(__builtin_offsetof(struct vmcb_save, cr4) == 0x148, "vmcb cr4");
_Static_assert(__builtin_offsetof(struct vmcb_save, rip) == 0x178, "vmcb rip");
_Static_assert(__builtin_offsetof(struct vmcb_save, rsp) == 0x1D8, "vmcb rsp");
_Static_assert(__builtin_offsetof(struct vmcb_save, rax) == 0x1F8, "vmcb rax");
_Static_assert(__builtin_offsetof(struct vmcb_save, cr2) == 0x240, "vmcb cr2");
_Static_assert(__builtin_offsetof(struct vmcb_save, g_pat) == 0x268, "vmcb gpat");
_Static_assert(sizeof(struct vmcb) == 4096, "vmcb page");

/* intercept_misc1 */
#define SVM_INTERCEPT1_INTR (1u << 0)
#define SVM_INTERCEPT1_NMI (1u << 1)
#define SVM_INTERCEPT1_SMI (1u << 2)
#define SVM_INTERCEPT1_INIT (1u << 3)
#define SVM_INTERCEPT1_CPUID (1u << 18)
#define SVM_INTERCEPT1_HLT (1u << 24)
#define SVM_INTERCEPT1_IOIO (1u << 27)
#define SVM_INTERCEPT1_MSR (1u << 28)
#define SVM_INTERCEPT1_SHUTDOWN (1u << 31)
/* intercept_misc2 */
#define SVM_INTERCEPT2_VMRUN (1u << 0)
#define SVM_INTERCEPT2_VMMCALL (1u << 1)
#define SVM_INTERCEPT2_VMLOAD (1u << 2)
#define SVM_INTERCEPT2_VMSAVE (1u << 3)
#define SVM_INTERCEPT2_STGI (1u << 4)
#define SVM_INTERCEPT2_CLGI (1u << 5)
#define SVM_INTERCEPT2_SKINIT (1u << 6)

/* exit codes */
#define SVM_EXIT_NMI 0x61
#define SVM_EXIT_SMI 0x62
#define SVM_EXIT_INIT 0x63
#define SVM_EXIT_CPUID 0x72
#define SVM_EXIT_HLT 0x78
#define SVM_EXIT_IOIO 0x7B
#define SVM_EXIT_MSR 0x7C
#define SVM_EXIT_SHUTDOWN 0x7F
#define SVM_EXIT_VMRUN 0x80
#define SVM_EXIT_VMMCALL 0x81
#define SVM_EXIT_VMLOAD 0x82
#define SVM_EXIT_VMSAVE 0x83
#define SVM_EXIT_STGI 0x84
#define SVM_EXIT_CLGI 0x85
#define SVM_EXIT_SKINIT 0x86
#define SVM_EXIT_NPF 0x400
#define SVM_EXIT_INVALID 0xFFFFFFFFu /* QEMU stores it as a 32-bit value: compare the low half */

/* event_inject */
#define SVM_EVENT_VALID (1ull << 31)
#define SVM_EVENT_ERROR_VALID (1ull << 11)
#define SVM_EVENT_EXCEPTION (3ull << 8)
#define SVM_EVENT_NMI (2ull << 8)

#define X86_NMI 2
#define X86_UD 6
#define X86_GP 13

#define MSR_APIC_BASE 0x1Bu
#define MSR_PAT 0x277u
#define MSR_EFER 0xC0000080u
#define MSR_VM_HSAVE_PA 0xC0010117u
#define EFER_SVME (1ull << 12)

/* The MSR permission map: two bits (read, write) per MSR, in three 2 KiB blocks. */
#define MSRPM_BYTES 8192u
/* The I/O permission map: one bit per port, 64 Ki ports, plus the bits an access of up to
 * four bytes at port 0xFFFF reads past the end: three pages. */
#define IOPM_BYTES 12288u

/* IOIO exit_info_1 */
#define SVM_IOIO_IN (1u << 0)
#define SVM_IOIO_STRING (1u << 2)
#define SVM_IOIO_REP (1u << 3)
#define SVM_IOIO_SIZE_SHIFT 4 /* bits 4-6: 1, 2 or 4 bytes, one bit each */

/* MSRs the hypervisor itself uses or the guest must not reach */
#define MSR_TSC 0x10u
#define MSR_VM_CR 0xC0010114u
#define VM_CR_LOCK (1ull << 3)
#define VM_CR_SVMDIS (1ull << 4)

#endif
