/* See arm64_cpus.h: where a CPU started by arm64_cpu_cycle begins, at EL1 with its MMU off;
 * x0 is its struct arm64_cpu_cycle (alive at 0, status at 8, el at 16). */
    .text
    .globl arm64_cpu_cycle_entry
arm64_cpu_cycle_entry:
    mov     x9, x0
    mov     x1, #1
    str     x1, [x9]
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    str     x1, [x9, #16]
    ldr     x0, =0xC6000100         /* ARM64_CPU_CYCLE_CALL */
    mov     x1, #0
    mov     x2, #0
    hvc     #0
    str     x0, [x9, #8]
    dsb     sy
    ldr     x0, =0x84000002         /* PSCI CPU_OFF */
    smc     #0
1:  wfi
    b       1b

/* arm64_smc(fn, a1, a2, a3): x0-x3 in, x0 out. */
    .globl arm64_smc
arm64_smc:
    smc     #0
    ret
