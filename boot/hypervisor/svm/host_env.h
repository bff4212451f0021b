/* The hypervisor host's own execution environment (docs/security.md, "the host"): page
 * tables, GDT, TSS and IDT that live in the reserved region, where the guest cannot
 * reach them. Each CPU switches to them once, on its host stack, before its first VMRUN;
 * VMRUN saves and #VMEXIT restores CR3, GDTR and IDTR, and the VMRUN loop reloads the
 * host's TR (with VMLOAD) after each exit, so host code never runs on a table the guest
 * can write. Every exception in host code is a bug: it prints what happened on the
 * hypervisor's channel and stops the machine; no guest code can be made to run for it. */
#ifndef BOOT_HOST_ENV_H
#define BOOT_HOST_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include "iommu/page_pool.h"
#include "iommu/slpt.h"

struct host_tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3, iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct host_tss) == 104, "64-bit TSS");

/* One CPU's part: its GDT (the TSS descriptor's busy bit is per CPU) and TSS. */
struct host_cpu_env {
    _Alignas(16) uint64_t gdt[5]; /* null, code 0x08, data 0x10, TSS 0x18 (two slots) */
    struct host_tss tss;
    uint64_t host_state_pa;       /* VMSAVE area holding the host's TR, FS, GS, LDTR */
};

#define HOST_CS 0x08u
#define HOST_DS 0x10u
#define HOST_TR 0x18u

/* Builds the host's page tables (every physical address below top, one to one, for the
 * host only) from the pool, and the IDT. Also names the chipset's power and reset
 * controls, with which a fatal host error stops the machine. */
bool host_env_prepare(struct page_pool *pool, uint64_t top, bool one_gib_pages, uint16_t pm1a_cnt_port);

/* This CPU's GDT and TSS (ist_top: the top of a stack for faults that cannot trust the
 * current one), in memory of the region; host_state: a page of the region. */
void host_env_cpu_init(struct host_cpu_env *c, uint8_t *ist_top, uint64_t host_state_pa);

/* On this CPU, with interrupts off: the host's CR3, GDT (and segment registers), TR and
 * IDT; then VMSAVE of the host's state to c->host_state_pa. */
void host_env_enter(struct host_cpu_env *c);

/* The root of the host's page tables (for the tests of the isolation). */
uint64_t host_env_cr3(void);
/* After an NMI exit: takes the NMI the intercept left pending (it would make the next VMRUN
 * exit again), through the host's NMI entry, which just returns. */
void host_take_nmi(void);

/* Stop the machine: ACPI power-off through PM1a_CNT (S5), then a reset through the reset
 * control register, then halt. For the hypervisor's own verdicts and its fatal errors. */
_Noreturn void host_power_off(void);
_Noreturn void host_reset(void);

/* The IDT stubs (boot/hypervisor/svm/host_idt.S) call this with the frame they built. */
struct host_fault_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};
_Noreturn void host_fault(const struct host_fault_frame *f);

#endif
