/* For the assembly: pushes every general register but RAX and RSP, RCX first, so that the
 * lowest address holds R15: the layout of struct guest_regs (boot/hypervisor/svm/vmexit.h) and the
 * middle of struct host_fault_frame (boot/hypervisor/svm/host_env.h). */
#ifndef BOOT_GPR_PUSH_H
#define BOOT_GPR_PUSH_H

#ifdef __ASSEMBLER__
.macro PUSH_GPRS_BUT_RAX
    push %rcx
    push %rdx
    push %rbx
    push %rbp
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
.endm
#endif

#endif
