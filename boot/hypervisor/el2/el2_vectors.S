/* The hypervisor's EL2 exception vectors, its trap frame, and the ways into the guest.
 *
 * Every trap from the guest (EL1 or EL0, AArch64) saves the guest's x0-x30, ELR_EL2 and
 * SPSR_EL2 on the CPU's own stack in the reserved region (SP_EL2, set before the CPU's
 * first ERET and back at its top after every one), calls el2_trap(frame, kind) and
 * restores the frame, which the handler may have changed, before the ERET. The hypervisor
 * is built with -mgeneral-regs-only: the guest's FP/SIMD registers are never touched here.
 * An exception taken in the hypervisor itself ends the machine (el2_host_fault). */
#define EL2_FRAME_BYTES 272
#define FRAME_ELR 248

    .text

.macro save_frame
    sub     sp, sp, #EL2_FRAME_BYTES
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_el2
    stp     x30, x0, [sp, #240]
    mrs     x0, spsr_el2
    str     x0, [sp, #256]
.endm

.macro vector_entry kind, target
    .balign 0x80
    save_frame
    mov     x0, sp
    mov     x1, #\kind
    b       \target
.endm

    .balign 0x800
    .globl el2_vectors
el2_vectors:
    /* the hypervisor's own: SP_EL0, then SP_EL2; synchronous, IRQ, FIQ, SError */
    vector_entry 0, host_fault
    vector_entry 1, host_fault
    vector_entry 2, host_fault
    vector_entry 3, host_fault
    vector_entry 0, host_fault
    vector_entry 1, host_fault
    vector_entry 2, host_fault
    vector_entry 3, host_fault
    /* the guest's, AArch64 */
    vector_entry 0, guest_trap
    vector_entry 1, guest_trap
    vector_entry 2, guest_trap
    vector_entry 3, guest_trap
    /* the guest's, AArch32 (HCR_EL2.RW keeps EL1 in AArch64; EL0 could try) */
    vector_entry 4, guest_trap
    vector_entry 4, guest_trap
    vector_entry 4, guest_trap
    vector_entry 4, guest_trap

host_fault:
    bl      el2_host_fault          /* does not return */
1:  wfi
    b       1b

guest_trap:
    bl      el2_trap
    mov     x0, sp
    /* fall through */

/* el2_resume_guest(frame): the guest's registers from frame, which is at the CPU's stack
 * top less EL2_FRAME_BYTES, then into the guest. */
    .globl el2_resume_guest
el2_resume_guest:
    mov     sp, x0
    ldp     x30, x0, [sp, #240]
    msr     elr_el2, x0
    ldr     x0, [sp, #256]
    msr     spsr_el2, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #EL2_FRAME_BYTES
    eret

/* Where a CPU that PSCI CPU_ON started for the guest comes up: at EL2, MMU off, x0 = its
 * struct hv_cpu (whose first field is its stack top). */
    .globl el2_secondary_entry
el2_secondary_entry:
    ldr     x1, [x0]
    mov     sp, x1
    bl      el2_secondary_start     /* does not return */
1:  wfi
    b       1b

/* The value of SMC from EL2: the firmware's PSCI (x0-x3 in, x0 out). */
    .globl el2_smc
el2_smc:
    smc     #0
    ret
