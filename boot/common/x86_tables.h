/* The x86-64 descriptor-table formats the hypervisor and the guest payloads both build or
 * patch: the pointer LGDT/LIDT take and SGDT/SIDT store, and a 16-byte interrupt gate. */
#ifndef BOOT_X86_TABLES_H
#define BOOT_X86_TABLES_H

#include <stdint.h>

struct x86_descriptor_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

struct x86_idt_gate {
    uint16_t offset_low, selector;
    uint8_t ist, type; /* type 0x8E: present, DPL 0, 64-bit interrupt gate */
    uint16_t offset_mid;
    uint32_t offset_high, reserved;
};
_Static_assert(sizeof(struct x86_idt_gate) == 16, "64-bit IDT gate");

/* A present DPL-0 interrupt gate to handler in code segment cs, on IST stack ist (0: none). */
static inline struct x86_idt_gate x86_interrupt_gate(uint64_t handler, uint16_t cs, uint8_t ist)
{
    return (struct x86_idt_gate){(uint16_t)handler, cs, ist, 0x8E, (uint16_t)(handler >> 16), (uint32_t)(handler >> 32), 0};
}

static inline uint64_t x86_gate_handler(const struct x86_idt_gate *g)
{
    return (uint64_t)g->offset_low | (uint64_t)g->offset_mid << 16 | (uint64_t)g->offset_high << 32;
}

/* This CPU's IDT: SIDT's base, as gates. */
static inline struct x86_idt_gate *x86_current_idt(void)
{
    struct x86_descriptor_pointer idt;
    __asm__ volatile("sidt %0" : "=m"(idt));
    return (struct x86_idt_gate *)(uintptr_t)idt.base;
}

#endif
