/* The Arm self-test's own EL1 vectors, installed (VBAR_EL1) only around a probe the
 * hypervisor must refuse: any exception records ESR_EL1, FAR_EL1 and ELR_EL1 in
 * selftest_arm64_trap (count, esr, far, elr), steps over the instruction and returns. An
 * instruction abort at an address (a probe that branched there) returns to the link
 * register instead. */
    .text
    .balign 0x800
    .globl selftest_arm64_vectors
selftest_arm64_vectors:
    .rept 16
    .balign 0x80
    b       record
    .endr

record:
    stp     x0, x1, [sp, #-32]!
    str     x2, [sp, #16]
    adrp    x0, selftest_arm64_trap
    add     x0, x0, :lo12:selftest_arm64_trap
    ldr     x1, [x0]
    add     x1, x1, #1
    str     x1, [x0]
    mrs     x1, esr_el1
    str     x1, [x0, #8]
    mrs     x1, far_el1
    str     x1, [x0, #16]
    mrs     x1, elr_el1
    str     x1, [x0, #24]
    mrs     x2, esr_el1
    lsr     x2, x2, #26
    cmp     x2, #0x21               /* instruction abort, same EL: back to the caller */
    b.ne    1f
    msr     elr_el1, x30
    b       2f
1:  add     x1, x1, #4
    msr     elr_el1, x1
2:  ldr     x2, [sp, #16]
    ldp     x0, x1, [sp], #32
    eret
