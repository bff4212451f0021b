/* Entering and running the guest (boot/hypervisor/hv.h). SysV calling convention.
 *
 * hv_enter(cpu, resume) makes the caller's own context the guest: its RSP is the caller's
 * stack, and its RIP is resume or, when that is 0, label 1 below, so that the guest resumes
 * by returning from hv_enter. This CPU, on the host stack, runs the VMRUN loop from then
 * on and never returns.
 * The VMCB's save area other than RIP, RSP and RFLAGS was filled by hv_launch_this_cpu. */

#include "hypervisor/svm/gpr_push.h"
#include "hypervisor/svm/hv_asm_offsets.h"

/* struct guest_regs (boot/hypervisor/svm/vmexit.h), from r15 at the lowest address up to rcx */
.macro PUSH_GUEST_REGS
    PUSH_GPRS_BUT_RAX
.endm

    .text
    .globl hv_enter
    .type hv_enter, @function
hv_enter:
    /* What the guest needs when it returns: the callee-saved registers, on its stack. */
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov CPU_VMCB(%rdi), %rax
    lea 1f(%rip), %rcx
    test %rsi, %rsi
    cmovnz %rsi, %rcx
    mov %rcx, VMCB_RIP(%rax)
    mov %rsp, VMCB_RSP(%rax)
    pushfq
    pop %rcx
    mov %rcx, VMCB_RFLAGS(%rax)
    movq $0, VMCB_RAX(%rax)
    /* From here this CPU is the host: its own stack, the CPU pointer on top of it, and no
     * interrupts (GIF stays clear outside the guest). */
    cli
    clgi
    mov CPU_STACK_TOP(%rdi), %rsp
    push %rdi
    sub $8, %rsp
    call hv_host_enter      /* the host's own page tables, GDT, TSS and IDT */
    add $8, %rsp
    jmp .Lrun

    /* The guest: back in the caller's context. */
1:  pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
    .size hv_enter, . - hv_enter

.Lrun:
    /* [rsp] = cpu. Guest registers other than RAX and RSP live in the registers here. */
    mov (%rsp), %rax
    mov CPU_VMCB_PA(%rax), %rax
    vmload %rax
    vmrun %rax
    vmsave %rax
    /* The host's TR (its own TSS), FS, GS and LDTR back, before any host code runs. */
    mov (%rsp), %rax
    mov CPU_HOST_STATE_PA(%rax), %rax
    vmload %rax
    PUSH_GUEST_REGS
    mov %rsp, %rsi
    mov 14*8(%rsp), %rdi
    sub $8, %rsp            /* 16-byte alignment for the call */
    call hv_exit
    add $8, %rsp
    test %eax, %eax
    jnz .Lstop
.Lresume:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rbp
    pop %rbx
    pop %rdx
    pop %rcx
    jmp .Lrun

/* hv_ap_procedure(hv): the procedure the firmware's MP services run on each application
 * processor (Microsoft x64 convention: hv in RCX). It sets up this CPU's VMCB
 * (hv_prepare_this_ap), then makes the firmware's own context the guest, with every
 * register the firmware expects preserved as it was on entry, resuming either at the CPU's
 * resume address with this RSP (code that returns to the firmware itself) or, when that is
 * 0, as if this procedure had returned. */
    .globl hv_ap_procedure
    .type hv_ap_procedure, @function
hv_ap_procedure:
    push %rbx
    push %rbp
    push %rdi
    push %rsi
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp
    mov %rcx, %rdi
    call hv_prepare_this_ap  /* SysV: returns the CPU, or NULL */
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rsi
    pop %rdi
    pop %rbp
    pop %rbx
    test %rax, %rax
    jz 2f
    mov CPU_VMCB(%rax), %rcx
    mov CPU_RESUME(%rax), %rdx
    test %rdx, %rdx
    jz 3f
    mov %rdx, VMCB_RIP(%rcx)         /* code that returns to the firmware itself */
    mov %rsp, VMCB_RSP(%rcx)
    jmp 4f
3:  mov (%rsp), %rdx                 /* straight back to the firmware */
    mov %rdx, VMCB_RIP(%rcx)
    lea 8(%rsp), %rdx
    mov %rdx, VMCB_RSP(%rcx)
4:
    pushfq
    pop %rdx
    mov %rdx, VMCB_RFLAGS(%rcx)
    movq $0, VMCB_RAX(%rcx)
    cli
    clgi
    mov CPU_STACK_TOP(%rax), %rsp
    push %rax
    PUSH_GUEST_REGS              /* the guest's registers as they are now */
    mov 14*8(%rsp), %rdi
    sub $8, %rsp
    call hv_host_enter           /* the host's own page tables, GDT, TSS and IDT */
    add $8, %rsp
    jmp .Lresume
2:  ret
    .size hv_ap_procedure, . - hv_ap_procedure

.Lstop:
    /* The guest cannot go on (a triple fault, or an exit nothing handles): this CPU halts
     * with interrupts off. hv_exit has said why on the serial console. */
    cli
    hlt
    jmp .Lstop

    .section .note.GNU-stack, "", @progbits
