/* See boot/vmexit.h. */
#include "vmexit.h"

#include "ddi/hypercall.h"
#include "mmio_decode.h"

/* Instruction lengths: TCG gives no next-RIP, and these have one encoding each. */
#define LEN_VMMCALL 3 /* 0F 01 D9 */
#define LEN_CPUID 2   /* 0F A2 */
#define LEN_MSR 2     /* 0F 32 / 0F 30 */

#define EFER_LMA (1ull << 10)
/* SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE: anything else #GPs on hardware. */
#define EFER_VALID 0xFD01ull

static void inject(struct vmcb *vmcb, struct hv_vcpu *v, unsigned vector, bool error_code)
{
    vmcb->control.event_inject = vector | SVM_EVENT_EXCEPTION | SVM_EVENT_VALID | (error_code ? SVM_EVENT_ERROR_VALID : 0);
    v->injected++;
}

static void set_edx_eax(struct vmcb *vmcb, struct guest_regs *regs, uint64_t value)
{
    vmcb->save.rax = (uint32_t)value;
    regs->rdx = value >> 32;
}

static void do_cpuid(struct vmcb *vmcb, struct guest_regs *regs, const struct hv_exit_ops *ops)
{
    uint32_t leaf = (uint32_t)vmcb->save.rax, subleaf = (uint32_t)regs->rcx, r[4] = {0};
    if (leaf == HV_CPUID_SIGNATURE_LEAF) {
        static const char signature[12] = "iommu-hv-ddi";
        r[0] = HV_CPUID_VERSION_LEAF;
        __builtin_memcpy(&r[1], signature, 12); /* EBX, ECX, EDX */
    } else if (leaf == HV_CPUID_VERSION_LEAF) {
        r[0] = HC_ABI_VERSION;
    } else if (leaf > HV_CPUID_VERSION_LEAF && leaf <= 0x400000FFu) {
        /* nothing there */
    } else {
        ops->cpuid(ops->ctx, leaf, subleaf, r);
        if (leaf == 1)
            r[2] = (r[2] | 1u << 31) & ~(1u << 21); /* a hypervisor is present; no x2APIC (see do_msr) */
        else if (leaf == 0x80000001u)
            r[2] &= ~(1u << 2); /* no SVM for the guest */
        else if (leaf == 0x8000000Au)
            r[0] = r[1] = r[2] = r[3] = 0;
    }
    vmcb->save.rax = r[0];
    regs->rbx = r[1];
    regs->rcx = r[2];
    regs->rdx = r[3];
    vmcb->save.rip += LEN_CPUID;
}

static void do_msr(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, const struct hv_exit_ops *ops)
{
    bool write = vmcb->control.exit_info_1 & 1;
    uint32_t msr = (uint32_t)regs->rcx;
    uint64_t value = (uint32_t)vmcb->save.rax | regs->rdx << 32;
    if (msr == MSR_APIC_BASE) {
        /* The APIC stays where the nested tables leave it out, and in xAPIC mode, whose ICR
         * is emulated: x2APIC's ICR is an MSR INIT would pass through. Only writes are
         * intercepted, and one may only say the same again (bit 8, "this is the BSP", is
         * the CPU's own and read-only). */
        if (!write || (value & ~(1ull << 8)) != ops->apic_base_msr) {
            inject(vmcb, v, X86_GP, true);
            return;
        }
        vmcb->save.rip += LEN_MSR; /* the same value: nothing to change */
        return;
    }
    if (msr != MSR_EFER) {
        inject(vmcb, v, X86_GP, true); /* intercepted only because it is outside the map */
        return;
    }
    if (!write) {
        set_edx_eax(vmcb, regs, v->guest_efer);
    } else {
        if (value & ~EFER_VALID) {
            inject(vmcb, v, X86_GP, true);
            return;
        }
        v->guest_efer = value;
        vmcb->save.efer = (value & ~EFER_LMA) | (vmcb->save.efer & EFER_LMA) | EFER_SVME;
    }
    vmcb->save.rip += LEN_MSR;
}

/* General register n (the ModRM numbering) of the guest. */
static uint64_t *guest_reg(struct vmcb *vmcb, struct guest_regs *regs, unsigned n)
{
    uint64_t *gprs[16] = {&vmcb->save.rax, &regs->rcx, &regs->rdx, &regs->rbx, &vmcb->save.rsp, &regs->rbp,
                          &regs->rsi, &regs->rdi, &regs->r8, &regs->r9, &regs->r10, &regs->r11,
                          &regs->r12, &regs->r13, &regs->r14, &regs->r15};
    return gprs[n & 15];
}

#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310

/* A guest access to the local APIC's page: false when it is not one this emulates. */
static bool emulate_apic(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, const struct hv_exit_ops *ops)
{
    uint8_t code[15];
    struct mmio_access a;
    uint32_t offset = (uint32_t)(vmcb->control.exit_info_2 & 0xFFF);
    if (!ops->fetch(ops->ctx, vmcb, vmcb->save.cs.base + vmcb->save.rip, code, sizeof code) ||
        !mmio_decode(code, sizeof code, &a) || a.size != 4 || (offset & 3))
        return false;
    uint64_t *r = guest_reg(vmcb, regs, a.reg);
    if (!a.write) {
        *r = ops->apic_read(ops->ctx, offset); /* a 32-bit load clears the upper half */
    } else {
        uint32_t value = a.immediate ? a.value : (uint32_t)*r;
        unsigned mode = (value >> 8) & 7;
        if (offset == APIC_ICR_LOW && (mode == 5 || mode == 6))
            ops->init_sipi(ops->ctx, value, ops->apic_read(ops->ctx, APIC_ICR_HIGH));
        else
            ops->apic_write(ops->ctx, offset, value);
    }
    v->apic_accesses++;
    vmcb->save.rip += a.length;
    return true;
}

void hv_sipi_state(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v, uint8_t vector)
{
    struct vmcb_save *s = &vmcb->save;
    const struct vmcb_segment data = {0, 0x93, 0xFFFF, 0};
    s->cs = (struct vmcb_segment){(uint16_t)(vector << 8), 0x9B, 0xFFFF, (uint64_t)vector << 12};
    s->ds = s->es = s->ss = s->fs = s->gs = data;
    s->gdtr = s->idtr = (struct vmcb_segment){0, 0, 0xFFFF, 0};
    s->ldtr = (struct vmcb_segment){0, 0x82, 0xFFFF, 0};
    s->tr = (struct vmcb_segment){0, 0x8B, 0xFFFF, 0};
    s->cr0 = 0x60000010; /* CD, NW, ET */
    s->cr3 = s->cr4 = s->cr2 = 0;
    s->efer = EFER_SVME;
    v->guest_efer = 0;
    s->rflags = 2;
    s->rip = 0;
    s->rsp = s->rax = 0;
    s->dr7 = 0x400, s->dr6 = 0xFFFF0FF0;
    s->cpl = 0;
    s->kernel_gs_base = s->star = s->lstar = s->cstar = s->sfmask = 0;
    s->sysenter_cs = s->sysenter_esp = s->sysenter_eip = 0;
    *regs = (struct guest_regs){0};
    vmcb->control.event_inject = 0;
    v->sipis++;
}

enum hv_exit_result hv_handle_exit(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v,
                                   const struct hv_exit_ops *ops)
{
    v->exits++;
    ops->collect_faults(ops->ctx);
    uint32_t code = (uint32_t)vmcb->control.exit_code;
    switch (code) {
    case SVM_EXIT_VMMCALL:
        if (vmcb->save.cpl != 0) {
            inject(vmcb, v, X86_UD, false);
            break;
        }
        v->hypercalls++;
        vmcb->save.rax = ops->hypercall(ops->ctx, vmcb->save.rax, regs->rcx, regs->rdx);
        vmcb->save.rip += LEN_VMMCALL;
        break;
    case SVM_EXIT_CPUID:
        v->cpuids++;
        do_cpuid(vmcb, regs, ops);
        break;
    case SVM_EXIT_MSR:
        do_msr(vmcb, regs, v, ops);
        break;
    case SVM_EXIT_VMRUN:
    case SVM_EXIT_VMLOAD:
    case SVM_EXIT_VMSAVE:
    case SVM_EXIT_STGI:
    case SVM_EXIT_CLGI:
    case SVM_EXIT_SKINIT:
        inject(vmcb, v, X86_UD, false);
        break;
    case SVM_EXIT_HLT:
        if (vmcb->save.rflags & (1u << 9)) {
            vmcb->save.rip += 1; /* interrupts on: as if one had woken it */
        } else if (ops->wait_for_sipi(ops->ctx, v)) {
            v->sipi_pending = false; /* another CPU's emulated INIT-SIPI: start at its vector */
            hv_sipi_state(vmcb, regs, v, v->sipi_vector);
        } /* else the guest is back at its HLT, and here again soon */
        break;
    case SVM_EXIT_NPF:
        if (ops->apic_base && (vmcb->control.exit_info_2 & ~0xFFFull) == ops->apic_base &&
            emulate_apic(vmcb, regs, v, ops))
            break;
        /* The guest touched the hypervisor's memory or the IOMMU's registers. */
        v->npf_count++;
        v->npf_gpa = vmcb->control.exit_info_2;
        v->npf_info = vmcb->control.exit_info_1;
        v->npf_rip = vmcb->save.rip;
        inject(vmcb, v, X86_GP, true);
        break;
    default: /* shutdown (a triple fault), VMEXIT_INVALID, anything not asked for */
        v->stop_code = code;
        return HV_STOP;
    }
    return HV_RESUME;
}
