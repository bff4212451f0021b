/* The self-test's #GP handler: an access the hypervisor refuses arrives as #GP(0) (the
 * nested page fault turned into a guest exception). The faulting instructions the self-test
 * uses are two bytes long (8A 07, 88 07): the handler counts the fault and skips them. */
    .text
    .globl selftest_gp_handler
    .hidden selftest_gp_handler
selftest_gp_handler:
    add $8, %rsp            /* the error code */
    addq $2, (%rsp)         /* RIP past the access */
    lock incq selftest_gp_count(%rip)
    iretq

    .data
    .balign 8
    .globl selftest_gp_count
    .hidden selftest_gp_count
selftest_gp_count:
    .quad 0

    .section .note.GNU-stack, "", @progbits
