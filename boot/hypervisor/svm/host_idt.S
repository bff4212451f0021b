/* The host's exception entry points (boot/hypervisor/svm/host_env.h): one stub per vector, each of which
 * makes the frame uniform (an error code of 0 where the CPU pushes none) and goes to
 * host_fault, which never returns; and the NMI entry, which returns. */
#include "hypervisor/svm/gpr_push.h"

    .text

.macro STUB vector
    .balign 16
host_vector_\vector:
    .if (\vector == 8) || (\vector >= 10 && \vector <= 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
    .else
    push $0
    .endif
    push $\vector
    jmp host_fault_common
.endm

/* Stub v is at host_vector_stubs + 16 * v. */
    .globl host_vector_stubs
    .balign 16
host_vector_stubs:
    .altmacro
    .set v, 0
    .rept 256
    STUB %v
    .set v, v + 1
    .endr

/* NMI: taken on purpose (host_take_nmi) after an NMI exit, to clear the NMI the intercept
 * left pending; nothing to do but return. */
    .globl host_nmi_entry
    .balign 16
host_nmi_entry:
    iretq

host_fault_common:
    push %rax
    PUSH_GPRS_BUT_RAX
    mov %rsp, %rdi
    and $-16, %rsp
    call host_fault
1:  cli
    hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
