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

/* Where a CPU the self-test starts with PSCI CPU_ON begins, at EL1 with its MMU off; x0 is
 * its struct selftest_arm64_cpu (alive, status, el): it says it is alive, makes one
 * HC_VERSION hypercall (no block: STATUS_INFO_LENGTH_MISMATCH back,
 * which proves the hypervisor answered), records its exception level and leaves with
 * PSCI CPU_OFF. */
    .globl selftest_arm64_secondary
selftest_arm64_secondary:
    mov     x9, x0
    mov     x1, #1
    str     x1, [x9]
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    str     x1, [x9, #16]
    ldr     x0, =0xC6000100         /* hc_smccc_function(HC_VERSION), ABI version 1 */
    mov     x1, #0
    mov     x2, #0
    hvc     #0
    str     x0, [x9, #8]
    dsb     sy
    ldr     x0, =0x84000002         /* PSCI CPU_OFF */
    smc     #0
1:  wfi
    b       1b
