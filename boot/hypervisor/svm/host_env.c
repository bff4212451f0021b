/* See boot/hypervisor/svm/host_env.h. */
#include "hypervisor/svm/host_env.h"

#include "common/cpuid.h"
#include "hypervisor/hv_channel.h"
#include "common/port_io.h"
#include "common/x86_tables.h"
#include "iommu/fmt.h"

#define PAGE 4096u

static struct slpt host_tables;
static _Alignas(16) struct x86_idt_gate idt[256];
static uint16_t pm1a_cnt;

extern const uint8_t host_vector_stubs[]; /* boot/hypervisor/svm/host_idt.S: stub v at + 16 * v */
extern const uint8_t host_nmi_entry[];


bool host_env_prepare(struct page_pool *pool, uint64_t top, bool one_gib_pages, uint16_t pm1a_cnt_port)
{
    pm1a_cnt = pm1a_cnt_port;
    /* The faults that may come with a broken stack (NMI, #DF, #MC) switch to the IST stack. */
    for (unsigned v = 0; v < 256; v++)
        idt[v] = x86_interrupt_gate((uint64_t)(uintptr_t)(host_vector_stubs + 16 * v), HOST_CS,
                                    v == 2 || v == 8 || v == 18 ? 1 : 0);
    /* The host takes NMIs only in host_take_nmi, and returns from them. */
    idt[2] = x86_interrupt_gate((uint64_t)(uintptr_t)host_nmi_entry, HOST_CS, 1);
    /* x86 paging, supervisor entries, read and write: only the host uses these tables. */
    if (slpt_init(&host_tables, pool, 4, SLPT_SUPERPAGE_2M | (one_gib_pages ? SLPT_SUPERPAGE_1G : 0)) != IOMMU_OK ||
        slpt_set_format(&host_tables, &pt_x86_supervisor) != IOMMU_OK)
        return false;
    return slpt_map(&host_tables, 0, 0, top, SLPT_READ | SLPT_WRITE) == IOMMU_OK;
}

void host_take_nmi(void)
{
    /* GIF set for one instruction: the NMI the intercept left pending is taken here (the
     * entry returns at once) instead of making the next VMRUN exit again. Only NMI and
     * SMI can be taken with IF clear; INIT too, but nothing the guest controls can send
     * one (docs/security.md). */
    __asm__ volatile("stgi\n\tclgi" : : : "memory");
}

uint64_t host_env_cr3(void)
{
    return host_tables.root_pa;
}

void host_env_cpu_init(struct host_cpu_env *c, uint8_t *ist_top, uint64_t host_state_pa)
{
    uint64_t tss = (uint64_t)(uintptr_t)&c->tss;
    c->tss = (struct host_tss){.iomap_base = sizeof c->tss};
    c->tss.ist[0] = (uint64_t)(uintptr_t)ist_top;
    c->gdt[0] = 0;
    c->gdt[1] = 0x00AF9A000000FFFFull; /* 64-bit code, DPL 0 */
    c->gdt[2] = 0x00CF92000000FFFFull; /* data, DPL 0 */
    c->gdt[3] = (sizeof c->tss - 1) | (tss & 0xFFFFFF) << 16 | 0x89ull << 40 | ((tss >> 24) & 0xFF) << 56;
    c->gdt[4] = tss >> 32;
    c->host_state_pa = host_state_pa;
}

void host_env_enter(struct host_cpu_env *c)
{
    struct x86_descriptor_pointer gdtr = {sizeof c->gdt - 1, (uint64_t)(uintptr_t)c->gdt};
    struct x86_descriptor_pointer idtr = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
    __asm__ volatile("mov %0, %%cr3" : : "r"(host_tables.root_pa) : "memory");
    __asm__ volatile("lgdt %0" : : "m"(gdtr));
    __asm__ volatile("pushq %[cs]\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "mov %[ds], %%eax\n\t"
                     "mov %%eax, %%ds\n\t"
                     "mov %%eax, %%es\n\t"
                     "mov %%eax, %%ss\n\t"
                     "mov %%eax, %%fs\n\t"
                     "mov %%eax, %%gs"
                     :
                     : [cs] "i"(HOST_CS), [ds] "i"(HOST_DS)
                     : "rax", "memory");
    __asm__ volatile("ltr %w0" : : "r"(HOST_TR));
    __asm__ volatile("lidt %0" : : "m"(idtr));
    __asm__ volatile("vmsave %%rax" : : "a"(c->host_state_pa) : "memory");
}


_Noreturn void host_reset(void)
{
    outb(0xCF9, 0x02); /* the reset control register (FADT RESET_REG on q35): full reset */
    outb(0xCF9, 0x0E);
    for (;;)
        __asm__ volatile("cli; hlt");
}

_Noreturn void host_power_off(void)
{
    /* SLP_EN with SLP_TYP 0: QEMU's q35 \_S5 sleep type (what OVMF's own power-off writes). */
    if (pm1a_cnt)
        outw(pm1a_cnt, 1u << 13);
    host_reset(); /* should the power-off not take: never go back to the guest */
}

_Noreturn void host_fault(const struct host_fault_frame *f)
{
    char line[240];
    uint64_t cr2;
    uint32_t r[4];
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    cpuid(1u, 0u, r);
    size_t n = fmt_format(line, sizeof line,
                          "\nhv: FATAL: host exception %lu (error code 0x%lx) on the CPU with APIC id %u at rip 0x%lx, "
                          "cr2 0x%lx, rsp 0x%lx: the hypervisor stops the machine\n",
                          f->vector, f->error_code, r[1] >> 24, f->rip, cr2, f->rsp);
    /* Not through the channel's lock: the fault may have come while it was held. */
    hv_channel_write_unlocked(line, n < sizeof line ? n : sizeof line - 1);
    hv_channel_write_unlocked("RESULT: FAIL (the hypervisor stopped on a host exception)\n", 58);
    host_power_off();
}
