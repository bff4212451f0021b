/* HOSTILE.EFI on Arm (boot/guest/hostile/hostile_arm64.c): the EL1 pieces in assembly.
 *
 *   hx_vectors     an EL1 vector table: a synchronous exception is recorded in hx_rec[cpu]
 *                  (count, ESR_EL1, FAR_EL1, ELR_EL1) and stepped over (ELR += 4), an
 *                  instruction abort returns to the link register; IRQ, FIQ and SError are
 *                  counted and return with IRQ and FIQ masked.
 *   hx_probe       one access of a given form at an address, under hx_vectors, with the
 *                  interrupts masked and, if asked, with the EL1 MMU off (no stage 1).
 *   hx_call        HVC #0 or SMC #0 with X0..X3, under hx_vectors.
 *   hx_hvc_regs    HVC #0 with X0..X17 from an array, written back after.
 *   hx_cpu1_entry  the secondary CPU's entry (PSCI CPU_ON, MMU off): records CurrentEL,
 *                  takes its stack and hx_vectors from the mailbox in X0, calls
 *                  hostile_cpu1_main. */
        .arch   armv8.4-a
        .text

        .macro  VEC target
        .balign 128
        b       \target
        .endm

        .balign 2048
        .global hx_vectors
hx_vectors:
        VEC     hx_sync         /* current EL, SP0 */
        VEC     hx_other
        VEC     hx_other
        VEC     hx_other
        VEC     hx_sync         /* current EL, SPx */
        VEC     hx_other
        VEC     hx_other
        VEC     hx_other
        VEC     hx_sync         /* lower EL, AArch64 */
        VEC     hx_other
        VEC     hx_other
        VEC     hx_other
        VEC     hx_sync         /* lower EL, AArch32 */
        VEC     hx_other
        VEC     hx_other
        VEC     hx_other

        .balign 128
hx_sync:
        stp     x0, x1, [sp, #-32]!
        stp     x2, x3, [sp, #16]
        mrs     x0, mpidr_el1
        and     x0, x0, #7
        adrp    x1, hx_rec
        add     x1, x1, :lo12:hx_rec
        add     x1, x1, x0, lsl #5
        mrs     x2, esr_el1
        str     x2, [x1, #8]
        mrs     x3, far_el1
        str     x3, [x1, #16]
        mrs     x0, elr_el1
        str     x0, [x1, #24]
        ldr     x3, [x1]
        add     x3, x3, #1
        str     x3, [x1]
        dmb     sy
        lsr     x2, x2, #26
        and     x2, x2, #0x3f
        cmp     x2, #0x20
        b.eq    1f
        cmp     x2, #0x21
        b.eq    1f
        add     x0, x0, #4
        b       2f
1:      mov     x0, x30
2:      msr     elr_el1, x0
        ldp     x2, x3, [sp, #16]
        ldp     x0, x1, [sp], #32
        eret

hx_other:
        stp     x0, x1, [sp, #-16]!
        adrp    x0, hx_other_count
        add     x0, x0, :lo12:hx_other_count
        ldr     x1, [x0]
        add     x1, x1, #1
        str     x1, [x0]
        mrs     x0, spsr_el1
        orr     x0, x0, #0xc0
        msr     spsr_el1, x0
        ldp     x0, x1, [sp], #16
        eret

/* uint64_t hx_probe(uint64_t op, uint64_t addr, uint64_t val, uint64_t mmu_off)
 * X1 (the loaded value; val when nothing was loaded) back. */
        .global hx_probe
hx_probe:
        stp     x29, x30, [sp, #-48]!
        mov     x29, sp
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        mrs     x19, daif
        msr     daifset, #3
        mrs     x20, vbar_el1
        adrp    x9, hx_vectors
        add     x9, x9, :lo12:hx_vectors
        msr     vbar_el1, x9
        isb
        mov     x9, x0
        mov     x0, x1
        mov     x1, x2
        mov     x21, x3
        cbz     x21, 1f
        mrs     x10, sctlr_el1
        bic     x11, x10, #1
        msr     sctlr_el1, x11
        isb
1:      adr     x12, hx_ops
        add     x12, x12, x9, lsl #4
        br      x12
hx_probe_done:
        cbz     x21, 2f
        msr     sctlr_el1, x10
        isb
2:      msr     vbar_el1, x20
        isb
        msr     daif, x19
        mov     x0, x1
        ldp     x21, x22, [sp, #32]
        ldp     x19, x20, [sp, #16]
        ldp     x29, x30, [sp], #48
        ret

        .macro  OP insn:vararg
        .balign 16
        \insn
        b       hx_probe_done
        .endm

        .balign 16
hx_ops:
        OP      ldr x1, [x0]                    /*  0 */
        OP      ldrb w1, [x0]                   /*  1 */
        OP      ldp x1, x3, [x0]                /*  2 */
        OP      ldr x1, [x0], #8                /*  3 post-index write-back */
        OP      ldr x1, [x0, #0]!               /*  4 pre-index write-back */
        OP      ldxr x1, [x0]                   /*  5 */
        OP      ldar x1, [x0]                   /*  6 */
        .balign 16                              /*  7 SIMD load */
        ldr     q0, [x0]
        b       hx_probe_done
        OP      ldtr x1, [x0]                   /*  8 */
        OP      ldrsw x1, [x0]                  /*  9 */
        OP      str x2, [x0]                    /* 10 */
        OP      strb w2, [x0]                   /* 11 */
        OP      stp x2, x2, [x0]                /* 12 */
        OP      str x2, [x0], #8                /* 13 */
        OP      str x2, [x0, #0]!               /* 14 */
        OP      stlr x2, [x0]                   /* 15 */
        OP      stxr w4, x2, [x0]               /* 16 */
        .balign 16                              /* 17 SIMD store */
        fmov    d0, x2
        str     q0, [x0]
        b       hx_probe_done
        OP      dc zva, x0                      /* 18 */
        OP      blr x0                          /* 19 fetch */
        OP      strh w2, [x0]                   /* 20 */
        OP      ldrh w1, [x0]                   /* 21 */
        OP      str w2, [x0]                    /* 22 */
        OP      ldr w1, [x0]                    /* 23 */
        OP      ldr wzr, [x0]                   /* 24 */
        OP      str wzr, [x0]                   /* 25 */
        OP      strb wzr, [x0]                  /* 26 */
        OP      ldr xzr, [x0]                   /* 27 */
        OP      ldrsb x1, [x0]                  /* 28 */
        OP      stnp x2, x2, [x0]               /* 29 */
        OP      ldnp x1, x3, [x0]               /* 30 */
        OP      dc civac, x0                    /* 31 */
        OP      ldr w1, [x0, #4]!               /* 32 pre-index, offset */
        OP      sttr x2, [x0]                   /* 33 */
        OP      ldapr x1, [x0]                  /* 34 (RCpc) */
        OP      swp x2, x1, [x0]                /* 35 (LSE atomic) */
        OP      ldadd x2, x1, [x0]              /* 36 (LSE atomic) */
        OP      ldrsb w1, [x0]                  /* 37 */
        OP      stlrb w2, [x0]                  /* 38 */

/* uint64_t hx_call(uint64_t smc, uint64_t x0, uint64_t x1, uint64_t x2, uint64_t x3) */
        .global hx_call
hx_call:
        stp     x29, x30, [sp, #-32]!
        mov     x29, sp
        stp     x19, x20, [sp, #16]
        mrs     x19, daif
        msr     daifset, #3
        mrs     x20, vbar_el1
        adrp    x9, hx_vectors
        add     x9, x9, :lo12:hx_vectors
        msr     vbar_el1, x9
        isb
        mov     x9, x0
        mov     x0, x1
        mov     x1, x2
        mov     x2, x3
        mov     x3, x4
        cbnz    x9, 1f
        hvc     #0
        b       2f
1:      smc     #0
2:      msr     vbar_el1, x20
        isb
        msr     daif, x19
        ldp     x19, x20, [sp, #16]
        ldp     x29, x30, [sp], #32
        ret

/* void hx_hvc_regs(uint64_t r[18]): X0..X17 from r, HVC #0, X0..X17 back into r. */
        .global hx_hvc_regs
hx_hvc_regs:
        stp     x29, x30, [sp, #-32]!
        mov     x29, sp
        str     x19, [sp, #16]
        mov     x19, x0
        ldp     x0, x1, [x19, #0]
        ldp     x2, x3, [x19, #16]
        ldp     x4, x5, [x19, #32]
        ldp     x6, x7, [x19, #48]
        ldp     x8, x9, [x19, #64]
        ldp     x10, x11, [x19, #80]
        ldp     x12, x13, [x19, #96]
        ldp     x14, x15, [x19, #112]
        ldp     x16, x17, [x19, #128]
        hvc     #0
        stp     x0, x1, [x19, #0]
        stp     x2, x3, [x19, #16]
        stp     x4, x5, [x19, #32]
        stp     x6, x7, [x19, #48]
        stp     x8, x9, [x19, #64]
        stp     x10, x11, [x19, #80]
        stp     x12, x13, [x19, #96]
        stp     x14, x15, [x19, #112]
        stp     x16, x17, [x19, #128]
        ldr     x19, [sp, #16]
        ldp     x29, x30, [sp], #32
        ret

/* The secondary's entry, X0 = its mailbox (struct cpu1_box): word 0 the CurrentEL it found,
 * word 1 its stack top. */
        .global hx_cpu1_entry
hx_cpu1_entry:
        mrs     x1, CurrentEL
        str     x1, [x0]
        ldr     x1, [x0, #8]
        mov     sp, x1
        adrp    x1, hx_vectors
        add     x1, x1, :lo12:hx_vectors
        msr     vbar_el1, x1
        isb
        bl      hostile_cpu1_main
3:      wfi
        b       3b

/* A function to branch into (the entry of a CPU_ON that must never run, and a return). */
        .global hx_ret
hx_ret:
        ret

        .data
        .balign 64
        .global hx_rec
hx_rec: .fill   8 * 4, 8, 0
        .global hx_other_count
hx_other_count:
        .quad   0
