/* See boot/vmexit.h. */
#include "vmexit.h"

#include "ddi/hypercall.h"

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
            r[2] |= 1u << 31; /* a hypervisor is present */
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

static void do_msr(struct vmcb *vmcb, struct guest_regs *regs, struct hv_vcpu *v)
{
    bool write = vmcb->control.exit_info_1 & 1;
    uint32_t msr = (uint32_t)regs->rcx;
    if (msr != MSR_EFER) {
        inject(vmcb, v, X86_GP, true); /* intercepted only because it is outside the map */
        return;
    }
    if (!write) {
        set_edx_eax(vmcb, regs, v->guest_efer);
    } else {
        uint64_t value = (uint32_t)vmcb->save.rax | regs->rdx << 32;
        if (value & ~EFER_VALID) {
            inject(vmcb, v, X86_GP, true);
            return;
        }
        v->guest_efer = value;
        vmcb->save.efer = (value & ~EFER_LMA) | (vmcb->save.efer & EFER_LMA) | EFER_SVME;
    }
    vmcb->save.rip += LEN_MSR;
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
        do_msr(vmcb, regs, v);
        break;
    case SVM_EXIT_VMRUN:
    case SVM_EXIT_VMLOAD:
    case SVM_EXIT_VMSAVE:
    case SVM_EXIT_STGI:
    case SVM_EXIT_CLGI:
    case SVM_EXIT_SKINIT:
        inject(vmcb, v, X86_UD, false);
        break;
    case SVM_EXIT_NPF:
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
