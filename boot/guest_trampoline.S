/* Where the guest resumes after the launch: a few position-independent instructions that
 * the loader copies, with their data, into a page of the firmware's own (guest) memory, so
 * the guest never runs code in the loader image, which the nested page tables leave out.
 * They start the payload image and, when it returns, shut the machine down with its status.
 * Microsoft x64 calls: arguments in RCX, RDX, R8, R9, 32 bytes of shadow space. */
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
    mov %rax, %rdx
    mov $2, %ecx                     /* EfiResetShutdown */
    xor %r8d, %r8d
    xor %r9d, %r9d
    call *tr_reset_system(%rip)      /* ResetSystem(shutdown, status, 0, NULL) */
1:  hlt
    jmp 1b
    .balign 8
guest_trampoline_data:
tr_start_image:
    .quad 0
tr_reset_system:
    .quad 0
tr_image:
    .quad 0
guest_trampoline_end:

    .section .note.GNU-stack, "", @progbits
