/* Where the guest resumes after the launch: a few position-independent instructions that
 * the loader copies, with their data, into a page of the firmware's own (guest) memory, so
 * the guest never runs code in the loader image, which the nested page tables leave out.
 *
 * The boot CPU starts the payload image and, when it returns, hands its status to the
 * hypervisor (HC_GUEST_EXIT), which gives the verdict and powers the machine off; should
 * that call return, the firmware shuts the machine down with the status. Microsoft x64 calls: arguments in RCX, RDX, R8, R9, 32 bytes of shadow space.
 *
 * Each application processor makes one hypercall (HC_VERSION), counts it when it succeeds,
 * and returns to the firmware's AP loop, as the procedure the firmware ran on it would
 * have: only RAX, RCX and RDX change, which the convention lets a callee change. */
    .text
    .globl guest_trampoline_start
    .globl guest_trampoline_data
    .globl guest_trampoline_end
guest_trampoline_start:
    and $-16, %rsp
    sub $32, %rsp
    mov tr_image(%rip), %rcx
    xor %edx, %edx
    xor %r8d, %r8d
    call *tr_start_image(%rip)       /* StartImage(payload, NULL, NULL) */
    mov %rax, tr_exit_block(%rip)
    push %rax
    push %rax                        /* (keeps the stack 16-byte aligned) */
    lea tr_exit_block(%rip), %rcx
    mov $8, %edx                     /* sizeof(struct hc_guest_exit_block) */
    mov tr_exit_rax(%rip), %rax
    vmmcall                          /* HC_GUEST_EXIT: does not return when served */
    pop %rax
    pop %rax
    mov %rax, %rdx
    mov $2, %ecx                     /* EfiResetShutdown */
    xor %r8d, %r8d
    xor %r9d, %r9d
    call *tr_reset_system(%rip)      /* ResetSystem(shutdown, status, 0, NULL) */
1:  hlt
    jmp 1b

    .globl guest_ap_trampoline
guest_ap_trampoline:
    lea tr_ap_block(%rip), %rcx
    mov $24, %edx                    /* sizeof(struct hc_version_block) */
    mov tr_ap_rax(%rip), %rax
    vmmcall
    test %rax, %rax
    jnz 2f
    lock incl tr_ap_ok(%rip)
2:  xor %eax, %eax
    ret

    .balign 8
guest_trampoline_data:
tr_start_image:
    .quad 0
tr_reset_system:
    .quad 0
tr_image:
    .quad 0
tr_ap_rax:
    .quad 0
tr_ap_ok:
    .quad 0
tr_ap_block:
    .quad 0, 0, 0
tr_exit_rax:
    .quad 0
tr_exit_block:
    .quad 0
guest_trampoline_end:

    .section .note.GNU-stack, "", @progbits
